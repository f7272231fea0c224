//! One connection's whole state (the TCB of RFC 9293 §3.3.1), its constructors, the
//! application-facing calls and the timers. Segment arrival is in `input.rs`, segment
//! generation in `output.rs`.

use std::io;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::congestion::CongestionControl;
use super::recv_buf::RecvBuf;
use super::rtt::RttEstimator;
use super::send_buf::SendBuf;
use super::state::State;
use super::TcpConfig;
use crate::wire::{SeqNum, TcpFlags, TcpHeaderOut, TcpSegment};

/// The smallest MSS we will segment to, whatever the peer says: a 1-byte MSS would turn one
/// write into thousands of packets.
const MIN_SND_MSS: u32 = 64;

/// Counters a learner (and `/stats`) can see per connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnStats {
    pub segs_in: u64,
    pub segs_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub retransmits: u64,
}

/// Things that happened inside the connection that a packet trace cannot show: the *why*.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    StateChange {
        from: State,
        to: State,
    },
    RtoFired {
        rto: Duration,
        backoff: u32,
    },
    FastRetransmit {
        seq: SeqNum,
    },
    ZeroWindowProbe,
    TailLossProbe,
    /// Nagle's decision on a small tail while data is in flight: `held` when an earlier small
    /// segment (ending `small_end` bytes past our ISN) is unacknowledged, otherwise sent at
    /// once (only full segments are in flight: Minshall's variant).
    Nagle {
        len: u32,
        held: bool,
        small_end: u32,
    },
    /// The congestion window or slow-start threshold changed because of a loss signal.
    Congestion {
        cwnd: u32,
        ssthresh: u32,
        why: &'static str,
    },
    Dropped {
        why: String,
    },
    GaveUp,
}

/// A summary of what a blocked application thread can be waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub state: State,
    pub error: bool,
    pub readable: bool,
    pub writable: bool,
    /// In-order bytes received so far, when the reader asked to hear of every arrival (see
    /// [`Connection::report_arrivals`]); 0 otherwise.
    pub arrived: u64,
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

#[derive(Debug)]
pub struct Connection {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub(super) state: State,
    pub(super) cfg: TcpConfig,
    /// Opened by a listener (passive) rather than by `connect` (active).
    pub(super) passive: bool,

    // Send sequence space (RFC 9293 §3.3.1):
    //
    //            1         2          3          4
    //       ----------|----------|----------|----------
    //              SND.UNA    SND.NXT    SND.UNA
    //                                   +SND.WND
    //   1 - acknowledged   2 - sent, unacknowledged
    //   3 - allowed to send   4 - beyond the window
    pub(super) iss: SeqNum,
    pub(super) snd_una: SeqNum,
    pub(super) snd_nxt: SeqNum,
    /// The highest sequence number ever sent: SND.NXT moves back on a timeout, this does not,
    /// and it is what an acceptable ACK is checked against.
    pub(super) snd_max: SeqNum,
    pub(super) snd_wnd: u32,
    pub(super) max_snd_wnd: u32,
    pub(super) snd_wl1: SeqNum,
    pub(super) snd_wl2: SeqNum,
    pub(super) snd_wscale: u8,
    pub(super) snd_mss: u32,

    // Receive sequence space:
    //
    //                1          2          3
    //            ----------|----------|----------
    //                   RCV.NXT    RCV.NXT
    //                             +RCV.WND
    //   1 - acknowledged   2 - allowed to receive   3 - not yet allowed
    pub(super) irs: SeqNum,
    pub(super) rcv_nxt: SeqNum,
    pub(super) rcv_wscale: u8,
    /// Right edge of the window last advertised; never moved left (RFC 9293 §3.8.6.2.2).
    pub(super) rcv_adv: SeqNum,
    /// A FIN seen beyond RCV.NXT, to take once the gap before it fills.
    pub(super) ooo_fin: Option<SeqNum>,
    /// Text (and FIN) that came on the peer's SYN in a simultaneous open: RFC 9293
    /// §3.10.7.3 queues it for processing once ESTABLISHED is reached.
    pub(super) syn_text: Option<Box<(Vec<u8>, bool)>>,

