//! Grouping TCP segments into connections, with sequence numbers relative the way Wireshark
//! computes them, so that what synack prints can be checked against Wireshark packet by packet.
//!
//! Wireshark's rules (packet-tcp.c, `tcp_analyze_sequence_number`), mirrored here:
//! - A connection is found by its address/port pair in either direction. A SYN (without ACK)
//!   whose sequence number differs from the ISN already recorded for that direction starts a
//!   new connection (port reuse); a repeated SYN with the same ISN is a retransmission.
//! - Each direction's base is the ISN when the first segment seen in that direction is a SYN;
//!   otherwise it is `seq - 1`, so that a capture starting mid-connection shows seq 1.
//! - If the other direction has no base yet, the first ACK sets it to `ack - 1`.
//! - The relative ack is only meaningful with the ACK flag; without it Wireshark shows 0.
//! - The window is shifted by the scale announced in the handshake only when both the SYN
//!   and the SYN-ACK were seen; never on the SYN segments themselves.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::capture::Capture;
use super::headers::{flags, parse_ipv4, parse_tcp, Tcp};
use super::payload;
use crate::wire::SeqNum;

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// IPv4 address.
    pub addr: Ipv4Addr,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.addr, self.port)
    }
}

/// Wireshark's "expert info" findings for a segment that the ladder shows beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Data the sender had already sent, sent again (timeout or unknown cause).
    Retransmission,
    /// Resent right after two or more duplicate ACKs asked for it.
    FastRetransmission,
    /// Resent although the peer had already acknowledged it.
    SpuriousRetransmission,
    /// Sent earlier than data already seen: arrived out of order.
    OutOfOrder,
    /// A gap in sequence space: the capture missed a segment before this one.
    PreviousSegmentNotCaptured,
    /// Acknowledges data the capture never saw.
    AckedUnseenSegment,
    /// The same ACK again with no data: the receiver is saying "I'm still missing something".
    /// Holds the frame of the original ACK and how many duplicates of it so far.
    DupAck {
        /// Frame number of the ACK being repeated.
        of_frame: usize,
        /// 1 for the first duplicate, 2 for the second, …
        n: u32,
    },
    /// The sender's receive buffer is full.
    ZeroWindow,
    /// A one-byte probe into a zero window.
    ZeroWindowProbe,
    /// An empty segment one byte behind: "are you still there?".
    KeepAlive,
    /// Only the window changed.
    WindowUpdate,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Retransmission => write!(f, "[TCP Retransmission]"),
            Finding::FastRetransmission => write!(f, "[TCP Fast Retransmission]"),
            Finding::SpuriousRetransmission => write!(f, "[TCP Spurious Retransmission]"),
            Finding::OutOfOrder => write!(f, "[TCP Out-Of-Order]"),
            Finding::PreviousSegmentNotCaptured => write!(f, "[TCP Previous segment not captured]"),
            Finding::AckedUnseenSegment => write!(f, "[TCP ACKed unseen segment]"),
            Finding::DupAck { of_frame, n } => write!(f, "[TCP Dup ACK {of_frame}#{n}]"),
            Finding::ZeroWindow => write!(f, "[TCP ZeroWindow]"),
            Finding::ZeroWindowProbe => write!(f, "[TCP ZeroWindowProbe]"),
            Finding::KeepAlive => write!(f, "[TCP Keep-Alive]"),
            Finding::WindowUpdate => write!(f, "[TCP Window Update]"),
        }
    }
}

/// One TCP segment as the ladder and explain outputs need it.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Frame number in the capture (from 1).
    pub frame: usize,
    /// Time since the first frame of the capture.
    pub time: Duration,
    /// Which endpoint sent it: 0 = the connection's `endpoints[0]`.
    pub from: usize,
    /// The parsed header.
    pub tcp: Tcp,
    /// Sequence number relative to the sender's base (Wireshark's `tcp.seq`).
    pub rel_seq: u32,
    /// Acknowledgment relative to the receiver's base (Wireshark's `tcp.ack`; 0 without ACK).
    pub rel_ack: u32,
    /// Window after scaling when the scale is known (Wireshark's `tcp.window_size`).
    pub window: u32,
    /// The shift applied to get `window`, when known; `None` = not known (handshake not seen).
    pub window_shift: Option<u8>,
    /// Expert findings, in Wireshark's order of checking.
    pub findings: Vec<Finding>,
    /// One-line application-layer summary (HTTP request line, WebSocket frame, …), if any.
    pub app: Option<String>,
    /// The connection had switched to WebSocket framing (after an HTTP 101) before this segment.
    pub websocket: bool,
}

