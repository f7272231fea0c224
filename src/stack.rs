//! The host: demultiplexes packets to connections by four-tuple, keeps listeners and their
//! accept queues, answers closed ports with RST and pings with echo replies, picks initial
//! sequence numbers (RFC 6528) and counts everything. Sans I/O like `tcp/`: packets in,
//! packets out, `now` passed in.

mod arrivals;
mod batch;
mod burst;
mod conn_fault;
mod conn_map;
mod cookie;
mod cookie_host;
mod counters;
mod host_config;
mod icmp_out;
mod ip_id;
mod isn;
mod place;
mod quad_table;
mod reclaim;
mod wire_out;

pub use conn_map::ConnMap;
pub use counters::{Counters, Summary};
pub use host_config::HostConfig;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use crate::device::PacketMeta;
use crate::tcp::SeqContext;
use crate::tcp::{Connection, Readiness, State, TcpConfig};
use crate::trace::Tracer;
use crate::wire::{packet, DropReason, Packet, Quad, SeqNum, TcpFlags, TcpHeaderOut, TcpSegment};
use cookie::CookieJar;
use isn::IsnGenerator;
use place::Place;
use wire_out::Wire;

pub type ConnId = u64;

struct Entry {
    conn: Connection,
    /// Changed only by `move_to`, which keeps the counts.
    place: Place,
    /// The last segment from the peer (or the SYN): idle connections are reclaimed oldest first.
    last_heard: Instant,
    /// Counted in the TIME-WAIT queue.
    in_time_wait: bool,
    /// Buffer bytes last accounted for this connection.
    memory: usize,
    /// The deadline this connection has in the timer heap.
    timer: Option<Instant>,
    /// Its output waits for the end of the current receive batch (see `batch.rs`).
    deferred: bool,
    /// The output budget stopped it; it is in `held` (see `burst.rs`).
    held: bool,
    /// Its readiness when the application was last told; a change wakes its threads.
    ready: Option<Readiness>,
    /// Drops a share of its outgoing segments, when asked to (a demonstration of loss).
    fault: Option<conn_fault::DropFault>,
    arrivals: arrivals::ArrivalLog,
}

struct Listener {
    /// The configuration its connections start with (the listening socket's options).
    tcp: TcpConfig,
    backlog: usize,
    accept_limit: usize,
    pending: usize,
    queue: VecDeque<ConnId>,
}

pub struct Host {
    cfg: HostConfig,
    conns: ConnMap<Entry>,
    by_quad: quad_table::QuadTable,
    listeners: HashMap<u16, Listener>,
    next_id: ConnId,
    next_port: u16,
    isn: IsnGenerator,
    cookies: CookieJar,
    wire: Wire,
    /// Connection deadlines, earliest first. An entry is current only while it equals the
    /// connection's `timer`; stale ones are skipped as they surface.
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    /// Connections in TIME-WAIT, oldest first (ids may be stale: checked when popped).
    time_wait: VecDeque<ConnId>,
    time_wait_count: usize,
    buffered: usize,
    /// Connections in the table per remote address.
    per_source: HashMap<Ipv4Addr, usize>,
    /// RFC 5961 §7 rate limit: the current one-second window and what it has sent.
    challenge_window: Option<Instant>,
    challenges_sent: u32,
    icmp_errors: icmp_out::TokenBucket,
    pub counters: Counters,
    /// Connections and listeners whose readiness may have changed since the last
    /// `take_touched`: their waiting application threads should look again.
    touched_conns: Vec<ConnId>,
    touched_ports: Vec<u16>,
    pub tracer: Tracer,
    /// Inside `begin_batch`/`end_batch`: whether output may wait, and who is waiting.
    batching: bool,
    deferred: Vec<ConnId>,
    /// Packets built before the caller takes them, at most (see `burst.rs`); `None`: any.
    out_budget: Option<usize>,
    /// Connections the budget stopped, oldest first, and a spare list for `send_held`.
    held: Vec<ConnId>,
    held_spare: Vec<ConnId>,
    /// The latest arrival of in-order data on any connection (see `arrival_number`).
    last_arrival: u64,
}

