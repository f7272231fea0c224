//! Where each connection is, and the one function that moves it: every count the host keeps
//! about its connections (a listener's half-open `pending` and accept queue, the per-source
//! counts, TIME-WAIT, buffered bytes, the four-tuple table) changes here and nowhere else, so
//! a connection cannot be counted twice or forgotten; TIME-WAIT is tracked and trimmed here
//! too. Debug builds check the totals against the table after each move while the table is
//! small (the scripted-peer tests), and each decrement everywhere.

use std::time::Instant;

use super::{ConnId, Host, Quad};
use crate::tcp::State;

/// Where a connection is, as the host keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// In its handshake (SYN-RECEIVED), counted in the listener's SYN backlog.
    Handshaking(u16),
    /// Handshake done, waiting in the listener's accept queue.
    Queued(u16),
    /// The application holds a handle (accepted, or opened with `connect`).
    Owned,
    /// No one holds a handle: the entry goes once the protocol is done with it.
    Released,
}

impl Place {
    /// The listener it is counted in, before the application takes it.
    pub(super) fn listener(self) -> Option<u16> {
        match self {
            Place::Handshaking(p) | Place::Queued(p) => Some(p),
            Place::Owned | Place::Released => None,
        }
    }
}

/// A count that must not go below zero: in a debug build a miscount stops the test that
/// made it; a release build keeps serving with the count at zero.
fn decrement(count: &mut usize, what: &str) {
    debug_assert!(*count > 0, "{what} would go below zero");
    *count = count.saturating_sub(1);
}

/// Tables up to this size are checked in full after every move (debug builds only).
#[cfg(debug_assertions)]
const CHECK_ALL_UP_TO: usize = 256;

impl Host {
    /// Move connection `id` to `to` (`None`: out of the table), keeping every count in step.
    pub(super) fn move_to(&mut self, id: ConnId, to: Option<Place>) {
        let Some(entry) = self.conns.get_mut(&id) else { return };
        let from = entry.place;
        if to == Some(from) {
            return;
        }
        // Leave where it was.
        match from {
            Place::Handshaking(port) => {
                if let Some(l) = self.listeners.get_mut(&port) {
                    decrement(&mut l.pending, "a listener's half-open count");
                }
            }
            Place::Queued(port) => {
                if let Some(l) = self.listeners.get_mut(&port) {
                    if l.queue.front() == Some(&id) {
                        l.queue.pop_front();
                    } else {
                        l.queue.retain(|q| *q != id);
                    }
                }
            }
            Place::Owned | Place::Released => {}
        }
        match to {
            Some(place) => {
                entry.place = place;
                match place {
                    Place::Handshaking(port) => {
                        if let Some(l) = self.listeners.get_mut(&port) {
                            l.pending += 1;
                        }
                    }
                    Place::Queued(port) => {
                        if let Some(l) = self.listeners.get_mut(&port) {
                            l.queue.push_back(id);
                            self.touched_ports.push(port);
                        }
                    }
                    Place::Owned | Place::Released => {}
                }
            }
            None => self.remove_entry(id),
        }
        #[cfg(debug_assertions)]
        if self.conns.len() <= CHECK_ALL_UP_TO {
            self.check_counts();
        }
    }

    /// The table entry goes, with everything counted for it.
    fn remove_entry(&mut self, id: ConnId) {
        let Some(entry) = self.conns.remove(&id) else { return };
        debug_assert!(self.buffered >= entry.memory, "buffered bytes would go below zero");
        self.buffered = self.buffered.saturating_sub(entry.memory);
        if entry.in_time_wait {
            decrement(&mut self.time_wait_count, "the TIME-WAIT count");
        }
        self.counters.retransmits_closed += entry.conn.stats.retransmits;
        self.unmap(&Quad { local: entry.conn.local, remote: entry.conn.remote }, id, entry.in_time_wait);
    }

    /// A new connection takes its four-tuple, counted for its source.
    pub(super) fn map(&mut self, quad: Quad, id: ConnId) {
        debug_assert!(!self.by_quad.contains_key(&quad), "{quad:?} is taken");
        self.by_quad.insert(quad, id);
        *self.per_source.entry(*quad.remote.ip()).or_insert(0) += 1;
    }

