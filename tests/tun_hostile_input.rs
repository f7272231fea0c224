//! What outside tools found, replayed on a real TUN inside the test's own namespace:
//!
//! 1. A peer that offers a 1-byte window, then closes it with a byte in flight, fetching a
//!    1,000,000-byte body: synack never sends past the window it offered (no tail loss probe
//!    of the body's last MSS with FIN), and probes the closed window a byte at a time.
//! 2. Sources no host may use (0/8, 240/4, the subnet's broadcast, synack's own address) and
//!    SYN+FIN get no SYN-ACK, each counted under its reason.
//! 3. nmap: a UDP scan finds the ports closed (ICMP port unreachable), an IP protocol scan
//!    finds an unknown protocol closed; an echo request with code 9 (nmap's IE probe) is
//!    answered with code 9; and the IPv4 IDs of replies to one host do not count the
//!    packets sent to others (no idle-scan zombie).
//!
//! The raw peer writes its packets onto `synack0` with an AF_PACKET socket, from addresses
//! the namespace's kernel does not own, so the kernel neither answers nor resets for it.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use common::packet_socket::PacketSocket;
use common::*;
use synack::wire::{checksum, ipv4, parse_packet, Packet, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

const PEER: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 9);

/// A TCP segment synack sent to `to`, decoded: (seq, ack, flags, window, payload length).
type Seg = (u32, u32, TcpFlags, u16, u32);

/// Packets synack wrote to the TUN since the last call, as TCP segments to `to`.
fn segments_to(sock: &PacketSocket, to: Ipv4Addr) -> Vec<Seg> {
    let mut out = Vec::new();
    for (pkt, outgoing) in sock.drain() {
        if outgoing {
            continue;
        }
        if let Ok(Packet::Tcp(s)) = parse_packet(to, &pkt) {
            out.push((s.seq.0, s.ack.0, s.flags, s.window, s.payload.len() as u32));
        }
    }
    out
}

fn tcp(from: SocketAddrV4, to: SocketAddrV4, seq: u32, ack: u32, flags: TcpFlags, window: u16, data: &[u8]) -> Vec<u8> {
    let hdr = TcpHeaderOut {
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        window,
        options: if flags.contains(TcpFlags::SYN) {
            TcpOptions { mss: Some(1460), ..Default::default() }
        } else {
            TcpOptions::default()
        },
    };
    let mut pkt = Vec::new();
    ipv4::build_tcp(from, to, &hdr, data, 1, &mut pkt);
    pkt
}

/// Wait up to `within` for segments to `to` that `done` accepts, collecting all of them.
fn collect(sock: &PacketSocket, to: Ipv4Addr, within: Duration, done: impl Fn(&[Seg]) -> bool) -> Vec<Seg> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while Instant::now() < deadline {
        got.extend(segments_to(sock, to));
        if done(&got) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    got
}

