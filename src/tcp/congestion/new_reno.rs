//! NewReno: RFC 5681 slow start and congestion avoidance with RFC 6582 fast recovery.

use super::{initial_window, CongestionControl};

#[derive(Debug, Clone)]
pub(super) struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance (RFC 5681 §3.1's
    /// byte-counting variant, which does not reward ACK splitting).
    acked_since_growth: u32,
    /// Slow start after a retransmission timeout: one MSS per ACK whatever `burst` says
    /// (RFC 3465 §2.3), until cwnd reaches ssthresh.
    after_rto: bool,
}

impl NewReno {
    pub(super) fn new(mss: u32) -> Self {
        NewReno { cwnd: initial_window(mss), ssthresh: u32::MAX, acked_since_growth: 0, after_rto: false }
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, acked: u32, mss: u32, burst: u32) {
        if self.cwnd < self.ssthresh {
            // Slow start, at most one MSS per ACK (RFC 5681 §3.1, L=1 as RFC 3465 allows),
            // or one super-segment's worth with offload (but not right after a timeout).
            let limit = if self.after_rto { mss } else { burst.max(mss) };
            self.cwnd = self.cwnd.saturating_add(acked.min(limit));
            self.after_rto &= self.cwnd < self.ssthresh;
        } else {
            self.acked_since_growth = self.acked_since_growth.saturating_add(acked);
            if self.acked_since_growth >= self.cwnd {
                self.acked_since_growth -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_rto(&mut self, flight: u32, mss: u32) -> &'static str {
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss; // Loss window (RFC 5681 §3.1, equation 4).
        self.acked_since_growth = 0;
        self.after_rto = true;
        "retransmission timeout: back to one segment"
    }

    fn on_fast_retransmit(&mut self, flight: u32, mss: u32) -> &'static str {
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = self.ssthresh + 3 * mss;
        "fast retransmit: halved"
    }

    fn on_dup_ack_in_recovery(&mut self, mss: u32) {
        self.cwnd = self.cwnd.saturating_add(mss);
    }

    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        // Deflate by what was acknowledged, then add back one MSS.
        self.cwnd = self.cwnd.saturating_sub(acked).saturating_add(mss).max(mss);
    }

    fn on_recovery_end(&mut self, flight: u32, mss: u32) -> &'static str {
        // RFC 6582 §3.2 step 6, option 1, guarded against a burst.
        self.cwnd = self.ssthresh.min(flight.max(mss) + mss);
        self.acked_since_growth = 0;
        "recovery done: the ACK covered everything sent before the loss"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_then_avoidance() {
        let mss = 1000;
        let mut c = NewReno::new(mss);
        assert_eq!(c.cwnd(), 10_000);
        c.on_ack(1000, mss, mss);
        assert_eq!(c.cwnd(), 11_000);
        c.on_rto(20_000, mss);
        assert_eq!(c.cwnd(), 1000);
        assert_eq!(c.ssthresh(), 10_000);
        for _ in 0..9 {
            c.on_ack(1000, mss, mss);
        }
        assert_eq!(c.cwnd(), 10_000, "slow start up to ssthresh");
        for _ in 0..10 {
            c.on_ack(1000, mss, mss);
        }
        assert_eq!(c.cwnd(), 11_000, "one MSS per window in avoidance");
    }

    #[test]
    fn slow_start_counts_bytes_of_a_super_segment() {
        let mss = 1000;
        let mut c = NewReno::new(mss);
        c.on_ack(8000, mss, mss);
        assert_eq!(c.cwnd(), 11_000, "L = 1: one MSS for a stretch ACK");
        c.on_ack(8000, mss, 64_000);
        assert_eq!(c.cwnd(), 19_000, "with offload: the bytes the super-segment carried");
        c.on_ack(100_000, mss, 64_000);
        assert_eq!(c.cwnd(), 83_000, "never more than one super-segment per ACK");
        c.on_rto(40_000, mss);
        c.on_ack(8000, mss, 64_000);
        assert_eq!(c.cwnd(), 2000, "after a timeout: one MSS per ACK (RFC 3465 §2.3)");
    }

    #[test]
    fn fast_recovery_halves() {
        let mss = 1000;
        let mut c = NewReno::new(mss);
        c.on_fast_retransmit(20_000, mss);
        assert_eq!(c.ssthresh(), 10_000);
        assert_eq!(c.cwnd(), 13_000);
        c.on_dup_ack_in_recovery(mss);
        assert_eq!(c.cwnd(), 14_000);
        c.on_recovery_end(9_000, mss);
        assert_eq!(c.cwnd(), 10_000);
    }
}
