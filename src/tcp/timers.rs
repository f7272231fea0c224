//! The connection's timers: retransmission (RFC 6298), the early loss timer (RACK-style and
//! tail loss probes, RFC 8985), persist (zero-window probes), delayed ACK, TIME-WAIT and the
//! orphaned FIN-WAIT-2 timeout. Each is a separate deadline, so any number can be pending.

use std::io;
use std::time::{Duration, Instant};

use super::connection::{ConnEvent, Connection};
use super::state::State;

impl Connection {
    /// The earliest moment `on_timer` has work to do.
    pub fn poll_at(&self) -> Option<Instant> {
        [
            self.timers.rto_at,
            self.timers.persist_at,
            self.timers.time_wait_at,
            self.timers.fin_wait2_at,
            self.ack.delack_at,
            self.recovery.early_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// There is something to send now.
    pub fn wants_transmit(&self) -> bool {
        self.rst_out.is_some()
            || self.ack.now
            || self.recovery.retransmit_hole
            || self.timers.force_probe
            || self.recovery.tlp_probe
            || self.has_sendable()
    }

    pub fn on_timer(&mut self, now: Instant) {
        if self.timers.time_wait_at.is_some_and(|t| now >= t) {
            self.timers.time_wait_at = None;
            self.set_state(now, State::Closed);
            return;
        }
        if self.timers.fin_wait2_at.is_some_and(|t| now >= t) {
            self.timers.fin_wait2_at = None;
            self.set_state(now, State::Closed);
            return;
        }
        if self.ack.delack_at.is_some_and(|t| now >= t) {
            self.ack.delack_at = None;
            self.ack.now = true;
        }
        if self.recovery.early_at.is_some_and(|t| now >= t) {
            self.recovery.early_at = None;
            self.on_early_timer();
        }
        if self.timers.rto_at.is_some_and(|t| now >= t) {
            self.timers.rto_at = None;
            self.on_rto(now);
        }
        if self.timers.persist_at.is_some_and(|t| now >= t) {
            self.timers.persist_at = None;
            self.on_persist(now);
        }
    }

    fn on_rto(&mut self, now: Instant) {
        self.timers.retries += 1;
        let limit = if self.state.is_synchronized() { self.cfg.max_retries } else { self.cfg.syn_retries };
        if self.timers.retries > limit {
            self.event(ConnEvent::GaveUp);
            self.abort(now, io::ErrorKind::TimedOut);
            return;
        }
        let flight = self.snd.max - self.snd.una;
        self.event(ConnEvent::RtoFired { rto: self.timing.rtt.rto(), backoff: self.timers.retries });
        if self.state.is_synchronized() {
            let what = self.cc.on_rto(flight, self.snd.mss);
            self.congestion_event(what);
        }
        // Go-back-N retransmissions would time the wrong copy.
        self.timing.rate_probe = None;
        self.timing.rtt.back_off();
        self.recovery.early_at = None;
        self.timing.rtt_probe = None;
        self.recovery.recover = None;
        self.recovery.dup_acks = 0;
        self.recovery.retransmit_hole = false;
        self.recovery.credit = 0;
        // Keep the SACK information, so the resend skips what the peer holds; but a second
        // timeout in a row may mean the peer reneged on it (RFC 2018 §8): forget it then.
        if self.timers.retries >= 2 {
            self.recovery.scoreboard.clear();
        }
        // Go back: resend from the oldest unacknowledged byte (or the SYN), as cwnd allows.
        self.snd.nxt = self.snd.una;
        // Whatever the next transmission does, data outstanding keeps a timer.
        self.update_timers(now);
    }

    /// When to act if no ACK moves things on: a hole the peer's SACKs show gets about a
    /// round trip plus a quarter for reordering (RACK); otherwise one probe after two round
    /// trips (TLP), plus the delayed-ACK time when a single segment is out.
    fn early_deadline(&self, now: Instant) -> Option<Instant> {
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
            srtt * 2 + Duration::from_millis(40)
        } else {
            srtt * 2
        };
        let wait = wait.max(Duration::from_millis(2));
        // Only worth it while it comes before the retransmission timer.
        (wait < self.timing.rtt.rto()).then_some(now + wait)
    }

    fn on_early_timer(&mut self) {
        if self.snd.max <= self.snd.una || !self.state.is_synchronized() || self.snd.wnd == 0 {
            return;
        }
        if self.recovery.recover.is_some() {
            self.recovery.probed = true;
            self.recovery.rexmit_next = self.snd.una;
            self.recovery.rexmit_mark = self.snd.max;
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
        self.recovery.rexmit_next = self.snd.una;
        self.recovery.rexmit_mark = self.snd.max;
        self.recovery.recover = Some(self.snd.max);
        self.recovery.retransmit_hole = true;
        self.recovery.early_at = None;
        self.timing.rtt_probe = None;
        self.event(ConnEvent::FastRetransmit { seq: self.snd.una });
        self.congestion_event(what);
    }

    fn on_persist(&mut self, now: Instant) {
        if self.snd.wnd == 0 && !self.send_buf.is_empty() {
            self.timers.persist_unanswered += 1;
            if self.timers.persist_unanswered > self.cfg.max_retries {
                self.event(ConnEvent::GaveUp);
                self.abort(now, io::ErrorKind::TimedOut);
                return;
            }
            self.event(ConnEvent::ZeroWindowProbe);
            self.timers.persist_backoff = (self.timers.persist_backoff + 1).min(16);
            // One byte at SND.NXT after going back to SND.UNA, as a timeout does: the first
            // unacknowledged byte, inside the window the peer offered before it closed (a
            // byte past what is in flight would lie beyond even that), or with nothing in
            // flight the next new byte.
            self.snd.nxt = self.snd.una;
            self.timers.force_probe = true;
        }
        self.update_timers(now);
    }

    /// Arm or disarm the retransmission and persist timers to match what is outstanding.
    pub fn update_timers(&mut self, now: Instant) {
        if matches!(self.state, State::TimeWait | State::Closed) {
            self.timers.rto_at = None;
            self.timers.persist_at = None;
            return;
        }
        let syn_acked = self.snd.una != self.snd.iss;
        if syn_acked && self.snd.wnd == 0 && !self.send_buf.is_empty() {
            // A zero window: probe it on the persist timer (RFC 9293 §3.8.6.1), which never
            // gives up while the peer keeps answering. No loss probe either: it would send
            // into the closed window.
            self.timers.rto_at = None;
            self.recovery.early_at = None;
            if self.timers.persist_at.is_none() {
                let factor = 1u32 << self.timers.persist_backoff.min(16);
                let interval = self.timing.rtt.rto().saturating_mul(factor).min(self.cfg.max_rto);
                self.timers.persist_at = Some(now + interval);
            }
        } else {
            self.timers.persist_at = None;
            self.timers.persist_backoff = 0;
            if self.snd.max > self.snd.una {
                if self.timers.rto_at.is_none() {
                    self.timers.rto_at = Some(now + self.timing.rtt.rto());
                }
                if self.recovery.early_at.is_none() && self.state.is_synchronized() {
                    self.recovery.early_at = self.early_deadline(now);
                }
            } else {
                self.timers.rto_at = None;
                self.recovery.early_at = None;
            }
        }
    }
}
