//! A BBR-style congestion control, after the model of draft-ietf-ccwg-bbr: the window follows
//! an estimate of the path, the highest delivery rate of the last ten timed rounds (rounds
//! the application limited count only if they beat it) times the lowest round-trip time of
//! the last ten seconds, instead of shrinking on every loss. Random
//! loss (a lossy link rather than a full queue) then costs only the retransmissions; NewReno
//! halves its window at each one, and at 5% loss keeps a few segments in flight, too few for
//! duplicate ACKs to reveal a loss, so recovery waits for timers.
//!
//! Kept from BBR: Startup (grow like slow start until the delivery rate stops rising by a
//! quarter for three rounds), then a window of twice the bandwidth-delay product plus the
//! ACK aggregation measured (extra_acked: on a TUN both sides work in batches, so ACKs come
//! in bursts; capped as Linux caps it) and a small allowance for bursts of our own (Linux's
//! quantization budget), a floor of four segments, ProbeRTT (four segments for at least
//! 200 ms and a round when the minimum RTT is ten seconds old), and the window saved at a
//! loss and restored when recovery ends. Left out: pacing (only the window bounds the
//! flight; twice the BDP still lets the rate estimate grow whenever the path has room) and
//! BBRv2's loss bounds (the target is random loss).

use std::time::{Duration, Instant};

use super::{initial_window, CongestionControl, RoundSample};

/// Rounds the bandwidth filter remembers (BBR's BBRMaxBwFilterLen in spirit).
const BW_ROUNDS: usize = 10;
/// How long a minimum RTT stays valid before ProbeRTT measures it again.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// BBR's cwnd_gain: twice the bandwidth-delay product in flight.
const CWND_GAIN: u64 = 2;
/// BBR's minimum window, in segments.
const MIN_SEGMENTS: u32 = 4;
/// ProbeRTT lasts at least this long (BBR's ProbeRTTDuration).
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// The ACK aggregation allowed for is at most this much time at the estimated rate (Linux's
/// bbr_extra_acked_max_us).
const EXTRA_ACKED_MAX: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub(super) struct Bbr {
    mss: u32,
    cwnd: u32,
    /// Delivery rates (bytes per second) of the last rounds, newest at `next - 1`.
    bw: [u64; BW_ROUNDS],
    next: usize,
    min_rtt: Option<Duration>,
    min_rtt_at: Option<Instant>,
    /// Startup is over: the delivery rate stopped growing.
    filled_pipe: bool,
    full_bw: u64,
    rounds_without_growth: u8,
    /// ProbeRTT since this moment: the window is four segments until a round sent after it
    /// has been timed and PROBE_RTT_TIME has passed; the lowest round trip seen meanwhile.
    probe_rtt_since: Option<Instant>,
    probe_rtt_min: Option<Duration>,
    /// The window before a loss (BBRSaveCwnd), restored when recovery ends.
    prior_cwnd: u32,
    /// The largest segment handed to the device (more than one MSS with offload).
    burst: u32,
    /// Rounds timed so far.
    round: u64,
    /// ACK aggregation (BBR's extra_acked): ACKs come in bursts (the peer's batches, ours),
    /// so data arrives faster than the rate for a while and then not at all; the window
    /// needs that much more or the sender idles between bursts. Per round slot, the most
    /// delivered beyond what the rate explains within one epoch.
    extra_acked: [u64; BW_ROUNDS],
    epoch_start: Option<Instant>,
    epoch_delivered: u64,
}

impl Bbr {
    pub(super) fn new(mss: u32) -> Self {
        Bbr {
            mss,
            cwnd: initial_window(mss),
            bw: [0; BW_ROUNDS],
            next: 0,
            min_rtt: None,
            min_rtt_at: None,
            filled_pipe: false,
            full_bw: 0,
            rounds_without_growth: 0,
            probe_rtt_since: None,
            probe_rtt_min: None,
            prior_cwnd: 0,
            burst: mss,
            round: 0,
            extra_acked: [0; BW_ROUNDS],
            epoch_start: None,
            epoch_delivered: 0,
        }
    }

    pub(super) fn max_bw(&self) -> u64 {
        self.bw.iter().copied().max().unwrap_or(0)
    }

    #[cfg(test)]
    pub(super) fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    #[cfg(test)]
    pub(super) fn filled_pipe(&self) -> bool {
        self.filled_pipe
    }

    fn min_cwnd(&self) -> u32 {
        MIN_SEGMENTS * self.mss
    }

    /// Bytes at the estimated rate over `d`.
    fn bytes_in(&self, d: Duration) -> u128 {
        u128::from(self.max_bw()) * d.as_nanos() / 1_000_000_000
    }

