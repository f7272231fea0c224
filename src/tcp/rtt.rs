//! Retransmission timeout per RFC 6298: SRTT/RTTVAR smoothing, a floor, a ceiling, and
//! exponential backoff. Karn's rule (no samples from retransmitted data) is the caller's.

use std::time::Duration;

const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

#[derive(Clone, Debug)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min_rto: Duration,
    max_rto: Duration,
    backoff: u32,
}

impl RttEstimator {
    pub(crate) fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator { srtt: None, rttvar: Duration::ZERO, rto: initial_rto, min_rto, max_rto, backoff: 0 }
    }

    /// Take one RTT measurement (RFC 6298 §2.2 and §2.3) and clear any backoff (§5.7's
    /// "after the RTT has been re-measured").
    pub(crate) fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                self.srtt = Some(srtt * 7 / 8 + rtt / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        self.rto = (srtt + CLOCK_GRANULARITY.max(self.rttvar * 4)).clamp(self.min_rto, self.max_rto);
        self.backoff = 0;
    }

    /// The timeout to arm now, backoff included.
    pub(crate) fn rto(&self) -> Duration {
        let factor = 1u32.checked_shl(self.backoff).unwrap_or(u32::MAX);
        self.rto.saturating_mul(factor).min(self.max_rto)
    }

    /// The timer expired: double the next timeout (RFC 6298 §5.5).
    pub(crate) fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1).min(16);
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    #[cfg(test)]
    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_sample_sets_srtt_and_half_variance() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(60_000));
        assert_eq!(r.rto(), ms(1000));
        r.sample(ms(100));
        assert_eq!(r.srtt(), Some(ms(100)));
        assert_eq!(r.rttvar(), ms(50));
        assert_eq!(r.rto(), ms(300)); // 100 + 4*50
    }

    #[test]
    fn later_samples_smooth() {
        let mut r = RttEstimator::new(ms(1000), ms(1), ms(60_000));
        r.sample(ms(100));
        r.sample(ms(200));
        // rttvar = 3/4*50 + 1/4*100 = 62.5; srtt = 7/8*100 + 1/8*200 = 112.5
        assert_eq!(r.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(r.rttvar(), Duration::from_micros(62_500));
        assert_eq!(r.rto(), Duration::from_micros(362_500));
    }

    #[test]
    fn floor_backoff_and_cap() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(5_000));
        r.sample(ms(1));
        assert_eq!(r.rto(), ms(200));
        r.back_off();
        assert_eq!(r.rto(), ms(400));
        r.back_off();
        assert_eq!(r.rto(), ms(800));
        for _ in 0..40 {
            r.back_off();
        }
        assert_eq!(r.rto(), ms(5_000));
        r.sample(ms(1));
        assert_eq!(r.rto(), ms(200), "a new sample clears the backoff");
    }
}
