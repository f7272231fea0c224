//! Segment generation: what to send next, pulled by the stack after every event.

use std::time::Instant;

use super::connection::{ConnEvent, Connection};
use super::sack::Around;
use super::state::State;
use super::tcb::RateProbe;
use crate::wire::{SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

/// One segment a send mode decided on: `len` bytes from `seq`, and the FIN after them.
#[derive(Clone, Copy, Debug)]
struct Plan {
    seq: SeqNum,
    len: u32,
    fin: bool,
    /// A tail loss probe (RFC 8985 §7.3): neither timed nor counted as new data sent.
    tail_probe: bool,
}

/// Where a segment's payload lies in the send buffer: `len` bytes from `offset` past SND.UNA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayloadRange {
    pub offset: usize,
    pub len: usize,
}

impl Connection {
    /// The next segment to send, if any; its payload (if any) is copied into `payload`.
    /// Call until it returns `None`.
    pub fn poll_transmit(&mut self, now: Instant, payload: &mut Vec<u8>) -> Option<TcpHeaderOut> {
        payload.clear();
        let (hdr, range) = self.poll_segment(now)?;
        self.write_payload(range, payload);
        Some(hdr)
    }

    /// [`poll_transmit`](Connection::poll_transmit) without the copy: the next segment's
    /// header and where its payload lies in the send buffer. Append the payload with
    /// [`write_payload`](Connection::write_payload) before anything else changes the
    /// connection; the host builds its packet that way, copying each byte once.
    pub fn poll_segment(&mut self, now: Instant) -> Option<(TcpHeaderOut, PayloadRange)> {
        self.payload_range = PayloadRange::default();
        if let Some(rst) = self.rst_out.take() {
            self.stats.segs_out += 1;
            return Some((rst, PayloadRange::default()));
        }
        let seg = match self.state {
            State::Closed => None,
            State::SynSent | State::SynReceived if self.snd.nxt == self.snd.iss => Some(self.syn_segment(now)),
            State::SynSent => None,
            _ => self.data_segment(now).or_else(|| self.ack_segment(now)),
        };
        if seg.is_some() {
            self.stats.segs_out += 1;
            self.update_timers(now);
        }
        seg.map(|hdr| (hdr, self.payload_range))
    }

    /// Append the payload `poll_segment` described to `out`.
    pub fn write_payload(&self, range: PayloadRange, out: &mut Vec<u8>) {
        if range.len > 0 {
            self.send_buf.copy_range(range.offset, range.len, out);
        }
    }

    /// How far past SND.UNA we may send: the peer's window, the congestion window, and
    /// RFC 3042's limited transmit (a new segment for each of the first two duplicate ACKs,
    /// so a small window still collects the three duplicates fast retransmit needs).
    pub(super) fn send_window(&self) -> u32 {
        self.snd.wnd.min(self.cc.cwnd().saturating_add(self.recovery.limited_transmit))
    }

    /// SYN (active open) or SYN,ACK (passive or simultaneous open).
    fn syn_segment(&mut self, now: Instant) -> TcpHeaderOut {
        let mut options = TcpOptions { mss: Some(self.cfg.mss), ..Default::default() };
        let mut flags = TcpFlags::SYN;
        if self.state == State::SynSent {
            // Offer everything we support; the SYN,ACK says what the peer accepts.
            if self.cfg.window_scaling {
                options.window_scale = Some(self.rcv.wscale);
            }
            options.sack_permitted = self.cfg.sack;
            if self.cfg.timestamps {
                options.timestamps = Some((self.ts_now(now), 0));
            }
        } else {
            // Answer only what the peer offered.
            flags |= TcpFlags::ACK;
            if self.rcv.wscale > 0 || self.snd.wscale > 0 {
                options.window_scale = Some(self.rcv.wscale);
            }
            options.sack_permitted = self.opts.sack_enabled;
            if self.opts.ts_enabled {
                options.timestamps = Some((self.ts_now(now), self.opts.ts_recent));
            }
        }
        if self.snd.max == self.snd.iss {
            self.timing.rtt_probe = Some((self.snd.iss + 1, now));
        } else {
            self.stats.retransmits += 1;
            self.resent(self.snd.iss + 1);
        }
        self.snd.nxt = self.snd.iss + 1;
        self.snd.max = self.snd.max.max(self.snd.nxt);
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        let window = self.recv_buf.window().min(65535) as u16;
        self.rcv.adv = self.rcv.nxt + u32::from(window);
        self.ack_sent();
        TcpHeaderOut {
            seq: self.snd.iss,
            ack: if flags.contains(TcpFlags::ACK) { self.rcv.nxt } else { SeqNum(0) },
            flags,
            window,
            options,
        }
    }