/// Per-direction state, named after Wireshark's `tcp_flow_t`.
#[derive(Debug, Clone, Default)]
struct Flow {
    base_seq: Option<u32>,
    /// Window-scale announced in this direction's SYN: None = no SYN seen yet.
    syn_ws: Option<Option<u8>>,
    nextseq: u32,
    nextseq_time: Duration,
    lastack: u32,
    lastack_time: Duration,
    dupacknum: u32,
    lastnondupack: usize,
    maxseqtobeacked: u32,
    window: u32,
    last_findings: Vec<Finding>,
    /// This direction answered an HTTP upgrade with `101 Switching Protocols`: from then on
    /// the connection carries WebSocket frames, which payload decoding needs to know.
    upgraded: bool,
}

/// One TCP connection: both directions' segments in capture order.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Number from 1 (Wireshark's `tcp.stream` is this minus one).
    pub number: usize,
    /// The two ends; `endpoints[0]` sent the first segment seen.
    pub endpoints: [Endpoint; 2],
    /// Index into `endpoints` of the client (the SYN sender), when the capture shows who it is.
    pub client: Option<usize>,
    /// The segments in capture order.
    pub segments: Vec<Segment>,
    flows: [Flow; 2],
    syn_time: Option<Duration>,
    first_rtt: Option<Duration>,
}

impl Conversation {
    /// The index of the endpoint drawn in the left column: the client, else the first sender.
    pub fn left(&self) -> usize {
        self.client.unwrap_or(0)
    }

    /// Whether the connection is using WebSocket framing after an HTTP upgrade.
    pub fn upgraded(&self) -> bool {
        self.flows.iter().any(|f| f.upgraded)
    }
}

/// Everything the TCP analysis found in one capture.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Connections in order of their first segment.
    pub conversations: Vec<Conversation>,
    /// frame number → (index into `conversations`, index into its `segments`).
    pub by_frame: HashMap<usize, (usize, usize)>,
}

impl Analysis {
    /// The segment carried by frame `n`, with its conversation.
    pub fn segment(&self, n: usize) -> Option<(&Conversation, &Segment)> {
        let (c, s) = *self.by_frame.get(&n)?;
        let conv = self.conversations.get(c)?;
        Some((conv, conv.segments.get(s)?))
    }
}

