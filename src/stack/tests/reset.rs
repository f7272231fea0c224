//! RST in each state, and RFC 5961's defences against blind resets and SYNs.

use std::io::ErrorKind;

use super::*;

#[test]
fn rst_in_listen_is_ignored() {
    let mut t = Peer::listening();
    t.send(rst().seq(1));
    t.expect_nothing();
    assert!(t.host.is_listening(8000));
}

#[test]
fn rst_in_syn_received_returns_to_listen_silently() {
    let mut t = Peer::listening();
    t.send(syn().seq(1000));
    t.expect();
    t.send(rst().seq(1001));
    t.expect_nothing();
    assert_eq!(t.host.active_connections(), 0);
    assert!(t.host.accept(8000).is_none());
    // The listener still works.
    t.send(syn().seq(5000));
    assert_eq!(t.expect().ack, 5001);
}

#[test]
fn rst_in_established_resets_the_application() {
    let (mut t, _) = established();
    t.send(rst().seq(1001));
    t.expect_nothing();
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.app_read_result().unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[test]
fn rst_in_window_but_not_exact_gets_a_challenge_ack() {
    let (mut t, iss) = established();
    t.send(rst().seq(1500));
    let c = t.expect();
    assert_eq!((c.flags, c.seq, c.ack), (TcpFlags::ACK, iss + 1, 1001));
    assert_eq!(t.state(), State::Established);
}

#[test]
fn rst_outside_window_is_dropped_silently() {
    let (mut t, _) = established();
    t.send(rst().seq(1001 + 100_000));
    t.expect_nothing();
    assert_eq!(t.state(), State::Established);
}

#[test]
fn syn_on_established_gets_a_challenge_ack() {
    let (mut t, iss) = established();
    t.send(syn().seq(1200));
    let c = t.expect();
    assert_eq!((c.flags, c.ack, c.seq), (TcpFlags::ACK, 1001, iss + 1));
    assert_eq!(t.state(), State::Established);
}

#[test]
fn ack_of_unsent_data_is_answered_and_dropped() {
    let (mut t, iss) = established();
    t.send(ack().seq(1001).ack(iss + 500).data(b"zzz"));
    let a = t.expect();
    assert_eq!(a.ack, 1001, "the data is not taken either");
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::AckOfUnsent), Some(&1));
}

#[test]
fn bad_ack_in_syn_received_gets_rst() {
    let mut t = Peer::listening();
    t.send(syn().seq(1000));
    let sa = t.expect();
    t.send(ack().seq(1001).ack(sa.seq.wrapping_add(77)));
    let r = t.expect();
    assert_eq!((r.flags, r.seq), (TcpFlags::RST, sa.seq.wrapping_add(77)));
}

#[test]
fn rst_in_close_wait_and_last_ack() {
    let (mut t, iss) = established();
    t.send(fin().seq(1001).ack(iss + 1));
    t.expect();
    t.app_shutdown();
    t.expect();
    assert_eq!(t.state(), State::LastAck);
    t.send(rst().seq(1002));
    assert_eq!(t.state(), State::Closed);
}

#[test]
fn malformed_packets_are_counted_not_fatal() {
    let mut t = Peer::listening();
    for junk in [&[][..], &[0x45][..], &[0x60, 0, 0, 0][..], &[0x45; 40][..], &[0xff; 60][..]] {
        t.send_raw(junk);
    }
    t.expect_nothing();
    assert_eq!(t.host.counters.total_drops(), 5);
}
