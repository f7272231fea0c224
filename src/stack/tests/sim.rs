//! Two hosts joined by a simulated network that loses, duplicates, delays and reorders
//! packets, run on a fake clock, optionally through a bottleneck of a given rate with an
//! unbounded queue. Property: whatever the network does, each side receives the other's
//! bytes exactly, and both connections end in CLOSED, with either congestion control.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::time::Duration;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};

use super::*;
use crate::tcp::congestion::Algorithm;

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct NetFaults {
    pub loss: f64,
    pub dup: f64,
    pub reorder: f64,
    pub delay: Duration,
    pub jitter: Duration,
    /// Bytes per second each way through a FIFO bottleneck before the delay; 0: no limit.
    pub rate: u64,
}

/// Per-side TCP settings for a run.
#[derive(Clone, Copy, Debug)]
pub(super) struct SimTcp {
    pub cc: Algorithm,
    pub send_buf: usize,
    pub recv_buf: usize,
    pub mss: u16,
}

impl Default for SimTcp {
    /// Small buffers and segments: many segments, many windows, quick runs.
    fn default() -> Self {
        SimTcp { cc: Algorithm::NewReno, send_buf: 8 * 1024, recv_buf: 16 * 1024, mss: 536 }
    }
}

/// A packet in flight: delivery time, a tie-breaker, the bytes.
type InFlight = Reverse<(Instant, u64, Vec<u8>)>;

struct Side {
    host: Host,
    conn: Option<ConnId>,
    to_send: Vec<u8>,
    sent: usize,
    shut: bool,
    received: Vec<u8>,
    eof: bool,
}

impl Side {
    fn new(addr: Ipv4Addr, now: Instant, data: Vec<u8>, tcp: SimTcp) -> Side {
        let mut cfg = HostConfig { addr, ..Default::default() };
        cfg.tcp.msl = Duration::from_millis(100);
        cfg.tcp.recv_buf = tcp.recv_buf;
        cfg.tcp.send_buf = tcp.send_buf;
        cfg.tcp.mss = tcp.mss;
        cfg.tcp.congestion = tcp.cc;
        cfg.tcp.max_retries = 30;
        cfg.tcp.syn_retries = 30;
        cfg.tcp.max_rto = Duration::from_secs(2);
        Side {
            host: Host::new(cfg, now),
            conn: None,
            to_send: data,
            sent: 0,
            shut: false,
            received: Vec::new(),
            eof: false,
        }
    }

    /// What an application would do: write what fits, shut down when done, read all.
    fn run_app(&mut self, now: Instant) {
        let Some(id) = self.conn else { return };
        let Some(connected) = self.host.conn(id).map(|c| c.is_connected()) else { return };
        if !connected {
            return;
        }
        while self.sent < self.to_send.len() {
            let chunk = &self.to_send[self.sent..];
            match self.host.with_conn(now, id, |c| c.send(chunk)) {
                Some(Ok(n)) => self.sent += n,
                _ => break,
            }
        }
        if self.sent == self.to_send.len() && !self.shut {
            self.shut = true;
            self.host.with_conn(now, id, |c| c.shutdown_write(now));
        }
        let mut buf = [0u8; 4096];
        while !self.eof {
            match self.host.with_conn(now, id, |c| c.recv(&mut buf)) {
                Some(Ok(0)) => self.eof = true,
                Some(Ok(n)) => self.received.extend_from_slice(&buf[..n]),
                Some(Err(e)) if e.kind() == ErrorKind::WouldBlock => break,
                other => panic!("read failed: {other:?}"),
            }
        }
    }

    fn state(&self) -> Option<State> {
        self.conn.and_then(|id| self.host.conn(id)).map(|c| c.state())
    }
}

pub(super) struct Outcome {
    pub a_got: Vec<u8>,
    pub b_got: Vec<u8>,
    pub a_state: Option<State>,
    pub b_state: Option<State>,
    pub elapsed: Duration,
    /// The longest any packet from A waited in the bottleneck's queue.
    pub max_queue_a: Duration,
}