    pub(super) send_buf: SendBuf,
    pub(super) recv_buf: RecvBuf,
    /// The application shut down its sending side: a FIN follows the last byte.
    pub(super) fin_queued: bool,
    pub(super) fin_acked: bool,
    pub(super) ack_now: bool,
    pub(super) rst_out: Option<TcpHeaderOut>,
    pub(super) error: Option<io::ErrorKind>,

    pub(super) rtt: RttEstimator,
    /// Sequence number whose ACK times one round trip, and when it was sent (Karn: only
    /// never-retransmitted data is timed).
    pub(super) rtt_probe: Option<(SeqNum, Instant)>,
    /// Retransmitted data is outstanding below this: its ACKs are ambiguous to the timing
    /// above (Karn), and are timed by the timestamp echo instead, when there is one.
    pub(super) resent_up_to: Option<SeqNum>,
    pub(super) rto_at: Option<Instant>,
    pub(super) retries: u32,
    pub(super) persist_at: Option<Instant>,
    pub(super) persist_backoff: u32,
    /// Window probes sent since the peer last ACKed anything: a receiver that answers keeps
    /// the connection open for ever (RFC 1122 §4.2.2.17), a silent one does not.
    pub(super) persist_unanswered: u32,
    pub(super) force_probe: bool,
    pub(super) time_wait_at: Option<Instant>,
    pub(super) fin_wait2_at: Option<Instant>,
    pub(super) orphaned: bool,
    /// Delayed ACK: when the owed ACK must go at the latest, and bytes received since the
    /// last ACK we sent.
    pub(super) delack_at: Option<Instant>,
    pub(super) unacked_bytes: u32,
    pub(super) nodelay: bool,
    /// The end of the last small (less than a full segment) segment sent: Nagle, in
    /// Minshall's variant as Linux has it, holds a small tail only while this is unacknowledged.
    pub(super) snd_sml: SeqNum,
    /// The application pushed the data up to here (a message ended): no Nagle wait for it.
    pub(super) push_end: Option<SeqNum>,
    /// The tail Nagle holds was already explained in the trace (one line per wait).
    pub(super) nagle_noted: bool,

    // RFC 7323 timestamps and RFC 2018 SACK, when both sides offered them.
    pub(super) ts_enabled: bool,
    pub(super) ts_recent: u32,
    /// Our timestamp clock: milliseconds since `ts_epoch`, plus a per-connection offset so
    /// it reveals nothing about uptime.
    pub(super) ts_epoch: Instant,
    pub(super) ts_offset: u32,
    pub(super) last_ack_sent: SeqNum,
    pub(super) sack_enabled: bool,
    /// Start of the out-of-order block that arrived last: RFC 2018 wants it reported first.
    /// Where the latest out-of-order arrivals landed, newest first: SACK blocks are
    /// reported in this order, so each block is repeated in the ACKs after the one that
    /// first carried it (RFC 2018 §4), in case that one is lost.
    pub(super) sack_recent: [Option<SeqNum>; 4],
    /// A duplicate segment to report once as a D-SACK block (RFC 2883): it tells the
    /// sender its retransmission was spurious.
    pub(super) dsack: Option<(SeqNum, SeqNum)>,
    /// An RFC 5961 challenge ACK is owed; the stack rate-limits these across connections.
    pub(super) challenge: bool,
    /// The stack's buffers are over budget: hold no out-of-order data.
    pub(super) memory_pressure: bool,

