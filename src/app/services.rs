//! The services `synack serve` runs: echo (RFC 862) on 7, discard (RFC 863) on 9, HTTP on 80
//! with the WebSocket endpoints `/ws`, `/chat` and `/stats` and Socket.IO (`/socket.io/`) behind it.
//! One thread per connection at a time, from a pool that reuses them (`pool.rs`).

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use super::http::{self, Hook, HttpConfig};
use super::pool::{Pool, PoolConfig};
use super::socketio::{self, SocketIo};
use super::stats;
use super::ws::Endpoints;
use crate::runtime::{Stack, TcpListener, TcpStream};

pub const ECHO_PORT: u16 = 7;
pub const DISCARD_PORT: u16 = 9;
pub const HTTP_PORT: u16 = 80;

/// An idle HTTP keep-alive connection is closed after this long.
const HTTP_IDLE: Duration = Duration::from_secs(120);

const IO_BUF: usize = 64 * 1024;

thread_local! {
    /// Echo's and discard's read buffer, kept by the (pooled, reused) service thread: a fresh
    /// one per connection is 64 KiB for calloc to zero each time (it can skip that only for
    /// memory never used before).
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with this thread's buffer (a fresh one if it is in use further up the stack).
fn with_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < IO_BUF {
                // calloc: fresh pages stay untouched (not resident) until a read fills them.
                *buf = vec![0u8; IO_BUF];
            }
            f(&mut buf)
        }
        Err(_) => f(&mut vec![0u8; IO_BUF]),
    })
}

/// Every byte back until the peer closes; then close our side.
pub fn echo(stream: TcpStream) -> io::Result<u64> {
    with_buf(|buf| {
        let mut total = 0u64;
        loop {
            let n = (&stream).read(buf)?;
            if n == 0 {
                stream.shutdown(Shutdown::Write)?;
                return Ok(total);
            }
            (&stream).write_all(&buf[..n])?;
            total += n as u64;
        }
    })
}

/// Read and drop everything; close when the peer closes.
pub fn discard(stream: TcpStream) -> io::Result<u64> {
    with_buf(|buf| {
        let mut total = 0u64;
        loop {
            match (&stream).read(buf)? {
                0 => {
                    stream.shutdown(Shutdown::Write)?;
                    return Ok(total);
                }
                n => total += n as u64,
            }
        }
    })
}

pub fn serve_http(mut stream: TcpStream, cfg: &HttpConfig) -> io::Result<()> {
    stream.set_read_timeout(Some(HTTP_IDLE))?;
    http::serve(&mut stream, cfg)?;
    Ok(())
}

/// HTTP with WebSocket upgrades: a request for one of the WebSocket paths is handed to
/// `ws` (which then owns the connection); everything else is plain HTTP.
pub fn serve_http_ws(mut stream: TcpStream, cfg: &HttpConfig, ws: &Endpoints) -> io::Result<()> {
    stream.set_read_timeout(Some(HTTP_IDLE))?;
    http::serve_with(&mut stream, cfg, |req, s| ws.hook(req, s))?;
    Ok(())
}

/// [`serve_http_ws`] plus Socket.IO: `/socket.io/` requests go to `io` first.
pub fn serve_http_ws_sio(mut stream: TcpStream, cfg: &HttpConfig, ws: &Endpoints, io: &SocketIo) -> io::Result<()> {
    stream.set_read_timeout(Some(HTTP_IDLE))?;
    http::serve_with(&mut stream, cfg, |req, s| match io.hook(req, s)? {
        Hook::Declined => ws.hook(req, s),
        other => Ok(other),
    })?;
    Ok(())
}

/// Threads per service at most: the stack's default connection limit, so every connection
/// it admits can be served (the API blocks a thread per connection).
pub const MAX_SERVICE_THREADS: usize = 16384;
/// A service thread idle this long exits (the last idle one stays, accepting).
const SERVICE_IDLE: Duration = Duration::from_secs(10);

/// A running service: its listener and the pool of threads that serve it.
pub struct Service {
    pool: Pool<TcpStream>,
}

impl Service {
    /// Threads alive now (serving, or waiting to).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }
}

/// Accept on `port` forever, each connection handled by `handler` on a thread of a pool
/// (see [`Pool`]), reused from one connection to the next.
pub fn spawn_service<F>(stack: &Stack, port: u16, name: &'static str, handler: F) -> io::Result<Service>
where
    F: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
{
    let listener = TcpListener::bind(stack, port)?;
    let cfg = PoolConfig { name: name.into(), max_threads: MAX_SERVICE_THREADS, idle_timeout: SERVICE_IDLE };
    let pool = Pool::start(
        cfg,
        move |idle| match listener.accept_timeout(idle) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(e),
        },
        move |stream: TcpStream| {
            let peer = stream.peer_addr().ok();
            if let Err(e) = handler(stream) {
                tracing::debug!("{name} connection from {peer:?} ended: {e}");
            }
        },
    )?;
    Ok(Service { pool })
}

/// Start echo, discard, and HTTP with the WebSocket endpoints (`/stats` reads `stack`).
pub fn spawn_all(stack: &Stack, http_cfg: HttpConfig) -> io::Result<Vec<Service>> {
    let ws = Endpoints::new(Some(stats::source(stack.clone())));
    let io = socketio::demo(socketio::Config::from_env());
    Ok(vec![
        spawn_service(stack, ECHO_PORT, "echo", |s| echo(s).map(|_| ()))?,
        spawn_service(stack, DISCARD_PORT, "discard", |s| discard(s).map(|_| ()))?,
        spawn_service(stack, HTTP_PORT, "http", move |s| serve_http_ws_sio(s, &http_cfg, &ws, &io))?,
    ])
}
