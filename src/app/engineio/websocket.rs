//! The WebSocket transport: a session on a WebSocket, the upgrade from polling, and the
//! writer thread that drains the queue and keeps the heartbeat.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

use super::packet::{encode_eio, EioType, Wire};
use super::session::{Outgoing, Session};
use super::*;
use crate::app::ws::{open, Conn, Limits, WsReceiver, WsSender};

impl EngineIo {
    fn ws_limits(&self) -> Limits {
        let cfg = self.inner.config;
        Limits {
            max_message: cfg.max_payload,
            // The WebSocket layer's own idle ping is only a backstop for Engine.IO's.
            idle: cfg.ping_interval + cfg.ping_timeout + Duration::from_secs(1),
            read_buffer: 16 * 1024,
            ..Limits::default()
        }
    }

    /// Runs one Engine.IO session on an upgraded WebSocket until it ends.
    pub fn serve_ws<S: Conn>(&self, stream: S, leftover: Vec<u8>) -> io::Result<()> {
        hold_small_packets(&stream);
        let (ws, rx) = open(stream, leftover, self.ws_limits(), false)?;
        let label = rx.peer_addr().map_or_else(|| "peer".to_string(), |a| a.to_string());
        let session = self.new_session(label, false);
        run_ws(session, ws, rx)
    }

    /// A WebSocket naming a session that is upgraded already (or being upgraded by another
    /// WebSocket): opened, then closed at once, the session untouched.
    pub(super) fn refuse_ws<S: Conn>(&self, stream: S, leftover: Vec<u8>) -> io::Result<()> {
        let limits = Limits { idle: Duration::from_secs(2), ..self.ws_limits() };
        let (ws, mut rx) = open(stream, leftover, limits, false)?;
        ws.close(CloseCode::Policy, "session already upgraded")?;
        // Wait (briefly) for the client's close reply, so the close handshake completes.
        for _ in 0..16 {
            match rx.recv() {
                Ok(Some(Message::Close(_)) | None) | Err(_) => break,
                Ok(Some(_)) => {}
            }
        }
        rx.finish();
        Ok(())
    }

