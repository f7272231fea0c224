//! Data in both directions: in order, out of order, windows, bounded buffers.

use super::*;

#[test]
fn data_in_order_is_acked_and_readable() {
    let (mut t, iss) = established();
    t.send(ack().seq(1001).ack(iss + 1).data(b"hello"));
    let a = t.expect();
    assert_eq!(a.flags, TcpFlags::ACK);
    assert_eq!((a.seq, a.ack), (iss + 1, 1006));
    assert_eq!(t.app_read(), b"hello");
    t.send(ack().seq(1006).ack(iss + 1).data(b" world"));
    assert_eq!(t.expect().ack, 1012);
    assert_eq!(t.app_read(), b" world");
}

#[test]
fn data_out_segmented_to_mss_with_psh_on_the_last() {
    let (mut t, iss) = established();
    t.app_write(&[1u8; 2500]);
    let a = t.expect();
    let b = t.expect();
    assert_eq!((a.seq, a.len()), (iss + 1, 1000));
    assert_eq!((b.seq, b.len()), (iss + 1001, 1000));
    // Nagle in Minshall's variant: only full segments are in flight, so the tail goes too.
    let c = t.expect();
    assert_eq!((c.seq, c.len()), (iss + 2001, 500));
    assert!(!a.flags.contains(TcpFlags::PSH));
    assert!(c.flags.contains(TcpFlags::PSH));
    assert_eq!(c.ack, 1001);
    t.send(ack().seq(1001).ack(iss + 2501));
    t.expect_nothing();
}

#[test]
fn segment_outside_window_is_answered_with_ack_and_not_accepted() {
    let (mut t, iss) = established();
    // Beyond the 8 KiB window.
    t.send(ack().seq(1001 + 50_000).ack(iss + 1).data(b"far"));
    let a = t.expect();
    assert_eq!((a.flags, a.ack), (TcpFlags::ACK, 1001));
    // Entirely old.
    t.send(ack().seq(900).ack(iss + 1).data(b"old"));
    assert_eq!(t.expect().ack, 1001);
    assert!(t.app_read().is_empty());
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::OutsideWindow), Some(&2));
}

#[test]
fn overlapping_retransmission_delivers_only_new_bytes() {
    let (mut t, iss) = established();
    t.send(ack().seq(1001).ack(iss + 1).data(b"abcd"));
    t.expect();
    t.send(ack().seq(1003).ack(iss + 1).data(b"cdef"));
    assert_eq!(t.expect().ack, 1007);
    assert_eq!(t.app_read(), b"abcdef");
}

#[test]
fn out_of_order_is_held_duplicate_acked_then_reassembled() {
    let (mut t, iss) = established();
    t.send(ack().seq(1006).ack(iss + 1).data(b"world"));
    let dup = t.expect();
    assert_eq!(dup.ack, 1001, "immediate duplicate ACK for the gap");
    assert!(t.app_read().is_empty());
    t.send(ack().seq(1001).ack(iss + 1).data(b"hello"));
    assert_eq!(t.expect().ack, 1011);
    assert_eq!(t.app_read(), b"helloworld");
}

#[test]
fn receive_window_is_free_buffer_space_and_closes_when_full() {
    let (mut t, iss) = established();
    let chunk = vec![9u8; 1000];
    let mut seq = 1001u32;
    for _ in 0..8 {
        t.send(ack().seq(seq).ack(iss + 1).data(&chunk));
        seq += 1000;
        t.expect();
    }
    // 8000 of 8192 bytes used: the window shows the 192 bytes left (never grown by less
    // than an MSS, never shrunk).
    t.send(ack().seq(seq).ack(iss + 1).data(&chunk));
    let a = t.expect();
    assert_eq!(a.ack, seq + 192, "only what fits is taken");
    assert_eq!(a.window, 0);
    // The application drains: a window update goes out.
    assert_eq!(t.app_read().len(), 8192);
    let upd = t.expect();
    assert_eq!(upd.window, 8192);
    assert_eq!(upd.ack, seq + 192);
}

