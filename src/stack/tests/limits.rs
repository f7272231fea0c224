//! The host's limits under attack: the SYN backlog counted exactly however half-open
//! connections end, a full table or a source at its share answered with SYN cookies, and
//! an idle connection reclaimed for a peer that completes its handshake.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::*;

/// A forged source: its SYN,ACKs go nowhere and it never answers.
const SPOOFED: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 99);
/// A second, well-behaved client.
const OTHER: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 3);

fn half_open(t: &Peer) -> usize {
    t.host.connections().filter(|(_, c)| c.state() == State::SynReceived).count()
}

fn drain(t: &mut Peer) -> Vec<Got> {
    std::iter::from_fn(|| t.next()).collect()
}

/// What the issue saw with hping3: SYNs from a source that never answers, alternating with
/// SYNs from one whose kernel resets each SYN,ACK. Each reset half-open connection used to
/// leave the backlog twice (once as it closed, once as it was forgotten), so the count
/// fell below the truth and SYN-RECEIVED grew past the backlog, round after round.
#[test]
fn alternate_spoofed_and_reset_syns_keep_syn_received_within_the_backlog() {
    let mut cfg = config();
    cfg.backlog = 8;
    let mut t = Peer::listening_with(cfg);
    let mut port = 1000u16;
    for round in 0..6 {
        for _ in 0..5 {
            port += 1;
            t.send(syn().seq(7).src(SPOOFED).sport(port));
        }
        for _ in 0..5 {
            port += 1;
            t.send(syn().seq(5000).sport(port));
            // The kernel owns no such connection: RST with the SYN,ACK's acknowledgment.
            t.send(rst().seq(5001).sport(port));
        }
        drain(&mut t);
        t.host.check_counts();
        assert!(half_open(&t) <= 8, "round {round}: {} half-open connections, backlog 8", half_open(&t));
    }
    assert_eq!(half_open(&t), 8, "the spoofed ones hold the backlog; the rest got cookies");
    assert!(t.host.counters.syn_cookies_sent > 0);
    // As the spoofed ones time out, their places free up again, exactly.
    for _ in 0..60 {
        t.advance(Duration::from_secs(5));
        drain(&mut t);
    }
    t.host.check_counts();
    assert_eq!(half_open(&t), 0);
    t.send(syn().seq(1).sport(1));
    assert_eq!(t.expect().flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(half_open(&t), 1, "a SYN gets state again");
}

/// Complete a handshake from `ip`:`port`, through state or a cookie alike; the connection
/// is accepted.
fn connect_from(t: &mut Peer, ip: Ipv4Addr, port: u16) -> ConnId {
    t.send(syn().seq(100).src(ip).sport(port));
    let sa = t.expect();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    t.send(ack().seq(101).ack(sa.seq.wrapping_add(1)).src(ip).sport(port));
    t.host.accept(8000).expect("accepted")
}

fn limited(max_connections: usize, max_per_source: usize) -> Peer {
    let mut cfg = config();
    cfg.max_connections = max_connections;
    cfg.max_per_source = max_per_source;
    cfg.reclaim_idle = Duration::from_secs(1);
    Peer::listening_with(cfg)
}

#[test]
fn a_full_table_answers_a_syn_with_a_cookie_and_its_ack_takes_the_idlest_place() {
    let mut t = limited(3, 100);
    let oldest = connect_from(&mut t, PEER_IP, 1);
    t.advance(Duration::from_secs(2));
    let _b = connect_from(&mut t, PEER_IP, 2);
    let _c = connect_from(&mut t, OTHER, 3);
    t.advance(Duration::from_secs(2));

    t.send(syn().seq(500).sport(4));
    let sa = t.expect();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(t.host.counters.syn_cookies_sent, 1, "a full table keeps no state for a SYN");
    assert_eq!(t.host.connections().count(), 3);

    t.send(ack().seq(501).ack(sa.seq.wrapping_add(1)).sport(4));
    let rst = t.expect();
    assert_eq!((rst.flags, rst.dst.port()), (TcpFlags::RST, 1), "the connection silent longest is reset");
    let new = t.host.accept(8000).expect("the cookie's connection is made");
    assert_eq!(t.host.conn(new).map(|c| c.state()), Some(State::Established));
    assert_eq!(t.host.conn(oldest).map(|c| c.state()), Some(State::Closed), "its application sees the reset");
    assert_eq!(t.host.counters.reclaimed, 1);
    t.host.check_counts();
}

#[test]
fn with_no_connection_idle_long_enough_a_full_table_refuses() {
    let mut t = limited(2, 100);
    connect_from(&mut t, PEER_IP, 1);
    connect_from(&mut t, PEER_IP, 2);
    t.advance(Duration::from_millis(500));
    t.send(syn().seq(500).sport(3));
    let sa = t.expect();
    t.send(ack().seq(501).ack(sa.seq.wrapping_add(1)).sport(3));
    t.expect_nothing();
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::ConnectionLimit), Some(&1));
    assert_eq!(t.host.counters.reclaimed, 0, "busy connections are never taken");
    // The client's next segment carries the same cookie: once one is idle, it gets in.
    t.advance(Duration::from_secs(1));
    t.send(ack().seq(501).ack(sa.seq.wrapping_add(1)).sport(3).data(b"GET"));
    let got = drain(&mut t);
    assert!(got.iter().any(|g| g.flags == TcpFlags::RST), "{got:?}");
    assert!(got.iter().any(|g| g.dst.port() == 3 && g.ack == 504), "the data is taken: {got:?}");
    t.host.check_counts();
}

