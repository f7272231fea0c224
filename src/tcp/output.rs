//! Segment generation: what to send next, pulled by the stack after every event.

use std::time::Instant;

use super::connection::Connection;
use super::state::State;
use crate::wire::{SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

impl Connection {
    /// The next segment to send, if any; its payload (if any) is copied into `payload`.
    /// Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant, payload: &mut Vec<u8>) -> Option<TcpHeaderOut> {
        payload.clear();
        if let Some(rst) = self.rst_out.take() {
            self.stats.segs_out += 1;
            return Some(rst);
        }
        let seg = match self.state {
            State::Closed => None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => Some(self.syn_segment(now)),
            State::SynSent => None,
            _ => self.data_segment(now, payload).or_else(|| self.ack_segment()),
        };
        if seg.is_some() {
            self.stats.segs_out += 1;
            self.update_timers(now);
        }
        seg
    }

    /// Unsent data (or a FIN) that the windows allow now.
    pub(super) fn has_sendable(&self) -> bool {
        match self.state {
            State::SynSent | State::SynReceived => self.snd_nxt == self.iss,
            State::Closed | State::TimeWait => false,
            _ => {
                let data_end = self.snd_una + self.send_buf.len() as u32;
                let fin_unsent = self.fin_queued && !self.fin_acked && self.snd_nxt <= data_end;
                let unsent = data_end > self.snd_nxt;
                let in_flight = self.snd_nxt - self.snd_una;
                let wnd = self.snd_wnd.min(self.cc.cwnd());
                fin_unsent || (unsent && in_flight < wnd)
            }
        }
    }

    /// SYN (active open) or SYN,ACK (passive or simultaneous open).
    fn syn_segment(&mut self, now: Instant) -> TcpHeaderOut {
        let mut options = TcpOptions { mss: Some(self.cfg.mss), ..Default::default() };
        let mut flags = TcpFlags::SYN;
        if self.state == State::SynSent {
            if self.cfg.window_scaling {
                options.window_scale = Some(self.rcv_wscale);
            }
        } else {
            flags |= TcpFlags::ACK;
            if self.rcv_wscale > 0 || self.snd_wscale > 0 {
                options.window_scale = Some(self.rcv_wscale);
            }
        }
        if self.snd_max == self.iss {
            self.rtt_probe = Some((self.iss + 1, now));
        } else {
            self.stats.retransmits += 1;
        }
        self.snd_nxt = self.iss + 1;
        self.snd_max = self.snd_max.max(self.snd_nxt);
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        let window = self.recv_buf.window().min(65535) as u16;
        self.rcv_adv = self.rcv_nxt + u32::from(window);
        self.ack_now = false;
        TcpHeaderOut {
            seq: self.iss,
            ack: if flags.contains(TcpFlags::ACK) { self.rcv_nxt } else { SeqNum(0) },
            flags,
            window,
            options,
        }
    }

    /// A data segment, a FIN, a fast retransmission or a window probe.
    fn data_segment(&mut self, now: Instant, payload: &mut Vec<u8>) -> Option<TcpHeaderOut> {
        if self.snd_una == self.iss || matches!(self.state, State::TimeWait | State::Closed) {
            return None;
        }
        let data_end = self.snd_una + self.send_buf.len() as u32;
        let (seq, len) = if self.retransmit_una {
            self.retransmit_una = false;
            (self.snd_una, (self.send_buf.len() as u32).min(self.snd_mss))
        } else {
            let seq = self.snd_nxt;
            let unsent = if data_end > seq { data_end - seq } else { 0 };
            let in_flight = seq - self.snd_una;
            let wnd = self.snd_wnd.min(self.cc.cwnd());
            let mut len = unsent.min(wnd.saturating_sub(in_flight)).min(self.snd_mss);
            if self.force_probe && self.snd_wnd == 0 {
                len = unsent.min(1);
            }
            // Sender silly window avoidance (RFC 1122 §4.2.3.4): no small segment while
            // earlier data is in flight, unless it is the last of what we have.
            if len < unsent && len < self.snd_mss && in_flight > 0 && len < self.max_snd_wnd / 2 {
                len = 0;
            }
            (seq, len)
        };
        self.force_probe = false;
        let fin = self.fin_queued && !self.fin_acked && seq + len == data_end && seq <= data_end;
        if len == 0 && !fin {
            return None;
        }
        let end = seq + len + u32::from(fin);
        if seq < self.snd_max {
            // Sent before: a retransmission, which Karn's rule says must not be timed.
            self.stats.retransmits += 1;
            self.rtt_probe = None;
        } else if self.rtt_probe.is_none() {
            self.rtt_probe = Some((end, now));
        }
        self.snd_max = self.snd_max.max(end);
        if seq == self.snd_nxt {
            self.snd_nxt = end;
        }
        self.send_buf.copy_range((seq - self.snd_una) as usize, len as usize, payload);
        let mut flags = TcpFlags::ACK;
        if len > 0 && seq + len == data_end {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        let window = self.advertise();
        Some(TcpHeaderOut { seq, ack: self.rcv_nxt, flags, window, options: TcpOptions::default() })
    }

    fn ack_segment(&mut self) -> Option<TcpHeaderOut> {
        if !self.ack_now {
            return None;
        }
        let window = self.advertise();
        Some(TcpHeaderOut {
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: TcpFlags::ACK,
            window,
            options: TcpOptions::default(),
        })
    }

    /// The window field to send, with receiver-side silly window avoidance: the right edge
    /// moves only in steps of at least min(buffer/2, MSS), and never moves left.
    pub(super) fn advertise(&mut self) -> u16 {
        self.ack_now = false;
        let free = self.recv_buf.window() as u32;
        let current = if self.rcv_adv > self.rcv_nxt { self.rcv_adv - self.rcv_nxt } else { 0 };
        let wnd = if free >= current + self.sws_threshold() { free } else { current };
        let field = (wnd >> self.rcv_wscale).min(65535);
        let edge = self.rcv_nxt + (field << self.rcv_wscale);
        if edge > self.rcv_adv {
            self.rcv_adv = edge;
        }
        field as u16
    }
}
