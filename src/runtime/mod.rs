//! The one event-loop thread and the blocking, thread-safe API on top of the sans-I/O stack.
//!
//! The loop sleeps in `poll` on the device fd, a wake-up eventfd and a timerfd armed for the
//! next timer (by whichever thread made it); it reads packets in batches and drives the
//! [`Host`]. Application threads call into the same `Host`
//! under one mutex and wait on a per-connection condition variable; whatever their call
//! produces (a data segment, a window update) is written to the device at once, without a
//! round trip through the loop.
//!
//! Two locks: `inner` (the host) and `tx` (the device). Writing a packet into a TUN runs the
//! kernel's whole receive path for it, so the writer takes `tx` before letting go of `inner`
//! and writes with only `tx` held: the other threads go on with the protocol meanwhile, and
//! their packets queue behind these on `tx`, in order. The lock order is always inner → tx.

mod listener;
mod on_loop;
mod stream;
pub mod task;
mod wakers;

pub use listener::TcpListener;
pub use on_loop::{HandOff, LoopConn, LoopService};
pub use stream::{InputCounts, TcpStream};
use wakers::{notify, ConnTasks, Sleepers, Wake};

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::unistd::Pid;

use crate::device::{self, Device, FaultConfig, FaultCounts, OffloadCounts, PacketMeta};
use crate::stack::Summary;
use crate::stack::{ConnMap, Counters, Host, HostConfig};
use crate::tcp::{ConnStats, State};

/// Packets read per wake-up before timers and output get their turn.
const BATCH: usize = 256;
/// How late a timer may fire, so that timers due close together share one wake-up.
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// Packets one pass builds before it writes them (see `stack/burst.rs`): small enough that
/// a burst's buffers stay in the cache until the kernel copies them, large enough that the
/// pass's own cost (a poll, a read that finds nothing) is shared by many packets.
const BURST: usize = 64;
/// How often the device chain is flushed (a live capture reaches the disk).
const DEVICE_FLUSH_EVERY: Duration = Duration::from_millis(500);

pub type TraceSink = Box<dyn FnMut(&str) + Send>;

#[derive(Default)]
pub struct StackOptions {
    pub host: HostConfig,
    /// Collect `--trace` lines and hand them to `trace_sink` (stderr by default).
    pub trace: bool,
    /// Text lines or JSON lines, and ANSI colour in text (for a terminal).
    pub trace_format: crate::trace::TraceFormat,
    pub trace_colour: bool,
    pub trace_sink: Option<TraceSink>,
    /// Where the trace's clock starts (default: when the stack starts); `synack serve` passes
    /// its own start, so the trace and its log lines count seconds from the same moment.
    pub trace_epoch: Option<std::time::Instant>,
    /// Capture every packet as it crosses the device (outbound after the faults, inbound
    /// before them).
    pub pcap: Option<PathBuf>,
    /// Faults on what the device delivers to the stack.
    pub faults_in: Option<FaultConfig>,
    /// Faults on what the stack sends to the device.
    pub faults_out: Option<FaultConfig>,
    /// CPUs the event loop may run on (empty: wherever the scheduler puts it). With RPS on the
    /// device, the loop belongs on a CPU outside its mask (see [`device::rps`]).
    pub loop_cpus: Vec<usize>,
}

/// A handle to a running stack; cheap to clone.
#[derive(Clone)]
pub struct Stack {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Mutex<Inner>,
    tx: Mutex<Tx>,
    wake: EventFd,
    stopped: AtomicBool,
    loop_thread: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    host: Host,
    device_flushed: Instant,
    conn_waiters: ConnMap<Sleepers<ConnTasks>>,
    port_waiters: HashMap<u16, Sleepers<Vec<std::task::Waker>>>,
    /// Wakes the loop for the next timer. Any thread that makes an earlier deadline arms it
    /// itself (one system call), instead of waking the loop just to shorten its sleep.
    timer: TimerFd,
    /// What `timer` is armed for (it may already have fired).
    armed: Option<Instant>,
    trace_sink: TraceSink,
    rx_buf: Vec<u8>,
    /// Threads and tasks to wake once the lock is released (see [`Shared::flush`]): woken
    /// while it is held, they would only block again on the mutex, a second sleep and
    /// wake-up each.
    wakes: Vec<Wake>,
    /// Services run on the loop thread (discard, echo).
    on_loop: on_loop::LoopServices,
}

