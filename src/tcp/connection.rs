//! One connection's whole state (the TCB of RFC 9293 §3.3.1), its constructors, the
//! application-facing calls and the timers. Segment arrival is in `input.rs`, segment
//! generation in `output.rs`.

use std::io;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::congestion::CongestionControl;
use super::recovery::Recovery;
use super::recv_buf::RecvBuf;
use super::rtt::RttEstimator;
use super::send_buf::SendBuf;
use super::state::State;
use super::tcb::{AckOwed, EventLog, Modes, Nagle, Negotiated, RecvSeq, SendSeq, Timers, Timing};

/// Mixed into the ISS to give each connection its own timestamp clock offset, so TSval says
/// nothing about how long the host has been up (RFC 7323 §7.1). Any odd constant mixes the
/// bits; this one is MurmurHash2's multiplier.
const TS_OFFSET_MIX: u32 = 0x5bd1_e995;
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

/// One connection: its state grouped by concern (see `tcb.rs` and `recovery.rs`).
#[derive(Debug)]
pub struct Connection {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub(super) state: State,
    pub(super) cfg: TcpConfig,
    pub(super) modes: Modes,
    pub(super) snd: SendSeq,
    pub(super) rcv: RecvSeq,
    pub(super) send_buf: SendBuf,
    pub(super) recv_buf: RecvBuf,
    pub(super) ack: AckOwed,
    pub(super) rst_out: Option<TcpHeaderOut>,
    pub(super) error: Option<io::ErrorKind>,
    pub(super) timers: Timers,
    pub(super) timing: Timing,
    pub(super) nagle: Nagle,
    pub(super) opts: Negotiated,
    pub(super) cc: Box<dyn CongestionControl>,
    pub(super) recovery: Recovery,
    pub stats: ConnStats,
    pub(super) log: EventLog,
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
            modes: Modes::default(),
            snd: SendSeq {
                iss,
                una: iss,
                nxt: iss,
                max: iss,
                wnd: 0,
                max_wnd: 0,
                wl1: SeqNum(0),
                wl2: iss,
                wscale: 0,
                mss,
                fin_queued: false,
                fin_acked: false,
            },
            rcv: RecvSeq {
                irs: SeqNum(0),
                nxt: SeqNum(0),
                wscale: 0,
                adv: SeqNum(0),
                ooo_fin: None,
                syn_text: None,
                in_order_total: 0,
            },
            send_buf: SendBuf::new(cfg.send_buf),
            recv_buf: RecvBuf::new(cfg.recv_buf),
            ack: AckOwed::default(),
            rst_out: None,
            error: None,
            timers: Timers::default(),
            timing: Timing {
                rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
                rtt_probe: None,
                resent_up_to: None,
                rate_probe: None,
                delivered: 0,
                app_limited_until: None,
            },
            nagle: Nagle { nodelay: !cfg.nagle, sml: iss, push_end: None, noted: false },
            opts: Negotiated {
                ts_enabled: false,
                ts_recent: 0,
                ts_epoch: now,
                ts_offset: iss.0.rotate_left(13) ^ TS_OFFSET_MIX,
                sack_enabled: false,
            },
            cc: cfg.congestion.build(mss),
            recovery: Recovery::new(iss),
            stats: ConnStats::default(),
            log: EventLog::default(),
            payload_range: Default::default(),
        }
    }

    /// Active open (`connect`): CLOSED → SYN-SENT. The SYN goes out on the next
    /// `poll_transmit`.
    pub fn connect(now: Instant, cfg: TcpConfig, local: SocketAddrV4, remote: SocketAddrV4, iss: SeqNum) -> Self {
        let mut c = Connection::new(now, cfg, local, remote, iss, State::SynSent);
        if cfg.window_scaling {
            c.rcv.wscale = cfg.window_shift();
        }
        c
    }

    /// Passive open: a listener got `syn`; LISTEN → SYN-RECEIVED. The SYN-ACK goes out on the
    /// next `poll_transmit`.
    pub fn accept(now: Instant, cfg: TcpConfig, syn: &TcpSegment<'_>, iss: SeqNum) -> Self {
        let mut c = Connection::new(now, cfg, syn.dst, syn.src, iss, State::SynReceived);
        c.modes.passive = true;
        c.take_peer_syn(syn);
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
        c.modes.passive = true;
        c.rcv.irs = ack.seq - 1;
        c.rcv.nxt = ack.seq;
        c.snd.mss = u32::from(mss).min(u32::from(cfg.mss)).max(MIN_SND_MSS);
        if let (true, Some(shift)) = (cfg.window_scaling, window_scale) {
            c.snd.wscale = shift;
            c.rcv.wscale = cfg.window_shift();
        }
        if let (true, Some((tsval, tsecr))) = (cfg.timestamps, ack.options.timestamps) {
            c.opts.ts_enabled = true;
            c.opts.ts_recent = tsval;
            // Continue the clock the SYN,ACK's TSval came from, so it never runs backwards.
            c.opts.ts_offset = tsecr.wrapping_add(1);
            c.opts.sack_enabled = cfg.sack && sack;
        }
        c.snd.nxt = iss + 1;
        c.snd.max = iss + 1;
        c.rcv.adv = c.rcv.nxt + c.recv_buf.window().min(65535) as u32;
        c.snd.wl1 = c.rcv.irs;
        c.cc = c.cfg.congestion.build(c.snd.mss);
        c
    }

    /// What the peer's SYN tells, in either open: its options, its ISN (the receive sequence
    /// space starts after it) and its window.
    pub(super) fn take_peer_syn(&mut self, syn: &TcpSegment<'_>) {
        self.take_syn_options(syn);
        self.rcv.irs = syn.seq;
        self.rcv.nxt = syn.seq + 1;
        self.rcv.adv = self.rcv.nxt;
        // The window in a SYN is never scaled (RFC 7323 §2.2).
        self.snd.wnd = u32::from(syn.window);
        self.snd.max_wnd = self.snd.wnd;
        self.snd.wl1 = syn.seq;
    }

    /// MSS and window scale from the peer's SYN. Scaling is on only when both SYNs carry the
    /// option (RFC 7323 §2.2).
    fn take_syn_options(&mut self, syn: &TcpSegment<'_>) {
        // RFC 9293 §3.7.1: without the option, assume 536.
        let peer_mss = u32::from(syn.options.mss.unwrap_or(536));
        self.snd.mss = peer_mss.min(u32::from(self.cfg.mss)).max(MIN_SND_MSS);
        match (self.cfg.window_scaling, syn.options.window_scale) {
            (true, Some(shift)) => {
                self.snd.wscale = shift;
                self.rcv.wscale = self.cfg.window_shift();
            }
            _ => {
                self.snd.wscale = 0;
                self.rcv.wscale = 0;
            }
        }
        if let (true, Some((tsval, _))) = (self.cfg.timestamps, syn.options.timestamps) {
            self.opts.ts_enabled = true;
            self.opts.ts_recent = tsval;
        }
        self.opts.sack_enabled = self.cfg.sack && syn.options.sack_permitted;
        self.cc = self.cfg.congestion.build(self.snd.mss);
    }

    /// Payload bytes per full segment: the MSS less the options every segment carries
    /// (RFC 6691: the MSS counts no TCP options).
    pub(super) fn seg_size(&self) -> u32 {
        if self.opts.ts_enabled {
            self.snd.mss - 12
        } else {
            self.snd.mss
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
        let ms = now.saturating_duration_since(self.opts.ts_epoch).as_millis() as u32;
        self.opts.ts_offset.wrapping_add(ms)
    }

    /// Turn off Nagle's algorithm: send small segments at once.
    pub fn set_nodelay(&mut self, on: bool) {
        self.nagle.nodelay = on;
    }

    pub fn nodelay(&self) -> bool {
        self.nagle.nodelay
    }

    /// The application ended a message (a response, say): what is queued goes without
    /// waiting on Nagle, as Linux does when a cork is pulled. Later writes wait as usual.
    pub fn push(&mut self) {
        self.nagle.push_end = Some(self.snd.una + self.send_buf.len() as u32);
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// In-order bytes received since our last ACK.
    pub fn unacked_bytes(&self) -> u32 {
        self.ack.unacked_bytes
    }

    /// Data beyond a hole is held: the peer is owed duplicate ACKs now, not later.
    pub fn holds_out_of_order(&self) -> bool {
        self.recv_buf.has_out_of_order()
    }

    /// With SACK, whether this out-of-order arrival's duplicate ACK may wait for the batch's
    /// end: not if it opened a new hole or filled one, not with a D-SACK to report (one is
    /// held at a time), and not for every second arrival since the last ACK.
    pub fn may_coalesce_out_of_order(&mut self) -> bool {
        let at_once = std::mem::take(&mut self.ack.at_once);
        self.opts.sack_enabled && !at_once && self.ack.dsack.is_none() && self.ack.ooo_since < 2
    }

    pub fn set_trace(&mut self, on: bool) {
        self.log.on = on;
    }

    pub fn take_events(&mut self) -> Vec<ConnEvent> {
        std::mem::take(&mut self.log.events)
    }

    pub(super) fn event(&mut self, e: ConnEvent) {
        self.log.push(e);
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
                self.timers.time_wait_at = Some(now + self.cfg.msl * 2);
                self.timers.rto_at = None;
                self.timers.persist_at = None;
                self.timers.fin_wait2_at = None;
            }
            State::FinWait2 if self.modes.orphaned => {
                self.timers.fin_wait2_at = Some(now + self.cfg.fin_wait2_timeout);
            }
            State::Closed => {
                self.timers.rto_at = None;
                self.timers.persist_at = None;
                self.timers.time_wait_at = None;
                self.timers.fin_wait2_at = None;
            }
            _ => {}
        }
    }

    /// Our ISN and the peer's, for relative sequence numbers in traces.
    pub fn isns(&self) -> (SeqNum, SeqNum) {
        (self.snd.iss, self.rcv.irs)
    }

    /// What the tracer needs to number and scale this connection's segments.
    pub fn trace_context(&self) -> super::SeqContext {
        super::SeqContext {
            iss: self.snd.iss,
            irs: self.rcv.irs,
            peer_shift: self.snd.wscale,
            our_shift: self.rcv.wscale,
        }
    }

    pub(super) fn congestion_event(&mut self, why: &'static str) {
        if self.log.on {
            let (cwnd, ssthresh) = (self.cc.cwnd(), self.cc.ssthresh());
            self.log.events.push(ConnEvent::Congestion { cwnd, ssthresh, why });
        }
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.timing.rtt.srtt()
    }

    pub fn rto(&self) -> Duration {
        self.timing.rtt.rto()
    }

    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd()
    }

    pub fn snd_mss(&self) -> u32 {
        self.snd.mss
    }

    pub fn peer_window(&self) -> u32 {
        self.snd.wnd
    }

    pub fn error(&self) -> Option<io::ErrorKind> {
        self.error
    }

    /// The application will send no more: a FIN follows the queued data (RFC 9293 §3.10.4).
    pub fn shutdown_write(&mut self, now: Instant) {
        if self.snd.fin_queued {
            return;
        }
        match self.state {
            State::SynSent => self.set_state(now, State::Closed),
            // RFC 9293 §3.10.4: in SYN-RECEIVED the FIN waits for the handshake to finish
            // (our SYN may still need resending); `check_ack` then goes to FIN-WAIT-1.
            State::SynReceived => self.snd.fin_queued = true,
            State::Established => {
                self.snd.fin_queued = true;
                self.set_state(now, State::FinWait1);
            }
            State::CloseWait => {
                self.snd.fin_queued = true;
                self.set_state(now, State::LastAck);
            }
            _ => {}
        }
    }

    /// The application let go of the connection: close it gracefully, and stop waiting
    /// forever for a peer that never sends its FIN.
    pub fn orphan(&mut self, now: Instant) {
        self.modes.orphaned = true;
        if !self.recv_buf.is_empty() {
            // Data the application will never read: RFC 9293 §3.10.4 (and RFC 2525 §2.17)
            // says reset, so the peer learns it was not delivered.
            self.abort(now, io::ErrorKind::ConnectionAborted);
            return;
        }
        self.shutdown_write(now);
        if self.state == State::FinWait2 {
            self.timers.fin_wait2_at = Some(now + self.cfg.fin_wait2_timeout);
        }
    }

    /// Send a RST and forget the connection (RFC 9293 ABORT).
    pub fn abort(&mut self, now: Instant, kind: io::ErrorKind) {
        if matches!(
            self.state,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait
        ) {
            self.rst_out = Some(TcpHeaderOut { seq: self.snd.max, flags: TcpFlags::RST, ..Default::default() });
        }
        if self.error.is_none() {
            self.error = Some(kind);
        }
        self.set_state(now, State::Closed);
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.rst_out.is_none()
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
        let advertised = if self.rcv.adv > self.rcv.nxt { self.rcv.adv - self.rcv.nxt } else { 0 };
        let free = self.recv_buf.window() as u32;
        let cap = self.recv_buf.capacity() as u32;
        let sws = self.sws_threshold();
        if free >= advertised + sws && advertised <= (cap / 2).min(4 * sws) {
            self.ack.now = true;
        }
    }

    /// RFC 1122 §4.2.3.3: open the window in steps of at least min(buffer/2, MSS).
    pub(super) fn sws_threshold(&self) -> u32 {
        (self.recv_buf.capacity() as u32 / 2).min(self.snd.mss)
    }
}

