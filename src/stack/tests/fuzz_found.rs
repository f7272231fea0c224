//! Bugs the fuzzers found (their inputs are in fuzz/regressions/), as scripted tests that
//! guard the fixes.

use std::time::Duration;

use super::*;

//
// Each was an ignored, failing test while its bug was open; now they guard the fixes.

/// Run the clock for up to `limit` with a silent peer, from timer to timer.
fn run_silently(t: &mut Peer, limit: Duration) {
    let end = t.now + limit;
    for _ in 0..100_000 {
        match t.host.poll_at() {
            Some(at) if at <= end => {
                t.now = t.now.max(at);
                t.host.on_timer(t.now);
                while t.next().is_some() {}
            }
            _ => break,
        }
    }
}

/// fuzz/regressions/packet_input/zero-window-orphan-lives-forever. The application writes
/// more than the peer takes, the peer acknowledges what arrived with a zero window and goes
/// silent, the application closes. Zero-window probes then go out forever: nothing counts
/// unanswered probes, so the connection is never freed (an attacker can pin any number of
/// connections and their send buffers this way). RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17 keep
/// a connection open only while the receiver answers the probes. Fixed: past
/// `max_retries` unanswered probes the connection gives up.
#[test]
fn released_connection_behind_a_silent_zero_window_is_freed() {
    let (mut t, iss) = established();
    assert_eq!(t.app_write(&[7u8; 20_000]), 16384, "the send buffer is full");
    let mut sent = 0;
    while let Some(g) = t.next() {
        sent += g.len();
    }
    assert!(sent > 0);
    t.send(ack().seq(PEER_ISS + 1).ack(iss.wrapping_add(1 + sent)).win(0));
    let id = t.conn.unwrap();
    let now = t.now;
    t.host.release(now, id);
    run_silently(&mut t, Duration::from_secs(48 * 3600));
    let left: Vec<String> = t.host.connections().map(|(_, c)| c.describe()).collect();
    assert!(left.is_empty(), "still held after 48 h of a silent peer: {left:?}");
}

/// fuzz/regressions/segment_sequence/close-in-simultaneous-open-syn-received-hangs. A
/// simultaneous open puts the connection in SYN-RECEIVED; the application closes;
/// `shutdown_write` moved it to FIN-WAIT-1 although our SYN was not acknowledged yet. In
/// FIN-WAIT-1 `poll_transmit` never resends the SYN (only SYN-SENT/SYN-RECEIVED do) nor sends
/// the FIN (`data_segment` returns early while SND.UNA = ISS), and after the one
/// retransmission timeout no timer is armed again: if the peer's ACK was lost, the connection
/// stays forever. (The state change is also traced late: `Host::with_conn` takes the
/// connection's events only when it has something to send.)
///
/// Fixed as RFC 9293 §3.10.4 says (CLOSE in SYN-RECEIVED: "queue for processing after
/// entering ESTABLISHED"): the FIN waits for the ACK of our SYN, which then leads to
/// FIN-WAIT-1; and `Host::with_conn` always dispatches, so no state change is traced late.
#[test]
fn close_in_simultaneous_open_syn_received_completes() {
    let mut t = Peer::new(config());
    let now = t.now;
    let id = t.host.connect(now, SocketAddrV4::new(PEER_IP, PEER_PORT)).unwrap();
    t.conn = Some(id);
    let our_syn = t.expect();
    assert_eq!(our_syn.flags, TcpFlags::SYN);
    t.send(syn().seq(PEER_ISS).mss(1000).dport(our_syn.src.port()));
    assert_eq!(t.state(), State::SynReceived);
    let sa = t.expect();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    t.app_shutdown();
    // The peer's ACK of our SYN is lost: the SYN,ACK must go again.
    t.advance(Duration::from_secs(3));
    let again = std::iter::from_fn(|| t.next()).find(|g| g.flags.contains(TcpFlags::SYN));
    assert!(again.is_some(), "no SYN,ACK retransmission after 3 s: {}", t.host.conn(id).unwrap().describe());
    let now = t.now;
    t.host.release(now, id);
    run_silently(&mut t, Duration::from_secs(48 * 3600));
    assert_eq!(t.host.connections().count(), 0, "the connection is never freed");
}

/// An established connection that offered SACK, with 10 segments of 1000 bytes sent from a
/// 16384-byte write; returns the peer, our ISS and the sequence number after what went out.
fn sack_established_with_data_in_flight(rtt: Duration) -> (Peer, u32, u32) {
    let mut cfg = config();
    cfg.tcp.early_retransmit = true;
    let (mut t, iss) = established_sack_with(cfg, 65535);
    t.expect_nothing();
    t.app_write(&[3u8; 16384]);
    let mut end = iss.wrapping_add(1);
    while let Some(g) = t.next() {
        end = g.seq.wrapping_add(g.len());
    }
    t.now += rtt;
    (t, iss, end)
}

