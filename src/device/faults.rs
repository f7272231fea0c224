//! A bad network, on purpose: seeded loss, duplication, reordering, delay and jitter applied
//! to the packets crossing a device, independently in each direction.
//!
//! The kernel on these machines has no netem, so the faults live here, in the device layer,
//! where the stack above cannot tell them from a real link. Every decision comes from a small
//! seeded generator: the same seed and the same packet arrivals give the same faults.
//!
//! Per packet, in this order:
//! 1. `loss=p`: dropped with probability p.
//! 2. `dup=p`: with probability p delivered twice; each copy then goes through 3 and 4 alone.
//! 3. `delay=D,jitter=J`: held until `arrival + D + U[-J, +J]` (never before its arrival).
//! 4. `reorder=p`: with probability p, when its time comes the packet is held back again and
//!    released right after the next 1–3 packets of its direction have passed, or when it has
//!    waited `D` (10 ms when D is 0), so a held packet never waits forever when traffic stops.
//!
//! At most [`MAX_HELD`] packets wait per direction; beyond that they are dropped and counted.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Device;

/// Packets a direction may hold (delayed, reordered or waiting to be read) at once.
pub(crate) const MAX_HELD: usize = 10_000;
/// How long a reordered packet waits for later traffic when there is no `delay`.
pub(crate) const REORDER_WAIT_WITHOUT_DELAY: Duration = Duration::from_millis(10);
/// The longest `delay` or `jitter` a spec may ask for.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(60);
/// Inbound packets read from the inner device per `recv` call before giving the loop a turn.
const READS_PER_RECV: usize = 64;

const EXAMPLE: &str = "loss=0.05,dup=0.01,reorder=0.05,delay=20ms,jitter=5ms,seed=7";

/// What to do to the packets of one direction; see the module documentation. Parsed from
/// `loss=0.05,dup=0.01,reorder=0.05,delay=20ms,jitter=5ms,seed=7` (any subset, any order).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Probability of dropping a packet, 0..=1.
    pub loss: f64,
    /// Probability of delivering a packet twice, 0..=1.
    pub dup: f64,
    /// Probability of holding a packet back behind the next 1–3, 0..=1.
    pub reorder: f64,
    pub delay: Duration,
    /// Each packet's delay is `delay` plus a uniform offset in [-jitter, +jitter], floored at 0.
    pub jitter: Duration,
    /// Seeds the generator; the two directions use different streams derived from it.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> FaultConfig {
        FaultConfig { loss: 0.0, dup: 0.0, reorder: 0.0, delay: Duration::ZERO, jitter: Duration::ZERO, seed: 1 }
    }
}

/// A fault spec that does not parse; the message names the key or value and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultSpecError(String);

impl FaultSpecError {
    fn new(msg: impl Into<String>) -> FaultSpecError {
        FaultSpecError(msg.into())
    }
}

impl FromStr for FaultConfig {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<FaultConfig, FaultSpecError> {
        let mut cfg = FaultConfig::default();
        let mut seen: Vec<&str> = Vec::new();
        if spec.trim().is_empty() {
            return Err(FaultSpecError::new(format!(
                "empty fault spec: give key=value pairs separated by commas, e.g. {EXAMPLE}"
            )));
        }
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(FaultSpecError::new(format!(
                    "empty item in fault spec {spec:?}: separate key=value pairs with single commas, e.g. {EXAMPLE}"
                )));
            }
            let Some((key, value)) = item.split_once('=') else {
                return Err(FaultSpecError::new(format!(
                    "{item:?} has no value: write key=value, e.g. loss=0.05 (whole spec e.g. {EXAMPLE})"
                )));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "loss" => cfg.loss = probability(key, value)?,
                "dup" => cfg.dup = probability(key, value)?,
                "reorder" => cfg.reorder = probability(key, value)?,
                "delay" => cfg.delay = duration(key, value)?,
                "jitter" => cfg.jitter = duration(key, value)?,
                "seed" => {
                    cfg.seed = value.parse().map_err(|_| {
                        FaultSpecError::new(format!(
                            "seed={value}: the seed must be a whole number from 0 to {}, e.g. seed=7",
                            u64::MAX
                        ))
                    })?
                }
                _ => {
                    return Err(FaultSpecError::new(format!(
                        "unknown fault {key:?} in {item:?}: the keys are loss, dup and reorder (probabilities \
                         from 0 to 1), delay and jitter (durations such as 20ms, 500us, 1s) and seed (a whole \
                         number), e.g. {EXAMPLE}"
                    )))
                }
            }
            if seen.contains(&key) {
                return Err(FaultSpecError::new(format!("{key} is given twice in {spec:?}: give each key once")));
            }
            seen.push(key);
        }
        Ok(cfg)
    }
}

