//! Probes stay inside the window the peer offered: the tail loss probe sends new data only
//! where the window has room and otherwise the last segment *sent* (not the end of what is
//! queued), and a closed window is the persist timer's, probed a byte at a time.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn probing_config() -> HostConfig {
    let mut cfg = config();
    cfg.tcp.early_retransmit = true;
    cfg.tcp.send_buf = 64 * 1024;
    cfg
}

/// Established with the handshake's ACK offering `window` bytes.
fn established_window(window: u16) -> (Peer, u32) {
    let mut t = Peer::listening_with(probing_config());
    t.send(syn().seq(PEER_ISS).mss(1000));
    let iss = t.expect().seq;
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 1).win(window));
    t.accept();
    (t, iss)
}

/// Everything the host sends over `total`, a millisecond at a time.
fn run_for(t: &mut Peer, total: Duration) -> Vec<Got> {
    let mut got = Vec::new();
    let end = t.now + total;
    while t.now < end {
        t.advance(ms(1));
        got.extend(std::iter::from_fn(|| t.next()));
    }
    got
}

#[test]
fn one_byte_window_closed_with_a_byte_in_flight_gets_nothing_beyond_it() {
    // What a hostile client did to a 1,000,000-byte response: a 1-byte window, then 0 with
    // that byte unacknowledged. The loss probe used to send the queue's last MSS with FIN.
    let (mut t, iss) = established_window(1);
    t.app_write(&[5u8; 60_000]);
    t.app_shutdown();
    let a = t.expect();
    assert_eq!((a.seq, a.len(), a.flags.contains(TcpFlags::FIN)), (iss + 1, 1, false));
    t.expect_nothing();
    // Its ACK (a round trip measured), the window still one byte: the next byte.
    t.advance(ms(2));
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 2).win(1));
    let b = t.expect();
    assert_eq!((b.seq, b.len()), (iss + 2, 1));
    // The window closes with that byte in flight.
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 2).win(0));
    let got = run_for(&mut t, Duration::from_secs(30));
    assert!(!got.is_empty(), "the closed window is probed");
    for g in &got {
        assert!(!g.flags.contains(TcpFlags::FIN), "a FIN past the window: seq {} len {}", g.seq - iss, g.len());
        // Right edge offered: iss + 3 (SND.UNA iss + 2 and the 1-byte window before it closed).
        assert!(g.seq.wrapping_add(g.len()) <= iss + 3, "sent past the window: seq {} len {}", g.seq - iss, g.len());
        assert_eq!((g.seq, g.len()), (iss + 2, 1), "a one-byte probe at SND.UNA");
    }
    // The window opens: data flows from where it stopped, within the new window.
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 3).win(2000));
    let next: Vec<Got> = std::iter::from_fn(|| t.next()).collect();
    assert_eq!(next.iter().map(|g| (g.seq - iss, g.len())).collect::<Vec<_>>(), [(3, 1000), (1003, 1000)]);
}

#[test]
fn loss_probe_of_new_data_fits_the_window() {
    // 2,500 bytes of window: two full segments, then 500 bytes of room that silly window
    // avoidance leaves unused. The probe may use that room, and no more.
    let (mut t, iss) = established_window(2500);
    t.app_write(&[1u8; 1]);
    t.expect();
    t.advance(ms(10));
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 2).win(2500));
    t.app_write(&[1u8; 10_000]);
    let sent: Vec<u32> = std::iter::from_fn(|| t.next()).map(|g| g.len()).collect();
    assert_eq!(sent, [1000, 1000]);
    let probe = run_for(&mut t, ms(150));
    assert_eq!(probe.len(), 1, "one loss probe before the retransmission timer");
    assert_eq!((probe[0].seq - iss, probe[0].len()), (2002, 500), "new data up to the window's edge");
    assert!(!probe[0].flags.contains(TcpFlags::FIN));
}

#[test]
fn loss_probe_with_a_full_window_resends_the_last_segment_sent() {
    let (mut t, iss) = established_window(2000);
    t.app_write(&[1u8; 1]);
    t.expect();
    t.advance(ms(10));
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 2).win(2000));
    t.app_write(&[1u8; 10_000]);
    t.app_shutdown();
    let sent: Vec<u32> = std::iter::from_fn(|| t.next()).map(|g| g.len()).collect();
    assert_eq!(sent, [1000, 1000]);
    let probe = run_for(&mut t, ms(150));
    assert_eq!(probe.len(), 1);
    assert_eq!((probe[0].seq - iss, probe[0].len()), (1002, 1000), "the segment ending at SND.MAX");
    assert!(!probe[0].flags.contains(TcpFlags::FIN), "the FIN was never sent: it is not resent");
    // The probe moved nothing: the peer's ACK of both segments lets the next ones go.
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 2002).win(2000));
    let next: Vec<(u32, u32)> = std::iter::from_fn(|| t.next()).map(|g| (g.seq - iss, g.len())).collect();
    assert_eq!(next, [(2002, 1000), (3002, 1000)]);
}

#[test]
fn loss_probe_after_the_fin_resends_the_fin_with_the_last_data() {
    let (mut t, iss) = established_window(60_000);
    t.app_write(&[1u8; 1]);
    t.expect();
    t.advance(ms(10));
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 2).win(60_000));
    t.app_write(&[1u8; 1500]);
    t.app_shutdown();
    let sent: Vec<Got> = std::iter::from_fn(|| t.next()).collect();
    assert_eq!(sent.iter().map(|g| g.len()).collect::<Vec<_>>(), [1000, 500, 0], "the FIN went after the write");
    assert!(sent[2].flags.contains(TcpFlags::FIN));
    let probe = run_for(&mut t, ms(150));
    assert_eq!(probe.len(), 1);
    assert_eq!((probe[0].seq - iss, probe[0].len()), (502, 1000));
    assert!(probe[0].flags.contains(TcpFlags::FIN), "the last segment sent carried the FIN");
}