/// Where application threads sleep until a connection or listener may be ready. `waiting`
/// counts the sleepers (changed only with the stack locked) so that a flush skips the
/// notify, a system call even with nobody to wake, for the many events no thread waits on.
#[derive(Default)]
struct Waiter {
    cv: Condvar,
    waiting: AtomicUsize,
}

/// The device side, behind its own lock.
struct Tx {
    /// The device chain from `device::build`: faults, pcap tee, the device itself.
    device: Box<dyn Device>,
    /// Packets taken from the host, to be written in this order, with how to write them.
    queue: VecDeque<(Vec<u8>, PacketMeta)>,
    /// Written packets' buffers, for the host to reuse.
    spare: Vec<Vec<u8>>,
    /// Writes the device refused since the host last counted them.
    drops: u64,
}

impl Tx {
    fn write_queue(&mut self) {
        if !self.queue.is_empty() {
            self.device.begin_batch();
        }
        while let Some((pkt, meta)) = self.queue.pop_front() {
            if let Err(e) = self.device.send_meta(&pkt, meta) {
                // A full TUN queue drops, as a full NIC ring would; TCP recovers.
                self.drops += 1;
                tracing::debug!("device send failed: {e}");
            }
            self.spare.push(pkt);
        }
    }

    fn flush_device(&mut self) {
        if let Err(e) = self.device.flush() {
            tracing::warn!("flushing the device (capture) failed: {e}");
        }
    }
}

/// A snapshot of one connection, for `/stats` and the exit summary.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub local: std::net::SocketAddrV4,
    pub remote: std::net::SocketAddrV4,
    pub state: State,
    pub stats: ConnStats,
    pub srtt: Option<Duration>,
    pub cwnd: u32,
}

impl Inner {
    /// Move what the host produced onto `tx`'s queue, print trace lines, note the threads to
    /// wake, arm the timer for an earlier deadline. Returns whether the loop must be woken
    /// (arming failed, or a loop service has work from another thread's flush).
    fn hand_over(&mut self, tx: &mut Tx) -> bool {
        for buf in tx.spare.drain(..) {
            self.host.recycle(buf);
        }
        self.host.counters.device_drops += std::mem::take(&mut tx.drops);
        while let Some(out) = self.host.pop_output_meta() {
            tx.queue.push_back(out);
        }
        for line in self.host.tracer.take_lines() {
            (self.trace_sink)(&line);
        }
        let (conns, ports) = self.host.take_touched();
        let mut wake_loop = false;
        for id in conns {
            if self.on_loop.owns(id) {
                // Changed outside the loop's own pass: the loop serves it next.
                self.on_loop.note_pending(id);
                wake_loop = true;
                continue;
            }
            self.wake_conn(id);
        }
        // One entry per connection that became acceptable: wake one acceptor for each, not
        // every thread of a service pool (each would lock the stack only to find nothing).
        let mut woken: Option<(u16, usize)> = None;
        for port in ports {
            if self.on_loop.serves(port) {
                wake_loop = true;
                continue;
            }
            let n = match woken {
                Some((p, n)) if p == port => n,
                _ => 0,
            };
            self.wake_port(port, n);
            woken = Some((port, n + 1));
        }
        let armed = match self.next_deadline(tx) {
            Some(t) => self.arm(t),
            None => true,
        };
        wake_loop || !armed
    }

