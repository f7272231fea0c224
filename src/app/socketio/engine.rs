//! The Engine.IO session: the HTTP hook that routes a request to a transport, a new
//! session's OPEN, the packets a client sends (on either transport), and the session's end.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::packet::{decode_eio, describe, encode_eio, EioType, SioPacket, SioType};
use super::*;
use crate::app::http::{Hook, Request, Response, Status};
use crate::app::ws::{handshake, Conn};

impl SocketIo {
    /// The HTTP hook: takes over `/socket.io/` WebSocket requests, answers other requests
    /// on that path with Engine.IO's JSON errors, declines every other path.
    pub fn hook<S: Conn>(&self, req: &mut Request, stream: &mut S) -> io::Result<Hook> {
        let path = req.route_path();
        if path != PATH && path != "/socket.io" {
            return Ok(Hook::Declined);
        }
        let query = req.path.split_once('?').map_or("", |(_, q)| q).to_owned();
        let param = |name: &str| {
            query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
        };
        if param("EIO").as_deref() != Some("4") {
            return Ok(Hook::Respond(eio_error(5, "Unsupported protocol version")));
        }
        let sid = param("sid");
        match param("transport").as_deref() {
            Some("websocket") => {}
            Some("polling") => return self.polling(req, stream, sid),
            _ => return Ok(Hook::Respond(eio_error(0, "Transport unknown"))),
        }
        let upgrading = match &sid {
            Some(sid) => match self.session(sid) {
                // Only one upgrade per session.
                Some(c) if !c.upgrading.swap(true, Ordering::AcqRel) => Some(c),
                _ => return Ok(Hook::Respond(eio_error(1, "Session ID unknown"))),
            },
            None => None,
        };
        if !handshake::is_attempt(req) {
            return Ok(Hook::Respond(eio_error(3, "Bad request")));
        }
        let accepted = match handshake::check(req) {
            Ok(a) => a,
            Err(resp) => {
                if let Some(c) = &upgrading {
                    c.upgrading.store(false, Ordering::Release);
                }
                return Ok(Hook::Respond(resp));
            }
        };
        let mut stream = stream.try_clone()?;
        handshake::write_switching(&mut stream, &accepted)?;
        let leftover = std::mem::take(&mut req.leftover);
        let result = match upgrading {
            Some(conn) => self.upgrade(conn, stream, leftover),
            None => self.serve_ws(stream, leftover),
        };
        if let Err(e) = result {
            tracing::debug!(target: TRACE_TARGET, "socket.io connection ended: {e}");
        }
        Ok(Hook::TookOver)
    }

    /// A new Engine.IO session with its OPEN packet queued.
    pub(super) fn new_conn(&self, label: String, upgrades: &[&str]) -> Arc<ConnShared> {
        let cfg = self.inner.config;
        let (tx, queue) = mpsc::sync_channel(cfg.queue.max(1));
        let conn = Arc::new(ConnShared {
            sid: new_sid(),
            tx,
            queue: Mutex::new(Some(queue)),
            closed: AtomicBool::new(false),
            slow: AtomicBool::new(false),
            pong: AtomicBool::new(false),
            polling: AtomicBool::new(false),
            upgrading: AtomicBool::new(false),
            get_busy: AtomicBool::new(false),
            reason: Mutex::new(None),
            sockets: Mutex::new(HashMap::new()),
            label,
            trace: tracing::enabled!(target: TRACE_TARGET, tracing::Level::INFO),
        });
        let open_packet = json!({
            "sid": conn.sid,
            "upgrades": upgrades,
            "pingInterval": cfg.ping_interval.as_millis() as u64,
            "pingTimeout": cfg.ping_timeout.as_millis() as u64,
            "maxPayload": cfg.max_payload,
        });
        conn.send(encode_eio(EioType::Open, &open_packet.to_string()));
        conn
    }

    pub(super) fn session(&self, sid: &str) -> Option<Arc<ConnShared>> {
        self.inner.sessions.lock().ok()?.get(sid).cloned()
    }

    /// One Engine.IO packet from the client.
    pub(super) fn on_packet(&self, conn: &Arc<ConnShared>, text: &str) {
        match decode_eio(text) {
            Ok((EioType::Pong, _)) => conn.pong.store(true, Ordering::Release),
            Ok((EioType::Ping, data)) => conn.send(encode_eio(EioType::Pong, data)),
            Ok((EioType::Message, body)) => match SioPacket::decode(body) {
                Ok(p) => self.on_sio(conn, p),
                Err(e) => self.fail(conn, &format!("parse error: {e}")),
            },
            Ok((EioType::Close, _)) => self.end(conn, DisconnectReason::TransportClose),
            Ok((EioType::Noop | EioType::Upgrade, _)) => {}
            Ok((EioType::Open, _)) => self.fail(conn, "parse error: OPEN from a client"),
            Err(e) => self.fail(conn, &format!("parse error: {e}")),
        }
    }

