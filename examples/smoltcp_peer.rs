//! smoltcp (crates.io, a dev-dependency) serving what `synack serve` serves, on a TUN device of
//! its own, for side-by-side measurements (`scripts/bench.sh`):
//!
//! ```text
//! smoltcp_peer TUN ADDR/PREFIX [--cc cubic|reno|none] [--buf BYTES] [--loss PCT] [--listeners N]
//!     echo on 7 (RFC 862: every byte back; close after the peer's FIN)
//!     discard on 9 (RFC 863: read and drop; close after the peer's FIN)
//!     HTTP on 80: one request per connection, `GET /bytes/N` answers 200 with
//!     Content-Length N and the `/bytes` pattern (byte i = i % 251); anything else 404;
//!     the server closes after the response (so its side goes through TIME-WAIT)
//! ```
//!
//! `--listeners N` (default 4) listening sockets are kept ready per port: a smoltcp listener
//! becomes the connection, so N is how many handshakes can be under way at once before SYNs
//! are refused (the bench's `conn_rate --parallel K` needs N ≥ K).
//!
//! `--loss PCT` drops PCT% of the packets at random both ways (smoltcp's own `FaultInjector`
//! around the TUN: what it receives and what it sends), for the loss rows of the bench.
//!
//! Its best settings for bulk transfers: 4 MiB socket buffers (`--buf`) where the bulk data
//! flows (HTTP's send side, discard's receive side; echo gets 64 KiB each way), Nagle off,
//! congestion control on (CUBIC by default). One thread: poll the interface (which reads the
//! TUN until it is empty), serve the sockets, and wait on the TUN fd until the next timer only
//! when a poll found nothing to do.
//! Prints `smoltcp_peer: ready` to stderr once it listens; runs until killed.

use std::collections::HashMap;
use std::os::unix::io::{AsRawFd, RawFd};

use anyhow::{bail, Context, Result};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, Device, FaultInjector, Medium, TunTapInterface};
use smoltcp::socket::tcp::{self, CongestionControl, State};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Address};
use synack::app::http::fill_pattern;

const ECHO: u16 = 7;
const DISCARD: u16 = 9;
const HTTP: u16 = 80;
/// Listening sockets kept ready per port by default (see `--listeners`).
const SPARE_LISTENERS: usize = 4;
const SMALL_BUF: usize = 64 * 1024;
/// Longest HTTP request head accepted.
const MAX_HEAD: usize = 8 * 1024;

fn main() {
    if let Err(e) = run() {
        eprintln!("smoltcp_peer: {e:#}");
        std::process::exit(1);
    }
}

struct Settings {
    cc: CongestionControl,
    big_buf: usize,
    loss_pct: u8,
    listeners: usize,
}

enum App {
    Echo,
    Discard,
    /// Reading the request head (bytes so far).
    HttpHead(Vec<u8>),
    /// Sending: header bytes not yet queued, then body bytes `sent..len`.
    HttpSend {
        head: Vec<u8>,
        sent: u64,
        len: u64,
    },
}

struct Conn {
    port: u16,
    app: App,
    closed: bool,
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(tun), Some(cidr)) = (args.first(), args.get(1)) else {
        bail!("usage: smoltcp_peer TUN ADDR/PREFIX [--cc cubic|reno|none] [--buf BYTES] [--loss PCT] [--listeners N]");
    };
    let mut settings =
        Settings { cc: CongestionControl::Cubic, big_buf: 4 << 20, loss_pct: 0, listeners: SPARE_LISTENERS };
    let mut rest = args[2..].iter();
    while let Some(a) = rest.next() {
        let v = rest.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--cc" => {
                settings.cc = match v.as_str() {
                    "cubic" => CongestionControl::Cubic,
                    "reno" => CongestionControl::Reno,
                    "none" => CongestionControl::None,
                    _ => bail!("--cc must be cubic, reno or none"),
                }
            }
            "--buf" => settings.big_buf = v.parse().context("--buf BYTES")?,
            "--loss" => settings.loss_pct = v.parse().ok().filter(|p| *p <= 100).context("--loss PCT (0..100)")?,
            "--listeners" => {
                settings.listeners =
                    v.parse().ok().filter(|n| (1..=1024).contains(n)).context("--listeners N (1..1024)")?
            }
            _ => bail!("unknown argument {a:?}"),
        }
    }
    let (ip, prefix) = cidr.split_once('/').context("ADDR/PREFIX, e.g. 10.9.0.2/24")?;
    let ip: Ipv4Address = ip.parse().map_err(|_| anyhow::anyhow!("bad address {ip:?}"))?;
    let prefix: u8 = prefix.parse().context("bad prefix")?;

    // Large buffers are allocated per connection: with glibc's adaptive threshold a freed
    // 4 MiB buffer moves later ones onto the heap, where calloc must zero them (milliseconds
    // per connection). A fixed threshold keeps them as fresh, lazily zeroed mappings.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 256 << 10);
    }

    let device = TunTapInterface::new(tun, Medium::Ip).with_context(|| format!("opening TUN {tun}"))?;
    let fd = device.as_raw_fd();
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    let seed = u64::from_le_bytes(seed);
    let what = format!("{ip} on {tun}");
    if settings.loss_pct > 0 {
        let mut faulty = FaultInjector::new(device, seed as u32);
        faulty.set_drop_chance(settings.loss_pct);
        serve_forever(faulty, fd, seed, IpCidr::new(ip.into(), prefix), &settings, &what)
    } else {
        serve_forever(device, fd, seed, IpCidr::new(ip.into(), prefix), &settings, &what)
    }
}

