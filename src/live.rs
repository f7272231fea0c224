//! The tracer's events for browser viewers: the demo page's live ladder (`/events`).
//!
//! While at least one viewer is connected, the [`Tracer`](crate::trace::Tracer) hands every
//! event it makes (the same JSON objects `--trace=json` prints) to this hub, with the bytes of
//! each segment that crossed the device. The hub keeps, per connection, the recent events and
//! the last [`MAX_PACKETS`] packets, so a viewer that picks a connection sees its history
//! (a `curl`'s handshake, say) and can have any of those packets dissected.
//!
//! The stack never waits for a viewer: publishing appends to bounded queues under a short
//! lock and wakes the viewers' threads; a viewer whose queue is full loses events, counted
//! for that viewer alone.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::wire::Quad;

/// Packets kept per connection for dissection.
pub(crate) const MAX_PACKETS: usize = 400;
/// Events kept per connection (the oldest go first).
pub(crate) const MAX_EVENTS: usize = 4000;
/// Connections with a history at once (the least recently active go first).
pub(crate) const MAX_CONNS: usize = 64;
/// Events waiting for one viewer before further ones are dropped (and counted).
pub(crate) const VIEWER_QUEUE: usize = 8192;

/// A packet kept for dissection: its number (unique in the hub), when it was seen (since the
/// Unix epoch), and the IP packet as it crossed the device.
#[derive(Clone, Debug)]
pub struct Packet {
    pub id: u64,
    pub time: Duration,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct ConnLog {
    events: VecDeque<Arc<str>>,
    packets: VecDeque<Packet>,
    /// Events dropped from the front of `events`.
    forgotten: u64,
}

struct Viewer {
    /// The connection carrying this viewer's events: never watched, since every event sent
    /// would make another one.
    own: Option<Quad>,
    watch: Option<Quad>,
    /// Watch the next connection this address opens (a SYN arriving from it).
    next_from: Option<std::net::Ipv4Addr>,
    queue: VecDeque<Arc<str>>,
    dropped: u64,
}

#[derive(Default)]
struct Inner {
    viewers: HashMap<u64, Viewer>,
    next_viewer: u64,
    conns: HashMap<Quad, ConnLog>,
    /// Connections by last activity, least recent first (may hold stale duplicates).
    order: VecDeque<Quad>,
    next_packet: u64,
}

/// Shared between the tracer (publishing) and the `/events` threads (viewing).
#[derive(Default)]
pub struct LiveHub {
    recording: AtomicBool,
    inner: Mutex<Inner>,
    wake: Condvar,
}

/// What a viewer gets from [`LiveHub::wait`].
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Arc<str>>,
    /// Events this viewer lost so far because its queue was full.
    pub dropped: u64,
}

