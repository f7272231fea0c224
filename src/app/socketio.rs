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
//!
//! The code is split by job: [`packet`] is the wire codec, `api` the public API
//! (sockets, namespaces, rooms, acks), `engine` the Engine.IO session (the HTTP hook,
//! incoming packets, the session's end), `websocket` and `polling` the two transports,
//! and `demo` the server `synack serve` runs.

mod api;
mod demo;
mod engine;
pub mod packet;
mod polling;
mod websocket;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;

pub use self::demo::demo;

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

/// The client's request for an acknowledgement; answer it once with [`Ack::send`].
pub struct Ack {
    socket: Socket,
    id: u64,
    sent: bool,
}

/// `io.to(room)…`: an emit to the sockets in any of `rooms`.
pub struct Broadcast {
    ns: Namespace,
    rooms: Vec<String>,
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

#[cfg(test)]
mod tests;
