//! Congestion control behind a small trait. `NewReno` (`new_reno.rs`) is RFC 5681 slow start
//! and congestion avoidance with RFC 6582 fast recovery; `Bbr` (`bbr.rs`) windows by a model
//! of the path instead. The connection keeps the loss-recovery bookkeeping (duplicate ACK count,
//! recovery point, SACK scoreboard); the algorithm only decides the window. The methods for
//! congestion events return what they did, in words, for the trace.

use std::fmt::Debug;
use std::time::{Duration, Instant};

mod bbr;
mod new_reno;

use bbr::Bbr;
use new_reno::NewReno;

/// Which algorithm a connection uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// RFC 5681 / RFC 6582: halve on loss. The default: every step is in the RFCs.
    #[default]
    NewReno,
    /// Model-based (draft-ietf-ccwg-bbr, simplified): random loss does not shrink the window.
    Bbr,
}

impl Algorithm {
    pub fn build(self, mss: u32) -> Box<dyn CongestionControl> {
        match self {
            Algorithm::NewReno => Box::new(NewReno::new(mss)),
            Algorithm::Bbr => Box::new(Bbr::new(mss)),
        }
    }
}

/// One timed round trip: a segment of new data was sent at `sent_at`, and at `now` the peer
/// acknowledged (or SACKed) it, having received `delivered` bytes in between.
#[derive(Clone, Copy, Debug)]
pub struct RoundSample {
    pub now: Instant,
    pub sent_at: Instant,
    pub rtt: Duration,
    pub delivered: u64,
    /// The segment left nothing more to send: the application, not the path, set the rate.
    pub app_limited: bool,
}

pub trait CongestionControl: Debug + Send {
    /// Bytes allowed in flight.
    fn cwnd(&self) -> u32;
    fn ssthresh(&self) -> u32;
    /// New data was acknowledged outside fast recovery. `burst` is the most slow start may
    /// grow on one ACK: one MSS (RFC 3465's L = 1), or with segmentation offload the largest
    /// segment handed to the device, since one ACK per super-segment is the normal pace
    /// then, not a stretch ACK (growth stays bounded by the bytes acknowledged).
    fn on_ack(&mut self, acked: u32, mss: u32, burst: u32);
    /// The retransmission timer fired with `flight` bytes outstanding.
    fn on_rto(&mut self, flight: u32, mss: u32) -> &'static str;
    /// The third duplicate ACK: entering fast recovery.
    fn on_fast_retransmit(&mut self, flight: u32, mss: u32) -> &'static str;
    /// Another duplicate ACK during recovery: one more segment has left the network.
    fn on_dup_ack_in_recovery(&mut self, mss: u32);
    /// A partial ACK in recovery acknowledged `acked` bytes (RFC 6582 §3.2 step 5).
    fn on_partial_ack(&mut self, acked: u32, mss: u32);
    /// The ACK covering the recovery point arrived.
    fn on_recovery_end(&mut self, flight: u32, mss: u32) -> &'static str;
    /// An ACK reported `bytes` more delivered (acknowledged or SACKed).
    fn on_delivered(&mut self, _now: Instant, _bytes: u64) {}
    /// A round trip was timed (about one per round); returns a change worth tracing.
    fn on_round(&mut self, _sample: RoundSample) -> Option<&'static str> {
        None
    }
}

/// The initial window of RFC 6928: ten segments, but no more than 14600 bytes unless two
/// segments are larger than that.
fn initial_window(mss: u32) -> u32 {
    (10 * mss).min(14600.max(2 * mss))
}
