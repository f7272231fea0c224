//! Segment arrival, RFC 9293 §3.10.7, one small method per rule. The checks run in the RFC's
//! order: sequence number, RST, SYN, ACK, text, FIN.

use std::io;
use std::time::Instant;

use super::congestion::RoundSample;
use super::connection::{ConnEvent, Connection};
use super::sack::Around;
use super::state::State;
use crate::wire::{DropReason, SeqNum, TcpFlags, TcpHeaderOut, TcpSegment};

/// Whether processing a segment should go on to the next rule.
enum Flow {
    Continue,
    Stop,
}

impl Connection {
    /// Process one arriving segment. Returns the reason when the segment was dropped (for the
    /// stack's counters); any answer it calls for is left for `poll_transmit`.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Result<(), DropReason> {
        self.stats.segs_in += 1;
        let before = self.log.events.len();
        let result = match self.state {
            State::Closed => Err(DropReason::AfterClose),
            State::SynSent => self.on_segment_syn_sent(now, seg),
            _ => self.on_segment_synchronizing(now, seg),
        };
        self.update_timers(now);
        if let Err(reason) = result {
            // Every drop gets a reason line in the trace, with detail where a rule gave one.
            if self.log.on && !self.log.events[before..].iter().any(|e| matches!(e, ConnEvent::Dropped { .. })) {
                self.drop_note(|c| format!("{reason} in {}", c.state));
            }
        }
        result
    }

    /// SYN-SENT (RFC 9293 §3.10.7.3): waiting for the peer's SYN (and our SYN's ACK).
    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Result<(), DropReason> {
        let flags = seg.flags;
        if flags.contains(TcpFlags::ACK) && (seg.ack <= self.snd.iss || seg.ack > self.snd.max) {
            if !flags.contains(TcpFlags::RST) {
                self.rst_out = Some(TcpHeaderOut { seq: seg.ack, flags: TcpFlags::RST, ..Default::default() });
            }
            self.drop_note(|_| format!("SYN-SENT: ack {} is not for our SYN", seg.ack));
            return Err(DropReason::AckOfUnsent);
        }
        if flags.contains(TcpFlags::RST) {
            if flags.contains(TcpFlags::ACK) {
                self.error = Some(io::ErrorKind::ConnectionRefused);
                self.set_state(now, State::Closed);
                return Ok(());
            }
            return Err(DropReason::RstWithoutAckInSynSent);
        }
        if !flags.contains(TcpFlags::SYN) {
            return Err(DropReason::NoSynInSynSent);
        }
        self.take_peer_syn(seg);
        self.snd.wl2 = seg.ack;
        self.ack.now = true;
        if flags.contains(TcpFlags::ACK) {
            self.ack_received(now, seg.ack, None);
            self.set_state(now, State::Established);
            self.receive_text(now, seg.seq + 1, seg.payload, flags.contains(TcpFlags::FIN));
        } else {
            // Simultaneous open: answer with SYN,ACK (our SYN again, now acknowledging theirs).
            self.snd.nxt = self.snd.iss;
            if !seg.payload.is_empty() || flags.contains(TcpFlags::FIN) {
                let text = seg.payload[..seg.payload.len().min(self.recv_buf.window())].to_vec();
                self.rcv.syn_text = Some(Box::new((text, flags.contains(TcpFlags::FIN))));
            }
            self.set_state(now, State::SynReceived);
        }
        Ok(())
    }

    /// Every state from SYN-RECEIVED on (RFC 9293 §3.10.7.4).
    fn on_segment_synchronizing(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Result<(), DropReason> {
        // The peer did not hear our SYN,ACK and sent its SYN again: answer with the SYN,ACK
        // again rather than a bare ACK, as real stacks do.
        if self.state == State::SynReceived
            && seg.flags.contains(TcpFlags::SYN)
            && !seg.flags.contains(TcpFlags::ACK)
            && seg.seq == self.rcv.irs
        {
            self.snd.nxt = self.snd.iss;
            return Ok(());
        }
        self.check_timestamp(seg)?;
        if let Flow::Stop = self.check_sequence(now, seg)? {
            return Ok(());
        }
        // RFC 7323 §4.3: remember the timestamp to echo from segments at the left edge.
        if let (true, Some((tsval, _))) = (self.opts.ts_enabled, seg.options.timestamps) {
            if seg.seq <= self.ack.last_sent && ts_newer_or_equal(tsval, self.opts.ts_recent) {
                self.opts.ts_recent = tsval;
            }
        }
        if seg.flags.contains(TcpFlags::RST) {
            self.on_rst(now, seg);
            return Ok(());
        }
        if seg.flags.contains(TcpFlags::SYN) {
            let syn_in_window = seg.seq.in_range(self.rcv.nxt, self.receive_window(true).max(1));
            if self.cfg.rfc793_rst_syn && !syn_in_window {
                // The segment overlaps the window but its SYN lies before it: RFC 793 answers
                // a SYN outside the window with an ACK.
                self.ack.now = true;
                return Err(DropReason::OutsideWindow);
            }
            if self.cfg.rfc793_rst_syn {
                // RFC 793 §3.9 (the option RFC 5961 replaces): a SYN in the window is an
                // error; reset the connection and tell the peer so.
                self.rst_out = Some(TcpHeaderOut {
                    seq: self.snd.max,
                    ack: self.rcv.nxt,
                    flags: TcpFlags::RST | TcpFlags::ACK,
                    ..Default::default()
                });
                self.drop_note(|_| "SYN inside the window: reset (RFC 793, insecure option)".into());
                self.reset_by_peer(now);
                return Ok(());
            }
            // RFC 5961 §4: a SYN on a synchronized connection gets a challenge ACK; a genuine
            // peer that restarted answers it with a RST we can then believe.
            self.ack.challenge = true;
            self.drop_note(|_| "SYN on a synchronized connection: challenge ACK (RFC 5961)".into());
            return Err(DropReason::SynOnOpenConnection);
        }
        if !seg.flags.contains(TcpFlags::ACK) {
            return Err(DropReason::NoAckFlag);
        }
        if let Flow::Stop = self.check_ack(now, seg)? {
            return Ok(());
        }
        if self.state.receives_data() {
            self.receive_text(now, seg.seq, seg.payload, seg.flags.contains(TcpFlags::FIN));
        } else if seg.flags.contains(TcpFlags::FIN) || !seg.payload.is_empty() {
            // Text or FIN after the peer's FIN (a retransmission): acknowledge again.
            self.ack.now = true;
            if self.state == State::TimeWait {
                self.timers.time_wait_at = Some(now + self.cfg.msl * 2);
            }
        }
        Ok(())
    }

    /// PAWS (RFC 7323 §5.3): a segment whose timestamp is older than the last one echoed is
    /// an old duplicate from a previous wrap of the sequence space.
    fn check_timestamp(&mut self, seg: &TcpSegment<'_>) -> Result<(), DropReason> {
        let Some((tsval, _)) = seg.options.timestamps else { return Ok(()) };
        if !self.opts.ts_enabled || seg.flags.contains(TcpFlags::RST) || ts_newer_or_equal(tsval, self.opts.ts_recent) {
            return Ok(());
        }
        // A reordered pure ACK is no old duplicate of data; dropping it would throw away
        // its ACK and SACK information (Linux makes the same exception).
        if seg.payload.is_empty() && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::FIN) {
            return Ok(());
        }
        self.ack.now = true;
        self.drop_note(|c| format!("PAWS: timestamp {tsval} is older than {}", c.opts.ts_recent));
        Err(DropReason::StaleTimestamp)
    }

    /// RFC 9293's acceptability test: does any part of the segment fall in the window?
    /// If not, answer with an ACK (unless it is a RST) and drop it.
    fn check_sequence(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Result<Flow, DropReason> {
        let wnd = self.receive_window(seg.flags.contains(TcpFlags::SYN));
        let len = seg.seg_len();
        let acceptable = match (len, wnd) {
            (0, 0) => seg.seq == self.rcv.nxt,
            (0, _) => seg.seq.in_range(self.rcv.nxt, wnd),
            // A zero window still takes the ACK, RST and FIN of a segment at RCV.NXT; its
            // data is trimmed off later.
            (_, 0) => seg.seq == self.rcv.nxt,
            (_, _) => seg.seq.in_range(self.rcv.nxt, wnd) || (seg.seq + (len - 1)).in_range(self.rcv.nxt, wnd),
        };
        if acceptable {
            return Ok(Flow::Continue);
        }
        if !seg.flags.contains(TcpFlags::RST) {
            self.ack.now = true;
            // Data we already have: a spurious retransmission, reported as a D-SACK.
            let data_end = seg.seq + seg.payload.len() as u32;
            if self.opts.sack_enabled && !seg.payload.is_empty() && data_end <= self.rcv.nxt {
                self.ack.dsack = Some((seg.seq, data_end));
            }
        }
        if self.state == State::TimeWait && seg.flags.contains(TcpFlags::FIN) {
            // The peer did not hear our ACK of its FIN: acknowledge again and wait 2 MSL
            // from now (RFC 9293 §3.10.7.4, TIME-WAIT).
            self.timers.time_wait_at = Some(now + self.cfg.msl * 2);
        }
        if self.log.on {
            let (_, irs) = self.isns();
            self.drop_note(|c| {
                format!(
                    "outside window: seq {} not in [{}, {})",
                    seg.seq - irs,
                    c.rcv.nxt - irs,
                    (c.rcv.nxt + wnd) - irs
                )
            });
        }
        Err(DropReason::OutsideWindow)
    }

    /// The window we accept into: what we advertised, or more if the buffer has room, but
    /// never more than the window field can say (65,535 bytes unscaled). Beyond it lies what
    /// RFC 9293 §3.10.7.4 calls outside the window: a RST there must be ignored, not
    /// challenged, and a peer cannot have been told it may send there.
    fn receive_window(&self, syn: bool) -> u32 {
        if self.state == State::TimeWait && !syn {
            // Both FINs are in: no sequence number past RCV.NXT can be valid any more, so
            // anything but a segment exactly at RCV.NXT is answered with an ACK. (A SYN is
            // judged against the window, as a possible new incarnation, as BSD does.)
            return 0;
        }
        let advertised = if self.rcv.adv > self.rcv.nxt { self.rcv.adv - self.rcv.nxt } else { 0 };
        let most = 65_535u32 << self.rcv.wscale;
        advertised.max((self.recv_buf.window() as u32).min(most))
    }

    /// RST handling with RFC 5961 §3's defence against blind resets: only an exact match
    /// resets; one merely inside the window gets a challenge ACK.
    /// With the `rfc793_rst_syn` option, any RST in the window resets (RFC 793 §3.9).
    fn on_rst(&mut self, now: Instant, seg: &TcpSegment<'_>) {
        if seg.seq != self.rcv.nxt && !self.cfg.rfc793_rst_syn {
            self.ack.challenge = true;
            self.drop_note(|_| "RST inside the window but not at RCV.NXT: challenge ACK (RFC 5961)".into());
            return;
        }
        self.reset_by_peer(now);
    }

    /// The peer reset the connection: CLOSED, and the application told why.
    fn reset_by_peer(&mut self, now: Instant) {
        match self.state {
            State::SynReceived if self.modes.passive => {
                // Back to LISTEN: the application never saw this connection.
            }
            State::SynReceived => self.error = Some(io::ErrorKind::ConnectionRefused),
            // RFC 9293 §3.10.7.4 asks only CLOSING and LAST-ACK to "enter the CLOSED state";
            // an application still holding the socket hears of the reset too, as on Linux
            // and FreeBSD (its FIN was not known to be received).
            State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait
            | State::Closing
            | State::LastAck => {
                self.error = Some(io::ErrorKind::ConnectionReset);
            }
            _ => {}
        }
        self.set_state(now, State::Closed);
    }

    /// The ACK field (RFC 9293 §3.10.7.4, fifth check).
    fn check_ack(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Result<Flow, DropReason> {
        if self.state == State::SynReceived {
            self.complete_handshake(now, seg)?;
        }
        if seg.ack > self.snd.max {
            // RFC 5961 §5.2: answer (rate-limited) and drop.
            self.ack.challenge = true;
            self.drop_note(|c| format!("ack {} acknowledges data never sent", seg.ack - c.snd.iss));
            return Err(DropReason::AckOfUnsent);
        }
        self.timers.persist_unanswered = 0;
        let window = u32::from(seg.window) << self.snd.wscale;
        self.recovery.newly_sacked = 0;
        if self.opts.sack_enabled && seg.options.sack_len > 0 {
            self.on_sack_blocks(seg);
        }
        if seg.ack > self.snd.una {
            let ts_rtt = self.timestamp_rtt(now, seg);
            self.ack_received(now, seg.ack, ts_rtt);
        } else if self.is_duplicate_ack(seg, window) {
            self.on_duplicate_ack();
        }
        self.time_round(now);
        self.update_send_window(seg, window);
        Ok(self.on_fin_acked(now))
    }

    /// SYN-RECEIVED: an ACK of our SYN completes the handshake (ESTABLISHED, or FIN-WAIT-1
    /// when the application already closed); any other ACK is answered with a RST.
    fn complete_handshake(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Result<(), DropReason> {
        if seg.ack <= self.snd.una || seg.ack > self.snd.max {
            self.rst_out = Some(TcpHeaderOut { seq: seg.ack, flags: TcpFlags::RST, ..Default::default() });
            return Err(DropReason::AckOfUnsent);
        }
        let next = if self.snd.fin_queued { State::FinWait1 } else { State::Established };
        self.set_state(now, next);
        // The window in the handshake's ACK is the first one that is scaled.
        self.snd.wl1 = seg.seq;
        self.snd.wl2 = seg.ack;
        self.snd.wnd = u32::from(seg.window) << self.snd.wscale;
        self.snd.max_wnd = self.snd.wnd;
        if let Some(text) = self.rcv.syn_text.take() {
            let (payload, fin) = *text;
            self.receive_text(now, self.rcv.irs + 1, &payload, fin);
        }
        Ok(())
    }

    /// The round trip the segment's timestamp echo measures, when timestamps are on.
    fn timestamp_rtt(&self, now: Instant, seg: &TcpSegment<'_>) -> Option<std::time::Duration> {
        match (self.opts.ts_enabled, seg.options.timestamps) {
            (true, Some((_, ecr))) if ecr != 0 => {
                let ms = self.ts_now(now).wrapping_sub(ecr);
                // An echo from the future or from long ago is no measurement.
                (ms < 60_000).then(|| std::time::Duration::from_millis(u64::from(ms)))
            }
            _ => None,
        }
    }

    /// An ACK of nothing new that signals a segment left the network (RFC 5681 §2).
    fn is_duplicate_ack(&self, seg: &TcpSegment<'_>, window: u32) -> bool {
        seg.ack == self.snd.una
            && seg.payload.is_empty()
            && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::FIN)
            // RFC 5681 asks for an unchanged window, but a Linux receiver opens its window
            // on nearly every ACK; one carrying SACK blocks is a duplicate either way
            // (RFC 6675).
            && (window == self.snd.wnd || (self.opts.sack_enabled && seg.options.sack_len > 0))
            && self.snd.max > self.snd.una
            // Answers to zero-window probes repeat the ACK, but they signal no loss.
            && window > 0
    }

    /// Window update, guarded against old segments (SND.WL1/SND.WL2).
    fn update_send_window(&mut self, seg: &TcpSegment<'_>, window: u32) {
        if seg.ack >= self.snd.una && (self.snd.wl1 < seg.seq || (self.snd.wl1 == seg.seq && self.snd.wl2 <= seg.ack)) {
            if self.snd.wnd == 0 && window > 0 {
                // The window reopened. A probe byte it refused is still unacknowledged:
                // send again from SND.UNA rather than wait for a timeout.
                self.snd.nxt = self.snd.una;
            }
            self.snd.wnd = window;
            self.snd.max_wnd = self.snd.max_wnd.max(window);
            self.snd.wl1 = seg.seq;
            self.snd.wl2 = seg.ack;
        }
    }

    /// Our FIN acknowledged: FIN-WAIT-1, CLOSING and LAST-ACK move on; LAST-ACK ends here.
    fn on_fin_acked(&mut self, now: Instant) -> Flow {
        match self.state {
            State::FinWait1 if self.snd.fin_acked => self.set_state(now, State::FinWait2),
            State::Closing if self.snd.fin_acked => self.set_state(now, State::TimeWait),
            State::LastAck if self.snd.fin_acked => {
                self.set_state(now, State::Closed);
                return Flow::Stop;
            }
            _ => {}
        }
        Flow::Continue
    }

    /// SND.UNA advances to `ack`: free acknowledged data, time the round trip, grow cwnd.
    /// `ts_rtt`: the round trip measured from the timestamp echo, when timestamps are on
    /// (RFC 7323 §4: every ACK can be timed, retransmissions included; milliseconds only).
    pub(super) fn ack_received(&mut self, now: Instant, ack: SeqNum, ts_rtt: Option<std::time::Duration>) {
        let mut acked = ack - self.snd.una;
        if self.snd.una == self.snd.iss {
            acked -= 1; // The SYN's sequence number.
        }
        let data = (acked as usize).min(self.send_buf.len());
        if self.snd.fin_queued && !self.snd.fin_acked && acked as usize > data {
            self.snd.fin_acked = true;
        }
        self.send_buf.consume(data);
        self.snd.una = ack;
        self.recovery.scoreboard.prune(ack);
        if self.snd.nxt < ack {
            self.snd.nxt = ack;
        }
        // The timed segment gives the clock's full resolution. The timestamp echo counts
        // whole milliseconds: on a fast path all its samples read 0 and would pull SRTT to
        // zero, so it times only the ACKs of retransmitted data, which Karn's rule leaves
        // untimed otherwise (RFC 7323 §4 makes them measurable).
        match self.timing.rtt_probe {
            Some((probe, sent)) if ack >= probe => {
                self.timing.rtt.sample(now.saturating_duration_since(sent));
                self.timing.rtt_probe = None;
            }
            _ => {
                if let (Some(rtt), Some(_)) = (ts_rtt, self.timing.resent_up_to) {
                    self.timing.rtt.sample(rtt);
                }
            }
        }
        if self.timing.resent_up_to.is_some_and(|end| ack >= end) {
            self.timing.resent_up_to = None;
        }
        // RFC 6298 §5.3: restart the timer for what is still outstanding.
        self.timers.rto_at = None;
        self.timers.retries = 0;
        self.recovery.on_progress();
        let data = data as u32;
        self.recovery_on_ack(ack, data);
        self.stats.bytes_out += u64::from(data);
    }

    /// The timed segment arrived (acknowledged or SACKed): one delivery-rate sample for the
    /// congestion control.
    fn time_round(&mut self, now: Instant) {
        let delivered = self.stats.bytes_out + u64::from(self.recovery.scoreboard.sacked_bytes());
        if delivered > self.timing.delivered {
            self.cc.on_delivered(now, delivered - self.timing.delivered);
            self.timing.delivered = delivered;
        }
        if self.timing.app_limited_until.is_some_and(|mark| self.timing.delivered > mark) {
            self.timing.app_limited_until = None;
        }
        let Some(probe) = self.timing.rate_probe else { return };
        let last = probe.end - 1;
        let arrived = self.snd.una >= probe.end || matches!(self.recovery.scoreboard.around(last), Around::Inside(_));
        if !arrived {
            return;
        }
        self.timing.rate_probe = None;
        let sample = RoundSample {
            now,
            sent_at: probe.sent_at,
            rtt: now.saturating_duration_since(probe.sent_at),
            delivered: self.timing.delivered.saturating_sub(probe.delivered),
            app_limited: probe.app_limited,
        };
        if let Some(what) = self.cc.on_round(sample) {
            self.congestion_event(what);
        }
    }

    /// Segment text and FIN (RFC 9293 §3.10.7.4, seventh and eighth checks).
    fn receive_text(&mut self, now: Instant, seq: SeqNum, payload: &[u8], fin: bool) {
        let (mut seq, mut payload, mut fin) = (seq, payload, fin);
        // Trim what we already have.
        if seq < self.rcv.nxt {
            if self.opts.sack_enabled && !payload.is_empty() {
                let dup_end = (seq + payload.len() as u32).min(self.rcv.nxt);
                self.ack.dsack = Some((seq, dup_end));
            }
            let skip = (self.rcv.nxt - seq) as usize;
            if skip > payload.len() {
                // Even the FIN (at seq + len) is old.
                fin = false;
                payload = &[];
            } else {
                payload = &payload[skip..];
            }
            seq = self.rcv.nxt;
            self.ack.now = true;
        }
        // Trim what does not fit in the buffer.
        let room = self.recv_buf.window() as u32;
        let offset = seq - self.rcv.nxt;
        let fits = room.saturating_sub(offset) as usize;
        if payload.len() > fits {
            payload = &payload[..fits];
            fin = false;
            self.ack.now = true;
        }
        if !payload.is_empty() {
            if seq == self.rcv.nxt {
                let had_gap = self.recv_buf.has_out_of_order();
                let readable = self.recv_buf.len();
                self.recv_buf.push(payload);
                self.rcv.nxt += payload.len() as u32;
                self.rcv.nxt = self.recv_buf.take_contiguous(self.rcv.nxt);
                self.rcv.in_order_total += (self.recv_buf.len() - readable) as u64;
                self.ack.unacked_bytes += payload.len() as u32;
                // RFC 5681 §4.2: ACK at once when a gap fills, at least every second full
                // segment, and otherwise within the delayed-ACK time.
                // Part of a hole filled with others still open: at once (RFC 5681 §4.2), even
                // inside a batch.
                self.ack.at_once |= had_gap && self.recv_buf.has_out_of_order();
                if had_gap || self.ack.unacked_bytes >= 2 * self.seg_size() || self.cfg.delayed_ack.is_zero() {
                    self.ack.now = true;
                } else if self.ack.delack_at.is_none() {
                    self.ack.delack_at = Some(now + self.cfg.delayed_ack);
                }
            } else {
                // Out of order: a duplicate ACK at once tells the sender (RFC 5681 §4.2).
                if self.modes.memory_pressure {
                    self.drop_note(|_| "out-of-order data not held: the stack is over its memory budget".into());
                } else {
                    let blocks = self.recv_buf.out_of_order_count();
                    // Out-of-order data already held: reported as a D-SACK too (RFC 2883 §4).
                    let end = seq + payload.len() as u32;
                    if self.opts.sack_enabled && self.recv_buf.out_of_order_blocks().any(|(l, r)| l <= seq && end <= r)
                    {
                        self.ack.dsack = Some((seq, end));
                    }
                    if !self.recv_buf.insert_out_of_order(seq, payload) {
                        self.drop_note(|_| "out-of-order data not held: too many separate pieces".into());
                    }
                    // A new hole (more blocks), or a hole between blocks filled (fewer): the
                    // ACK goes at once; only the growth of a reported block may wait.
                    self.ack.at_once |= self.recv_buf.out_of_order_count() != blocks;
                    self.ack.ooo_since = self.ack.ooo_since.saturating_add(1);
                    self.ack.sack_recent.rotate_right(1);
                    self.ack.sack_recent[0] = Some(seq);
                }
                self.ack.now = true;
            }
            self.stats.bytes_in += payload.len() as u64;
        }
        if fin {
            let fin_seq = seq + payload.len() as u32;
            if fin_seq > self.rcv.nxt {
                self.rcv.ooo_fin = Some(fin_seq);
            } else if fin_seq == self.rcv.nxt {
                self.receive_fin(now);
                return;
            }
        }
        if self.rcv.ooo_fin == Some(self.rcv.nxt) {
            self.receive_fin(now);
        }
    }

    fn receive_fin(&mut self, now: Instant) {
        self.rcv.ooo_fin = None;
        self.rcv.nxt += 1;
        self.ack.now = true;
        match self.state {
            State::SynReceived | State::Established => self.set_state(now, State::CloseWait),
            State::FinWait1 if self.snd.fin_acked => self.set_state(now, State::TimeWait),
            State::FinWait1 => self.set_state(now, State::Closing),
            State::FinWait2 => self.set_state(now, State::TimeWait),
            _ => {}
        }
    }

    /// Why a segment was dropped, for the trace: the text is built only when events are kept.
    fn drop_note(&mut self, why: impl FnOnce(&Self) -> String) {
        if self.log.on {
            let why = why(self);
            self.event(ConnEvent::Dropped { why });
        }
    }
}

/// Timestamp comparison modulo 2^32 (RFC 7323 §5.2).
fn ts_newer_or_equal(a: u32, b: u32) -> bool {
    a.wrapping_sub(b) as i32 >= 0
}