#[test]
fn zero_window_segment_still_takes_the_ack() {
    let (mut t, iss) = established();
    t.app_write(b"xyz");
    t.expect();
    // Fill our receive buffer.
    t.send(ack().seq(1001).ack(iss + 1).data(&[0u8; 8192]));
    assert_eq!(t.expect().window, 0);
    // A segment at RCV.NXT with data we cannot take, but acking our bytes.
    t.send(ack().seq(1001 + 8192).ack(iss + 4).data(b"more"));
    let a = t.expect();
    assert_eq!(a.ack, 1001 + 8192, "the data is not taken");
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().buffered().1, 0, "but the ACK is");
}

#[test]
fn send_buffer_is_bounded() {
    let (mut t, _) = established();
    let mut total = 0;
    loop {
        let now = t.now;
        let id = t.conn.unwrap();
        match t.host.with_conn(now, id, |c| c.send(&[0u8; 4096])).unwrap() {
            Ok(n) => total += n,
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
                break;
            }
        }
    }
    assert_eq!(total, 16384);
}

#[test]
fn respects_the_peers_window() {
    let (mut t, iss) = established();
    t.send(ack().seq(1001).ack(iss + 1).win(2000));
    t.app_write(&[5u8; 5000]);
    let a = t.expect();
    let b = t.expect();
    assert_eq!((a.len(), b.len()), (1000, 1000));
    t.expect_nothing();
    t.send(ack().seq(1001).ack(iss + 2001).win(2500));
    let c = t.expect();
    let d = t.expect();
    assert_eq!((c.seq, c.len(), d.len()), (iss + 2001, 1000, 1000));
    // 500 bytes of window left while data is in flight: silly window avoidance
    // (RFC 1122 §4.2.3.4) waits for a full segment rather than send a small one.
    t.expect_nothing();
    t.send(ack().seq(1001).ack(iss + 4001).win(2500));
    assert_eq!(t.expect().len(), 1000);
    t.expect_nothing();
}

#[test]
fn nagle_holds_small_writes_until_acked_and_nodelay_sends_them() {
    let (mut t, iss) = established();
    t.app_write(b"a");
    assert_eq!(t.expect().payload, b"a", "nothing in flight: the first small write goes at once");
    t.app_write(b"b");
    t.app_write(b"c");
    t.expect_nothing();
    t.send(ack().seq(1001).ack(iss + 2));
    assert_eq!(t.expect().payload, b"bc", "coalesced into one segment");
    let now = t.now;
    let id = t.conn.unwrap();
    t.host.with_conn(now, id, |c| c.set_nodelay(true));
    t.app_write(b"d");
    t.app_write(b"e");
    assert_eq!(t.expect().payload, b"d");
    assert_eq!(t.expect().payload, b"e");
}

fn delayed_ack_config() -> HostConfig {
    let mut cfg = config();
    cfg.tcp.delayed_ack = std::time::Duration::from_millis(40);
    cfg
}

#[test]
fn delayed_ack_every_second_full_segment() {
    let (mut t, iss) = established_with(delayed_ack_config());
    let full = vec![1u8; 1000];
    t.send(ack().seq(1001).ack(iss + 1).data(&full));
    t.expect_nothing();
    t.send(ack().seq(2001).ack(iss + 1).data(&full));
    assert_eq!(t.expect().ack, 3001, "the second full segment is acknowledged at once");
}

#[test]
fn delayed_ack_fires_after_40ms() {
    let (mut t, iss) = established_with(delayed_ack_config());
    t.send(ack().seq(1001).ack(iss + 1).data(b"ping"));
    t.expect_nothing();
    t.advance(std::time::Duration::from_millis(39));
    t.expect_nothing();
    t.advance(std::time::Duration::from_millis(1));
    assert_eq!(t.expect().ack, 1005);
}

