//! The HTTP long-polling transport: the handshake GET, long-poll GETs, POSTed packets,
//! and the polling session's heartbeat.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::{eio_error, trace_line};
use super::packet::{encode_eio, EioType};
use super::*;
use crate::app::http::{Hook, Request, Response, Status};
use crate::app::ws::Conn;

impl SocketIo {
    /// `transport=polling`: the handshake GET, a long-poll GET, or a POST of packets.
    pub(super) fn polling<S: Conn>(&self, req: &mut Request, stream: &mut S, sid: Option<String>) -> io::Result<Hook> {
        let cfg = self.inner.config;
        let sid = match (req.method.as_str(), sid) {
            ("GET", None) => {
                let full = self.inner.sessions.lock().map_or(true, |m| m.len() >= cfg.max_polling_sessions);
                if full {
                    return Ok(Hook::Respond(eio_error(3, "Too many sessions")));
                }
                let label = stream.peer_addr().map_or_else(|| "peer".to_string(), |a| a.to_string());
                let conn = self.new_conn(label, &["websocket"]);
                conn.polling.store(true, Ordering::Release);
                if let Ok(mut m) = self.inner.sessions.lock() {
                    m.insert(conn.sid.clone(), conn.clone());
                }
                let io = self.clone();
                let hb = conn.clone();
                let spawned = std::thread::Builder::new()
                    .name("sio-poll-heartbeat".into())
                    .spawn(move || heartbeat(&io, &hb, cfg));
                if spawned.is_err() {
                    self.end(&conn, DisconnectReason::TransportClose);
                    return Ok(Hook::Respond(eio_error(3, "Too many sessions")));
                }
                conn.sid.clone()
            }
            (_, Some(sid)) => sid,
            (_, None) => return Ok(Hook::Respond(eio_error(2, "Bad handshake method"))),
        };
        let Some(conn) = self.session(&sid).filter(|c| c.polling.load(Ordering::Acquire)) else {
            return Ok(Hook::Respond(eio_error(1, "Session ID unknown")));
        };
        match req.method.as_str() {
            "GET" => Ok(Hook::Respond(self.poll(&conn))),
            "POST" => {
                if req.body_len > cfg.max_payload as u64 {
                    self.end(&conn, DisconnectReason::TransportClose);
                    return Ok(Hook::Respond(eio_error(3, "Payload too large")));
                }
                let body = read_body(req, stream)?;
                let Ok(body) = String::from_utf8(body) else {
                    self.fail(&conn, "parse error: payload is not UTF-8");
                    return Ok(Hook::Respond(eio_error(3, "Bad request")));
                };
                // A polling payload is packets separated by the record separator.
                for packet in body.split('\x1e') {
                    if conn.closed.load(Ordering::Acquire) {
                        break;
                    }
                    if conn.trace {
                        tracing::info!(target: TRACE_TARGET, "sio {} → synack {} (POST)", conn.label, trace_line(packet));
                    }
                    self.on_packet(&conn, packet);
                }
                Ok(Hook::Respond(Response::text(Status::OK, "ok")))
            }
            _ => Ok(Hook::Respond(eio_error(2, "Bad handshake method"))),
        }
    }

    /// A long-poll GET: waits (up to a ping interval) for packets, then returns what is
    /// queued, up to about `max_payload` bytes.
    fn poll(&self, conn: &Arc<ConnShared>) -> Response {
        let cfg = self.inner.config;
        if conn.get_busy.swap(true, Ordering::AcqRel) {
            // Engine.IO allows one GET at a time; a second one is a broken client.
            self.end(conn, DisconnectReason::TransportClose);
            return eio_error(3, "Bad request");
        }
        let mut packets: Vec<String> = Vec::new();
        if let Ok(guard) = conn.queue.lock() {
            if let Some(queue) = guard.as_ref() {
                let mut size = 0;
                let mut wait = cfg.ping_interval + cfg.ping_timeout;
                while size < cfg.max_payload && packets.len() < 1024 {
                    let next = if packets.is_empty() {
                        queue.recv_timeout(wait).map_err(|_| ())
                    } else {
                        queue.try_recv().map_err(|_| ())
                    };
                    wait = Duration::ZERO;
                    match next {
                        Ok(Outgoing::Text(t)) => {
                            size += t.len() + 1;
                            packets.push(t);
                        }
                        Ok(Outgoing::Stop) => {
                            if !packets.iter().any(|p| p == "1") {
                                packets.push(encode_eio(EioType::Close, ""));
                            }
                            break;
                        }
                        Err(()) => break,
                    }
                }
            }
        }
        conn.get_busy.store(false, Ordering::Release);
        if packets.is_empty() {
            packets.push(encode_eio(EioType::Noop, ""));
        }
        if conn.trace {
            for t in &packets {
                tracing::info!(target: TRACE_TARGET, "sio synack → {} {} (GET)", conn.label, trace_line(t));
            }
        }
        Response::text(Status::OK, packets.join("\x1e"))
    }
}

/// A polling session's heartbeat: queue a ping every `ping_interval` (the next GET carries
/// it) and end the session if no pong is POSTed within `ping_timeout`. Stops once the
/// session is upgraded (the WebSocket writer keeps the heartbeat then) or over.
fn heartbeat(io: &SocketIo, conn: &Arc<ConnShared>, cfg: Config) {
    const TICK: Duration = Duration::from_millis(20);
    let gone = || conn.closed.load(Ordering::Acquire) || !conn.polling.load(Ordering::Acquire);
    let sleep_until = |t: Instant, done: &dyn Fn() -> bool| {
        while Instant::now() < t {
            if gone() || done() {
                return;
            }
            std::thread::sleep(TICK.min(t.saturating_duration_since(Instant::now())));
        }
    };
    loop {
        sleep_until(Instant::now() + cfg.ping_interval, &|| false);
        if gone() {
            return;
        }
        conn.pong.store(false, Ordering::Release);
        conn.send(encode_eio(EioType::Ping, ""));
        sleep_until(Instant::now() + cfg.ping_timeout, &|| conn.pong.load(Ordering::Acquire));
        if gone() {
            return;
        }
        if conn.slow.load(Ordering::Acquire) {
            io.end(conn, DisconnectReason::TooSlow);
            return;
        }
        if !conn.pong.load(Ordering::Acquire) {
            tracing::info!(target: TRACE_TARGET, "sio {}: no pong within {:?}; closing", conn.label, cfg.ping_timeout);
            io.end(conn, DisconnectReason::PingTimeout);
            return;
        }
    }
}

/// Reads a request body the hook handles itself (the caller bounded its length), and
/// leaves `req` as if it had none, so the HTTP server goes on at the next request.
fn read_body<S: Conn>(req: &mut Request, stream: &mut S) -> io::Result<Vec<u8>> {
    let len = usize::try_from(req.body_len).map_err(|_| io::Error::other("body too large"))?;
    let have = len.min(req.leftover.len());
    let mut body: Vec<u8> = req.leftover.drain(..have).collect();
    if body.len() < len && req.expects_continue() {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }
    let mut chunk = [0u8; 8192];
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    req.body_len = 0;
    Ok(body)
}
