//! Engine.IO v4 on synack's TCP: the transport layer under Socket.IO, usable on its own as
//! the `engine.io` package is. A session is a sid, a heartbeat and a queue of packets, on one
//! of two transports:
//!
//! ```text
//! GET  /engine.io/?EIO=4&transport=polling          → 0{"sid":"…","upgrades":["websocket"],…}
//! POST /engine.io/?EIO=4&transport=polling&sid=…    4hello\x1ebAQIDBA==   (text, binary) → ok
//! GET  /engine.io/?EIO=4&transport=polling&sid=…    → 4hello\x1ebAQIDBA==  (waits for packets)
//! GET  /engine.io/?EIO=4&transport=websocket[&sid=…] → 101, then one packet per message;
//!                                                     a binary MESSAGE is a binary frame
//! ```
//!
//! A polling session upgrades the way a default client does it: `2probe` → `3probe` on the
//! new WebSocket, the pending GET (or the next one) ends with a NOOP `6`, and the client's
//! UPGRADE `5` moves the session over. The server pings every `ping_interval`; a session
//! whose pong has not come `ping_timeout` after a ping is due is over, at that instant: a
//! request arriving later finds it gone even if the heartbeat thread has not run yet.
//!
//! ```no_run
//! use synack::app::engineio::{EngineIo, Payload};
//! let eio = EngineIo::new("/engine.io/", Default::default());
//! eio.on_connection(|socket| {
//!     let me = socket.clone();
//!     // Every message back as it came, text or binary.
//!     socket.on_message(move |msg: Payload| {
//!         me.send(msg);
//!         Ok(())
//!     });
//! });
//! ```
//!
//! The parts: [`packet`] the codec, `session` a session's state and packets, `polling` and
//! `websocket` the two transports, `timer` the one thread for delayed actions.

mod get_turn;
pub mod packet;
mod polling;
mod session;
pub(crate) mod timer;
mod watch;
mod websocket;
pub(crate) use self::session::new_sid;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;

use self::packet::Wire;
use self::session::Session;
use crate::app::http::{Hook, Request, Response, Status};
use crate::app::ws::{handshake, Conn};

/// The tracing target of every Engine.IO and Socket.IO log line (one switch shows both).
pub const TRACE_TARGET: &str = "synack::socketio";

/// Heartbeat and size settings (sent to the client in the OPEN packet), and the limits.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The server pings this often.
    pub ping_interval: Duration,
    /// A pong must arrive this long after a ping, or the client is dropped.
    pub ping_timeout: Duration,
    /// Largest Engine.IO packet accepted (the WebSocket message limit, and the limit of a
    /// POST body); a Socket.IO packet with its binary attachments must fit in it too.
    pub max_payload: usize,
    /// Packets waiting for one client's writer; beyond this the client is dropped.
    pub queue: usize,
    /// Emits awaiting an acknowledgement, per socket; beyond this `emit_with_ack` refuses.
    pub max_pending_acks: usize,
    /// Polling sessions at once (each has a heartbeat thread); beyond this, `400`.
    pub max_polling_sessions: usize,
    /// Socket.IO: a client that has not connected to a namespace this long after its
    /// session opened is closed (socket.io's `connectTimeout`).
    pub connect_timeout: Duration,
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
            connect_timeout: Duration::from_millis(45_000),
        }
    }
}

impl Config {
    /// The defaults, with `SYNACK_SIO_PING_INTERVAL_MS`, `SYNACK_SIO_PING_TIMEOUT_MS` and
    /// `SYNACK_SIO_CONNECT_TIMEOUT_MS` from the environment if set (the tests use short ones).
    pub fn from_env() -> Self {
        let ms = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok()).map(Duration::from_millis);
        let floor = Duration::from_millis(10);
        let mut c = Config::default();
        if let Some(d) = ms("SYNACK_SIO_PING_INTERVAL_MS") {
            c.ping_interval = d.max(floor);
        }
        if let Some(d) = ms("SYNACK_SIO_PING_TIMEOUT_MS") {
            c.ping_timeout = d.max(floor);
        }
        if let Some(d) = ms("SYNACK_SIO_CONNECT_TIMEOUT_MS") {
            c.connect_timeout = d.max(floor);
        }
        c
    }
}

/// Why a session (or a Socket.IO socket) ended, as Socket.IO names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT for the namespace.
    ClientNamespaceDisconnect,
    /// The server disconnected the socket (`Socket::disconnect`).
    ServerNamespaceDisconnect,
    /// The connection closed (WebSocket close, TCP close, or an Engine.IO CLOSE).
    TransportClose,
    /// No pong within pingTimeout of a ping.
    PingTimeout,
    /// The client sent something we could not decode.
    ParseError,
    /// The client's queue overflowed: it stopped reading.
    TooSlow,
    /// The server closed the session (`EioSocket::close`, a connect timeout).
    ForcedClose,
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
            DisconnectReason::ForcedClose => "forced close",
        }
    }
}

/// What an Engine.IO MESSAGE carries: text or bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