fn probability(key: &str, value: &str) -> Result<f64, FaultSpecError> {
    match value.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(FaultSpecError::new(format!(
            "{key}={value}: a probability is a number from 0 to 1, e.g. {key}=0.05 for 5%"
        ))),
    }
}

fn duration(key: &str, value: &str) -> Result<Duration, FaultSpecError> {
    let bad = |why: &str| {
        FaultSpecError::new(format!("{key}={value}: {why}; write a number with a unit, ms, us or s, e.g. {key}=20ms"))
    };
    let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let scale = match unit.trim() {
        "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "" => return Err(bad("the duration has no unit")),
        other => return Err(bad(&format!("{other:?} is not a unit"))),
    };
    let n: f64 = number.parse().map_err(|_| bad(&format!("{number:?} is not a number")))?;
    let secs = n * scale;
    if !secs.is_finite() || secs > MAX_DELAY.as_secs_f64() {
        return Err(bad(&format!("at most {}s", MAX_DELAY.as_secs())));
    }
    // Round to whole nanoseconds so "0.3ms" is exactly 300us.
    Ok(Duration::from_nanos((secs * 1e9).round() as u64))
}

impl fmt::Display for FaultConfig {
    /// The spec, in the form `FromStr` reads: `loss=0.05,dup=0.01,…,seed=7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss={},dup={},reorder={},delay={},jitter={},seed={}",
            self.loss,
            self.dup,
            self.reorder,
            spec_duration(self.delay),
            spec_duration(self.jitter),
            self.seed
        )
    }
}

fn spec_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns.is_multiple_of(1_000_000_000) && ns > 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        format!("{}us", ns / 1_000)
    } else {
        format!("{}us", ns as f64 / 1e3)
    }
}

/// What the faults did to one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionCounts {
    /// Packets that entered the fault layer.
    pub packets: u64,
    /// Dropped by `loss`.
    pub dropped: u64,
    /// Delivered twice by `dup` (counted once per original).
    pub duplicated: u64,
    /// Held back by `reorder`.
    pub reordered: u64,
    /// Given a nonzero delay by `delay`/`jitter` (counted per copy).
    pub delayed: u64,
    /// Dropped because [`MAX_HELD`] packets were already waiting.
    pub overflow: u64,
    /// Released late, then refused by the device below (a full TUN queue).
    pub device_errors: u64,
}

impl fmt::Display for DirectionCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} packets, {} dropped, {} duplicated, {} reordered, {} delayed",
            self.packets, self.dropped, self.duplicated, self.reordered, self.delayed
        )?;
        if self.overflow > 0 {
            write!(f, ", {} dropped over the {MAX_HELD}-packet cap", self.overflow)?;
        }
        if self.device_errors > 0 {
            write!(f, ", {} refused by the device", self.device_errors)?;
        }
        Ok(())
    }
}

/// What the faults did, per direction; `None` where that direction had no faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Device → stack.
    pub inbound: Option<DirectionCounts>,
    /// Stack → device.
    pub outbound: Option<DirectionCounts>,
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("faults:")?;
        match self.inbound {
            Some(c) => write!(f, " in {c}")?,
            None => f.write_str(" in none")?,
        }
        match self.outbound {
            Some(c) => write!(f, "; out {c}"),
            None => f.write_str("; out none"),
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast, and good enough to decide faults.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`. Always draws, so the stream does not depend on `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Uniform in [0, n].
    fn up_to(&mut self, n: u64) -> u64 {
        if n == u64::MAX {
            self.next_u64()
        } else {
            self.next_u64() % (n + 1)
        }
    }
}

