//! Retransmission: RTO timing and backoff, Karn, fast retransmit, zero-window probes.

use std::time::Duration;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn lost_data_is_retransmitted_after_rto_with_backoff() {
    let (mut t, iss) = established();
    t.app_write(b"data");
    let d = t.expect();
    // First RTO after a handshake measured at 0 ms RTT: the 200 ms floor.
    t.advance(ms(199));
    t.expect_nothing();
    t.advance(ms(1));
    let r1 = t.expect();
    assert_eq!((r1.seq, r1.payload.as_slice()), (d.seq, &b"data"[..]));
    t.advance(ms(399));
    t.expect_nothing();
    t.advance(ms(1));
    assert_eq!(t.expect().seq, d.seq, "backed off to 400 ms");
    t.send(ack().seq(1001).ack(iss + 5));
    t.advance(ms(10_000));
    t.expect_nothing();
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().stats.retransmits, 2);
}

#[test]
fn rtt_samples_set_the_rto_and_karn_ignores_retransmitted_data() {
    let (mut t, iss) = established();
    let id = t.conn.unwrap();
    t.app_write(b"a");
    t.expect();
    t.advance(ms(100));
    t.send(ack().seq(1001).ack(iss + 2));
    // Handshake sample 0 ms, then 100 ms: srtt = 12.5 ms, rttvar = 3/4*0 + 100/4 = 25 ms
    // (first sample set rttvar to 0): rto = max(200, 12.5 + 100) = 200 ms.
    assert_eq!(t.host.conn(id).unwrap().rto(), ms(200));
    t.app_write(b"b");
    t.expect();
    t.advance(ms(200));
    t.expect(); // retransmission
    t.advance(ms(5000));
    t.expect(); // and again, at 400 ms backoff
    let before = t.host.conn(id).unwrap().srtt();
    t.send(ack().seq(1001).ack(iss + 3));
    assert_eq!(t.host.conn(id).unwrap().srtt(), before, "no sample from retransmitted data");
}

#[test]
fn gives_up_after_max_retries_with_rst_and_timed_out() {
    let mut cfg = config();
    cfg.tcp.max_retries = 3;
    let (mut t, _) = established_with(cfg);
    t.app_write(b"x");
    t.expect();
    for _ in 0..3 {
        t.advance(ms(60_000));
        assert_eq!(t.expect().payload, b"x");
    }
    t.advance(ms(60_000));
    assert_eq!(t.expect().flags, TcpFlags::RST);
    assert_eq!(t.app_read_result().unwrap_err().kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn three_duplicate_acks_trigger_one_fast_retransmit() {
    let mut cfg = config();
    cfg.tcp.send_buf = 64 * 1024;
    let (mut t, iss) = established_with(cfg);
    t.app_write(&[1u8; 6000]);
    let segs: Vec<Got> = (0..6).map(|_| t.expect()).collect();
    assert_eq!(segs[5].seq, iss + 5001);
    // The first is lost; the next three arrive and each draws a duplicate ACK.
    for _ in 0..2 {
        t.send(ack().seq(1001).ack(iss + 1));
        t.expect_nothing();
    }
    t.send(ack().seq(1001).ack(iss + 1));
    let r = t.expect();
    assert_eq!((r.seq, r.len()), (iss + 1, 1000));
    t.send(ack().seq(1001).ack(iss + 1));
    t.send(ack().seq(1001).ack(iss + 1));
    let still: Vec<Got> = std::iter::from_fn(|| t.next()).filter(|g| g.seq == iss + 1).collect();
    assert!(still.is_empty(), "only one fast retransmission");
    t.send(ack().seq(1001).ack(iss + 6001));
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().buffered().1, 0);
}

#[test]
fn cwnd_collapses_to_one_segment_after_rto() {
    let mut cfg = config();
    cfg.tcp.send_buf = 64 * 1024;
    let (mut t, iss) = established_with(cfg);
    t.app_write(&[1u8; 5000]);
    for _ in 0..5 {
        t.expect();
    }
    t.advance(ms(200));
    let r = t.expect();
    assert_eq!(r.seq, iss + 1);
    t.expect_nothing();
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().cwnd(), 1000);
    // The ACK for it lets two more out (slow start).
    t.send(ack().seq(1001).ack(iss + 1001));
    assert_eq!(t.expect().seq, iss + 1001);
    assert_eq!(t.expect().seq, iss + 2001);
    t.expect_nothing();
}

