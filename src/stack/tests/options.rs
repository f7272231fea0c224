//! RFC 7323 timestamps and window scaling, RFC 2018 SACK blocks.

use super::*;

fn ts(o: &TcpOptions) -> (u32, u32) {
    o.timestamps.expect("timestamps on the segment")
}

/// An established connection where the peer offered timestamps and SACK.
fn established_with_options() -> (Peer, u32) {
    let mut t = Peer::listening();
    let mut s = syn().seq(PEER_ISS).mss(1000);
    s.hdr.options.timestamps = Some((5000, 0));
    s.hdr.options.sack_permitted = true;
    t.send(s);
    let sa = t.expect();
    assert!(sa.options.sack_permitted);
    let (_, ecr) = ts(&sa.options);
    assert_eq!(ecr, 5000, "the SYN,ACK echoes the SYN's timestamp");
    let mut a = ack().seq(PEER_ISS + 1).ack(sa.seq.wrapping_add(1));
    a.hdr.options.timestamps = Some((5001, ts(&sa.options).0));
    t.send(a);
    t.accept();
    (t, sa.seq)
}

fn with_ts(mut o: Out, val: u32, ecr: u32) -> Out {
    o.hdr.options.timestamps = Some((val, ecr));
    o
}

#[test]
fn no_timestamps_or_sack_unless_offered() {
    let mut t = Peer::listening();
    t.send(syn().seq(1));
    let sa = t.expect();
    assert_eq!(sa.options.timestamps, None);
    assert!(!sa.options.sack_permitted);
}

#[test]
fn timestamps_are_echoed_on_every_segment() {
    let (mut t, iss) = established_with_options();
    t.send(with_ts(ack().seq(1001).ack(iss + 1).data(b"hi"), 6000, 0));
    let a = t.expect();
    assert_eq!(ts(&a.options).1, 6000);
    t.app_write(b"reply");
    let d = t.expect();
    assert_eq!(ts(&d.options).1, 6000);
    assert!(ts(&d.options).0 >= ts(&a.options).0, "our clock does not go back");
}

#[test]
fn segments_shrink_by_the_timestamp_option() {
    let (mut t, _) = established_with_options();
    t.app_write(&[0u8; 2000]);
    assert_eq!(t.expect().len(), 988, "MSS 1000 less 12 bytes of timestamp option");
}

#[test]
fn paws_drops_an_old_timestamp() {
    let (mut t, iss) = established_with_options();
    t.send(with_ts(ack().seq(1001).ack(iss + 1).data(b"new"), 7000, 0));
    t.expect();
    t.send(with_ts(ack().seq(1004).ack(iss + 1).data(b"old"), 6999, 0));
    let a = t.expect();
    assert_eq!(a.ack, 1004, "not accepted");
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::StaleTimestamp), Some(&1));
}

#[test]
fn with_timestamps_the_round_trip_is_timed_to_the_microsecond() {
    // The echo counts milliseconds: a 250 µs path would read 0 ms on every ACK.
    let mut t = Peer::listening();
    let mut s = syn().seq(PEER_ISS).mss(1000);
    s.hdr.options.timestamps = Some((5000, 0));
    t.send(s);
    let sa = t.expect();
    t.advance(Duration::from_micros(250));
    t.send(with_ts(ack().seq(PEER_ISS + 1).ack(sa.seq.wrapping_add(1)), 5001, ts(&sa.options).0));
    t.accept();
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().srtt(), Some(Duration::from_micros(250)), "the handshake's round trip");
    t.app_write(b"x");
    let d = t.expect();
    t.advance(Duration::from_micros(450));
    t.send(with_ts(ack().seq(PEER_ISS + 1).ack(sa.seq.wrapping_add(2)), 5002, ts(&d.options).0));
    // 7/8 × 250 + 1/8 × 450
    assert_eq!(t.host.conn(id).unwrap().srtt(), Some(Duration::from_micros(275)));
}

#[test]
fn the_ack_of_a_retransmission_is_timed_by_the_timestamp_echo() {
    let (mut t, iss) = established_with_options();
    let id = t.conn.unwrap();
    t.app_write(b"x");
    t.expect();
    let before = t.host.conn(id).unwrap().srtt().unwrap();
    t.advance(Duration::from_millis(200));
    let again = t.expect();
    assert_eq!(again.seq, iss + 1, "the retransmission");
    t.advance(Duration::from_millis(30));
    // The echo names the copy it answers, so Karn's ambiguity does not arise.
    t.send(with_ts(ack().seq(1001).ack(iss + 2), 6000, ts(&again.options).0));
    let srtt = t.host.conn(id).unwrap().srtt().unwrap();
    assert!(srtt > before + Duration::from_millis(3), "a 30 ms sample moved SRTT from {before:?}: {srtt:?}");
    // Without timestamps the same ACK leaves SRTT alone: reliability.rs checks Karn's rule.
}

