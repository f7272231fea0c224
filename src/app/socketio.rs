//! Socket.IO v5 on synack's Engine.IO ([`crate::app::engineio`]), on synack's TCP.
//!
//! ```text
//! GET /socket.io/?EIO=4&transport=websocket   → 101, then one Engine.IO packet per message:
//! server: 0{"sid":…,"upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
//! client: 40{"token":"123"}      CONNECT "/" with auth   server: 40{"sid":…}
//! client: 421["echo","hi",2]     EVENT with ack id 1      server: 431["hi",2]
//! client: 451-["up",{"_placeholder":true,"num":0}]  then a binary message: BINARY_EVENT
//! server: 2  (every pingInterval)                         client: 3 (within pingTimeout)
//! ```
//!
//! The API mirrors the JavaScript server's:
//!
//! ```no_run
//! use synack::app::socketio::{Args, SocketIo};
//! let io = SocketIo::new(Default::default());
//! let all = io.clone();
//! io.on_connection(move |socket| {
//!     println!("auth: {}", socket.auth());
//!     let all = all.clone();
//!     socket.on("chat message", move |args, _ack| all.emit("chat message", args));
//!     // Every argument back, binary ones included, as `(...args, ack) => ack(...args)`.
//!     socket.on("echo", |args, ack| if let Some(ack) = ack { ack.send(args) });
//!     socket.emit("welcome", Args::new().arg("hi").arg(2).bytes(vec![1, 2, 3]));
//! });
//! ```
//!
//! Event handlers get every argument as [`Args`]: JSON values, with binary ones as
//! placeholders whose bytes are in the attachments (the wire's own shape), and, when the
//! client asked for one, an [`Ack`]. They run on the connection's reader thread, so they
//! should not block: emitting only queues.
//!
//! Both transports (WebSocket, HTTP long-polling and its upgrade) are Engine.IO's. A client
//! that has not connected to a namespace within `connect_timeout` is closed.
//!
//! The code is split by job: [`packet`] is the Socket.IO codec, `args` the arguments,
//! `api` the public API (sockets, namespaces, rooms, acks), `conn` one client's
//! connection (its packets, binary attachments, connect timeout), and `demo` the server
//! `synack serve` runs.

mod api;
mod args;
mod conn;
mod demo;
pub mod packet;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

pub use self::args::Args;
use self::conn::SioConn;
pub use self::demo::{demo, reference};
use crate::app::engineio::EngineIo;
pub use crate::app::engineio::{Config, DisconnectReason, TRACE_TARGET};

/// The path prefix the JavaScript and Python clients use by default.
pub const PATH: &str = "/socket.io/";

type ConnectionHandler = Arc<dyn Fn(Socket) + Send + Sync>;
type EventHandler = Arc<dyn Fn(Args, Option<Ack>) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(DisconnectReason) + Send + Sync>;
type AckCallback = Box<dyn FnOnce(Args) + Send>;

/// A Socket.IO server: a set of namespaces on an Engine.IO server. Cheap to clone.
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<IoInner>,
}

struct IoInner {
    config: Config,
    namespaces: RwLock<HashMap<String, Namespace>>,
    engine: EngineIo,
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
    conn: Arc<SioConn>,
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
