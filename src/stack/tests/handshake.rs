//! Opening: passive, active, simultaneous; SYN-ACK retransmission; ports with no listener.

use std::time::Duration;

use super::*;

#[test]
fn passive_open_three_way_handshake() {
    let mut t = Peer::listening();
    t.send(syn().seq(1000).mss(1460).win(64240));
    let sa = t.expect();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(sa.ack, 1001);
    assert_eq!(sa.options.mss, Some(1000), "our MSS");
    assert_eq!(sa.options.window_scale, None, "no scaling unless the peer offers it");
    assert_eq!(sa.src.port(), 8000);
    assert_eq!(sa.dst, SocketAddrV4::new(PEER_IP, PEER_PORT));
    assert!(t.host.accept(8000).is_none(), "not acceptable before the handshake completes");
    t.send(ack().seq(1001).ack(sa.seq.wrapping_add(1)));
    t.accept();
    assert_eq!(t.state(), State::Established);
    t.expect_nothing();
}

#[test]
fn window_scale_negotiated_when_offered() {
    let mut cfg = config();
    cfg.tcp.recv_buf = 256 * 1024;
    let mut t = Peer::listening_with(cfg);
    t.send(syn().seq(1).mss(1460).wscale(7));
    let sa = t.expect();
    assert_eq!(sa.options.window_scale, Some(3), "256 KiB needs a shift of 3 to fit 16 bits");
    assert_eq!(sa.window, 65535, "a SYN's window is never scaled");
    t.send(ack().seq(2).ack(sa.seq.wrapping_add(1)).win(100)); // 100 << 7 = 12800
    t.accept();
    let id = t.conn.unwrap();
    assert_eq!(t.host.conn(id).unwrap().peer_window(), 12800);
    // Our advertised window is scaled down by our shift.
    t.send(ack().seq(2).ack(sa.seq.wrapping_add(1)).data(b"hi").win(100));
    let a = t.expect();
    assert_eq!(u32::from(a.window) << 3, (256 * 1024 - 2) & !7, "free space, rounded down by the shift");
}

#[test]
fn isn_differs_per_connection() {
    let mut t = Peer::listening();
    t.send(syn().seq(1000).sport(1111));
    let a = t.expect();
    t.send(syn().seq(1000).sport(2222));
    let b = t.expect();
    assert_ne!(a.seq, b.seq);
}

