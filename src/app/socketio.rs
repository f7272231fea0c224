//! Socket.IO v5 over Engine.IO v4, WebSocket transport, on synack's TCP.
//!
//! ```text
//! GET /socket.io/?EIO=4&transport=websocket   → 101, then one Engine.IO packet per message:
//! server: 0{"sid":…,"upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
//! client: 40                     CONNECT "/"          server: 40{"sid":…}
//! client: 421["echo","hi"]       EVENT with ack id 1  server: 431["hi"]
//! server: 2  (every pingInterval)                     client: 3 (within pingTimeout)
//! ```
//!
//! The API mirrors the JavaScript server's:
//!
//! ```no_run
//! use synack::app::socketio::SocketIo;
//! let io = SocketIo::new(Default::default());
//! let all = io.clone();
//! io.of("/").on_connection(move |socket| {
//!     let all = all.clone();
//!     socket.on("chat message", move |data, _ack| all.emit("chat message", data));
//!     socket.on("echo", |data, ack| if let Some(ack) = ack { ack.send(data) });
//! });
//! ```
//!
//! Event handlers get the event's first argument (`Null` when there is none; further
//! arguments are dropped) and, when the client asked for one, an [`Ack`]. They run on the
//! connection's reader thread, so they should not block: emitting only queues.
//!
//! Both transports: WebSocket directly, or HTTP long-polling (`GET` waits for packets,
//! `POST` delivers them, several packets joined by `\x1e`) upgraded to WebSocket the way a
//! default client does it: `2probe` → `3probe` on the new WebSocket, a NOOP (`6`) to end
//! the pending GET, then the client's UPGRADE (`5`) moves the session over.
//!
//! Not supported: binary attachments (a BINARY_EVENT / BINARY_ACK gets a CONNECT_ERROR and
//! the connection is closed; so does a binary WebSocket message), and the client's own
//! connect timeout (a client that never sends CONNECT is dropped by the heartbeat only if it
//! stops answering pings).
//!
//! Each connection has a bounded outgoing queue drained by its own writer thread (which
//! also sends the pings): a client that stops reading overflows only its own queue and is
//! dropped, so `io.emit` never waits for a slow client.

pub mod packet;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

use self::packet::{decode_eio, describe, encode_eio, EioType, SioPacket, SioType};
use crate::app::http::{Hook, Request, Response, Status};
use crate::app::ws::{handshake, open, Conn, Limits, WsReceiver, WsSender};

/// The tracing target of every Socket.IO log line.
pub const TRACE_TARGET: &str = "synack::socketio";

/// The path prefix the JavaScript and Python clients use by default.
pub const PATH: &str = "/socket.io/";

/// Heartbeat and size settings, sent to the client in the OPEN packet.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The server pings this often.
    pub ping_interval: Duration,
    /// A pong must arrive this long after a ping, or the client is dropped.
    pub ping_timeout: Duration,
    /// Largest Engine.IO packet accepted (and the WebSocket message limit).
    pub max_payload: usize,
    /// Packets waiting for one client's writer; beyond this the client is dropped.
    pub queue: usize,
    /// Emits awaiting an acknowledgement, per socket; beyond this `emit_with_ack` refuses.
    pub max_pending_acks: usize,
    /// Polling sessions at once (each has a heartbeat thread); beyond this, `503`.
    pub max_polling_sessions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            queue: 1024,
            max_pending_acks: 1024,
            max_polling_sessions: 1000,
        }
    }
}

impl Config {
    /// The defaults, with `SYNACK_SIO_PING_INTERVAL_MS` / `SYNACK_SIO_PING_TIMEOUT_MS` from
    /// the environment if set (the tests use short heartbeats this way).
    pub fn from_env() -> Self {
        let ms = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok()).map(Duration::from_millis);
        let mut c = Config::default();
        if let Some(d) = ms("SYNACK_SIO_PING_INTERVAL_MS") {
            c.ping_interval = d.max(Duration::from_millis(10));
        }
        if let Some(d) = ms("SYNACK_SIO_PING_TIMEOUT_MS") {
            c.ping_timeout = d.max(Duration::from_millis(10));
        }
        c
    }
}