#[test]
fn a_window_closed_with_a_byte_in_flight_gets_nothing_past_it() {
    let name = "a_window_closed_with_a_byte_in_flight_gets_nothing_past_it";
    let Some(()) = require_root(name) else { return };
    let mut ns = Netns::new("window");
    let srv = ns.serve(&[]);
    let report = ns.run(|| {
        let sock = PacketSocket::open(true);
        let me = SocketAddrV4::new(PEER, 41000);
        let web = stack_addr(80);
        let iss = 5000u32;
        sock.send(&tcp(me, web, iss, 0, TcpFlags::SYN, 64240, b""));
        let got = collect(&sock, PEER, Duration::from_secs(5), |g| g.iter().any(|s| s.2.contains(TcpFlags::SYN)));
        let sa = got.iter().find(|s| s.2 == TcpFlags::SYN | TcpFlags::ACK).expect("a SYN-ACK");
        let server_isn = sa.0;
        // The handshake's ACK carries the request and offers a 1-byte window.
        let req = b"GET /bytes/1000000 HTTP/1.1\r\nConnection: close\r\n\r\n";
        let my_next = iss + 1 + req.len() as u32;
        sock.send(&tcp(me, web, iss + 1, server_isn + 1, TcpFlags::ACK | TcpFlags::PSH, 1, req));
        let first = server_isn + 1;
        let got = collect(&sock, PEER, Duration::from_secs(5), |g| g.iter().any(|s| s.4 > 0));
        let byte = got.iter().find(|s| s.4 > 0).expect("the response's first byte");
        assert_eq!((byte.0, byte.4), (first, 1), "one byte into a one-byte window: {got:?}");
        // Take it, still offering one byte: the next one goes.
        sock.send(&tcp(me, web, my_next, first + 1, TcpFlags::ACK, 1, b""));
        let got = collect(&sock, PEER, Duration::from_secs(5), |g| g.iter().any(|s| s.4 > 0));
        let second = got.iter().find(|s| s.4 > 0).expect("the second byte");
        assert_eq!((second.0, second.4), (first + 1, 1), "{got:?}");
        // Close the window with that byte in flight, and watch for 3 s.
        sock.send(&tcp(me, web, my_next, first + 1, TcpFlags::ACK, 0, b""));
        let watched = collect(&sock, PEER, Duration::from_secs(3), |_| false);
        sock.send(&tcp(me, web, my_next, 0, TcpFlags::RST, 0, b""));
        watched
    });
    let (_, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success() || status.code() == Some(130), "synack exited with {status}: {lines:?}");
    eprintln!("after the window closed, synack sent (seq, ack, flags, window, len): {report:?}");
    // Right edge offered: the second byte's end; only that byte may be resent.
    let data: Vec<&Seg> = report.iter().filter(|s| s.4 > 0 || s.2.contains(TcpFlags::FIN)).collect();
    assert!(!data.is_empty(), "the closed window was never probed in 3 s: {report:?}");
    let probe_seq = data[0].0;
    for s in &data {
        assert!(!s.2.contains(TcpFlags::FIN), "a FIN past the window: {s:?}");
        assert_eq!((s.0, s.4), (probe_seq, 1), "only one-byte probes of the byte in flight: {report:?}");
    }
}

/// An ICMP echo request from `src` with `code`; identifier `id`, sequence `seq`.
fn echo_request(src: Ipv4Addr, code: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut icmp = [&[8u8, code, 0, 0][..], &id.to_be_bytes(), &seq.to_be_bytes(), b"synack-ie"].concat();
    let sum = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut pkt = Vec::new();
    ipv4::write_header(src, STACK_IP, 1, icmp.len(), 1, &mut pkt);
    pkt.extend_from_slice(&icmp);
    pkt
}

/// Echo replies synack wrote since the last call: (to, IPv4 ID, code, sequence).
fn echo_replies(sock: &PacketSocket) -> Vec<(Ipv4Addr, u16, u8, u16)> {
    sock.drain()
        .into_iter()
        .filter(|(p, outgoing)| !outgoing && p.len() >= 28 && p[9] == 1 && p[20] == 0)
        .map(|(p, _)| {
            let to = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            (to, u16::from_be_bytes([p[4], p[5]]), p[21], u16::from_be_bytes([p[26], p[27]]))
        })
        .collect()
}