    pub(super) cc: Box<dyn CongestionControl>,
    /// The segment timing the current round for the congestion control's rate estimate.
    pub(super) rate_probe: Option<RateProbe>,
    /// Bytes the peer has received of what we sent (acknowledged, or SACKed above SND.UNA):
    /// a high-water mark, so a scoreboard cleared after a timeout, or a block it could not
    /// keep, is not counted again when SACKed again.
    pub(super) delivered: u64,
    /// Set when the application left the window unfilled: `delivered` at which the data
    /// then in flight will have arrived; rounds sent before that are application-limited
    /// (draft-cheng-iccrg-delivery-rate-estimation's C.app_limited).
    pub(super) app_limited_until: Option<u64>,
    /// The ACK this arrival owes goes at once even inside a batch (a hole opened or filled).
    pub(super) ack_at_once: bool,
    /// Out-of-order arrivals since our last ACK.
    pub(super) ooo_since_ack: u32,
    /// See [`Connection::report_arrivals`].
    pub(super) report_arrivals: bool,
    /// See [`Connection::arrived_in_order`].
    pub(super) in_order_total: u64,
    pub(super) dup_acks: u32,
    /// RFC 6582's `recover`: in fast recovery until this is acknowledged.
    pub(super) recover: Option<SeqNum>,
    /// Resend the next lost range at the next `poll_transmit`.
    pub(super) retransmit_hole: bool,
    /// What the peer's SACK blocks say it holds, and how far this recovery has resent.
    pub(super) scoreboard: super::sack::Scoreboard,
    pub(super) rexmit_next: SeqNum,
    /// SND.MAX when this round of hole retransmissions began: once the peer SACKs data
    /// sent after it, any hole still open was lost again (RACK's idea, RFC 8985, by send
    /// order), and the round starts over instead of waiting for a timeout.
    pub(super) rexmit_mark: SeqNum,
    /// In fast recovery: bytes we may send, earned by bytes the peer reports having
    /// received (acknowledged or SACKed) — RFC 6675's pipe, kept as a credit so a
    /// compressed ACK covering ten segments lets ten out.
    pub(super) recovery_credit: u32,
    /// Newly SACKed bytes on the ACK being processed.
    pub(super) newly_sacked: u32,
    /// Early loss detection, before the retransmission timer: with SACK blocks showing a
    /// hole, declare it lost after about a round trip (RACK, RFC 8985 §6); with no feedback
    /// at all, send a tail loss probe after two round trips (RFC 8985 §7), whose ACK then
    /// tells what was lost. Both turn 200 ms timeouts into sub-millisecond recoveries on a
    /// fast link.
    pub(super) early_at: Option<Instant>,
    pub(super) tlp_sent: bool,
    /// The early timer already resent the first hole in this recovery since the peer last
    /// told us anything new.
    pub(super) recovery_probed: bool,
    pub(super) tlp_probe: bool,
    /// Bytes RFC 3042 lets us send beyond cwnd after the first duplicate ACKs.
    pub(super) limited_transmit: u32,

    pub stats: ConnStats,
    pub(super) trace: bool,
    pub(super) events: Vec<ConnEvent>,
    /// The payload of the segment being built (see `poll_segment`).
    pub(super) payload_range: super::output::PayloadRange,
}