#[test]
fn delayed_ack_rides_on_the_reply() {
    let (mut t, iss) = established_with(delayed_ack_config());
    t.send(ack().seq(1001).ack(iss + 1).data(b"GET / HTTP/1.1\r\n\r\n"));
    t.expect_nothing();
    t.app_write(b"HTTP/1.1 200 OK\r\n\r\n");
    let r = t.expect();
    assert_eq!(r.ack, 1001 + 18, "the response carries the ACK");
    t.advance(std::time::Duration::from_millis(100));
    t.expect_nothing();
}

#[test]
fn out_of_order_and_gap_fill_are_acknowledged_at_once_even_with_delayed_ack() {
    let (mut t, iss) = established_with(delayed_ack_config());
    t.send(ack().seq(1011).ack(iss + 1).data(b"later"));
    assert_eq!(t.expect().ack, 1001);
    t.send(ack().seq(1001).ack(iss + 1).data(b"0123456789"));
    assert_eq!(t.expect().ack, 1016);
}

#[test]
fn reads_send_a_window_update_only_when_the_peer_is_running_out() {
    let mut cfg = config();
    cfg.tcp.recv_buf = 40_000;
    let (mut t, iss) = established_with(cfg);
    let chunk = vec![5u8; 1000];
    let mut seq = 1001u32;
    for _ in 0..25 {
        t.send(ack().seq(seq).ack(iss + 1).data(&chunk));
        seq += 1000;
        assert_eq!(t.expect().ack, seq);
    }
    // 15,000 bytes of window left: the peer is not held up, so the read sends nothing...
    assert_eq!(t.app_read().len(), 25_000);
    t.expect_nothing();
    // ...and the reply carries the opened window.
    t.app_write(b"ok");
    let reply = t.expect();
    assert_eq!((reply.ack, reply.window, reply.payload.len()), (seq, 40_000, 2));
    t.send(ack().seq(seq).ack(iss + 3));
    for _ in 0..37 {
        t.send(ack().seq(seq).ack(iss + 3).data(&chunk));
        seq += 1000;
        assert_eq!(t.expect().ack, seq);
    }
    // 3,000 bytes left, under four segments: the read tells the peer at once.
    assert_eq!(t.app_read().len(), 37_000);
    let upd = t.expect();
    assert_eq!((upd.ack, upd.window), (seq, 40_000));
}

#[test]
fn arrival_numbers_order_input_across_connections_as_it_became_readable() {
    let (mut t, iss) = established();
    let first = t.conn.expect("accepted");
    t.send(syn().seq(5000).mss(1000).sport(40001));
    let sa = t.expect();
    t.send(ack().seq(5001).ack(sa.seq.wrapping_add(1)).sport(40001));
    let second = t.host.accept(t.port).expect("second connection");
    // The second connection's request arrives first.
    t.send(ack().seq(5001).ack(sa.seq.wrapping_add(1)).data(b"GET /b").sport(40001));
    t.expect();
    t.send(ack().seq(1001).ack(iss + 1).data(b"GET /a"));
    t.expect();
    let number = |t: &Peer, id, offset| t.host.arrival_number(id, offset).expect("arrived and remembered");
    assert!(number(&t, second, 0) < number(&t, first, 0));
    assert_eq!(number(&t, first, 0), number(&t, first, 5), "one segment, one arrival");
    assert_eq!(t.host.arrival_number(first, 6), None, "not arrived");
    // Out of order on the first, more on the second, then the hole filled: the held bytes
    // became readable with the fill, after the second's.
    t.send(ack().seq(1010).ack(iss + 1).data(b"ccc"));
    t.expect();
    t.send(ack().seq(5007).ack(sa.seq.wrapping_add(1)).data(b"more").sport(40001));
    t.expect();
    t.send(ack().seq(1007).ack(iss + 1).data(b"bbb"));
    t.expect();
    assert!(number(&t, second, 6) < number(&t, first, 6));
    assert_eq!(number(&t, first, 6), number(&t, first, 11));
    // Reading takes nothing away: the numbers are of arrivals, not of the buffer.
    assert_eq!(t.app_read(), b"GET /abbbccc");
    assert!(number(&t, first, 0) < number(&t, first, 6));
}