type ConnectionHandler = Arc<dyn Fn(EioSocket) + Send + Sync>;
/// A message handler's `Err` is a protocol error: the session is closed with a CLOSE packet.
pub type MessageHandler = Arc<dyn Fn(Payload) -> Result<(), String> + Send + Sync>;

/// An Engine.IO server at one path. Cheap to clone.
#[derive(Clone)]
pub struct EngineIo {
    inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    config: Config,
    path: String,
    /// Sessions by sid (a later request can name any of them).
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Polling sessions the client closed with no GET waiting, and when: see
    /// [`EngineInner::raced_close`].
    closed_by_client: Mutex<HashMap<String, Instant>>,
    on_connection: RwLock<Option<ConnectionHandler>>,
    /// One line for a text packet in `--trace`.
    describe: fn(&str) -> String,
}

/// One client's session, on whichever transport it is on. Cheap to clone.
#[derive(Clone)]
pub struct EioSocket {
    session: Arc<Session>,
}

impl EngineIo {
    /// A server answering requests for `path` (`/engine.io/`; with or without the slash).
    pub fn new(path: &str, config: Config) -> EngineIo {
        EngineIo::with_describe(path, config, describe_eio)
    }

    pub(crate) fn with_describe(path: &str, config: Config, describe: fn(&str) -> String) -> EngineIo {
        let path = format!("/{}/", path.trim_matches('/'));
        let inner = EngineInner {
            config,
            path,
            sessions: Mutex::new(HashMap::new()),
            closed_by_client: Mutex::new(HashMap::new()),
            on_connection: RwLock::new(None),
            describe,
        };
        EngineIo { inner: Arc::new(inner) }
    }

    pub fn config(&self) -> Config {
        self.inner.config
    }

    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// Called for every new session, before any of its client's packets is handled (so the
    /// handlers it sets see them all).
    pub fn on_connection(&self, f: impl Fn(EioSocket) + Send + Sync + 'static) {
        if let Ok(mut h) = self.inner.on_connection.write() {
            *h = Some(Arc::new(f));
        }
    }

    /// The HTTP hook: takes over WebSocket requests for the path, answers the polling ones
    /// (and bad requests, with Engine.IO's JSON errors), declines every other path.
    pub fn hook<S: Conn>(&self, req: &mut Request, stream: &mut S) -> io::Result<Hook> {
        let path = req.route_path();
        if path != self.inner.path && path != self.inner.path.trim_end_matches('/') {
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
        let mut late = false;
        let upgrading = match &sid {
            Some(sid) => match self.session(sid) {
                None => return Ok(Hook::Respond(eio_error(1, "Session ID unknown"))),
                Some(c) => {
                    // What the client sent on the upgrading WebSocket before this request
                    // is handled first (its `3probe` goes out before this one is closed).
                    c.wait_for_upgrade_input();
                    // Only one upgrade per session.
                    if c.polling.load(Ordering::Acquire) && !c.upgrading.swap(true, Ordering::AcqRel) {
                        Some(c)
                    } else {
                        late = true;
                        None
                    }
                }
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
        if let Some(c) = &upgrading {
            // Before the 101: whatever the client sends on this WebSocket comes after it.
            let counter = Mutex::new(stream.try_clone()?);
            c.watch.start(move || counter.lock().ok()?.input_counts());
        }
        if let Err(e) = handshake::write_switching(&mut stream, &accepted) {
            if let Some(c) = &upgrading {
                c.watch.stop();
                c.upgrading.store(false, Ordering::Release);
            }
            return Err(e);
        }
        let leftover = std::mem::take(&mut req.leftover);
        let result = match upgrading {
            Some(conn) => self.upgrade(conn, stream, leftover),
            // A session already upgraded (or upgrading) is left alone: this WebSocket is
            // opened and closed, as the protocol has it.
            None if late => self.refuse_ws(stream, leftover),
            None => self.serve_ws(stream, leftover),
        };
        if let Err(e) = result {
            tracing::debug!(target: TRACE_TARGET, "engine.io connection ended: {e}");
        }
        Ok(Hook::TookOver)
    }

    /// A new session with its OPEN packet queued, announced to the connection handler.
    fn new_session(&self, label: String, polling: bool) -> Arc<Session> {
        let cfg = self.inner.config;
        let session = Session::new(Arc::downgrade(&self.inner), cfg, label, polling, self.inner.describe);
        let upgrades: &[&str] = if polling { &["websocket"] } else { &[] };
        let open_packet = json!({
            "sid": session.sid,
            "upgrades": upgrades,
            "pingInterval": cfg.ping_interval.as_millis() as u64,
            "pingTimeout": cfg.ping_timeout.as_millis() as u64,
            "maxPayload": cfg.max_payload,
        });
        session.send(vec![Wire::Text(packet::encode_eio(packet::EioType::Open, &open_packet.to_string()))]);
        // WebSocket-only sessions too: a request naming one is refused knowingly (a second
        // WebSocket is opened then closed, a polling request is a bad request).
        if let Ok(mut m) = self.inner.sessions.lock() {
            m.insert(session.sid.clone(), session.clone());
        }
        let handler = self.inner.on_connection.read().ok().and_then(|h| h.clone());
        if let Some(h) = handler {
            h(EioSocket { session: session.clone() });
        }
        session
    }

    fn session(&self, sid: &str) -> Option<Arc<Session>> {
        self.inner.sessions.lock().ok()?.get(sid).cloned()
    }
}

/// How long a GET that lost the race to its session's CLOSE is still answered as if it
/// had won.
const RACE_WINDOW: Duration = Duration::from_secs(1);

impl EngineInner {
    fn forget(&self, sid: &str) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(sid);
        }
    }

    /// The client POSTed CLOSE while no GET was waiting. A client closing a polling session
    /// often has a GET in flight beside the POST; the two come on different connections,
    /// served by different threads, so the GET may be handled second even when it arrived
    /// first. It gets what it would have got first: a NOOP, once.
    fn closed_by_client(&self, sid: &str) {
        if let Ok(mut m) = self.closed_by_client.lock() {
            let now = Instant::now();
            m.retain(|_, at| now.duration_since(*at) < RACE_WINDOW);
            m.insert(sid.to_owned(), now);
        }
    }

    /// Whether a GET for `sid` is that GET (and it may be only one).
    fn raced_close(&self, sid: &str) -> bool {
        self.closed_by_client.lock().ok().and_then(|mut m| m.remove(sid)).is_some_and(|at| at.elapsed() < RACE_WINDOW)
    }
}

impl EioSocket {
    /// The session id (`sid`).
    pub fn id(&self) -> &str {
        &self.session.sid
    }