impl Connection {
    fn new(now: Instant, cfg: TcpConfig, local: SocketAddrV4, remote: SocketAddrV4, iss: SeqNum, state: State) -> Self {
        let mss = u32::from(cfg.mss);
        Connection {
            local,
            remote,
            state,
            cfg,
            passive: false,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: iss,
            snd_wscale: 0,
            snd_mss: mss,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_wscale: 0,
            rcv_adv: SeqNum(0),
            ooo_fin: None,
            syn_text: None,
            send_buf: SendBuf::new(cfg.send_buf),
            recv_buf: RecvBuf::new(cfg.recv_buf),
            fin_queued: false,
            fin_acked: false,
            ack_now: false,
            rst_out: None,
            error: None,
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
            rtt_probe: None,
            resent_up_to: None,
            rto_at: None,
            retries: 0,
            persist_at: None,
            persist_backoff: 0,
            persist_unanswered: 0,
            force_probe: false,
            time_wait_at: None,
            fin_wait2_at: None,
            orphaned: false,
            delack_at: None,
            unacked_bytes: 0,
            nodelay: !cfg.nagle,
            snd_sml: iss,
            push_end: None,
            nagle_noted: false,
            ts_enabled: false,
            ts_recent: 0,
            ts_epoch: now,
            ts_offset: iss.0.rotate_left(13) ^ 0x5bd1_e995,
            last_ack_sent: SeqNum(0),
            sack_enabled: false,
            sack_recent: [None; 4],
            dsack: None,
            challenge: false,
            memory_pressure: false,
            cc: cfg.congestion.build(mss),
            rate_probe: None,
            delivered: 0,
            app_limited_until: None,
            report_arrivals: false,
            in_order_total: 0,
            ack_at_once: false,
            ooo_since_ack: 0,
            dup_acks: 0,
            recover: None,
            retransmit_hole: false,
            scoreboard: Default::default(),
            rexmit_next: iss,
            rexmit_mark: iss,
            limited_transmit: 0,
            early_at: None,
            tlp_sent: false,
            recovery_probed: false,
            tlp_probe: false,
            recovery_credit: 0,
            newly_sacked: 0,
            stats: ConnStats::default(),
            trace: false,
            events: Vec::new(),
            payload_range: Default::default(),
        }
    }

    /// Active open (`connect`): CLOSED → SYN-SENT. The SYN goes out on the next
    /// `poll_transmit`.
    pub fn connect(now: Instant, cfg: TcpConfig, local: SocketAddrV4, remote: SocketAddrV4, iss: SeqNum) -> Self {
        let mut c = Connection::new(now, cfg, local, remote, iss, State::SynSent);
        if cfg.window_scaling {
            c.rcv_wscale = cfg.window_shift();
        }
        c
    }

    /// Passive open: a listener got `syn`; LISTEN → SYN-RECEIVED. The SYN-ACK goes out on the
    /// next `poll_transmit`.
    pub fn accept(now: Instant, cfg: TcpConfig, syn: &TcpSegment<'_>, iss: SeqNum) -> Self {
        let mut c = Connection::new(now, cfg, syn.dst, syn.src, iss, State::SynReceived);
        c.passive = true;
        c.take_syn_options(syn);
        c.irs = syn.seq;
        c.rcv_nxt = syn.seq + 1;
        c.rcv_adv = c.rcv_nxt;
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        c.snd_wnd = u32::from(syn.window);
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn.seq;
        c
    }

    /// A connection completed by a SYN cookie: no state was kept for the SYN, so rebuild what
    /// the SYN,ACK promised (`iss` is the cookie) and let `ack` finish the handshake through
    /// the ordinary SYN-RECEIVED rules.
    #[allow(clippy::too_many_arguments)]
    pub fn from_cookie(
        now: Instant,
        cfg: TcpConfig,
        ack: &TcpSegment<'_>,
        iss: SeqNum,
        mss: u16,
        window_scale: Option<u8>,
        sack: bool,
    ) -> Self {
        let mut c = Connection::new(now, cfg, ack.dst, ack.src, iss, State::SynReceived);
        c.passive = true;
        c.irs = ack.seq - 1;
        c.rcv_nxt = ack.seq;
        c.snd_mss = u32::from(mss).min(u32::from(cfg.mss)).max(MIN_SND_MSS);
        if let (true, Some(shift)) = (cfg.window_scaling, window_scale) {
            c.snd_wscale = shift;
            c.rcv_wscale = cfg.window_shift();
        }
        if let (true, Some((tsval, tsecr))) = (cfg.timestamps, ack.options.timestamps) {
            c.ts_enabled = true;
            c.ts_recent = tsval;
            // Continue the clock the SYN,ACK's TSval came from, so it never runs backwards.
            c.ts_offset = tsecr.wrapping_add(1);
            c.sack_enabled = cfg.sack && sack;
        }
        c.snd_nxt = iss + 1;
        c.snd_max = iss + 1;
        c.rcv_adv = c.rcv_nxt + c.recv_buf.window().min(65535) as u32;
        c.snd_wl1 = c.irs;
        c.cc = c.cfg.congestion.build(c.snd_mss);
        c
    }

