//! Who sleeps on a connection or a listening port, and how they are woken: a blocking
//! thread on a condition variable, or an async task by its waker. Both hang on the same
//! readiness edges: the host reports a connection whose readiness changed (or a port with a
//! new connection to accept), and `Inner::hand_over` wakes whoever sleeps on it, after the
//! stack's lock is released.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::{Inner, Stack, Waiter};
use crate::stack::{ConnId, Host};

/// The sleepers of one connection or port. A handle is either blocking or async, so one
/// kind at a time; `T` is what async tasks leave behind.
pub(super) enum Sleepers<T> {
    Threads(Arc<Waiter>),
    Tasks(T),
}

/// The wakers of the tasks waiting on one connection: a reader and a writer may be two
/// tasks (split halves), so each has its own slot.
#[derive(Default)]
pub(super) struct ConnTasks {
    read: Option<Waker>,
    write: Option<Waker>,
}

/// What an async call would wait for.
#[derive(Clone, Copy)]
pub(super) enum Slot {
    /// Data, end of stream or an error on the connection.
    Read(ConnId),
    /// Room to send, the handshake's end, or an error.
    Write(ConnId),
    /// A connection to accept on the port.
    Accept(u16),
}

/// One wake-up owed once the lock is released.
pub(super) enum Wake {
    /// Notify the condition variable: every sleeper (`true`) or one.
    Threads(Arc<Waiter>, bool),
    Task(Waker),
}

pub(super) fn notify(wakes: Vec<Wake>) {
    for w in wakes {
        match w {
            Wake::Threads(w, true) => w.cv.notify_all(),
            Wake::Threads(w, false) => w.cv.notify_one(),
            Wake::Task(w) => w.wake(),
        }
    }
}

impl Inner {
    /// Connection `id`'s readiness changed: wake its sleepers. An async task's waker is used
    /// up (it registers again if it still cannot go on); any change wakes both the reader and
    /// the writer, as it wakes every blocked thread.
    pub(super) fn wake_conn(&mut self, id: ConnId) {
        match self.conn_waiters.get_mut(&id) {
            Some(Sleepers::Threads(w)) if w.waiting.load(Ordering::Relaxed) > 0 => {
                self.wakes.push(Wake::Threads(w.clone(), true));
            }
            Some(Sleepers::Tasks(t)) => {
                self.wakes.extend([t.read.take(), t.write.take()].into_iter().flatten().map(Wake::Task));
            }
            Some(Sleepers::Threads(_)) | None => {}
        }
    }

    /// Port `port` has one more connection to accept (`nth` of this hand-over, from 0):
    /// wake one blocked acceptor per connection, or every waiting task (an accepting task
    /// that finds nothing registers again).
    pub(super) fn wake_port(&mut self, port: u16, nth: usize) {
        match self.port_waiters.get_mut(&port) {
            Some(Sleepers::Threads(w)) if nth < w.waiting.load(Ordering::Relaxed) => {
                self.wakes.push(Wake::Threads(w.clone(), false));
            }
            Some(Sleepers::Tasks(tasks)) => self.wakes.extend(tasks.drain(..).map(Wake::Task)),
            Some(Sleepers::Threads(_)) | None => {}
        }
    }

    /// Every sleeper, for a stack shutting down.
    pub(super) fn wake_everyone(&mut self) -> Vec<Wake> {
        let mut wakes = Vec::new();
        for s in self.conn_waiters.values_mut() {
            match s {
                Sleepers::Threads(w) => wakes.push(Wake::Threads(w.clone(), true)),
                Sleepers::Tasks(t) => {
                    wakes.extend([t.read.take(), t.write.take()].into_iter().flatten().map(Wake::Task))
                }
            }
        }
        for s in self.port_waiters.values_mut() {
            match s {
                Sleepers::Threads(w) => wakes.push(Wake::Threads(w.clone(), true)),
                Sleepers::Tasks(tasks) => wakes.extend(tasks.drain(..).map(Wake::Task)),
            }
        }
        wakes
    }

    /// Leave `waker` where the next edge for `slot` finds it.
    fn register(&mut self, slot: Slot, waker: &Waker) {
        let keep = |old: &mut Option<Waker>| match old {
            Some(w) if w.will_wake(waker) => {}
            _ => *old = Some(waker.clone()),
        };
        match slot {
            Slot::Read(id) | Slot::Write(id) => {
                let Some(Sleepers::Tasks(t)) = self.conn_waiters.get_mut(&id) else { return };
                keep(if matches!(slot, Slot::Read(_)) { &mut t.read } else { &mut t.write });
            }
            Slot::Accept(port) => {
                let Some(Sleepers::Tasks(tasks)) = self.port_waiters.get_mut(&port) else { return };
                if !tasks.iter().any(|w| w.will_wake(waker)) {
                    tasks.push(waker.clone());
                }
            }
        }
    }
}

impl Stack {
    /// The async form of `block_on`: call `op`; where it says `WouldBlock`, leave the task's
    /// waker for `slot` and return `Pending`. The waker is registered with the stack locked,
    /// right after `op` saw nothing to do, so the edge that changes that cannot come in
    /// between and be missed.
    pub(super) fn poll_op<T>(
        &self,
        slot: Slot,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&mut Host, Instant) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let mut g = match self.lock() {
            Ok(g) => g,
            Err(e) => return Poll::Ready(Err(e)),
        };
        loop {
            let r = op(&mut g.host, Instant::now());
            let would_block = matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            if !would_block || g.host.pop_output_pending() {
                // As in `block_on`: write without the lock, then look again before waiting.
                self.flush(g);
                if !would_block {
                    return Poll::Ready(r);
                }
                g = match self.lock() {
                    Ok(g) => g,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                continue;
            }
            if self.is_stopped() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the stack has shut down")));
            }
            g.register(slot, cx.waker());
            let wakes = std::mem::take(&mut g.wakes);
            drop(g);
            notify(wakes);
            return Poll::Pending;
        }
    }
}
