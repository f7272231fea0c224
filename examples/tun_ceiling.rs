//! The physical limit of a one-thread TCP stack on a TUN device (MTU 1500, no offloads):
//! one thread that does only the packet I/O such a stack must do, and no TCP logic, as the far
//! end of one connection with a kernel socket in the same namespace.
//!
//! ```text
//! tun_ceiling --tun DEV [--ip 10.7.0.2] --mode write|read [--bytes N] [--ack-every POLICY]
//!             [--cpu 0] [--peer-cpu 1] [--port 5001] [--timeout S]
//! tun_ceiling --cache-probe [--cpu 0] [--peer-cpu 1]
//! ```
//!
//! The TUN thread (pinned to `--cpu`) answers the kernel's SYN with a SYN,ACK like synack's
//! (MSS 1460, window scale, timestamps: whatever the kernel offered), then:
//! - `write`: sends N bytes in pre-built full segments as fast as the kernel's window allows
//!   (see `send.rs`), while a thread on `--peer-cpu` reads them from a kernel socket;
//! - `read`: a thread on `--peer-cpu` writes N bytes into a kernel socket and the TUN thread
//!   reads them, answering with cumulative ACKs as `--ack-every` says (see `recv.rs`).
//!
//! The time is taken as `examples/bulk_client.rs` takes it, on the kernel's side: from
//! `connect` to the last byte read (write) or to the FIN after the last byte (read).
//! Prints one line, `ceiling mode=… bytes=… secs=… mbps=… level=… … busy=…`, where level is
//! the cache probe's before and after the run (see `probe.rs`) and busy the share of the
//! transfer the TUN thread spent on a CPU. `--cache-probe` prints only that:
//! `cache cpu=0 peer_cpu=1 rtt_ns=… level=F|S`. Run it in the namespace that
//! `scripts/setup.sh --netns NS --name DEV --addr 10.7.0.1/24` made.

#[path = "tun_ceiling/conn.rs"]
mod conn;
#[path = "tun_ceiling/probe.rs"]
mod probe;
#[path = "tun_ceiling/recv.rs"]
mod recv;
#[path = "tun_ceiling/route.rs"]
mod route;
#[path = "tun_ceiling/send.rs"]
mod send;
#[path = "tun_ceiling/wire.rs"]
mod wire;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, ValueEnum};
use synack::app::http::fill_pattern;
use synack::device::Tun;

use recv::AckPolicy;

#[derive(Parser)]
#[command(about = "The packet-I/O limit of a one-thread TCP stack on a TUN device")]
struct Args {
    /// The TUN device (made by scripts/setup.sh; MTU 1500, offloads off).
    #[arg(long, required_unless_present = "cache_probe")]
    tun: Option<String>,
    /// The address this end answers as (the kernel's address on the TUN is another in its subnet).
    #[arg(long, default_value = "10.7.0.2")]
    ip: Ipv4Addr,
    #[arg(long, default_value_t = 5001)]
    port: u16,
    #[arg(long, value_enum, required_unless_present = "cache_probe")]
    mode: Option<Mode>,
    /// Bytes to move (10^6 = 1 MB), 1..=2000000000.
    #[arg(long, default_value_t = 100_000_000)]
    bytes: u64,
    /// read: when to acknowledge: 2seg, 64k, 256k (an ACK per that much, and whenever the TUN
    /// is empty) or batch (synack's policy).
    #[arg(long, default_value = "batch", value_parser = parse_policy)]
    ack_every: AckPolicy,
    /// The CPU the TUN thread runs on.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// The CPU the kernel socket's thread runs on.
    #[arg(long, default_value_t = 1)]
    peer_cpu: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Only measure the cache-line round trip between --cpu and --peer-cpu.
    #[arg(long)]
    cache_probe: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Write,
    Read,
}

fn parse_policy(s: &str) -> Result<AckPolicy, String> {
    match s {
        "2seg" => Ok(AckPolicy::TwoSegments),
        "64k" => Ok(AckPolicy::Bytes(64 * 1024)),
        "256k" => Ok(AckPolicy::Bytes(256 * 1024)),
        "batch" => Ok(AckPolicy::Batch),
        _ => Err(format!("'{s}' is not a policy: use 2seg, 64k, 256k or batch")),
    }
}