    /// A data segment, a FIN, a fast retransmission or a window probe: the plan of one send
    /// mode (a tail loss probe, a hole, new data in recovery, or normal sending), then the
    /// segment.
    fn data_segment(&mut self, now: Instant) -> Option<TcpHeaderOut> {
        if self.snd.una == self.snd.iss || matches!(self.state, State::TimeWait | State::Closed) {
            return None;
        }
        let data_end = self.snd.una + self.send_buf.len() as u32;
        let zero_window_probe = self.timers.force_probe && self.snd.wnd == 0;
        if std::mem::take(&mut self.recovery.tlp_probe) {
            if let Some(plan) = self.plan_tail_probe(data_end) {
                return Some(self.emit(now, plan, data_end));
            }
        }
        let in_recovery = self.recovery.recover.is_some();
        let may_resend = self.recovery.retransmit_hole || (in_recovery && self.recovery_allowance() > 0);
        let hole = if may_resend { self.next_hole() } else { None };
        let forced = std::mem::take(&mut self.recovery.retransmit_hole);
        let (seq, len) = if let Some(hole) = hole {
            self.plan_hole(hole, forced, data_end)
        } else if in_recovery {
            self.plan_recovery_new_data(data_end)?
        } else {
            self.plan_normal(data_end, zero_window_probe)
        };
        self.timers.force_probe = false;
        // A window probe carries no FIN: the FIN would lie beyond the window as well.
        let fin = self.snd.fin_queued
            && !self.snd.fin_acked
            && seq + len == data_end
            && seq <= data_end
            && !zero_window_probe;
        if len == 0 && !fin {
            return None;
        }
        Some(self.emit(now, Plan { seq, len, fin, tail_probe: false }, data_end))
    }

    /// Fast recovery resends (part of) a hole: as much as one segment takes.
    fn plan_hole(&mut self, (seq, end): (SeqNum, SeqNum), forced: bool, data_end: SeqNum) -> (SeqNum, u32) {
        let len = (end - seq).min(self.payload_limit()).min(data_end - seq);
        self.recovery.rexmit_next = seq + len.max(1);
        if !forced {
            self.recovery.credit = self.recovery.credit.saturating_sub(len.max(1));
        }
        (seq, len)
    }

    /// In recovery with no known hole: new data, as far as the credit and the peer's window
    /// allow. `None`: nothing may go.
    fn plan_recovery_new_data(&mut self, data_end: SeqNum) -> Option<(SeqNum, u32)> {
        let seq = self.snd.nxt.max(self.snd.max);
        let unsent = if data_end > seq { data_end - seq } else { 0 };
        let room = (self.snd.una + self.snd.wnd).0.wrapping_sub(seq.0).min(self.snd.wnd);
        let len = unsent.min(self.recovery_allowance()).min(room).min(self.payload_limit());
        if len == 0 {
            return None;
        }
        self.recovery.credit = self.recovery.credit.saturating_sub(len);
        Some((seq, len))
    }

