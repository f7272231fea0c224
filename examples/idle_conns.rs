//! Opens N idle connections to an echo server and holds them (`scripts/bench.sh` measures the
//! server's memory meanwhile):
//!
//! ```text
//! idle_conns ADDR:PORT N HOLD_SECS
//! ```
//!
//! Each connection is checked to be established end to end (1 byte written and echoed back),
//! then left idle. Once all N are open it prints `ready conns=N secs=S` to stdout, holds them for
//! HOLD_SECS (or until killed) and exits, closing them all. Needs `ulimit -n` above N.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    if let Err(e) = run() {
        eprintln!("idle_conns: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, n, hold] = args.as_slice() else {
        bail!("usage: idle_conns ADDR:PORT N HOLD_SECS");
    };
    let addr: SocketAddr = addr.parse().with_context(|| format!("bad address {addr:?}"))?;
    let n: usize = n.parse().context("bad N")?;
    let hold = Duration::from_secs(hold.parse().context("bad HOLD_SECS")?);
    let start = Instant::now();
    let mut held = Vec::with_capacity(n);
    let mut b = [0u8; 4];
    for i in 0..n {
        let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .with_context(|| format!("connection {} of {n} to {addr}", i + 1))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.write_all(b"x")?;
        let k = s.read(&mut b).with_context(|| format!("echo on connection {}", i + 1))?;
        ensure!(k == 1, "connection {}: echo returned {k} bytes", i + 1);
        held.push(s);
    }
    println!("ready conns={n} secs={:.3}", start.elapsed().as_secs_f64());
    std::thread::sleep(hold);
    drop(held);
    Ok(())
}
