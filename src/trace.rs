//! What a learner sees with `--trace`: one line per segment in and out, with sequence numbers
//! relative to each side's ISN and windows scaled, the way Wireshark's summary shows them, and
//! the lines a capture cannot show: state changes, timer events, congestion-window changes and
//! why a segment was dropped. `--trace=json` gives the same events as JSON lines for tools.
//!
//! The stack is sans-I/O, so the tracer only collects lines; the runtime prints them.
//!
//! With a `LiveHub` attached and a viewer connected, the same JSON events (with each
//! segment's bytes) also go to the hub, for the demo page's live ladder.

use std::fmt::{self, Write as _};
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::live::LiveHub;
use crate::tcp::{ConnEvent, SeqContext};
use crate::wire::{DropReason, Quad, TcpFlags, TcpHeaderOut, TcpOptions, TcpSegment};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TraceFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    In,
    Out,
}

pub struct Tracer {
    enabled: bool,
    format: TraceFormat,
    colour: bool,
    epoch: Instant,
    lines: Vec<String>,
    live: Option<Arc<LiveHub>>,
    /// The bytes of the packet being handled, kept for the hub when it is recording.
    packet_in: Option<Vec<u8>>,
}

const RESET: &str = "\x1b[0m";
const CYAN: &str = "\x1b[36m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const MAGENTA: &str = "\x1b[35m";

impl Tracer {
    pub fn new(epoch: Instant) -> Self {
        Tracer {
            enabled: false,
            format: TraceFormat::Text,
            colour: false,
            epoch,
            lines: Vec::new(),
            live: None,
            packet_in: None,
        }
    }

    /// Also hand events to `hub` whenever it has viewers.
    pub(crate) fn set_live(&mut self, hub: Arc<LiveHub>) {
        self.live = Some(hub);
    }

    /// Whether connections should keep their events (state changes, losses) for the tracer:
    /// with a hub attached they may be watched at any moment.
    pub(crate) fn wants_conn_events(&self) -> bool {
        self.enabled || self.live.is_some()
    }

    /// Whether any event made now goes anywhere.
    pub fn active(&self) -> bool {
        self.enabled || self.live_recording()
    }

    fn live_recording(&self) -> bool {
        self.live.as_ref().is_some_and(|h| h.recording())
    }

    /// The bytes of the packet about to be handled, for the hub's dissections.
    pub(crate) fn packet_in(&mut self, bytes: &[u8]) {
        if self.live_recording() {
            let mut buf = self.packet_in.take().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(bytes);
            self.packet_in = Some(buf);
        }
    }

    /// Hands a JSON event of `quad` to the hub, with the packet it describes.
    fn publish(&mut self, now: Instant, quad: Quad, mut v: serde_json::Value, bytes: Option<&[u8]>) {
        let Some(hub) = self.live.as_ref().filter(|h| h.recording()) else { return };
        let t = now.saturating_duration_since(self.epoch);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("t".into(), json!((t.as_secs_f64() * 1e6).round() / 1e6));
        }
        hub.publish(quad, &v.to_string(), t, bytes);
    }

    /// Count the trace's seconds from `epoch` (e.g. the program's start).
    pub(crate) fn set_epoch(&mut self, epoch: Instant) {
        self.epoch = epoch;
    }

    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    pub(crate) fn set_format(&mut self, format: TraceFormat) {
        self.format = format;
    }

    /// ANSI colours in text lines (for a terminal).
    pub(crate) fn set_colour(&mut self, on: bool) {
        self.colour = on;
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn take_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    fn secs(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.epoch).as_secs_f64()
    }

    fn push_text(&mut self, now: Instant, colour: &str, body: fmt::Arguments<'_>) {
        let t = self.secs(now);
        let line = if self.colour && !colour.is_empty() {
            format!("{t:>10.6} {colour}{body}{RESET}")
        } else {
            format!("{t:>10.6} {body}")
        };
        self.lines.push(line);
    }

    fn push_json(&mut self, now: Instant, mut v: serde_json::Value) {
        if let Some(obj) = v.as_object_mut() {
            obj.insert("t".into(), json!((self.secs(now) * 1e6).round() / 1e6));
        }
        self.lines.push(v.to_string());
    }

    pub(crate) fn segment_in(&mut self, now: Instant, seg: &TcpSegment<'_>, ctx: Option<SeqContext>) {
        if !self.active() {
            return;
        }
        // The peer's SACK blocks are in our sequence space.
        let (seq, ack, win, sack_base) = match ctx {
            Some(c) => (seg.seq - c.irs, seg.ack - c.iss, scaled(seg.window, seg.flags, c.peer_shift), c.iss.0),
            None => (seg.seq.0, seg.ack.0, u32::from(seg.window), 0),
        };
        let f = Fields { flags: seg.flags, seq, ack, win, len: seg.payload.len(), options: &seg.options, sack_base };
        self.segment(now, Dir::In, seg.src, seg.dst, &f);
        if self.live_recording() {
            let bytes = self.packet_in.take();
            let quad = Quad { local: seg.dst, remote: seg.src };
            self.publish(now, quad, segment_json(Dir::In, seg.src, seg.dst, &f), bytes.as_deref());
            self.packet_in = bytes;
        }
    }

    /// A segment leaving, `packet` its bytes as they go to the device (`None`: it does not go,
    /// because a per-connection fault drops it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn segment_out(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        hdr: &TcpHeaderOut,
        len: usize,
        ctx: Option<SeqContext>,
        packet: Option<&[u8]>,
    ) {
        if !self.active() {
            return;
        }
        let (seq, ack, win, sack_base) = match ctx {
            Some(c) => (hdr.seq - c.iss, hdr.ack - c.irs, scaled(hdr.window, hdr.flags, c.our_shift), c.irs.0),
            None => (hdr.seq.0, hdr.ack.0, u32::from(hdr.window), 0),
        };
        let f = Fields { flags: hdr.flags, seq, ack, win, len, options: &hdr.options, sack_base };
        if packet.is_none() {
            self.note(
                now,
                format_args!("{local} → {remote} {f}: dropped on purpose (a fault asked for on this connection)"),
            );
        } else {
            self.segment(now, Dir::Out, local, remote, &f);
        }
        if self.live_recording() {
            let mut v = segment_json(Dir::Out, local, remote, &f);
            if packet.is_none() {
                v["fault_drop"] = json!(true);
            }
            self.publish(now, Quad { local, remote }, v, packet);
        }
    }

    fn segment(&mut self, now: Instant, dir: Dir, src: SocketAddrV4, dst: SocketAddrV4, f: &Fields<'_>) {
        if !self.enabled {
            return;
        }
        match self.format {
            TraceFormat::Text => {
                let (word, colour) = if dir == Dir::In { ("in ", CYAN) } else { ("out", GREEN) };
                let colour = if f.flags.contains(TcpFlags::RST) { RED } else { colour };
                self.push_text(now, colour, format_args!("{word} {src} → {dst} {f}"));
            }
            TraceFormat::Json => {
                let v = segment_json(dir, src, dst, f);
                self.push_json(now, v);
            }
        }
    }

    pub fn state(&mut self, now: Instant, quad: &Quad, from: &str, to: &str) {
        let v = || {
            json!({"event": "state", "remote": quad.remote.to_string(), "local": quad.local.to_string(),
                   "from": from, "to": to})
        };
        if self.live_recording() {
            self.publish(now, *quad, v(), None);
        }
        if !self.enabled {
            return;
        }
        match self.format {
            TraceFormat::Text => {
                self.push_text(now, YELLOW, format_args!("    {} ↔ {}  {from} → {to}", quad.remote, quad.local))
            }
            TraceFormat::Json => self.push_json(now, v()),
        }
    }

    pub(crate) fn conn_event(&mut self, now: Instant, quad: &Quad, event: &ConnEvent) {
        if !self.active() {
            return;
        }
        let (kind, what, colour) = match event {
            ConnEvent::StateChange { from, to } => return self.state(now, quad, from.name(), to.name()),
            ConnEvent::RtoFired { rto, backoff } => (
                "timer",
                format!(
                    "retransmission timer fired after {} ms (attempt {backoff}): resending from SND.UNA",
                    rto.as_millis()
                ),
                MAGENTA,
            ),
            ConnEvent::FastRetransmit { .. } => {
                ("loss", "three duplicate ACKs: fast retransmit, entering fast recovery".to_string(), MAGENTA)
            }
            ConnEvent::ZeroWindowProbe => {
                ("timer", "peer's window is zero: sending a window probe".to_string(), MAGENTA)
            }
            ConnEvent::TailLossProbe => {
                ("timer", "no ACK for two round trips: tail loss probe (RFC 8985)".to_string(), MAGENTA)
            }
            ConnEvent::Nagle { len, held: true, small_end } => (
                "nagle",
                format!("holding a {len}-byte tail: the small segment ending at {small_end} is unacknowledged (Nagle, Minshall's variant)"),
                MAGENTA,
            ),
            ConnEvent::Nagle { len, held: false, .. } => (
                "nagle",
                format!("sending a {len}-byte tail at once: only full segments are unacknowledged (Nagle, Minshall's variant)"),
                MAGENTA,
            ),
            ConnEvent::Congestion { cwnd, ssthresh, why } => {
                let ss = if *ssthresh == u32::MAX { "∞".to_string() } else { ssthresh.to_string() };
                ("cwnd", format!("cwnd {cwnd} ssthresh {ss} ({why})"), MAGENTA)
            }
            ConnEvent::Dropped { why } => ("drop", format!("dropped: {why}"), RED),
            ConnEvent::GaveUp => ("timer", "too many retransmissions: giving up with a RST".to_string(), RED),
        };
        let v =
            json!({"event": kind, "remote": quad.remote.to_string(), "local": quad.local.to_string(), "what": what});
        if self.live_recording() {
            self.publish(now, *quad, v.clone(), None);
        }
        if !self.enabled {
            return;
        }
        match self.format {
            TraceFormat::Text => {
                self.push_text(now, colour, format_args!("    {} ↔ {}  {what}", quad.remote, quad.local))
            }
            TraceFormat::Json => self.push_json(now, v),
        }
    }

    pub fn drop(&mut self, now: Instant, reason: DropReason) {
        if !self.enabled {
            return;
        }
        match self.format {
            TraceFormat::Text => self.push_text(now, RED, format_args!("    dropped a packet: {reason}")),
            TraceFormat::Json => self.push_json(now, json!({"event": "drop", "reason": reason.name()})),
        }
    }

    pub fn note(&mut self, now: Instant, args: fmt::Arguments<'_>) {
        if !self.enabled {
            return;
        }
        match self.format {
            TraceFormat::Text => self.push_text(now, "", format_args!("    {args}")),
            TraceFormat::Json => self.push_json(now, json!({"event": "note", "what": args.to_string()})),
        }
    }
}