    /// Normal sending from SND.NXT (again from SND.UNA after a timeout), within the windows,
    /// with sender silly window avoidance, Nagle, and the persist timer's one-byte probe.
    /// A length of 0 sends nothing (unless a FIN is due).
    fn plan_normal(&mut self, data_end: SeqNum, zero_window_probe: bool) -> (SeqNum, u32) {
        let mut seq = self.snd.nxt;
        let mut limit = u32::MAX;
        if seq < self.snd.max {
            // Resending after a timeout: skip what the peer has SACKed, and stop short
            // of the next block it holds. Never the left edge, though: RFC 2018 §8 says
            // it MUST go again whatever the SACKs said (the peer may have reneged).
            while seq != self.snd.una {
                let Around::Inside(end) = self.recovery.scoreboard.around(seq) else { break };
                seq = end;
            }
            self.snd.nxt = seq;
            if let Around::Before(next) = self.recovery.scoreboard.around(seq) {
                limit = next - seq;
            }
        }
        let unsent = if data_end > seq { (data_end - seq).min(limit) } else { 0 };
        let in_flight = seq - self.snd.una;
        let wnd = self.send_window();
        let full = self.payload_limit();
        // With segmentation offload one segment may carry many MSS (within the windows).
        let chunk = if self.send_chunk() > self.seg_size() { self.send_chunk() } else { full };
        let mut len = unsent.min(wnd.saturating_sub(in_flight)).min(chunk);
        if zero_window_probe {
            // One byte at SND.NXT (RFC 9293 §3.8.6.1): the peer takes it if its window
            // has opened, and answers with its window either way.
            len = unsent.min(1);
        }
        // Sender silly window avoidance (RFC 1122 §4.2.3.4): no small segment while
        // earlier data is in flight, unless it is the last of what we have.
        if len < unsent && len < full && in_flight > 0 && len < self.snd.max_wnd / 2 {
            len = 0;
        }
        let new_data = seq >= self.snd.max;
        if len > 0 && len == unsent && len < full && in_flight > 0 && new_data && !zero_window_probe {
            len = self.nagle_allows(seq, len);
        }
        (seq, len)
    }

    /// RFC 8985 §7.3: one new segment if the peer's window has room beyond what is in flight
    /// (cwnd does not limit a probe), otherwise the last segment sent, again. Either way
    /// within the window the peer offered: a probe never sends past its right edge, nor moves
    /// SND.MAX over data never sent (a zero window is the persist timer's, with its one-byte
    /// probes).
    fn plan_tail_probe(&self, data_end: SeqNum) -> Option<Plan> {
        let wnd_end = self.snd.una + self.snd.wnd;
        let fin_pending = self.snd.fin_queued && !self.snd.fin_acked;
        let (seq, len, fin) = if wnd_end > self.snd.max && data_end > self.snd.max {
            let seq = self.snd.max;
            let len = (data_end - seq).min(wnd_end - seq).min(self.payload_limit());
            // The FIN takes a sequence number too: only inside the window.
            (seq, len, fin_pending && seq + len == data_end && data_end < wnd_end)
        } else {
            let fin_sent = fin_pending && self.snd.max > data_end;
            // The end of the data sent, cut at the window's right edge.
            let end = self.snd.max.min(data_end).min(wnd_end.max(self.snd.una));
            let len = (end - self.snd.una).min(self.payload_limit());
            let fin = fin_sent && end == data_end;
            if len == 0 && !fin {
                return None;
            }
            (end - len, len, fin)
        };
        Some(Plan { seq, len, fin, tail_probe: true })
    }

    /// Turn a plan into a segment: Karn's rule and the rate sample for what it carries, the
    /// send sequence space moved past it, and the header, which pays off the ACK owed.
    fn emit(&mut self, now: Instant, plan: Plan, data_end: SeqNum) -> TcpHeaderOut {
        let Plan { seq, len, fin, tail_probe } = plan;
        let end = seq + len + u32::from(fin);
        if seq < self.snd.max {
            // Sent before: a retransmission, which Karn's rule says must not be timed.
            self.stats.retransmits += 1;
            self.resent(end);
            self.forget_rate_probe_within(seq, end);
            // A probe resending the tail leaves Nagle's record as it is.
            if !tail_probe {
                self.note_small(seq, len);
            }
        } else {
            // (A loss probe's new data is not timed: it went out beyond cwnd.)
            if !tail_probe {
                self.time_new_data(now, end, data_end);
            }
            self.note_small(seq, len);
        }
        self.snd.max = self.snd.max.max(end);
        let moves_nxt = if tail_probe { self.snd.nxt < end && seq <= self.snd.nxt } else { seq == self.snd.nxt };
        if moves_nxt {
            self.snd.nxt = end;
        }
        self.payload_range = PayloadRange { offset: (seq - self.snd.una) as usize, len: len as usize };
        let mut flags = TcpFlags::ACK;
        // A probe pushes whatever it carries: the peer should answer at once.
        if len > 0 && (tail_probe || seq + len == data_end) {
            flags |= TcpFlags::PSH;
        }
        if fin {
            flags |= TcpFlags::FIN;
        }
        let window = self.advertise_and_clear_ack_debt();
        let options = self.segment_options(now);
        TcpHeaderOut { seq, ack: self.rcv.nxt, flags, window, options }
    }

