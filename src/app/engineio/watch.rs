//! What a long-poll GET during an upgrade waits for: the upgrade WebSocket's reader to have
//! handled every byte that had arrived on the WebSocket when the GET came. The two come on
//! different connections, served by different threads; this answers the GET as if they
//! were served in the order their bytes arrived (a client's UPGRADE `5` sent before its
//! GET moves the session first, as in a single-threaded server), however the threads run.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::app::ws::conn::InputCounts;

type Counts = Box<dyn Fn() -> Option<InputCounts> + Send + Sync>;

#[derive(Default)]
pub(super) struct UpgradeWatch {
    state: Mutex<WatchState>,
    changed: Condvar,
}

#[derive(Default)]
struct WatchState {
    /// The upgrade WebSocket's input counts, while its reader runs the probe exchange.
    input: Option<Counts>,
    /// Every byte of the WebSocket's input up to here has been handled.
    handled: u64,
}

impl UpgradeWatch {
    /// An upgrade WebSocket is open; `counts` reads its input counts (`None`: the stream
    /// cannot tell, and GETs do not wait).
    pub(super) fn start(&self, counts: impl Fn() -> Option<InputCounts> + Send + Sync + 'static) {
        if let Ok(mut g) = self.state.lock() {
            *g = WatchState { input: Some(Box::new(counts)), handled: 0 };
        }
        self.changed.notify_all();
    }

    /// The reader has handled everything it has read (it is about to read again).
    pub(super) fn caught_up(&self) {
        if let Ok(mut g) = self.state.lock() {
            if let Some(c) = g.input.as_ref().and_then(|f| f()) {
                g.handled = c.read;
            }
        }
        self.changed.notify_all();
    }

    /// The upgrade is over (done or failed): nothing more to wait for.
    pub(super) fn stop(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.input = None;
        }
        self.changed.notify_all();
    }

    /// Something a waiting GET looks at changed (the session moved, or ended).
    pub(super) fn notify(&self) {
        drop(self.state.lock());
        self.changed.notify_all();
    }

    /// Waits until the reader has handled every byte that has arrived by now, the upgrade
    /// is over, or `settled` says the answer is known. `limit` only bounds a reader that is
    /// stuck (a client not reading its `3probe`); it is not a guess at scheduling.
    pub(super) fn wait_caught_up(&self, limit: Duration, settled: impl Fn() -> bool) {
        let Ok(mut g) = self.state.lock() else { return };
        let Some(target) = g.input.as_ref().and_then(|f| f()).map(|c| c.arrived) else { return };
        let end = Instant::now() + limit;
        while g.input.is_some() && g.handled < target && !settled() {
            let now = Instant::now();
            if now >= end {
                return;
            }
            g = match self.changed.wait_timeout(g, end - now) {
                Ok((g, _)) => g,
                Err(_) => return,
            };
        }
    }
}
