//! Receive batches: the event loop reads every packet the device has queued, and the
//! connections' answers wait until the batch is done. A burst of in-order data then gets one
//! cumulative ACK instead of one per two segments, and a burst of ACKs releases one burst of
//! new data: what GRO gives the kernel's own TCP, and what keeps a userspace stack from
//! spending its time writing ACKs into the TUN.
//!
//! Only an accepted, ordinary segment (no SYN, FIN or RST, no drop, no challenge: decided in
//! `segment_for`) on a connection in a data-transfer state waits. Out-of-order data that opens
//! or fills a hole gets its ACK (with SACK blocks) at once (RFC 5681 §4.2); without SACK every
//! out-of-order segment does, since the sender counts them. With SACK, segments that only grow
//! a block already reported are acknowledged every second one and at the batch's end, each
//! ACK carrying the blocks as they then stand. With `--offload` a batch is often a dozen
//! 64 KiB super-packets, each of which would otherwise get its own ACK.

use std::time::Instant;

use super::{ConnId, Host};
use crate::tcp::State;

/// In-order bytes one held-back ACK may cover (and at most a quarter of the receive
/// buffer). Nothing is delayed in time: the batch's output is written when the batch ends
/// either way, so this bounds how many ACK packets a long batch (up to 256 packets) gets,
/// i.e. how far one lost ACK sets the sender back. Fewer is cheaper: every ACK written into
/// the TUN runs the kernel sender's ACK processing and its next transmissions on our thread.
/// Measured receiving 300 MB from Linux (BBR) with discard on the loop: 16 KiB 590–995
/// MB/s, 64 KiB 820–960, 256 KiB 955–1125. A stretch ACK like Linux's own after GRO (RFC
/// 5681 §4.2 asks for one per two segments, a SHOULD); senders that count acknowledged bytes
/// (RFC 3465; Linux counts segments) grow their windows the same. With offloads, two 64 KiB
/// super-packets.
const MAX_STRETCH: u32 = 256 * 1024;
const MAX_STRETCH_OFFLOAD: u32 = 128 * 1024;

impl Host {
    /// Start a batch: until `end_batch`, `handle_packet` may hold a connection's output back.
    pub fn begin_batch(&mut self) {
        self.batching = true;
    }

    /// End a batch: send what the held-back connections have to say.
    pub fn end_batch(&mut self, now: Instant) {
        self.batching = false;
        let ids = std::mem::take(&mut self.deferred);
        for &id in &ids {
            if let Some(entry) = self.conns.get_mut(&id) {
                entry.deferred = false;
                self.dispatch(now, id);
            }
        }
        // Keep the allocation for the next batch.
        self.deferred = ids;
        self.deferred.clear();
    }

    /// Whether connection `id`'s output can wait for the end of the batch (and note it).
    pub(super) fn defer(&mut self, id: ConnId) -> bool {
        if !self.batching {
            return false;
        }
        let Some(entry) = self.conns.get_mut(&id) else { return false };
        let transfer = matches!(entry.conn.state(), State::Established | State::CloseWait);
        let accepted = !matches!(entry.place, super::Place::Handshaking(_));
        // A stretch ACK covers a bounded amount (see MAX_STRETCH).
        let limit = if self.cfg.tcp.tso_max > 0 { MAX_STRETCH_OFFLOAD } else { MAX_STRETCH };
        let limit = limit.min(u32::try_from(entry.conn.recv_capacity() / 4).unwrap_or(u32::MAX)).max(1);
        let stretched = entry.conn.unacked_bytes() >= limit;
        let coalesce = entry.conn.may_coalesce_out_of_order();
        let ooo_waits = !entry.conn.holds_out_of_order() || coalesce;
        if !transfer || !accepted || stretched || !ooo_waits || entry.conn.error().is_some() {
            return false;
        }
        if !entry.deferred {
            entry.deferred = true;
            self.deferred.push(id);
        }
        true
    }
}