impl Host {
    pub fn new(cfg: HostConfig, now: Instant) -> Self {
        let mut seed = [0u8; 2];
        // A random first ephemeral port; a fixed one is also fine if the OS has no entropy.
        let _ = getrandom::fill(&mut seed);
        let icmp_errors = icmp_out::TokenBucket::new(cfg.icmp_errors_per_sec, cfg.icmp_error_burst);
        Host {
            cfg,
            conns: ConnMap::default(),
            by_quad: quad_table::QuadTable::default(),
            listeners: HashMap::new(),
            next_id: 1,
            next_port: 49152 + u16::from_le_bytes(seed) % 16384,
            isn: IsnGenerator::new(now),
            cookies: CookieJar::new(now),
            wire: Wire { out: VecDeque::new(), spare: Vec::new(), ids: ip_id::IpIds::new() },
            timers: BinaryHeap::new(),
            time_wait: VecDeque::new(),
            time_wait_count: 0,
            buffered: 0,
            per_source: HashMap::new(),
            challenge_window: None,
            challenges_sent: 0,
            icmp_errors,
            counters: Counters::default(),
            touched_conns: Vec::new(),
            touched_ports: Vec::new(),
            tracer: Tracer::new(now),
            batching: false,
            deferred: Vec::new(),
            out_budget: None,
            held: Vec::new(),
            held_spare: Vec::new(),
            last_arrival: 0,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.cfg.addr
    }

    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }

    // ----- Packets -----