    /// MSS and window scale from the peer's SYN. Scaling is on only when both SYNs carry the
    /// option (RFC 7323 §2.2).
    pub(super) fn take_syn_options(&mut self, syn: &TcpSegment<'_>) {
        // RFC 9293 §3.7.1: without the option, assume 536.
        let peer_mss = u32::from(syn.options.mss.unwrap_or(536));
        self.snd_mss = peer_mss.min(u32::from(self.cfg.mss)).max(MIN_SND_MSS);
        match (self.cfg.window_scaling, syn.options.window_scale) {
            (true, Some(shift)) => {
                self.snd_wscale = shift;
                self.rcv_wscale = self.cfg.window_shift();
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        if let (true, Some((tsval, _))) = (self.cfg.timestamps, syn.options.timestamps) {
            self.ts_enabled = true;
            self.ts_recent = tsval;
        }
        self.sack_enabled = self.cfg.sack && syn.options.sack_permitted;
        self.cc = self.cfg.congestion.build(self.snd_mss);
    }

    /// Payload bytes per full segment: the MSS less the options every segment carries
    /// (RFC 6691: the MSS counts no TCP options).
    pub(super) fn seg_size(&self) -> u32 {
        if self.ts_enabled {
            self.snd_mss - 12
        } else {
            self.snd_mss
        }
    }

    /// Payload bytes of the largest segment to hand to the device: one [`seg_size`] without
    /// segmentation offload; with it, as many whole segments as fit in `tso_max` (whole, so
    /// the device's cut leaves no runt before the end of what we have).
    ///
    /// [`seg_size`]: Connection::seg_size
    pub(super) fn send_chunk(&self) -> u32 {
        let seg = self.seg_size();
        let max = self.cfg.tso_max.min(super::config::MAX_TSO_PAYLOAD);
        if max <= seg {
            return seg;
        }
        max / seg * seg
    }

    /// Our timestamp clock now (RFC 7323 §5.4: milliseconds are within the allowed rates).
    pub(super) fn ts_now(&self, now: Instant) -> u32 {
        let ms = now.saturating_duration_since(self.ts_epoch).as_millis() as u32;
        self.ts_offset.wrapping_add(ms)
    }

    /// Turn off Nagle's algorithm: send small segments at once.
    pub fn set_nodelay(&mut self, on: bool) {
        self.nodelay = on;
    }

    pub fn nodelay(&self) -> bool {
        self.nodelay
    }

    /// The application ended a message (a response, say): what is queued goes without
    /// waiting on Nagle, as Linux does when a cork is pulled. Later writes wait as usual.
    pub fn push(&mut self) {
        self.push_end = Some(self.snd_una + self.send_buf.len() as u32);
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// In-order bytes received since our last ACK.
    pub fn unacked_bytes(&self) -> u32 {
        self.unacked_bytes
    }

    /// Data beyond a hole is held: the peer is owed duplicate ACKs now, not later.
    pub fn holds_out_of_order(&self) -> bool {
        self.recv_buf.has_out_of_order()
    }

    /// With SACK, whether this out-of-order arrival's duplicate ACK may wait for the batch's
    /// end: not if it opened a new hole or filled one, not with a D-SACK to report (one is
    /// held at a time), and not for every second arrival since the last ACK.
    pub fn may_coalesce_out_of_order(&mut self) -> bool {
        let at_once = std::mem::take(&mut self.ack_at_once);
        self.sack_enabled && !at_once && self.dsack.is_none() && self.ooo_since_ack < 2
    }

    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    pub fn take_events(&mut self) -> Vec<ConnEvent> {
        std::mem::take(&mut self.events)
    }

    pub(super) fn event(&mut self, e: ConnEvent) {
        if self.trace {
            self.events.push(e);
        }
    }

    pub(super) fn set_state(&mut self, now: Instant, to: State) {
        if self.state == to {
            return;
        }
        let from = self.state;
        self.state = to;
        self.event(ConnEvent::StateChange { from, to });
        match to {
            State::TimeWait => {
                self.time_wait_at = Some(now + self.cfg.msl * 2);
                self.rto_at = None;
                self.persist_at = None;
                self.fin_wait2_at = None;
            }
            State::FinWait2 if self.orphaned => {
                self.fin_wait2_at = Some(now + self.cfg.fin_wait2_timeout);
            }
            State::Closed => {
                self.rto_at = None;
                self.persist_at = None;
                self.time_wait_at = None;
                self.fin_wait2_at = None;
            }
            _ => {}
        }
    }

    /// Our ISN and the peer's, for relative sequence numbers in traces.
    pub fn isns(&self) -> (SeqNum, SeqNum) {
        (self.iss, self.irs)
    }

    /// What the tracer needs to number and scale this connection's segments.
    pub fn trace_context(&self) -> super::SeqContext {
        super::SeqContext { iss: self.iss, irs: self.irs, peer_shift: self.snd_wscale, our_shift: self.rcv_wscale }
    }

    pub(super) fn congestion_event(&mut self, why: &'static str) {
        if self.trace {
            let (cwnd, ssthresh) = (self.cc.cwnd(), self.cc.ssthresh());
            self.events.push(ConnEvent::Congestion { cwnd, ssthresh, why });
        }
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }

    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }

    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd()
    }

    pub fn snd_mss(&self) -> u32 {
        self.snd_mss
    }

    pub fn peer_window(&self) -> u32 {
        self.snd_wnd
    }

    pub fn error(&self) -> Option<io::ErrorKind> {
        self.error
    }

    /// The application will send no more: a FIN follows the queued data (RFC 9293 §3.10.4).
    pub fn shutdown_write(&mut self, now: Instant) {
        if self.fin_queued {
            return;
        }
        match self.state {
            State::SynSent => self.set_state(now, State::Closed),
            // RFC 9293 §3.10.4: in SYN-RECEIVED the FIN waits for the handshake to finish
            // (our SYN may still need resending); `check_ack` then goes to FIN-WAIT-1.
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.set_state(now, State::FinWait1);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(now, State::LastAck);
            }
            _ => {}
        }
    }

