//! Engine.IO allows one long-poll GET at a time: a second one while the first waits is a
//! broken client, and the session closes, the first GET answered with the CLOSE and the
//! second with a 400. "First" is by the wire: the two come on different connections,
//! served by different threads, and the later GET's thread may well reach the session
//! first. Each GET carries where its head stands in the stack's order of arrivals (see
//! `TcpStream::arrival_number`); an earlier GET that finds a later one waiting takes its
//! place, as a server handling requests in arrival order would have answered them.

use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use super::session::Session;
use crate::app::http::Request;
use crate::app::ws::Conn;

/// The GET waiting on a session.
#[derive(Debug, Default)]
pub(super) struct GetSlot {
    /// Its head's arrival number (`None`: the stream cannot tell).
    arrival: Option<u64>,
    /// A GET that arrived before it has come since: it is the duplicate.
    displaced: bool,
}

/// What a GET is to do, from [`Session::take_get`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum GetTurn {
    /// No GET was waiting: this one waits.
    Mine,
    /// Another GET, which arrived first (or whose arrival nobody can tell), is waiting:
    /// this one is the duplicate.
    Duplicate,
    /// The waiting GET arrived after this one: it is the duplicate, and this one the
    /// GET that was first.
    Earlier,
}

impl Session {
    /// A GET with its head's `arrival` number comes to poll.
    pub(super) fn take_get(&self, arrival: Option<u64>) -> GetTurn {
        let mut slot = self.get_slot.lock().unwrap_or_else(PoisonError::into_inner);
        // SeqCst: see `close_by_server`.
        if !self.get_busy.swap(true, Ordering::SeqCst) {
            *slot = GetSlot { arrival, displaced: false };
            return GetTurn::Mine;
        }
        match (arrival, slot.arrival) {
            (Some(mine), Some(waiting)) if mine < waiting && !slot.displaced => {
                slot.displaced = true;
                GetTurn::Earlier
            }
            _ => GetTurn::Duplicate,
        }
    }

    /// The waiting GET is done; `true` if an earlier GET took its place meanwhile (it is
    /// then the duplicate, answered with a 400).
    pub(super) fn release_get(&self) -> bool {
        let mut slot = self.get_slot.lock().unwrap_or_else(PoisonError::into_inner);
        self.get_busy.store(false, Ordering::Release);
        std::mem::take(&mut slot.displaced)
    }
}

/// The arrival number of a request head's last byte: a request is complete, and an
/// event-driven server (the reference) handles it, once its head is in. `None` where the
/// stream cannot tell.
pub(super) fn head_arrival<S: Conn>(req: &Request, stream: &S) -> Option<u64> {
    let read = stream.input_counts()?.read;
    let last = read.checked_sub(req.leftover.len() as u64 + 1)?;
    stream.arrival_number(last)
}
