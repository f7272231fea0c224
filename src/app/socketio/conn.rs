//! One client's Socket.IO connection on its Engine.IO session: the packets it sends (binary
//! attachments gathered first), the namespaces it is connected to, and its connect timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{json, Value};

use super::args::{placeholders_valid, Args};
use super::packet::{SioPacket, SioType};
use super::*;
use crate::app::engineio::{timer, EioSocket, Payload};

/// Attachments one packet may announce: socket.io-parser's clients send one per binary
/// value, so this is generous; the bytes are bounded by `max_payload` anyway.
const MAX_ATTACHMENTS: usize = 1000;

pub(super) struct SioConn {
    pub eio: EioSocket,
    /// Connected namespaces → their socket.
    pub sockets: Mutex<HashMap<String, Socket>>,
    /// A BINARY_EVENT / BINARY_ACK whose attachments are still arriving.
    partial: Mutex<Option<Partial>>,
    connected_once: AtomicBool,
    config: Config,
}

struct Partial {
    packet: SioPacket,
    want: usize,
    attachments: Vec<Vec<u8>>,
    bytes: usize,
}

impl SioConn {
    /// Sends a packet and its attachments back to back.
    pub(super) fn send(&self, p: &SioPacket, attachments: Vec<Vec<u8>>) {
        let mut msgs = Vec::with_capacity(1 + attachments.len());
        msgs.push(Payload::Text(p.encode()));
        msgs.extend(attachments.into_iter().map(Payload::Binary));
        self.eio.send_all(msgs);
    }

    /// An EVENT (`ack_id` set: asking for an ack) or an ACK with `args`, binary or not.
    pub(super) fn send_args(&self, kind: SioType, nsp: &str, id: Option<u64>, event: Option<&str>, args: Args) {
        let (mut values, attachments) = args.into_parts();
        if let Some(name) = event {
            values.insert(0, Value::String(name.to_owned()));
        }
        let binary = !attachments.is_empty();
        let kind = match (kind, binary) {
            (SioType::Event, true) => SioType::BinaryEvent,
            (SioType::Ack, true) => SioType::BinaryAck,
            (k, _) => k,
        };
        let mut p = SioPacket::new(kind, nsp, id, Some(Value::Array(values)));
        if binary {
            p.attachments = u32::try_from(attachments.len()).ok();
        }
        self.send(&p, attachments);
    }
}

impl SocketIo {
    /// A new Engine.IO session: the Socket.IO connection on it.
    pub(super) fn attach(&self, eio: EioSocket) {
        let cfg = self.inner.config;
        let conn = Arc::new(SioConn {
            eio: eio.clone(),
            sockets: Mutex::new(HashMap::new()),
            partial: Mutex::new(None),
            connected_once: AtomicBool::new(false),
            config: cfg,
        });
        let io = Arc::downgrade(&self.inner);
        let c = conn.clone();
        eio.on_message(move |msg| match io.upgrade() {
            Some(inner) => SocketIo { inner }.on_message(&c, msg),
            None => Err("server gone".into()),
        });
        let c = conn.clone();
        eio.on_close(move |reason| {
            let sockets: Vec<Socket> =
                c.sockets.lock().map(|mut m| m.drain().map(|(_, s)| s).collect()).unwrap_or_default();
            for s in sockets {
                s.leave_all(reason);
            }
        });
        let weak: Weak<SioConn> = Arc::downgrade(&conn);
        // From the handshake, as socket.io's `connectTimeout` (its Client is made for the
        // engine's connection at the handshake).
        timer::at(eio.opened() + cfg.connect_timeout, move || {
            if let Some(c) = weak.upgrade() {
                if !c.connected_once.load(Ordering::Acquire) && !c.eio.is_closed() {
                    tracing::info!(target: TRACE_TARGET, "sio {}: no CONNECT within {:?}; closing", c.eio.label(), c.config.connect_timeout);
                    c.eio.close();
                }
            }
        });
    }

