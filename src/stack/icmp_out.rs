//! The host's ICMP: echo replies, destination unreachables for what it does not serve (UDP
//! to any port, other protocols) under a token-bucket rate limit, and the input filter for
//! sources that depend on the configured prefix.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::Host;
use crate::device::PacketMeta;
use crate::wire::icmp::{self, EchoRequest, Unreachable};
use crate::wire::ipv4::PROTO_ICMP;
use crate::wire::packet::Unserved;
use crate::wire::DropReason;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
pub(super) struct TokenBucket {
    rate: u32,
    burst: u32,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub(super) fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket { rate, burst, tokens: f64::from(burst), last: None }
    }

    /// Take a token if there is one.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let earned = now.saturating_duration_since(last).as_secs_f64() * f64::from(self.rate);
            self.tokens = (self.tokens + earned).min(f64::from(self.burst));
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Host {
    /// RFC 1122 §3.2.1.3: no packet is accepted from the directed broadcast address of our
    /// own prefix (nor its all-zeros form, RFC 1122 §3.3.6). A /31 or /32 has neither.
    pub(super) fn source_is_broadcast(&self, src: Ipv4Addr) -> bool {
        let len = u32::from(self.cfg.prefix_len);
        if len >= 31 {
            return false;
        }
        let mask = u32::MAX << (32 - len);
        let net = u32::from(self.cfg.addr) & mask;
        let src = u32::from(src);
        src == net || src == net | !mask
    }

    /// Echo requests of every code are answered with that code, as Linux does.
    pub(super) fn answer_echo(&mut self, now: Instant, req: &EchoRequest<'_>) {
        self.counters.icmp_echo += 1;
        let mut pkt = self.wire.spare.pop().unwrap_or_default();
        let id = self.wire.ids.next(self.cfg.addr, req.src, PROTO_ICMP);
        icmp::build_echo_reply(self.cfg.addr, req, id, &mut pkt);
        let code = if req.code == 0 { String::new() } else { format!(" (code {})", req.code) };
        self.tracer.note(now, format_args!("ICMP echo request{code} from {}: replying", req.src));
        self.wire.out.push_back((pkt, PacketMeta::default()));
    }

    /// A datagram nothing here serves: counted as a drop, and answered with a destination
    /// unreachable (RFC 1122 §3.2.2.1 SHOULD) while the rate limit allows.
    pub(super) fn answer_unserved(&mut self, now: Instant, u: &Unserved<'_>) {
        let (reason, what) = match u.code {
            Unreachable::Port => (DropReason::UdpNoListener, "port"),
            Unreachable::Protocol => (DropReason::UnsupportedProtocol, "protocol"),
        };
        self.count_drop(now, reason, None);
        if !self.icmp_errors.take(now) {
            self.counters.icmp_errors_limited += 1;
            self.tracer.note(now, format_args!("ICMP {what} unreachable to {} suppressed: over the rate limit", u.src));
            return;
        }
        self.counters.icmp_unreachable_sent += 1;
        let mut pkt = self.wire.spare.pop().unwrap_or_default();
        let id = self.wire.ids.next(self.cfg.addr, u.src, PROTO_ICMP);
        icmp::build_unreachable(self.cfg.addr, u.src, u.code, u.datagram, id, &mut pkt);
        self.tracer.note(now, format_args!("ICMP {what} unreachable to {}", u.src));
        self.wire.out.push_back((pkt, PacketMeta::default()));
    }
}
