//! Input filtering and the host's ICMP: sources no host may use, LAND packets, SYN+FIN,
//! destination unreachables for UDP and other protocols under their rate limit, echo with
//! any code, and IPv4 IDs counted per destination.

use super::*;
use crate::wire::checksum;
use crate::wire::DropReason;

/// A SYN to the listener from `src`.
fn syn_from(src: Ipv4Addr) -> Vec<u8> {
    let hdr = TcpHeaderOut { seq: SeqNum(PEER_ISS), flags: TcpFlags::SYN, window: 65535, ..Default::default() };
    let mut pkt = Vec::new();
    ipv4::build_tcp(SocketAddrV4::new(src, PEER_PORT), SocketAddrV4::new(HOST_IP, 8000), &hdr, b"", 1, &mut pkt);
    pkt
}

/// An IPv4 packet from the peer with `protocol` and `body`.
fn datagram(protocol: u8, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    ipv4::write_header(PEER_IP, HOST_IP, protocol, body.len(), 77, &mut p);
    p.extend_from_slice(body);
    p
}

/// UDP from the peer's port 5000 to `port`, with its checksum.
fn udp_to(port: u16) -> Vec<u8> {
    let mut d = [&5000u16.to_be_bytes()[..], &port.to_be_bytes(), &12u16.to_be_bytes(), &[0, 0], b"ping"].concat();
    let sum = checksum::fold(checksum::sum_words(&d, checksum::pseudo_header(PEER_IP, HOST_IP, 17, d.len())));
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    datagram(17, &d)
}

fn drops(t: &Peer, r: DropReason) -> u64 {
    t.host.counters.drops.get(&r).copied().unwrap_or(0)
}

#[test]
fn syns_from_sources_no_host_may_use_get_no_answer_and_keep_no_state() {
    let mut t = Peer::listening();
    for src in [[0, 1, 2, 3], [240, 1, 2, 3], [255, 255, 255, 255], [127, 0, 0, 1], [224, 0, 0, 5]] {
        t.send_raw(&syn_from(Ipv4Addr::from(src)));
    }
    // The directed broadcast of 10.7.0.0/24 and its network address.
    t.send_raw(&syn_from(Ipv4Addr::new(10, 7, 0, 255)));
    t.send_raw(&syn_from(Ipv4Addr::new(10, 7, 0, 0)));
    // LAND: from our own address and port, to ourselves.
    let land = {
        let hdr = TcpHeaderOut { seq: SeqNum(1), flags: TcpFlags::SYN, window: 65535, ..Default::default() };
        let mut pkt = Vec::new();
        let us = SocketAddrV4::new(HOST_IP, 8000);
        ipv4::build_tcp(us, us, &hdr, b"", 1, &mut pkt);
        pkt
    };
    t.send_raw(&land);
    assert!(t.host.pop_output().is_none(), "no SYN-ACK to any of them");
    assert_eq!(t.host.connections().count(), 0, "no half-open entry to retransmit for");
    assert_eq!(drops(&t, DropReason::Martian), 5);
    assert_eq!(drops(&t, DropReason::SourceBroadcast), 2);
    assert_eq!(drops(&t, DropReason::SourceIsUs), 1);
    // A real peer still connects.
    t.send(syn().seq(PEER_ISS));
    assert_eq!(t.expect().flags, TcpFlags::SYN | TcpFlags::ACK);
}

#[test]
fn the_broadcast_address_follows_the_configured_prefix() {
    let mut cfg = config();
    cfg.prefix_len = 16;
    let mut t = Peer::listening_with(cfg);
    t.send_raw(&syn_from(Ipv4Addr::new(10, 7, 255, 255)));
    assert!(t.host.pop_output().is_none());
    // .255 is an ordinary host in a /16.
    t.send_raw(&syn_from(Ipv4Addr::new(10, 7, 0, 255)));
    assert!(t.host.pop_output().is_some());
    assert_eq!(drops(&t, DropReason::SourceBroadcast), 1);
}

#[test]
fn syn_fin_is_dropped_unanswered() {
    let mut t = Peer::listening();
    t.send(syn().seq(PEER_ISS).flags(TcpFlags::SYN | TcpFlags::FIN));
    t.expect_nothing();
    // To a closed port too: no RST tells a scanner anything.
    t.send(syn().seq(PEER_ISS).flags(TcpFlags::SYN | TcpFlags::FIN).dport(9999));
    t.expect_nothing();
    assert_eq!(drops(&t, DropReason::SynFin), 2);
    assert_eq!(t.host.connections().count(), 0);
}

/// The ICMP message in a packet the host sent: (type, code, the rest after the checksum).
fn icmp_out(pkt: &[u8]) -> (u8, u8, Vec<u8>) {
    assert_eq!(pkt[9], 1, "an ICMP packet");
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    assert_eq!(checksum::checksum(&pkt[..ihl]), 0);
    let icmp = &pkt[ihl..];
    assert_eq!(checksum::checksum(icmp), 0, "ICMP checksum");
    (icmp[0], icmp[1], icmp[4..].to_vec())
}

#[test]
fn udp_to_any_port_gets_port_unreachable_quoting_it() {
    let mut t = Peer::listening();
    let probe = udp_to(53);
    t.send_raw(&probe);
    let pkt = t.host.pop_output().expect("an ICMP answer");
    assert_eq!(&pkt[16..20], &PEER_IP.octets(), "to the sender");
    let (ty, code, rest) = icmp_out(&pkt);
    assert_eq!((ty, code), (3, 3), "port unreachable");
    assert_eq!(&rest[4..], &probe[..], "the whole datagram quoted (it is under 548 bytes)");
    assert_eq!(drops(&t, DropReason::UdpNoListener), 1);
    assert_eq!(t.host.counters.icmp_unreachable_sent, 1);
}

