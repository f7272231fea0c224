//! What the stack counts, printed at exit and shown to learners.

use std::collections::BTreeMap;
use std::fmt;

use crate::wire::DropReason;

#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub packets_in: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    pub connections: u64,
    /// Every RST sent: the stack's answers to strays and the connections' own (abort, a bad ACK).
    pub rst_sent: u64,
    pub no_listener: u64,
    pub icmp_echo: u64,
    /// ICMP destination unreachables sent (UDP to any port, other protocols).
    pub icmp_unreachable_sent: u64,
    /// Destination unreachables not sent: over the ICMP error rate limit.
    pub icmp_errors_limited: u64,
    /// Retransmissions of connections already gone (live ones count their own).
    pub retransmits_closed: u64,
    pub device_drops: u64,
    pub syn_cookies_sent: u64,
    pub syn_cookies_accepted: u64,
    pub challenge_acks_suppressed: u64,
    /// Idle connections reset to make room for a new one (`max_connections`, `max_per_source`).
    pub reclaimed: u64,
    /// TIME-WAIT connections forgotten early because of `max_time_wait`.
    pub time_wait_dropped: u64,
    /// TCP segments received with more payload than our MSS (GRO/TSO super-packets).
    pub super_segs_in: u64,
    /// Super-segments handed to a device with segmentation offload (TSO).
    pub super_segs_out: u64,
    /// Segments a connection's own fault (`/bytes/N?drop=P`) kept from the device.
    pub fault_drops: u64,
    pub drops: BTreeMap<DropReason, u64>,
}

impl Counters {
    pub fn count_drop(&mut self, reason: DropReason) {
        *self.drops.entry(reason).or_insert(0) += 1;
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// The one-line summary `synack serve` prints at exit (retransmissions are added by the
/// caller, which can see live connections).
pub struct Summary<'a> {
    pub counters: &'a Counters,
    pub retransmits: u64,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counters;
        write!(
            f,
            "{} connections, {} segments in, {} out, {} retransmissions, {} RST sent, {} pings",
            c.connections, c.segs_in, c.segs_out, self.retransmits, c.rst_sent, c.icmp_echo
        )?;
        if c.super_segs_in > 0 || c.super_segs_out > 0 {
            write!(f, ", {} super-segments in, {} out (offload)", c.super_segs_in, c.super_segs_out)?;
        }
        f.write_str("; drops: ")?;
        if c.syn_cookies_sent > 0 {
            write!(f, "{} SYN cookies sent, {} accepted, ", c.syn_cookies_sent, c.syn_cookies_accepted)?;
        }
        if c.challenge_acks_suppressed > 0 {
            write!(f, "{} challenge ACKs suppressed, ", c.challenge_acks_suppressed)?;
        }
        if c.icmp_unreachable_sent > 0 || c.icmp_errors_limited > 0 {
            write!(
                f,
                "{} ICMP unreachables sent, {} over the rate limit, ",
                c.icmp_unreachable_sent, c.icmp_errors_limited
            )?;
        }
        if c.reclaimed > 0 {
            write!(f, "{} idle connections reclaimed, ", c.reclaimed)?;
        }
        if c.time_wait_dropped > 0 {
            write!(f, "{} TIME-WAITs dropped early, ", c.time_wait_dropped)?;
        }
        if c.drops.is_empty() && c.device_drops == 0 {
            return f.write_str("none");
        }
        let mut first = true;
        for (reason, n) in &c.drops {
            if !first {
                f.write_str(", ")?;
            }
            write!(f, "{reason}={n}")?;
            first = false;
        }
        if c.device_drops > 0 {
            write!(f, "{}device-queue-full={}", if first { "" } else { ", " }, c.device_drops)?;
        }
        Ok(())
    }
}