/// fuzz/regressions/segment_sequence/sack-block-then-rto-leaves-no-timer. An ACK whose SACK
/// block reaches from below the new SND.UNA to just above it leaves the scoreboard (after
/// `prune`) with a block starting at SND.UNA. When the retransmission timer then fires,
/// `data_segment` skips the "SACKed" bytes at SND.UNA, counts them as in flight, and sender
/// SWS avoidance cut what remained of one segment's cwnd to nothing: no segment went out, so
/// nothing re-armed the timer (only `poll_transmit` did), and with a silent peer the
/// connection stayed for ever, even released.
///
/// Fixed: RFC 2018 §8 (after a retransmission timeout the sender "MUST retransmit the segment
/// at the left edge of the window ... whether or not the SACK bit is on for that segment"),
/// and `on_rto` re-arms the timer itself, so no path leaves data outstanding without one.
#[test]
fn rto_after_a_sack_block_at_snd_una_keeps_a_timer() {
    let (mut t, iss, _) = sack_established_with_data_in_flight(Duration::ZERO);
    let una = iss.wrapping_add(1 + 9000);
    let mut a = ack().seq(PEER_ISS + 1).ack(una).win(40000);
    a.hdr.options.sack[0] = (SeqNum(una - 6819), SeqNum(una + 159));
    a.hdr.options.sack_len = 1;
    t.send(a);
    while t.next().is_some() {}
    let id = t.conn.unwrap();
    // Whatever happens next, while data is unacknowledged some timer must be pending.
    for _ in 0..50 {
        let c = t.host.conn(id).unwrap();
        let ((_, unacked), closed) = (c.buffered(), c.state() == State::Closed);
        let pending = t.host.poll_at();
        assert!(
            unacked == 0 || closed || pending.is_some(),
            "{unacked} bytes unacknowledged and no timer: {}",
            t.host.conn(id).unwrap().describe()
        );
        let Some(at) = pending else { break };
        t.now = t.now.max(at);
        t.host.on_timer(t.now);
        while t.next().is_some() {}
    }
    let now = t.now;
    t.host.release(now, id);
    run_silently(&mut t, Duration::from_secs(48 * 3600));
    assert_eq!(t.host.connections().count(), 0, "the connection is never freed");
}

/// Seen with the same input: in fast recovery with a silent peer, the early (RACK-style)
/// timer fired every max(2×SRTT, 2 ms) and each time resent the first hole, until the
/// retransmission timer ended it: 100 copies of one segment in the first 200 ms in the fuzz
/// case, 80 here. RFC 8985 and RFC 6675 resend a segment again only once an ACK shows it
/// lost again, or on the RTO (which backs off). Fixed: the early timer resends a hole once
/// per piece of news from the peer.
#[test]
fn recovery_with_a_silent_peer_does_not_resend_every_two_round_trips() {
    let (mut t, iss, _) = sack_established_with_data_in_flight(Duration::from_millis(10));
    // The first segment arrives (an RTT sample of 10 ms); the second is lost; the peer has
    // the next three, and says so three times.
    t.send(ack().seq(PEER_ISS + 1).ack(iss.wrapping_add(1001)).win(65535));
    while t.next().is_some() {}
    let una = iss.wrapping_add(1001);
    for k in 1..=3u32 {
        let mut a = ack().seq(PEER_ISS + 1).ack(una).win(65535);
        a.hdr.options.sack[0] = (SeqNum(una + 1000), SeqNum(una + 1000 + 1000 * k));
        a.hdr.options.sack_len = 1;
        t.send(a);
    }
    let mut copies = std::iter::from_fn(|| t.next()).filter(|g| g.seq == una && g.len() > 0).count();
    // Then silence until just before the retransmission timer (at least 200 ms).
    let id = t.conn.unwrap();
    let rto = t.host.conn(id).unwrap().rto();
    let end = t.now + rto - Duration::from_millis(1);
    while let Some(at) = t.host.poll_at().filter(|at| *at <= end) {
        t.now = at;
        t.host.on_timer(at);
        copies += std::iter::from_fn(|| t.next()).filter(|g| g.seq == una && g.len() > 0).count();
    }
    assert!(copies <= 2, "the first hole went {copies} times before the retransmission timer (RTO {rto:?})");
}