    /// New data from `end`'s segment leaves: time its round trip if nothing is being timed,
    /// note whether the application is what limits the rate, and re-arm the loss probe.
    fn time_new_data(&mut self, now: Instant, end: SeqNum, data_end: SeqNum) {
        if self.timing.rtt_probe.is_none() {
            self.timing.rtt_probe = Some((end, now));
        }
        let flight = end - self.snd.una;
        if end >= data_end && flight < self.cc.cwnd() {
            // Nothing more to send with room in the window: until what is in flight now
            // has arrived, the application sets the rate, not the path.
            self.timing.app_limited_until = Some(self.timing.delivered + u64::from(flight));
        }
        // (A zero-window probe would time the stall, not the path.)
        if self.timing.rate_probe.is_none() && self.snd.wnd > 0 {
            let app_limited = self.timing.app_limited_until.is_some();
            self.timing.rate_probe =
                Some(RateProbe { end, sent_at: now, delivered: self.timing.delivered, app_limited });
        }
        // New data re-arms the loss probe for the flight as it now stands (RFC 8985 §7.2).
        self.recovery.early_at = None;
    }

    /// Data up to `end` went out again: nothing in flight is timed by sequence any more
    /// (Karn), and ACKs up to `end` are left to the timestamp echo.
    fn resent(&mut self, end: SeqNum) {
        self.timing.rtt_probe = None;
        self.timing.resent_up_to = Some(self.timing.resent_up_to.map_or(end, |up_to| up_to.max(end)));
    }

    /// Nagle's algorithm (RFC 896) in Minshall's variant, as Linux has it: the small tail of
    /// what we have waits only while an earlier *small* segment is unacknowledged, so many
    /// small writes still become few segments. The RFC's rule (wait while anything is
    /// unacknowledged) makes a response whose last segment is small wait for the peer's
    /// delayed ACK, 40 ms, on every request of a keep-alive connection. No wait with Nagle
    /// off, for data the application pushed, or with the FIN queued (nothing more will come
    /// to fill the segment). Returns the length to send: `len`, or 0 to wait.
    fn nagle_allows(&mut self, seq: SeqNum, len: u32) -> u32 {
        let pushed = self.nagle.push_end.is_some_and(|p| seq + len <= p);
        if self.nagle.nodelay || pushed || self.snd.fin_queued {
            return len;
        }
        // As Linux's tcp_minshall_check: sent (not rewound by a timeout) and not acknowledged.
        let held = self.nagle.sml > self.snd.una && self.nagle.sml <= self.snd.nxt;
        if !(held && self.nagle.noted) {
            self.nagle.noted = held;
            self.event(ConnEvent::Nagle { len, held, small_end: self.nagle.sml - self.snd.iss });
        }
        if held {
            0
        } else {
            len
        }
    }

    /// Remember where the last segment of new data that was not full ended (Minshall's
    /// SND.SML). With segmentation offload, a chunk whose last piece is short counts.
    fn note_small(&mut self, seq: SeqNum, len: u32) {
        if seq >= self.snd.max && len > 0 && !len.is_multiple_of(self.payload_limit()) {
            self.nagle.sml = seq + len;
        }
        self.nagle.noted = false;
        if self.nagle.push_end.is_some_and(|p| p <= self.snd.una) {
            self.nagle.push_end = None;
        }
    }

    /// A retransmission of the timed segment: its ACK may answer the second copy, and the
    /// round would be timed from the first, so it is not timed at all (Karn's rule again).
    fn forget_rate_probe_within(&mut self, seq: SeqNum, end: SeqNum) {
        if self.timing.rate_probe.is_some_and(|p| seq < p.end && p.end - 1 < end) {
            self.timing.rate_probe = None;
        }
    }

    fn ack_segment(&mut self, now: Instant) -> Option<TcpHeaderOut> {
        if !self.ack.now {
            return None;
        }
        let window = self.advertise_and_clear_ack_debt();
        let options = self.segment_options(now);
        // SND.MAX, not SND.NXT: after a timeout rewinds SND.NXT, the peer's RCV.NXT may be
        // past it, and an ACK below RCV.NXT fails its acceptability test and is thrown away
        // whole, ACK field included. Two sides both retransmitting would then deadlock.
        Some(TcpHeaderOut { seq: self.snd.max, ack: self.rcv.nxt, flags: TcpFlags::ACK, window, options })
    }

