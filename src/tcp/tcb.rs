//! The parts of a connection's state (RFC 9293 §3.3.1's TCB), grouped by concern: each
//! struct is the state one part of the protocol reads and writes. Loss recovery has its own
//! module (`recovery.rs`).

use std::time::Instant;

use super::connection::ConnEvent;
use super::rtt::RttEstimator;
use crate::wire::SeqNum;

/// Send sequence space (RFC 9293 §3.3.1):
///
/// ```text
///            1         2          3          4
///       ----------|----------|----------|----------
///              SND.UNA    SND.NXT    SND.UNA
///                                   +SND.WND
///   1 - acknowledged   2 - sent, unacknowledged
///   3 - allowed to send   4 - beyond the window
/// ```
#[derive(Debug)]
pub(super) struct SendSeq {
    pub iss: SeqNum,
    pub una: SeqNum,
    pub nxt: SeqNum,
    /// The highest sequence number ever sent: SND.NXT moves back on a timeout, this does not,
    /// and it is what an acceptable ACK is checked against.
    pub max: SeqNum,
    pub wnd: u32,
    pub max_wnd: u32,
    pub wl1: SeqNum,
    pub wl2: SeqNum,
    pub wscale: u8,
    pub mss: u32,
    /// The application shut down its sending side: a FIN follows the last byte.
    pub fin_queued: bool,
    pub fin_acked: bool,
}

/// Receive sequence space:
///
/// ```text
///                1          2          3
///            ----------|----------|----------
///                   RCV.NXT    RCV.NXT
///                             +RCV.WND
///   1 - acknowledged   2 - allowed to receive   3 - not yet allowed
/// ```
#[derive(Debug)]
pub(super) struct RecvSeq {
    pub irs: SeqNum,
    pub nxt: SeqNum,
    pub wscale: u8,
    /// Right edge of the window last advertised; never moved left (RFC 9293 §3.8.6.2.2).
    pub adv: SeqNum,
    /// A FIN seen beyond RCV.NXT, to take once the gap before it fills.
    pub ooo_fin: Option<SeqNum>,
    /// Text (and FIN) that came on the peer's SYN in a simultaneous open: RFC 9293
    /// §3.10.7.3 queues it for processing once ESTABLISHED is reached.
    pub syn_text: Option<Box<(Vec<u8>, bool)>>,
    /// See [`Connection::arrived_in_order`](super::Connection::arrived_in_order).
    pub in_order_total: u64,
}

/// What the next ACK we send owes the peer; every segment we send pays it off.
#[derive(Debug, Default)]
pub(super) struct AckOwed {
    /// Send an ACK at the next `poll_transmit`.
    pub now: bool,
    /// Delayed ACK: when the owed ACK must go at the latest.
    pub delack_at: Option<Instant>,
    /// In-order bytes received since the last ACK we sent.
    pub unacked_bytes: u32,
    /// The ACK this arrival owes goes at once even inside a batch (a hole opened or filled).
    pub at_once: bool,
    /// Out-of-order arrivals since our last ACK.
    pub ooo_since: u32,
    /// RCV.NXT in the last ACK we sent (RFC 7323 §4.3's Last.ACK.sent).
    pub last_sent: SeqNum,
    /// Where the latest out-of-order arrivals landed, newest first: SACK blocks are
    /// reported in this order, so each block is repeated in the ACKs after the one that
    /// first carried it (RFC 2018 §4), in case that one is lost.
    pub sack_recent: [Option<SeqNum>; 4],
    /// A duplicate segment to report once as a D-SACK block (RFC 2883): it tells the
    /// sender its retransmission was spurious.
    pub dsack: Option<(SeqNum, SeqNum)>,
    /// An RFC 5961 challenge ACK is owed; the stack rate-limits these across connections.
    pub challenge: bool,
}