    /// The window the model asks for: twice the bandwidth-delay product, plus the ACK
    /// aggregation seen (once Startup is over, at most 100 ms at the rate), plus three send
    /// quanta (a millisecond at the rate, between two segments and the largest segment the
    /// device takes) so the device always has the next ones queued; `None` before the first
    /// round has been timed.
    fn target(&self) -> Option<u32> {
        let rtt = self.min_rtt?;
        if self.max_bw() == 0 {
            return None;
        }
        let bdp = self.bytes_in(rtt);
        let two = 2 * u128::from(self.mss);
        let quantum = 3 * self.bytes_in(Duration::from_millis(1)).clamp(two, u128::from(self.burst).max(two));
        let extra = if self.filled_pipe {
            u128::from(self.extra_acked.iter().copied().max().unwrap_or(0)).min(self.bytes_in(EXTRA_ACKED_MAX))
        } else {
            0
        };
        let target = u128::from(CWND_GAIN) * bdp + extra + quantum;
        Some(u32::try_from(target).unwrap_or(u32::MAX).max(self.min_cwnd()))
    }

    /// BBR's ACK-aggregation estimate: within an epoch, delivery beyond rate × time.
    fn note_aggregation(&mut self, now: Instant, delivered: u64) {
        let bw = u128::from(self.max_bw());
        let start = *self.epoch_start.get_or_insert(now);
        let mut expected = bw * now.saturating_duration_since(start).as_nanos() / 1_000_000_000;
        if u128::from(self.epoch_delivered) <= expected {
            // Delivery fell back to the rate: a new epoch starts here.
            self.epoch_start = Some(now);
            self.epoch_delivered = 0;
            expected = 0;
        }
        self.epoch_delivered = self.epoch_delivered.saturating_add(delivered);
        let extra = u128::from(self.epoch_delivered).saturating_sub(expected).min(u128::from(self.cwnd));
        let slot = &mut self.extra_acked[(self.round % BW_ROUNDS as u64) as usize];
        *slot = (*slot).max(u64::try_from(extra).unwrap_or(u64::MAX));
    }

    fn note_bandwidth(&mut self, sample: &RoundSample) {
        let nanos = sample.rtt.as_nanos().max(1);
        let bw = u64::try_from(u128::from(sample.delivered) * 1_000_000_000 / nanos).unwrap_or(u64::MAX);
        // An application-limited round says nothing about the path unless it beats the
        // estimate (draft-ietf-ccwg-bbr, delivery rate estimation).
        if sample.app_limited && bw < self.max_bw() {
            return;
        }
        self.bw[self.next] = bw;
        self.next = (self.next + 1) % BW_ROUNDS;
        if !self.filled_pipe && !sample.app_limited {
            let max = self.max_bw();
            if max >= self.full_bw.saturating_add(self.full_bw / 4) {
                self.full_bw = max;
                self.rounds_without_growth = 0;
            } else {
                self.rounds_without_growth += 1;
                self.filled_pipe = self.rounds_without_growth >= 3;
            }
        }
    }

    /// Returns what changed, for the trace.
    fn note_rtt(&mut self, sample: &RoundSample) -> Option<&'static str> {
        if let Some(since) = self.probe_rtt_since {
            if sample.sent_at >= since {
                // Sent with at most four segments in flight: the path's own round trip.
                self.probe_rtt_min = Some(self.probe_rtt_min.map_or(sample.rtt, |m| m.min(sample.rtt)));
            }
            if self.probe_rtt_min.is_some() && sample.now.saturating_duration_since(since) >= PROBE_RTT_TIME {
                self.min_rtt = self.probe_rtt_min.take();
                self.min_rtt_at = Some(sample.now);
                self.probe_rtt_since = None;
                return Some("bbr: ProbeRTT done, round trip measured again");
            }
            return None;
        }
        if self.min_rtt.is_none_or(|m| sample.rtt <= m) {
            self.min_rtt = Some(sample.rtt);
            self.min_rtt_at = Some(sample.now);
        } else if self.min_rtt_at.is_some_and(|at| sample.now.saturating_duration_since(at) > MIN_RTT_WINDOW) {
            self.probe_rtt_since = Some(sample.now);
            return Some("bbr: ProbeRTT, four segments for a round to measure the round trip");
        }
        None
    }
}

impl CongestionControl for Bbr {
    fn cwnd(&self) -> u32 {
        if self.probe_rtt_since.is_some() {
            self.cwnd.min(self.min_cwnd())
        } else {
            self.cwnd
        }
    }