    /// Make sure the timer fires at `t` or within a millisecond after (as poll's timeout in
    /// milliseconds did: timers due close together are handled in one wake-up); false when
    /// it could not be armed.
    fn arm(&mut self, t: Instant) -> bool {
        if self.armed.is_some_and(|a| a <= t + TIMER_SLACK) {
            return true;
        }
        let now = Instant::now();
        // Whole milliseconds, rounded up; a due timer at once (1 ns: zero would disarm it).
        let ms = t.saturating_duration_since(now).as_micros().div_ceil(1000) as u64;
        let wait = if ms == 0 { Duration::from_nanos(1) } else { Duration::from_millis(ms) };
        match self.timer.set(Expiration::OneShot(TimeSpec::from_duration(wait)), TimerSetTimeFlags::empty()) {
            Ok(()) => {
                self.armed = Some(now + wait);
                true
            }
            Err(e) => {
                tracing::warn!("arming the timer failed: {e}");
                false
            }
        }
    }

    /// The earliest of the host's next timer, the device's (a held packet) and a loop
    /// service's deadline.
    fn next_deadline(&mut self, tx: &Tx) -> Option<Instant> {
        [self.host.poll_at(), tx.device.poll_at(), self.on_loop.next_deadline()].into_iter().flatten().min()
    }

    fn receive_batch(&mut self, tx: &mut Tx, now: Instant) {
        self.host.begin_batch();
        for _ in 0..BATCH {
            match tx.device.recv_meta(&mut self.rx_buf) {
                Ok((n, meta)) => self.host.handle_packet_meta(now, &self.rx_buf[..n], meta),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("device read failed: {e}");
                    break;
                }
            }
        }
        self.host.end_batch(now);
    }
}

impl Shared {
    fn lock(&self) -> io::Result<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| io::Error::other("synack stack poisoned by a panic"))
    }

    fn lock_tx(&self) -> io::Result<MutexGuard<'_, Tx>> {
        self.tx.lock().map_err(|_| io::Error::other("synack stack poisoned by a panic"))
    }

    /// Hand the host's output over to the device, release the host and wake the threads it
    /// noted, then write with only `tx` held; both locks are free on return.
    fn flush(&self, mut g: MutexGuard<'_, Inner>) {
        let Ok(mut tx) = self.lock_tx() else { return };
        let wake_loop = g.hand_over(&mut tx);
        let wakes = std::mem::take(&mut g.wakes);
        drop(g);
        notify(wakes);
        let held = tx.device.poll_at();
        tx.write_queue();
        // A packet the device now holds (delay or reorder faults) may be due before the
        // deadline armed above; the loop re-arms for it when woken.
        let sooner = tx.device.poll_at().is_some_and(|t| held.is_none_or(|h| t < h));
        drop(tx);
        if wake_loop || sooner {
            let _ = self.wake.write(1);
        }
    }
}

