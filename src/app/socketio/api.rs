//! The public API: [`SocketIo`]'s namespaces and broadcasts, [`Socket`] (events, rooms,
//! acks), [`Ack`], [`Namespace`] and [`Broadcast`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use super::conn::SioConn;
use super::packet::{SioPacket, SioType};
use super::*;
use crate::app::engineio::{new_sid, EngineIo};

impl Default for SocketIo {
    fn default() -> Self {
        SocketIo::new(Config::default())
    }
}

impl SocketIo {
    /// A server at `/socket.io/` with the namespace `/` (as the JavaScript server always has).
    pub fn new(config: Config) -> Self {
        let engine = EngineIo::with_describe(PATH, config, super::packet::describe);
        let io = SocketIo { inner: Arc::new(IoInner { config, namespaces: RwLock::new(HashMap::new()), engine }) };
        let weak = Arc::downgrade(&io.inner);
        io.inner.engine.on_connection(move |eio| match weak.upgrade() {
            Some(inner) => SocketIo { inner }.attach(eio),
            None => eio.close(),
        });
        io.of("/");
        io
    }

    pub fn config(&self) -> Config {
        self.inner.config
    }

    /// The Engine.IO server underneath.
    pub fn engine(&self) -> &EngineIo {
        &self.inner.engine
    }

    /// The HTTP hook: takes over `/socket.io/` WebSocket requests, answers the polling ones
    /// and bad requests, declines every other path.
    pub fn hook<S: crate::app::ws::Conn>(
        &self,
        req: &mut crate::app::http::Request,
        stream: &mut S,
    ) -> std::io::Result<crate::app::http::Hook> {
        self.inner.engine.hook(req, stream)
    }

    /// Runs one client on an upgraded WebSocket until it leaves.
    pub fn serve_ws<S: crate::app::ws::Conn>(&self, stream: S, leftover: Vec<u8>) -> std::io::Result<()> {
        self.inner.engine.serve_ws(stream, leftover)
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

    pub(super) fn lookup(&self, name: &str) -> Option<Namespace> {
        self.inner.namespaces.read().ok()?.get(name).cloned()
    }

    /// `io.on("connection", …)` on `/`.
    pub fn on_connection(&self, f: impl Fn(Socket) + Send + Sync + 'static) {
        self.of("/").on_connection(f);
    }

    /// To every socket on `/`.
    pub fn emit(&self, event: &str, args: impl Into<Args>) {
        self.of("/").emit(event, args);
    }

    /// To the sockets on `/` in `room`.
    pub fn to(&self, room: &str) -> Broadcast {
        self.of("/").to(room)
    }
}

impl Socket {
    pub(super) fn new(conn: Arc<SioConn>, ns: &Namespace, auth: Value, max_pending_acks: usize) -> Socket {
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

    /// The CONNECT packet's payload (`auth` in the JavaScript client, `socket.handshake.auth`
    /// in the JavaScript server): `{}` if the client sent none.
    pub fn auth(&self) -> &Value {
        &self.inner.auth
    }

    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Handles `event` with all its arguments; replaces an earlier handler for it.
    pub fn on(&self, event: &str, f: impl Fn(Args, Option<Ack>) + Send + Sync + 'static) {
        if let Ok(mut h) = self.inner.handlers.lock() {
            h.insert(event.to_owned(), Arc::new(f));
        }
    }

    pub fn on_disconnect(&self, f: impl Fn(DisconnectReason) + Send + Sync + 'static) {
        if let Ok(mut h) = self.inner.on_disconnect.lock() {
            h.push(Arc::new(f));
        }
    }

    /// Sends `event` with `args`: one JSON value, or [`Args`] for several, binary included.
    pub fn emit(&self, event: &str, args: impl Into<Args>) {
        self.emit_packet(event, args.into(), None);
    }

    /// Sends `event` and calls `callback` with the client's ack arguments. Returns false
    /// (and drops the callback) if the socket is disconnected or too many acks are pending.
    pub fn emit_with_ack(
        &self,
        event: &str,
        args: impl Into<Args>,
        callback: impl FnOnce(Args) + Send + 'static,
    ) -> bool {
        let id = self.inner.next_ack.fetch_add(1, Ordering::Relaxed);
        let Ok(mut acks) = self.inner.acks.lock() else { return false };
        // Checked under the lock `leave_all` clears the acks with, so none is left behind.
        if !self.connected() || acks.len() >= self.inner.max_pending_acks {
            return false;
        }
        acks.insert(id, Box::new(callback));
        drop(acks);
        self.emit_packet(event, args.into(), Some(id));
        true
    }

    fn emit_packet(&self, event: &str, args: Args, id: Option<u64>) {
        if !self.connected() {
            return;
        }
        self.inner.conn.send_args(SioType::Event, self.namespace(), id, Some(event), args);
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
            self.inner.conn.send(&SioPacket::new(SioType::Disconnect, self.namespace(), None, None), Vec::new());
            if let Ok(mut m) = self.inner.conn.sockets.lock() {
                m.remove(self.namespace());
            }
            self.leave_all(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// Leaves the namespace: out of its rooms, the disconnect handlers run, and the
    /// handlers dropped (they often hold clones of this socket; that would be a cycle).
    pub(super) fn leave_all(&self, reason: DisconnectReason) {
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

impl Ack {
    /// Acknowledges with `args`: one JSON value, or [`Args`] for several, binary included.
    pub fn send(mut self, args: impl Into<Args>) {
        self.sent = true;
        let conn = &self.socket.inner.conn;
        conn.send_args(SioType::Ack, self.socket.namespace(), Some(self.id), None, args.into());
    }

    /// Acknowledges with several JSON values.
    pub fn send_args(self, args: Vec<Value>) {
        self.send(Args::from_values(args));
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
    pub fn emit(&self, event: &str, args: impl Into<Args>) {
        let args = args.into();
        for s in self.sockets() {
            s.emit(event, args.clone());
        }
    }

    pub fn to(&self, room: &str) -> Broadcast {
        Broadcast { ns: self.clone(), rooms: vec![room.to_owned()] }
    }

    pub fn sockets(&self) -> Vec<Socket> {
        self.inner.state.lock().map(|st| st.sockets.values().cloned().collect()).unwrap_or_default()
    }
}

impl Broadcast {
    pub fn to(mut self, room: &str) -> Broadcast {
        self.rooms.push(room.to_owned());
        self
    }

    pub fn emit(&self, event: &str, args: impl Into<Args>) {
        let args = args.into();
        // Collected first, so no namespace lock is held while queueing.
        let targets: Vec<Socket> = match self.ns.inner.state.lock() {
            Ok(st) => {
                let ids: HashSet<&String> = self.rooms.iter().filter_map(|r| st.rooms.get(r)).flatten().collect();
                ids.into_iter().filter_map(|id| st.sockets.get(id).cloned()).collect()
            }
            Err(_) => Vec::new(),
        };
        for s in targets {
            s.emit(event, args.clone());
        }
    }
}
