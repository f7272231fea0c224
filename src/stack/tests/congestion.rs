//! Congestion control as the peer sees it: NewReno halves at a loss, BBR keeps its window
//! and sets it from the delivery rate and round trip it times.

use std::time::Duration;

use super::*;
use crate::tcp::congestion::Algorithm;

fn bbr_config() -> HostConfig {
    let mut cfg = config();
    cfg.tcp.congestion = Algorithm::Bbr;
    cfg.tcp.send_buf = 64 * 1024;
    cfg
}

fn sack_dup(iss: u32, from: u32, to: u32) -> Out {
    let mut a = ack().seq(PEER_ISS + 1).ack(iss + 1);
    a.hdr.options.sack[0] = (SeqNum(iss + from), SeqNum(iss + to));
    a.hdr.options.sack_len = 1;
    a
}

/// Ten segments out, the first lost, the next three SACKed: what goes out in recovery.
fn first_of_ten_lost(cfg: HostConfig) -> (Peer, u32, Vec<Got>) {
    let (mut t, iss) = established_sack_with(cfg, 65535);
    t.app_write(&[7u8; 30_000]);
    let first: Vec<Got> = std::iter::from_fn(|| t.next()).collect();
    assert_eq!(first.len(), 10, "the initial window: ten segments");
    t.send(sack_dup(iss, 1001, 2001));
    t.send(sack_dup(iss, 1001, 3001));
    t.send(sack_dup(iss, 1001, 4001));
    let recovery: Vec<Got> = std::iter::from_fn(|| t.next()).collect();
    (t, iss, recovery)
}

#[test]
fn newreno_halves_its_window_at_a_loss() {
    let mut cfg = bbr_config();
    cfg.tcp.congestion = Algorithm::NewReno;
    let (t, iss, recovery) = first_of_ten_lost(cfg);
    // Limited transmit lets a new segment out for each of the first two duplicates (RFC
    // 3042); at the third, ssthresh = 12,000 / 2 with 9,000 bytes still in the pipe: only
    // the hole goes.
    let sent: Vec<(u32, u32)> = recovery.iter().map(|g| (g.seq - iss, g.len())).collect();
    assert_eq!(sent, vec![(10_001, 1000), (11_001, 1000), (1, 1000)]);
    assert_eq!(t.host.conn(t.conn.unwrap()).unwrap().cwnd(), 9000, "ssthresh + 3 segments");
}

#[test]
fn bbr_keeps_its_window_at_a_loss() {
    let (t, iss, recovery) = first_of_ten_lost(bbr_config());
    // Limited transmit as with NewReno; then the window stays ten segments: the hole, and
    // new data until the pipe (sent, neither acknowledged nor SACKed) is back at 10,000.
    let sent: Vec<(u32, u32)> = recovery.iter().map(|g| (g.seq - iss, g.len())).collect();
    assert_eq!(sent, vec![(10_001, 1000), (11_001, 1000), (1, 1000), (12_001, 1000)]);
    assert_eq!(t.host.conn(t.conn.unwrap()).unwrap().cwnd(), 10_000);
}

/// Rounds of 1 ms in which the peer acknowledges everything outstanding; returns the
/// window after each.
fn rounds(t: &mut Peer, iss: u32, n: usize) -> Vec<u32> {
    let id = t.conn.unwrap();
    let mut acked = 1u32;
    let mut windows = Vec::new();
    for _ in 0..n {
        // Keep the send buffer full: the application is never the limit.
        let now = t.now;
        let _ = t.host.with_conn(now, id, |c| c.send(&[1u8; 64 * 1024]));
        let mut top = acked;
        while let Some(g) = t.next() {
            top = top.max(g.seq - iss + g.len());
        }
        t.advance(Duration::from_millis(1));
        t.send(ack().seq(PEER_ISS + 1).ack(iss + top).win(65535));
        acked = top;
        windows.push(t.host.conn(id).unwrap().cwnd());
    }
    windows
}

#[test]
fn bbr_sets_its_window_from_the_measured_rate_and_round_trip() {
    let mut cfg = bbr_config();
    cfg.tcp.send_buf = 256 * 1024;
    let (mut t, iss) = established_sack_with(cfg, 65535);
    let w = rounds(&mut t, iss, 8);
    // Startup: the window doubles each round (slow start's pace) until the peer's 65,535
    // byte window caps the flight; three rounds at the same rate end Startup.
    assert_eq!(w[..3], [20_000, 40_000, 80_000]);
    // Each round then delivers 65,000 bytes (65 whole segments) in 1 ms: 65 MB/s, so the
    // window becomes 2 × 65 MB/s × 1 ms, plus the ACK aggregation (all 65,000 bytes are
    // acknowledged at one instant, not spread over the round), plus three two-segment
    // bursts.
    assert_eq!(*w.last().unwrap(), 2 * 65_000 + 65_000 + 6000);
}
