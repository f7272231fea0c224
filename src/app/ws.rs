//! WebSocket (RFC 6455) on synack's TCP: the endpoints behind port 80's HTTP server.
//!
//! - `/ws`: echo. Every text or binary message (up to 16 MiB, fragmented or not) comes back
//!   as it was; pings are answered; a close is answered with the peer's own code.
//! - `/chat`: broadcast (see `app::chat`).
//! - `/stats`: the stack's connections and counters as JSON, at once and then every second
//!   (see `app::stats`).
//! - `/events`: the live ladder, one connection's events as they happen (see
//!   `app::live`).
//!
//! The HTTP server reads and routes the request, then offers it to [`Endpoints::hook`],
//! which checks the handshake ([`handshake`]), writes the `101` and runs the connection on
//! the same stream with tungstenite doing the framing ([`conn`]).
//!
//! With the `synack::ws` tracing target at `info`, the upgrade (request line, key, accept
//! value) and every frame header both ways are logged, so a learner can follow the
//! protocol switch and the frames that follow.

pub mod conn;
pub mod frame_trace;
pub mod handshake;
#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tungstenite::Message;

pub use self::conn::{open, Conn, Limits, WsReceiver, WsSender};
use crate::app::chat::{self, Hub};
use crate::app::http::{Hook, Request, Response, Status, Version};
use crate::live::LiveHub;

/// The tracing target of every WebSocket log line.
pub const TRACE_TARGET: &str = "synack::ws";

/// The paths served here; any other path is left to the HTTP routes.
pub const PATHS: [&str; 4] = ["/ws", "/chat", "/stats", "/events"];

/// Makes one `/stats` message from the viewer's own address (so it can be marked) and the
/// message's sequence number on its connection.
pub type StatsSource = Arc<dyn Fn(Option<SocketAddr>, u64) -> String + Send + Sync>;

/// The WebSocket endpoints of one server; cheap to clone into each connection's thread.
#[derive(Clone)]
pub struct Endpoints {
    pub hub: Arc<Hub>,
    /// `None`: no `/stats` (404 as any unknown path).
    pub stats: Option<StatsSource>,
    /// `None`: no `/events` (the live ladder).
    pub live: Option<Arc<LiveHub>>,
    pub echo_limits: Limits,
    pub chat_limits: Limits,
    pub stats_limits: Limits,
}

impl Endpoints {
    pub fn new(stats: Option<StatsSource>) -> Self {
        let small = Limits { max_message: chat::MAX_MESSAGE, read_buffer: 8 * 1024, ..Limits::default() };
        Endpoints {
            hub: Arc::new(Hub::new(chat::QUEUE)),
            stats,
            live: None,
            echo_limits: Limits::default(),
            chat_limits: small,
            stats_limits: Limits { max_message: 4096, ..small },
        }
    }

    /// The hook for [`crate::app::http::serve_with`]: takes over the connection for a good
    /// handshake on one of [`PATHS`], answers a bad one (`400` with the reason, `426` for a
    /// plain request), and declines every other path.
    pub fn hook<S: Conn>(&self, req: &mut Request, stream: &mut S) -> io::Result<Hook> {
        let path = req.route_path().to_owned();
        let endpoint = match path.as_str() {
            "/ws" => Endpoint::Echo,
            "/chat" => Endpoint::Chat,
            "/stats" if self.stats.is_some() => Endpoint::Stats,
            "/events" if self.live.is_some() => Endpoint::Events,
            _ => return Ok(Hook::Declined),
        };
        if !handshake::is_attempt(req) {
            if req.method == "GET" || req.method == "HEAD" {
                return Ok(Hook::Respond(handshake::upgrade_required(&path)));
            }
            let mut resp = Response::text(Status::METHOD_NOT_ALLOWED, "405 Method Not Allowed: use GET\n");
            resp.headers.push(("Allow", "GET".into()));
            return Ok(Hook::Respond(resp));
        }
        let peer = stream.peer_addr().map_or_else(|| "peer".to_string(), |a| a.to_string());
        let accepted = match handshake::check(req) {
            Ok(a) => a,
            Err(resp) => {
                tracing::info!(target: TRACE_TARGET, "ws {peer} {} refused: {}", request_line(req), reason_of(&resp));
                return Ok(Hook::Respond(resp));
            }
        };
        let trace = tracing::enabled!(target: TRACE_TARGET, tracing::Level::INFO);
        tracing::info!(target: TRACE_TARGET, "ws {peer} upgrade: {}", request_line(req));
        tracing::info!(target: TRACE_TARGET, "ws {peer} Sec-WebSocket-Key: {}", accepted.key);
        tracing::info!(
            target: TRACE_TARGET,
            "ws {peer} Sec-WebSocket-Accept: {} = base64(SHA-1(key + 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)) → 101",
            accepted.accept
        );

        let leftover = std::mem::take(&mut req.leftover);
        let mut stream = stream.try_clone()?;
        let result = match endpoint {
            Endpoint::Echo => handshake::write_switching(&mut stream, &accepted)
                .and_then(|()| echo(stream, leftover, self.echo_limits, trace)),
            Endpoint::Chat => chat::run(&self.hub, stream, &accepted, leftover, self.chat_limits, trace),
            Endpoint::Stats => match &self.stats {
                Some(source) => {
                    crate::app::stats::run(source.clone(), stream, &accepted, leftover, self.stats_limits, trace)
                }
                None => Ok(()),
            },
            Endpoint::Events => match &self.live {
                Some(hub) => crate::app::live::run(hub.clone(), stream, &accepted, leftover, self.stats_limits, trace),
                None => Ok(()),
            },
        };
        match result {
            Ok(()) => tracing::info!(target: TRACE_TARGET, "ws {peer} {path} closed"),
            Err(e) => tracing::info!(target: TRACE_TARGET, "ws {peer} {path} ended: {e}"),
        }
        Ok(Hook::TookOver)
    }
}

#[derive(Clone, Copy)]
enum Endpoint {
    Echo,
    Chat,
    Stats,
    Events,
}

/// `/ws`: every data message straight back. Runs on the connection's thread; a client that
/// sends without reading gets TCP backpressure, since we stop reading while we write.
pub fn echo<S: Conn>(stream: S, leftover: Vec<u8>, limits: Limits, trace: bool) -> io::Result<()> {
    let (tx, mut rx) = open(stream, leftover, limits, trace)?;
    let result = loop {
        match rx.recv() {
            Ok(Some(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                if let Err(e) = tx.send(msg) {
                    break Err(e);
                }
            }
            // Pings are answered inside; a close was answered with the peer's code.
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    rx.finish();
    result
}

fn request_line(req: &Request) -> String {
    let v = match req.version {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    };
    format!("{} {} {v}", req.method, req.path)
}

fn reason_of(resp: &Response) -> String {
    match &resp.body {
        crate::app::http::Body::Static(b) => String::from_utf8_lossy(b).trim_end().to_string(),
        crate::app::http::Body::Pattern(_) => String::new(),
    }
}
