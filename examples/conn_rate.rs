//! Connection rate, one client thread, one connection at a time (`scripts/bench.sh`):
//!
//! ```text
//! conn_rate echo ADDR:PORT N SECS [SRC_IP [FIRST_PORT]]
//!                                   connect, write 1 byte, read it back, shut down the write
//!                                   side, wait for the server's FIN: the client closes first,
//!                                   so TIME-WAIT is on the client's side (its ports)
//! conn_rate http ADDR:PORT N SECS [SRC_IP [FIRST_PORT]]
//!                                   connect, GET /bytes/1 with Connection: close, read the
//!                                   response to the server's FIN: the server closes first,
//!                                   so TIME-WAIT stays in the server's stack
//! ```
//!
//! Each connection binds its own source port (on SRC_IP, default any), counting up from
//! FIRST_PORT (default 10000) and
//! wrapping below 32768 (where the kernel's ephemeral range starts), so no four-tuple repeats
//! within a run: with the server holding TIME-WAIT, a kernel-chosen (random) port would now and
//! then land on a quad still in TIME-WAIT at the server, and a stack that does not reopen such
//! a quad on a new SYN (smoltcp) would stall that connect for seconds. Runs that follow each
//! other within the TIME-WAIT time should use different SRC_IPs.
//!
//! Stops after N connections or SECS seconds, whichever comes first, and prints
//! `result mode=echo conns=5000 secs=0.4 cps=12500.0` to stdout. A failed connection prints
//! a message to stderr and exits 1. Every connect/read/write has a 5 s timeout.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const PORT_LOW: u16 = 10_000;
const PORT_END: u16 = 32_768;

fn main() {
    if let Err(e) = run() {
        eprintln!("conn_rate: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, addr, n, secs, src, first) = match args.as_slice() {
        [m, a, n, s] => (m, a, n, s, None, None),
        [m, a, n, s, ip] => (m, a, n, s, Some(ip), None),
        [m, a, n, s, ip, p] => (m, a, n, s, Some(ip), Some(p)),
        _ => bail!("usage: conn_rate echo|http ADDR:PORT N SECS [SRC_IP [FIRST_PORT]]"),
    };
    let src: Ipv4Addr = match src {
        Some(ip) => ip.parse().with_context(|| format!("bad SRC_IP {ip:?}"))?,
        None => Ipv4Addr::UNSPECIFIED,
    };
    let first: u16 = match first {
        Some(p) => p.parse().context("bad FIRST_PORT")?,
        None => PORT_LOW,
    };
    ensure!((PORT_LOW..PORT_END).contains(&first), "FIRST_PORT must be in {PORT_LOW}..{PORT_END}");
    let addr: SocketAddr = addr.parse().with_context(|| format!("bad address {addr:?}"))?;
    let n: u64 = n.parse().context("bad N")?;
    let limit = Duration::from_secs_f64(secs.parse().context("bad SECS")?);
    let one: fn(SocketAddr, SocketAddrV4) -> Result<()> = match mode.as_str() {
        "echo" => echo_once,
        "http" => http_once,
        other => bail!("unknown mode {other:?}: use echo or http"),
    };
    let start = Instant::now();
    let mut done = 0u64;
    let mut port = first;
    while done < n && start.elapsed() < limit {
        one(addr, SocketAddrV4::new(src, port))
            .with_context(|| format!("connection {} of {n} (from {src}:{port})", done + 1))?;
        done += 1;
        port = if port + 1 >= PORT_END { PORT_LOW } else { port + 1 };
    }
    let secs = start.elapsed().as_secs_f64();
    println!("result mode={mode} conns={done} secs={secs:.6} cps={:.1}", done as f64 / secs);
    Ok(())
}

fn connect(addr: SocketAddr, local: SocketAddrV4) -> Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&local.into()).with_context(|| format!("binding {local}"))?;
    socket.connect_timeout(&addr.into(), IO_TIMEOUT).with_context(|| format!("connecting to {addr}"))?;
    let s: TcpStream = socket.into();
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

fn echo_once(addr: SocketAddr, local: SocketAddrV4) -> Result<()> {
    let mut s = connect(addr, local)?;
    s.write_all(b"x")?;
    let mut b = [0u8; 16];
    let k = s.read(&mut b).context("reading the echo")?;
    ensure!(k == 1 && b[0] == b'x', "echo returned {:?}", &b[..k]);
    s.shutdown(Shutdown::Write)?;
    let k = s.read(&mut b).context("waiting for the server's FIN")?;
    ensure!(k == 0, "{k} more bytes after the echo");
    Ok(())
}

fn http_once(addr: SocketAddr, local: SocketAddrV4) -> Result<()> {
    let mut s = connect(addr, local)?;
    // One write, so the request goes out as one segment (with Nagle off, `write!` would send
    // each formatted piece as its own).
    let req = format!("GET /bytes/1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", addr.ip());
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::with_capacity(256);
    s.read_to_end(&mut resp).context("reading the response to the server's FIN")?;
    ensure!(resp.starts_with(b"HTTP/1.1 200"), "bad response {:?}", String::from_utf8_lossy(&resp));
    // `/bytes` pattern: byte 0 is 0.
    ensure!(resp.ends_with(b"\r\n\r\n\0"), "response does not end in the 1-byte body");
    Ok(())
}
