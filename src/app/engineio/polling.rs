//! The HTTP long-polling transport: the handshake GET, long-poll GETs, POSTed packets, and
//! the polling session's heartbeat.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::get_turn::{head_arrival, GetTurn};
use super::packet::{decode_payload, encode_eio, encode_payload, EioType, Wire};
use super::session::{Outgoing, Session};
use super::*;
use crate::app::http::{Hook, Request, Response, Status};
use crate::app::ws::Conn;

impl EngineIo {
    /// `transport=polling`: the handshake GET, a long-poll GET, or a POST of packets.
    pub(super) fn polling<S: Conn>(&self, req: &mut Request, stream: &mut S, sid: Option<String>) -> io::Result<Hook> {
        let cfg = self.inner.config;
        let sid = match (req.method.as_str(), sid) {
            ("GET", None) => {
                let full = self.inner.sessions.lock().map_or(true, |m| {
                    m.values().filter(|s| s.polling.load(Ordering::Relaxed)).count() >= cfg.max_polling_sessions
                });
                if full {
                    return Ok(Hook::Respond(eio_error(3, "Too many sessions")));
                }
                let label = stream.peer_addr().map_or_else(|| "peer".to_string(), |a| a.to_string());
                let session = self.new_session(label, true);
                let hb = session.clone();
                let spawned =
                    std::thread::Builder::new().name("eio-poll-heartbeat".into()).spawn(move || heartbeat(&hb));
                if spawned.is_err() {
                    session.end(DisconnectReason::TransportClose);
                    return Ok(Hook::Respond(eio_error(3, "Too many sessions")));
                }
                session.sid.clone()
            }
            (_, Some(sid)) => sid,
            (_, None) => return Ok(Hook::Respond(eio_error(2, "Bad handshake method"))),
        };
        let Some(session) = self.session(&sid) else {
            if req.method == "GET" && self.inner.raced_close(&sid) {
                return Ok(Hook::Respond(Response::text(Status::OK, encode_eio(EioType::Noop, ""))));
            }
            return Ok(Hook::Respond(eio_error(1, "Session ID unknown")));
        };
        if req.method == "GET" {
            // Its UPGRADE, if the client sent it before this GET, has moved the session.
            session.wait_for_upgrade_input();
        }
        if !session.polling.load(Ordering::Acquire) {
            // On a WebSocket (from the start, or upgraded): polling is over for this sid.
            return Ok(Hook::Respond(eio_error(3, "Bad request")));
        }
        // Exactly on time, whether or not the heartbeat thread has run yet.
        if session.expired(Instant::now()) {
            tracing::info!(target: TRACE_TARGET, "sio {}: no pong within {:?}; closing", session.label, cfg.ping_timeout);
            session.end(DisconnectReason::PingTimeout);
            return Ok(Hook::Respond(eio_error(1, "Session ID unknown")));
        }
        match req.method.as_str() {
            "GET" => Ok(Hook::Respond(poll(&session, head_arrival(req, stream)))),
            "POST" => {
                if req.body_len > cfg.max_payload as u64 {
                    session.fail("payload too large");
                    let mut r = eio_error(3, "Payload too large");
                    r.status = Status(413);
                    return Ok(Hook::Respond(r));
                }
                let body = read_body(req, stream)?;
                let packets = match String::from_utf8(body)
                    .map_err(|e| e.to_string())
                    .and_then(|b| decode_payload(&b).map_err(|e| e.to_string()))
                {
                    Ok(p) => p,
                    Err(e) => {
                        session.fail(&format!("parse error: {e}"));
                        return Ok(Hook::Respond(eio_error(3, "Bad request")));
                    }
                };
                for packet in packets {
                    if session.closed.load(Ordering::Acquire) {
                        break;
                    }
                    if session.on_packet(packet).is_err() {
                        return Ok(Hook::Respond(eio_error(3, "Bad request")));
                    }
                }
                Ok(Hook::Respond(Response::text(Status::OK, "ok")))
            }
            _ => Ok(Hook::Respond(eio_error(2, "Bad handshake method"))),
        }
    }
}