/// A packet in the delay line, ordered by release time and then arrival.
struct Timed {
    at: Instant,
    seq: u64,
    /// Held back behind this many later packets once released (reorder), or 0.
    hold_for: u8,
    pkt: Vec<u8>,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A packet held back by `reorder`.
struct Held {
    pkt: Vec<u8>,
    /// Later packets still to pass before this one goes.
    remaining: u8,
    deadline: Instant,
}

/// One direction's faults and the packets it holds.
struct Lane {
    cfg: FaultConfig,
    rng: SplitMix64,
    seq: u64,
    delay_line: BinaryHeap<Reverse<Timed>>,
    held: VecDeque<Held>,
    counts: DirectionCounts,
}

impl Lane {
    fn new(cfg: FaultConfig, stream: u64) -> Lane {
        let mut rng = SplitMix64(cfg.seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        Lane { cfg, rng, seq: 0, delay_line: BinaryHeap::new(), held: VecDeque::new(), counts: Default::default() }
    }

    fn queued(&self) -> usize {
        self.delay_line.len() + self.held.len()
    }

    fn hold_wait(&self) -> Duration {
        if self.cfg.delay.is_zero() {
            REORDER_WAIT_WITHOUT_DELAY
        } else {
            self.cfg.delay
        }
    }

    fn sample_delay(&mut self) -> Duration {
        let (delay, jitter) = (self.cfg.delay.as_nanos() as i128, self.cfg.jitter.as_nanos() as u64);
        if jitter == 0 {
            return self.cfg.delay;
        }
        let offset = self.rng.up_to(2 * jitter) as i128 - jitter as i128;
        Duration::from_nanos((delay + offset).max(0) as u64)
    }

    /// A packet enters at `now`; what may go at once goes to `emit`, the rest waits.
    /// `waiting_elsewhere` counts this direction's packets held outside the lane.
    fn arrive(&mut self, now: Instant, pkt: &[u8], waiting_elsewhere: usize, emit: &mut dyn FnMut(&[u8])) {
        self.counts.packets += 1;
        if self.rng.chance(self.cfg.loss) {
            self.counts.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(self.cfg.dup) {
            self.counts.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.sample_delay();
            let hold_for = if self.rng.chance(self.cfg.reorder) { 1 + self.rng.up_to(2) as u8 } else { 0 };
            if !delay.is_zero() {
                self.counts.delayed += 1;
            }
            if delay.is_zero() && hold_for == 0 {
                self.pass(pkt, emit);
                continue;
            }
            if self.queued() + waiting_elsewhere >= MAX_HELD {
                self.counts.overflow += 1;
                continue;
            }
            if delay.is_zero() {
                self.hold(now, pkt.to_vec(), hold_for);
            } else {
                self.seq += 1;
                self.delay_line.push(Reverse(Timed { at: now + delay, seq: self.seq, hold_for, pkt: pkt.to_vec() }));
            }
        }
    }

    fn hold(&mut self, since: Instant, pkt: Vec<u8>, hold_for: u8) {
        self.counts.reordered += 1;
        let deadline = since + self.hold_wait();
        self.held.push_back(Held { pkt, remaining: hold_for, deadline });
    }

    /// `pkt` goes out; every held packet has now seen one more packet pass it.
    fn pass(&mut self, pkt: &[u8], emit: &mut dyn FnMut(&[u8])) {
        emit(pkt);
        if self.held.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.held.len() {
            self.held[i].remaining -= 1;
            if self.held[i].remaining == 0 {
                if let Some(h) = self.held.remove(i) {
                    emit(&h.pkt);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Release everything that is due at `now`, in order.
    fn release(&mut self, now: Instant, emit: &mut dyn FnMut(&[u8])) {
        while self.delay_line.peek().is_some_and(|Reverse(t)| t.at <= now) {
            let Some(Reverse(t)) = self.delay_line.pop() else { break };
            if t.hold_for > 0 {
                self.hold(t.at, t.pkt, t.hold_for);
            } else {
                self.pass(&t.pkt, emit);
            }
        }
        if self.held.iter().any(|h| h.deadline <= now) {
            let mut keep = VecDeque::with_capacity(self.held.len());
            for h in self.held.drain(..) {
                if h.deadline <= now {
                    emit(&h.pkt);
                } else {
                    keep.push_back(h);
                }
            }
            self.held = keep;
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        let next = self.delay_line.peek().map(|Reverse(t)| t.at);
        let held = self.held.iter().map(|h| h.deadline).min();
        earliest(next, held)
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Where `Faults` reads the time when a packet arrives (the event loop hands `on_timer` its
/// own `now`). Tests pass a fake clock.
pub(crate) type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// A device wrapper that applies [`FaultConfig`]s to the packets crossing it: `inbound` to
/// what `D` receives (device → stack), `outbound` to what is sent to `D` (stack → device).
pub struct Faults<D> {
    inner: D,
    inbound: Option<Lane>,
    outbound: Option<Lane>,
    /// Inbound packets released and waiting to be read by `recv`.
    ready: VecDeque<Vec<u8>>,
    rx: Vec<u8>,
    clock: Clock,
}

impl<D: Device> Faults<D> {
    pub fn new(inner: D, inbound: Option<FaultConfig>, outbound: Option<FaultConfig>) -> Faults<D> {
        Faults::with_clock(inner, inbound, outbound, Arc::new(Instant::now))
    }

    pub fn with_clock(
        inner: D,
        inbound: Option<FaultConfig>,
        outbound: Option<FaultConfig>,
        clock: Clock,
    ) -> Faults<D> {
        Faults {
            inner,
            inbound: inbound.map(|c| Lane::new(c, 1)),
            outbound: outbound.map(|c| Lane::new(c, 2)),
            ready: VecDeque::new(),
            rx: vec![0; 65_536],
            clock,
        }
    }

    pub fn counts(&self) -> FaultCounts {
        FaultCounts {
            inbound: self.inbound.as_ref().map(|l| l.counts),
            outbound: self.outbound.as_ref().map(|l| l.counts),
        }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    fn release_outbound(&mut self, now: Instant) {
        let Some(lane) = &mut self.outbound else { return };
        let inner = &mut self.inner;
        let mut errors = 0;
        lane.release(now, &mut |p| {
            if inner.send(p).is_err() {
                errors += 1;
            }
        });
        lane.counts.device_errors += errors;
    }

    fn release_inbound(&mut self, now: Instant) {
        let Some(lane) = &mut self.inbound else { return };
        let ready = &mut self.ready;
        lane.release(now, &mut |p| ready.push_back(p.to_vec()));
    }
}

impl<D: Device> Device for Faults<D> {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbound.is_none() && self.ready.is_empty() {
            return self.inner.recv(buf);
        }
        let now = (self.clock)();
        self.release_inbound(now);
        for _ in 0..READS_PER_RECV {
            if let Some(p) = self.ready.pop_front() {
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                return Ok(n);
            }
            let n = self.inner.recv(&mut self.rx)?;
            let waiting = self.ready.len();
            let (rx, ready) = (&self.rx, &mut self.ready);
            if let Some(lane) = &mut self.inbound {
                lane.arrive(now, &rx[..n], waiting, &mut |p| ready.push_back(p.to_vec()));
            }
        }
        match self.ready.pop_front() {
            Some(p) => {
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                Ok(n)
            }
            // The inner device may hold more; its fd stays readable, so the loop comes back.
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        if self.outbound.is_none() {
            return self.inner.send(packet);
        }
        let now = (self.clock)();
        self.release_outbound(now);
        let Some(lane) = &mut self.outbound else { return Ok(()) };
        let inner = &mut self.inner;
        let mut result = Ok(());
        lane.arrive(now, packet, 0, &mut |p| {
            if let Err(e) = inner.send(p) {
                result = Err(e);
            }
        });
        result
    }

    fn fd(&self) -> RawFd {
        self.inner.fd()
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn poll_at(&self) -> Option<Instant> {
        let ready = if self.ready.is_empty() { None } else { Some((self.clock)()) };
        let lanes =
            earliest(self.inbound.as_ref().and_then(Lane::poll_at), self.outbound.as_ref().and_then(Lane::poll_at));
        earliest(earliest(ready, lanes), self.inner.poll_at())
    }

    fn on_timer(&mut self, now: Instant) {
        self.inner.on_timer(now);
        self.release_outbound(now);
        self.release_inbound(now);
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn begin_batch(&mut self) {
        self.inner.begin_batch()
    }

    fn fault_counts(&self) -> Option<FaultCounts> {
        Some(self.counts())
    }

    // The fault lanes hold plain packets, so no TSO through here (`offloads` stays false):
    // the inner device hands out and takes complete packets.
    fn offload_counts(&self) -> Option<super::OffloadCounts> {
        self.inner.offload_counts()
    }
}

#[cfg(test)]
mod tests;