impl Connection {
    /// RCV.NXT, for traces and for deciding whether a SYN may reuse a TIME-WAIT four-tuple.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv.nxt
    }

    /// A new SYN may take over this four-tuple while it waits in TIME-WAIT when its sequence
    /// number is beyond everything the old connection used (RFC 1122 §4.2.2.13, RFC 6191).
    pub fn syn_may_reuse(&self, syn: &TcpSegment<'_>) -> bool {
        self.state == State::TimeWait
            && syn.flags.contains(TcpFlags::SYN)
            && !syn.flags.contains(TcpFlags::ACK)
            && syn.seq > self.rcv.nxt
    }
}

impl Connection {
    /// The sequence-space variables in one line, relative to the ISNs (for traces and
    /// debugging).
    pub fn describe(&self) -> String {
        let (iss, irs) = (self.snd.iss, self.rcv.irs);
        format!(
            "{} snd_una={} snd_nxt={} snd_max={} snd_wnd={} cwnd={} unsent={} rcv_nxt={} rcv_adv={} ooo={} retries={} rto={:?} recover={:?} dupacks={}",
            self.state,
            self.snd.una - iss,
            self.snd.nxt - iss,
            self.snd.max - iss,
            self.snd.wnd,
            self.cc.cwnd(),
            self.send_buf.len(),
            self.rcv.nxt - irs,
            self.rcv.adv - irs,
            self.recv_buf.out_of_order_blocks().map(|(l, r)| format!("{}-{}", l - irs, r - irs)).collect::<Vec<_>>().join(","),
            self.timers.retries,
            self.timing.rtt.rto(),
            self.recovery.recover.map(|r| r - iss),
            self.recovery.dup_acks,
        )
    }
}

impl Connection {
    /// A challenge ACK is owed (and now taken): the stack decides whether it goes out.
    pub fn take_challenge(&mut self) -> bool {
        std::mem::take(&mut self.ack.challenge)
    }

    /// Send an ACK at the next `poll_transmit`.
    pub fn request_ack(&mut self) {
        self.ack.now = true;
    }

    /// Bytes held in this connection's buffers.
    pub fn memory(&self) -> usize {
        self.send_buf.len() + self.recv_buf.len() + self.recv_buf.out_of_order_bytes()
    }

    pub fn set_memory_pressure(&mut self, on: bool) {
        self.modes.memory_pressure = on;
    }
}
