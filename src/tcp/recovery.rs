//! Loss recovery: fast retransmit and fast recovery (RFC 5681, RFC 6582), SACK-based hole
//! retransmission (RFC 6675), limited transmit (RFC 3042), and the early timer's RACK-style
//! loss detection and tail loss probes (RFC 8985).

use std::time::{Duration, Instant};

use super::connection::{ConnEvent, Connection};

use super::sack::Scoreboard;
use crate::wire::{SeqNum, TcpSegment};

/// RFC 8985 §7.2's WCDelAckT, the longest the peer may hold its ACK of a lone segment: a
/// probe for a single segment in flight waits this much more than two round trips. 40 ms is
/// Linux's delayed-ACK minimum, what the peers on a TUN use; the RFC's conservative 200 ms
/// would leave a lost tail waiting as long as the retransmission timer.
const PEER_DELAYED_ACK_WORST: Duration = Duration::from_millis(40);

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
    pub(super) fn new(iss: SeqNum) -> Self {
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

    /// A new round of hole retransmissions: from SND.UNA, with SND.MAX as its mark.
    pub(super) fn restart_round(&mut self, una: SeqNum, max: SeqNum) {
        self.rexmit_next = una;
        self.rexmit_mark = max;
    }

    /// The peer acknowledged new data: the duplicate count, limited transmit and the early
    /// timer start over.
    pub(super) fn on_progress(&mut self) {
        self.early_at = None;
        self.tlp_sent = false;
        self.probed = false;
        self.dup_acks = 0;
        self.limited_transmit = 0;
    }

    /// A retransmission timeout ends fast recovery; the SACK scoreboard goes too when
    /// `forget_sacks`.
    pub(super) fn reset(&mut self, forget_sacks: bool) {
        self.early_at = None;
        self.recover = None;
        self.dup_acks = 0;
        self.retransmit_hole = false;
        self.credit = 0;
        if forget_sacks {
            self.scoreboard.clear();
        }
    }
}

impl Connection {
    /// The peer's SACK blocks: update the scoreboard; once data sent after this round of
    /// hole retransmissions began is SACKed, a hole still open was lost again.
    pub(super) fn on_sack_blocks(&mut self, seg: &TcpSegment<'_>) {
        self.recovery.newly_sacked =
            self.recovery.scoreboard.update(seg.options.sack_blocks(), self.snd.una, self.snd.max);
        if self.recovery.newly_sacked > 0 {
            self.recovery.probed = false;
        }
        let resent_some = self.recovery.rexmit_next > self.snd.una;
        if self.recovery.recover.is_some()
            && resent_some
            && self.recovery.scoreboard.highest().is_some_and(|h| h > self.recovery.rexmit_mark)
        {
            self.recovery.restart_round(self.snd.una, self.snd.max);
            self.event(ConnEvent::FastRetransmit { seq: self.snd.una });
        }
    }

    /// SND.UNA advanced by `data` bytes to `ack`: leave fast recovery once `recover` is
    /// acknowledged; a partial ACK short of it means the next hole is lost too (RFC 6582).
    pub(super) fn recovery_on_ack(&mut self, ack: SeqNum, data: u32) {
        match self.recovery.recover {
            Some(recover) if ack >= recover => {
                self.recovery.recover = None;
                self.recovery.credit = 0;
                let flight = self.snd.max - self.snd.una;
                let what = self.cc.on_recovery_end(flight, self.snd.mss);
                self.congestion_event(what);
            }
            Some(_) => {
                // Partial ACK: the next hole is lost too; resend it at once (RFC 6582).
                self.cc.on_partial_ack(data, self.snd.mss);
                self.recovery.credit += data + self.recovery.newly_sacked;
                self.recovery.rexmit_next = self.recovery.rexmit_next.max(self.snd.una);
                self.recovery.retransmit_hole = true;
            }
            None if data > 0 => self.cc.on_ack(data, self.snd.mss, self.send_chunk()),
            None => {}
        }
    }

    /// When to act if no ACK moves things on: a hole the peer's SACKs show gets about a
    /// round trip plus a quarter for reordering (RACK); otherwise one probe after two round
    /// trips (TLP), plus the delayed-ACK time when a single segment is out.
    pub(super) fn early_deadline(&self, now: Instant) -> Option<Instant> {
        if !self.cfg.early_retransmit {
            return None;
        }
        let srtt = self.timing.rtt.srtt()?;
        let wait = if self.recovery.recover.is_some() && self.recovery.probed {
            // One resend per round of news from the peer; after that, the backed-off
            // retransmission timer (RFC 6675 and 8985 resend again only on evidence).
            return None;
        } else if self.recovery.recover.is_some() {
            // In recovery with no ACK for two round trips: a retransmission or its ACK was
            // lost. Resend the first hole rather than wait out the retransmission timer.
            srtt * 2
        } else if !self.recovery.scoreboard.is_empty() {
            srtt + srtt / 4
        } else if self.recovery.tlp_sent {
            return None;
        } else if self.snd.max - self.snd.una <= self.seg_size() {
            srtt * 2 + PEER_DELAYED_ACK_WORST
        } else {
            srtt * 2
        };
        let wait = wait.max(Duration::from_millis(2));
        // Only worth it while it comes before the retransmission timer.
        (wait < self.timing.rtt.rto()).then_some(now + wait)
    }

