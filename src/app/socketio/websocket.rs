//! The WebSocket transport: a session on a WebSocket, the upgrade from polling, and the
//! writer thread that drains the queue and keeps the heartbeat.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

use super::engine::trace_line;
use super::packet::{encode_eio, EioType};
use super::*;
use crate::app::ws::{open, Conn, Limits, WsReceiver, WsSender};

impl SocketIo {
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
        let (ws, rx) = open(stream, leftover, self.ws_limits(), false)?;
        let label = rx.peer_addr().map_or_else(|| "peer".to_string(), |a| a.to_string());
        let conn = self.new_conn(label, &[]);
        self.run_ws(conn, ws, rx)
    }

    /// The WebSocket half of a polling session's upgrade: answer the probe (`2probe` →
    /// `3probe`), flush the pending GET with a NOOP, and on the client's UPGRADE (`5`) move
    /// the session over to this WebSocket.
    pub(super) fn upgrade<S: Conn>(&self, conn: Arc<ConnShared>, stream: S, leftover: Vec<u8>) -> io::Result<()> {
        let (ws, mut rx) = open(stream, leftover, self.ws_limits(), false)?;
        // The probe exchange is a few packets; more than this is not a client upgrading.
        for _ in 0..8 {
            let text = match rx.recv() {
                Ok(Some(Message::Text(t))) => t,
                Ok(Some(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => break,
            };
            if conn.trace {
                tracing::info!(target: TRACE_TARGET, "sio {} → synack {} (upgrade)", conn.label, trace_line(&text));
            }
            match text.as_str() {
                "2probe" => {
                    ws.send(Message::Text("3probe".into()))?;
                    // The client waits for its pending GET to end before it upgrades.
                    conn.send(encode_eio(EioType::Noop, ""));
                }
                "5" => {
                    conn.polling.store(false, Ordering::Release);
                    tracing::info!(target: TRACE_TARGET, "sio {}: upgraded from polling to websocket", conn.label);
                    return self.run_ws(conn, ws, rx);
                }
                _ => break,
            }
        }
        // A failed upgrade leaves the polling session as it was.
        conn.upgrading.store(false, Ordering::Release);
        rx.finish();
        Ok(())
    }

    /// The session's WebSocket: a writer thread drains its queue and keeps the heartbeat;
    /// this thread reads packets until the end.
    fn run_ws<S: Conn>(&self, conn: Arc<ConnShared>, ws: WsSender<S>, mut rx: WsReceiver<S>) -> io::Result<()> {
        let cfg = self.inner.config;
        // Waits for a GET still draining the queue (it was sent a NOOP, so it ends soon).
        let queue = conn.queue.lock().ok().and_then(|mut q| q.take());
        let Some(queue) = queue else {
            self.end(&conn, DisconnectReason::TransportClose);
            return Err(io::Error::other("session queue already taken"));
        };
        let label = conn.label.clone();
        let writer = {
            let conn = conn.clone();
            let io = self.clone();
            std::thread::Builder::new()
                .name("sio-writer".into())
                .spawn(move || writer_loop(&io, &conn, &ws, &queue, cfg))?
        };
        let result = loop {
            if conn.closed.load(Ordering::Acquire) {
                break Ok(());
            }
            let text = match rx.recv() {
                Ok(Some(Message::Text(t))) => t,
                Ok(Some(Message::Binary(_))) => {
                    self.fail(&conn, "binary attachments are not supported");
                    continue;
                }
                Ok(Some(_)) => continue,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            if conn.trace {
                tracing::info!(target: TRACE_TARGET, "sio {label} → synack {}", trace_line(&text));
            }
            self.on_packet(&conn, text.as_str());
        };
        self.end(&conn, DisconnectReason::TransportClose);
        let _ = writer.join();
        rx.finish();
        result
    }
}

/// Drains the queue to the WebSocket in batches and keeps the heartbeat: a ping every
/// `ping_interval`, and the end of the session if no pong follows within `ping_timeout`.
fn writer_loop<S: Conn>(
    io: &SocketIo,
    conn: &Arc<ConnShared>,
    ws: &WsSender<S>,
    queue: &Receiver<Outgoing>,
    cfg: Config,
) {
    const BATCH: usize = 64;
    let mut next_ping = Instant::now() + cfg.ping_interval;
    let mut awaiting: Option<Instant> = None;
    let mut stop = false;
    let mut reason = None;
    while !stop {
        let now = Instant::now();
        let deadline = awaiting.map_or(next_ping, |t| (t + cfg.ping_timeout).min(next_ping));
        let mut batch = Vec::new();
        match queue.recv_timeout(deadline.saturating_duration_since(now)) {
            Ok(Outgoing::Text(t)) => batch.push(t),
            Ok(Outgoing::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        while !stop && batch.len() < BATCH {
            match queue.try_recv() {
                Ok(Outgoing::Text(t)) => batch.push(t),
                Ok(Outgoing::Stop) => stop = true,
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if awaiting.is_some() && conn.pong.load(Ordering::Acquire) {
            awaiting = None;
        }
        if let Some(t) = awaiting {
            if now >= t + cfg.ping_timeout {
                tracing::info!(target: TRACE_TARGET, "sio {}: no pong within {:?}; closing", conn.label, cfg.ping_timeout);
                reason = Some(DisconnectReason::PingTimeout);
                stop = true;
            }
        }
        if !stop && now >= next_ping {
            conn.pong.store(false, Ordering::Release);
            batch.push(encode_eio(EioType::Ping, ""));
            awaiting = Some(now);
            next_ping = now + cfg.ping_interval;
        }
        if conn.trace {
            for t in &batch {
                tracing::info!(target: TRACE_TARGET, "sio synack → {} {}", conn.label, trace_line(t));
            }
        }
        if !batch.is_empty() && ws.send_all(batch.into_iter().map(|t| Message::Text(t.into()))).is_err() {
            reason.get_or_insert(DisconnectReason::TransportClose);
            break;
        }
        if conn.slow.load(Ordering::Acquire) {
            reason = Some(DisconnectReason::TooSlow);
            break;
        }
        if conn.closed.load(Ordering::Acquire) {
            break;
        }
    }
    if let Some(r) = reason {
        io.end(conn, r);
    }
    let code = match conn.reason.lock().ok().and_then(|r| *r) {
        Some(DisconnectReason::TooSlow) => CloseCode::Policy,
        Some(DisconnectReason::ParseError) => CloseCode::Protocol,
        _ => CloseCode::Normal,
    };
    // Flush what the session's end queued (the CLOSE packet after a parse error).
    let rest: Vec<Message> = std::iter::from_fn(|| queue.try_recv().ok())
        .take(BATCH)
        .filter_map(|o| match o {
            Outgoing::Text(t) => Some(Message::Text(t.into())),
            Outgoing::Stop => None,
        })
        .collect();
    if !rest.is_empty() {
        let _ = ws.send_all(rest);
    }
    let reason_text = conn.reason.lock().ok().and_then(|r| *r).map_or("", DisconnectReason::as_str);
    let _ = ws.close(code, reason_text);
}
