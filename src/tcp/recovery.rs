//! Loss recovery: fast retransmit and fast recovery (RFC 5681, RFC 6582), SACK-based hole
//! retransmission (RFC 6675), limited transmit (RFC 3042), and the early timer's RACK-style
//! loss detection and tail loss probes (RFC 8985).

use std::time::Instant;

use super::sack::Scoreboard;
use crate::wire::SeqNum;

/// The loss-recovery state of one connection.
#[derive(Debug)]
pub(super) struct Recovery {
    pub dup_acks: u32,
    /// RFC 6582's `recover`: in fast recovery until this is acknowledged.
    pub recover: Option<SeqNum>,
    /// Resend the next lost range at the next `poll_transmit`.
    pub retransmit_hole: bool,
    /// What the peer's SACK blocks say it holds, and how far this recovery has resent.
    pub scoreboard: Scoreboard,
    pub rexmit_next: SeqNum,
    /// SND.MAX when this round of hole retransmissions began: once the peer SACKs data
    /// sent after it, any hole still open was lost again (RACK's idea, RFC 8985, by send
    /// order), and the round starts over instead of waiting for a timeout.
    pub rexmit_mark: SeqNum,
    /// In fast recovery: bytes we may send, earned by bytes the peer reports having
    /// received (acknowledged or SACKed) — RFC 6675's pipe, kept as a credit so a
    /// compressed ACK covering ten segments lets ten out.
    pub credit: u32,
    /// Newly SACKed bytes on the ACK being processed.
    pub newly_sacked: u32,
    /// Early loss detection, before the retransmission timer: with SACK blocks showing a
    /// hole, declare it lost after about a round trip (RACK, RFC 8985 §6); with no feedback
    /// at all, send a tail loss probe after two round trips (RFC 8985 §7), whose ACK then
    /// tells what was lost. Both turn 200 ms timeouts into sub-millisecond recoveries on a
    /// fast link.
    pub early_at: Option<Instant>,
    pub tlp_sent: bool,
    /// The early timer already resent the first hole in this recovery since the peer last
    /// told us anything new.
    pub probed: bool,
    /// Send a tail loss probe at the next `poll_transmit`.
    pub tlp_probe: bool,
    /// Bytes RFC 3042 lets us send beyond cwnd after the first duplicate ACKs.
    pub limited_transmit: u32,
}

impl Recovery {
    pub fn new(iss: SeqNum) -> Self {
        Recovery {
            dup_acks: 0,
            recover: None,
            retransmit_hole: false,
            scoreboard: Scoreboard::default(),
            rexmit_next: iss,
            rexmit_mark: iss,
            credit: 0,
            newly_sacked: 0,
            early_at: None,
            tlp_sent: false,
            probed: false,
            tlp_probe: false,
            limited_transmit: 0,
        }
    }
}
