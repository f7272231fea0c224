//! Which events wake the application's threads (`Host::take_touched`): a change in what a
//! blocked reader or writer waits for, not every segment.

use super::*;

fn touched(t: &mut Peer) -> bool {
    let id = t.conn.unwrap();
    t.host.take_touched().0.contains(&id)
}

#[test]
fn a_reader_is_woken_when_data_arrives_not_for_more_of_it() {
    let (mut t, iss) = established();
    let _ = t.host.take_touched();
    t.send(ack().seq(1001).ack(iss + 1).data(b"one"));
    let _ = t.expect();
    assert!(touched(&mut t), "first data: the reader may be asleep");
    t.send(ack().seq(1004).ack(iss + 1).data(b"two"));
    let _ = t.expect();
    assert!(!touched(&mut t), "still readable: nobody sleeps on this connection");
    assert_eq!(t.app_read(), b"onetwo");
    let _ = t.host.take_touched();
    t.send(ack().seq(1007).ack(iss + 1).data(b"three"));
    let _ = t.expect();
    assert!(touched(&mut t), "read dry, then data again");
}

#[test]
fn fin_and_reset_wake_a_reader() {
    let (mut t, iss) = established();
    let _ = t.host.take_touched();
    t.send(fin().seq(1001).ack(iss + 1));
    let _ = t.expect();
    assert!(touched(&mut t), "end of stream");
    let (mut t, iss) = established();
    let _ = t.host.take_touched();
    t.send(rst().seq(1001).ack(iss + 1));
    assert!(touched(&mut t), "reset");
}

#[test]
fn a_blocked_writer_waits_for_a_third_of_the_buffer() {
    let mut cfg = config();
    cfg.tcp.send_buf = 3000;
    let (mut t, iss) = established_with(cfg);
    assert_eq!(t.app_write(&[1u8; 5000]), 3000);
    let sent: Vec<Got> = std::iter::from_fn(|| t.next()).collect();
    assert_eq!(sent.len(), 3);
    let id = t.conn.unwrap();
    let now = t.now;
    let full = t.host.with_conn(now, id, |c| c.send(&[2u8; 2000])).unwrap();
    assert_eq!(full.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    let _ = t.host.take_touched();
    // 500 bytes free: less than a third, so the writer sleeps on.
    t.send(ack().seq(1001).ack(iss + 1 + 500));
    assert!(!touched(&mut t));
    let r = t.host.with_conn(now, id, |c| c.send(&[2u8; 2000])).unwrap();
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "the write waits for more room");
    // A small write that fits still goes in at once.
    assert_eq!(t.host.with_conn(now, id, |c| c.send(&[3u8; 100])).unwrap().unwrap(), 100);
    let _ = t.host.take_touched();
    // Now 1,000 bytes acknowledged in all and a third of the buffer free: wake.
    t.send(ack().seq(1001).ack(iss + 1 + 1500));
    assert!(touched(&mut t), "a third of the buffer is free");
    assert!(t.host.with_conn(now, id, |c| c.send(&[2u8; 2000])).unwrap().unwrap() >= 1000);
}
