//! `/chat`: every text message any client sends goes to every client (the sender too), as
//! it was sent; joins and leaves are announced as `{"event":"join","id":N}` and
//! `{"event":"leave","id":N}`.
//!
//! Each client has a bounded queue and a writer thread of its own. A broadcast only
//! `try_send`s into the queues, so it never waits for anybody: a client that stops reading
//! fills its TCP window, then its queue, and is then dropped (closed with 1008), while the
//! others go on. All broadcasts pass through one lock, so every client sees the messages in
//! the same order.
//!
//! The queue is bounded in bytes as well as in messages, and generously: a client that reads
//! normally must survive another client's burst (a few hundred messages sent as fast as the
//! network allows), and only one that stops reading for a while should run out.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, Utf8Bytes};

use crate::app::ws::{handshake, open, Conn, Limits, TRACE_TARGET};

/// Largest chat message accepted (a bigger one closes that client with 1009).
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;
/// What a client may have waiting, beyond its TCP buffers, before it counts as stalled and
/// is dropped: this bounds the memory a stalled client can pin.
pub(crate) const QUEUE: QueueLimit = QueueLimit { messages: 4096, bytes: 4 << 20 };

/// A client's queue limit: whichever is reached first.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimit {
    pub messages: usize,
    pub bytes: usize,
}

/// A client's end of its queue; counts the bytes it takes out.
pub struct Inbox {
    rx: Receiver<Utf8Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Inbox {
    /// The next message; `None` once the hub has dropped this client and the queue is empty.
    pub fn recv(&self) -> Option<Utf8Bytes> {
        self.rx.recv().ok().map(|m| self.taken(m))
    }

    /// The next message if one is waiting.
    pub fn try_recv(&self) -> Result<Utf8Bytes, mpsc::TryRecvError> {
        self.rx.try_recv().map(|m| self.taken(m))
    }

    fn taken(&self, m: Utf8Bytes) -> Utf8Bytes {
        self.queued.fetch_sub(m.len(), Ordering::AcqRel);
        m
    }
}

struct Client {
    id: u64,
    tx: SyncSender<Utf8Bytes>,
    /// Bytes in the queue; the message count is the channel's own bound.
    queued: Arc<AtomicUsize>,
}
/// Messages written per flush by a client's writer.
const BATCH: usize = 64;

/// The set of connected chat clients.
pub struct Hub {
    inner: Mutex<HubInner>,
    limit: QueueLimit,
}

struct HubInner {
    next_id: u64,
    /// In join order; a few hundred at most, so a Vec beats a map.
    clients: Vec<Client>,
    bytes_limit: usize,
}

impl Hub {
    pub fn new(limit: QueueLimit) -> Self {
        let limit = QueueLimit { messages: limit.messages.max(1), bytes: limit.bytes.max(1) };
        Hub { inner: Mutex::new(HubInner { next_id: 1, clients: Vec::new(), bytes_limit: limit.bytes }), limit }
    }

    /// Registers a client and announces it to everyone, itself included (so a client's
    /// first message tells it its own id). Returns the id and the client's queue.
    pub fn join(&self) -> (u64, Inbox) {
        let (tx, rx) = mpsc::sync_channel(self.limit.messages);
        let queued = Arc::new(AtomicUsize::new(0));
        let inbox = Inbox { rx, queued: queued.clone() };
        let Ok(mut inner) = self.inner.lock() else { return (0, inbox) };
        let id = inner.next_id;
        inner.next_id += 1;
        inner.clients.push(Client { id, tx, queued });
        inner.broadcast(event("join", id));
        (id, inbox)
    }

    /// Unregisters a client (if still there) and announces that it left.
    pub fn leave(&self, id: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            if inner.remove(id) {
                inner.broadcast(event("leave", id));
            }
        }
    }

