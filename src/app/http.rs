//! The HTTP/1.1 server behind port 80: an index page and `/bytes/N`, a body of any length
//! whose every byte is predictable, so a client can check a whole transfer end to end.
//!
//! It is generic over any `Read + Write` byte stream so it is tested in memory, without the
//! stack, and runs unchanged over synack's own `TcpStream` or std's (for comparison).
//!
//! The contract a client sees:
//! - HTTP/1.1 keeps the connection open unless the request says `Connection: close`;
//!   HTTP/1.0 closes unless it says `Connection: keep-alive`. Pipelined requests are answered
//!   in order.
//! - A request body with `Content-Length` is read and discarded (after a `100 Continue` if the
//!   client asked for one). Any `Transfer-Encoding` → 501 and close: without decoding chunked
//!   framing we cannot tell where the next request starts.
//! - Header section over [`HttpConfig::max_header_bytes`], or more than 64 header lines → 431
//!   and close. A request httparse cannot parse (or a bad `Content-Length`) → 400 and close.
//! - `Host` is not required, so `printf 'GET / HTTP/1.1\r\n\r\n' | nc` works for a learner.
//! - No `Date` header, so responses are byte-for-byte deterministic.

mod pattern;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use self::pattern::PatternBlock;
pub use self::pattern::{fill_pattern, pattern_byte, PATTERN_PERIOD};
pub use self::request::{discard_body, parse_head, read_request, read_request_by, ReadOutcome, Request, Version};
pub use self::response::{route, write_response, Body, Response, Status};

/// The default [`HttpConfig::head_timeout`]: nginx's `client_header_timeout` is 60 s and
/// Apache's `RequestReadTimeout` 20–40 s; 10 s is ample for any client not trickling bytes.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A keep-alive connection with nothing happening this long is closed, by the server on the
/// event loop and by the blocking one (as its read timeout) alike.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Produces extra HTML for the index page on each request, so the caller can show live
/// information (connection counts, stack counters) without this module knowing about it.
pub type IndexExtra = Arc<dyn Fn() -> String + Send + Sync>;

/// Limits and hooks for one server; cheap to clone into each connection's thread.
#[derive(Clone)]
pub struct HttpConfig {
    /// Largest N accepted by `/bytes/N`.
    pub max_bytes: u64,
    /// Largest request line + header section; bounds memory per connection.
    pub max_header_bytes: usize,
    /// How long a client may take to send a whole request head: from its connection for
    /// the first request, from the first byte for a later one. Past it: 408 and close, so
    /// a slowloris client cannot hold a connection by trickling a head.
    pub head_timeout: Duration,
    /// Size of each `write_all` when streaming a body: big enough to fill segments, small
    /// enough that a huge `/bytes/N` never needs a huge buffer.
    pub write_chunk: usize,
    /// Trusted HTML inserted at the end of the index page's body. Served on the event loop
    /// (`loop_http`), it runs with the stack locked: it must not call the `Stack` (that would
    /// deadlock) and should be quick.
    pub index_extra: Option<IndexExtra>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_bytes: 1_000_000_000,
            max_header_bytes: 16 * 1024,
            head_timeout: HEAD_TIMEOUT,
            write_chunk: 64 * 1024,
            index_extra: None,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("max_bytes", &self.max_bytes)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("head_timeout", &self.head_timeout)
            .field("write_chunk", &self.write_chunk)
            .field("index_extra", &self.index_extra.as_ref().map(|_| "Fn"))
            .finish()
    }
}

/// What one connection did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeStats {
    /// Responses written (error responses included) plus requests a hook took over.
    pub requests: u64,
    /// Response body bytes written (heads not counted).
    pub body_bytes: u64,
}

