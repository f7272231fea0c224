//! `/chat`: every text message any client sends goes to every client (the sender too), as
//! it was sent; joins and leaves are announced as `{"event":"join","id":N}` and
//! `{"event":"leave","id":N}`.
//!
//! Each client has a bounded queue and a writer thread of its own. A broadcast only
//! `try_send`s into the queues, so it never waits for anybody: a client that stops reading
//! fills its TCP window, then its queue, and is then dropped (closed with 1008), while the
//! others go on. All broadcasts pass through one lock, so every client sees the messages in
//! the same order.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, Utf8Bytes};

use crate::app::ws::{handshake, open, Conn, Limits, TRACE_TARGET};

/// Largest chat message accepted (a bigger one closes that client with 1009).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Messages a client may have waiting before it counts as stalled and is dropped. With
/// [`MAX_MESSAGE`], bounds what a stalled client can pin in memory (16 MiB).
pub const QUEUE: usize = 256;
/// Messages written per flush by a client's writer.
const BATCH: usize = 64;

/// The set of connected chat clients.
pub struct Hub {
    inner: Mutex<HubInner>,
    queue: usize,
}

struct HubInner {
    next_id: u64,
    /// In join order; a few hundred at most, so a Vec beats a map.
    clients: Vec<(u64, SyncSender<Utf8Bytes>)>,
}

impl Hub {
    pub fn new(queue: usize) -> Self {
        Hub { inner: Mutex::new(HubInner { next_id: 1, clients: Vec::new() }), queue: queue.max(1) }
    }

    /// Registers a client and announces it to everyone, itself included (so a client's
    /// first message tells it its own id). Returns the id and the client's queue.
    pub fn join(&self) -> (u64, Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::sync_channel(self.queue);
        let Ok(mut inner) = self.inner.lock() else { return (0, rx) };
        let id = inner.next_id;
        inner.next_id += 1;
        inner.clients.push((id, tx));
        inner.broadcast(event("join", id));
        (id, rx)
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
        self.clients.retain(|(i, _)| *i != id);
        self.clients.len() != before
    }

    /// Queues `text` for every client. Clients whose queue is full (stalled) or whose
    /// writer is gone are removed, and their leaving is announced in turn; each round
    /// removes at least one client, so this ends.
    fn broadcast(&mut self, text: Utf8Bytes) {
        let mut queue = vec![text];
        while let Some(text) = queue.pop() {
            let mut gone = Vec::new();
            for (id, tx) in &self.clients {
                match tx.try_send(text.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        tracing::info!(target: TRACE_TARGET, "chat: client {id} is not reading; dropping it");
                        gone.push(*id);
                    }
                    Err(TrySendError::Disconnected(_)) => gone.push(*id),
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
pub fn event(kind: &str, id: u64) -> Utf8Bytes {
    serde_json::json!({ "event": kind, "id": id }).to_string().into()
}

/// Serves one `/chat` connection: register, write the `101`, then read messages and
/// broadcast them while a writer thread delivers this client's queue.
pub fn run<S: Conn>(
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
    queue: Receiver<Utf8Bytes>,
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
        while let Ok(first) = queue.recv() {
            let batch = std::iter::once(first).chain(queue.try_iter().take(BATCH - 1)).map(Message::Text);
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

    #[test]
    fn join_is_announced_to_everyone_including_the_newcomer() {
        let hub = Hub::new(8);
        let (a, qa) = hub.join();
        let (b, qb) = hub.join();
        assert_eq!((a, b), (1, 2));
        assert_eq!(qa.try_iter().collect::<Vec<_>>(), vec![event("join", 1), event("join", 2)]);
        assert_eq!(qb.try_iter().collect::<Vec<_>>(), vec![event("join", 2)]);
        assert_eq!(event("leave", 7).as_str(), r#"{"event":"leave","id":7}"#);
    }

    #[test]
    fn broadcast_order_is_the_same_for_all() {
        let hub = Hub::new(100);
        let (_, qa) = hub.join();
        let (_, qb) = hub.join();
        let _ = qa.try_iter().count();
        for i in 0..50 {
            hub.broadcast(format!("m{i}").into());
        }
        let a: Vec<_> = qa.try_iter().collect();
        let b: Vec<_> = qb.try_iter().skip(1).collect();
        assert_eq!(a.len(), 50);
        assert_eq!(a, b);
    }

    #[test]
    fn a_full_queue_drops_that_client_only_and_announces_it() {
        let hub = Hub::new(4);
        let (_, stalled) = hub.join();
        let (_, live) = hub.join();
        // `stalled` holds join 1, join 2; two more fit, the third overflows.
        for i in 0..3 {
            hub.broadcast(format!("m{i}").into());
            let _ = live.try_iter().count();
        }
        assert_eq!(hub.len(), 1);
        hub.broadcast("after".into());
        let got: Vec<_> = live.try_iter().collect();
        assert_eq!(got, vec![Utf8Bytes::from("after")]);
        // The stalled client's queue ends after what it had; its writer then closes.
        assert_eq!(stalled.try_iter().count(), 4);
        assert!(matches!(stalled.try_recv(), Err(mpsc::TryRecvError::Disconnected)));
    }

    #[test]
    fn leave_is_announced_once() {
        let hub = Hub::new(8);
        let (a, _qa) = hub.join();
        let (_, qb) = hub.join();
        hub.leave(a);
        hub.leave(a);
        let got: Vec<_> = qb.try_iter().collect();
        assert_eq!(got, vec![event("join", 2), event("leave", 1)]);
        assert!(!hub.is_empty());
    }
}