    pub fn broadcast(&self, text: Utf8Bytes) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.broadcast(text);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.clients.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl HubInner {
    fn remove(&mut self, id: u64) -> bool {
        let before = self.clients.len();
        self.clients.retain(|c| c.id != id);
        self.clients.len() != before
    }

    /// Queues `text` for every client. Clients whose queue is full (stalled) or whose
    /// writer is gone are removed, and their leaving is announced in turn; each round
    /// removes at least one client, so this ends.
    fn broadcast(&mut self, text: Utf8Bytes) {
        let mut queue = vec![text];
        while let Some(text) = queue.pop() {
            let mut gone = Vec::new();
            for c in &self.clients {
                // Counted before sending so the writer's decrement can never come first.
                let before = c.queued.fetch_add(text.len(), Ordering::AcqRel);
                let sent = if before + text.len() > self.bytes_limit {
                    Err(TrySendError::Full(()))
                } else {
                    c.tx.try_send(text.clone()).map_err(|e| match e {
                        TrySendError::Full(_) => TrySendError::Full(()),
                        TrySendError::Disconnected(_) => TrySendError::Disconnected(()),
                    })
                };
                match sent {
                    Ok(()) => {}
                    Err(TrySendError::Full(())) => {
                        tracing::info!(target: TRACE_TARGET, "chat: client {} is not reading; dropping it", c.id);
                        gone.push(c.id);
                    }
                    Err(TrySendError::Disconnected(())) => gone.push(c.id),
                }
                if !matches!(sent, Ok(())) {
                    c.queued.fetch_sub(text.len(), Ordering::AcqRel);
                }
            }
            // Dropping a client's sender tells its writer to close the connection.
            for id in gone {
                self.remove(id);
                queue.insert(0, event("leave", id));
            }
        }
    }
}

/// `{"event":"join","id":3}`
pub(crate) fn event(kind: &str, id: u64) -> Utf8Bytes {
    serde_json::json!({ "event": kind, "id": id }).to_string().into()
}

/// Serves one `/chat` connection: register, write the `101`, then read messages and
/// broadcast them while a writer thread delivers this client's queue.
pub(crate) fn run<S: Conn>(
    hub: &Hub,
    mut stream: S,
    accepted: &handshake::Accepted,
    leftover: Vec<u8>,
    limits: Limits,
    trace: bool,
) -> io::Result<()> {
    // Registered before the 101: once the client knows it is connected, it is sure to
    // receive every broadcast from then on.
    let (id, queue) = hub.join();
    let result = session(hub, id, queue, &mut stream, accepted, leftover, limits, trace);
    hub.leave(id);
    result
}

#[allow(clippy::too_many_arguments)]
fn session<S: Conn>(
    hub: &Hub,
    id: u64,
    queue: Inbox,
    stream: &mut S,
    accepted: &handshake::Accepted,
    leftover: Vec<u8>,
    limits: Limits,
    trace: bool,
) -> io::Result<()> {
    handshake::write_switching(stream, accepted)?;
    let (tx, mut rx) = open(stream.try_clone()?, leftover, limits, trace)?;
    // Set when this side ends the session, so the writer can tell that from being dropped.
    let ending = Arc::new(AtomicBool::new(false));
    let writer_ending = ending.clone();
    let writer = std::thread::Builder::new().name("chat-writer".into()).spawn(move || {
        // Ends when the hub drops this client's sender: on leave, or when it stalled.
        while let Some(first) = queue.recv() {
            let rest = std::iter::from_fn(|| queue.try_recv().ok()).take(BATCH - 1);
            let batch = std::iter::once(first).chain(rest).map(Message::Text);
            if let Err(e) = tx.send_all(batch) {
                tracing::debug!(target: TRACE_TARGET, "chat {id}: write failed: {e}");
                return;
            }
        }
        if !writer_ending.load(Ordering::Acquire) {
            // The hub dropped this client for not reading: tell it why.
            let _ = tx.close(CloseCode::Policy, "too slow: message queue overflowed");
        }
    })?;
    let result = loop {
        match rx.recv() {
            Ok(Some(Message::Text(text))) => hub.broadcast(text),
            Ok(Some(Message::Binary(_))) => tracing::debug!(target: TRACE_TARGET, "chat {id}: binary message ignored"),
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    // Unregistering drops our sender, which ends the writer; its writes are bounded by the
    // write-stall timeout.
    ending.store(true, Ordering::Release);
    hub.leave(id);
    let _ = writer.join();
    rx.finish();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(messages: usize) -> QueueLimit {
        QueueLimit { messages, bytes: 1 << 20 }
    }

    fn drain(inbox: &Inbox) -> Vec<Utf8Bytes> {
        std::iter::from_fn(|| inbox.try_recv().ok()).collect()
    }

    #[test]
    fn join_is_announced_to_everyone_including_the_newcomer() {
        let hub = Hub::new(limit(8));
        let (a, qa) = hub.join();
        let (b, qb) = hub.join();
        assert_eq!((a, b), (1, 2));
        assert_eq!(drain(&qa), vec![event("join", 1), event("join", 2)]);
        assert_eq!(drain(&qb), vec![event("join", 2)]);
        assert_eq!(event("leave", 7).as_str(), r#"{"event":"leave","id":7}"#);
    }

    #[test]
    fn broadcast_order_is_the_same_for_all() {
        let hub = Hub::new(limit(100));
        let (_, qa) = hub.join();
        let (_, qb) = hub.join();
        let _ = drain(&qa);
        for i in 0..50 {
            hub.broadcast(format!("m{i}").into());
        }
        let a = drain(&qa);
        let b: Vec<_> = drain(&qb).into_iter().skip(1).collect();
        assert_eq!(a.len(), 50);
        assert_eq!(a, b);
    }

    #[test]
    fn a_full_queue_drops_that_client_only_and_announces_it() {
        let hub = Hub::new(limit(4));
        let (_, stalled) = hub.join();
        let (_, live) = hub.join();
        // `stalled` holds join 1, join 2; two more fit, the third overflows.
        for i in 0..3 {
            hub.broadcast(format!("m{i}").into());
            let _ = drain(&live);
        }
        assert_eq!(hub.len(), 1);
        hub.broadcast("after".into());
        assert_eq!(drain(&live), vec![Utf8Bytes::from("after")]);
        // The stalled client's queue ends after what it had; its writer then closes.
        assert_eq!(drain(&stalled).len(), 4);
        assert!(stalled.recv().is_none());
    }

    #[test]
    fn the_byte_limit_drops_too_and_reading_makes_room() {
        let hub = Hub::new(QueueLimit { messages: 1000, bytes: 100 });
        let (_, reader) = hub.join();
        let (_, stalled) = hub.join();
        let _ = drain(&reader);
        let forty = "x".repeat(40);
        for _ in 0..10 {
            // The reader keeps its queue short, so it never reaches 100 bytes.
            hub.broadcast(forty.as_str().into());
            let got = drain(&reader);
            assert_eq!(got.iter().filter(|m| m.as_str() == forty).count(), 1, "{got:?}");
        }
        assert_eq!(hub.len(), 1, "the client that never read is gone");
        assert!(std::iter::from_fn(|| stalled.try_recv().ok()).count() <= 3);
    }

    #[test]
    fn leave_is_announced_once() {
        let hub = Hub::new(limit(8));
        let (a, _qa) = hub.join();
        let (_, qb) = hub.join();
        hub.leave(a);
        hub.leave(a);
        assert_eq!(drain(&qb), vec![event("join", 2), event("leave", 1)]);
        assert!(!hub.is_empty());
    }
}
