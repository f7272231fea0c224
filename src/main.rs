//! The `synack` command: `serve` runs the stack on a TUN device with echo, discard and HTTP.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use nix::sched::{sched_getaffinity, CpuSet};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use synack::app::http::HttpConfig;
use synack::app::services;
use synack::device::{rps, FaultConfig, Tun};
use synack::runtime::StackOptions;
use synack::stack::HostConfig;
use synack::tcp::congestion::Algorithm;
use synack::trace::TraceFormat;
use synack::Stack;

#[derive(Parser)]
#[command(name = "synack", version, about = "A userspace TCP/IP stack on a TUN device that you can watch work")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer as ADDR on the TUN device: echo on 7, discard on 9, HTTP with WebSocket and
    /// Socket.IO on 80, ping.
    Serve(Box<ServeArgs>),
    /// Draw a sequence (ladder) diagram of every TCP connection in a capture (any tool's
    /// pcap or pcapng: raw IP, Ethernet, Linux cooked).
    Ladder(synack::analyze::LadderArgs),
    /// Dissect packets layer by layer: link, IPv4, TCP and the application payload.
    Explain(synack::analyze::ExplainArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The TUN device to attach to (made by `sudo scripts/setup.sh`).
    #[arg(long, default_value = "synack0")]
    tun: String,
    /// Make the TUN device when it does not exist (as root): it starts down and without an
    /// address, so nothing reaches it until you set it up; `scripts/setup.sh` does that.
    #[arg(long)]
    create: bool,
    /// The address synack answers as (the kernel side of the device is 10.7.0.1).
    #[arg(long, default_value = "10.7.0.2")]
    ip: Ipv4Addr,
    /// The prefix length of the device's subnet: packets from its directed broadcast address
    /// (10.7.0.255 for 10.7.0.2/24) are dropped.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=32), value_name = "BITS")]
    prefix_len: u8,
    /// Write every packet both ways to this pcap file (LINKTYPE_RAW, nanosecond stamps).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Print one line per segment in and out, every state change, timer and drop reason,
    /// and the WebSocket/Socket.IO frames, to stderr. `--trace=json` prints JSON lines.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "text", value_name = "FORMAT")]
    trace: Option<TraceMode>,
    /// Smallest retransmission timeout in milliseconds (RFC 6298 says 1000; 200, as Linux
    /// uses, recovers loss on a fast local link sooner).
    #[arg(long, default_value_t = 200, value_name = "MS")]
    min_rto_ms: u64,
    /// Maximum segment lifetime in milliseconds; TIME-WAIT lasts twice this.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    msl_ms: u64,
    /// Seeded faults on the packets of both directions, e.g.
    /// loss=0.05,dup=0.01,reorder=0.05,delay=20ms,jitter=5ms,seed=7 (any subset, any order).
    #[arg(long, value_name = "SPEC")]
    faults: Option<FaultConfig>,
    /// Faults on inbound packets only (kernel → synack); overrides --faults for that direction.
    #[arg(long, value_name = "SPEC")]
    faults_in: Option<FaultConfig>,
    /// Faults on outbound packets only (synack → kernel); overrides --faults for that direction.
    #[arg(long, value_name = "SPEC")]
    faults_out: Option<FaultConfig>,
    /// Use the TUN's offloads: a virtio-net header on every packet (IFF_VNET_HDR), checksum
    /// and TCP segmentation offload on (TUNSETOFFLOAD). Packets of up to 64 KiB then cross
    /// the device at MTU 1500: synack hands the kernel TCP super-segments to cut into MSS-sized
    /// ones (TSO), and reads the kernel's own super-packets whole, trusting their checksums.
    /// The exit summary counts the super-packets. With --faults* the fault layer works on
    /// ordinary packets, so synack sends no super-segments then.
    #[arg(long)]
    offload: bool,
    /// Congestion control: newreno (RFC 5681/6582: halve the window at each loss; every step
    /// is in the RFCs, the easiest to follow in a trace) or bbr (a window from the measured
    /// delivery rate and round trip, like Linux's BBR (this machine's default): random loss
    /// costs only the retransmissions).
    #[arg(long, value_enum, default_value = "newreno", value_name = "ALGORITHM")]
    cc: CcArg,
    /// How long an HTTP client may take to send a whole request head (from connecting, or
    /// from the first byte of a later request); past it the answer is 408 and the connection
    /// closes, so a slowloris client cannot hold a connection by trickling a head.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    header_timeout_ms: u64,
    /// Connections at once, in any state; at the limit a SYN gets a SYN cookie and a client
    /// that completes the handshake takes the place of the connection idle longest.
    #[arg(long, default_value_t = 16384, value_name = "N")]
    max_connections: usize,
    /// Connections at once from one source address, TIME-WAIT not included; at the limit
    /// that source's new connection takes the place of its own connection idle longest.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    max_per_source: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CcArg {
    Newreno,
    Bbr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TraceMode {
    Text,
    Json,
}

fn main() {
    // The trace and the log lines count seconds from here, so one run has one clock.
    let start = Instant::now();
    let cli = Cli::parse();
    // `--trace` also shows the application protocols' frames, which those modules log.
    let traced = matches!(&cli.command, Command::Serve(a) if a.trace.is_some());
    let default_filter = if traced { "warn,synack::ws=info,synack::socketio=info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SYNACK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_timer(SinceStart(start))
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(*args, start),
        Command::Ladder(args) => synack::analyze::ladder(&args, &mut std::io::stdout().lock()),
        Command::Explain(args) => synack::analyze::explain(&args, &mut std::io::stdout().lock()),
    };
    if let Err(e) = result {
        // A reader that stopped early (`synack ladder x.pcap | head`) is not an error: end
        // quietly, as Unix filters do.
        if is_broken_pipe(&e) {
            return;
        }
        say(format_args!("{e:#}"));
        std::process::exit(1);
    }
}

/// Whether the error comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}

/// One `synack: ...` line on stderr; a closed stderr is no reason to panic.
fn say(msg: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "synack: {msg}");
}

