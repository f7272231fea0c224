//! Nagle's algorithm in Minshall's variant (as Linux has it): a small tail waits only behind
//! another small segment, so a response whose last segment is small does not wait for the
//! client's delayed ACK; the application's push and a queued FIN end any wait.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A client that delays its ACKs by 40 ms, as Linux's does.
fn delayed_ack_client() -> (Peer, u32) {
    let mut cfg = config();
    cfg.tcp.delayed_ack = ms(40);
    established_with(cfg)
}

#[test]
fn small_tail_behind_full_segments_goes_at_once() {
    let (mut t, iss) = delayed_ack_client();
    // A request; the response is two full segments and a small tail.
    t.send(ack().seq(1001).ack(iss + 1).data(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(t.app_read().len() == 18);
    t.app_write(&[7u8; 2300]);
    let got: Vec<(u32, u32)> = std::iter::from_fn(|| t.next()).map(|g| (g.seq - iss, g.len())).collect();
    assert_eq!(got, [(1, 1000), (1001, 1000), (2001, 300)], "the whole response, with no wait");
    // The client acknowledges the full segments and delays the rest; the next request
    // carries that ACK. The next response goes at once again: no 40 ms per request.
    t.send(ack().seq(1019).ack(iss + 2001));
    t.send(ack().seq(1019).ack(iss + 2301).data(b"GET / HTTP/1.1\r\n\r\n"));
    t.next(); // the ACK of the request, if it went on its own
    t.app_read();
    t.app_write(&[7u8; 2300]);
    let got: Vec<u32> = std::iter::from_fn(|| t.next()).map(|g| g.len()).filter(|&n| n > 0).collect();
    assert_eq!(got, [1000, 1000, 300]);
}

#[test]
fn small_tail_waits_behind_an_unacknowledged_small_segment() {
    let (mut t, iss) = established();
    t.app_write(&[1u8; 2500]);
    let lens: Vec<u32> = std::iter::from_fn(|| t.next()).map(|g| g.len()).collect();
    assert_eq!(lens, [1000, 1000, 500]);
    // The 500-byte segment is small and unacknowledged: 300 more bytes wait to join others.
    t.app_write(&[2u8; 300]);
    t.expect_nothing();
    // The full segments' ACK is not enough: the small one is still out.
    t.send(ack().seq(1001).ack(iss + 2001));
    t.expect_nothing();
    t.app_write(&[3u8; 200]);
    t.expect_nothing();
    // Its ACK releases the tail, 500 bytes in one segment.
    t.send(ack().seq(1001).ack(iss + 2501));
    let g = t.expect();
    assert_eq!((g.seq, g.len()), (iss + 2501, 500));
    t.expect_nothing();
}

#[test]
fn a_push_sends_the_tail_without_waiting() {
    let (mut t, iss) = established();
    t.app_write(b"head");
    assert_eq!(t.expect().len(), 4);
    t.app_write(b"body");
    t.expect_nothing();
    let (now, id) = (t.now, t.conn.unwrap());
    t.host.with_conn(now, id, |c| c.push());
    let g = t.expect();
    assert_eq!((g.seq, g.payload.as_slice()), (iss + 5, &b"body"[..]));
    // Only what was queued at the push: later writes wait as usual.
    t.app_write(b"more");
    t.expect_nothing();
    t.send(ack().seq(1001).ack(iss + 9));
    assert_eq!(t.expect().payload, b"more");
}

#[test]
fn a_queued_fin_ends_the_wait() {
    let (mut t, iss) = established();
    t.app_write(b"a");
    t.expect();
    t.app_write(b"bc");
    t.expect_nothing();
    t.app_shutdown();
    let g = t.expect();
    assert_eq!((g.seq, g.payload.as_slice()), (iss + 2, &b"bc"[..]));
    assert!(g.flags.contains(TcpFlags::FIN), "nothing more will come: the tail goes with the FIN");
}

#[test]
fn the_trace_says_why_a_tail_waits_or_goes() {
    let mut t = Peer::listening();
    t.host.tracer.set_enabled(true);
    t.send(syn().seq(PEER_ISS).mss(1000));
    let iss = t.expect().seq;
    t.send(ack().seq(PEER_ISS + 1).ack(iss + 1));
    t.accept();
    t.app_write(&[1u8; 1500]);
    assert_eq!(std::iter::from_fn(|| t.next()).count(), 2);
    t.app_write(&[1u8; 10]);
    t.app_write(&[1u8; 10]);
    t.expect_nothing();
    let lines = t.host.tracer.take_lines().join("\n");
    assert!(lines.contains("sending a 500-byte tail at once: only full segments are unacknowledged"), "{lines}");
    assert_eq!(lines.matches("holding a").count(), 1, "one line per wait, not per poll: {lines}");
    assert!(lines.contains("holding a 10-byte tail: the small segment ending at 1501 is unacknowledged"), "{lines}");
}
