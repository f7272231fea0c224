//! What the reference servers of the official protocol test suites serve, on a synack
//! stack: the Socket.IO server of socket.io-protocol's test suite at `/socket.io/` and the
//! raw Engine.IO echo of engine.io-protocol's at `/engine.io/` (see
//! `../shared/sio-suites/SOURCE`), with their settings: pingInterval 300 ms, pingTimeout
//! 200 ms, maxPayload 1,000,000, connectTimeout 1000 ms. Namespaces `/` and `/custom`: on
//! connection `auth` with the CONNECT payload, `message` → `message-back` with every
//! argument, `message-with-ack` acknowledged with every argument.
//!
//! ```text
//! sio_reference_server [--tun synack0] [--ip 10.7.0.2] [--trace]
//! ```
//!
//! `SYNACK_LOG` sets the log filter, as for `synack serve` (`synack::socketio=info` is the
//! trace).
//!
//! Needs the TUN device (`scripts/setup.sh`); prints `serving as …` once up, runs until
//! SIGINT or SIGTERM. `tests/tun_sio_suites.rs` runs both suites against it.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{SigSet, Signal};
use synack::app::http::HttpConfig;
use synack::app::{engineio, services, socketio};
use synack::device::Tun;
use synack::runtime::StackOptions;
use synack::stack::HostConfig;
use synack::Stack;

fn main() {
    if let Err(e) = run() {
        eprintln!("sio_reference_server: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let (mut tun, mut ip, mut trace) = ("synack0".to_string(), Ipv4Addr::new(10, 7, 0, 2), false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tun" => tun = args.next().context("--tun needs a device name")?,
            "--ip" => {
                let v = args.next().context("--ip needs an address")?;
                ip = v.parse().with_context(|| format!("--ip {v:?} is not an IPv4 address"))?;
            }
            "--trace" => trace = true,
            other => {
                bail!("unknown argument {other:?}; usage: sio_reference_server [--tun NAME] [--ip ADDR] [--trace]")
            }
        }
    }
    // `SYNACK_LOG` as for `synack serve` (a test run can ask for the trace this way).
    let filter = match std::env::var("SYNACK_LOG") {
        Ok(f) if !f.is_empty() => f,
        _ if trace => "warn,synack::socketio=info".to_owned(),
        _ => "warn".to_owned(),
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().context("blocking signals")?;

    let config = socketio::Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        connect_timeout: Duration::from_millis(1000),
        ..socketio::Config::default()
    };
    let device =
        Tun::open(&tun).with_context(|| format!("attaching to TUN device {tun} (scripts/setup.sh makes it)"))?;
    let opts = StackOptions { host: HostConfig { addr: ip, ..Default::default() }, ..Default::default() };
    let stack = Stack::new(device, opts).context("starting the stack")?;
    services::spawn_with(&stack, HttpConfig::default(), socketio::reference(config), engineio::echo(config))
        .context("starting services")?;
    eprintln!("sio_reference_server: serving as {ip} on {tun} (/socket.io/ and /engine.io/ on :80)");
    signals.wait().context("waiting for a signal")?;
    eprintln!("sio_reference_server: {}", stack.shutdown(Duration::from_millis(500)));
    Ok(())
}