    /// The WebSocket half of a polling session's upgrade: answer the probe (`2probe` →
    /// `3probe`), end the pending (or next) GET with a NOOP, and on the client's UPGRADE
    /// (`5`) move the session over to this WebSocket.
    pub(super) fn upgrade<S: Conn>(&self, session: Arc<Session>, stream: S, leftover: Vec<u8>) -> io::Result<()> {
        hold_small_packets(&stream);
        let (ws, mut rx) = match open(stream, leftover, self.ws_limits(), false) {
            Ok(pair) => pair,
            Err(e) => {
                session.watch.stop();
                session.upgrading.store(false, Ordering::Release);
                return Err(e);
            }
        };
        // The probe exchange is a few packets; more than this is not a client upgrading.
        for _ in 0..8 {
            if !rx.has_pending() {
                // About to read: what arrived so far is handled (a waiting GET may go on).
                session.watch.caught_up();
            }
            let text = match rx.recv() {
                Ok(Some(Message::Text(t))) => t,
                Ok(Some(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => break,
            };
            if session.trace {
                let line = session.trace_line(&Wire::Text(text.to_string()));
                tracing::info!(target: TRACE_TARGET, "sio {} → synack {line} (upgrade)", session.label);
            }
            match text.as_str() {
                "2probe" => {
                    ws.send(Message::Text("3probe".into()))?;
                    // The client waits for its GET to end before it upgrades.
                    session.probed.store(true, Ordering::Release);
                    session.flush();
                }
                "5" if session.probed.load(Ordering::Acquire) => {
                    session.polling.store(false, Ordering::Release);
                    session.watch.stop();
                    tracing::info!(target: TRACE_TARGET, "sio {}: upgraded from polling to websocket", session.label);
                    if session.closing.load(Ordering::Acquire) {
                        // Closed by the server meanwhile: the new transport carries the close.
                        session.end(DisconnectReason::ForcedClose);
                    }
                    return run_ws(session, ws, rx);
                }
                _ => break,
            }
        }
        // A failed upgrade leaves the polling session as it was.
        session.probed.store(false, Ordering::Release);
        session.upgrading.store(false, Ordering::Release);
        session.watch.stop();
        rx.finish();
        Ok(())
    }
}

/// The session's WebSocket: a writer thread drains its queue and keeps the heartbeat;
/// this thread reads packets until the end.
/// Engine.IO packets are small and often come in pairs (the Socket.IO CONNECT reply and the
/// first event the connection handler emits): left to Nagle, the second waits for the ACK of
/// the first, so a client that handles one message per read sees each on its own, as the
/// reference server's writes, a tick apart, let it (the official suites' client needs this).
/// Later packets then wait at most one ACK; a flush otherwise pushes (`TcpStream::push`).
fn hold_small_packets<S: Conn>(stream: &S) {
    stream.set_push_on_flush(false);
}

fn run_ws<S: Conn>(session: Arc<Session>, ws: WsSender<S>, mut rx: WsReceiver<S>) -> io::Result<()> {
    // Waits for a GET still draining the queue (it was flushed, so it ends soon).
    let queue = session.queue.lock().ok().and_then(|mut q| q.take());
    let Some(queue) = queue else {
        session.end(DisconnectReason::TransportClose);
        return Err(io::Error::other("session queue already taken"));
    };
    let writer = {
        let session = session.clone();
        std::thread::Builder::new().name("eio-writer".into()).spawn(move || writer_loop(&session, &ws, &queue))?
    };
    let result = loop {
        if session.closed.load(Ordering::Acquire) {
            break Ok(());
        }
        let wire = match rx.recv() {
            Ok(Some(Message::Text(t))) => Wire::Text(t.to_string()),
            Ok(Some(Message::Binary(b))) => Wire::Binary(b.to_vec()),
            Ok(Some(_)) => continue,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        // A protocol error ends the session; the loop sees `closed` next.
        let _ = session.on_packet(wire);
    };
    session.end(DisconnectReason::TransportClose);
    let _ = writer.join();
    rx.finish();
    result
}

/// Drains the queue to the WebSocket in batches and keeps the heartbeat: each ping when it
/// is due, and the end of the session when one has gone unanswered for `ping_timeout`.
fn writer_loop<S: Conn>(session: &Arc<Session>, ws: &WsSender<S>, queue: &Receiver<Outgoing>) {
    const BATCH: usize = 64;
    let cfg = session.config;
    let mut stop = false;
    let mut reason = None;
    let to_msg = |w: Wire| match w {
        Wire::Text(t) => Message::Text(t.into()),
        Wire::Binary(b) => Message::Binary(b.into()),
    };
    while !stop {
        let deadline = match session.hb.lock() {
            Ok(hb) if hb.sent => hb.deadline(cfg.ping_timeout),
            Ok(hb) => hb.next_ping,
            Err(_) => Instant::now(),
        };
        let mut batch: Vec<Wire> = Vec::new();
        match queue.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Outgoing::Packets(p)) => batch.extend(p),
            Ok(Outgoing::Flush) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Outgoing::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
        }
        while !stop && batch.len() < BATCH {
            match queue.try_recv() {
                Ok(Outgoing::Packets(p)) => batch.extend(p),
                Ok(Outgoing::Flush) => {}
                Ok(Outgoing::Stop) => stop = true,
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if !stop && session.expired(now) {
            tracing::info!(target: TRACE_TARGET, "sio {}: no pong within {:?}; closing", session.label, cfg.ping_timeout);
            reason = Some(DisconnectReason::PingTimeout);
            stop = true;
        }
        if !stop {
            let ping = Wire::Text(encode_eio(EioType::Ping, ""));
            if session.hb.lock().is_ok_and(|mut hb| hb.take_due(now)) {
                batch.push(ping.clone());
            }
            if batch.contains(&ping) {
                if let Ok(mut hb) = session.hb.lock() {
                    hb.delivered(now);
                }
            }
        }
        if session.trace {
            for w in &batch {
                tracing::info!(target: TRACE_TARGET, "sio synack → {} {}", session.label, session.trace_line(w));
            }
        }
        if !batch.is_empty() && ws.send_all(batch.into_iter().map(to_msg)).is_err() {
            reason.get_or_insert(DisconnectReason::TransportClose);
            break;
        }
        if session.slow.load(Ordering::Acquire) {
            reason = Some(DisconnectReason::TooSlow);
            break;
        }
        if session.closed.load(Ordering::Acquire) {
            break;
        }
    }
    if let Some(r) = reason {
        session.end(r);
    }
    let code = match session.reason.lock().ok().and_then(|r| *r) {
        Some(DisconnectReason::TooSlow) => CloseCode::Policy,
        Some(DisconnectReason::ParseError) => CloseCode::Protocol,
        _ => CloseCode::Normal,
    };
    // Flush what the session's end queued (the CLOSE packet after a parse error).
    let rest: Vec<Message> = std::iter::from_fn(|| queue.try_recv().ok())
        .take(BATCH)
        .filter_map(|o| match o {
            Outgoing::Packets(p) => Some(p),
            _ => None,
        })
        .flatten()
        .map(to_msg)
        .collect();
    if !rest.is_empty() {
        let _ = ws.send_all(rest);
    }
    let reason_text = session.reason.lock().ok().and_then(|r| *r).map_or("", DisconnectReason::as_str);
    let _ = ws.close(code, reason_text);
}