/// Why a socket left, as Socket.IO names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT for the namespace.
    ClientNamespaceDisconnect,
    /// [`Socket::disconnect`] was called.
    ServerNamespaceDisconnect,
    /// The connection closed (WebSocket close, TCP close, or an Engine.IO CLOSE).
    TransportClose,
    /// No pong within pingTimeout of a ping.
    PingTimeout,
    /// The client sent something we could not decode.
    ParseError,
    /// The client's queue overflowed: it stopped reading.
    TooSlow,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::TooSlow => "transport error",
        }
    }
}

type ConnectionHandler = Arc<dyn Fn(Socket) + Send + Sync>;
type EventHandler = Arc<dyn Fn(Value, Option<Ack>) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(DisconnectReason) + Send + Sync>;
type AckCallback = Box<dyn FnOnce(Value) + Send>;

/// A Socket.IO server: a set of namespaces. Cheap to clone.
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<IoInner>,
}

struct IoInner {
    config: Config,
    namespaces: RwLock<HashMap<String, Namespace>>,
    /// Engine.IO sessions by sid, for the polling transport and its upgrade.
    sessions: Mutex<HashMap<String, Arc<ConnShared>>>,
}

/// One namespace (`/`, `/chat`, …): its connection handler, sockets and rooms.
#[derive(Clone)]
pub struct Namespace {
    inner: Arc<NsInner>,
}

struct NsInner {
    name: String,
    on_connection: RwLock<Option<ConnectionHandler>>,
    state: Mutex<NsState>,
}

#[derive(Default)]
struct NsState {
    sockets: HashMap<String, Socket>,
    rooms: HashMap<String, HashSet<String>>,
}

impl Default for SocketIo {
    fn default() -> Self {
        SocketIo::new(Config::default())
    }
}

impl SocketIo {
    /// A server with the namespace `/` (as the JavaScript server always has).
    pub fn new(config: Config) -> Self {
        let io = SocketIo {
            inner: Arc::new(IoInner {
                config,
                namespaces: RwLock::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
            }),
        };
        io.of("/");
        io
    }

    pub fn config(&self) -> Config {
        self.inner.config
    }

    /// The namespace `name`, created on first use. Clients may connect only to namespaces
    /// created here; any other gets CONNECT_ERROR "Invalid namespace".
    pub fn of(&self, name: &str) -> Namespace {
        let name = if name.starts_with('/') { name.to_owned() } else { format!("/{name}") };
        if let Ok(map) = self.inner.namespaces.read() {
            if let Some(ns) = map.get(&name) {
                return ns.clone();
            }
        }
        let fresh = Namespace {
            inner: Arc::new(NsInner { name: name.clone(), on_connection: RwLock::new(None), state: Mutex::default() }),
        };
        match self.inner.namespaces.write() {
            Ok(mut map) => map.entry(name).or_insert(fresh).clone(),
            Err(_) => fresh,
        }
    }

    fn lookup(&self, name: &str) -> Option<Namespace> {
        self.inner.namespaces.read().ok()?.get(name).cloned()
    }

    /// `io.on("connection", …)` on `/`.
    pub fn on_connection(&self, f: impl Fn(Socket) + Send + Sync + 'static) {
        self.of("/").on_connection(f);
    }

    /// To every socket on `/`.
    pub fn emit(&self, event: &str, data: Value) {
        self.of("/").emit(event, data);
    }

    /// To the sockets on `/` in `room`.
    pub fn to(&self, room: &str) -> Broadcast {
        self.of("/").to(room)
    }

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