    /// The four-tuple no longer names `id` (closed, or gone): a new connection may take it,
    /// and it no longer counts against the limits. `in_time_wait`: it was not counted for
    /// its source (see `track_time_wait`).
    pub(super) fn unmap(&mut self, quad: &Quad, id: ConnId, in_time_wait: bool) {
        if self.by_quad.get(quad) != Some(id) {
            return;
        }
        self.by_quad.remove(quad);
        if !in_time_wait {
            self.uncount_source(*quad.remote.ip());
        }
    }

    fn uncount_source(&mut self, remote: std::net::Ipv4Addr) {
        debug_assert!(self.per_source.contains_key(&remote), "a connection from {remote} was not counted");
        if let Some(n) = self.per_source.get_mut(&remote) {
            decrement(n, "a source's connection count");
            if *n == 0 {
                self.per_source.remove(&remote);
            }
        }
    }

    /// Connection `id` entered or left TIME-WAIT. A connection in TIME-WAIT is bounded by
    /// `max_time_wait` (the oldest is forgotten early, as Linux does past
    /// `tcp_max_tw_buckets`), not by its source's share: the peer holds nothing open, and a
    /// client that lets the server close first would otherwise find its share full of
    /// TIME-WAIT after `max_per_source` connections in 2 MSL.
    pub(super) fn track_time_wait(&mut self, id: ConnId) -> bool {
        let Some(entry) = self.conns.get_mut(&id) else { return false };
        let in_tw = entry.conn.state() == State::TimeWait;
        if in_tw == entry.in_time_wait {
            return false;
        }
        entry.in_time_wait = in_tw;
        let quad = Quad { local: entry.conn.local, remote: entry.conn.remote };
        let mapped = self.by_quad.get(&quad) == Some(id);
        if in_tw {
            self.time_wait.push_back(id);
            self.time_wait_count += 1;
            if mapped {
                self.uncount_source(*quad.remote.ip());
            }
        } else {
            decrement(&mut self.time_wait_count, "the TIME-WAIT count");
            if mapped {
                *self.per_source.entry(*quad.remote.ip()).or_insert(0) += 1;
            }
        }
        in_tw
    }

    /// Over `max_time_wait`: forget the oldest TIME-WAIT connections. Their peers have
    /// everything; what is lost is only protection against a delayed duplicate.
    pub(super) fn trim_time_wait(&mut self, now: Instant) {
        while self.time_wait_count > self.cfg.max_time_wait {
            let Some(old) = self.time_wait.pop_front() else { break };
            if !self.conns.get(&old).is_some_and(|e| e.in_time_wait) {
                continue;
            }
            self.counters.time_wait_dropped += 1;
            if let Some(entry) = self.conns.get_mut(&old) {
                entry.conn.abort(now, std::io::ErrorKind::ConnectionAborted);
            }
            self.settle(now, old);
        }
        // Drop stale ids so the queue stays as long as the count.
        while self.time_wait.front().is_some_and(|id| !self.conns.get(id).is_some_and(|e| e.in_time_wait)) {
            self.time_wait.pop_front();
        }
    }

    /// Every count against the table, in full.
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn check_counts(&self) {
        for (port, l) in &self.listeners {
            let pending = self.conns.values().filter(|e| e.place == Place::Handshaking(*port)).count();
            assert_eq!(l.pending, pending, "port {port}: half-open count vs connections in the handshake");
            let queued = self.conns.values().filter(|e| e.place == Place::Queued(*port)).count();
            assert_eq!(l.queue.len(), queued, "port {port}: accept queue vs connections queued");
            for id in &l.queue {
                assert_eq!(self.conns.get(id).map(|e| e.place), Some(Place::Queued(*port)), "queued id {id}");
            }
        }
        let tw = self.conns.values().filter(|e| e.in_time_wait).count();
        assert_eq!(self.time_wait_count, tw, "TIME-WAIT count");
        let memory: usize = self.conns.values().map(|e| e.memory).sum();
        assert_eq!(self.buffered, memory, "buffered bytes");
        let mut sources = std::collections::HashMap::new();
        let mut mapped = 0;
        for (id, e) in &self.conns {
            if self.by_quad.get(&Quad { local: e.conn.local, remote: e.conn.remote }) == Some(*id) {
                if !e.in_time_wait {
                    *sources.entry(*e.conn.remote.ip()).or_insert(0usize) += 1;
                }
                mapped += 1;
            }
        }
        assert_eq!(self.by_quad.len(), mapped, "four-tuples naming no connection");
        assert_eq!(self.per_source, sources, "connections per source");
    }
}
