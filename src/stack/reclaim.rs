//! Making room for a new connection when the table, or its source's share of it, is full:
//! the connections whose peers have been silent longest are reset, as nginx closes its idle
//! keep-alive connections when it runs out of them. Only a peer that has completed a
//! handshake (it receives what we send, so its address is not forged) may take an idle
//! connection's place; a bare SYN gets a SYN cookie instead.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::{ConnId, Host, Quad};
use crate::wire::DropReason;

/// The share of a limit reclaimed at once when it is reached: one scan of the table pays
/// for the next few arrivals (32 of the default 16,384, as nginx drains 32 at a time).
const BATCH_DIVISOR: usize = 512;

impl Host {
    /// Room for one more connection from `source`, reclaiming idle ones if a limit is
    /// reached; the limit still in the way otherwise.
    pub(super) fn make_room(&mut self, now: Instant, source: Ipv4Addr) -> Option<DropReason> {
        // At most one pass per limit: each reclaim either frees room or finds nothing.
        for _ in 0..2 {
            let reason = self.refuse_new_connection(source)?;
            let from = match reason {
                DropReason::ConnectionLimit => None,
                DropReason::SourceLimit => Some(source),
                _ => return Some(reason),
            };
            if self.reclaim(now, from) == 0 {
                return Some(reason);
            }
        }
        self.refuse_new_connection(source)
    }

    /// Reset a few of the connections (from `source`, if given) silent longest, each silent
    /// at least `reclaim_idle`; returns how many.
    fn reclaim(&mut self, now: Instant, source: Option<Ipv4Addr>) -> usize {
        let min_idle = self.cfg.reclaim_idle;
        let limit = if source.is_some() { self.cfg.max_per_source } else { self.cfg.max_connections };
        let batch = (limit / BATCH_DIVISOR).max(1);
        let mut idle: Vec<(Instant, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, e)| source.is_none_or(|s| *e.conn.remote.ip() == s))
            .filter(|(_, e)| now.saturating_duration_since(e.last_heard) >= min_idle)
            .filter(|(id, e)| self.by_quad.get(&Quad { local: e.conn.local, remote: e.conn.remote }) == Some(**id))
            .map(|(id, e)| (e.last_heard, *id))
            .collect();
        if idle.len() > batch {
            idle.select_nth_unstable(batch - 1);
            idle.truncate(batch);
        }
        for &(heard, id) in &idle {
            if let Some(e) = self.conns.get_mut(&id) {
                let quad = Quad { local: e.conn.local, remote: e.conn.remote };
                e.conn.abort(now, std::io::ErrorKind::ConnectionAborted);
                self.counters.reclaimed += 1;
                if self.tracer.enabled() {
                    let (quad, silent) = (super::fmt_quad(&quad), now.saturating_duration_since(heard));
                    self.tracer.note(now, format_args!("{quad}: reset to make room (its peer silent {silent:.1?})"));
                }
            }
            self.dispatch(now, id);
        }
        idle.len()
    }
}