/// Tell the client in `resp` whether the connection stays open after it: `close` when it
/// does not; `keep-alive` when it does and the request was HTTP/1.0, whose default is to close.
pub fn say_keep_alive(resp: &mut Response, version: Version, keep_alive: bool) {
    if !keep_alive {
        resp.headers.push(("Connection", "close".into()));
    } else if version == Version::Http10 {
        resp.headers.push(("Connection", "keep-alive".into()));
    }
}

/// What a [`serve_with`] hook did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// Not the hook's request: the built-in routes answer it.
    Declined,
    /// The hook chose the answer (e.g. `426 Upgrade Required` for a plain GET of a
    /// WebSocket path); `serve_with` writes it like a routed one, body skipping and
    /// keep-alive included.
    Respond(Response),
    /// The hook answered and now owns the rest of the connection (e.g. a WebSocket
    /// upgrade); `serve_with` returns without writing anything more.
    TookOver,
}

/// Serves one connection until the client closes it, asks to close, or an I/O error.
/// The caller closes the stream afterwards.
pub fn serve<S: Read + Write>(stream: &mut S, cfg: &HttpConfig) -> io::Result<ServeStats> {
    serve_with(stream, cfg, |_, _| Ok(Hook::Declined))
}

/// Like [`serve`], but offers each parsed request to `hook` first. This is the extension
/// point for `Upgrade` (WebSocket): the hook gets the request, including the bytes already
/// read past its header (`req.leftover`), and the stream, before the body is discarded.
pub fn serve_with<S, H>(stream: &mut S, cfg: &HttpConfig, hook: H) -> io::Result<ServeStats>
where
    S: Read + Write,
    H: FnMut(&mut Request, &mut S) -> io::Result<Hook>,
{
    serve_with_deadline(stream, cfg, hook, |_, _| Ok(()))
}

/// Like [`serve_with`], with [`HttpConfig::head_timeout`] kept: `deadline` bounds the
/// stream's reads until an instant (`None`: lifts the bound), e.g. by a read timeout.
pub fn serve_with_deadline<S, H, D>(
    stream: &mut S,
    cfg: &HttpConfig,
    mut hook: H,
    mut deadline: D,
) -> io::Result<ServeStats>
where
    S: Read + Write,
    H: FnMut(&mut Request, &mut S) -> io::Result<Hook>,
    D: FnMut(&mut S, Option<Instant>) -> io::Result<()>,
{
    let mut stats = ServeStats::default();
    let mut buf = Vec::new();
    loop {
        let mut req = match read_request_by(stream, buf, cfg, &mut deadline)? {
            ReadOutcome::Request(req) => req,
            ReadOutcome::Closed => return Ok(stats),
            ReadOutcome::Rejected(status) => {
                tracing::debug!(status = status.0, "rejected request; closing");
                let mut resp = Response::error(status);
                resp.headers.push(("Connection", "close".into()));
                stats.body_bytes += write_response(stream, &resp, false, cfg)?;
                stats.requests += 1;
                return Ok(stats);
            }
        };

        let hooked = match hook(&mut req, stream)? {
            Hook::TookOver => {
                stats.requests += 1;
                return Ok(stats);
            }
            Hook::Respond(resp) => Some(resp),
            Hook::Declined => None,
        };

        if req.expects_continue() && req.body_len > req.leftover.len() as u64 {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            stream.flush()?;
        }
        if !discard_body(stream, &mut req)? {
            return Ok(stats); // EOF mid-body: nobody is left to answer
        }

        let keep_alive = req.keep_alive();
        let mut resp = hooked.unwrap_or_else(|| route(&req, cfg));
        say_keep_alive(&mut resp, req.version, keep_alive);
        let head_only = req.method == "HEAD";
        let sent = write_response(stream, &resp, head_only, cfg)?;
        tracing::debug!(
            method = %req.method,
            path = %req.path,
            status = resp.status.0,
            body_bytes = sent,
            "answered"
        );
        stats.body_bytes += sent;
        stats.requests += 1;
        if !keep_alive {
            return Ok(stats);
        }
        buf = std::mem::take(&mut req.leftover);
    }
}