/// Run one transfer: A connects to B and both send their data, then close.
pub(super) fn simulate(a_data: Vec<u8>, b_data: Vec<u8>, faults: NetFaults, seed: u64, tcp: SimTcp) -> Outcome {
    let start = Instant::now();
    let mut now = start;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut a = Side::new(A_IP, now, a_data, tcp);
    let mut b = Side::new(B_IP, now, b_data, tcp);
    // When each direction's bottleneck is next free.
    let mut link_free = [now, now];
    let mut max_queue_a = Duration::ZERO;
    b.host.listen(80, None).unwrap();
    a.conn = Some(a.host.connect(now, SocketAddrV4::new(B_IP, 80)).unwrap());
    let mut to_b: BinaryHeap<InFlight> = BinaryHeap::new();
    let mut to_a: BinaryHeap<InFlight> = BinaryHeap::new();
    let mut tie = 0u64;
    let limit = start + Duration::from_secs(600);
    while now < limit {
        for (dir, (side, queue)) in [(&mut a, &mut to_b), (&mut b, &mut to_a)].into_iter().enumerate() {
            while let Some(pkt) = side.host.pop_output() {
                if rng.random_bool(faults.loss) {
                    continue;
                }
                let mut sent = now;
                if let Some(nanos) = (pkt.len() as u64 * 1_000_000_000).checked_div(faults.rate) {
                    let start = link_free[dir].max(now);
                    let wire = Duration::from_nanos(nanos);
                    link_free[dir] = start + wire;
                    sent = link_free[dir];
                    if dir == 0 {
                        max_queue_a = max_queue_a.max(start - now);
                    }
                }
                let copies = if rng.random_bool(faults.dup) { 2 } else { 1 };
                for _ in 0..copies {
                    let mut at = sent + faults.delay + faults.jitter.mul_f64(rng.random::<f64>());
                    if rng.random_bool(faults.reorder) {
                        at += faults.delay.max(Duration::from_millis(1)) * 3;
                    }
                    tie += 1;
                    queue.push(Reverse((at, tie, pkt.clone())));
                }
            }
        }
        // What is due arrives as one receive batch, as the event loop reads the TUN.
        for (side, queue) in [(&mut b, &mut to_b), (&mut a, &mut to_a)] {
            side.host.begin_batch();
            while queue.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
                let Some(Reverse((_, _, pkt))) = queue.pop() else { break };
                side.host.handle_packet(now, &pkt);
            }
            side.host.end_batch(now);
        }
        a.host.on_timer(now);
        b.host.on_timer(now);
        if b.conn.is_none() {
            b.conn = b.host.accept(80);
        }
        a.run_app(now);
        b.run_app(now);
        let done = |s: &Side| s.eof && s.shut && s.state() == Some(State::Closed);
        if done(&a) && done(&b) && to_a.is_empty() && to_b.is_empty() {
            break;
        }
        // Jump to the next thing that can happen.
        let next = [
            to_a.peek().map(|Reverse((t, _, _))| *t),
            to_b.peek().map(|Reverse((t, _, _))| *t),
            a.host.poll_at(),
            b.host.poll_at(),
        ]
        .into_iter()
        .flatten()
        .min();
        let pending_output = a.host.pop_output_pending() || b.host.pop_output_pending();
        now = match next {
            _ if pending_output => now,
            Some(t) if t > now => t,
            Some(_) => now + Duration::from_micros(100),
            None => now + Duration::from_millis(1),
        };
    }
    let (a_state, b_state) = (a.state(), b.state());
    Outcome { a_got: a.received, b_got: b.received, a_state, b_state, elapsed: now - start, max_queue_a }
}

fn check(a_len: usize, b_len: usize, faults: NetFaults, seed: u64) {
    check_with(a_len, b_len, faults, seed, SimTcp::default());
}