/// One segment as a JSON event: what `--trace=json` prints and the live ladder draws.
fn segment_json(dir: Dir, src: SocketAddrV4, dst: SocketAddrV4, f: &Fields<'_>) -> serde_json::Value {
    let o = f.options;
    json!({
        "event": "segment",
        "dir": if dir == Dir::In { "in" } else { "out" },
        "src": src.to_string(),
        "dst": dst.to_string(),
        "flags": f.flags.to_string(),
        "seq": f.seq,
        "ack": f.flags.contains(TcpFlags::ACK).then_some(f.ack),
        "win": f.win,
        "len": f.len,
        "mss": o.mss,
        "ws": o.window_scale,
        "sack_perm": o.sack_permitted,
        "ts": o.timestamps.map(|(v, e)| [v, e]),
        "sack": o.sack_blocks().iter().map(|(l, r)| [l.0.wrapping_sub(f.sack_base), r.0.wrapping_sub(f.sack_base)]).collect::<Vec<_>>(),
    })
}

/// Wireshark's "calculated window size": the field shifted, except in SYNs.
fn scaled(window: u16, flags: TcpFlags, shift: u8) -> u32 {
    if flags.contains(TcpFlags::SYN) {
        u32::from(window)
    } else {
        u32::from(window) << shift
    }
}