#[test]
fn zero_window_is_probed_with_backoff_and_never_given_up() {
    let mut cfg = config();
    cfg.tcp.max_retries = 2;
    let (mut t, iss) = established_with(cfg);
    t.send(ack().seq(1001).ack(iss + 1).win(0));
    t.app_write(b"blocked");
    t.expect_nothing();
    t.advance(ms(200));
    let p = t.expect();
    assert_eq!((p.seq, p.len()), (iss + 1, 1), "a one-byte probe");
    t.send(ack().seq(1001).ack(iss + 1).win(0));
    t.advance(ms(399));
    t.expect_nothing();
    t.advance(ms(1));
    assert_eq!(t.expect().len(), 1, "backed off to 400 ms");
    for _ in 0..5 {
        t.send(ack().seq(1001).ack(iss + 1).win(0));
        t.advance(ms(60_000));
        assert_eq!(t.expect().len(), 1);
    }
    assert_eq!(t.state(), State::Established, "a live zero window is no reason to give up");
    // The window opens: everything goes.
    t.send(ack().seq(1001).ack(iss + 1).win(1000));
    let d = t.expect();
    assert_eq!((d.seq, d.payload.as_slice()), (iss + 1, &b"blocked"[..]));
}

#[test]
fn pure_acks_carry_snd_max_after_a_timeout_rewinds_snd_nxt() {
    // Found by the simulated-network property test: after an RTO, SND.NXT goes back to
    // SND.UNA. An ACK sent with that sequence number is below the peer's RCV.NXT when the
    // peer had received the data, so the peer drops it whole; two sides retransmitting at
    // once then ignore each other's ACKs forever.
    let mut cfg = config();
    cfg.tcp.send_buf = 64 * 1024;
    let (mut t, iss) = established_with(cfg);
    t.app_write(&[1u8; 3000]);
    for _ in 0..3 {
        t.expect();
    }
    t.advance(ms(200));
    assert_eq!(t.expect().seq, iss + 1, "the timeout resends from SND.UNA");
    t.send(ack().seq(1001).ack(iss + 1).data(b"x"));
    let a = t.expect();
    assert_eq!(a.len(), 0);
    assert_eq!(a.seq, iss + 3001, "SND.MAX, which the peer's window accepts");
}

#[test]
fn limited_transmit_sends_new_data_on_the_first_two_duplicate_acks() {
    let mut cfg = config();
    cfg.tcp.send_buf = 64 * 1024;
    // A small peer window: three segments in flight, more data waiting.
    let (mut t, iss) = established_sack_with(cfg, 3000);
    t.app_write(&[1u8; 10_000]);
    for _ in 0..3 {
        t.expect();
    }
    t.expect_nothing();
    // The first is lost. Without RFC 3042 nothing more could go and only two duplicate
    // ACKs would ever come back; with it, each duplicate lets one new segment out. The
    // receiver also opens its window as it goes, as Linux does: with SACK blocks these
    // still count as duplicates.
    let dup = |k: u32| {
        let mut a = ack().seq(PEER_ISS + 1).ack(iss + 1).win(3000 + 1000 * k as u16);
        a.hdr.options.sack[0] = (SeqNum(iss + 1001), SeqNum(iss + 1001 + 1000 * k));
        a.hdr.options.sack_len = 1;
        a
    };
    t.send(dup(1));
    assert_eq!(t.expect().seq, iss + 3001);
    t.send(dup(2));
    assert_eq!(t.expect().seq, iss + 4001);
    t.send(dup(3));
    let r = t.expect();
    assert_eq!((r.seq, r.len()), (iss + 1, 1000), "the third duplicate: fast retransmit");
}

fn early_config() -> HostConfig {
    let mut cfg = config();
    cfg.tcp.early_retransmit = true;
    cfg.tcp.send_buf = 64 * 1024;
    cfg
}

/// Established, with a 10 ms round trip measured after the handshake's 0 ms.
fn with_rtt(mut t: Peer, iss: u32) -> Peer {
    t.app_write(b"x");
    t.expect();
    t.advance(ms(10));
    t.send(ack().seq(1001).ack(iss + 2));
    t
}

