//! Target `segment_sequence`: one connection (passive or active open) driven by a sequence of
//! well-formed segments from the peer, built with `synack::wire::ipv4::build_tcp`, whose
//! flags, sequence and acknowledgment numbers, window, options and payload the fuzzer
//! chooses, interleaved with the application's calls (send, recv, shutdown, abort, release)
//! and clock advances.
//!
//! Sequence and acknowledgment numbers are chosen relative to what a peer would know (its
//! own next sequence number, the host's highest sequence number and last acknowledgment
//! seen), near them or wild, so the fuzzer spends its time inside the windows where the
//! interesting rules are.

use std::net::SocketAddrV4;
use std::time::Duration;

use arbitrary::Arbitrary;
use synack::stack::ConnId;
use synack::wire::{SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

use crate::{peer, Driver};

/// The port the connection's listener (passive open) or peer (active open) uses.
pub const PORT: u16 = 9000;
pub const PEER_PORT: u16 = 5555;
pub const PEER_ISN: u32 = 5000;
const MAX_OPS: usize = 256;
const MAX_PAYLOAD: usize = 3000;

#[derive(Arbitrary, Debug, Clone)]
pub struct Input {
    /// The host opens the connection (`connect`) rather than accepting it.
    pub active: bool,
    /// The harness completes the handshake before the operations start.
    pub handshake: bool,
    pub nodelay: bool,
    /// The options on the peer's SYN (or SYN,ACK).
    pub syn: OptsSpec,
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Segment(Seg),
    /// The application writes this many bytes.
    Send(u16),
    /// The application reads up to this many bytes.
    Recv(u16),
    Shutdown,
    /// RFC 9293 ABORT.
    Abort,
    /// The application drops its handle.
    Release,
    /// The clock moves on this many milliseconds.
    Advance(u16),
    /// The clock moves on this many seconds.
    Sleep(u8),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Seg {
    pub flags: u8,
    pub seq: Rel,
    /// Relative to the host's last acknowledgment instead of the peer's next sequence number.
    pub seq_from_ack: bool,
    pub ack: Rel,
    /// Relative to the host's last segment's sequence number instead of its highest.
    pub ack_from_last: bool,
    pub window: u16,
    pub opts: OptsSpec,
    pub len: u16,
    pub fill: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Rel {
    Exact,
    Plus(u16),
    Minus(u16),
    Wild(u32),
}

impl Rel {
    fn apply(self, base: SeqNum) -> SeqNum {
        match self {
            Rel::Exact => base,
            Rel::Plus(n) => base + u32::from(n),
            Rel::Minus(n) => SeqNum(base.0.wrapping_sub(u32::from(n))),
            Rel::Wild(v) => SeqNum(v),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Default)]
pub struct OptsSpec {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: Option<Ts>,
    /// SACK blocks: a start relative to the host's highest sequence number, and a length.
    pub sack: Vec<(Rel, u16)>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Ts {
    /// The peer's clock now, echoing the host's last TSval.
    Now,
    /// An older TSval (a PAWS candidate).
    Stale(u16),
    Wild(u32, u32),
}

/// What the peer knows.
struct PeerView {
    remote: SocketAddrV4,
    local_port: Option<u16>,
    next: SeqNum,
    host_max: SeqNum,
    host_last_seq: SeqNum,
    host_last_ack: SeqNum,
    host_tsval: u32,
    host_iss: Option<SeqNum>,
}

pub fn run(input: &Input) {
    let mut d = Driver::new();
    // A port of its own: the driver's applications stay off this connection.
    let _ = d.host.listen(PORT, None);
    let mut v = PeerView {
        remote: peer(PEER_PORT),
        local_port: None,
        next: SeqNum(PEER_ISN),
        host_max: SeqNum(0),
        host_last_seq: SeqNum(0),
        host_last_ack: SeqNum(0),
        host_tsval: 0,
        host_iss: None,
    };
    let mut conn: Option<ConnId> = None;
    if input.active {
        let now = d.now;
        conn = d.host.connect(now, v.remote).ok();
        d.settle();
        observe(&mut d, &mut v);
        if input.handshake {
            let hdr = TcpHeaderOut {
                seq: v.next,
                ack: v.host_max,
                flags: TcpFlags::SYN | TcpFlags::ACK,
                window: 65535,
                options: options(&input.syn, &v, &d, true),
            };
            send(&mut d, &mut v, &hdr, &[], false);
        }
    } else {
        let hdr = TcpHeaderOut {
            seq: v.next,
            flags: TcpFlags::SYN,
            window: 65535,
            options: options(&input.syn, &v, &d, true),
            ..Default::default()
        };
        v.local_port = Some(PORT);
        send(&mut d, &mut v, &hdr, &[], false);
        if input.handshake {
            let hdr = TcpHeaderOut {
                seq: v.next,
                ack: v.host_max,
                flags: TcpFlags::ACK,
                window: 65535,
                options: options(&OptsSpec { timestamps: Some(Ts::Now), ..Default::default() }, &v, &d, false),
            };
            send(&mut d, &mut v, &hdr, &[], false);
        }
    }
    if let (Some(id), true) = (conn, input.nodelay) {
        let now = d.now;
        d.host.with_conn(now, id, |c| c.set_nodelay(true));
    }
    let mut released = false;
    for op in input.ops.iter().take(MAX_OPS) {
        // A connection that is gone (reset, timed out) leaves room for the next one the
        // listener makes on the same four-tuple.
        if conn.is_some_and(|id| d.host.conn(id).is_none()) {
            conn = None;
            released = false;
        }
        if conn.is_none() && !released && !input.active {
            conn = d.host.accept(PORT);
            if let (Some(id), true) = (conn, input.nodelay) {
                let now = d.now;
                d.host.with_conn(now, id, |c| c.set_nodelay(true));
            }
        }
        let now = d.now;
        match op {
            Op::Segment(s) => {
                let base = if s.seq_from_ack { v.host_last_ack } else { v.next };
                let ack_base = if s.ack_from_last { v.host_last_seq } else { v.host_max };
                let payload: Vec<u8> =
                    (0..usize::from(s.len) % MAX_PAYLOAD).map(|i| s.fill.wrapping_add(i as u8)).collect();
                let hdr = TcpHeaderOut {
                    seq: s.seq.apply(base),
                    ack: s.ack.apply(ack_base),
                    flags: TcpFlags::from_bits_truncate(s.flags),
                    window: s.window,
                    options: options(&s.opts, &v, &d, s.flags & TcpFlags::SYN.bits() != 0),
                };
                let relative = !matches!(s.seq, Rel::Wild(_));
                send(&mut d, &mut v, &hdr, &payload, relative);
            }
            Op::Send(n) => {
                if let Some(id) = conn {
                    let data: Vec<u8> = (0..usize::from(*n)).map(|i| (i % 251) as u8).collect();
                    d.host.with_conn(now, id, |c| c.send(&data));
                }
            }
            Op::Recv(n) => {
                if let Some(id) = conn {
                    let mut buf = vec![0u8; usize::from(*n)];
                    d.host.with_conn(now, id, |c| c.recv(&mut buf));
                }
            }
            Op::Shutdown => {
                if let Some(id) = conn {
                    d.host.with_conn(now, id, |c| c.shutdown_write(now));
                }
            }
            Op::Abort => {
                if let Some(id) = conn {
                    d.host.with_conn(now, id, |c| c.abort(now, std::io::ErrorKind::ConnectionAborted));
                }
            }
            Op::Release => {
                if let Some(id) = conn.take() {
                    d.host.release(now, id);
                    released = true;
                }
            }
            Op::Advance(ms) => d.advance(Duration::from_millis(u64::from(*ms))),
            Op::Sleep(s) => d.advance(Duration::from_secs(u64::from(*s))),
        }
        d.settle();
        observe(&mut d, &mut v);
    }
    // The application lets go of everything, accepted or not.
    let now = d.now;
    while let Some(id) = d.host.accept(PORT) {
        d.host.release(now, id);
    }
    if let Some(id) = conn {
        d.host.release(now, id);
    }
    d.wind_down();
}

/// Deliver a segment from the peer; `relative`: its sequence number came from the peer's
/// view, so its end moves the peer's next sequence number on.
fn send(d: &mut Driver, v: &mut PeerView, hdr: &TcpHeaderOut, payload: &[u8], relative: bool) {
    let Some(port) = v.local_port else { return };
    d.send(v.remote, port, hdr, payload);
    let len = payload.len() as u32
        + u32::from(hdr.flags.contains(TcpFlags::SYN))
        + u32::from(hdr.flags.contains(TcpFlags::FIN));
    if relative && hdr.seq + len > v.next && !hdr.flags.contains(TcpFlags::RST) {
        v.next = hdr.seq + len;
    }
    observe(d, v);
}

/// Read what the host sent to the peer.
fn observe(d: &mut Driver, v: &mut PeerView) {
    for s in d.take_sent() {
        if s.remote != v.remote {
            continue;
        }
        if v.local_port.is_none() {
            v.local_port = Some(s.local_port);
        }
        if Some(s.local_port) != v.local_port {
            continue;
        }
        if s.flags.contains(TcpFlags::SYN) {
            v.host_iss = Some(s.seq);
            v.host_max = s.end();
        }
        if v.host_iss.is_some() && s.end() > v.host_max {
            v.host_max = s.end();
        }
        v.host_last_seq = s.seq;
        if s.flags.contains(TcpFlags::ACK) {
            v.host_last_ack = s.ack;
        }
        if let Some((tsval, _)) = s.timestamps {
            v.host_tsval = tsval;
        }
    }
}

/// Encode the options of `spec`, dropping SACK blocks beyond the 40 bytes a header holds.
fn options(spec: &OptsSpec, v: &PeerView, d: &Driver, syn: bool) -> TcpOptions {
    let peer_clock = 1000u32.wrapping_add(d.now.saturating_duration_since(d.start).as_millis() as u32);
    let mut o = TcpOptions {
        mss: spec.mss,
        window_scale: spec.window_scale,
        sack_permitted: spec.sack_permitted,
        timestamps: spec.timestamps.map(|t| match t {
            Ts::Now => (peer_clock, if syn && v.host_iss.is_none() { 0 } else { v.host_tsval }),
            Ts::Stale(back) => (peer_clock.wrapping_sub(u32::from(back) + 1), v.host_tsval),
            Ts::Wild(a, b) => (a, b),
        }),
        ..Default::default()
    };
    let room = 40usize.saturating_sub(o.encoded_len());
    let blocks = if room >= 12 { ((room - 4) / 8).min(4) } else { 0 };
    for (start, len) in spec.sack.iter().take(blocks) {
        let l = start.apply(v.host_max);
        o.sack[usize::from(o.sack_len)] = (l, l + u32::from(*len));
        o.sack_len += 1;
    }
    o
}