    /// One packet from the device.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.handle_packet_meta(now, bytes, PacketMeta::default())
    }

    /// One packet from the device, with what the device knows about it: a TCP checksum the
    /// kernel vouches for (`csum_trusted`) is not verified again; everything else is.
    pub fn handle_packet_meta(&mut self, now: Instant, bytes: &[u8], meta: PacketMeta) {
        self.counters.packets_in += 1;
        let packet = packet::parse_packet_with(self.cfg.addr, bytes, !meta.csum_trusted).and_then(|p| {
            let src = match &p {
                Packet::Tcp(seg) => *seg.src.ip(),
                Packet::IcmpEcho(req) => req.src,
                Packet::Unserved(u) => u.src,
            };
            if self.source_is_broadcast(src) {
                return Err(DropReason::SourceBroadcast);
            }
            Ok(p)
        });
        match packet {
            Err(reason) => self.count_drop(now, reason, None),
            Ok(Packet::IcmpEcho(req)) => self.answer_echo(now, &req),
            Ok(Packet::Unserved(u)) => self.answer_unserved(now, &u),
            Ok(Packet::Tcp(seg)) => {
                self.tracer.packet_in(bytes);
                if seg.payload.len() > usize::from(self.cfg.tcp.mss) {
                    self.counters.super_segs_in += 1;
                }
                self.handle_tcp(now, &seg)
            }
        }
    }

    fn handle_tcp(&mut self, now: Instant, seg: &TcpSegment<'_>) {
        self.counters.segs_in += 1;
        let quad = Quad { local: seg.dst, remote: seg.src };
        if self.cfg.drop_syn_fin && seg.flags.contains(TcpFlags::SYN | TcpFlags::FIN) && self.syn_fin_would_open(&quad)
        {
            // A scanner's or a fuzzer's: it would open a connection (LISTEN, SYN-SENT, no
            // connection at all), and is dropped unanswered as Linux and FreeBSD's
            // drop_synfin do. A synchronized connection judges it as any SYN (RFC 5961).
            self.tracer.segment_in(now, seg, None);
            return self.count_drop(now, DropReason::SynFin, None);
        }
        if let Some(id) = self.by_quad.get(&quad) {
            let reuse = self.conns.get(&id).is_some_and(|e| e.conn.syn_may_reuse(seg));
            if !reuse {
                self.segment_for(now, id, seg);
                return;
            }
            self.tracer.note(now, format_args!("{}: new SYN reuses a TIME-WAIT four-tuple", fmt_quad(&quad)));
            self.forget(id);
        }
        if self.listeners.contains_key(&seg.dst.port()) {
            self.segment_for_listener(now, seg);
        } else {
            self.tracer.segment_in(now, seg, None);
            self.counters.no_listener += 1;
            self.reset_for(now, seg);
        }
    }

    fn syn_fin_would_open(&self, quad: &Quad) -> bool {
        match self.by_quad.get(quad).and_then(|id| self.conns.get(&id)) {
            Some(e) => e.conn.state() == State::SynSent,
            None => true,
        }
    }

    fn segment_for(&mut self, now: Instant, id: ConnId, seg: &TcpSegment<'_>) {
        let pressure = self.buffered > self.cfg.memory_budget;
        let Some(entry) = self.conns.get_mut(&id) else { return };
        self.tracer.segment_in(now, seg, Some(entry.conn.trace_context()));
        entry.last_heard = now;
        entry.conn.set_memory_pressure(pressure);
        let accepted = entry.conn.on_segment(now, seg);
        entry.arrivals.note(entry.conn.arrived_in_order(), &mut self.last_arrival);
        if let Err(reason) = accepted {
            // The connection explains the drop in its own trace line.
            self.counters.count_drop(reason);
            tracing::debug!(%reason, conn = id, "dropped");
        }
        let challenged = entry.conn.take_challenge();
        if challenged {
            if self.challenge_allowed(now) {
                if let Some(entry) = self.conns.get_mut(&id) {
                    entry.conn.request_ack();
                }
            } else {
                self.counters.challenge_acks_suppressed += 1;
                self.tracer.note(now, format_args!("challenge ACK suppressed: over the RFC 5961 rate limit"));
            }
        }
        // Only an accepted, ordinary segment's answer may wait for the end of the batch: a drop,
        // a challenge (RFC 5961 wants one per segment, within its rate limit) or a control flag
        // is answered at once, one for one.
        let plain =
            accepted.is_ok() && !challenged && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::RST | TcpFlags::FIN);
        if !(plain && self.defer(id)) {
            self.dispatch(now, id);
        }
    }

    /// RFC 5961 §7: at most `challenge_acks_per_sec` challenge ACKs a second, so they cannot
    /// be used to amplify a flood or probe for sequence numbers.
    fn challenge_allowed(&mut self, now: Instant) -> bool {
        let fresh =
            self.challenge_window.is_none_or(|t| now.saturating_duration_since(t) >= std::time::Duration::from_secs(1));
        if fresh {
            self.challenge_window = Some(now);
            self.challenges_sent = 0;
        }
        if self.challenges_sent >= self.cfg.challenge_acks_per_sec {
            return false;
        }
        self.challenges_sent += 1;
        true
    }

    /// LISTEN (RFC 9293 §3.10.7.2).
    fn segment_for_listener(&mut self, now: Instant, seg: &TcpSegment<'_>) {
        let flags = seg.flags;
        if flags.contains(TcpFlags::RST) {
            self.tracer.segment_in(now, seg, None);
            return self.count_drop(now, DropReason::RstInListen, None);
        }
        if flags.contains(TcpFlags::ACK) {
            self.tracer.segment_in(now, seg, None);
            if !flags.contains(TcpFlags::SYN) && self.cfg.syn_cookies {
                if self.accept_cookie(now, seg) {
                    return;
                }
                // The cookie covers the client's ISN, so only its first segment after the SYN
                // (SEG.SEQ = ISN + 1) carries it. If that one was lost (a flood fills the
                // TUN's queue), its later segments fail the check: a RST would kill a real
                // connection, a drop lets the client resend from its first unacknowledged
                // byte, which passes (Linux's syncookie check discards such segments too).
                if self.cookies.sent_recently(now) {
                    return self.count_drop(now, DropReason::SynCookieMismatch, None);
                }
            }
            return self.reset_for(now, seg);
        }
        if !flags.contains(TcpFlags::SYN) {
            self.tracer.segment_in(now, seg, None);
            return self.count_drop(now, DropReason::NoSynInListen, None);
        }
        let port = seg.dst.port();
        self.tracer.segment_in(now, seg, Some(SeqContext::for_syn(seg.seq)));
        let Some(l) = self.listeners.get(&port) else { return };
        if l.queue.len() >= l.accept_limit {
            return self.count_drop(now, DropReason::AcceptQueueFull, None);
        }
        // A full backlog, a full table or a source at its limit: no state for a peer that
        // has not shown it receives what we send. A SYN cookie (RFC 4987 §3.6) lets it
        // finish the handshake, and only then may it take an idle connection's place.
        let full = if l.pending >= l.backlog {
            Some(DropReason::BacklogFull)
        } else {
            self.refuse_new_connection(*seg.src.ip())
        };
        match full {
            None => {}
            Some(DropReason::MemoryLimit) => return self.count_drop(now, DropReason::MemoryLimit, None),
            Some(_) if self.cfg.syn_cookies => return self.send_cookie(now, seg),
            Some(reason) => return self.count_drop(now, reason, None),
        }
        let tcp = l.tcp;
        let iss = self.isn.generate(now, seg.dst, seg.src);
        let mut conn = Connection::accept(now, tcp, seg, iss);
        conn.set_trace(self.tracer.wants_conn_events());
        let id = self.insert(now, conn, Place::Handshaking(port));
        self.tracer.state(now, &Quad { local: seg.dst, remote: seg.src }, "LISTEN", State::SynReceived.name());
        self.dispatch(now, id);
    }

    /// Whether a limit forbids another connection from `source` now (without reclaiming).
    fn refuse_new_connection(&self, source: Ipv4Addr) -> Option<DropReason> {
        if self.buffered > self.cfg.memory_budget {
            Some(DropReason::MemoryLimit)
        } else if self.live_connections() >= self.cfg.max_connections {
            Some(DropReason::ConnectionLimit)
        } else if self.per_source.get(&source).is_some_and(|&n| n >= self.cfg.max_per_source) {
            Some(DropReason::SourceLimit)
        } else {
            None
        }
    }

    /// Connections that hold a four-tuple: what `max_connections` bounds. A closed one
    /// waiting for its application to let go no longer counts.
    fn live_connections(&self) -> usize {
        self.by_quad.len()
    }

    /// A RST for a segment that reached no connection (RFC 9293 §3.10.7.1).
    fn reset_for(&mut self, now: Instant, seg: &TcpSegment<'_>) {
        if seg.flags.contains(TcpFlags::RST) {
            return;
        }
        let hdr = if seg.flags.contains(TcpFlags::ACK) {
            TcpHeaderOut { seq: seg.ack, flags: TcpFlags::RST, ..Default::default() }
        } else {
            TcpHeaderOut {
                seq: SeqNum(0),
                ack: seg.seq + seg.seg_len(),
                flags: TcpFlags::RST | TcpFlags::ACK,
                ..Default::default()
            }
        };
        self.emit(now, seg.dst, seg.src, &hdr, &[], None);
    }

    fn count_drop(&mut self, now: Instant, reason: DropReason, id: Option<ConnId>) {
        self.counters.count_drop(reason);
        tracing::debug!(%reason, conn = ?id, "dropped");
        self.tracer.drop(now, reason);
    }

    /// Pull every segment the connection wants to send (or as many as the output budget
    /// allows one call, holding it for `send_held`), and keep the tables in step with its
    /// state.
    fn dispatch(&mut self, now: Instant, id: ConnId) {
        let Host { conns, tracer, wire, counters, out_budget, held, .. } = self;
        let Some(entry) = conns.get_mut(&id) else { return };
        let (local, remote) = (entry.conn.local, entry.conn.remote);
        let tso = self.cfg.tcp.tso_max > 0;
        // The budget is this call's own: a bulk sender that used it must not hold back the
        // next connection's ACK, SYN,ACK or retransmission.
        let first = wire.out.len();
        loop {
            if Host::budget_spent(*out_budget, wire.out.len() - first) {
                if !entry.held {
                    entry.held = true;
                    held.push(id);
                }
                break;
            }
            let Some((hdr, range)) = entry.conn.poll_segment(now) else { break };
            let ctx = tracer.active().then(|| entry.conn.trace_context());
            if entry.fault.as_mut().is_some_and(|f| f.drops()) {
                counters.fault_drops += 1;
                tracer.segment_out(now, local, remote, &hdr, range.len, ctx, None);
                continue;
            }
            let tso_mss = tso.then(|| entry.conn.snd_mss());
            let conn = &entry.conn;
            let fill = |out: &mut Vec<u8>| conn.write_payload(range, out);
            wire.emit(tracer, counters, now, local, remote, &hdr, range.len, fill, ctx, tso_mss);
        }
        // Taken even when nobody looks, so they do not pile up.
        let events = entry.conn.take_events();
        let quad = Quad { local, remote };
        for e in events {
            tracer.conn_event(now, &quad, &e);
        }
        // Wake the application's threads only when what they may wait for has changed, not
        // for every segment: a reader that has data to read, or a writer with a third of its
        // buffer free, is not asleep.
        let ready = Some(entry.conn.readiness());
        if entry.ready != ready {
            entry.ready = ready;
            self.touched_conns.push(id);
        }
        self.settle(now, id);
    }

    /// Move a connection between tables after its state changed.
    fn settle(&mut self, now: Instant, id: ConnId) {
        self.account(id);
        if self.track_time_wait(id) {
            self.trim_time_wait(now);
        }
        let Some(entry) = self.conns.get(&id) else { return };
        let (place, closed) = (entry.place, entry.conn.is_closed());
        let quad = Quad { local: entry.conn.local, remote: entry.conn.remote };
        if let Place::Handshaking(port) = place {
            if closed {
                // Reset or timed out in SYN-RECEIVED: the application never knew of it.
                return self.move_to(id, None);
            }
            if entry.conn.state().is_synchronized() {
                self.move_to(id, Some(Place::Queued(port)));
            }
        }
        if !closed {
            return;
        }
        let in_time_wait = self.conns.get(&id).is_some_and(|e| e.in_time_wait);
        self.unmap(&quad, id, in_time_wait);
        if place == Place::Released {
            self.move_to(id, None);
        }
    }

    /// Keep the connection's timer and its share of the buffered bytes current.
    fn account(&mut self, id: ConnId) {
        if let Some(entry) = self.conns.get_mut(&id) {
            let deadline = entry.conn.poll_at();
            if deadline != entry.timer {
                entry.timer = deadline;
                if let Some(t) = deadline {
                    self.timers.push(Reverse((t, id)));
                }
            }
            let now_holds = entry.conn.memory();
            self.buffered = self.buffered - entry.memory + now_holds;
            entry.memory = now_holds;
        }
    }

    fn forget(&mut self, id: ConnId) {
        self.move_to(id, None);
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        hdr: &TcpHeaderOut,
        payload: &[u8],
        ctx: Option<SeqContext>,
    ) {
        let fill = |out: &mut Vec<u8>| out.extend_from_slice(payload);
        self.wire.emit(&mut self.tracer, &mut self.counters, now, local, remote, hdr, payload.len(), fill, ctx, None);
    }

    fn insert(&mut self, now: Instant, conn: Connection, place: Place) -> ConnId {
        let id = self.next_id;
        self.next_id += 1;
        self.counters.connections += 1;
        let quad = Quad { local: conn.local, remote: conn.remote };
        // Entered as released, then moved: `move_to` does the counting.
        self.conns.insert(
            id,
            Entry {
                conn,
                place: Place::Released,
                last_heard: now,
                in_time_wait: false,
                memory: 0,
                timer: None,
                deferred: false,
                held: false,
                ready: None,
                fault: None,
                arrivals: arrivals::ArrivalLog::default(),
            },
        );
        self.map(quad, id);
        self.move_to(id, Some(place));
        id
    }

    /// The next packet to write to the device. With `tso_max` set it may be a super-packet
    /// with a partial checksum: use [`pop_output_meta`](Host::pop_output_meta) then.
    pub fn pop_output(&mut self) -> Option<Vec<u8>> {
        self.wire.out.pop_front().map(|(p, _)| p)
    }

    /// The next packet to write to the device, with how to write it (TSO, partial checksum).
    pub fn pop_output_meta(&mut self) -> Option<(Vec<u8>, PacketMeta)> {
        self.wire.out.pop_front()
    }

    /// Packets are waiting in `pop_output`.
    pub fn pop_output_pending(&self) -> bool {
        !self.wire.out.is_empty()
    }

    /// Give a written packet's buffer back for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.wire.spare.len() < 256 {
            buf.clear();
            self.wire.spare.push(buf);
        }
    }

    pub fn take_touched(&mut self) -> (Vec<ConnId>, Vec<u16>) {
        (std::mem::take(&mut self.touched_conns), std::mem::take(&mut self.touched_ports))
    }

    /// Put back what `take_touched` returned and the caller did not handle.
    pub fn touch_again(&mut self, conns: Vec<ConnId>, ports: Vec<u16>) {
        self.touched_conns.extend(conns);
        self.touched_ports.extend(ports);
    }

    // ----- Timers -----

    /// The earliest connection deadline.
    pub fn poll_at(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if self.conns.get(&id).is_some_and(|e| e.timer == Some(t)) {
                return Some(t);
            }
            self.timers.pop();
        }
        None
    }

    /// Run every connection timer that is due.
    pub fn on_timer(&mut self, now: Instant) {
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.conns.get_mut(&id) else { continue };
            if entry.timer != Some(t) {
                continue;
            }
            entry.timer = None;
            entry.conn.on_timer(now);
            self.dispatch(now, id);
        }
        // Re-arming on every ACK leaves stale entries behind; rebuild before they pile up.
        if self.timers.len() > 4 * self.conns.len() + 1024 {
            self.timers = self.conns.iter().filter_map(|(id, e)| e.timer.map(|t| Reverse((t, *id)))).collect();
        }
    }

    // ----- The application's calls -----

    pub fn listen(&mut self, port: u16, backlog: Option<usize>) -> io::Result<()> {
        self.listen_with(port, backlog, self.cfg.tcp)
    }

    /// `listen` whose connections start with `tcp` instead of the host's configuration (a
    /// socket's own buffer sizes or Nagle setting).
    pub fn listen_with(&mut self, port: u16, backlog: Option<usize>, tcp: TcpConfig) -> io::Result<()> {
        if self.listeners.contains_key(&port) {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("port {port} already has a listener")));
        }
        // As with listen(2), the argument bounds the accept queue.
        let accept_limit = backlog.unwrap_or(self.cfg.accept_queue).max(1);
        let listener =
            Listener { tcp, backlog: self.cfg.backlog.max(1), accept_limit, pending: 0, queue: VecDeque::new() };
        self.listeners.insert(port, listener);
        Ok(())
    }

    /// Stop listening; connections not yet accepted are reset.
    pub fn unlisten(&mut self, now: Instant, port: u16) {
        if !self.listeners.contains_key(&port) {
            return;
        }
        let orphans: Vec<ConnId> =
            self.conns.iter().filter(|(_, e)| e.place.listener() == Some(port)).map(|(id, _)| *id).collect();
        for id in orphans {
            self.move_to(id, Some(Place::Released));
            if let Some(e) = self.conns.get_mut(&id) {
                e.conn.abort(now, io::ErrorKind::ConnectionAborted);
            }
            self.dispatch(now, id);
        }
        self.listeners.remove(&port);
    }

    pub fn accept(&mut self, port: u16) -> Option<ConnId> {
        let id = *self.listeners.get(&port)?.queue.front()?;
        self.move_to(id, Some(Place::Owned));
        Some(id)
    }

    pub fn is_listening(&self, port: u16) -> bool {
        self.listeners.contains_key(&port)
    }

    /// Active open to `remote` from an ephemeral port.
    pub fn connect(&mut self, now: Instant, remote: SocketAddrV4) -> io::Result<ConnId> {
        self.connect_with(now, remote, self.cfg.tcp)
    }

    /// `connect` with a configuration of its own instead of the host's.
    pub fn connect_with(&mut self, now: Instant, remote: SocketAddrV4, tcp: TcpConfig) -> io::Result<ConnId> {
        let mut local = None;
        for _ in 0..16384 {
            let port = self.next_port;
            self.next_port = if self.next_port == 65535 { 49152 } else { self.next_port + 1 };
            let candidate = SocketAddrV4::new(self.cfg.addr, port);
            if !self.listeners.contains_key(&port) && !self.by_quad.contains_key(&Quad { local: candidate, remote }) {
                local = Some(candidate);
                break;
            }
        }
        let local = local.ok_or_else(|| io::Error::new(io::ErrorKind::AddrNotAvailable, "no free ephemeral port"))?;
        let iss = self.isn.generate(now, local, remote);
        let mut conn = Connection::connect(now, tcp, local, remote, iss);
        conn.set_trace(self.tracer.wants_conn_events());
        let id = self.insert(now, conn, Place::Owned);
        self.tracer.state(now, &Quad { local, remote }, "CLOSED", State::SynSent.name());
        self.dispatch(now, id);
        Ok(id)
    }

    pub fn conn(&self, id: ConnId) -> Option<&Connection> {
        self.conns.get(&id).map(|e| &e.conn)
    }

    /// Run `f` on a connection, then send whatever it produced.
    pub fn with_conn<R>(&mut self, now: Instant, id: ConnId, f: impl FnOnce(&mut Connection) -> R) -> Option<R> {
        let pressure = self.buffered > self.cfg.memory_budget;
        let entry = self.conns.get_mut(&id)?;
        entry.conn.set_memory_pressure(pressure);
        let r = f(&mut entry.conn);
        // The call may have queued data behind a zero window, which needs the persist timer.
        entry.conn.update_timers(now);
        // Always: besides segments, the call may have produced trace events or a state
        // change the tables must follow.
        self.dispatch(now, id);
        Some(r)
    }

    /// The application dropped its handle.
    pub fn release(&mut self, now: Instant, id: ConnId) {
        self.move_to(id, Some(Place::Released));
        let Some(entry) = self.conns.get_mut(&id) else { return };
        entry.conn.orphan(now);
        self.dispatch(now, id);
    }

    /// Shutting down: close what can close cleanly, reset the rest (data in either
    /// buffer would otherwise be silently lost).
    pub fn close_all(&mut self, now: Instant) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some(e) = self.conns.get_mut(&id) {
                let (unread, unacked) = e.conn.buffered();
                if unread > 0 || unacked > 0 || !e.conn.is_connected() {
                    e.conn.abort(now, io::ErrorKind::ConnectionAborted);
                } else {
                    e.conn.shutdown_write(now);
                }
            }
            self.dispatch(now, id);
        }
    }

    /// Reset everything still open (after `close_all`'s grace period).
    pub fn abort_all(&mut self, now: Instant) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some(e) = self.conns.get_mut(&id) {
                if e.conn.state() != State::TimeWait {
                    e.conn.abort(now, io::ErrorKind::ConnectionAborted);
                }
            }
            self.dispatch(now, id);
        }
    }

    /// Connections that still have protocol work to do (TIME-WAIT excluded: the peer has
    /// everything, and waiting it out is not worth holding up an exit).
    pub fn active_connections(&self) -> usize {
        self.conns.values().filter(|e| !matches!(e.conn.state(), State::Closed | State::TimeWait)).count()
    }

    pub fn connections(&self) -> impl Iterator<Item = (ConnId, &Connection)> {
        self.conns.iter().map(|(id, e)| (*id, &e.conn))
    }

    /// Total retransmissions, closed connections included.
    pub fn retransmits(&self) -> u64 {
        self.counters.retransmits_closed + self.conns.values().map(|e| e.conn.stats.retransmits).sum::<u64>()
    }
}

pub fn fmt_quad(q: &Quad) -> String {
    format!("{} ↔ {}", q.remote, q.local)
}

#[cfg(test)]
mod tests;
