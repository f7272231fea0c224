//! The connection's timers: retransmission (RFC 6298), the early loss timer (RACK-style and
//! tail loss probes, RFC 8985), persist (zero-window probes), delayed ACK, TIME-WAIT and the
//! orphaned FIN-WAIT-2 timeout. Each is a separate deadline, so any number can be pending.

use std::io;
use std::time::Instant;

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
        self.timing.rtt_probe = None;
        // Keep the SACK information, so the resend skips what the peer holds; but a second
        // timeout in a row may mean the peer reneged on it (RFC 2018 §8): forget it then.
        self.recovery.reset(self.timers.retries >= 2);
        // Go back: resend from the oldest unacknowledged byte (or the SYN), as cwnd allows.
        self.snd.nxt = self.snd.una;
        // Whatever the next transmission does, data outstanding keeps a timer.
        self.update_timers(now);
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
