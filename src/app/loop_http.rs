//! The HTTP server of [`http`](super::http) on the event loop: the same parser, routes and
//! responses, served without a thread. A request for a path a blocking handler owns
//! (WebSocket, Socket.IO) is only looked at, not read, and the connection is handed over to
//! a thread, which reads it from the start. So are the rare requests that need a reply before
//! their body (`Expect: 100-continue`).
//!
//! Why: a connection served by a thread costs a wake-up to accept, one per request and one to
//! close; on the loop, a `GET` and its answer take none.

use std::io;
use std::time::{Duration, Instant};

use super::http::{self, Body, HttpConfig, PatternBlock, ReadOutcome, Response, Status};
use super::live::lab::Lab;
use crate::runtime::{LoopConn, LoopService};
use crate::stack::ConnMap;

/// Bytes of a `/bytes/N` body handed to the stack per `send`.
const CHUNK: usize = 64 * 1024;
/// Requests answered in one call before the loop gets on with other work (pipelining).
const REQUESTS_PER_CALL: usize = 16;
/// As `read_request`: below this a partial head is parsed at every arrival; above it, only
/// when a line has ended (a client sending a byte at a time cannot make parsing quadratic).
const EAGER_PARSE_LIMIT: usize = 1024;

/// Where one connection is.
enum Phase {
    /// Waiting for a complete request head; `scanned` bytes of it were looked at already.
    /// `since`: when the head's time began (the connection, for the first request; its
    /// first byte, for a later one); `None` while idle between requests.
    Head { scanned: usize, since: Option<Instant> },
    /// Dropping `left` more bytes of a request body, then answering.
    Body { left: u64, answer: Answer },
    /// Sending an answer.
    Answer(Answer),
}

/// A response being sent: the head (and a static body) from `out[sent..]`, then `pattern`
/// more bytes of the `/bytes/N` pattern from offset `offset`.
struct Answer {
    out: Vec<u8>,
    sent: usize,
    pattern: u64,
    offset: u64,
    close: bool,
}

pub(crate) struct LoopHttp {
    cfg: HttpConfig,
    idle: Duration,
    /// Paths whose requests go to a thread.
    thread_path: fn(&str) -> bool,
    conns: ConnMap<Phase>,
    peek: Vec<u8>,
    block: PatternBlock,
}

impl LoopHttp {
    pub(crate) fn new(cfg: HttpConfig, thread_path: fn(&str) -> bool) -> LoopHttp {
        let peek = vec![0u8; cfg.max_header_bytes + 1];
        LoopHttp {
            cfg,
            idle: http::IDLE_TIMEOUT,
            thread_path,
            conns: ConnMap::default(),
            peek,
            block: PatternBlock::new(CHUNK),
        }
    }

    /// Close connections idle this long instead of [`http::IDLE_TIMEOUT`] (tests only).
    #[cfg(test)]
    pub(crate) fn with_idle(mut self, idle: Duration) -> LoopHttp {
        self.idle = idle;
        self
    }

    /// Close connections that take longer than this to send a request head, instead of
    /// [`HttpConfig::head_timeout`] (tests only).
    #[cfg(test)]
    pub(crate) fn with_head_timeout(mut self, timeout: Duration) -> LoopHttp {
        self.cfg.head_timeout = timeout;
        self
    }