/// The Wireshark-summary part of a segment line.
struct Fields<'a> {
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    win: u32,
    len: usize,
    options: &'a TcpOptions,
    /// SACK edges are shown relative to this, like seq and ack.
    sack_base: u32,
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
        if o.sack_permitted {
            extra.push_str(" sack_perm");
        }
        if let Some((val, ecr)) = o.timestamps {
            let _ = write!(extra, " tsval={val} tsecr={ecr}");
        }
        if let Some(ws) = o.window_scale {
            let _ = write!(extra, " ws={}", 1u32 << ws);
        }
        for (l, r) in o.sack_blocks() {
            let _ = write!(extra, " sack={}-{}", l.0.wrapping_sub(self.sack_base), r.0.wrapping_sub(self.sack_base));
        }
        f.write_str(&extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SeqNum;
    use std::net::Ipv4Addr;

    fn quad() -> Quad {
        Quad {
            local: SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 2), 80),
            remote: SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), 5000),
        }
    }

    #[test]
    fn text_segment_line_is_relative_and_scaled() {
        let t0 = Instant::now();
        let mut t = Tracer::new(t0);
        t.set_enabled(true);
        let q = quad();
        let hdr = TcpHeaderOut {
            seq: SeqNum(1001),
            ack: SeqNum(5001),
            flags: TcpFlags::ACK,
            window: 100,
            ..Default::default()
        };
        let ctx = SeqContext { iss: SeqNum(1000), irs: SeqNum(5000), peer_shift: 7, our_shift: 3 };
        t.segment_out(t0, q.local, q.remote, &hdr, 0, Some(ctx), Some(&[]));
        let lines = t.take_lines();
        assert_eq!(lines, ["  0.000000 out 10.7.0.2:80 → 10.7.0.1:5000 [ACK] seq=1 ack=1 win=800 len=0"]);
    }

    #[test]
    fn json_lines_parse_and_carry_the_fields() {
        let t0 = Instant::now();
        let mut t = Tracer::new(t0);
        t.set_enabled(true);
        t.set_format(TraceFormat::Json);
        let q = quad();
        t.state(t0, &q, "LISTEN", "SYN-RECEIVED");
        t.conn_event(t0, &q, &ConnEvent::Congestion { cwnd: 1460, ssthresh: 5840, why: "retransmission timeout" });
        t.drop(t0, DropReason::BadTcpChecksum);
        for line in t.take_lines() {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert!(v["event"].is_string() && v["t"].is_number(), "{line}");
        }
    }

    #[test]
    fn disabled_tracer_collects_nothing() {
        let t0 = Instant::now();
        let mut t = Tracer::new(t0);
        t.state(t0, &quad(), "A", "B");
        t.drop(t0, DropReason::Truncated);
        assert!(t.take_lines().is_empty());
    }
}