    /// The application let go of the connection: close it gracefully, and stop waiting
    /// forever for a peer that never sends its FIN.
    pub fn orphan(&mut self, now: Instant) {
        self.orphaned = true;
        if !self.recv_buf.is_empty() {
            // Data the application will never read: RFC 9293 §3.10.4 (and RFC 2525 §2.17)
            // says reset, so the peer learns it was not delivered.
            self.abort(now, io::ErrorKind::ConnectionAborted);
            return;
        }
        self.shutdown_write(now);
        if self.state == State::FinWait2 {
            self.fin_wait2_at = Some(now + self.cfg.fin_wait2_timeout);
        }
    }

    /// Send a RST and forget the connection (RFC 9293 ABORT).
    pub fn abort(&mut self, now: Instant, kind: io::ErrorKind) {
        if matches!(
            self.state,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait
        ) {
            self.rst_out = Some(TcpHeaderOut { seq: self.snd_max, flags: TcpFlags::RST, ..Default::default() });
        }
        if self.error.is_none() {
            self.error = Some(kind);
        }
        self.set_state(now, State::Closed);
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.rst_out.is_none()
    }

    pub fn is_orphaned(&self) -> bool {
        self.orphaned
    }

    /// A blocked reader should wake.
    pub fn readable(&self) -> bool {
        !self.recv_buf.is_empty() || self.state.fin_received() || self.state == State::Closed || self.error.is_some()
    }

    /// A blocked writer should wake.
    pub fn writable(&self) -> bool {
        match self.state {
            State::SynSent | State::SynReceived => false,
            State::Established | State::CloseWait => self.send_buf.free() > 0 || self.fin_queued,
            _ => true,
        }
    }