#[test]
fn other_protocols_get_protocol_unreachable_but_icmp_gets_none() {
    let mut t = Peer::listening();
    t.send_raw(&datagram(132, &[0; 16]));
    let (ty, code, _) = icmp_out(&t.host.pop_output().expect("an ICMP answer"));
    assert_eq!((ty, code), (3, 2), "protocol unreachable");
    // An ICMP error about an ICMP message would feed loops (RFC 1122 §3.2.2): none.
    let mut unreachable = vec![3, 3, 0, 0, 0, 0, 0, 0];
    let sum = checksum::checksum(&unreachable);
    unreachable[2..4].copy_from_slice(&sum.to_be_bytes());
    t.send_raw(&datagram(1, &unreachable));
    assert!(t.host.pop_output().is_none());
    assert_eq!(drops(&t, DropReason::IcmpIgnored), 1);
}

#[test]
fn icmp_errors_are_rate_limited_by_a_token_bucket() {
    let mut cfg = config();
    cfg.icmp_errors_per_sec = 100;
    cfg.icmp_error_burst = 10;
    let mut t = Peer::listening_with(cfg);
    let sent = |t: &mut Peer, n: u16| {
        for p in 0..n {
            t.send_raw(&udp_to(1000 + p));
        }
        std::iter::from_fn(|| t.host.pop_output()).count()
    };
    assert_eq!(sent(&mut t, 50), 10, "a burst of 10");
    t.advance(Duration::from_millis(100));
    assert_eq!(sent(&mut t, 50), 10, "100 a second: 10 more after 100 ms");
    t.advance(Duration::from_secs(60));
    assert_eq!(sent(&mut t, 50), 10, "a long quiet spell saves up no more than the burst");
    assert_eq!(t.host.counters.icmp_errors_limited, 120);
    assert_eq!(drops(&t, DropReason::UdpNoListener), 150, "every datagram counted");
}

#[test]
fn echo_requests_of_any_code_are_answered_with_that_code() {
    let mut t = Peer::listening();
    for code in [0u8, 9] {
        let mut req = vec![8, code, 0, 0, 0xab, 0xcd, 0, 1, b'n', b'm', b'a', b'p'];
        let sum = checksum::checksum(&req);
        req[2..4].copy_from_slice(&sum.to_be_bytes());
        t.send_raw(&datagram(1, &req));
        let (ty, got_code, rest) = icmp_out(&t.host.pop_output().expect("an echo reply"));
        assert_eq!((ty, got_code), (0, code));
        assert_eq!(rest, &req[4..]);
    }
    assert_eq!(t.host.counters.icmp_echo, 2);
}

#[test]
fn ip_ids_to_one_peer_do_not_count_packets_to_others() {
    let mut t = Peer::listening();
    let id_of = |pkt: &[u8]| u16::from_be_bytes([pkt[4], pkt[5]]);
    let mut ping = vec![8, 0, 0, 0, 0, 1, 0, 1];
    let sum = checksum::checksum(&ping);
    ping[2..4].copy_from_slice(&sum.to_be_bytes());
    let from = |src: Ipv4Addr| {
        let mut p = Vec::new();
        ipv4::write_header(src, HOST_IP, 1, ping.len(), 1, &mut p);
        p.extend_from_slice(&ping);
        p
    };
    // What an idle scan does: ask the "zombie" for a packet, make it send elsewhere, ask again.
    t.send_raw(&from(PEER_IP));
    let first = id_of(&t.host.pop_output().unwrap());
    let mut other_ids = Vec::new();
    for i in 3..=40u8 {
        t.send_raw(&from(Ipv4Addr::new(10, 7, 0, i)));
        other_ids.push(id_of(&t.host.pop_output().unwrap()));
    }
    t.send_raw(&from(PEER_IP));
    let second = id_of(&t.host.pop_output().unwrap());
    // Most other destinations have counters of their own (a few may share the peer's).
    assert!(
        second.wrapping_sub(first) < 5,
        "38 packets elsewhere moved the peer's ID by {}",
        second.wrapping_sub(first)
    );
    let distinct: std::collections::HashSet<u16> = other_ids.iter().copied().collect();
    assert!(distinct.len() > 30, "IDs to different hosts are unrelated: {other_ids:?}");
}

#[test]
fn syn_fin_on_a_synchronized_connection_is_judged_as_a_syn() {
    // Only a SYN+FIN that would open a connection is dropped; on an established one it is an
    // in-window SYN, answered with a challenge ACK (RFC 5961 §4), as FreeBSD and Linux do.
    let (mut t, iss) = established();
    t.send(syn().seq(1200).flags(TcpFlags::SYN | TcpFlags::FIN));
    let c = t.expect();
    assert_eq!((c.flags, c.ack, c.seq), (TcpFlags::ACK, 1001, iss + 1));
    assert_eq!(t.state(), State::Established);
    assert_eq!(drops(&t, DropReason::SynFin), 0);
}

#[test]
fn syn_fin_is_a_syn_when_dropping_is_off() {
    let mut t = Peer::listening_with(HostConfig { drop_syn_fin: false, ..config() });
    t.send(syn().seq(PEER_ISS).flags(TcpFlags::SYN | TcpFlags::FIN));
    assert_eq!(t.expect().flags, TcpFlags::SYN | TcpFlags::ACK);
}