fn key(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Runs the TCP analysis over every IPv4/TCP frame of the capture.
///
/// Frames that are not TCP, are IP fragments, or are too broken to read a TCP header from are
/// skipped here (explain still shows them).
pub fn analyze(capture: &Capture) -> Analysis {
    let start = capture.start();
    let mut out = Analysis::default();
    let mut current: HashMap<(Endpoint, Endpoint), usize> = HashMap::new();
    for frame in &capture.frames {
        let Ok(ip_bytes) = frame.ipv4() else { continue };
        let Ok(ip) = parse_ipv4(ip_bytes) else {
            continue;
        };
        if ip.protocol != 6 || ip.is_fragment() || ip.ihl < 5 {
            continue;
        }
        let Ok(tcp) = parse_tcp(&ip) else { continue };
        let src = Endpoint { addr: ip.source, port: tcp.source_port };
        let dst = Endpoint { addr: ip.destination, port: tcp.destination_port };
        let k = key(src, dst);
        let syn_only = tcp.flags & (flags::SYN | flags::ACK) == flags::SYN;
        let existing = current.get(&k).copied().filter(|&ci| {
            let conv = &out.conversations[ci];
            let from = usize::from(conv.endpoints[0] != src);
            // Port reuse: a new SYN with a different ISN is a new connection.
            !(syn_only && conv.flows[from].base_seq.is_some_and(|b| b != tcp.seq))
        });
        let ci = match existing {
            Some(ci) => ci,
            None => {
                let number = out.conversations.len() + 1;
                out.conversations.push(Conversation {
                    number,
                    endpoints: [src, dst],
                    client: None,
                    segments: Vec::new(),
                    flows: Default::default(),
                    syn_time: None,
                    first_rtt: None,
                });
                current.insert(k, number - 1);
                number - 1
            }
        };
        let conv = &mut out.conversations[ci];
        let from = usize::from(conv.endpoints[0] != src);
        let time = frame.timestamp.saturating_sub(start);
        let seg = conv.add(frame.number, frame.timestamp, time, from, tcp);
        out.by_frame.insert(frame.number, (ci, conv.segments.len()));
        conv.segments.push(seg);
    }
    out
}

/// Sequence order modulo 2^32, the stack's own ([`SeqNum`]).
fn gt_seq(a: u32, b: u32) -> bool {
    SeqNum(a) > SeqNum(b)
}

fn lt_seq(a: u32, b: u32) -> bool {
    SeqNum(a) < SeqNum(b)
}

impl Conversation {
    fn add(&mut self, frame: usize, abs: Duration, time: Duration, from: usize, tcp: Tcp) -> Segment {
        let to = 1 - from;
        let f = tcp.flags;
        let syn = f & flags::SYN != 0;
        let ack_flag = f & flags::ACK != 0;
        if syn && !ack_flag {
            self.client = Some(from);
            if self.syn_time.is_none() {
                self.syn_time = Some(abs);
            }
        } else if syn && self.client.is_none() {
            self.client = Some(to);
        }
        if !syn && ack_flag && self.first_rtt.is_none() {
            if let Some(t) = self.syn_time {
                self.first_rtt = Some(abs.saturating_sub(t));
            }
        }
        if syn && self.flows[from].syn_ws.is_none() {
            self.flows[from].syn_ws = Some(tcp.window_scale());
        }

        // Relative numbering bases.
        if self.flows[from].base_seq.is_none() {
            self.flows[from].base_seq = Some(if syn { tcp.seq } else { tcp.seq.wrapping_sub(1) });
        }
        if self.flows[to].base_seq.is_none() && ack_flag {
            self.flows[to].base_seq = Some(tcp.ack.wrapping_sub(1));
        }
        let rel_seq = tcp.seq.wrapping_sub(self.flows[from].base_seq.unwrap_or(tcp.seq));
        let rel_ack = if ack_flag { tcp.ack.wrapping_sub(self.flows[to].base_seq.unwrap_or(tcp.ack)) } else { 0 };

        // Window scaling is in force only when both SYNs were seen; each side shifts by the
        // value it announced itself, and 0 when either side did not offer the option.
        let window_shift = match (self.flows[from].syn_ws, self.flows[to].syn_ws) {
            _ if syn => Some(0),
            (Some(Some(mine)), Some(Some(_))) => Some(mine.min(14)),
            (Some(_), Some(_)) => Some(0),
            _ => None,
        };
        let window = u32::from(tcp.window) << window_shift.unwrap_or(0);

        let findings = self.expert(frame, from, &tcp, window, abs);

        let websocket = self.upgraded();
        let app = self.app_summary(from, &tcp);
        Segment { frame, time, from, rel_seq, rel_ack, window, window_shift, findings, app, websocket, tcp }
    }

    /// Wireshark's sequence analysis (expert info), simplified where noted.
    fn expert(&mut self, frame: usize, from: usize, tcp: &Tcp, window: u32, now: Duration) -> Vec<Finding> {
        let to = 1 - from;
        let seq = tcp.seq;
        let ack = tcp.ack;
        let seglen = tcp.len;
        let f = tcp.flags;
        let sfr = flags::SYN | flags::FIN | flags::RST;
        let mut out = Vec::new();
        let (fwd_nextseq, fwd_lastack, fwd_window) =
            (self.flows[from].nextseq, self.flows[from].lastack, self.flows[from].window);
        let rev = &self.flows[to];
        let mut skip_dupack = false;
        let mut zwp = false;
        if seglen == 1 && seq == fwd_nextseq && rev.window == 0 {
            out.push(Finding::ZeroWindowProbe);
            zwp = true;
            skip_dupack = true;
        }
        if !zwp {
            if window == 0 && f & sfr == 0 {
                out.push(Finding::ZeroWindow);
            }
            if fwd_nextseq != 0 && gt_seq(seq, fwd_nextseq) && f & flags::RST == 0 {
                out.push(Finding::PreviousSegmentNotCaptured);
            }
            if (seglen == 0 || seglen == 1) && seq == fwd_nextseq.wrapping_sub(1) && f & sfr == 0 {
                out.push(Finding::KeepAlive);
            }
            if seglen == 0
                && window != 0
                && window != fwd_window
                && seq == fwd_nextseq
                && ack == fwd_lastack
                && f & sfr == 0
            {
                out.push(Finding::WindowUpdate);
            }
            let repeats = seglen == 0 && seq == fwd_nextseq && ack == fwd_lastack && f & sfr == 0;
            if repeats && window != 0 && window == fwd_window && rev.last_findings.contains(&Finding::KeepAlive) {
                skip_dupack = true; // keep-alive ACK
            }
            if repeats && window == 0 && window == fwd_window && rev.last_findings.contains(&Finding::ZeroWindowProbe) {
                skip_dupack = true; // zero-window-probe ACK
            }
            if !skip_dupack && repeats && window != 0 && window == fwd_window {
                self.flows[from].dupacknum += 1;
                out.push(Finding::DupAck { of_frame: self.flows[from].lastnondupack, n: self.flows[from].dupacknum });
            }
        }
        if ack != self.flows[from].lastack {
            self.flows[from].lastnondupack = frame;
            self.flows[from].dupacknum = 0;
        }
        let rev = &self.flows[to];
        if rev.maxseqtobeacked != 0 && gt_seq(ack, rev.maxseqtobeacked) && f & flags::ACK != 0 {
            out.push(Finding::AckedUnseenSegment);
            let n = self.flows[to].nextseq;
            self.flows[to].maxseqtobeacked = n;
        }
        let rev = &self.flows[to];
        if (seglen > 0 || f & (flags::SYN | flags::FIN) != 0) && !out.contains(&Finding::KeepAlive) {
            let mut not_advanced = fwd_nextseq != 0 && lt_seq(seq, fwd_nextseq);
            if seglen > 1 && fwd_nextseq.wrapping_sub(1) == seq {
                not_advanced = false;
            }
            let since_ack = now.saturating_sub(rev.lastack_time);
            let since_next = now.saturating_sub(self.flows[from].nextseq_time);
            let ooo_thres = self.first_rtt.filter(|d| !d.is_zero()).unwrap_or(Duration::from_millis(3));
            if not_advanced && rev.dupacknum >= 2 && rev.lastack == seq && since_ack < Duration::from_millis(20) {
                out.push(Finding::FastRetransmission);
            } else if not_advanced && since_next < ooo_thres && fwd_nextseq != seq.wrapping_add(seglen) {
                out.push(Finding::OutOfOrder);
            } else if seglen > 0 && rev.lastack != 0 && !gt_seq(seq.wrapping_add(seglen), rev.lastack) {
                out.push(Finding::SpuriousRetransmission);
            } else if not_advanced {
                out.push(Finding::Retransmission);
            }
        }

        let mut nextseq = seq.wrapping_add(seglen);
        if f & (flags::SYN | flags::FIN) != 0 {
            nextseq = nextseq.wrapping_add(1);
        }
        let fwd = &mut self.flows[from];
        if (gt_seq(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !zwp {
            fwd.nextseq = nextseq;
            fwd.nextseq_time = now;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !zwp {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
        fwd.window = window;
        fwd.lastack = ack;
        fwd.lastack_time = now;
        fwd.last_findings = out.clone();
        out
    }

    fn app_summary(&mut self, from: usize, tcp: &Tcp) -> Option<String> {
        if tcp.payload.is_empty() {
            return None;
        }
        let upgraded = self.upgraded();
        let summary = payload::summarize(&tcp.payload, upgraded);
        if payload::is_upgrade_response(&tcp.payload) {
            self.flows[from].upgraded = true;
        }
        summary
    }
}
