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
//! `--parallel K` (anywhere on the line, default 1) keeps K connections in flight from the one
//! thread, on non-blocking sockets and one `poll`: with one at a time the rate is one over the
//! latency of a connection, a chain of wake-ups on both sides; with K in flight it is what
//! the server can sustain.
//!
//! Stops after N connections or SECS seconds, whichever comes first, and prints
//! `result mode=echo conns=5000 secs=0.4 cps=12500.0 parallel=1` to stdout. A failed connection
//! prints a message to stderr and exits 1. Every connection must finish within 5 s.
//!
//! Per connection the client makes only the system calls it needs (socket, SO_REUSEADDR,
//! TCP_NODELAY, non-blocking, bind, connect, send, shutdown, recv, close and the `poll`s):
//! `std`'s `connect_timeout` and read/write timeouts would add seven more.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use socket2::{Domain, Protocol, Socket, Type};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const PORT_LOW: u16 = 10_000;
const PORT_END: u16 = 32_768;
const MAX_PARALLEL: usize = 1024;

fn main() {
    if let Err(e) = run() {
        eprintln!("conn_rate: {e:#}");
        std::process::exit(1);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Echo,
    Http,
}

fn run() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut parallel = 1usize;
    if let Some(i) = args.iter().position(|a| a == "--parallel") {
        let k = args.get(i + 1).ok_or_else(|| anyhow!("--parallel needs a number"))?;
        parallel = k.parse().context("bad --parallel")?;
        ensure!((1..=MAX_PARALLEL).contains(&parallel), "--parallel must be 1..={MAX_PARALLEL}");
        args.drain(i..i + 2);
    }
    let (mode, addr, n, secs, src, first) = match args.as_slice() {
        [m, a, n, s] => (m, a, n, s, None, None),
        [m, a, n, s, ip] => (m, a, n, s, Some(ip), None),
        [m, a, n, s, ip, p] => (m, a, n, s, Some(ip), Some(p)),
        _ => bail!("usage: conn_rate echo|http ADDR:PORT N SECS [SRC_IP [FIRST_PORT]] [--parallel K]"),
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
    let mode = match mode.as_str() {
        "echo" => Mode::Echo,
        "http" => Mode::Http,
        other => bail!("unknown mode {other:?}: use echo or http"),
    };
    let request = match mode {
        Mode::Echo => b"x".to_vec(),
        // One write, so the request goes out as one segment.
        Mode::Http => format!("GET /bytes/1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", addr.ip()).into_bytes(),
    };
    let mut client = Client { mode, addr, src, request, n, slots: Vec::with_capacity(parallel), started: 0, done: 0 };
    let start = Instant::now();
    let mut port = first;
    while client.done < n && start.elapsed() < limit {
        while client.slots.len() < parallel && client.started < n {
            client.open(port)?;
            port = if port + 1 >= PORT_END { PORT_LOW } else { port + 1 };
        }
        client.step()?;
    }
    let secs = start.elapsed().as_secs_f64();
    let name = if mode == Mode::Echo { "echo" } else { "http" };
    println!(
        "result mode={name} conns={} secs={secs:.6} cps={:.1} parallel={parallel}",
        client.done,
        client.done as f64 / secs
    );
    Ok(())
}

/// Where a connection is: each step waits for one event on its socket.
#[derive(Clone, Copy, PartialEq)]
enum Step {
    /// Non-blocking connect in progress: wait until writable, then send the request.
    Connecting,
    /// Echo: the byte back, then shut down our side.
    Echo,
    /// Echo: the server's FIN.
    Fin,
    /// HTTP: the response, up to the server's FIN.
    Response,
}

struct Conn {
    sock: Socket,
    step: Step,
    /// Its number (1-based) and source port, for messages.
    nr: u64,
    port: u16,
    deadline: Instant,
    got: Vec<u8>,
}

struct Client {
    mode: Mode,
    addr: SocketAddr,
    src: Ipv4Addr,
    request: Vec<u8>,
    n: u64,
    slots: Vec<Conn>,
    started: u64,
    done: u64,
}

impl Client {
    fn open(&mut self, port: u16) -> Result<()> {
        self.started += 1;
        let (nr, n, src) = (self.started, self.n, self.src);
        let sock = (|| -> Result<Socket> {
            let local = SocketAddrV4::new(src, port);
            let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
            sock.set_reuse_address(true)?;
            sock.set_tcp_nodelay(true)?;
            sock.set_nonblocking(true)?;
            sock.bind(&local.into()).with_context(|| format!("binding {local}"))?;
            match sock.connect(&self.addr.into()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
                Err(e) => return Err(e).with_context(|| format!("connecting to {}", self.addr)),
            }
            Ok(sock)
        })()
        .with_context(|| format!("connection {nr} of {n} (from {src}:{port})"))?;
        let deadline = Instant::now() + IO_TIMEOUT;
        self.slots.push(Conn { sock, step: Step::Connecting, nr, port, deadline, got: Vec::new() });
        Ok(())
    }

    /// One `poll` over the connections in flight, then advance each that is ready.
    fn step(&mut self) -> Result<()> {
        let now = Instant::now();
        let first_deadline = self.slots.iter().map(|c| c.deadline).min().unwrap_or(now);
        let wait = first_deadline.saturating_duration_since(now).as_millis().clamp(1, 1000) as u16;
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = self
                .slots
                .iter()
                .map(|c| {
                    let ev = if c.step == Step::Connecting { PollFlags::POLLOUT } else { PollFlags::POLLIN };
                    PollFd::new(c.sock.as_fd(), ev)
                })
                .collect();
            match poll(&mut fds, PollTimeout::from(wait)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("poll"),
            }
            fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect()
        };
        let now = Instant::now();
        // From the back, so that `swap_remove` moves a connection already handled.
        for i in (0..self.slots.len()).rev() {
            let c = &mut self.slots[i];
            let finished = if ready[i] {
                advance(c, self.mode, &self.request)
                    .with_context(|| format!("connection {} of {} (from {}:{})", c.nr, self.n, self.src, c.port))?
            } else if now >= c.deadline {
                bail!(
                    "connection {} of {} (from {}:{}): no progress within {IO_TIMEOUT:?}",
                    c.nr,
                    self.n,
                    self.src,
                    c.port
                );
            } else {
                false
            };
            if finished {
                // Dropping the socket closes it.
                self.slots.swap_remove(i);
                self.done += 1;
            }
        }
        Ok(())
    }
}

