//! Under attack: SYN cookies, limits, and RFC 5961's rate limit.

use std::time::Duration;

use super::*;

fn cookie_config() -> HostConfig {
    let mut cfg = config();
    cfg.backlog = 1;
    cfg
}

/// Fill the one-slot SYN backlog with a half-open connection from port 1.
fn flooded() -> Peer {
    let mut t = Peer::listening_with(cookie_config());
    t.send(syn().seq(1).sport(1));
    t.expect();
    t
}

#[test]
fn full_backlog_answers_with_a_stateless_syn_cookie_that_completes() {
    let mut t = flooded();
    let before = t.host.connections().count();
    t.send(syn().seq(5000).mss(1400).sport(2));
    let sa = t.expect();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(sa.options.mss, Some(1000), "min(the cookie's 1400, our 1000)");
    assert_eq!(sa.options.window_scale, None, "no timestamp to carry it: scaling off");
    assert_eq!(t.host.connections().count(), before, "no state kept");
    t.send(ack().seq(5001).ack(sa.seq.wrapping_add(1)).sport(2).data(b"hello"));
    let a = t.expect();
    assert_eq!(a.ack, 5006, "the cookie ACK's data is taken");
    let id = t.host.accept(8000).expect("the cookie connection is accepted");
    t.conn = Some(id);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.app_read(), b"hello");
    assert_eq!((t.host.counters.syn_cookies_sent, t.host.counters.syn_cookies_accepted), (1, 1));
}

#[test]
fn cookie_carries_window_scale_and_sack_in_the_timestamp() {
    let mut t = flooded();
    let mut s = syn().seq(5000).mss(1460).wscale(6).sport(2);
    s.hdr.options.timestamps = Some((777, 0));
    s.hdr.options.sack_permitted = true;
    t.send(s);
    let sa = t.expect();
    assert!(sa.options.window_scale.is_some() && sa.options.sack_permitted);
    let (tsval, tsecr) = sa.options.timestamps.unwrap();
    assert_eq!(tsecr, 777);
    let mut a = ack().seq(5001).ack(sa.seq.wrapping_add(1)).sport(2).win(10);
    a.hdr.options.timestamps = Some((778, tsval));
    t.send(a);
    let id = t.host.accept(8000).expect("accepted");
    assert_eq!(t.host.conn(id).unwrap().peer_window(), 10 << 6, "the client's shift came back");
    t.conn = Some(id);
    t.app_write(b"x");
    let d = t.expect();
    let (our_ts, echo) = d.options.timestamps.expect("timestamps on");
    assert_eq!(echo, 778);
    assert!(our_ts.wrapping_sub(tsval) as i32 > 0, "our clock continues past the SYN,ACK's");
}

#[test]
fn a_cookie_ack_that_does_not_check_out_is_dropped_while_cookies_are_in_use() {
    let mut t = flooded();
    t.send(syn().seq(5000).sport(2));
    let sa = t.expect();
    t.send(ack().seq(5001).ack(sa.seq.wrapping_add(2)).sport(2));
    t.expect_nothing();
    t.send(ack().seq(6001).ack(sa.seq.wrapping_add(1)).sport(2));
    t.expect_nothing();
    assert!(t.host.accept(8000).is_none());
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::SynCookieMismatch), Some(&2));
}

#[test]
fn a_client_whose_cookie_ack_was_lost_gets_in_when_it_resends() {
    // The handshake ACK is lost; the client's later data fails the cookie (it covers the
    // ISN) and must not be reset; its retransmission from ISN + 1 carries the cookie.
    let mut t = flooded();
    t.send(syn().seq(5000).sport(2));
    let sa = t.expect();
    t.send(ack().seq(5006).ack(sa.seq.wrapping_add(1)).sport(2).data(b"world"));
    t.expect_nothing();
    t.send(ack().seq(5001).ack(sa.seq.wrapping_add(1)).sport(2).data(b"hello"));
    assert_eq!(t.expect().ack, 5006);
    let id = t.host.accept(8000).expect("the cookie connection is accepted");
    t.conn = Some(id);
    assert_eq!(t.state(), State::Established);
}

#[test]
fn an_ack_for_a_listener_gets_a_reset_when_no_cookies_are_out() {
    let mut t = Peer::listening_with(cookie_config());
    t.send(ack().seq(5001).ack(1234).sport(2));
    assert_eq!(t.expect().flags, TcpFlags::RST, "RFC 9293 §3.10.7.2");
}

#[test]
fn full_accept_queue_drops_syns() {
    let mut t = Peer::new(config());
    t.host.listen(8000, Some(1)).unwrap(); // an accept queue of one
    t.send(syn().seq(1).sport(1));
    let sa = t.expect();
    t.send(ack().seq(2).ack(sa.seq.wrapping_add(1)).sport(1));
    t.send(syn().seq(1).sport(2));
    t.expect_nothing();
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::AcceptQueueFull), Some(&1));
    t.host.accept(8000).unwrap();
    t.send(syn().seq(1).sport(2));
    assert_eq!(t.expect().flags, TcpFlags::SYN | TcpFlags::ACK, "room again after accept");
}

#[test]
fn time_wait_over_its_limit_forgets_the_oldest() {
    let mut cfg = config();
    cfg.max_time_wait = 2;
    let mut t = Peer::listening_with(cfg);
    for port in 1..=3u16 {
        t.send(syn().seq(100).sport(port));
        let sa = t.expect();
        let iss = sa.seq;
        t.send(ack().seq(101).ack(iss.wrapping_add(1)).sport(port));
        let id = t.host.accept(8000).unwrap();
        t.host.release(t.now, id);
        t.expect(); // our FIN
        t.send(fin().seq(101).ack(iss.wrapping_add(2)).sport(port));
        t.expect(); // ACK of theirs: TIME-WAIT
    }
    assert_eq!(t.host.counters.time_wait_dropped, 1);
    assert_eq!(t.host.connections().filter(|(_, c)| c.state() == State::TimeWait).count(), 2);
}

#[test]
fn challenge_acks_are_rate_limited() {
    let mut cfg = config();
    cfg.challenge_acks_per_sec = 3;
    let (mut t, _) = established_with(cfg);
    for i in 0..10 {
        t.send(rst().seq(1500 + i));
    }
    let sent = std::iter::from_fn(|| t.next()).count();
    assert_eq!(sent, 3);
    assert_eq!(t.host.counters.challenge_acks_suppressed, 7);
    t.advance(Duration::from_secs(1));
    t.send(rst().seq(1600));
    assert_eq!(t.expect().flags, TcpFlags::ACK, "a new second, a new allowance");
    assert_eq!(t.state(), State::Established);
}

#[test]
fn over_the_memory_budget_no_new_connections_and_no_out_of_order_data() {
    let mut cfg = config();
    cfg.memory_budget = 100;
    let (mut t, iss) = established_with(cfg);
    t.send(ack().seq(1001).ack(iss + 1).data(&[0u8; 200]));
    t.expect();
    // 200 unread bytes > 100: under pressure.
    t.send(syn().seq(1).sport(7));
    t.expect_nothing();
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::MemoryLimit), Some(&1));
    t.send(ack().seq(1301).ack(iss + 1).data(b"later"));
    assert_eq!(t.expect().ack, 1201);
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().memory(), 200, "the out-of-order bytes were not kept");
    // Reading frees the budget.
    assert_eq!(t.app_read().len(), 200);
    t.send(syn().seq(1).sport(7));
    assert_eq!(t.expect().flags, TcpFlags::SYN | TcpFlags::ACK);
}