    /// Look at the next request head; returns the next phase, or `Err(scanned)` to wait.
    fn read_head(&mut self, conn: &mut LoopConn<'_>, scanned: usize) -> io::Result<Result<Phase, usize>> {
        let n = match conn.peek(&mut self.peek) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Err(0)),
            Err(e) => return Err(e),
        };
        let seen = &self.peek[..n];
        let fresh = &seen[scanned.min(n)..];
        let parse = n <= EAGER_PARSE_LIMIT || fresh.contains(&b'\n') || n > self.cfg.max_header_bytes;
        let parsed = if parse { http::parse_head(seen, &self.cfg) } else { None };
        // The whole receive buffer holds no complete head: no more can arrive to finish it.
        let full = n >= conn.recv_capacity();
        let outcome = match parsed {
            Some(o) => o,
            None if n > self.cfg.max_header_bytes || full => {
                ReadOutcome::Rejected(Status::REQUEST_HEADER_FIELDS_TOO_LARGE)
            }
            // Part of a head, and the client has closed: nothing to answer.
            None if conn.peer_closed() => return Err(io::ErrorKind::UnexpectedEof.into()),
            None => return Ok(Err(n)),
        };
        let req = match outcome {
            ReadOutcome::Request(req) => req,
            ReadOutcome::Closed => return Err(io::ErrorKind::UnexpectedEof.into()),
            ReadOutcome::Rejected(status) => {
                tracing::debug!(status = status.0, "rejected request; closing");
                let mut resp = Response::error(status);
                resp.headers.push(("Connection", "close".into()));
                // Nothing more is read: the connection closes after the answer.
                conn.skip(n)?;
                return Ok(Ok(Phase::Answer(self.answer(&resp, false, true)?)));
            }
        };
        if (self.thread_path)(req.route_path()) || (req.expects_continue() && req.body_len > 0) {
            conn.hand_over();
            return Ok(Err(0));
        }
        conn.skip(n - req.leftover.len())?;
        let mut keep_alive = req.keep_alive();
        let mut resp = http::route(&req, &self.cfg);
        if let Some(lab) = Lab::of(&req).filter(|_| resp.status == Status::OK) {
            if let Some(share) = lab.drop {
                conn.set_drop_fault(share, lab.seed);
            }
            keep_alive &= !lab.close;
            if let Some(peer) = conn.remote() {
                resp.headers.push(("X-Synack-Peer", peer.to_string()));
            }
        }
        http::say_keep_alive(&mut resp, req.version, keep_alive);
        tracing::debug!(method = %req.method, path = %req.path, status = resp.status.0, "answered");
        let answer = self.answer(&resp, req.method == "HEAD", !keep_alive)?;
        Ok(Ok(Phase::Body { left: req.body_len, answer }))
    }

    fn answer(&self, resp: &Response, head_only: bool, close: bool) -> io::Result<Answer> {
        let mut out = Vec::with_capacity(256);
        // The head alone; the body follows below (a pattern body is streamed).
        http::write_response(&mut out, resp, true, &self.cfg)?;
        let mut pattern = 0;
        if !head_only {
            match &resp.body {
                Body::Static(bytes) => out.extend_from_slice(bytes),
                Body::Pattern(len) => pattern = *len,
            }
        }
        Ok(Answer { out, sent: 0, pattern, offset: 0, close })
    }

    /// Send what fits; true when all of it is queued.
    fn send(&self, conn: &mut LoopConn<'_>, a: &mut Answer) -> io::Result<bool> {
        while a.sent < a.out.len() {
            match conn.send(&a.out[a.sent..]) {
                Ok(n) => a.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        while a.pattern > 0 {
            let n = usize::try_from(a.pattern).map_or(CHUNK, |left| left.min(CHUNK));
            match conn.send(self.block.window(a.offset, n)) {
                Ok(sent) => {
                    a.offset += sent as u64;
                    a.pattern -= sent as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Move the connection on as far as it goes now; `Ok(None)` when it is finished.
    fn step(&mut self, conn: &mut LoopConn<'_>, mut phase: Phase) -> io::Result<Option<Phase>> {
        let mut answered = 0;
        loop {
            phase = match phase {
                Phase::Head { since, .. } if answered == REQUESTS_PER_CALL => {
                    // More may be pipelined: the rest on the loop's next pass.
                    conn.again();
                    return Ok(Some(Phase::Head { scanned: 0, since }));
                }
                Phase::Head { scanned, since } => match self.read_head(conn, scanned)? {
                    Ok(next) => next,
                    Err(scanned) => {
                        let since = since.or_else(|| (scanned > 0).then(|| conn.now()));
                        return Ok(Some(Phase::Head { scanned, since }));
                    }
                },
                Phase::Body { left: 0, answer } => Phase::Answer(answer),
                Phase::Body { left, answer } => match conn.skip(usize::try_from(left).unwrap_or(usize::MAX)) {
                    // EOF mid-body: nobody is left to answer.
                    Ok(0) => return Ok(None),
                    Ok(n) => Phase::Body { left: left - n as u64, answer },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some(Phase::Body { left, answer })),
                    Err(e) => return Err(e),
                },
                Phase::Answer(mut a) => {
                    if !self.send(conn, &mut a)? {
                        return Ok(Some(Phase::Answer(a)));
                    }
                    // The response is whole: its last small segment need not wait for the
                    // ACK of an earlier one (the head, sent alone before a streamed body).
                    conn.push()?;
                    if a.close {
                        return Ok(None);
                    }
                    answered += 1;
                    Phase::Head { scanned: 0, since: None }
                }
            };
        }
    }
}

impl LoopService for LoopHttp {
    /// It peeks at a head until it is whole, so it must hear of each piece.
    fn hears_every_arrival(&self) -> bool {
        true
    }

    fn ready(&mut self, conn: &mut LoopConn<'_>) {
        let id = conn.id();
        // A new connection: the first head's time starts now.
        let phase = self.conns.remove(&id).unwrap_or(Phase::Head { scanned: 0, since: Some(conn.now()) });
        if conn.timed_out() {
            if let Phase::Head { since: Some(_), .. } = phase {
                tracing::debug!("request head not complete within {:?}; 408 and closing", self.cfg.head_timeout);
                let mut resp = Response::error(Status::REQUEST_TIMEOUT);
                resp.headers.push(("Connection", "close".into()));
                if let Ok(mut a) = self.answer(&resp, false, true) {
                    // What does not fit now is not worth waiting for.
                    let _ = self.send(conn, &mut a);
                }
            } else {
                tracing::debug!("http connection idle for {:?}; closing", self.idle);
            }
            return close(conn);
        }
        match self.step(conn, phase) {
            Ok(Some(next)) => {
                if !conn.is_handed_over() {
                    let at = match &next {
                        Phase::Head { since: Some(t), .. } => *t + self.cfg.head_timeout,
                        _ => conn.now() + self.idle,
                    };
                    conn.set_deadline(Some(at));
                    self.conns.insert(id, next);
                }
            }
            Ok(None) => close(conn),
            Err(e) => {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::debug!("http connection ended: {e}");
                }
                // Closed by the peer between requests (or failed): ours closes too.
                close(conn);
            }
        }
    }
}

/// Our FIN, and the connection is the stack's to finish. What the client sent and we will
/// not read (pipelined requests after a `Connection: close`) is dropped first: closing with
/// unread data would be a reset (RFC 9293 §3.6.1), which can cut the answer short.
fn close(conn: &mut LoopConn<'_>) {
    while matches!(conn.skip(usize::MAX), Ok(n) if n > 0) {}
    let _ = conn.shutdown_write();
    conn.release();
}