/// A long-poll GET whose head has arrival number `arrival`: waits (up to a ping interval
/// and timeout) for packets, then returns what is queued, up to about `max_payload` bytes.
/// During an upgrade it does not wait.
pub(super) fn poll(session: &Arc<Session>, arrival: Option<u64>) -> Response {
    let cfg = session.config;
    let close = Wire::Text(encode_eio(EioType::Close, ""));
    match session.take_get(arrival) {
        GetTurn::Mine => {}
        GetTurn::Duplicate => {
            session.end(DisconnectReason::TransportClose);
            return eio_error(3, "Bad request");
        }
        GetTurn::Earlier => {
            // The waiting GET, woken by the end, answers the 400.
            session.end(DisconnectReason::TransportClose);
            return Response::text(Status::OK, encode_payload(&[close]));
        }
    }
    if session.closing.load(Ordering::SeqCst) {
        // The server closed the session since the last GET: this one carries the CLOSE
        // (after what was queued before).
        session.end(DisconnectReason::ForcedClose);
    }
    let ping = Wire::Text(encode_eio(EioType::Ping, ""));
    let mut packets: Vec<Wire> = Vec::new();
    if let Ok(guard) = session.queue.lock() {
        if let Some(queue) = guard.as_ref() {
            let mut size = 0;
            let wait = if session.probed.load(Ordering::Acquire) {
                Duration::ZERO
            } else {
                cfg.ping_interval + cfg.ping_timeout
            };
            let end = Instant::now() + wait;
            while size < cfg.max_payload && packets.len() < 1024 {
                // A ping falling due while this GET waits goes out with it, on time.
                let over = session.closed.load(Ordering::Acquire);
                if !over && session.hb.lock().is_ok_and(|mut hb| hb.take_due(Instant::now())) {
                    size += 2;
                    packets.push(ping.clone());
                }
                let next = if packets.is_empty() {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let ping_due = session.hb.lock().ok().filter(|hb| !hb.sent).map(|hb| hb.next_ping);
                    let until = ping_due.map_or(end, |d| d.min(end));
                    match queue.recv_timeout(until.saturating_duration_since(now)) {
                        Ok(o) => Some(o),
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                } else {
                    queue.try_recv().ok()
                };
                match next {
                    Some(Outgoing::Packets(p)) => {
                        size += p.iter().map(|w| w.polling_len() + 1).sum::<usize>();
                        packets.extend(p);
                    }
                    Some(Outgoing::Flush) => break,
                    Some(Outgoing::Stop) => {
                        // The client's own CLOSE is answered with a NOOP (it is leaving).
                        if session.client_closed.load(Ordering::Acquire) {
                            session.close_answered();
                        } else if !packets.contains(&close) {
                            packets.push(close);
                        }
                        break;
                    }
                    None => break,
                }
            }
        }
    }
    if packets.contains(&ping) {
        if let Ok(mut hb) = session.hb.lock() {
            hb.delivered(Instant::now());
        }
    }
    if session.release_get() {
        return eio_error(3, "Bad request");
    }
    if packets.is_empty() {
        packets.push(Wire::Text(encode_eio(EioType::Noop, "")));
    }
    if session.trace {
        for w in &packets {
            tracing::info!(target: TRACE_TARGET, "sio synack → {} {} (GET)", session.label, session.trace_line(w));
        }
    }
    Response::text(Status::OK, encode_payload(&packets))
}

/// A polling session's heartbeat: queue each ping when it is due (the next GET carries it)
/// and end the session when one has gone unanswered for `ping_timeout`. Stops once the
/// session is upgraded (the WebSocket writer keeps the heartbeat then) or over.
fn heartbeat(session: &Arc<Session>) {
    const TICK: Duration = Duration::from_millis(20);
    let cfg = session.config;
    loop {
        if session.closed.load(Ordering::Acquire) || !session.polling.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if session.slow.load(Ordering::Acquire) {
            session.end(DisconnectReason::TooSlow);
            return;
        }
        if session.expired(now) {
            tracing::info!(target: TRACE_TARGET, "sio {}: no pong within {:?}; closing", session.label, cfg.ping_timeout);
            session.end(DisconnectReason::PingTimeout);
            return;
        }
        let (due, ping_now) = match session.hb.lock() {
            Ok(mut hb) => {
                let ping_now = hb.take_due(now);
                (if hb.sent { hb.deadline(cfg.ping_timeout) } else { hb.next_ping }, ping_now)
            }
            Err(_) => return,
        };
        // (A closing session sends no ping; its deadline runs all the same.)
        if ping_now {
            session.send(vec![Wire::Text(encode_eio(EioType::Ping, ""))]);
        }
        // Short sleeps: a pong moves the deadline, an upgrade or an end stops the beat.
        std::thread::sleep(TICK.min(due.saturating_duration_since(Instant::now())).max(Duration::from_millis(1)));
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