    fn on_sio(&self, conn: &Arc<ConnShared>, p: SioPacket) {
        let existing = conn.sockets.lock().ok().and_then(|m| m.get(&p.nsp).cloned());
        match p.kind {
            SioType::Connect => {
                if existing.is_some() {
                    tracing::debug!(target: TRACE_TARGET, "{}: second CONNECT to {} ignored", conn.label, p.nsp);
                    return;
                }
                let Some(ns) = self.lookup(&p.nsp) else {
                    let err = SioPacket::new(
                        SioType::ConnectError,
                        &p.nsp,
                        None,
                        Some(json!({"message": "Invalid namespace"})),
                    );
                    conn.send_sio(&err);
                    return;
                };
                let socket =
                    Socket::new(conn.clone(), &ns, p.data.unwrap_or(Value::Null), self.inner.config.max_pending_acks);
                if let Ok(mut m) = conn.sockets.lock() {
                    m.insert(p.nsp.clone(), socket.clone());
                }
                if let Ok(mut st) = ns.inner.state.lock() {
                    st.sockets.insert(socket.id().to_owned(), socket.clone());
                }
                conn.send_sio(&SioPacket::new(SioType::Connect, &p.nsp, None, Some(json!({"sid": socket.id()}))));
                let handler = ns.inner.on_connection.read().ok().and_then(|h| h.clone());
                if let Some(h) = handler {
                    h(socket);
                }
            }
            SioType::Event => {
                let Some(socket) = existing else { return };
                let name = p.event_name().unwrap_or_default().to_owned();
                let data = p.args().first().cloned().unwrap_or(Value::Null);
                let handler = socket.inner.handlers.lock().ok().and_then(|h| h.get(&name).cloned());
                let ack = p.id.map(|id| Ack { socket: socket.clone(), id, sent: false });
                match handler {
                    Some(h) => h(data, ack),
                    None => tracing::debug!(target: TRACE_TARGET, "{}: no handler for {name:?}", conn.label),
                }
            }
            SioType::Ack => {
                let Some(socket) = existing else { return };
                let cb = p.id.and_then(|id| socket.inner.acks.lock().ok().and_then(|mut a| a.remove(&id)));
                if let Some(cb) = cb {
                    cb(p.args().first().cloned().unwrap_or(Value::Null));
                }
            }
            SioType::Disconnect => {
                if let Some(socket) = existing {
                    socket.leave_all(DisconnectReason::ClientNamespaceDisconnect);
                }
            }
            SioType::ConnectError => self.fail(conn, "parse error: CONNECT_ERROR from a client"),
            SioType::BinaryEvent | SioType::BinaryAck => {
                let err = SioPacket::new(
                    SioType::ConnectError,
                    &p.nsp,
                    None,
                    Some(json!({"message": "binary attachments are not supported"})),
                );
                conn.send_sio(&err);
                self.fail(conn, "binary attachments are not supported");
            }
        }
    }

    /// The client broke the protocol: tell it with an Engine.IO CLOSE, then close.
    pub(super) fn fail(&self, conn: &Arc<ConnShared>, why: &str) {
        tracing::info!(target: TRACE_TARGET, "sio {}: closing: {why}", conn.label);
        conn.send(encode_eio(EioType::Close, ""));
        self.end(conn, DisconnectReason::ParseError);
    }

    /// Ends the session once (from the reader or the writer): every socket leaves with
    /// `reason`, and the writer is told to close the WebSocket.
    pub(super) fn end(&self, conn: &Arc<ConnShared>, reason: DisconnectReason) {
        if conn.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(mut r) = conn.reason.lock() {
            *r = Some(reason);
        }
        if let Ok(mut m) = self.inner.sessions.lock() {
            m.remove(&conn.sid);
        }
        let sockets: Vec<Socket> =
            conn.sockets.lock().map(|mut m| m.drain().map(|(_, s)| s).collect()).unwrap_or_default();
        for s in sockets {
            s.leave_all(reason);
        }
        // Wakes the writer; if its queue is full it sees `closed` after the batch.
        let _ = conn.tx.try_send(Outgoing::Stop);
    }
}

/// `EVENT chat message ["hi"]  ‹42["chat message","hi"]›`: decoded, then as sent; both
/// cut to a few hundred characters so a big payload cannot flood the log.
pub(super) fn trace_line(text: &str) -> String {
    fn cut(s: &str) -> String {
        const MAX: usize = 300;
        match s.char_indices().nth(MAX) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s.to_owned(),
        }
    }
    format!("{}  ‹{}›", cut(&describe(text)), cut(text))
}

/// Engine.IO's error answer for a bad request on its path.
pub(super) fn eio_error(code: u32, message: &str) -> Response {
    let mut r = Response::text(Status(400), json!({"code": code, "message": message}).to_string());
    r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Content-Type"));
    r.headers.push(("Content-Type", "application/json".into()));
    r
}

pub(super) fn new_sid() -> String {
    let mut b = [0u8; 15];
    if getrandom::fill(&mut b).is_err() {
        // Not a secret (Socket.IO sids are identifiers, not credentials); unique is enough.
        static N: AtomicU64 = AtomicU64::new(1);
        b[..8].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl ConnShared {
    /// Queues one Engine.IO packet; never blocks. A full queue marks the client slow.
    pub(super) fn send(&self, text: String) {
        if self.closed.load(Ordering::Acquire) && !text.starts_with('1') {
            return;
        }
        match self.tx.try_send(Outgoing::Text(text)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if !self.slow.swap(true, Ordering::AcqRel) {
                    tracing::info!(target: TRACE_TARGET, "sio {}: not reading; dropping it", self.label);
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    pub(super) fn send_sio(&self, p: &SioPacket) {
        self.send(encode_eio(EioType::Message, &p.encode()));
    }
}