/// The deadlines other than loss recovery's early timer, and the counts that back them off.
#[derive(Debug, Default)]
pub(super) struct Timers {
    pub rto_at: Option<Instant>,
    /// Retransmission timeouts in a row without progress.
    pub retries: u32,
    pub persist_at: Option<Instant>,
    pub persist_backoff: u32,
    /// Window probes sent since the peer last ACKed anything: a receiver that answers keeps
    /// the connection open for ever (RFC 1122 §4.2.2.17), a silent one does not.
    pub persist_unanswered: u32,
    /// The persist timer fired: send a one-byte window probe.
    pub force_probe: bool,
    pub time_wait_at: Option<Instant>,
    pub fin_wait2_at: Option<Instant>,
}

/// A segment of new data being timed: when its end is acknowledged or SACKed, the bytes
/// delivered since it left over the time since give one delivery-rate sample
/// (draft-cheng-iccrg-delivery-rate-estimation, one sample per round trip).
#[derive(Clone, Copy, Debug)]
pub(super) struct RateProbe {
    pub end: SeqNum,
    pub sent_at: Instant,
    pub delivered: u64,
    pub app_limited: bool,
}

/// Round-trip timing and delivery-rate sampling.
#[derive(Debug)]
pub(super) struct Timing {
    pub rtt: RttEstimator,
    /// Sequence number whose ACK times one round trip, and when it was sent (Karn: only
    /// never-retransmitted data is timed).
    pub rtt_probe: Option<(SeqNum, Instant)>,
    /// Retransmitted data is outstanding below this: its ACKs are ambiguous to the timing
    /// above (Karn), and are timed by the timestamp echo instead, when there is one.
    pub resent_up_to: Option<SeqNum>,
    /// The segment timing the current round for the congestion control's rate estimate.
    pub rate_probe: Option<RateProbe>,
    /// Bytes the peer has received of what we sent (acknowledged, or SACKed above SND.UNA):
    /// a high-water mark, so a scoreboard cleared after a timeout, or a block it could not
    /// keep, is not counted again when SACKed again.
    pub delivered: u64,
    /// Set when the application left the window unfilled: `delivered` at which the data
    /// then in flight will have arrived; rounds sent before that are application-limited
    /// (draft-cheng-iccrg-delivery-rate-estimation's C.app_limited).
    pub app_limited_until: Option<u64>,
}

/// Nagle's algorithm (RFC 896) in Minshall's variant.
#[derive(Debug)]
pub(super) struct Nagle {
    /// Nagle is off: small segments go at once.
    pub nodelay: bool,
    /// The end of the last small (less than a full segment) segment sent: Nagle, in
    /// Minshall's variant as Linux has it, holds a small tail only while this is unacknowledged.
    pub sml: SeqNum,
    /// The application pushed the data up to here (a message ended): no Nagle wait for it.
    pub push_end: Option<SeqNum>,
    /// The tail Nagle holds was already explained in the trace (one line per wait).
    pub noted: bool,
}

/// RFC 7323 timestamps and RFC 2018 SACK, when both sides offered them.
#[derive(Debug)]
pub(super) struct Negotiated {
    pub ts_enabled: bool,
    pub ts_recent: u32,
    /// Our timestamp clock: milliseconds since `ts_epoch`, plus a per-connection offset so
    /// it reveals nothing about uptime.
    pub ts_epoch: Instant,
    pub ts_offset: u32,
    pub sack_enabled: bool,
}

/// How the application and the host have set this connection up.
#[derive(Debug, Default)]
pub(super) struct Modes {
    /// Opened by a listener (passive) rather than by `connect` (active).
    pub passive: bool,
    /// The application let go of the connection.
    pub orphaned: bool,
    /// The stack's buffers are over budget: hold no out-of-order data.
    pub memory_pressure: bool,
    /// See [`Connection::report_arrivals`](super::Connection::report_arrivals).
    pub report_arrivals: bool,
}

/// Events for the tracer, kept only while tracing is on.
#[derive(Debug, Default)]
pub(super) struct EventLog {
    pub on: bool,
    pub events: Vec<ConnEvent>,
}

impl EventLog {
    pub(super) fn push(&mut self, e: ConnEvent) {
        if self.on {
            self.events.push(e);
        }
    }
}