    /// Established (or past it): `connect` may return.
    pub fn is_connected(&self) -> bool {
        self.state.is_synchronized()
    }

    /// Bytes waiting to be read, and bytes not yet acknowledged by the peer.
    pub fn buffered(&self) -> (usize, usize) {
        (self.recv_buf.len(), self.send_buf.len())
    }

    /// When the application reads, the window may have opened enough to tell the peer
    /// (receiver-side silly window avoidance, RFC 1122 §4.2.3.3). Only when the peer is
    /// about to run out of window: until then its segments keep coming and the ACKs for them
    /// carry the new window, and a reply the application is about to write carries it too
    /// (a request/response connection's first read would otherwise cost a segment of its
    /// own, as the SYN could offer at most 64 KiB).
    pub(super) fn maybe_window_update(&mut self) {
        if !self.state.receives_data() {
            return;
        }
        let advertised = if self.rcv_adv > self.rcv_nxt { self.rcv_adv - self.rcv_nxt } else { 0 };
        let free = self.recv_buf.window() as u32;
        let cap = self.recv_buf.capacity() as u32;
        let sws = self.sws_threshold();
        if free >= advertised + sws && advertised <= (cap / 2).min(4 * sws) {
            self.ack_now = true;
        }
    }

    /// RFC 1122 §4.2.3.3: open the window in steps of at least min(buffer/2, MSS).
    pub(super) fn sws_threshold(&self) -> u32 {
        (self.recv_buf.capacity() as u32 / 2).min(self.snd_mss)
    }
}

impl Connection {
    /// Data is held beyond a gap in what arrived (so ACKs now are duplicates that count).
    pub fn has_out_of_order(&self) -> bool {
        self.recv_buf.has_out_of_order()
    }

    /// RCV.NXT, for traces and for deciding whether a SYN may reuse a TIME-WAIT four-tuple.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv_nxt
    }

    /// A new SYN may take over this four-tuple while it waits in TIME-WAIT when its sequence
    /// number is beyond everything the old connection used (RFC 1122 §4.2.2.13, RFC 6191).
    pub fn syn_may_reuse(&self, syn: &TcpSegment<'_>) -> bool {
        self.state == State::TimeWait
            && syn.flags.contains(TcpFlags::SYN)
            && !syn.flags.contains(TcpFlags::ACK)
            && syn.seq > self.rcv_nxt
    }
}

impl Connection {
    /// The sequence-space variables in one line, relative to the ISNs (for traces and
    /// debugging).
    pub fn describe(&self) -> String {
        let (iss, irs) = (self.iss, self.irs);
        format!(
            "{} snd_una={} snd_nxt={} snd_max={} snd_wnd={} cwnd={} unsent={} rcv_nxt={} rcv_adv={} ooo={} retries={} rto={:?} recover={:?} dupacks={}",
            self.state,
            self.snd_una - iss,
            self.snd_nxt - iss,
            self.snd_max - iss,
            self.snd_wnd,
            self.cc.cwnd(),
            self.send_buf.len(),
            self.rcv_nxt - irs,
            self.rcv_adv - irs,
            self.recv_buf.out_of_order_blocks().map(|(l, r)| format!("{}-{}", l - irs, r - irs)).collect::<Vec<_>>().join(","),
            self.retries,
            self.rtt.rto(),
            self.recover.map(|r| r - iss),
            self.dup_acks,
        )
    }
}

impl Connection {
    /// A challenge ACK is owed (and now taken): the stack decides whether it goes out.
    pub fn take_challenge(&mut self) -> bool {
        std::mem::take(&mut self.challenge)
    }

    /// Send an ACK at the next `poll_transmit`.
    pub fn request_ack(&mut self) {
        self.ack_now = true;
    }

    /// Bytes held in this connection's buffers.
    pub fn memory(&self) -> usize {
        self.send_buf.len() + self.recv_buf.len() + self.recv_buf.out_of_order_bytes()
    }

    pub fn set_memory_pressure(&mut self, on: bool) {
        self.memory_pressure = on;
    }
}