impl Stack {
    /// Start a stack on `device`, with its event loop on a thread of its own.
    pub fn new(device: impl Device + 'static, opts: StackOptions) -> io::Result<Stack> {
        let now = Instant::now();
        let device = device::build(device, opts.pcap.as_deref(), opts.faults_in, opts.faults_out)?;
        let mut host_cfg = opts.host;
        if device.offloads() && host_cfg.tcp.tso_max == 0 {
            // The device cuts super-segments itself (TSO): let TCP hand it up to 64 KiB.
            host_cfg.tcp.tso_max = crate::tcp::config::MAX_TSO_PAYLOAD;
        }
        let mut host = Host::new(host_cfg, now);
        host.tracer.set_enabled(opts.trace);
        host.tracer.set_format(opts.trace_format);
        host.tracer.set_colour(opts.trace_colour);
        if let Some(epoch) = opts.trace_epoch {
            host.tracer.set_epoch(epoch);
        }
        // Room for the largest packet the device delivers (64 KiB with offloads: GRO).
        let mtu = device.mtu();
        let inner = Inner {
            host,
            device_flushed: now,
            conn_waiters: ConnMap::default(),
            port_waiters: HashMap::new(),
            timer: TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)
                .map_err(io::Error::from)?,
            armed: None,
            // A closed stderr (`synack serve --trace 2>&1 | head`) silences the trace, not the stack.
            trace_sink: opts.trace_sink.unwrap_or_else(|| {
                Box::new(|line: &str| {
                    let _ = io::Write::write_fmt(&mut io::stderr().lock(), format_args!("{line}\n"));
                })
            }),
            rx_buf: vec![0; mtu.max(1500) + 4],
            wakes: Vec::new(),
            on_loop: on_loop::LoopServices::default(),
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            tx: Mutex::new(Tx { device, queue: VecDeque::new(), spare: Vec::new(), drops: 0 }),
            wake: EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map_err(io::Error::from)?,
            stopped: AtomicBool::new(false),
            loop_thread: Mutex::new(None),
        });
        let loop_shared = shared.clone();
        let loop_cpus = opts.loop_cpus;
        let handle = std::thread::Builder::new().name("synack-loop".into()).spawn(move || {
            pin_to(&loop_cpus);
            run_loop(&loop_shared)
        })?;
        if let Ok(mut slot) = shared.loop_thread.lock() {
            *slot = Some(handle);
        }
        Ok(Stack { shared })
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Inner>> {
        self.shared.lock()
    }

    /// Write what the host produced and let go of the host (see the module comment).
    fn flush(&self, g: MutexGuard<'_, Inner>) {
        self.shared.flush(g);
    }

    fn wake_loop(&self) {
        let _ = self.shared.wake.write(1);
    }

    fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::Acquire)
    }

    /// Run `f` on the host, then flush its output.
    fn with_host<R>(&self, f: impl FnOnce(&mut Host, Instant) -> R) -> io::Result<R> {
        let mut g = self.lock()?;
        let r = f(&mut g.host, Instant::now());
        self.flush(g);
        Ok(r)
    }

    /// Call `op` until it stops saying `WouldBlock`, sleeping on `w` in between.
    fn block_on<T>(
        &self,
        w: &Waiter,
        deadline: Option<Instant>,
        mut op: impl FnMut(&mut Host, Instant) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut g = self.lock()?;
        loop {
            let now = Instant::now();
            let r = op(&mut g.host, now);
            let would_block = matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            if !would_block || g.host.pop_output_pending() {
                // Write without the host lock; the state may move meanwhile, so a call that
                // would block is tried again before sleeping (no wake-up can be missed).
                self.flush(g);
                if !would_block {
                    return r;
                }
                g = self.lock()?;
                continue;
            }
            if self.is_stopped() {
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the stack has shut down"));
            }
            if deadline.is_some_and(|d| now >= d) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
            // About to sleep, which releases the lock anyway.
            notify(std::mem::take(&mut g.wakes));
            w.waiting.fetch_add(1, Ordering::Relaxed);
            let woke = match deadline {
                None => w.cv.wait(g).map_err(|_| io::Error::other("synack stack poisoned")),
                Some(d) => {
                    w.cv.wait_timeout(g, d - now).map(|r| r.0).map_err(|_| io::Error::other("synack stack poisoned"))
                }
            };
            w.waiting.fetch_sub(1, Ordering::Relaxed);
            g = woke?;
        }
    }

    /// Serve `port` with `service` on the event loop thread (see [`LoopService`]).
    pub fn serve_on_loop(&self, port: u16, service: impl LoopService + 'static) -> io::Result<()> {
        let mut g = self.lock()?;
        let Inner { host, on_loop, .. } = &mut *g;
        on_loop.add(host, port, Box::new(service), None)?;
        drop(g);
        Ok(())
    }

    /// [`serve_on_loop`](Stack::serve_on_loop), and the connections the service hands over
    /// arrive on the returned [`HandOff`], for threads to take with [`Stack::take_handed`].
    pub fn serve_on_loop_with_hand_off(&self, port: u16, service: impl LoopService + 'static) -> io::Result<HandOff> {
        let hand_off = HandOff::default();
        let mut g = self.lock()?;
        let Inner { host, on_loop, .. } = &mut *g;
        on_loop.add(host, port, Box::new(service), Some(hand_off.clone()))?;
        drop(g);
        Ok(hand_off)
    }

    /// The next connection handed over on `hand_off`, as a blocking stream; `TimedOut`
    /// after `timeout` without one.
    pub fn take_handed(&self, hand_off: &HandOff, timeout: Duration) -> io::Result<TcpStream> {
        let id = hand_off.next(timeout)?;
        TcpStream::attach(self, id)
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.lock().map(|g| g.host.addr()).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Hand the tracer's events to `hub` whenever it has viewers (the live ladder). Attach
    /// before connections exist: they decide at birth whether to keep their events.
    pub fn attach_live(&self, hub: Arc<crate::live::LiveHub>) {
        if let Ok(mut g) = self.lock() {
            g.host.tracer.set_live(hub);
        }
    }

    pub fn counters(&self) -> Counters {
        self.lock().map(|g| g.host.counters.clone()).unwrap_or_default()
    }

    /// One line: connections, segments, retransmissions, drops by reason.
    pub fn summary(&self) -> String {
        match self.lock() {
            Ok(g) => Summary { counters: &g.host.counters, retransmits: g.host.retransmits() }.to_string(),
            Err(e) => e.to_string(),
        }
    }

    /// What the offload path saw so far; `None` without offloads.
    pub fn offload_counts(&self) -> Option<OffloadCounts> {
        self.shared.lock_tx().ok()?.device.offload_counts()
    }

    /// What the fault layer did so far; `None` when the stack runs without faults.
    pub fn fault_counts(&self) -> Option<FaultCounts> {
        self.shared.lock_tx().ok()?.device.fault_counts()
    }

    pub fn connections(&self) -> Vec<ConnInfo> {
        let Ok(g) = self.lock() else { return Vec::new() };
        g.host
            .connections()
            .map(|(_, c)| ConnInfo {
                local: c.local,
                remote: c.remote,
                state: c.state(),
                stats: c.stats,
                srtt: c.srtt(),
                cwnd: c.cwnd(),
            })
            .collect()
    }

    /// Close every connection (FIN where nothing would be lost, RST otherwise), give them
    /// `grace` to finish, reset what is left, flush the capture and stop the loop.
    /// Returns the summary line.
    pub fn shutdown(&self, grace: Duration) -> String {
        let _ = self.with_host(|h, now| h.close_all(now));
        let until = Instant::now() + grace;
        while Instant::now() < until {
            match self.lock() {
                Ok(g) if g.host.active_connections() > 0 => {}
                _ => break,
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.with_host(|h, now| h.abort_all(now));
        self.shared.stopped.store(true, Ordering::Release);
        self.wake_loop();
        if let Ok(mut slot) = self.shared.loop_thread.lock() {
            if let Some(handle) = slot.take() {
                let _ = handle.join();
            }
        }
        if let Ok(mut tx) = self.shared.lock_tx() {
            tx.flush_device();
        }
        if let Ok(mut g) = self.lock() {
            let wakes = g.wake_everyone();
            drop(g);
            notify(wakes);
        }
        self.summary()
    }
}

/// Keep the calling thread on `cpus` (none: leave it to the scheduler). A failure costs speed,
/// not correctness: it is logged and the thread runs unpinned.
fn pin_to(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    let mut set = CpuSet::new();
    for &cpu in cpus {
        if let Err(e) = set.set(cpu) {
            tracing::warn!("cannot pin the event loop to CPU {cpu}: {e}");
            return;
        }
    }
    // Pid 0: the calling thread.
    if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
        tracing::warn!("pinning the event loop to CPUs {cpus:?} failed: {e}");
    }
}

fn run_loop(shared: &Shared) {
    let stack_fd = match shared.lock_tx() {
        Ok(tx) => tx.device.fd(),
        Err(_) => return,
    };
    let timer_fd = match shared.lock() {
        Ok(g) => g.timer.as_fd().as_raw_fd(),
        Err(_) => return,
    };
    loop {
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let timeout = {
            let Ok(mut g) = shared.lock() else { return };
            let Ok(tx) = shared.lock_tx() else { return };
            match g.next_deadline(&tx) {
                // Held output goes on at once, after a look at what arrived meanwhile.
                _ if g.host.has_held_output() => PollTimeout::ZERO,
                Some(d) if !g.arm(d) => {
                    // Without the timer, poll's timeout (rounded up: waking a millisecond
                    // early would spin until the timer is due).
                    let wait = d.saturating_duration_since(Instant::now());
                    PollTimeout::from(wait.as_micros().div_ceil(1000).min(1000) as u16)
                }
                _ => PollTimeout::from(1000u16),
            }
        };
        let (woken, timed) = {
            // SAFETY: the fds stay open for the life of `shared`, which outlives this call.
            let dev = unsafe { BorrowedFd::borrow_raw(stack_fd) };
            let tfd = unsafe { BorrowedFd::borrow_raw(timer_fd) };
            let mut fds = [
                PollFd::new(dev, PollFlags::POLLIN),
                PollFd::new(shared.wake.as_fd(), PollFlags::POLLIN),
                PollFd::new(tfd, PollFlags::POLLIN),
            ];
            if let Err(e) = poll(&mut fds, timeout) {
                if e != nix::errno::Errno::EINTR {
                    tracing::error!("poll failed: {e}");
                    return;
                }
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
            (ready(&fds[1]), ready(&fds[2]))
        };
        // Only what is readable: a read that finds nothing is a wasted system call.
        if woken {
            let _ = shared.wake.read();
        }
        let Ok(mut g) = shared.lock() else { return };
        if timed {
            let _ = g.timer.wait();
            g.armed = None;
        }
        let now = Instant::now();
        g.host.set_output_budget(Some(BURST));
        // What the last pass held back goes first, so no connection waits behind another's
        // fresh ACKs for long.
        g.host.send_held(now);
        {
            let Ok(mut tx) = shared.lock_tx() else { return };
            // Held packets that are due: outbound ones go to the wire, inbound ones become
            // readable below even though the fd may not be.
            tx.device.begin_batch();
            tx.device.on_timer(now);
            g.receive_batch(&mut tx, now);
        }
        g.host.on_timer(now);
        {
            let Inner { host, on_loop, .. } = &mut *g;
            on_loop.serve(host, now);
            if on_loop.has_pending() {
                let _ = shared.wake.write(1);
            }
        }
        // Other threads' calls build all they may at once and write it themselves.
        g.host.set_output_budget(None);
        let flush_device = now.duration_since(g.device_flushed) >= DEVICE_FLUSH_EVERY;
        if flush_device {
            g.device_flushed = now;
        }
        shared.flush(g);
        if flush_device {
            let Ok(mut tx) = shared.lock_tx() else { return };
            tx.flush_device();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pin_to;
    use nix::sched::sched_getaffinity;
    use nix::unistd::Pid;

    #[test]
    fn pinning_keeps_the_calling_thread_on_the_cpus_given() {
        let Ok(allowed) = sched_getaffinity(Pid::from_raw(0)) else { return };
        let Some(cpu) = (0..nix::sched::CpuSet::count()).find(|&c| allowed.is_set(c).unwrap_or(false)) else {
            return;
        };
        let pinned = std::thread::spawn(move || {
            pin_to(&[cpu]);
            let set = sched_getaffinity(Pid::from_raw(0)).unwrap();
            (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect::<Vec<_>>()
        });
        assert_eq!(pinned.join().unwrap(), vec![cpu]);
        let unpinned = std::thread::spawn(|| {
            pin_to(&[]);
            sched_getaffinity(Pid::from_raw(0)).unwrap()
        });
        assert_eq!(unpinned.join().unwrap(), allowed, "no CPUs given: left as it was");
    }
}
