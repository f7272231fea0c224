//! Output bursts (`set_output_budget`/`send_held`): the budget bounds how many packets are
//! built before they are taken, and the held connection later sends exactly what it would
//! have sent at once.

use super::*;

/// Everything the host has built so far, as (seq, len, flags).
fn drain(t: &mut Peer) -> Vec<(u32, u32, TcpFlags)> {
    let mut out = Vec::new();
    while let Some(g) = t.next() {
        out.push((g.seq, g.len(), g.flags));
    }
    out
}

/// The same with sequence numbers relative to the host's ISS (two hosts pick different ones).
fn relative(segs: &[(u32, u32, TcpFlags)], iss: u32) -> Vec<(u32, u32, TcpFlags)> {
    segs.iter().map(|&(seq, len, flags)| (seq.wrapping_sub(iss), len, flags)).collect()
}

fn sending() -> (Peer, u32) {
    let mut cfg = config();
    cfg.tcp.send_buf = 65536;
    established_with(cfg)
}

#[test]
fn a_budget_holds_the_rest_of_a_window_for_send_held() {
    let (mut whole, whole_iss) = sending();
    whole.app_write(&[5u8; 20_000]);
    let at_once = relative(&drain(&mut whole), whole_iss);
    assert!(at_once.len() > 6, "the initial window allows more than two bursts of three: {at_once:?}");

    let (mut t, iss) = sending();
    t.host.set_output_budget(Some(3));
    t.app_write(&[5u8; 20_000]);
    let mut bursts = vec![drain(&mut t)];
    assert_eq!(bursts[0].len(), 3, "the budget stops the build at three packets");
    assert!(t.host.has_held_output());
    while t.host.has_held_output() {
        t.host.send_held(t.now);
        let burst = drain(&mut t);
        assert!(burst.len() <= 3, "each round builds at most the budget: {burst:?}");
        bursts.push(burst);
    }
    assert_eq!(relative(&bursts.concat(), iss), at_once, "the same segments, in the same order");
}

#[test]
fn acks_between_bursts_are_taken_into_account() {
    let (mut t, _) = sending();
    t.host.set_output_budget(Some(2));
    t.app_write(&[9u8; 20_000]);
    let first = drain(&mut t);
    assert_eq!(first.len(), 2);
    // The peer acknowledges the first burst before the rest goes: the held connection then
    // sends from where it stopped, within the window as the ACK left it.
    let acked = first[1].0.wrapping_add(first[1].1);
    t.send(ack().seq(PEER_ISS + 1).ack(acked));
    let mut next = drain(&mut t);
    while t.host.has_held_output() {
        t.host.send_held(t.now);
        next.extend(drain(&mut t));
    }
    assert_eq!(next.first().map(|s| s.0), Some(acked), "no gap and no repeat after the held point");
    for pair in next.windows(2) {
        assert_eq!(pair[0].0.wrapping_add(pair[0].1), pair[1].0, "contiguous: {next:?}");
    }
}

#[test]
fn without_a_budget_nothing_is_held() {
    let (mut t, _) = sending();
    t.host.set_output_budget(Some(1));
    t.host.set_output_budget(None);
    t.app_write(&[1u8; 20_000]);
    assert!(drain(&mut t).len() > 1);
    assert!(!t.host.has_held_output());
}

/// A bulk sender that used its budget holds back nobody else: a second connection's SYN,ACK
/// and the ACK of its data go out in the same pass, before the first is pulled again.
#[test]
fn a_held_bulk_sender_does_not_hold_back_another_connection() {
    let (mut t, _) = sending();
    t.host.set_output_budget(Some(2));
    t.app_write(&[7u8; 20_000]);
    assert!(t.host.has_held_output(), "the first connection used its budget");
    // Nothing taken yet: its two packets are still queued when the second client arrives.
    t.send(syn().seq(5000).sport(PEER_PORT + 1));
    t.send(ack().seq(5001).ack(0).sport(PEER_PORT + 1));
    let out: Vec<Got> = std::iter::from_fn(|| t.next()).collect();
    let sa = out.iter().find(|g| g.dst.port() == PEER_PORT + 1 && g.flags == TcpFlags::SYN | TcpFlags::ACK);
    let seen: Vec<(u16, TcpFlags)> = out.iter().map(|g| (g.dst.port(), g.flags)).collect();
    let Some(sa) = sa else { panic!("the second connection's SYN,ACK is held back: {seen:?}") };
    let iss = sa.seq;
    t.send(ack().seq(5001).ack(iss.wrapping_add(1)).sport(PEER_PORT + 1).data(b"hello"));
    let out: Vec<Got> = std::iter::from_fn(|| t.next()).collect();
    let seen: Vec<(u16, u32, TcpFlags)> = out.iter().map(|g| (g.dst.port(), g.ack, g.flags)).collect();
    assert!(
        out.iter().any(|g| g.dst.port() == PEER_PORT + 1 && g.ack == 5006),
        "the second connection's data is acknowledged at once: {seen:?}"
    );
    assert!(t.host.has_held_output(), "the bulk sender waits for send_held");
}
