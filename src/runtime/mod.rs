//! The one event-loop thread and the blocking, thread-safe API on top of the sans-I/O stack.
//!
//! The loop sleeps in `poll` on the device fd, a wake-up eventfd and the next timer; it reads
//! packets in batches and drives the [`Host`]. Application threads call into the same `Host`
//! under one mutex and wait on a per-connection condition variable; whatever their call
//! produces (a data segment, a window update) is written to the device at once, without a
//! round trip through the loop.

mod listener;
mod stream;

pub use listener::TcpListener;
pub use stream::TcpStream;

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::device::{self, Device, FaultConfig, FaultCounts, OffloadCounts};
use crate::stack::Summary;
use crate::stack::{ConnId, Counters, Host, HostConfig};
use crate::tcp::{ConnStats, State};

/// Packets read per wake-up before timers and output get their turn.
const BATCH: usize = 256;
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
    /// Capture every packet as it crosses the device (outbound after the faults, inbound
    /// before them).
    pub pcap: Option<PathBuf>,
    /// Faults on what the device delivers to the stack.
    pub faults_in: Option<FaultConfig>,
    /// Faults on what the stack sends to the device.
    pub faults_out: Option<FaultConfig>,
}

/// A handle to a running stack; cheap to clone.
#[derive(Clone)]
pub struct Stack {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Mutex<Inner>,
    wake: EventFd,
    stopped: AtomicBool,
    loop_thread: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    host: Host,
    /// The device chain from `device::build`: faults, pcap tee, the device itself.
    device: Box<dyn Device>,
    device_flushed: Instant,
    conn_waiters: HashMap<ConnId, Arc<Condvar>>,
    port_waiters: HashMap<u16, Arc<Condvar>>,
    /// When the loop will next wake by itself; an earlier timer needs a nudge.
    loop_deadline: Option<Instant>,
    trace_sink: TraceSink,
    rx_buf: Vec<u8>,
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
    /// Write out what the host produced, print trace lines, wake waiting threads. Returns
    /// whether the loop must re-arm its timer.
    fn flush(&mut self) -> bool {
        while let Some((pkt, meta)) = self.host.pop_output_meta() {
            if let Err(e) = self.device.send_meta(&pkt, meta) {
                // A full TUN queue drops, as a full NIC ring would; TCP recovers.
                self.host.counters.device_drops += 1;
                tracing::debug!("device send failed: {e}");
            }
            self.host.recycle(pkt);
        }
        for line in self.host.tracer.take_lines() {
            (self.trace_sink)(&line);
        }
        let (conns, ports) = self.host.take_touched();
        for id in conns {
            if let Some(cv) = self.conn_waiters.get(&id) {
                cv.notify_all();
            }
        }
        for port in ports {
            if let Some(cv) = self.port_waiters.get(&port) {
                cv.notify_all();
            }
        }
        match (self.next_deadline(), self.loop_deadline) {
            (Some(t), Some(d)) => t < d,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// The earlier of the host's next timer and the device's (a held packet).
    fn next_deadline(&mut self) -> Option<Instant> {
        match (self.host.poll_at(), self.device.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        }
    }

    fn flush_device(&mut self) {
        if let Err(e) = self.device.flush() {
            tracing::warn!("flushing the device (capture) failed: {e}");
        }
    }

    fn receive_batch(&mut self, now: Instant) {
        // In-order arrivals of a batch are answered once, at its end (see stack/batch.rs).
        self.host.begin_batch();
        for _ in 0..BATCH {
            match self.device.recv_meta(&mut self.rx_buf) {
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
        // Room for the largest packet the device delivers (64 KiB with offloads: GRO).
        let mtu = device.mtu();
        let inner = Inner {
            host,
            device,
            device_flushed: now,
            conn_waiters: HashMap::new(),
            port_waiters: HashMap::new(),
            loop_deadline: None,
            trace_sink: opts.trace_sink.unwrap_or_else(|| Box::new(|line: &str| eprintln!("{line}"))),
            rx_buf: vec![0; mtu.max(1500) + 4],
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            wake: EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC).map_err(io::Error::from)?,
            stopped: AtomicBool::new(false),
            loop_thread: Mutex::new(None),
        });
        let loop_shared = shared.clone();
        let handle = std::thread::Builder::new().name("synack-loop".into()).spawn(move || run_loop(&loop_shared))?;
        if let Ok(mut slot) = shared.loop_thread.lock() {
            *slot = Some(handle);
        }
        Ok(Stack { shared })
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Inner>> {
        self.shared.inner.lock().map_err(|_| io::Error::other("synack stack poisoned by a panic"))
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
        if g.flush() {
            self.wake_loop();
        }
        Ok(r)
    }

    /// Call `op` until it stops saying `WouldBlock`, sleeping on `cv` in between.
    fn block_on<T>(
        &self,
        cv: &Condvar,
        deadline: Option<Instant>,
        mut op: impl FnMut(&mut Host, Instant) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut g = self.lock()?;
        loop {
            let now = Instant::now();
            let r = op(&mut g.host, now);
            if g.flush() {
                self.wake_loop();
            }
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            if self.is_stopped() {
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the stack has shut down"));
            }
            g = match deadline {
                None => cv.wait(g).map_err(|_| io::Error::other("synack stack poisoned"))?,
                Some(d) if now >= d => return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
                Some(d) => cv.wait_timeout(g, d - now).map_err(|_| io::Error::other("synack stack poisoned"))?.0,
            };
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.lock().map(|g| g.host.addr()).unwrap_or(Ipv4Addr::UNSPECIFIED)
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
        self.lock().ok()?.device.offload_counts()
    }

    /// What the fault layer did so far; `None` when the stack runs without faults.
    pub fn fault_counts(&self) -> Option<FaultCounts> {
        self.lock().ok()?.device.fault_counts()
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
        if let Ok(mut g) = self.lock() {
            g.flush_device();
            for cv in g.conn_waiters.values().chain(g.port_waiters.values()) {
                cv.notify_all();
            }
        }
        self.summary()
    }
}

fn run_loop(shared: &Shared) {
    let stack_fd = match shared.inner.lock() {
        Ok(g) => g.device.fd(),
        Err(_) => return,
    };
    loop {
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let timeout = {
            let Ok(mut g) = shared.inner.lock() else { return };
            let deadline = g.next_deadline();
            g.loop_deadline = deadline;
            match deadline {
                // Round up: waking a millisecond early would spin until the timer is due.
                Some(d) => {
                    let wait = d.saturating_duration_since(Instant::now());
                    let ms = wait.as_micros().div_ceil(1000).min(1000) as u16;
                    PollTimeout::from(ms)
                }
                None => PollTimeout::from(1000u16),
            }
        };
        {
            // SAFETY: both fds stay open for the life of `shared`, which outlives this call.
            let dev = unsafe { BorrowedFd::borrow_raw(stack_fd) };
            let mut fds = [PollFd::new(dev, PollFlags::POLLIN), PollFd::new(shared.wake.as_fd(), PollFlags::POLLIN)];
            if let Err(e) = poll(&mut fds, timeout) {
                if e != nix::errno::Errno::EINTR {
                    tracing::error!("poll failed: {e}");
                    return;
                }
            }
        }
        let _ = shared.wake.read();
        let Ok(mut g) = shared.inner.lock() else { return };
        let now = Instant::now();
        // Held packets that are due: outbound ones go to the wire, inbound ones become
        // readable below even though the fd may not be.
        g.device.on_timer(now);
        g.receive_batch(now);
        g.host.on_timer(now);
        g.flush();
        if now.duration_since(g.device_flushed) >= DEVICE_FLUSH_EVERY {
            g.device_flushed = now;
            g.flush_device();
        }
    }
}