    /// One Engine.IO message: a Socket.IO packet, or one of its binary attachments.
    fn on_message(&self, conn: &Arc<SioConn>, msg: Payload) -> Result<(), String> {
        let mut partial = conn.partial.lock().map_err(|_| "poisoned")?;
        match msg {
            Payload::Text(text) => {
                if partial.is_some() {
                    return Err("a packet arrived while binary attachments were awaited".into());
                }
                let p = SioPacket::decode(&text).map_err(|e| e.to_string())?;
                let want = p.attachments.unwrap_or(0) as usize;
                if want == 0 {
                    drop(partial);
                    return self.on_packet(conn, p, Vec::new());
                }
                if want > MAX_ATTACHMENTS {
                    return Err(format!("{want} attachments announced; at most {MAX_ATTACHMENTS}"));
                }
                *partial = Some(Partial { packet: p, want, attachments: Vec::with_capacity(want), bytes: text.len() });
                Ok(())
            }
            Payload::Binary(bytes) => {
                let Some(part) = partial.as_mut() else {
                    return Err("a binary message with no packet awaiting it".into());
                };
                part.bytes += bytes.len();
                if part.bytes > conn.config.max_payload {
                    return Err(format!("a packet and its attachments over maxPayload ({})", conn.config.max_payload));
                }
                part.attachments.push(bytes);
                if part.attachments.len() < part.want {
                    return Ok(());
                }
                let Some(done) = partial.take() else { return Ok(()) };
                drop(partial);
                let data = done.packet.data.as_ref().unwrap_or(&Value::Null);
                if !placeholders_valid(data, done.want) {
                    return Err("illegal attachments (a placeholder names none)".into());
                }
                self.on_packet(conn, done.packet, done.attachments)
            }
        }
    }

    fn on_packet(&self, conn: &Arc<SioConn>, p: SioPacket, attachments: Vec<Vec<u8>>) -> Result<(), String> {
        let existing = conn.sockets.lock().ok().and_then(|m| m.get(&p.nsp).cloned());
        match p.kind {
            SioType::Connect => {
                if existing.is_some() {
                    tracing::debug!(target: TRACE_TARGET, "{}: second CONNECT to {} ignored", conn.eio.label(), p.nsp);
                    return Ok(());
                }
                let Some(ns) = self.lookup(&p.nsp) else {
                    let err = json!({"message": "Invalid namespace"});
                    conn.send(&SioPacket::new(SioType::ConnectError, &p.nsp, None, Some(err)), Vec::new());
                    return Ok(());
                };
                conn.connected_once.store(true, Ordering::Release);
                // As in JavaScript, `socket.handshake.auth` is `{}` when the client sent none.
                let auth = p.data.unwrap_or_else(|| json!({}));
                let socket = Socket::new(conn.clone(), &ns, auth, self.inner.config.max_pending_acks);
                if let Ok(mut m) = conn.sockets.lock() {
                    m.insert(p.nsp.clone(), socket.clone());
                }
                if let Ok(mut st) = ns.inner.state.lock() {
                    st.sockets.insert(socket.id().to_owned(), socket.clone());
                }
                let reply = SioPacket::new(SioType::Connect, &p.nsp, None, Some(json!({"sid": socket.id()})));
                conn.send(&reply, Vec::new());
                let handler = ns.inner.on_connection.read().ok().and_then(|h| h.clone());
                if let Some(h) = handler {
                    h(socket);
                }
            }
            SioType::Event | SioType::BinaryEvent => {
                let Some(socket) = existing else { return Ok(()) };
                let name = p.event_name().unwrap_or_default().to_owned();
                let args = Args::from_parts(p.args().to_vec(), attachments);
                let handler = socket.inner.handlers.lock().ok().and_then(|h| h.get(&name).cloned());
                let ack = p.id.map(|id| Ack { socket: socket.clone(), id, sent: false });
                match handler {
                    Some(h) => h(args, ack),
                    None => tracing::debug!(target: TRACE_TARGET, "{}: no handler for {name:?}", conn.eio.label()),
                }
            }
            SioType::Ack | SioType::BinaryAck => {
                let Some(socket) = existing else { return Ok(()) };
                let cb = p.id.and_then(|id| socket.inner.acks.lock().ok().and_then(|mut a| a.remove(&id)));
                if let Some(cb) = cb {
                    cb(Args::from_parts(p.args().to_vec(), attachments));
                }
            }
            SioType::Disconnect => {
                if let Some(socket) = existing {
                    socket.leave_all(DisconnectReason::ClientNamespaceDisconnect);
                }
            }
            SioType::ConnectError => return Err("CONNECT_ERROR from a client".into()),
        }
        Ok(())
    }
}
