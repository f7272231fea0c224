//! The kernel's TCP serving what `synack serve` serves, for side-by-side measurements
//! (`scripts/bench.sh`): the same HTTP code (`synack::app::http::serve`, so `/bytes/N` is the
//! same bytes written in the same chunks) and the same discard and echo loops, over `std::net`.
//!
//! ```text
//! kernel_peer [ADDR]     HTTP on ADDR:80, discard on ADDR:9, echo on ADDR:7
//!                        (ADDR defaults to 0.0.0.0)
//! ```
//!
//! Prints `kernel_peer: ready` to stderr once both listen; runs until killed.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use synack::app::http::{self, HttpConfig};
use synack::app::pool::{Pool, PoolConfig};
use synack::app::services::{self, DISCARD_PORT, ECHO_PORT, HTTP_PORT};

fn main() {
    if let Err(e) = run() {
        eprintln!("kernel_peer: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let ip: Ipv4Addr = match std::env::args().nth(1) {
        Some(a) => a.parse().with_context(|| format!("bad address {a:?}"))?,
        None => Ipv4Addr::UNSPECIFIED,
    };
    let http = TcpListener::bind((ip, HTTP_PORT)).with_context(|| format!("binding {ip}:{HTTP_PORT}"))?;
    let discard = TcpListener::bind((ip, DISCARD_PORT)).with_context(|| format!("binding {ip}:{DISCARD_PORT}"))?;
    let echo = TcpListener::bind((ip, ECHO_PORT)).with_context(|| format!("binding {ip}:{ECHO_PORT}"))?;
    let cfg = HttpConfig::default();
    let http_thread = thread::spawn(move || {
        accept_loop(http, move |mut s| {
            http::serve(&mut s, &cfg)?;
            Ok(())
        })
    });
    let discard_thread = thread::spawn(move || accept_loop(discard, discard_one));
    let echo_thread = thread::spawn(move || accept_loop(echo, echo_one));
    eprintln!("kernel_peer: ready (http {ip}:{HTTP_PORT}, discard {ip}:{DISCARD_PORT}, echo {ip}:{ECHO_PORT})");
    for t in [http_thread, discard_thread, echo_thread] {
        t.join().map_err(|_| anyhow::anyhow!("an accept thread panicked"))??;
    }
    Ok(())
}

/// Accept forever on a pool of reused threads, as `synack serve` does (`synack::app::pool`),
/// so the kernel column measures the kernel's TCP and not a difference in threading.
fn accept_loop<F>(listener: TcpListener, handler: F) -> Result<()>
where
    F: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
{
    let (stopped_tx, stopped) = std::sync::mpsc::channel::<io::Error>();
    let stopped_tx = std::sync::Mutex::new(stopped_tx);
    let cfg = PoolConfig {
        name: "peer".into(),
        max_threads: services::MAX_SERVICE_THREADS,
        idle_timeout: Duration::from_secs(10),
    };
    let _pool = Pool::start(
        cfg,
        // Blocks without a timeout: idle threads stay (the bench's peer does not need to shrink).
        move |_idle| {
            listener.accept().map(|(s, _)| Some(s)).inspect_err(|e| {
                if let Ok(tx) = stopped_tx.lock() {
                    let _ = tx.send(io::Error::new(e.kind(), e.to_string()));
                }
            })
        },
        move |stream| {
            if let Err(e) = handler(stream) {
                eprintln!("kernel_peer: connection ended: {e}");
            }
        },
    )
    .context("starting the service threads")?;
    match stopped.recv() {
        Ok(e) => Err(e).context("accept"),
        Err(_) => Ok(()),
    }
}

/// The same loop as `synack::app::services::discard`: read and drop, FIN on EOF.
fn discard_one(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stream.read(&mut buf)? == 0 {
            return stream.shutdown(Shutdown::Write);
        }
    }
}

/// The same loop as `synack::app::services::echo`: every byte back, FIN after the peer's.
fn echo_one(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return stream.shutdown(Shutdown::Write);
        }
        stream.write_all(&buf[..n])?;
    }
}