    /// Fast recovery sends while the flight is below this (RFC 6675's pipe rule): the
    /// model's window, not a halved one.
    fn ssthresh(&self) -> u32 {
        self.cwnd()
    }

    /// BBRSetCwnd: towards the model's window by what was acknowledged; in Startup, grow
    /// only while below it (an application-limited flow never leaves Startup).
    fn on_ack(&mut self, acked: u32, _mss: u32, burst: u32) {
        self.burst = burst.max(self.mss);
        let grown = self.cwnd.saturating_add(acked);
        self.cwnd = match self.target() {
            Some(target) if self.filled_pipe => grown.min(target),
            Some(target) if self.cwnd >= target => self.cwnd,
            _ => grown,
        }
        .max(self.min_cwnd());
        if self.cwnd >= self.prior_cwnd {
            // Grown back past the window a timeout interrupted: nothing left to restore.
            self.prior_cwnd = 0;
        }
    }

    fn on_rto(&mut self, _flight: u32, _mss: u32) -> &'static str {
        // Nothing is known to be in flight: one segment, then grow back to the model.
        self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        self.cwnd = self.mss;
        "retransmission timeout: one segment, then back to the model's window"
    }

    fn on_fast_retransmit(&mut self, _flight: u32, _mss: u32) -> &'static str {
        // Right after a timeout the window is one segment: recovery gets the floor at least.
        self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        self.cwnd = self.cwnd.max(self.min_cwnd());
        "fast retransmit: window kept (bbr: a loss alone does not change the model)"
    }

    fn on_dup_ack_in_recovery(&mut self, _mss: u32) {}

    fn on_partial_ack(&mut self, _acked: u32, _mss: u32) {}

    fn on_recovery_end(&mut self, _flight: u32, _mss: u32) -> &'static str {
        // BBRRestoreCwnd.
        self.cwnd = self.cwnd.max(std::mem::take(&mut self.prior_cwnd));
        "recovery done: the ACK covered everything sent before the loss; window as before it"
    }

    fn on_delivered(&mut self, now: Instant, bytes: u64) {
        if bytes > 0 {
            self.note_aggregation(now, bytes);
        }
    }

    fn on_round(&mut self, sample: RoundSample) -> Option<&'static str> {
        if sample.rtt.is_zero() {
            // No clock moved (a test's fake one): no rate, and no round trip of zero.
            return None;
        }
        self.round += 1;
        self.extra_acked[(self.round % BW_ROUNDS as u64) as usize] = 0;
        let was_filled = self.filled_pipe;
        self.note_bandwidth(&sample);
        let event = self.note_rtt(&sample);
        if self.filled_pipe {
            if let Some(target) = self.target() {
                // Never above the model once the pipe is full: leaving Startup this drains
                // the queue it built (BBR's Drain) at once.
                self.cwnd = self.cwnd.min(target).max(self.min_cwnd());
            }
        }
        if self.filled_pipe && !was_filled {
            return Some("bbr: delivery rate stopped growing; window = 2 × bandwidth × min RTT");
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn sample(t0: Instant, ms_sent: u64, rtt_us: u64, delivered: u64) -> RoundSample {
        let sent_at = t0 + Duration::from_millis(ms_sent);
        let rtt = Duration::from_micros(rtt_us);
        RoundSample { now: sent_at + rtt, sent_at, rtt, delivered, app_limited: false }
    }

    #[test]
    fn startup_grows_then_window_follows_the_model() {
        let t0 = Instant::now();
        let mut c = Bbr::new(MSS);
        assert_eq!(c.cwnd(), 10_000);
        c.on_ack(5000, MSS, MSS);
        assert_eq!(c.cwnd(), 15_000, "startup: the bytes acknowledged");
        // 100 µs rounds delivering 100 kB: 1 GB/s, flat from the start.
        for i in 0..4 {
            let note = c.on_round(sample(t0, i, 100, 100_000));
            assert_eq!(note.is_some(), i == 3, "round {i}");
        }
        assert!(c.filled_pipe());
        assert_eq!(c.max_bw(), 1_000_000_000);
        // BDP 100 kB: 200 kB plus three bursts of two segments.
        c.on_ack(1_000_000, MSS, MSS);
        assert_eq!(c.cwnd(), 206_000);
    }

    #[test]
    fn growth_keeps_startup_going() {
        let t0 = Instant::now();
        let mut c = Bbr::new(MSS);
        let mut delivered = 10_000;
        for i in 0..10 {
            c.on_round(sample(t0, i, 100, delivered));
            delivered *= 2;
        }
        assert!(!c.filled_pipe(), "the rate doubled every round");
    }

    #[test]
    fn loss_keeps_the_window() {
        let t0 = Instant::now();
        let mut c = Bbr::new(MSS);
        for i in 0..4 {
            c.on_round(sample(t0, i, 100, 100_000));
        }
        c.on_ack(1_000_000, MSS, MSS);
        let w = c.cwnd();
        c.on_fast_retransmit(w, MSS);
        c.on_partial_ack(5000, MSS);
        c.on_recovery_end(w, MSS);
        assert_eq!(c.cwnd(), w);
        assert_eq!(c.ssthresh(), w, "recovery may keep the whole window in flight");
        c.on_rto(w, MSS);
        assert_eq!(c.cwnd(), MSS);
        c.on_ack(MSS, MSS, MSS);
        assert_eq!(c.cwnd(), 4 * MSS, "never below four segments once data moves");
        c.on_ack(1_000_000, MSS, MSS);
        assert_eq!(c.cwnd(), w, "back to the model, not above it");
    }

    #[test]
    fn app_limited_rounds_do_not_lower_the_estimate() {
        let t0 = Instant::now();
        let mut c = Bbr::new(MSS);
        for i in 0..4 {
            c.on_round(sample(t0, i, 100, 100_000));
        }
        for i in 4..30 {
            let mut s = sample(t0, i, 100, 1000);
            s.app_limited = true;
            c.on_round(s);
        }
        assert_eq!(c.max_bw(), 1_000_000_000);
        for i in 30..45 {
            c.on_round(sample(t0, i, 100, 1000));
        }
        assert_eq!(c.max_bw(), 10_000_000, "ten rounds later the old rate has aged out");
    }

    #[test]
    fn acks_in_bursts_widen_the_window_and_smooth_ones_do_not() {
        let t0 = Instant::now();
        let filled = || {
            let mut c = Bbr::new(MSS);
            for i in 0..4 {
                c.on_round(sample(t0, i, 100, 100_000));
            }
            c.on_ack(1_000_000, MSS, MSS);
            c
        };
        // 1 GB/s: 10 kB every 10 µs is exactly the rate.
        let mut smooth = filled();
        let start = t0 + Duration::from_millis(5);
        for k in 0..100 {
            smooth.on_delivered(start + Duration::from_micros(10 * k), 10_000);
        }
        smooth.on_ack(1_000_000, MSS, MSS);
        assert_eq!(smooth.cwnd(), 216_000, "2 × BDP + bursts + one ACK's worth, no more");
        // Bursts of 150 kB every 150 µs: the same rate, but each burst needs its own window.
        let mut bursty = filled();
        for k in 0..4 {
            bursty.on_delivered(start + Duration::from_micros(150 * k), 150_000);
        }
        bursty.on_ack(1_000_000, MSS, MSS);
        assert_eq!(bursty.cwnd(), 206_000 + 150_000);
        // Never more than the window itself.
        bursty.on_delivered(start + Duration::from_micros(600), 900_000);
        bursty.on_ack(1_000_000, MSS, MSS);
        assert_eq!(bursty.cwnd(), 206_000 + 356_000);
    }

    #[test]
    fn probe_rtt_after_ten_seconds() {
        let t0 = Instant::now();
        let mut c = Bbr::new(MSS);
        for i in 0..4 {
            c.on_round(sample(t0, i, 100, 100_000));
        }
        c.on_ack(1_000_000, MSS, MSS);
        // Queues built: rounds take 300 µs now, but the 100 µs minimum holds for 10 s.
        assert!(c.on_round(sample(t0, 5_000, 300, 300_000)).is_none());
        assert_eq!(c.min_rtt(), Some(Duration::from_micros(100)));
        let note = c.on_round(sample(t0, 10_100, 300, 300_000));
        assert!(note.is_some_and(|n| n.contains("ProbeRTT")));
        assert_eq!(c.cwnd(), 4 * MSS, "four segments while probing");
        // Rounds sent while probing are timed; ProbeRTT lasts 200 ms at least, and keeps the
        // lowest round trip it saw.
        assert!(c.on_round(sample(t0, 10_101, 120, 4000)).is_none());
        assert!(c.on_round(sample(t0, 10_200, 150, 4000)).is_none());
        assert_eq!(c.cwnd(), 4 * MSS);
        assert!(c.on_round(sample(t0, 10_301, 130, 4000)).is_some_and(|n| n.contains("done")));
        assert_eq!(c.min_rtt(), Some(Duration::from_micros(120)));
        assert!(c.cwnd() > 4 * MSS);
    }
}
