//! The services `synack serve` runs: echo (RFC 862) on 7, discard (RFC 863) on 9 and HTTP
//! on 80, all on the event loop itself (they never block); behind HTTP, the WebSocket
//! endpoints `/ws`, `/chat` and `/stats` and Socket.IO (`/socket.io/`) block, so their
//! connections are handed to threads, one per connection at a time, from a pool that reuses
//! them (`pool.rs`).

use std::io;
use std::time::Duration;

use super::engineio::{self, EngineIo};
use super::http::{self, Hook, HttpConfig};
use super::loop_http::LoopHttp;
use super::pool::{Pool, PoolConfig};
use super::socketio::{self, SocketIo};
use super::stats;
use super::ws::Endpoints;
use crate::live::LiveHub;
use crate::runtime::{HandOff, LoopConn, LoopService, Stack, TcpStream};

pub const ECHO_PORT: u16 = 7;
pub const DISCARD_PORT: u16 = 9;
pub const HTTP_PORT: u16 = 80;

const IO_BUF: usize = 64 * 1024;

/// Echo (RFC 862) on the event loop: every byte back until the peer closes, then our FIN.
/// Reads only what the send buffer can take, so nothing waits in between; a full send
/// buffer waits for the writable edge.
pub struct LoopEcho {
    buf: Vec<u8>,
}

impl Default for LoopEcho {
    fn default() -> Self {
        LoopEcho { buf: vec![0u8; IO_BUF] }
    }
}

impl LoopService for LoopEcho {
    fn ready(&mut self, conn: &mut LoopConn<'_>) {
        loop {
            let room = conn.send_room().min(self.buf.len());
            if room == 0 {
                // A reset or timeout shows only as an error from a call: ask with an empty one.
                if conn.send(&[]).is_err() {
                    conn.release();
                }
                return;
            }
            match conn.recv(&mut self.buf[..room]) {
                Ok(0) => return finish(conn),
                // All of it fits: `room` is what `send` takes.
                Ok(n) => {
                    if conn.send(&self.buf[..n]).is_err() {
                        return conn.release();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return conn.release(),
            }
        }
    }
}

/// Discard (RFC 863) on the event loop: what arrives is dropped where it lies, never copied.
#[derive(Default)]
pub struct LoopDiscard;

impl LoopService for LoopDiscard {
    fn ready(&mut self, conn: &mut LoopConn<'_>) {
        loop {
            match conn.skip(usize::MAX) {
                Ok(0) => return finish(conn),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return conn.release(),
            }
        }
    }
}

/// The peer closed: our FIN after what is queued, and the connection is the stack's to close.
fn finish(conn: &mut LoopConn<'_>) {
    let _ = conn.shutdown_write();
    conn.release();
}

/// HTTP with WebSocket upgrades, Socket.IO and Engine.IO: a request for one of the WebSocket
/// paths is handed to `ws` (which then owns the connection), `/socket.io/` requests go to
/// `io`, `/engine.io/` ones to `eio`, and everything else is plain HTTP. Each request head has [`HttpConfig::head_timeout`] to
/// arrive whole, as on the event loop.
pub fn serve_http_ws_sio(
    mut stream: TcpStream,
    cfg: &HttpConfig,
    ws: &Endpoints,
    io: &SocketIo,
    eio: &EngineIo,
) -> io::Result<()> {
    stream.set_read_timeout(Some(http::IDLE_TIMEOUT))?;
    let hook = |req: &mut http::Request, s: &mut TcpStream| match io.hook(req, s)? {
        Hook::Declined => match eio.hook(req, s)? {
            Hook::Declined => ws.hook(req, s),
            other => Ok(other),
        },
        other => Ok(other),
    };
    http::serve_with_deadline(&mut stream, cfg, hook, |s, at| s.set_read_deadline(at))?;
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

/// Serve connections a loop service hands over (see [`HandOff`]) with `handler` on a pool
/// of threads, reused from one connection to the next.
pub fn spawn_hand_off_service<F>(
    stack: &Stack,
    hand_off: HandOff,
    name: &'static str,
    handler: F,
) -> io::Result<Service>
where
    F: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
{
    let stack = stack.clone();
    let next = move |idle| match stack.take_handed(&hand_off, idle) {
        Ok(s) => Ok(Some(s)),
        // A connection gone before a thread took it is skipped, not the end of the pool.
        Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::NotConnected) => Ok(None),
        Err(e) => Err(e),
    };
    start_pool(name, next, handler)
}

/// A pool of threads serving with `handler` the streams `next` yields (`None`: none within
/// the idle time it was given).
fn start_pool<N, F>(name: &'static str, next: N, handler: F) -> io::Result<Service>
where
    N: Fn(Duration) -> io::Result<Option<TcpStream>> + Send + Sync + 'static,
    F: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
{
    let cfg = PoolConfig { name: name.into(), max_threads: MAX_SERVICE_THREADS, idle_timeout: SERVICE_IDLE };
    let pool = Pool::start(cfg, next, move |stream: TcpStream| {
        let peer = stream.peer_addr().ok();
        if let Err(e) = handler(stream) {
            tracing::debug!("{name} connection from {peer:?} ended: {e}");
        }
    })?;
    Ok(Service { pool })
}

/// The paths whose requests the blocking handlers own: the WebSocket endpoints, Socket.IO
/// and Engine.IO (their polling transport and their upgrades).
pub fn needs_thread(path: &str) -> bool {
    matches!(path, "/ws" | "/chat" | "/stats" | "/events" | "/socket.io" | "/engine.io")
        || path.starts_with("/socket.io/")
        || path.starts_with("/engine.io/")
}

/// Start echo, discard and HTTP on the event loop; HTTP hands the WebSocket endpoints
/// (`/stats` reads `stack`), Socket.IO (the demo) and the raw Engine.IO echo to service
/// threads.
pub fn spawn_all(stack: &Stack, http_cfg: HttpConfig) -> io::Result<Vec<Service>> {
    let config = socketio::Config::from_env();
    spawn_with(stack, http_cfg, socketio::demo(config), engineio::echo(config))
}

/// [`spawn_all`] with another Socket.IO server and Engine.IO server (the reference test
/// servers, in `examples/sio_reference_server.rs`).
pub fn spawn_with(stack: &Stack, http_cfg: HttpConfig, io: SocketIo, eio: EngineIo) -> io::Result<Vec<Service>> {
    // Before any connection: each decides at birth whether to keep its events.
    let hub = LiveHub::new();
    stack.attach_live(hub.clone());
    stack.serve_on_loop(ECHO_PORT, LoopEcho::default())?;
    stack.serve_on_loop(DISCARD_PORT, LoopDiscard)?;
    let hand_off = stack.serve_on_loop_with_hand_off(HTTP_PORT, LoopHttp::new(http_cfg.clone(), needs_thread))?;
    let mut ws = Endpoints::new(Some(stats::source(stack.clone())));
    ws.live = Some(hub);
    let serve = move |s| serve_http_ws_sio(s, &http_cfg, &ws, &io, &eio);
    Ok(vec![spawn_hand_off_service(stack, hand_off, "http", serve)?])
}