    pub(super) fn on_early_timer(&mut self) {
        if self.snd.max <= self.snd.una || !self.state.is_synchronized() || self.snd.wnd == 0 {
            return;
        }
        if self.recovery.recover.is_some() {
            self.recovery.probed = true;
            self.recovery.restart_round(self.snd.una, self.snd.max);
            self.recovery.retransmit_hole = true;
            self.event(ConnEvent::FastRetransmit { seq: self.snd.una });
        } else if !self.recovery.scoreboard.is_empty() {
            // The peer holds data above SND.UNA and has had a round trip to fill the hole.
            self.enter_recovery();
        } else if !self.recovery.tlp_sent {
            self.recovery.tlp_sent = true;
            self.recovery.tlp_probe = true;
            // RFC 8985 §7.3: after the probe the retransmission timer is re-armed (a full RTO
            // from now), so the probe has a round trip to be answered before the RTO fires.
            self.timers.rto_at = None;
            self.event(ConnEvent::TailLossProbe);
        }
    }

    /// Fast retransmit: halve, remember the recovery point, resend the first hole.
    pub(super) fn enter_recovery(&mut self) {
        let flight = self.snd.max - self.snd.una;
        let what = self.cc.on_fast_retransmit(flight, self.snd.mss);
        self.recovery.limited_transmit = 0;
        self.recovery.credit = 0;
        self.recovery.restart_round(self.snd.una, self.snd.max);
        self.recovery.recover = Some(self.snd.max);
        self.recovery.retransmit_hole = true;
        self.recovery.early_at = None;
        self.timing.rtt_probe = None;
        self.event(ConnEvent::FastRetransmit { seq: self.snd.una });
        self.congestion_event(what);
    }

    /// Three duplicate ACKs mean a segment was lost while later ones arrived: fast
    /// retransmit and enter fast recovery (RFC 5681 §3.2, RFC 6582).
    pub(super) fn on_duplicate_ack(&mut self) {
        self.recovery.dup_acks += 1;
        if self.recovery.recover.is_none() && self.recovery.dup_acks < 3 {
            self.recovery.limited_transmit = self.recovery.dup_acks * self.seg_size();
        }
        if self.recovery.recover.is_some() {
            self.cc.on_dup_ack_in_recovery(self.snd.mss);
            // What left the network may be replaced: the newly SACKed bytes, or one segment
            // per duplicate when the peer does not SACK (RFC 5681's inflation).
            let left = if self.recovery.newly_sacked > 0 { self.recovery.newly_sacked } else { self.seg_size() };
            self.recovery.credit = self.recovery.credit.saturating_add(left);
        } else if self.recovery.dup_acks >= 3 || self.recovery.scoreboard.sacked_bytes() >= 3 * self.seg_size() {
            // RFC 6675 §5: three duplicates, or three segments' worth SACKed above SND.UNA.
            self.enter_recovery();
        } else {
            // New SACK information: re-arm the early timer from now (RACK).
            self.recovery.early_at = None;
        }
    }

    /// New data fast recovery may send: the credit earned from what left the network, or
    /// more while the estimated flight (sent, neither acknowledged nor SACKed) is below
    /// ssthresh, the window recovery aims for (RFC 6675 §5 sends while cwnd - pipe >= 1 SMSS).
    /// Without that, a lost retransmission with everything else SACKed leaves nothing in
    /// flight to bring news, and recovery waits out the retransmission timer.
    pub(super) fn recovery_allowance(&self) -> u32 {
        let flight = self.snd.max - self.snd.una;
        let pipe = flight.saturating_sub(self.recovery.scoreboard.sacked_bytes());
        self.recovery.credit.max(self.cc.ssthresh().saturating_sub(pipe))
    }

    /// The range to resend in fast recovery: the next hole the scoreboard knows of, or
    /// without SACK information the segment at SND.UNA (NewReno).
    pub(super) fn next_hole(&self) -> Option<(SeqNum, SeqNum)> {
        let from = self.recovery.rexmit_next.max(self.snd.una);
        let data_end = self.snd.una + self.send_buf.len() as u32;
        match self.recovery.scoreboard.next_hole(from) {
            Some((l, r)) => Some((l, r.min(data_end.max(l)))),
            None if from == self.snd.una => Some((self.snd.una, data_end)),
            None => None,
        }
    }
}