#[test]
fn syn_ack_retransmitted_when_the_ack_is_lost() {
    let mut t = Peer::listening();
    t.send(syn().seq(1000));
    let sa = t.expect();
    t.advance(Duration::from_millis(999));
    t.expect_nothing();
    t.advance(Duration::from_millis(1));
    let again = t.expect();
    assert_eq!(again.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((again.seq, again.ack), (sa.seq, 1001));
    // Backed off: the next one after 2 s more.
    t.advance(Duration::from_millis(1999));
    t.expect_nothing();
    t.advance(Duration::from_millis(1));
    assert_eq!(t.expect().flags, TcpFlags::SYN | TcpFlags::ACK);
    t.send(ack().seq(1001).ack(sa.seq.wrapping_add(1)));
    t.accept();
    assert_eq!(t.state(), State::Established);
}

#[test]
fn retransmitted_syn_gets_the_syn_ack_again() {
    let mut t = Peer::listening();
    t.send(syn().seq(1000));
    let sa = t.expect();
    t.send(syn().seq(1000));
    let again = t.expect();
    assert_eq!(again.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(again.seq, sa.seq);
}

#[test]
fn syn_received_gives_up_after_syn_retries() {
    let mut t = Peer::listening();
    t.send(syn().seq(1000));
    t.expect();
    for _ in 0..6 {
        t.advance(Duration::from_secs(120));
        assert_eq!(t.expect().flags, TcpFlags::SYN | TcpFlags::ACK);
    }
    t.advance(Duration::from_secs(120));
    assert!(t.next().is_none_or(|g| g.flags.contains(TcpFlags::RST)));
    assert_eq!(t.host.active_connections(), 0);
    assert!(t.host.accept(8000).is_none());
}

#[test]
fn closed_port_answers_rst_ack() {
    let mut t = Peer::listening();
    t.send(syn().seq(5000).dport(81));
    let r = t.expect();
    assert_eq!(r.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!((r.seq, r.ack), (0, 5001));
    assert_eq!(t.host.counters.rst_sent, 1);
}

#[test]
fn stray_ack_gets_rst_with_its_ack_as_seq() {
    let mut t = Peer::listening();
    t.send(ack().seq(5000).ack(777));
    let r = t.expect();
    assert_eq!(r.flags, TcpFlags::RST);
    assert_eq!(r.seq, 777);
}

#[test]
fn rst_to_closed_port_is_not_answered() {
    let mut t = Peer::listening();
    t.send(rst().seq(5000).dport(81));
    t.expect_nothing();
}

#[test]
fn active_open_then_data() {
    let mut t = Peer::new(config());
    let remote = SocketAddrV4::new(PEER_IP, 9999);
    let id = t.host.connect(t.now, remote).unwrap();
    t.conn = Some(id);
    let s = t.expect();
    assert_eq!(s.flags, TcpFlags::SYN);
    assert_eq!(s.options.mss, Some(1000));
    assert!(s.options.window_scale.is_some());
    assert_eq!(t.state(), State::SynSent);
    let local = s.src.port();
    t.send(syn().seq(300).ack(s.seq.wrapping_add(1)).mss(500).sport(9999).dport(local));
    let a = t.expect();
    assert_eq!(a.flags, TcpFlags::ACK);
    assert_eq!(a.ack, 301);
    assert_eq!(t.state(), State::Established);
    t.app_write(&[7u8; 1200]);
    let d1 = t.expect();
    let d2 = t.expect();
    assert_eq!((d1.len(), d2.len()), (500, 500), "segmented to the peer's MSS of 500");
    t.send(ack().seq(301).ack(s.seq.wrapping_add(1001)).sport(9999).dport(local));
    let d3 = t.expect();
    assert_eq!(d3.len(), 200);
}

#[test]
fn active_open_refused() {
    let mut t = Peer::new(config());
    let id = t.host.connect(t.now, SocketAddrV4::new(PEER_IP, 9999)).unwrap();
    t.conn = Some(id);
    let s = t.expect();
    t.send(seg(TcpFlags::RST | TcpFlags::ACK).ack(s.seq.wrapping_add(1)).sport(9999).dport(s.src.port()));
    assert_eq!(t.host.conn(id).unwrap().error(), Some(std::io::ErrorKind::ConnectionRefused));
}

#[test]
fn active_open_ignores_bad_ack_and_resets_it() {
    let mut t = Peer::new(config());
    let id = t.host.connect(t.now, SocketAddrV4::new(PEER_IP, 9999)).unwrap();
    t.conn = Some(id);
    let s = t.expect();
    t.send(syn().seq(1).ack(s.seq.wrapping_add(50)).sport(9999).dport(s.src.port()));
    let r = t.expect();
    assert_eq!(r.flags, TcpFlags::RST);
    assert_eq!(r.seq, s.seq.wrapping_add(50));
    assert_eq!(t.state(), State::SynSent);
}

#[test]
fn simultaneous_open() {
    let mut t = Peer::new(config());
    let id = t.host.connect(t.now, SocketAddrV4::new(PEER_IP, 9999)).unwrap();
    t.conn = Some(id);
    let s = t.expect();
    let local = s.src.port();
    // Their SYN crosses ours.
    t.send(syn().seq(700).sport(9999).dport(local));
    let sa = t.expect();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((sa.seq, sa.ack), (s.seq, 701));
    assert_eq!(t.state(), State::SynReceived);
    t.send(syn().seq(700).ack(s.seq.wrapping_add(1)).sport(9999).dport(local).flags(TcpFlags::SYN | TcpFlags::ACK));
    // Their SYN,ACK: its SYN is old (seq 700 < RCV.NXT 701) so the acceptability test
    // answers with an ACK; their ACK of our SYN still completes the handshake when it comes.
    t.send(ack().seq(701).ack(s.seq.wrapping_add(1)).sport(9999).dport(local));
    assert_eq!(t.state(), State::Established);
}

#[test]
fn backlog_full_drops_syns_when_cookies_are_off() {
    let mut cfg = config();
    cfg.backlog = 2;
    cfg.syn_cookies = false;
    let mut t = Peer::listening_with(cfg);
    for port in [1, 2, 3] {
        t.send(syn().seq(1).sport(port));
    }
    assert!(t.expect().flags.contains(TcpFlags::SYN));
    assert!(t.expect().flags.contains(TcpFlags::SYN));
    t.expect_nothing();
    assert_eq!(t.host.counters.drops.get(&wire::DropReason::BacklogFull), Some(&1));
}