#[test]
fn tail_loss_probe_resends_the_last_segment_after_two_round_trips() {
    let (t, iss) = established_with(early_config());
    let mut t = with_rtt(t, iss);
    t.app_write(&[1u8; 3000]);
    for _ in 0..3 {
        t.expect();
    }
    // SRTT is 1.25 ms (samples of 0 and 10 ms): the probe goes at 2 × SRTT, long before the
    // 200 ms retransmission timer.
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().srtt(), Some(Duration::from_micros(1250)));
    t.advance(ms(2));
    t.expect_nothing();
    t.advance(ms(1));
    let probe = t.expect();
    assert_eq!((probe.seq, probe.len()), (iss + 2002, 1000), "the last segment again");
    // Only one probe; then the retransmission timer as before.
    t.advance(ms(100));
    t.expect_nothing();
}

#[test]
fn a_lone_fin_is_probed_again_before_the_retransmission_timer() {
    let (t, iss) = established_with(early_config());
    let mut t = with_rtt(t, iss);
    // All data acknowledged; the FIN goes and is lost.
    t.app_shutdown();
    let fin = t.expect();
    assert_eq!((fin.flags, fin.seq, fin.len()), (TcpFlags::FIN | TcpFlags::ACK, iss + 2, 0));
    // One segment out: the probe waits 2 × SRTT plus the peer's delayed-ACK time (40 ms).
    t.advance(ms(40));
    t.expect_nothing();
    t.advance(ms(3));
    let probe = t.expect();
    assert_eq!((probe.flags, probe.seq), (TcpFlags::FIN | TcpFlags::ACK, iss + 2), "the FIN again, 150 ms early");
    t.send(ack().seq(1001).ack(iss + 3));
    assert_eq!(t.state(), State::FinWait2);
}

#[test]
fn a_sacked_hole_is_resent_after_a_round_trip_without_three_duplicates() {
    let mut cfg = early_config();
    cfg.tcp.sack = true;
    let (t, iss) = established_sack_with(cfg, 65535);
    let mut t = with_rtt(t, iss);
    t.app_write(&[2u8; 2000]);
    t.expect();
    t.expect();
    // The first is lost; the second arrives: one duplicate ACK with a SACK block, then
    // silence (the peer's other ACKs were lost, or there was nothing more to send).
    let mut a = ack().seq(1001).ack(iss + 2);
    a.hdr.options.sack[0] = (SeqNum(iss + 1002), SeqNum(iss + 2002));
    a.hdr.options.sack_len = 1;
    t.send(a);
    t.expect_nothing();
    // SRTT × 5/4 is under 2 ms: the floor of 2 ms applies.
    t.advance(ms(1));
    t.expect_nothing();
    t.advance(ms(1));
    let r = t.expect();
    assert_eq!((r.seq, r.len()), (iss + 2, 1000), "resent after about a round trip, not after 200 ms");
}

#[test]
fn recovery_sends_new_data_while_the_flight_is_below_ssthresh() {
    let mut cfg = config();
    cfg.tcp.send_buf = 64 * 1024;
    // The peer's window holds four segments; more data waits.
    let (mut t, iss) = established_sack_with(cfg, 4000);
    t.app_write(&[3u8; 30_000]);
    for _ in 0..4 {
        t.expect();
    }
    t.expect_nothing();
    // The first is lost, the other three arrive and are SACKed; the third duplicate also
    // opens the window (the application read).
    let dup = |k: u32, win: u16| {
        let mut a = ack().seq(PEER_ISS + 1).ack(iss + 1).win(win);
        a.hdr.options.sack[0] = (SeqNum(iss + 1001), SeqNum(iss + 1001 + 1000 * k));
        a.hdr.options.sack_len = 1;
        a
    };
    t.send(dup(1, 4000));
    t.send(dup(2, 4000));
    t.expect_nothing();
    t.send(dup(3, 60000));
    let rexmit = t.expect();
    assert_eq!((rexmit.seq, rexmit.len()), (iss + 1, 1000), "fast retransmit of the hole");
    // Only the retransmission is in flight now (1,000 bytes), below ssthresh (2,000). If it
    // is lost, no ACK will come unless something else is sent: recovery sends new data
    // (RFC 6675 §5: while cwnd - pipe >= 1 SMSS) instead of going silent until the timeout.
    let new = t.expect();
    assert_eq!((new.seq, new.len()), (iss + 4001, 1000), "new data during recovery");
    t.expect_nothing();
}