fn serve_forever<D: Device>(
    mut device: D,
    fd: RawFd,
    seed: u64,
    cidr: IpCidr,
    settings: &Settings,
    what: &str,
) -> Result<()> {
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = seed;
    let mut iface = Interface::new(config, &mut device, Instant::now());
    iface.update_ip_addrs(|addrs| {
        addrs.push(cidr).expect("one address fits");
    });

    let mut sockets = SocketSet::new(vec![]);
    let mut conns: HashMap<SocketHandle, Conn> = HashMap::new();
    for port in [ECHO, DISCARD, HTTP] {
        for _ in 0..settings.listeners {
            add_listener(&mut sockets, &mut conns, port, settings)?;
        }
    }
    eprintln!(
        "smoltcp_peer: ready ({what}: echo :7, discard :9, http :80; cc {:?}, buffers {} B, loss {}%)",
        settings.cc, settings.big_buf, settings.loss_pct
    );

    let mut scratch = vec![0u8; SMALL_BUF];
    let mut gone = Vec::new();
    loop {
        let activity = iface.poll(Instant::now(), &mut device, &mut sockets);
        let mut listening: HashMap<u16, usize> = HashMap::new();
        for (&handle, conn) in conns.iter_mut() {
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            if socket.is_listening() {
                *listening.entry(conn.port).or_default() += 1;
                continue;
            }
            if socket.state() == State::Closed {
                gone.push(handle);
                continue;
            }
            serve(socket, conn, &mut scratch);
        }
        for handle in gone.drain(..) {
            conns.remove(&handle);
            sockets.remove(handle);
        }
        for port in [ECHO, DISCARD, HTTP] {
            for _ in listening.get(&port).copied().unwrap_or(0)..settings.listeners {
                add_listener(&mut sockets, &mut conns, port, settings)?;
            }
        }
        // Sleep until a packet or a timer only when the last poll did nothing and the
        // applications queued nothing: what a poll received is always served first.
        let delay = iface.poll_delay(Instant::now(), &sockets);
        if activity != PollResult::None || delay.is_some_and(|d| d.total_micros() == 0) {
            continue;
        }
        phy::wait(fd, delay).context("waiting on the TUN")?;
    }
}

fn add_listener(
    sockets: &mut SocketSet<'static>,
    conns: &mut HashMap<SocketHandle, Conn>,
    port: u16,
    s: &Settings,
) -> Result<()> {
    let (rx, tx) = match port {
        HTTP => (SMALL_BUF, s.big_buf),
        DISCARD => (s.big_buf, SMALL_BUF),
        _ => (SMALL_BUF, SMALL_BUF),
    };
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0u8; rx]), tcp::SocketBuffer::new(vec![0u8; tx]));
    socket.set_nagle_enabled(false);
    socket.set_congestion_control(s.cc);
    socket.listen(port).map_err(|e| anyhow::anyhow!("listen on {port}: {e:?}"))?;
    let app = match port {
        ECHO => App::Echo,
        DISCARD => App::Discard,
        _ => App::HttpHead(Vec::new()),
    };
    conns.insert(sockets.add(socket), Conn { port, app, closed: false });
    Ok(())
}

fn serve(socket: &mut tcp::Socket, conn: &mut Conn, scratch: &mut [u8]) {
    // Nothing to do before the handshake completes (may_recv is false then too, which must not
    // read as the peer's FIN).
    if conn.closed || matches!(socket.state(), State::Listen | State::SynReceived | State::SynSent) {
        return;
    }
    match &mut conn.app {
        App::Echo => {
            while socket.can_recv() && socket.can_send() {
                let room = (socket.send_capacity() - socket.send_queue()).min(scratch.len());
                let n = socket.recv_slice(&mut scratch[..room]).unwrap_or(0);
                if n == 0 {
                    break;
                }
                let _ = socket.send_slice(&scratch[..n]);
            }
            if !socket.may_recv() && socket.send_queue() == 0 {
                socket.close();
                conn.closed = true;
            }
        }
        App::Discard => {
            while socket.can_recv() {
                if socket.recv(|b| (b.len(), b.len())).unwrap_or(0) == 0 {
                    break;
                }
            }
            if !socket.may_recv() {
                socket.close();
                conn.closed = true;
            }
        }
        App::HttpHead(head) => {
            while socket.can_recv() && head.len() < MAX_HEAD {
                let room = MAX_HEAD - head.len();
                let _ = socket.recv(|b| {
                    let n = b.len().min(room);
                    head.extend_from_slice(&b[..n]);
                    (n, ())
                });
            }
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                if head.len() >= MAX_HEAD || !socket.may_recv() {
                    socket.close();
                    conn.closed = true;
                }
                return;
            };
            let line = String::from_utf8_lossy(&head[..end]).lines().next().unwrap_or_default().to_string();
            let len =
                line.strip_prefix("GET /bytes/").and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<u64>().ok());
            let (status, len) = match len {
                Some(n) => ("200 OK", n),
                None => ("404 Not Found", 0),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            )
            .into_bytes();
            conn.app = App::HttpSend { head, sent: 0, len };
            serve(socket, conn, scratch);
        }
        App::HttpSend { head, sent, len } => {
            if !head.is_empty() {
                let n = socket.send_slice(head).unwrap_or(0);
                head.drain(..n);
                if !head.is_empty() {
                    return;
                }
            }
            while *sent < *len && socket.can_send() {
                let want = *len - *sent;
                let off = *sent;
                let n = socket
                    .send(|b| {
                        let n = (b.len() as u64).min(want) as usize;
                        fill_pattern(off, &mut b[..n]);
                        (n, n)
                    })
                    .unwrap_or(0);
                if n == 0 {
                    break;
                }
                *sent += n as u64;
            }
            if *sent == *len {
                socket.close();
                conn.closed = true;
            }
        }
    }
}
