//! What a learner sees with `--trace`: one line per segment in and out, with sequence numbers
//! relative to each side's ISN the way Wireshark shows them, and the lines a capture cannot
//! show: state changes, timer events and why a segment was dropped.
//!
//! The stack is sans-I/O, so the tracer only collects lines; the runtime prints them.

use std::fmt::{self, Write as _};
use std::net::SocketAddrV4;
use std::time::Instant;

use crate::stack::Quad;
use crate::tcp::ConnEvent;
use crate::wire::{DropReason, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions, TcpSegment};

pub struct Tracer {
    enabled: bool,
    epoch: Instant,
    lines: Vec<String>,
}

impl Tracer {
    pub fn new(epoch: Instant) -> Self {
        Tracer { enabled: false, epoch, lines: Vec::new() }
    }

    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn take_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    fn stamp(&self, now: Instant) -> String {
        format!("{:>10.6}", now.saturating_duration_since(self.epoch).as_secs_f64())
    }

    /// `isns` is (our ISN, the peer's ISN) when the segment belongs to a known connection.
    pub fn segment_in(&mut self, now: Instant, seg: &TcpSegment<'_>, isns: Option<(SeqNum, SeqNum)>) {
        if !self.enabled {
            return;
        }
        let (seq, ack) = match isns {
            Some((iss, irs)) => (seg.seq - irs, seg.ack - iss),
            None => (seg.seq.0, seg.ack.0),
        };
        let line = format!(
            "{} in  {} → {} {}",
            self.stamp(now),
            seg.src,
            seg.dst,
            Fields { flags: seg.flags, seq, ack, win: seg.window, len: seg.payload.len(), options: &seg.options }
        );
        self.lines.push(line);
    }

    pub fn segment_out(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        hdr: &TcpHeaderOut,
        len: usize,
        isns: Option<(SeqNum, SeqNum)>,
    ) {
        if !self.enabled {
            return;
        }
        let (seq, ack) = match isns {
            Some((iss, irs)) => (hdr.seq - iss, hdr.ack - irs),
            None => (hdr.seq.0, hdr.ack.0),
        };
        let line = format!(
            "{} out {} → {} {}",
            self.stamp(now),
            local,
            remote,
            Fields { flags: hdr.flags, seq, ack, win: hdr.window, len, options: &hdr.options }
        );
        self.lines.push(line);
    }

    pub fn state(&mut self, now: Instant, quad: &Quad, from: &str, to: &str) {
        if self.enabled {
            let line = format!("{}     {} ↔ {}  {from} → {to}", self.stamp(now), quad.remote, quad.local);
            self.lines.push(line);
        }
    }

    pub fn conn_event(&mut self, now: Instant, quad: &Quad, event: &ConnEvent) {
        if !self.enabled {
            return;
        }
        let what = match event {
            ConnEvent::StateChange { from, to } => return self.state(now, quad, from.name(), to.name()),
            ConnEvent::RtoFired { rto, backoff } => {
                format!("retransmission timer fired after {} ms (attempt {backoff})", rto.as_millis())
            }
            ConnEvent::FastRetransmit { .. } => "three duplicate ACKs: fast retransmit".to_string(),
            ConnEvent::ZeroWindowProbe => "peer's window is zero: sending a window probe".to_string(),
            ConnEvent::Dropped { why } => format!("dropped: {why}"),
            ConnEvent::GaveUp => "too many retransmissions: giving up with a RST".to_string(),
        };
        let line = format!("{}     {} ↔ {}  {what}", self.stamp(now), quad.remote, quad.local);
        self.lines.push(line);
    }

    pub fn drop(&mut self, now: Instant, reason: DropReason) {
        if self.enabled {
            let line = format!("{}     dropped a packet: {reason}", self.stamp(now));
            self.lines.push(line);
        }
    }

    pub fn note(&mut self, now: Instant, args: fmt::Arguments<'_>) {
        if self.enabled {
            let line = format!("{}     {args}", self.stamp(now));
            self.lines.push(line);
        }
    }
}

/// The Wireshark-summary part of a segment line.
struct Fields<'a> {
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    win: u16,
    len: usize,
    options: &'a TcpOptions,
}

impl fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} seq={}", self.flags, self.seq)?;
        if self.flags.contains(TcpFlags::ACK) {
            write!(f, " ack={}", self.ack)?;
        }
        write!(f, " win={} len={}", self.win, self.len)?;
        let o = self.options;
        let mut extra = String::new();
        if let Some(mss) = o.mss {
            let _ = write!(extra, " mss={mss}");
        }
        if let Some(ws) = o.window_scale {
            let _ = write!(extra, " ws={}", 1u32 << ws);
        }
        if o.sack_permitted {
            extra.push_str(" sack_perm");
        }
        if let Some((val, ecr)) = o.timestamps {
            let _ = write!(extra, " tsval={val} tsecr={ecr}");
        }
        for (l, r) in o.sack_blocks() {
            let _ = write!(extra, " sack={}-{}", l.0, r.0);
        }
        f.write_str(&extra)
    }
}