    /// A new Engine.IO session with its OPEN packet queued.
    fn new_conn(&self, label: String, upgrades: &[&str]) -> Arc<ConnShared> {
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

    fn session(&self, sid: &str) -> Option<Arc<ConnShared>> {
        self.inner.sessions.lock().ok()?.get(sid).cloned()
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
    fn upgrade<S: Conn>(&self, conn: Arc<ConnShared>, stream: S, leftover: Vec<u8>) -> io::Result<()> {
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

    /// `transport=polling`: the handshake GET, a long-poll GET, or a POST of packets.
    fn polling<S: Conn>(&self, req: &mut Request, stream: &mut S, sid: Option<String>) -> io::Result<Hook> {
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

    /// One Engine.IO packet from the client.
    fn on_packet(&self, conn: &Arc<ConnShared>, text: &str) {
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
    fn fail(&self, conn: &Arc<ConnShared>, why: &str) {
        tracing::info!(target: TRACE_TARGET, "sio {}: closing: {why}", conn.label);
        conn.send(encode_eio(EioType::Close, ""));
        self.end(conn, DisconnectReason::ParseError);
    }

    /// Ends the session once (from the reader or the writer): every socket leaves with
    /// `reason`, and the writer is told to close the WebSocket.
    fn end(&self, conn: &Arc<ConnShared>, reason: DisconnectReason) {
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
fn trace_line(text: &str) -> String {
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
fn eio_error(code: u32, message: &str) -> Response {
    let mut r = Response::text(Status(400), json!({"code": code, "message": message}).to_string());
    r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Content-Type"));
    r.headers.push(("Content-Type", "application/json".into()));
    r
}

fn new_sid() -> String {
    let mut b = [0u8; 15];
    if getrandom::fill(&mut b).is_err() {
        // Not a secret (Socket.IO sids are identifiers, not credentials); unique is enough.
        static N: AtomicU64 = AtomicU64::new(1);
        b[..8].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

enum Outgoing {
    Text(String),
    Stop,
}

/// What the reader, the writer and every socket of one connection share.
struct ConnShared {
    sid: String,
    tx: SyncSender<Outgoing>,
    /// The queue's other end: taken by the WebSocket writer; long-poll GETs borrow it.
    queue: Mutex<Option<Receiver<Outgoing>>>,
    closed: AtomicBool,
    /// On the polling transport (not yet upgraded).
    polling: AtomicBool,
    /// A WebSocket is probing to take this polling session over.
    upgrading: AtomicBool,
    /// A long-poll GET is waiting.
    get_busy: AtomicBool,
    /// The queue overflowed; the writer closes with 1008.
    slow: AtomicBool,
    /// A pong arrived since the last ping.
    pong: AtomicBool,
    reason: Mutex<Option<DisconnectReason>>,
    /// Connected namespaces → their socket.
    sockets: Mutex<HashMap<String, Socket>>,
    label: String,
    trace: bool,
}

impl ConnShared {
    /// Queues one Engine.IO packet; never blocks. A full queue marks the client slow.
    fn send(&self, text: String) {
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

    fn send_sio(&self, p: &SioPacket) {
        self.send(encode_eio(EioType::Message, &p.encode()));
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

/// One client's connection to one namespace. Cheap to clone.
#[derive(Clone)]
pub struct Socket {
    inner: Arc<SocketInner>,
}

struct SocketInner {
    id: String,
    ns: Namespace,
    conn: Arc<ConnShared>,
    auth: Value,
    handlers: Mutex<HashMap<String, EventHandler>>,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    rooms: Mutex<HashSet<String>>,
    acks: Mutex<HashMap<u64, AckCallback>>,
    next_ack: AtomicU64,
    max_pending_acks: usize,
    connected: AtomicBool,
}

impl Socket {
    fn new(conn: Arc<ConnShared>, ns: &Namespace, auth: Value, max_pending_acks: usize) -> Socket {
        let id = new_sid();
        let s = Socket {
            inner: Arc::new(SocketInner {
                id: id.clone(),
                ns: ns.clone(),
                conn,
                auth,
                handlers: Mutex::default(),
                on_disconnect: Mutex::default(),
                rooms: Mutex::default(),
                acks: Mutex::default(),
                next_ack: AtomicU64::new(0),
                max_pending_acks,
                connected: AtomicBool::new(true),
            }),
        };
        // As in the JavaScript server, every socket is in a room named by its id.
        s.join(&id);
        s
    }

    /// This socket's id (not the Engine.IO session id).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn namespace(&self) -> &str {
        &self.inner.ns.inner.name
    }

    /// The CONNECT packet's payload (`auth` in the JavaScript client), `Null` if none.
    pub fn auth(&self) -> &Value {
        &self.inner.auth
    }

    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Handles `event`; replaces an earlier handler for it.
    pub fn on(&self, event: &str, f: impl Fn(Value, Option<Ack>) + Send + Sync + 'static) {
        if let Ok(mut h) = self.inner.handlers.lock() {
            h.insert(event.to_owned(), Arc::new(f));
        }
    }

    pub fn on_disconnect(&self, f: impl Fn(DisconnectReason) + Send + Sync + 'static) {
        if let Ok(mut h) = self.inner.on_disconnect.lock() {
            h.push(Arc::new(f));
        }
    }

    /// Sends `event` with one argument.
    pub fn emit(&self, event: &str, data: Value) {
        self.emit_packet(event, data, None);
    }

    /// Sends `event` and calls `callback` with the client's first ack argument. Returns
    /// false (and drops the callback) if the socket is disconnected or too many acks are pending.
    pub fn emit_with_ack(&self, event: &str, data: Value, callback: impl FnOnce(Value) + Send + 'static) -> bool {
        let id = self.inner.next_ack.fetch_add(1, Ordering::Relaxed);
        let Ok(mut acks) = self.inner.acks.lock() else { return false };
        // Checked under the lock `leave_all` clears the acks with, so none is left behind.
        if !self.connected() || acks.len() >= self.inner.max_pending_acks {
            return false;
        }
        acks.insert(id, Box::new(callback));
        drop(acks);
        self.emit_packet(event, data, Some(id));
        true
    }

    fn emit_packet(&self, event: &str, data: Value, id: Option<u64>) {
        if !self.connected() {
            return;
        }
        let p = SioPacket::new(SioType::Event, self.namespace(), id, Some(json!([event, data])));
        self.inner.conn.send_sio(&p);
    }

    pub fn join(&self, room: &str) {
        if let Ok(mut r) = self.inner.rooms.lock() {
            r.insert(room.to_owned());
        }
        if let Ok(mut st) = self.inner.ns.inner.state.lock() {
            st.rooms.entry(room.to_owned()).or_default().insert(self.inner.id.clone());
        }
    }

    pub fn leave(&self, room: &str) {
        if let Ok(mut r) = self.inner.rooms.lock() {
            r.remove(room);
        }
        if let Ok(mut st) = self.inner.ns.inner.state.lock() {
            remove_from_room(&mut st, room, &self.inner.id);
        }
    }

    pub fn rooms(&self) -> Vec<String> {
        self.inner.rooms.lock().map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }

    /// Disconnects this socket from its namespace (the connection stays open for others).
    pub fn disconnect(&self) {
        if self.connected() {
            self.inner.conn.send_sio(&SioPacket::new(SioType::Disconnect, self.namespace(), None, None));
            if let Ok(mut m) = self.inner.conn.sockets.lock() {
                m.remove(self.namespace());
            }
            self.leave_all(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// Leaves the namespace: out of its rooms, the disconnect handlers run, and the
    /// handlers dropped (they often hold clones of this socket; that would be a cycle).
    fn leave_all(&self, reason: DisconnectReason) {
        if !self.inner.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Ok(mut m) = self.inner.conn.sockets.lock() {
            if m.get(self.namespace()).is_some_and(|s| Arc::ptr_eq(&s.inner, &self.inner)) {
                m.remove(self.namespace());
            }
        }
        let rooms: Vec<String> = self.inner.rooms.lock().map(|mut r| r.drain().collect()).unwrap_or_default();
        if let Ok(mut st) = self.inner.ns.inner.state.lock() {
            for room in &rooms {
                remove_from_room(&mut st, room, &self.inner.id);
            }
            st.sockets.remove(&self.inner.id);
        }
        let handlers: Vec<DisconnectHandler> =
            self.inner.on_disconnect.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
        for h in handlers {
            h(reason);
        }
        if let Ok(mut h) = self.inner.handlers.lock() {
            h.clear();
        }
        if let Ok(mut a) = self.inner.acks.lock() {
            a.clear();
        }
    }
}

fn remove_from_room(st: &mut NsState, room: &str, id: &str) {
    if let Some(members) = st.rooms.get_mut(room) {
        members.remove(id);
        if members.is_empty() {
            st.rooms.remove(room);
        }
    }
}

/// The client's request for an acknowledgement; answer it once with [`Ack::send`].
pub struct Ack {
    socket: Socket,
    id: u64,
    sent: bool,
}

impl Ack {
    /// Acknowledges with one argument.
    pub fn send(self, data: Value) {
        self.send_args(vec![data]);
    }

    /// Acknowledges with any number of arguments.
    pub fn send_args(mut self, args: Vec<Value>) {
        self.sent = true;
        let p = SioPacket::new(SioType::Ack, self.socket.namespace(), Some(self.id), Some(Value::Array(args)));
        self.socket.inner.conn.send_sio(&p);
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if !self.sent {
            tracing::debug!(target: TRACE_TARGET, "ack {} dropped unanswered", self.id);
        }
    }
}

impl Namespace {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn on_connection(&self, f: impl Fn(Socket) + Send + Sync + 'static) {
        if let Ok(mut h) = self.inner.on_connection.write() {
            *h = Some(Arc::new(f));
        }
    }

    /// To every socket in this namespace.
    pub fn emit(&self, event: &str, data: Value) {
        for s in self.sockets() {
            s.emit(event, data.clone());
        }
    }

    pub fn to(&self, room: &str) -> Broadcast {
        Broadcast { ns: self.clone(), rooms: vec![room.to_owned()] }
    }

    pub fn sockets(&self) -> Vec<Socket> {
        self.inner.state.lock().map(|st| st.sockets.values().cloned().collect()).unwrap_or_default()
    }
}

/// `io.to(room)…`: an emit to the sockets in any of `rooms`.
pub struct Broadcast {
    ns: Namespace,
    rooms: Vec<String>,
}

impl Broadcast {
    pub fn to(mut self, room: &str) -> Broadcast {
        self.rooms.push(room.to_owned());
        self
    }

    pub fn emit(&self, event: &str, data: Value) {
        // Collected first, so no namespace lock is held while queueing.
        let targets: Vec<Socket> = match self.ns.inner.state.lock() {
            Ok(st) => {
                let ids: HashSet<&String> = self.rooms.iter().filter_map(|r| st.rooms.get(r)).flatten().collect();
                ids.into_iter().filter_map(|id| st.sockets.get(id).cloned()).collect()
            }
            Err(_) => Vec::new(),
        };
        for s in targets {
            s.emit(event, data.clone());
        }
    }
}

/// `synack serve`'s demo: on `/`, `chat message` goes to everyone, `echo` is acknowledged
/// with its payload, `join` puts the socket in a room (acknowledged with the room name),
/// and `room message` `{"room":…,…}` goes to that room. `/chat` has `echo` too, to show a
/// custom namespace.
pub fn demo(config: Config) -> SocketIo {
    let io = SocketIo::new(config);
    let all = io.clone();
    io.on_connection(move |socket| {
        let io = all.clone();
        socket.on("chat message", move |data, _| io.emit("chat message", data));
        socket.on("echo", |data, ack| {
            if let Some(ack) = ack {
                ack.send(data);
            }
        });
        let me = socket.clone();
        socket.on("join", move |data, ack| {
            if let Some(room) = data.as_str() {
                me.join(room);
                if let Some(ack) = ack {
                    ack.send(json!(room));
                }
            }
        });
        let io = all.clone();
        socket.on("room message", move |data, _| {
            if let Some(room) = data.get("room").and_then(Value::as_str) {
                io.to(room).emit("room message", data.clone());
            }
        });
    });
    io.of("/chat").on_connection(|socket| {
        socket.on("echo", |data, ack| {
            if let Some(ack) = ack {
                ack.send(data);
            }
        });
    });
    io
}

#[cfg(test)]
mod tests;
