//! TCP segmentation offload and its receive side, with the device left out: `tso_max` lets
//! the connection hand the device segments of many MSS, each marked with the payload per wire
//! segment; segments longer than the MSS (a kernel's GRO or TSO) are accepted whole; a TCP
//! checksum the device vouches for is not verified again.

use std::net::SocketAddrV4;
use std::time::Duration;

use super::*;
use crate::device::PacketMeta;
use crate::tcp::config::MAX_TSO_PAYLOAD;
use crate::wire::DropReason;

fn tso_config() -> HostConfig {
    let mut cfg = config();
    cfg.tcp.tso_max = MAX_TSO_PAYLOAD;
    cfg.tcp.send_buf = 400_000;
    cfg.tcp.recv_buf = 100_000;
    cfg
}

#[test]
fn tso_sends_super_segments_within_cwnd_and_peer_window() {
    // Peer MSS 1000, no timestamps: 1000 payload bytes per wire segment; initial cwnd 10 000.
    let (mut t, iss) = established_with(tso_config());
    let base = iss.wrapping_add(1);
    assert_eq!(t.app_write(&vec![7u8; 300_000]), 300_000);
    let s = t.expect();
    assert_eq!((s.seq, s.len(), s.gso), (base, 10_000, 1000), "the initial window in one super-segment");
    t.expect_nothing();

    // Slow start grows by the bytes the super-segment carried: cwnd 20 000.
    t.send(ack().seq(PEER_ISS + 1).ack(base + 10_000));
    let s = t.expect();
    assert_eq!((s.seq, s.len(), s.gso), (base + 10_000, 20_000, 1000));
    t.expect_nothing();

    // cwnd 40 000, but the peer offers only 25 000: the window bounds the super-segment.
    t.send(ack().seq(PEER_ISS + 1).ack(base + 30_000).win(25_000));
    let s = t.expect();
    assert_eq!((s.seq, s.len(), s.gso), (base + 30_000, 25_000, 1000));
    t.expect_nothing();

    // With room in both windows a segment stops at a whole number of MSS below 64 KiB.
    t.send(ack().seq(PEER_ISS + 1).ack(base + 55_000).win(65_535));
    let s = t.expect();
    assert_eq!((s.len(), s.gso), (65_000, 1000));
    assert!(s.len() + 40 <= 65_535);
    // An ACK the host sends on its own is an ordinary packet.
    t.send(ack().seq(PEER_ISS + 1).ack(base + 55_000).data(b"hi"));
    let a = t.expect();
    assert_eq!((a.len(), a.gso), (0, 0));
    assert!(t.host.counters.super_segs_out >= 4);
}

#[test]
fn without_tso_every_segment_is_at_most_one_mss() {
    let mut cfg = tso_config();
    cfg.tcp.tso_max = 0;
    let (mut t, _) = established_with(cfg);
    t.app_write(&vec![1u8; 50_000]);
    let mut n = 0;
    while let Some(s) = t.next() {
        assert!(s.len() <= 1000 && s.gso == 0);
        n += 1;
    }
    assert_eq!(n, 10, "the initial window, one MSS at a time");
}

#[test]
fn a_segment_longer_than_the_mss_is_accepted_and_acked_at_once() {
    let mut cfg = tso_config();
    cfg.tcp.delayed_ack = Duration::from_millis(40);
    let (mut t, iss) = established_with(cfg);
    let data: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    t.send(ack().seq(PEER_ISS + 1).ack(iss.wrapping_add(1)).data(&data));
    // More than two full segments' worth: no delayed ACK (RFC 5681 §4.2 counts bytes).
    let a = t.expect();
    assert_eq!(a.ack, PEER_ISS + 1 + 30_000);
    assert_eq!(t.app_read(), data);
    assert_eq!(t.host.counters.super_segs_in, 1);
}

#[test]
fn a_checksum_the_device_vouches_for_is_not_verified_again() {
    let (mut t, iss) = established_with(tso_config());
    let hdr = TcpHeaderOut {
        seq: SeqNum(PEER_ISS + 1),
        ack: SeqNum(iss.wrapping_add(1)),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 65535,
        ..Default::default()
    };
    let src = SocketAddrV4::new(PEER_IP, PEER_PORT);
    let dst = SocketAddrV4::new(HOST_IP, t.port);
    let mut pkt = Vec::new();
    ipv4::build_tcp_partial(src, dst, &hdr, &[5u8; 3000], 9, &mut pkt);
    // Not vouched for: a partial checksum is a bad one.
    t.host.handle_packet_meta(t.now, &pkt, PacketMeta::default());
    assert_eq!(t.host.counters.drops.get(&DropReason::BadTcpChecksum), Some(&1));
    t.expect_nothing();
    // The kernel made it and vouches for it (NEEDS_CSUM): taken, and the IPv4 header
    // checksum is still checked.
    let trusted = PacketMeta { gso_size: 1000, csum_partial: true, csum_trusted: true };
    let mut bad_ip = pkt.clone();
    bad_ip[8] ^= 1; // TTL, under the header checksum
    t.host.handle_packet_meta(t.now, &bad_ip, trusted);
    assert_eq!(t.host.counters.drops.get(&DropReason::BadIpChecksum), Some(&1));
    t.host.handle_packet_meta(t.now, &pkt, trusted);
    let a = t.expect();
    assert_eq!(a.ack, PEER_ISS + 1 + 3000);
    assert_eq!(t.app_read(), vec![5u8; 3000]);
}

#[test]
fn a_batch_of_in_order_arrivals_is_acked_once_at_its_end() {
    let (mut t, iss) = established_with(tso_config());
    let ack_to = iss.wrapping_add(1);
    t.host.begin_batch();
    for i in 0..3u32 {
        t.send(ack().seq(PEER_ISS + 1 + i * 1000).ack(ack_to).data(&[i as u8; 1000]));
    }
    t.expect_nothing();
    t.host.end_batch(t.now);
    let a = t.expect();
    assert_eq!(a.ack, PEER_ISS + 1 + 3000, "one cumulative ACK");
    t.expect_nothing();

    // A gap is answered at once, inside the batch: duplicate ACKs are what fast retransmit counts.
    t.host.begin_batch();
    t.send(ack().seq(PEER_ISS + 1 + 4000).ack(ack_to).data(&[9u8; 1000]));
    let dup = t.expect();
    assert_eq!(dup.ack, PEER_ISS + 1 + 3000);
    t.send(ack().seq(PEER_ISS + 1 + 5000).ack(ack_to).data(&[9u8; 1000]));
    assert_eq!(t.expect().ack, PEER_ISS + 1 + 3000, "a second duplicate, not held");
    t.host.end_batch(t.now);
    t.expect_nothing();
}
