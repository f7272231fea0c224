//! The world packetdrill talks to: one synack [`Host`], the packets it has sent and not yet
//! handed over, the socket table, and a virtual clock that only moves when packetdrill sleeps,
//! reads its clock or waits for a packet. Timers run at their exact deadlines, so a script
//! with a 60 s TIME-WAIT takes milliseconds and every run is the same.
//!
//! packetdrill makes blocking calls on a second thread while its main thread injects packets
//! and moves the clock. Both threads share one mutex; a blocked call sleeps on the condvar and
//! looks again after every change. Before time moves on, the main thread waits until every
//! woken sleeper has looked (`stale`), so a blocked `write` woken by an ACK gets its data out
//! at the instant of the ACK, as a kernel's would.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use synack::stack::{Host, HostConfig};

use crate::sockets::Socket;

/// What `gettimeofday` shows at virtual time zero (any fixed date would do).
const EPOCH_US: u64 = 1_700_000_000 * 1_000_000;
/// How far `netdev_receive` lets the clock run looking for a packet the stack will send.
const MAX_WAIT_FOR_PACKET_US: u64 = 3_600 * 1_000_000;
/// How long (real time) the main thread waits for a woken sleeper to look again.
const SETTLE_REAL: Duration = Duration::from_secs(2);

pub type SysResult<T> = Result<T, i32>;

pub struct World {
    pub host: Host,
    base: Instant,
    /// Virtual microseconds since `base`.
    now_us: u64,
    /// Packets the host sent, with the virtual time they left.
    out: VecDeque<(Vec<u8>, u64)>,
    pub socks: HashMap<i32, Socket>,
    next_fd: i32,
    /// Calls asleep on the condvar, and how many of them have not looked since the last
    /// change.
    sleepers: usize,
    stale: usize,
    generation: u64,
    trace: bool,
}

/// First descriptor handed out: far above the process's own, so the `getsockopt` that
/// packetdrill's Python blocks call (see `preload.rs`) can tell ours from real ones.
pub const FD_BASE: i32 = 1000;

impl World {
    pub fn new(cfg: HostConfig, trace: bool) -> World {
        let base = Instant::now();
        let mut host = Host::new(cfg, base);
        host.tracer.set_enabled(trace);
        World {
            host,
            base,
            now_us: 0,
            out: VecDeque::new(),
            socks: HashMap::new(),
            next_fd: FD_BASE,
            sleepers: 0,
            stale: 0,
            generation: 0,
            trace,
        }
    }

    pub fn now(&self) -> Instant {
        self.base + Duration::from_micros(self.now_us)
    }

    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    pub fn wall_clock_us(&self) -> u64 {
        EPOCH_US + self.now_us
    }

    /// `gettimeofday`'s reading at virtual time `us`.
    pub fn wall_clock_at(&self, us: u64) -> u64 {
        EPOCH_US + us
    }

    /// The virtual microsecond at or after `t` (rounded up, so a timer at `t` is due then).
    fn us_of(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.base);
        let us = d.as_micros() as u64;
        if Duration::from_micros(us) < d {
            us + 1
        } else {
            us
        }
    }

    pub fn alloc_fd(&mut self, s: Socket) -> i32 {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.socks.insert(fd, s);
        fd
    }

    /// Collect what the host sent (stamped with the current time) and its trace lines.
    pub fn pump(&mut self) {
        while let Some(p) = self.host.pop_output() {
            self.out.push_back((p, self.now_us));
        }
        // Nobody waits on the host's readiness lists here: every change wakes every sleeper.
        let _ = self.host.take_touched();
        if self.trace {
            for line in self.host.tracer.take_lines() {
                eprintln!("synack: {line}");
            }
        }
    }

    pub fn pop_packet(&mut self) -> Option<(Vec<u8>, u64)> {
        self.out.pop_front()
    }

    /// The next host timer, in virtual microseconds.
    fn next_timer_us(&mut self) -> Option<u64> {
        let t = self.host.poll_at()?;
        Some(self.us_of(t).max(self.now_us))
    }

    /// Run every timer due at the current instant.
    fn run_timers(&mut self) {
        let now = self.now();
        self.host.on_timer(now);
        self.pump();
    }
}

pub struct Shared {
    world: Mutex<World>,
    cv: Condvar,
    main: ThreadId,
}