#[test]
fn data_carrying_sack_blocks_shrinks_to_fit_the_mss() {
    let (mut t, iss) = established_with_options();
    // Three separate out-of-order pieces: our segments now carry three SACK blocks.
    for k in 0..3u32 {
        t.send(with_ts(ack().seq(1101 + 200 * k).ack(iss + 1).data(&[1u8; 100]), 6000, 0));
        t.expect();
    }
    t.app_write(&[0u8; 3000]);
    let segs: Vec<Got> = std::iter::from_fn(|| t.next()).collect();
    for g in &segs {
        assert_eq!(g.options.sack_blocks().len(), 3);
        // RFC 6691: payload and options within the MSS, so the packet stays within the MTU.
        assert!(g.len() as usize + g.options.encoded_len() <= 1000, "{} + {}", g.len(), g.options.encoded_len());
    }
    assert_eq!(segs[0].len(), 1000 - 12 - 28, "timestamps and three blocks: 40 bytes of options");
    // The gaps filled: full segments again.
    t.send(with_ts(ack().seq(1001).ack(iss + 1).data(&[1u8; 100]), 6001, 0));
    t.send(with_ts(ack().seq(1201).ack(iss + 1).data(&[1u8; 100]), 6001, 0));
    t.send(with_ts(ack().seq(1401).ack(iss + 1).data(&[1u8; 100]), 6001, 0));
    while t.next().is_some() {}
    // Three segments of 960, full at that size, and the 120-byte tail: Nagle (Minshall's
    // variant) holds a tail only behind another small segment.
    assert_eq!(segs.iter().map(|g| g.len()).collect::<Vec<_>>(), [960, 960, 960, 120]);
    t.send(with_ts(ack().seq(1601).ack(iss + 3001), 6002, 0));
    t.expect_nothing();
    t.app_write(&[0u8; 2000]);
    assert_eq!(t.expect().len(), 988, "no blocks to carry: a full segment again");
}

#[test]
fn sack_blocks_describe_out_of_order_data_latest_first() {
    let (mut t, iss) = established_with_options();
    t.send(with_ts(ack().seq(1101).ack(iss + 1).data(&[1u8; 100]), 6000, 0));
    let a = t.expect();
    assert_eq!(a.ack, 1001);
    assert_eq!(a.options.sack_blocks(), &[(SeqNum(1101), SeqNum(1201))]);
    t.send(with_ts(ack().seq(1301).ack(iss + 1).data(&[1u8; 100]), 6001, 0));
    let b = t.expect();
    assert_eq!(b.options.sack_blocks(), &[(SeqNum(1301), SeqNum(1401)), (SeqNum(1101), SeqNum(1201))]);
    // Fill the first gap: the ACK moves and the remaining block is reported.
    t.send(with_ts(ack().seq(1001).ack(iss + 1).data(&[1u8; 100]), 6002, 0));
    let c = t.expect();
    assert_eq!(c.ack, 1201);
    assert_eq!(c.options.sack_blocks(), &[(SeqNum(1301), SeqNum(1401))]);
    t.send(with_ts(ack().seq(1201).ack(iss + 1).data(&[1u8; 100]), 6003, 0));
    let d = t.expect();
    assert_eq!(d.ack, 1401);
    assert!(d.options.sack_blocks().is_empty());
}

#[test]
fn sack_blocks_repeat_the_most_recent_ones_not_the_lowest() {
    let (mut t, iss) = established_with_options();
    // Four holes' worth of blocks, arriving highest first, then one more arrival in the
    // lowest block. With timestamps there is room for three blocks: the latest arrival's
    // block, then the blocks of the arrivals just before it (RFC 2018 §4), so a block whose
    // first report was lost is repeated in the next ACKs.
    for (i, seq) in [1701u32, 1501, 1301, 1101].into_iter().enumerate() {
        t.send(with_ts(ack().seq(seq).ack(iss + 1).data(&[1u8; 100]), 6000 + i as u32, 0));
        t.expect();
    }
    t.send(with_ts(ack().seq(1801).ack(iss + 1).data(&[1u8; 100]), 6010, 0));
    let a = t.expect();
    assert_eq!(
        a.options.sack_blocks(),
        &[(SeqNum(1701), SeqNum(1901)), (SeqNum(1101), SeqNum(1201)), (SeqNum(1301), SeqNum(1401))],
        "latest first, then by recency (1101 then 1301), not the lowest ones"
    );
}

