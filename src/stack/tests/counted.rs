//! What the exit summary counts: every RST that leaves, whoever built it, and each drop under
//! a reason that says what was dropped.

use std::net::SocketAddrV4;

use super::*;
use crate::stack::counters::Summary;
use crate::wire::DropReason;

fn drops(t: &Peer, reason: DropReason) -> u64 {
    t.host.counters.drops.get(&reason).copied().unwrap_or(0)
}

#[test]
fn every_rst_sent_is_counted_from_the_stack_and_from_connections() {
    let mut t = Peer::listening();
    // The stack's own: a SYN for a closed port.
    t.send(syn().seq(5000).dport(81));
    assert!(t.expect().flags.contains(TcpFlags::RST));
    // A connection's: an ACK in SYN-RECEIVED for something never sent.
    t.send(syn().seq(1000).sport(40001));
    let sa = t.expect();
    t.send(ack().seq(1001).ack(sa.seq.wrapping_add(77)).sport(40001));
    assert!(t.expect().flags.contains(TcpFlags::RST));
    // The application's: an abort of an established connection.
    t.send(syn().seq(2000).sport(40002));
    let sa = t.expect();
    t.send(ack().seq(2001).ack(sa.seq.wrapping_add(1)).sport(40002));
    let id = t.accept();
    let now = t.now;
    t.host.with_conn(now, id, |c| c.abort(now, std::io::ErrorKind::ConnectionAborted));
    let mut rsts = 0;
    while let Some(g) = t.next() {
        rsts += u64::from(g.flags.contains(TcpFlags::RST));
    }
    assert_eq!(rsts, 1, "the abort sends one RST");
    assert_eq!(t.host.counters.rst_sent, 3);
    let summary = Summary { counters: &t.host.counters, retransmits: 0 }.to_string();
    assert!(summary.contains("3 RST sent"), "{summary}");
}

#[test]
fn segments_for_a_listener_that_are_dropped_say_why() {
    let mut t = Peer::listening();
    t.host.tracer.set_enabled(true);
    t.send(rst().seq(1));
    t.send(seg(TcpFlags::FIN).seq(1));
    t.expect_nothing();
    assert_eq!(drops(&t, DropReason::RstInListen), 1);
    assert_eq!(drops(&t, DropReason::NoSynInListen), 1);
    let trace = t.host.tracer.take_lines().join("\n");
    assert!(trace.contains("dropped a packet: rst-in-listen"), "{trace}");
    assert!(trace.contains("dropped a packet: no-syn-in-listen"), "{trace}");
    let summary = Summary { counters: &t.host.counters, retransmits: 0 }.to_string();
    assert!(summary.contains("rst-in-listen=1") && summary.contains("no-syn-in-listen=1"), "{summary}");
}

#[test]
fn segments_for_an_open_connection_that_are_dropped_say_why() {
    let (mut t, iss) = established();
    t.send(syn().seq(1200));
    t.expect(); // the challenge ACK
    assert_eq!(drops(&t, DropReason::SynOnOpenConnection), 1);
    t.send(seg(TcpFlags::PSH).seq(1001).data(b"no ack flag"));
    t.expect_nothing();
    assert_eq!(drops(&t, DropReason::NoAckFlag), 1);
    assert_eq!(t.app_read(), b"", "the data of a segment without ACK is not taken");
    // A connection that has closed (here: aborted, its RST not yet pulled) drops what still
    // reaches it. The stack forgets it once the RST is out, so this is seen only inside.
    let mut pkt = Vec::new();
    let (peer, host) = (SocketAddrV4::new(PEER_IP, PEER_PORT), SocketAddrV4::new(HOST_IP, t.port));
    let hdr = TcpHeaderOut { seq: SeqNum(1001), ack: SeqNum(iss + 1), flags: TcpFlags::ACK, ..Default::default() };
    ipv4::build_tcp(peer, host, &hdr, &[], 7, &mut pkt);
    let Ok(Packet::Tcp(late)) = wire::parse_packet(HOST_IP, &pkt) else { panic!("a TCP packet") };
    let (now, id) = (t.now, t.conn.unwrap());
    let got = t.host.with_conn(now, id, |c| {
        c.abort(now, std::io::ErrorKind::ConnectionAborted);
        c.on_segment(now, &late)
    });
    assert_eq!(got, Some(Err(DropReason::AfterClose)));
}

#[test]
fn segments_in_syn_sent_that_are_dropped_say_why() {
    let mut t = Peer::new(config());
    let now = t.now;
    let id = t.host.connect(now, SocketAddrV4::new(PEER_IP, PEER_PORT)).unwrap();
    t.conn = Some(id);
    let s = t.expect();
    assert_eq!(s.flags, TcpFlags::SYN);
    t.port = s.src.port();
    t.send(rst().seq(7000));
    t.send(seg(TcpFlags::FIN).seq(7000));
    t.expect_nothing();
    assert_eq!(t.state(), State::SynSent);
    assert_eq!(drops(&t, DropReason::RstWithoutAckInSynSent), 1);
    assert_eq!(drops(&t, DropReason::NoSynInSynSent), 1);
}