fn check_with(a_len: usize, b_len: usize, faults: NetFaults, seed: u64, tcp: SimTcp) -> Outcome {
    let a_data: Vec<u8> = (0..a_len).map(|i| (i * 7 + 3) as u8).collect();
    let b_data: Vec<u8> = (0..b_len).map(|i| (i * 13 + 1) as u8).collect();
    let out = simulate(a_data.clone(), b_data.clone(), faults, seed, tcp);
    let faults = (faults, tcp.cc);
    assert!(out.b_got == a_data, "B got {} of {} bytes from A ({faults:?}, seed {seed})", out.b_got.len(), a_len);
    assert!(out.a_got == b_data, "A got {} of {} bytes from B ({faults:?}, seed {seed})", out.a_got.len(), b_len);
    assert_eq!(out.a_state, Some(State::Closed), "A ({faults:?}, seed {seed}, after {:?})", out.elapsed);
    assert_eq!(out.b_state, Some(State::Closed), "B ({faults:?}, seed {seed}, after {:?})", out.elapsed);
    out
}

#[test]
fn clean_network_transfers_both_ways() {
    let none = NetFaults { delay: Duration::from_millis(5), ..Default::default() };
    check(300_000, 200_000, none, 1);
}

#[test]
fn heavy_loss_both_ways() {
    let f = NetFaults { loss: 0.2, delay: Duration::from_millis(5), ..Default::default() };
    check(100_000, 100_000, f, 2);
}

#[test]
fn everything_at_once() {
    let f = NetFaults {
        loss: 0.1,
        dup: 0.1,
        reorder: 0.2,
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(10),
        rate: 0,
    };
    for seed in 0..8 {
        check(60_000, 40_000, f, seed);
        check_with(60_000, 40_000, f, seed, SimTcp { cc: Algorithm::Bbr, ..Default::default() });
    }
}

/// 4 MB through a 10 MB/s bottleneck, 10 ms round trip, 1 MiB buffers: NewReno fills the
/// bottleneck's queue until the receive window stops it; BBR's window is about twice the
/// bandwidth-delay product (100 kB), so its queue stays near one round trip; both keep the
/// link busy.
#[test]
fn bbr_keeps_the_bottleneck_queue_short() {
    let f = NetFaults { delay: Duration::from_millis(5), rate: 10_000_000, ..Default::default() };
    let tcp = SimTcp { send_buf: 1 << 20, recv_buf: 1 << 20, mss: 1460, ..Default::default() };
    let reno = check_with(4_000_000, 0, f, 1, tcp);
    let bbr = check_with(4_000_000, 0, f, 1, SimTcp { cc: Algorithm::Bbr, ..tcp });
    eprintln!(
        "queue: newreno {:?}, bbr {:?}; time: newreno {:?}, bbr {:?}",
        reno.max_queue_a, bbr.max_queue_a, reno.elapsed, bbr.elapsed
    );
    assert!(reno.max_queue_a > Duration::from_millis(50), "newreno {:?}", reno.max_queue_a);
    assert!(bbr.max_queue_a < Duration::from_millis(20), "bbr {:?}", bbr.max_queue_a);
    // The shorter queue costs no time: the link never idles (the run includes TIME-WAIT).
    assert!(
        bbr.elapsed < reno.elapsed + Duration::from_millis(10),
        "bbr {:?}, newreno {:?}",
        bbr.elapsed,
        reno.elapsed
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn any_faults_deliver_the_exact_streams_and_close(
        a_len in 0usize..60_000,
        b_len in 0usize..60_000,
        loss in 0.0f64..0.25,
        dup in 0.0f64..0.2,
        reorder in 0.0f64..0.3,
        delay_ms in 0u64..30,
        jitter_ms in 0u64..20,
        seed in any::<u64>(),
        bbr in any::<bool>(),
    ) {
        let f = NetFaults {
            loss, dup, reorder,
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            rate: 0,
        };
        let cc = if bbr { Algorithm::Bbr } else { Algorithm::NewReno };
        check_with(a_len, b_len, f, seed, SimTcp { cc, ..Default::default() });
    }
}