    /// The client's address, for logs.
    pub fn label(&self) -> &str {
        &self.session.label
    }

    /// `"polling"` or `"websocket"`.
    pub fn transport(&self) -> &'static str {
        if self.session.polling.load(Ordering::Acquire) {
            "polling"
        } else {
            "websocket"
        }
    }

    /// Queues one MESSAGE; never blocks (a client whose queue is full is dropped).
    pub fn send(&self, msg: Payload) {
        self.send_all(vec![msg]);
    }

    /// Queues several MESSAGEs that go out back to back, nothing from another thread in
    /// between (a Socket.IO packet and its binary attachments).
    pub fn send_all(&self, msgs: Vec<Payload>) {
        let wires = msgs
            .into_iter()
            .map(|m| match m {
                Payload::Text(t) => Wire::Text(packet::encode_eio(packet::EioType::Message, &t)),
                Payload::Binary(b) => Wire::Binary(b),
            })
            .collect();
        self.session.send(wires);
    }

    /// Handles the client's messages; replaces an earlier handler. An `Err` closes the
    /// session as a protocol error (a CLOSE packet; over WebSocket, close code 1002).
    pub fn on_message(&self, f: impl Fn(Payload) -> Result<(), String> + Send + Sync + 'static) {
        if let Ok(mut h) = self.session.on_message.write() {
            *h = Some(Arc::new(f));
        }
    }

    /// Runs once when the session ends, with the reason.
    pub fn on_close(&self, f: impl FnOnce(DisconnectReason) + Send + 'static) {
        if let Ok(mut h) = self.session.on_close.lock() {
            h.push(Box::new(f));
        }
    }

    /// Ends the session from the server's side: at once over WebSocket or with a GET
    /// waiting; otherwise at the client's next GET (which gets the CLOSE), as the
    /// reference server does.
    pub fn close(&self) {
        self.session.close_by_server();
    }

    /// When the session's handshake was handled.
    pub fn opened(&self) -> Instant {
        self.session.opened
    }

    pub fn is_closed(&self) -> bool {
        self.session.closed.load(Ordering::Acquire)
    }

    /// Whether two handles are the same session.
    pub fn same(&self, other: &EioSocket) -> bool {
        Arc::ptr_eq(&self.session, &other.session)
    }
}

/// The raw Engine.IO echo `synack serve` offers at `/engine.io/`: every message back as
/// it came, text or binary.
pub fn echo(config: Config) -> EngineIo {
    let eio = EngineIo::new("/engine.io/", config);
    eio.on_connection(|socket| {
        let me = socket.clone();
        socket.on_message(move |msg| {
            me.send(msg);
            Ok(())
        });
    });
    eio
}

/// `PING`, `MESSAGE hello`: an Engine.IO packet in one line.
pub fn describe_eio(text: &str) -> String {
    match packet::decode_eio(text) {
        Err(e) => format!("malformed ({e})"),
        Ok((t, "")) => t.name().to_string(),
        Ok((t, data)) => format!("{} {data}", t.name()),
    }
}

/// Engine.IO's error answer for a bad request on its path.
pub(crate) fn eio_error(code: u32, message: &str) -> Response {
    let mut r = Response::text(Status(400), json!({"code": code, "message": message}).to_string());
    r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("Content-Type"));
    r.headers.push(("Content-Type", "application/json".into()));
    r
}