fn policy_name(p: AckPolicy) -> &'static str {
    match p {
        AckPolicy::TwoSegments => "2seg",
        AckPolicy::Bytes(b) if b == 64 * 1024 => "64k",
        AckPolicy::Bytes(_) => "256k",
        AckPolicy::Batch => "batch",
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("tun_ceiling: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    ensure!(args.timeout > 0 && args.timeout <= 3600, "--timeout must be 1..3600 seconds");
    let timeout = Duration::from_secs(args.timeout);
    if args.cache_probe {
        // 31 batches of 2000 round trips: 4–30 ms of spinning on the two CPUs.
        let ns = probe::round_trip_ns(args.cpu, args.peer_cpu, 31, 2000, timeout)?;
        println!("cache cpu={} peer_cpu={} rtt_ns={ns:.0} level={}", args.cpu, args.peer_cpu, probe::level(ns));
        return Ok(());
    }
    let (Some(dev), Some(mode)) = (args.tun.as_deref(), args.mode) else {
        bail!("--tun and --mode are needed (or --cache-probe)");
    };
    ensure!((1..=2_000_000_000).contains(&args.bytes), "--bytes must be 1..2000000000");
    let n = args.bytes;
    route::check(dev, args.ip)?;
    let tun = Tun::open(dev).with_context(|| format!("make it first: scripts/setup.sh --netns NS --name {dev}"))?;
    let before = quick_probe(args)?;
    probe::pin(args.cpu, "--cpu")?;
    let deadline = Instant::now() + timeout;
    let ours = SocketAddrV4::new(args.ip, args.port);
    let kernel = spawn_kernel_side(mode, ours, n, args.peer_cpu, deadline);
    let tun_side = (|| -> Result<String> {
        let mut c = conn::Conn::accept(tun, ours, deadline).context("the handshake")?;
        let (cpu0, wall0) = (thread_cpu_time()?, Instant::now());
        let counts = match mode {
            Mode::Write => {
                let s = send::run(&mut c, n)?;
                format!("segments={} acks={} retx={} waits={}", s.segments, s.acks, s.retransmits, s.waits)
            }
            Mode::Read => {
                let s = recv::run(&mut c, n, args.ack_every)?;
                format!("segments={} acks={} ooo={} waits={}", s.segments, s.acks, s.out_of_order, s.waits)
            }
        };
        // The share of the transfer the TUN thread was on a CPU: near 1, it is the limit;
        // well below, it waited (for the kernel's side, or for a CPU another process held).
        let busy = (thread_cpu_time()? - cpu0).as_secs_f64() / wall0.elapsed().as_secs_f64();
        Ok(format!("{counts} busy={busy:.2}"))
    })();
    let counts = match tun_side {
        Ok(counts) => counts,
        // What the kernel's side says (connect refused, no route) explains more.
        Err(e) if kernel.is_finished() => match kernel.join() {
            Ok(Err(k)) => bail!("{k:#} (and the TUN side: {e:#})"),
            _ => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let secs = match kernel.join() {
        Ok(r) => r?.as_secs_f64(),
        Err(_) => bail!("the kernel socket's thread panicked"),
    };
    let after = quick_probe(args)?;
    let level = match (before, after) {
        (Some(b), Some(a)) if probe::level(b) == probe::level(a) => probe::level(b).to_string(),
        (Some(b), Some(a)) => format!("{}/{}", probe::level(b), probe::level(a)),
        _ => "-".to_string(),
    };
    let rtt = match (before, after) {
        (Some(b), Some(a)) => format!("{b:.0}/{a:.0}"),
        _ => "-".to_string(),
    };
    let ack = if mode == Mode::Read { policy_name(args.ack_every) } else { "-" };
    let mode = if mode == Mode::Read { "read" } else { "write" };
    println!(
        "ceiling mode={mode} ack={ack} bytes={n} secs={secs:.6} mbps={:.2} level={level} rtt_ns={rtt} {counts} cpu={} peer_cpu={}",
        n as f64 / secs / 1e6,
        args.cpu,
        args.peer_cpu
    );
    Ok(())
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Result<Duration> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).context("clock_gettime")?;
    Ok(Duration::from(t))
}

/// A short cache probe (9 batches of 500 round trips, at most a few ms) on the run's CPUs;
/// None when they are the same CPU.
fn quick_probe(args: &Args) -> Result<Option<f64>> {
    if args.cpu == args.peer_cpu {
        return Ok(None);
    }
    probe::round_trip_ns(args.cpu, args.peer_cpu, 9, 500, Duration::from_secs(5)).map(Some)
}

fn spawn_kernel_side(
    mode: Mode,
    to: SocketAddrV4,
    n: u64,
    cpu: usize,
    deadline: Instant,
) -> JoinHandle<Result<Duration>> {
    std::thread::spawn(move || {
        probe::pin(cpu, "--peer-cpu")?;
        let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let start = Instant::now();
        let addr = SocketAddr::V4(to);
        let mut s = TcpStream::connect_timeout(&addr, left()).with_context(|| {
            format!("connecting to {addr} (the TUN's address must be in {}'s subnet: scripts/setup.sh --addr)", to.ip())
        })?;
        match mode {
            Mode::Write => read_all(&mut s, n, left, start),
            Mode::Read => write_all(&mut s, n, left, start),
        }
        .map_err(|e| match e.downcast_ref::<io::Error>().map(io::Error::kind) {
            Some(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => e.context("timed out (--timeout)"),
            _ => e,
        })
    })
}

/// Read N bytes and then the FIN; the time from `start` to the last byte.
fn read_all(s: &mut TcpStream, n: u64, left: impl Fn() -> Duration, start: Instant) -> Result<Duration> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    let mut last = None;
    loop {
        s.set_read_timeout(Some(left()))?;
        let k = match s.read(&mut buf) {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("reading after {got} of {n} bytes"))),
        };
        if k == 0 {
            break;
        }
        got += k as u64;
        if got >= n && last.is_none() {
            last = Some(start.elapsed());
        }
    }
    ensure!(got == n, "the kernel socket read {got} bytes, not {n}");
    last.context("no data")
}

/// Write N bytes, shut the write side and wait for the peer's FIN; the time from `start`.
fn write_all(s: &mut TcpStream, n: u64, left: impl Fn() -> Duration, start: Instant) -> Result<Duration> {
    let mut block = vec![0u8; 256 * 1024];
    fill_pattern(0, &mut block);
    let mut sent = 0u64;
    while sent < n {
        s.set_write_timeout(Some(left()))?;
        let len = block.len().min((n - sent) as usize);
        s.write_all(&block[..len]).with_context(|| format!("writing after {sent} of {n} bytes"))?;
        sent += len as u64;
    }
    s.shutdown(Shutdown::Write)?;
    let mut buf = [0u8; 64];
    loop {
        s.set_read_timeout(Some(left()))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(start.elapsed()),
            Ok(k) => bail!("the TUN side sent {k} bytes"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("waiting for the FIN")),
        }
    }
}