#[test]
fn a_source_at_its_share_replaces_its_own_idlest_connection_only() {
    let mut t = limited(100, 2);
    let other = connect_from(&mut t, OTHER, 1);
    let mine = connect_from(&mut t, PEER_IP, 1);
    t.advance(Duration::from_secs(1));
    connect_from(&mut t, PEER_IP, 2);
    t.advance(Duration::from_secs(2));
    // OTHER is the idlest of all, but not this source's to take.
    t.send(syn().seq(500).sport(3));
    let sa = t.expect();
    assert_eq!(t.host.counters.syn_cookies_sent, 1);
    t.send(ack().seq(501).ack(sa.seq.wrapping_add(1)).sport(3));
    let rst = t.expect();
    assert_eq!((rst.flags, rst.dst), (TcpFlags::RST, SocketAddrV4::new(PEER_IP, 1)));
    assert_eq!(t.host.conn(mine).map(|c| c.state()), Some(State::Closed));
    assert_eq!(t.host.conn(other).map(|c| c.state()), Some(State::Established));
    assert!(t.host.accept(8000).is_some());
    // Another source is below its share: state as usual.
    t.send(syn().seq(900).src(OTHER).sport(2));
    t.expect();
    assert_eq!(t.host.counters.syn_cookies_sent, 1);
    t.host.check_counts();
}

#[test]
fn a_full_table_without_cookies_drops_syns() {
    let mut cfg = config();
    cfg.max_connections = 2;
    cfg.syn_cookies = false;
    let mut t = Peer::listening_with(cfg);
    for port in 1..=3 {
        t.send(syn().seq(1).sport(port));
    }
    t.expect();
    t.expect();
    t.expect_nothing();
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::ConnectionLimit), Some(&1));
}

/// A client that lets the server close first leaves TIME-WAIT behind at our end; those hold
/// nothing of the client's and are bounded by `max_time_wait`, so they do not fill its share:
/// the next connection gets state, not a cookie, and nothing is reset to make room.
#[test]
fn time_wait_does_not_count_against_a_sources_share() {
    let mut t = limited(100, 2);
    for port in 1..=4 {
        let id = connect_from(&mut t, PEER_IP, port);
        t.conn = Some(id);
        t.app_shutdown();
        let ours = t.expect();
        assert_eq!(ours.flags, TcpFlags::FIN | TcpFlags::ACK);
        t.send(fin().seq(101).ack(ours.seq.wrapping_add(1)).sport(port));
        assert_eq!(t.expect().ack, 102);
        assert_eq!(t.host.conn(id).map(|c| c.state()), Some(State::TimeWait));
        t.host.check_counts();
    }
    assert_eq!(t.host.counters.syn_cookies_sent, 0, "four connections, a share of two: no cookie");
    assert_eq!(t.host.counters.reclaimed, 0);
    // Two open connections fill the share again; the third is over it.
    connect_from(&mut t, PEER_IP, 5);
    connect_from(&mut t, PEER_IP, 6);
    assert_eq!(t.host.counters.syn_cookies_sent, 0);
    t.send(syn().seq(700).sport(7));
    t.expect();
    assert_eq!(t.host.counters.syn_cookies_sent, 1, "open connections still count");
    // TIME-WAIT ends and the counts stay exact.
    t.advance(Duration::from_secs(300));
    drain(&mut t);
    t.host.check_counts();
}

/// Every way out of each place keeps the counts: reset in the handshake, timed out,
/// queued then reset, accepted then released, and a listener closed with some of each.
#[test]
fn every_way_a_connection_leaves_keeps_the_counts() {
    let mut t = Peer::listening();
    t.send(syn().seq(1).sport(1));
    t.send(rst().seq(2).sport(1)); // reset while half-open
    t.send(syn().seq(1).sport(2)); // left to time out
    drain(&mut t);
    let a = connect_from(&mut t, PEER_IP, 3);
    t.host.release(t.now, a); // accepted, then dropped by the application
    drain(&mut t);
    t.send(syn().seq(100).sport(4));
    let sa = t.expect();
    t.send(ack().seq(101).ack(sa.seq.wrapping_add(1)).sport(4));
    t.send(rst().seq(101).sport(4)); // queued, reset before accept
    t.send(syn().seq(1).sport(5)); // half-open when the listener goes
    drain(&mut t);
    t.host.check_counts();
    let queued = t.host.accept(8000).expect("the reset one is still handed out, as accept(2) does");
    assert_eq!(t.host.conn(queued).map(|c| c.state()), Some(State::Closed));
    t.host.check_counts();
    t.host.unlisten(t.now, 8000);
    for _ in 0..60 {
        t.advance(Duration::from_secs(5));
        drain(&mut t);
    }
    t.host.check_counts();
    t.host.release(t.now, queued);
    t.host.check_counts();
    assert_eq!(half_open(&t), 0);
    let left: Vec<State> = t.host.connections().map(|(_, c)| c.state()).collect();
    assert_eq!(left, [State::FinWait1], "only the released one, its FIN unanswered");
}