#[test]
fn bad_sources_syn_fin_icmp_and_ip_ids_with_raw_packets_and_nmap() {
    let name = "bad_sources_syn_fin_icmp_and_ip_ids_with_raw_packets_and_nmap";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "nmap") else { return };
    let mut ns = Netns::new("filter");
    let srv = ns.serve(&[]);

    // Sources no host may use, and SYN+FIN from a good one: no SYN-ACK for any of them.
    let web = stack_addr(80);
    let (answers, replies) = ns.run(move || {
        let sock = PacketSocket::open(true);
        let bad = [Ipv4Addr::new(0, 1, 2, 3), Ipv4Addr::new(240, 1, 2, 3), Ipv4Addr::new(10, 7, 0, 255), STACK_IP];
        for (i, src) in bad.iter().enumerate() {
            let from = if *src == STACK_IP { web } else { SocketAddrV4::new(*src, 42000 + i as u16) };
            sock.send(&tcp(from, web, 1, 0, TcpFlags::SYN, 64240, b""));
        }
        sock.send(&tcp(SocketAddrV4::new(PEER, 42100), web, 1, 0, TcpFlags::SYN | TcpFlags::FIN, 64240, b""));
        std::thread::sleep(Duration::from_millis(500));
        let answers: Vec<(Vec<u8>, bool)> = sock.drain().into_iter().filter(|(p, out)| !out && p[9] == 6).collect();

        // nmap's IE probe: an echo request with code 9. Then the IDs: one reply to .9, forty
        // to other hosts, one more to .9.
        sock.send(&echo_request(PEER, 9, 0x1e, 1));
        for i in 0..40u8 {
            sock.send(&echo_request(Ipv4Addr::new(10, 7, 0, 100 + i), 0, 0x1e, 2));
        }
        sock.send(&echo_request(PEER, 0, 0x1e, 3));
        std::thread::sleep(Duration::from_millis(500));
        (answers, echo_replies(&sock))
    });
    assert!(answers.is_empty(), "synack answered a bad source or a SYN+FIN: {answers:?}");
    let to_peer: Vec<_> = replies.iter().filter(|r| r.0 == PEER).collect();
    assert_eq!(to_peer.len(), 2, "two replies to {PEER}: {replies:?}");
    assert_eq!((to_peer[0].2, to_peer[0].3), (9, 1), "the IE probe answered with its code");
    let moved = to_peer[1].1.wrapping_sub(to_peer[0].1);
    assert!(moved < 5, "forty replies to other hosts moved {PEER}'s IPv4 ID by {moved}: {replies:?}");

    // nmap, from the namespace's kernel (10.7.0.1): UDP ports closed, not open|filtered.
    let udp = ns.sh("timeout 60 nmap -n -Pn -sU -p 53,123,161,5000 --max-retries 2 10.7.0.2");
    let udp_out = String::from_utf8_lossy(&udp.stdout).to_string();
    assert!(udp.status.success(), "nmap -sU failed: {udp_out} {}", String::from_utf8_lossy(&udp.stderr));
    for port in [53, 123, 161, 5000] {
        assert!(udp_out.contains(&format!("{port}/udp")), "nmap -sU did not report {port}: {udp_out}");
    }
    assert!(
        udp_out.contains("4 closed udp ports")
            || udp_out.lines().filter(|l| l.contains("/udp") && l.contains("closed")).count() == 4,
        "every UDP port closed: {udp_out}"
    );
    let proto = ns.sh("timeout 60 nmap -n -Pn -sO -p 6,132 --max-retries 2 10.7.0.2");
    let proto_out = String::from_utf8_lossy(&proto.stdout).to_string();
    assert!(proto.status.success(), "nmap -sO failed: {proto_out}");
    assert!(proto_out.lines().any(|l| l.starts_with("132") && l.contains("closed")), "SCTP closed: {proto_out}");
    assert!(proto_out.lines().any(|l| l.starts_with("6 ") && l.contains("open")), "TCP open: {proto_out}");

    let (_, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success() || status.code() == Some(130), "synack exited with {status}");
    let summary = lines.iter().rev().find(|l| l.contains("drops:")).cloned().unwrap_or_default();
    eprintln!("nmap -sU:\n{udp_out}\nnmap -sO:\n{proto_out}\nsynack: {summary}");
    for (reason, n) in [("martian-source", 2), ("source-broadcast", 1), ("source-is-us", 1), ("syn-fin", 1)] {
        assert!(summary.contains(&format!("{reason}={n}")), "{reason}={n} in {summary}");
    }
    assert!(summary.contains("ICMP unreachables sent"), "{summary}");
}