pub type Guard<'a> = MutexGuard<'a, World>;

impl Shared {
    /// `main` is packetdrill's main thread: the one that owns the clock.
    pub fn new(world: World) -> Shared {
        Shared { world: Mutex::new(world), cv: Condvar::new(), main: thread::current().id() }
    }

    /// A panic in one call must not make every later call fail too.
    pub fn lock(&self) -> Guard<'_> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Something changed (a packet, a call, the time): every sleeper must look again.
    pub fn changed(&self, w: &mut World) {
        w.pump();
        w.generation += 1;
        w.stale = w.sleepers;
        self.cv.notify_all();
    }

    /// Wait until every sleeper woken by a change has looked again (and so sent what it
    /// had to send at this instant).
    pub fn settle<'a>(&'a self, mut w: Guard<'a>) -> Guard<'a> {
        let deadline = Instant::now() + SETTLE_REAL;
        while w.stale > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                w.stale = 0;
                break;
            }
            w = self.cv.wait_timeout(w, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        w
    }

    /// Move the clock to `target_us`, running each timer at its own deadline.
    pub fn advance_to<'a>(&'a self, mut w: Guard<'a>, target_us: u64) -> Guard<'a> {
        // Bounded: each round either runs a due timer or ends the loop.
        for _ in 0..1_000_000 {
            w = self.settle(w);
            match w.next_timer_us() {
                Some(t) if t <= target_us => {
                    w.now_us = t;
                    w.run_timers();
                    self.changed(&mut w);
                }
                _ => break,
            }
        }
        if target_us > w.now_us {
            w.now_us = target_us;
            self.changed(&mut w);
        }
        self.settle(w)
    }

    /// The next packet synack sends, and when. With none queued, the clock runs to the next
    /// timer until one appears; `None` when no timer is left to send one.
    pub fn next_packet(&self) -> Option<(Vec<u8>, u64)> {
        let mut w = self.settle(self.lock());
        let limit = w.now_us + MAX_WAIT_FOR_PACKET_US;
        // Bounded: a timer that fires without sending re-arms later, or not at all.
        for _ in 0..1_000_000 {
            if let Some(p) = w.pop_packet() {
                return Some(p);
            }
            let t = w.next_timer_us().filter(|t| *t <= limit)?;
            w = self.advance_to(w, t);
        }
        None
    }

    pub fn on_main_thread(&self) -> bool {
        thread::current().id() == self.main
    }

    /// Block the calling thread until `attempt` gives an answer. `deadline_us` (virtual)
    /// bounds the wait; `attempt(world, true)` is then asked for the timed-out answer.
    ///
    /// On packetdrill's syscall thread this sleeps while the main thread moves the world.
    /// On the main thread nobody else would, so time is moved here, timer by timer, the way
    /// a kernel's timers run while a call blocks; with no timer left and no deadline, the
    /// call could never return (packetdrill would hang on a kernel too), and fails instead.
    pub fn block<'a, T>(
        &'a self,
        mut w: Guard<'a>,
        deadline_us: Option<u64>,
        mut attempt: impl FnMut(&mut World, bool) -> Option<SysResult<T>>,
    ) -> SysResult<T> {
        loop {
            if let Some(r) = attempt(&mut w, false) {
                self.changed(&mut w);
                return r;
            }
            if deadline_us.is_some_and(|d| w.now_us >= d) {
                let r = attempt(&mut w, true).unwrap_or(Err(libc::ETIMEDOUT));
                self.changed(&mut w);
                return r;
            }
            if self.on_main_thread() {
                let next = w.next_timer_us();
                let to = match (next, deadline_us) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) => a,
                    (None, Some(b)) => b,
                    (None, None) => {
                        eprintln!(
                            "synack-packetdrill: a blocking call on packetdrill's main thread can never \
                             return (nothing left to wait for); give it an end time (...) in the script"
                        );
                        return Err(libc::EDEADLK);
                    }
                };
                w = self.advance_to(w, to);
                continue;
            }
            w.sleepers += 1;
            let seen = w.generation;
            // The main thread may be waiting for this thread to have looked.
            self.cv.notify_all();
            w = self.cv.wait(w).unwrap_or_else(|e| e.into_inner());
            w.sleepers -= 1;
            if w.generation != seen {
                w.stale = w.stale.saturating_sub(1);
            }
        }
    }
}