/// Log-line time stamps as the trace writes them: seconds since the program started.
struct SinceStart(Instant);

impl tracing_subscriber::fmt::time::FormatTime for SinceStart {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> fmt::Result {
        write!(w, "{:>10.6}", self.0.elapsed().as_secs_f64())
    }
}

/// Whether a network device called `name` exists in this network namespace. Asked of the
/// kernel (if_nametoindex), not /sys, which shows the namespace it was mounted in.
fn device_exists(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else { return false };
    // SAFETY: a NUL-terminated string that outlives the call; the function only reads it.
    unsafe { nix::libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// Where the event loop may run: with RPS on the TUN, on the CPUs this process may use outside
/// the RPS mask, so that the kernel's processing of what the loop writes happens beside it, not
/// on it (see `synack::device::rps`); with RPS off, or no CPU left outside it, anywhere.
fn loop_cpus(tun: &str) -> Vec<usize> {
    let rps = match rps::rps_cpus(tun) {
        Ok(cpus) => cpus,
        Err(e) => {
            tracing::debug!("no RPS mask for {tun}: {e}");
            return Vec::new();
        }
    };
    if rps.is_empty() {
        return Vec::new();
    }
    let Ok(allowed) = sched_getaffinity(Pid::from_raw(0)) else { return Vec::new() };
    let allowed: Vec<usize> = (0..CpuSet::count()).filter(|&cpu| allowed.is_set(cpu).unwrap_or(false)).collect();
    rps::outside_mask(&allowed, &rps)
}

fn serve(args: ServeArgs, start: Instant) -> Result<()> {
    // Checked before anything else, so a typo costs nothing.
    for (flag, value) in [
        ("--header-timeout-ms", args.header_timeout_ms as usize),
        ("--max-connections", args.max_connections),
        ("--max-per-source", args.max_per_source),
    ] {
        anyhow::ensure!(value > 0, "{flag} must be at least 1 (0 would refuse every client)");
    }
    if !args.create && !device_exists(&args.tun) {
        let ns = if args.tun == "synack0" { String::new() } else { format!(" --name {}", args.tun) };
        bail!(
            "no TUN device {tun:?} in this network namespace; make it with\n  \
             sudo scripts/setup.sh{ns}\n\
             or, if setup.sh made it in a namespace (--netns NS), run synack there:\n  \
             sudo ip netns exec NS target/release/synack serve --tun {tun}\n\
             (--create makes a bare device instead: down and without an address)",
            tun = args.tun
        );
    }
    // Block SIGINT/SIGTERM in every thread; the main thread waits for them below.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().context("blocking signals")?;

    let device = if args.offload { Tun::open_offload(&args.tun) } else { Tun::open(&args.tun) }
        .with_context(|| format!("attaching to TUN device {}", args.tun))?;
    let mut host = HostConfig {
        addr: args.ip,
        prefix_len: args.prefix_len,
        max_connections: args.max_connections,
        max_per_source: args.max_per_source,
        ..Default::default()
    };
    host.tcp.msl = Duration::from_millis(args.msl_ms.max(1));
    host.tcp.min_rto = Duration::from_millis(args.min_rto_ms.max(1));
    host.tcp.congestion = match args.cc {
        CcArg::Newreno => Algorithm::NewReno,
        CcArg::Bbr => Algorithm::Bbr,
    };
    let faults_in = args.faults_in.clone().or_else(|| args.faults.clone());
    let faults_out = args.faults_out.clone().or_else(|| args.faults.clone());
    // What the "serving as" line adds: offloads, faults, where the event loop runs.
    let mut settings = String::from(if args.offload { ", offloads on (TSO, checksum)" } else { "" });
    for (dir, cfg) in [("in", &faults_in), ("out", &faults_out)] {
        if let Some(cfg) = cfg {
            settings += &format!(", faults {dir} {cfg}");
        }
    }
    let loop_cpus = loop_cpus(&args.tun);
    if !loop_cpus.is_empty() {
        settings += &format!(", event loop on CPUs {loop_cpus:?} (outside {}'s RPS mask)", args.tun);
    }
    let opts = StackOptions {
        host,
        trace: args.trace.is_some(),
        trace_format: if args.trace == Some(TraceMode::Json) { TraceFormat::Json } else { TraceFormat::Text },
        trace_colour: std::io::stderr().is_terminal(),
        trace_sink: None,
        trace_epoch: Some(start),
        pcap: args.pcap.clone(),
        faults_in,
        faults_out,
        loop_cpus,
    };
    let stack = Stack::new(device, opts).context("starting the stack")?;
    let http = HttpConfig { head_timeout: Duration::from_millis(args.header_timeout_ms), ..Default::default() };
    services::spawn_all(&stack, http).context("starting services")?;
    say(format_args!(
        "serving as {} on {} (echo :7, discard :9, http with WebSocket and Socket.IO :80){}{settings}; Ctrl-C to stop",
        args.ip,
        args.tun,
        args.pcap.as_ref().map(|p| format!(", capturing to {}", p.display())).unwrap_or_default()
    ));
    let sig = signals.wait().context("waiting for a signal")?;
    say(format_args!("{sig}, closing connections"));
    let summary = stack.shutdown(Duration::from_millis(1000));
    say(format_args!("{summary}"));
    if let Some(counts) = stack.offload_counts() {
        say(format_args!("{counts}"));
    }
    if let Some(counts) = stack.fault_counts() {
        say(format_args!("{counts}"));
    }
    Ok(())
}
