//! Output bursts: a bound on the packets one connection builds in one go before the event
//! loop writes them. A window opened by a read batch of ACKs can allow a thousand segments or more;
//! built all at once, they fill that many packet buffers (megabytes, far beyond the cache)
//! before the first is written, and the kernel's copy in `write` then reads each back from
//! memory. Built a few dozen at a time and written at once, a segment's bytes are still in
//! the cache when the kernel copies them, the same buffers serve every burst, and the ACKs
//! those writes produced are read before the next burst, as a sender that drains its ACKs
//! every few dozen writes does.
//!
//! This changes when segments are built, never which: a held connection is pulled again
//! (`send_held`) before the loop sleeps, and what it sends then is what it would have sent
//! in one go, given the ACKs that arrived meanwhile. The bound is per connection and call,
//! not per pass: a bulk sender that used it holds back no other connection's ACKs,
//! handshakes or retransmissions.

use std::time::Instant;

use super::Host;

impl Host {
    /// Build at most `limit` packets for a connection in one go; one with more to send waits
    /// for [`send_held`](Host::send_held). `None`: no bound (the default: every segment is
    /// built at once).
    pub fn set_output_budget(&mut self, limit: Option<usize>) {
        self.out_budget = limit.map(|l| l.max(1));
    }

    /// Connections stopped by the output budget with (possibly) more to send.
    pub fn has_held_output(&self) -> bool {
        !self.held.is_empty()
    }

    /// Pull the held connections again, oldest first, within the budget.
    pub fn send_held(&mut self, now: Instant) {
        let ids = std::mem::replace(&mut self.held, std::mem::take(&mut self.held_spare));
        for &id in &ids {
            if let Some(entry) = self.conns.get_mut(&id) {
                entry.held = false;
                self.dispatch(now, id);
            }
        }
        // Keep the allocation for the next round.
        self.held_spare = ids;
        self.held_spare.clear();
    }

    /// Whether the budget is spent by `built` packets of one call: `dispatch` stops pulling
    /// segments.
    pub(super) fn budget_spent(out_budget: Option<usize>, built: usize) -> bool {
        out_budget.is_some_and(|limit| built >= limit)
    }
}