#[test]
fn a_duplicate_segment_is_reported_once_as_a_dsack_block() {
    let (mut t, iss) = established_with_options();
    t.send(with_ts(ack().seq(1001).ack(iss + 1).data(&[1u8; 100]), 6000, 0));
    assert_eq!(t.expect().ack, 1101);
    // The same segment again: a spurious retransmission. RFC 2883: the ACK's first SACK
    // block names the duplicate, below the cumulative ACK.
    t.send(with_ts(ack().seq(1001).ack(iss + 1).data(&[1u8; 100]), 6001, 0));
    let d = t.expect();
    assert_eq!(d.ack, 1101);
    assert_eq!(d.options.sack_blocks(), &[(SeqNum(1001), SeqNum(1101))]);
    // Only once.
    t.send(with_ts(ack().seq(1101).ack(iss + 1).data(&[1u8; 10]), 6002, 0));
    let n = t.expect();
    assert!(n.options.sack_blocks().is_empty());
    // Partly new data: the old part is the D-SACK, the new part is taken.
    t.send(with_ts(ack().seq(1061).ack(iss + 1).data(&[1u8; 100]), 6003, 0));
    let p = t.expect();
    assert_eq!(p.ack, 1161);
    assert_eq!(p.options.sack_blocks(), &[(SeqNum(1061), SeqNum(1111))]);
}

#[test]
fn window_scale_applies_in_both_directions() {
    let mut cfg = config();
    cfg.tcp.recv_buf = 1 << 20;
    let mut t = Peer::listening_with(cfg);
    t.send(syn().seq(1).mss(1000).wscale(4));
    let sa = t.expect();
    let ours = sa.options.window_scale.unwrap();
    assert_eq!(ours, 5, "1 MiB needs a shift of 5");
    t.send(ack().seq(2).ack(sa.seq.wrapping_add(1)).win(10)); // 10 << 4 = 160 bytes
    t.accept();
    t.app_write(&[0u8; 1000]);
    assert_eq!(t.expect().len(), 160, "their window, scaled by their shift");
    t.send(ack().seq(2).ack(sa.seq.wrapping_add(161)).win(1000).data(b"x"));
    let a = t.expect();
    assert_eq!(u32::from(a.window) << ours, ((1 << 20) - 1) & !31, "our window, scaled by our shift");
}

#[test]
fn sack_recovery_resends_each_hole_once_on_successive_duplicate_acks() {
    let mut cfg = config();
    cfg.tcp.send_buf = 64 * 1024;
    let (mut t, iss) = established_sack_with(cfg, 65535);
    t.app_write(&[9u8; 8000]);
    for _ in 0..8 {
        t.expect();
    }
    // Segments 0, 2 and 4 are lost; each later arrival draws a duplicate ACK with SACK.
    let seg = |k: u32| (SeqNum(iss + 1 + 1000 * k), SeqNum(iss + 1 + 1000 * (k + 1)));
    let dup = |blocks: &[(SeqNum, SeqNum)]| {
        let mut a = ack().seq(PEER_ISS + 1).ack(iss + 1);
        for (i, b) in blocks.iter().enumerate() {
            a.hdr.options.sack[i] = *b;
        }
        a.hdr.options.sack_len = blocks.len() as u8;
        a
    };
    t.send(dup(&[seg(1)]));
    t.send(dup(&[seg(3), seg(1)]));
    t.expect_nothing();
    t.send(dup(&[seg(5), seg(3), seg(1)]));
    assert_eq!(t.expect().seq, iss + 1, "third duplicate: fast retransmit of the first hole");
    t.send(dup(&[(seg(5).0, seg(6).1), seg(3), seg(1)]));
    assert_eq!(t.expect().seq, iss + 2001, "the next hole, not a repeat");
    t.send(dup(&[(seg(5).0, seg(7).1), seg(3), seg(1)]));
    assert_eq!(t.expect().seq, iss + 4001, "and the last");
    t.send(dup(&[(seg(5).0, seg(7).1), seg(3), seg(1)]));
    assert!(std::iter::from_fn(|| t.next()).all(|g| g.len() == 0), "every hole resent once");
    // The peer now has everything.
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 8001));
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().buffered().1, 0);
}