impl LiveHub {
    pub fn new() -> Arc<LiveHub> {
        Arc::new(LiveHub::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking viewer thread must not stop the stack's tracing.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether anybody is watching: the tracer makes no events for the hub otherwise.
    pub fn recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    /// Whether this connection carries a viewer's events (its segments are not recorded:
    /// recording them would be a loop when two viewers watch each other's connections).
    pub fn is_viewer_conn(&self, quad: &Quad) -> bool {
        self.lock().viewers.values().any(|v| v.own.as_ref() == Some(quad))
    }

    /// One event of `quad`, the JSON text the tracer made, and the packet it describes.
    /// Returns the packet's number when bytes were kept.
    pub fn publish(&self, quad: Quad, event: &str, time: Duration, bytes: Option<&[u8]>) -> Option<u64> {
        let mut inner = self.lock();
        if inner.viewers.values().any(|v| v.own == Some(quad)) {
            return None;
        }
        let id = bytes.map(|_| {
            inner.next_packet += 1;
            inner.next_packet
        });
        let text: Arc<str> = match id {
            // The packet number rides in the event so a click can ask for its dissection.
            Some(id) => Arc::from(format!("{},\"pkt\":{id}}}", event.strip_suffix('}').unwrap_or(event))),
            None => Arc::from(event),
        };
        let fresh = !inner.conns.contains_key(&quad);
        if fresh && event.contains(r#""flags":"[SYN]""#) {
            for v in inner.viewers.values_mut() {
                if v.next_from == Some(*quad.remote.ip()) {
                    v.next_from = None;
                    v.watch = Some(quad);
                    v.queue.clear();
                }
            }
        }
        if fresh {
            while inner.conns.len() >= MAX_CONNS {
                let Some(old) = inner.order.pop_front() else { break };
                inner.conns.remove(&old);
            }
            inner.conns.insert(quad, ConnLog::default());
        }
        if inner.order.back() != Some(&quad) {
            inner.order.retain(|q| *q != quad);
            inner.order.push_back(quad);
        }
        if let Some(log) = inner.conns.get_mut(&quad) {
            if log.events.len() >= MAX_EVENTS {
                log.events.pop_front();
                log.forgotten += 1;
            }
            log.events.push_back(text.clone());
            if let (Some(id), Some(b)) = (id, bytes) {
                if log.packets.len() >= MAX_PACKETS {
                    log.packets.pop_front();
                }
                // Stamped with the wall clock, as a capture file would be.
                let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or(time);
                log.packets.push_back(Packet { id, time: wall, bytes: b.to_vec() });
            }
        }
        let mut woke = false;
        for v in inner.viewers.values_mut() {
            if v.watch == Some(quad) {
                if v.queue.len() >= VIEWER_QUEUE {
                    v.dropped += 1;
                } else {
                    v.queue.push_back(text.clone());
                    woke = true;
                }
            }
        }
        drop(inner);
        if woke {
            self.wake.notify_all();
        }
        id
    }

    /// A new viewer whose events travel on `own`.
    pub fn join(&self, own: Option<Quad>) -> u64 {
        let mut inner = self.lock();
        inner.next_viewer += 1;
        let id = inner.next_viewer;
        inner.viewers.insert(id, Viewer { own, watch: None, next_from: None, queue: VecDeque::new(), dropped: 0 });
        self.recording.store(true, Ordering::Relaxed);
        id
    }

    pub fn leave(&self, viewer: u64) {
        let mut inner = self.lock();
        inner.viewers.remove(&viewer);
        if inner.viewers.is_empty() {
            self.recording.store(false, Ordering::Relaxed);
            // Nobody is left to look: the histories go too.
            inner.conns.clear();
            inner.order.clear();
        }
        drop(inner);
        self.wake.notify_all();
    }

    /// Watch `quad` from now on (`None`: nothing). Returns its history so far and how many
    /// older events were forgotten, or an error when it is a viewer's own connection.
    pub fn watch(&self, viewer: u64, quad: Option<Quad>) -> Result<(Vec<Arc<str>>, u64), &'static str> {
        let mut inner = self.lock();
        if let Some(q) = quad {
            if inner.viewers.values().any(|v| v.own == Some(q)) {
                return Err("that connection carries a live ladder's own events: watching it would loop");
            }
        }
        let history = quad
            .and_then(|q| inner.conns.get(&q))
            .map(|log| (log.events.iter().cloned().collect(), log.forgotten))
            .unwrap_or_default();
        if let Some(v) = inner.viewers.get_mut(&viewer) {
            v.watch = quad;
            v.next_from = None;
            v.queue.clear();
        }
        Ok(history)
    }

    /// Watch the next connection `from` opens, from its SYN on (until then, nothing).
    pub fn watch_next(&self, viewer: u64, from: std::net::Ipv4Addr) {
        if let Some(v) = self.lock().viewers.get_mut(&viewer) {
            v.watch = None;
            v.next_from = Some(from);
            v.queue.clear();
        }
    }

    /// The kept packets of the connection packet `id` belongs to, oldest first.
    pub fn packets_around(&self, id: u64) -> Vec<Packet> {
        let inner = self.lock();
        let log = inner.conns.values().find(|log| log.packets.iter().any(|p| p.id == id));
        log.map(|log| log.packets.iter().cloned().collect()).unwrap_or_default()
    }

    /// The kept packets of `quad`, oldest first.
    pub fn packets(&self, quad: &Quad) -> Vec<Packet> {
        self.lock().conns.get(quad).map(|log| log.packets.iter().cloned().collect()).unwrap_or_default()
    }

    /// Wakes the viewers' threads (one has a request from its page).
    pub fn nudge(&self) {
        self.wake.notify_all();
    }

    /// Waits up to `timeout` for events for `viewer`, and takes them.
    pub fn wait(&self, viewer: u64, timeout: Duration) -> Option<Batch> {
        let mut inner = self.lock();
        if inner.viewers.get(&viewer).is_some_and(|v| v.queue.is_empty()) {
            inner = self.wake.wait_timeout(inner, timeout).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
        let v = inner.viewers.get_mut(&viewer)?;
        Some(Batch { events: v.queue.drain(..).collect(), dropped: v.dropped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quad(port: u16) -> Quad {
        Quad { local: "10.7.0.2:80".parse().expect("addr"), remote: format!("10.7.0.1:{port}").parse().expect("addr") }
    }

    #[test]
    fn nothing_is_recorded_without_viewers_and_history_is_kept_with_them() {
        let hub = LiveHub::new();
        assert!(!hub.recording());
        let v = hub.join(Some(quad(1)));
        assert!(hub.recording());
        let id = hub.publish(quad(2), r#"{"event":"segment"}"#, Duration::ZERO, Some(&[0x45]));
        assert_eq!(id, Some(1));
        let (history, forgotten) = hub.watch(v, Some(quad(2))).expect("watch");
        assert_eq!(forgotten, 0);
        assert_eq!(&*history[0], r#"{"event":"segment","pkt":1}"#);
        hub.publish(quad(2), r#"{"event":"state"}"#, Duration::ZERO, None);
        let batch = hub.wait(v, Duration::from_millis(10)).expect("viewer");
        assert_eq!(batch.events.len(), 1);
        assert_eq!(hub.packets(&quad(2)).len(), 1);
        hub.leave(v);
        assert!(!hub.recording());
        assert!(hub.packets(&quad(2)).is_empty());
    }

    #[test]
    fn watch_next_follows_the_next_syn_from_that_address() {
        let hub = LiveHub::new();
        let v = hub.join(Some(quad(1)));
        hub.publish(quad(2), r#"{"event":"segment","flags":"[ACK]"}"#, Duration::ZERO, None);
        hub.watch_next(v, *quad(3).remote.ip());
        hub.publish(quad(2), r#"{"event":"segment","flags":"[ACK]"}"#, Duration::ZERO, None);
        hub.publish(quad(3), r#"{"event":"segment","flags":"[SYN]"}"#, Duration::ZERO, None);
        hub.publish(quad(3), r#"{"event":"state"}"#, Duration::ZERO, None);
        let batch = hub.wait(v, Duration::ZERO).expect("viewer");
        assert_eq!(batch.events.len(), 2, "{:?}", batch.events);
        assert!(batch.events[0].contains("[SYN]"));
    }

    #[test]
    fn a_viewers_own_connection_is_neither_recorded_nor_watched() {
        let hub = LiveHub::new();
        let v = hub.join(Some(quad(1)));
        assert_eq!(hub.publish(quad(1), "{}", Duration::ZERO, Some(&[1])), None);
        assert!(hub.watch(v, Some(quad(1))).is_err());
        assert!(hub.is_viewer_conn(&quad(1)));
    }

    #[test]
    fn a_slow_viewer_loses_events_and_counts_them_while_the_log_stays_bounded() {
        let hub = LiveHub::new();
        let v = hub.join(None);
        hub.watch(v, Some(quad(2))).expect("watch");
        let n = VIEWER_QUEUE + 10;
        for _ in 0..n {
            hub.publish(quad(2), "{}", Duration::ZERO, Some(&[0u8; 40]));
        }
        let batch = hub.wait(v, Duration::ZERO).expect("viewer");
        assert_eq!(batch.events.len(), VIEWER_QUEUE);
        assert_eq!(batch.dropped, 10);
        assert_eq!(hub.packets(&quad(2)).len(), MAX_PACKETS);
        for port in 0..(MAX_CONNS as u16 + 5) {
            hub.publish(quad(1000 + port), "{}", Duration::ZERO, None);
        }
        assert!(hub.lock().conns.len() <= MAX_CONNS);
    }
}
