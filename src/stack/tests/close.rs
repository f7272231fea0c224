//! Closing: FIN from each side, both at once, TIME-WAIT, half-close.

use std::time::Duration;

use super::*;

#[test]
fn peer_closes_first_close_wait_then_last_ack() {
    let (mut t, iss) = established();
    t.send(fin().seq(1001).ack(iss + 1));
    let a = t.expect();
    assert_eq!((a.flags, a.ack), (TcpFlags::ACK, 1002));
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(t.app_read_result().unwrap(), 0, "end of stream");
    // Half-close: we can still send.
    t.app_write(b"bye");
    let d = t.expect();
    assert_eq!(d.payload, b"bye");
    t.app_shutdown();
    let f = t.expect();
    assert_eq!(f.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(f.seq, iss + 4);
    assert_eq!(t.state(), State::LastAck);
    t.send(ack().seq(1002).ack(iss + 5));
    assert_eq!(t.state(), State::Closed);
}

#[test]
fn we_close_first_fin_wait_then_time_wait_then_closed() {
    let (mut t, iss) = established();
    t.app_shutdown();
    let f = t.expect();
    assert_eq!(f.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(t.state(), State::FinWait1);
    t.send(ack().seq(1001).ack(iss + 2));
    assert_eq!(t.state(), State::FinWait2);
    // Data may still arrive in FIN-WAIT-2.
    t.send(ack().seq(1001).ack(iss + 2).data(b"late"));
    assert_eq!(t.expect().ack, 1005);
    t.send(fin().seq(1005).ack(iss + 2));
    assert_eq!(t.expect().ack, 1006);
    assert_eq!(t.state(), State::TimeWait);
    assert_eq!(t.app_read(), b"late");
    // A retransmitted FIN in TIME-WAIT is acknowledged again and restarts 2*MSL.
    t.advance(Duration::from_millis(600));
    t.send(fin().seq(1005).ack(iss + 2));
    assert_eq!(t.expect().ack, 1006);
    t.advance(Duration::from_millis(999));
    assert_eq!(t.state(), State::TimeWait);
    t.advance(Duration::from_millis(1));
    assert_eq!(t.state(), State::Closed);
}

#[test]
fn fin_with_data_and_ack_of_our_fin_goes_straight_to_time_wait() {
    let (mut t, iss) = established();
    t.app_shutdown();
    t.expect();
    t.send(fin().seq(1001).ack(iss + 2).data(b"x"));
    assert_eq!(t.expect().ack, 1003);
    assert_eq!(t.state(), State::TimeWait);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let (mut t, iss) = established();
    t.app_shutdown();
    let ours = t.expect();
    assert!(ours.flags.contains(TcpFlags::FIN));
    // Their FIN crosses ours: it does not acknowledge our FIN.
    t.send(fin().seq(1001).ack(iss + 1));
    let a = t.expect();
    assert_eq!(a.ack, 1002);
    assert_eq!(t.state(), State::Closing);
    t.send(ack().seq(1002).ack(iss + 2));
    assert_eq!(t.state(), State::TimeWait);
    t.advance(Duration::from_millis(1000));
    assert_eq!(t.state(), State::Closed);
}

#[test]
fn fin_is_retransmitted_when_lost() {
    let (mut t, iss) = established();
    t.app_shutdown();
    let f = t.expect();
    t.advance(Duration::from_millis(1000));
    let again = t.expect();
    assert_eq!((again.flags, again.seq), (f.flags, f.seq));
    t.send(ack().seq(1001).ack(iss + 2));
    assert_eq!(t.state(), State::FinWait2);
}

#[test]
fn fin_waits_for_queued_data_and_rides_on_the_last_segment() {
    let (mut t, iss) = established();
    // A window of 1000 holds the second segment back; the FIN waits behind it.
    t.send(ack().seq(1001).ack(iss + 1).win(1000));
    t.app_write(&[3u8; 1500]);
    t.app_shutdown();
    let a = t.expect();
    assert!(!a.flags.contains(TcpFlags::FIN));
    t.expect_nothing();
    t.send(ack().seq(1001).ack(iss + 1001).win(1000));
    let b = t.expect();
    assert_eq!(b.flags, TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK, "the FIN rides on the last data");
    assert_eq!((b.seq, b.len()), (iss + 1001, 500));
    t.send(ack().seq(1001).ack(iss + 1502));
    assert_eq!(t.state(), State::FinWait2);
}

#[test]
fn out_of_order_fin_waits_for_the_gap() {
    let (mut t, iss) = established();
    t.send(fin().seq(1004).ack(iss + 1).data(b"def"));
    assert_eq!(t.expect().ack, 1001);
    assert_eq!(t.state(), State::Established);
    t.send(ack().seq(1001).ack(iss + 1).data(b"abc"));
    assert_eq!(t.expect().ack, 1008);
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(t.app_read(), b"abcdef");
}

#[test]
fn orphaned_fin_wait_2_times_out() {
    let mut cfg = config();
    cfg.tcp.fin_wait2_timeout = Duration::from_secs(5);
    let (mut t, iss) = established_with(cfg);
    let id = t.conn.unwrap();
    t.host.release(t.now, id);
    t.expect();
    t.send(ack().seq(1001).ack(iss + 2));
    assert_eq!(t.host.conn(id).unwrap().state(), State::FinWait2);
    t.advance(Duration::from_secs(5));
    assert!(t.host.conn(id).is_none(), "released and closed: forgotten");
}

#[test]
fn releasing_with_unread_data_resets() {
    let (mut t, iss) = established();
    t.send(ack().seq(1001).ack(iss + 1).data(b"unread"));
    t.expect();
    let id = t.conn.unwrap();
    t.host.release(t.now, id);
    let r = t.expect();
    assert_eq!(r.flags, TcpFlags::RST);
    assert_eq!(r.seq, iss + 1);
}

#[test]
fn new_syn_may_reuse_a_time_wait_tuple() {
    let (mut t, iss) = established();
    t.app_shutdown();
    t.expect();
    t.send(fin().seq(1001).ack(iss + 2));
    t.expect();
    assert_eq!(t.state(), State::TimeWait);
    t.send(syn().seq(90_000));
    let sa = t.expect();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(sa.ack, 90_001);
}