/// Handle what `poll` reported for `c`; true when the connection is complete.
fn advance(c: &mut Conn, mode: Mode, request: &[u8]) -> Result<bool> {
    let mut b = [0u8; 512];
    loop {
        match c.step {
            Step::Connecting => {
                if let Some(e) = c.sock.take_error()? {
                    return Err(e).context("connecting");
                }
                let k = (&c.sock).write(request).context("sending the request")?;
                ensure!(k == request.len(), "short write of the request ({k} of {})", request.len());
                c.step = if mode == Mode::Echo { Step::Echo } else { Step::Response };
                return Ok(false);
            }
            Step::Echo => match read(&c.sock, &mut b).context("reading the echo")? {
                None => return Ok(false),
                Some(k) => {
                    ensure!(k == 1 && b[0] == b'x', "echo returned {:?}", &b[..k]);
                    c.sock.shutdown(Shutdown::Write)?;
                    c.step = Step::Fin;
                    // The FIN comes only after the server has read ours: no use reading now.
                    return Ok(false);
                }
            },
            Step::Fin => match read(&c.sock, &mut b).context("waiting for the server's FIN")? {
                None => return Ok(false),
                Some(0) => return Ok(true),
                Some(k) => bail!("{k} more bytes after the echo"),
            },
            Step::Response => match read(&c.sock, &mut b).context("reading the response to the server's FIN")? {
                None => return Ok(false),
                Some(0) => {
                    let resp = &c.got;
                    ensure!(resp.starts_with(b"HTTP/1.1 200"), "bad response {:?}", String::from_utf8_lossy(resp));
                    // `/bytes` pattern: byte 0 is 0.
                    ensure!(resp.ends_with(b"\r\n\r\n\0"), "response does not end in the 1-byte body");
                    return Ok(true);
                }
                Some(k) => {
                    ensure!(c.got.len() + k <= 4096, "response longer than 4096 bytes");
                    c.got.extend_from_slice(&b[..k]);
                }
            },
        }
    }
}

/// A non-blocking read: `None` when nothing is there yet.
fn read(mut s: &Socket, b: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match s.read(b) {
            Ok(k) => return Ok(Some(k)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
