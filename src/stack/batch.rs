//! Batches of arrivals: the event loop reads many packets per wake-up (a dozen 64 KiB
//! super-packets is common with `--offload`), and answering each at once means an ACK per
//! packet, each a system call in which the kernel's TCP then does its ACK processing. Within
//! a batch, a connection whose arrivals are all in order has its output held to the end of the
//! batch and pulled once: one cumulative ACK (and the data it lets out) instead of one each.
//!
//! Arrivals that leave data out of order are answered at once, as before: their duplicate ACKs
//! (with SACK blocks) are what the peer's fast retransmit counts (RFC 5681 §4.2). So is
//! anything outside ESTABLISHED and CLOSE-WAIT, where state changes must settle at once, and
//! (decided in `segment_for`) a dropped segment, one that drew a challenge ACK (RFC 5961 wants
//! one per segment, within its rate limit), and SYN, FIN or RST.

use std::time::Instant;

use super::{ConnId, Host};
use crate::tcp::State;

impl Host {
    /// Hold output of in-order arrivals until [`end_batch`](Host::end_batch).
    pub fn begin_batch(&mut self) {
        self.batching = true;
    }

    /// Pull the held output: one pass per connection that had arrivals.
    pub fn end_batch(&mut self, now: Instant) {
        self.batching = false;
        let ids = std::mem::take(&mut self.deferred);
        for &id in &ids {
            self.dispatch(now, id);
        }
        self.deferred = ids;
        self.deferred.clear();
    }

    /// Whether connection `id`'s output may wait for the end of the batch; if so it is noted.
    pub(super) fn defer(&mut self, id: ConnId) -> bool {
        if !self.batching {
            return false;
        }
        let Some(entry) = self.conns.get(&id) else { return false };
        let c = &entry.conn;
        if !matches!(c.state(), State::Established | State::CloseWait) || c.has_out_of_order() || c.error().is_some() {
            return false;
        }
        if !self.deferred.contains(&id) {
            self.deferred.push(id);
        }
        true
    }
}