    /// Payload bytes that fit in one segment with the options it will carry: the MSS counts
    /// none (RFC 6691), so SACK blocks riding on data take room from the payload, or the
    /// packet would outgrow the MTU. While blocks may be sent, room for as many as fit is
    /// kept (a few bytes, only while data is missing or a D-SACK is owed).
    /// SACK blocks that fit in the 40 bytes of options: 3 beside timestamps, else 4 (RFC 2018 §3).
    fn sack_blocks_that_fit(&self) -> u32 {
        if self.opts.ts_enabled {
            3
        } else {
            4
        }
    }

    pub(super) fn payload_limit(&self) -> u32 {
        let sack = self.opts.sack_enabled && (self.ack.dsack.is_some() || self.recv_buf.has_out_of_order());
        if !sack {
            return self.seg_size();
        }
        let blocks = self.sack_blocks_that_fit();
        // Kind, length, 8 bytes a block; padded to a 4-byte boundary with NOPs.
        let reserve = (2 + 8 * blocks).div_ceil(4) * 4;
        self.seg_size().saturating_sub(reserve).max(1)
    }

    /// Options on a synchronized segment: timestamps, a D-SACK block once after a duplicate
    /// arrived (RFC 2883), and SACK blocks while data is missing: the block of the latest
    /// arrival first, then those of the arrivals before it, then the rest (RFC 2018 §4).
    fn segment_options(&mut self, now: Instant) -> TcpOptions {
        let mut o = TcpOptions::default();
        if self.opts.ts_enabled {
            o.timestamps = Some((self.ts_now(now), self.opts.ts_recent));
        }
        if !self.opts.sack_enabled {
            return o;
        }
        let room = self.sack_blocks_that_fit() as usize;
        let mut n = 0;
        let dsack = self.ack.dsack.take();
        if let Some(d) = dsack {
            o.sack[0] = d;
            n = 1;
        }
        // The D-SACK block stands apart: the blocks after it are listed even if one equals it.
        let first = n;
        if self.recv_buf.has_out_of_order() {
            // RFC 2883 §4 (4): a duplicate above RCV.NXT is followed by the block holding it.
            let holding =
                dsack.and_then(|(l, r)| self.recv_buf.out_of_order_blocks().find(|&(bl, br)| bl <= l && r <= br));
            let recent = self
                .ack
                .sack_recent
                .iter()
                .flatten()
                .filter_map(|&s| self.recv_buf.out_of_order_blocks().find(|&(l, r)| l <= s && s < r));
            for block in holding.into_iter().chain(recent).chain(self.recv_buf.out_of_order_blocks()) {
                if n == room {
                    break;
                }
                if !o.sack[first..n].contains(&block) {
                    o.sack[n] = block;
                    n += 1;
                }
            }
        }
        o.sack_len = n as u8;
        o
    }

    /// Every segment we send acknowledges RCV.NXT: nothing is owed any more.
    pub(super) fn ack_sent(&mut self) {
        self.ack.now = false;
        self.ack.ooo_since = 0;
        self.ack.at_once = false;
        self.ack.delack_at = None;
        self.ack.unacked_bytes = 0;
        self.ack.last_sent = self.rcv.nxt;
    }

    /// For a segment about to go: clear the ACK owed (the segment acknowledges RCV.NXT) and
    /// return the window field to send, with receiver-side silly window avoidance: the right
    /// edge moves only in steps of at least min(buffer/2, MSS), and never moves left.
    pub(super) fn advertise_and_clear_ack_debt(&mut self) -> u16 {
        self.ack_sent();
        let free = self.recv_buf.window() as u32;
        let current = if self.rcv.adv > self.rcv.nxt { self.rcv.adv - self.rcv.nxt } else { 0 };
        let wnd = if free >= current + self.sws_threshold() { free } else { current };
        let field = (wnd >> self.rcv.wscale).min(65535);
        let edge = self.rcv.nxt + (field << self.rcv.wscale);
        if edge > self.rcv.adv {
            self.rcv.adv = edge;
        }
        field as u16
    }
}
