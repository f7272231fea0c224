//! `--mode write`: pre-built full-sized data segments into the TUN as fast as the kernel's
//! window allows; only sequence number, timestamps and checksum change per segment. ACKs are
//! drained every 32 writes (reads until the TUN is empty), and whenever the window is full.
//!
//! Nothing is lost on a clean TUN unless RPS steers our packets to another CPU's backlog and
//! it overflows: three duplicate ACKs, or 200 ms without progress, send everything again
//! from the first unacknowledged byte (go-back-N; counted as `retx`, which a clean run has 0
//! of).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use synack::app::http::fill_pattern;
use synack::wire::TcpFlags;

use crate::conn::Conn;
use crate::wire::seq_ge;

/// Writes between two drains of the kernel's ACKs.
const DRAIN_EVERY: u64 = 32;
/// Without any progress for this long, send again from the first unacknowledged byte.
const STALL: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct SendStats {
    pub segments: u64,
    pub acks: u64,
    /// Times everything from the first unacknowledged byte was sent again.
    pub retransmits: u64,
    /// Times the window was full (or all was sent) and the thread waited for ACKs: a
    /// ceiling that waits often measures the kernel's reader, not the packet I/O.
    pub waits: u64,
}

/// Offsets from our first data byte; the window is the kernel's, scaled.
struct Window {
    una: u64,
    nxt: u64,
    max: u64,
    wnd: u64,
    dups: u32,
    /// Recovering until this offset is acknowledged: duplicate ACKs of the data sent before
    /// the go-back do not start another.
    recover: Option<u64>,
    progress_at: Instant,
    established: bool,
    peer_fin: bool,
}

pub fn run(c: &mut Conn, n: u64) -> Result<SendStats> {
    let full = c.payload_per_segment;
    let mut payload = vec![0u8; full];
    fill_pattern(0, &mut payload);
    let mut data = c.segment(c.snd_base, TcpFlags::empty(), &payload);
    let tail_len = (n % full as u64) as usize;
    let mut tail = (tail_len > 0).then(|| c.segment(c.snd_base, TcpFlags::empty(), &payload[..tail_len]));
    let mut stats = SendStats::default();
    let mut w = Window {
        una: 0,
        nxt: 0,
        max: 0,
        wnd: 0,
        dups: 0,
        recover: None,
        progress_at: Instant::now(),
        established: false,
        peer_fin: false,
    };
    // The handshake's last ACK carries the kernel's first scaled window.
    while !w.established {
        c.wait(None).context("waiting for the handshake's last ACK")?;
        drain(c, &mut w, &mut stats)?;
    }
    let mut ts_val = c.ts_now();
    while w.una < n {
        while w.nxt < n {
            let len = (n - w.nxt).min(full as u64);
            if w.nxt + len > w.una + w.wnd {
                break;
            }
            let seg = match tail.as_mut() {
                Some(t) if len < full as u64 => t,
                _ => &mut data,
            };
            seg.set_seq(c.snd_base.wrapping_add(w.nxt as u32));
            seg.set_timestamps(ts_val, c.ts_recent);
            c.send(&seg.bytes)?;
            w.nxt += len;
            w.max = w.max.max(w.nxt);
            stats.segments += 1;
            if stats.segments.is_multiple_of(DRAIN_EVERY) {
                drain(c, &mut w, &mut stats)?;
                ts_val = c.ts_now();
            }
        }
        if w.una >= n {
            break;
        }
        // The window is full (or everything is sent): wait for ACKs.
        stats.waits += 1;
        c.wait(Some(w.progress_at + STALL))
            .with_context(|| format!("waiting for ACKs after {} of {n} bytes acknowledged", w.una))?;
        drain(c, &mut w, &mut stats)?;
        ts_val = c.ts_now();
        if w.progress_at.elapsed() >= STALL {
            go_back(&mut w, &mut stats);
        }
    }
    close(c, &mut w, &mut stats, n)?;
    Ok(stats)
}

/// Read every queued packet: take the ACKs' progress and window, count duplicates.
fn drain(c: &mut Conn, w: &mut Window, stats: &mut SendStats) -> Result<()> {
    while let Some(seg) = c.recv()? {
        if seg.flags.contains(TcpFlags::SYN) {
            // Our SYN,ACK was lost: the kernel sends its SYN again.
            c.send_syn_ack()?;
            continue;
        }
        if seg.flags.contains(TcpFlags::FIN) {
            w.peer_fin = true;
        }
        if !seg.flags.contains(TcpFlags::ACK) {
            continue;
        }
        stats.acks += 1;
        let acked = u64::from(seg.ack.wrapping_sub(c.snd_base));
        if !w.established {
            // The handshake's last ACK (of our SYN: our first data byte's number).
            w.established = acked == 0;
            w.wnd = u64::from(seg.window) << c.peer_wscale;
            continue;
        }
        if acked > w.max + 1 {
            continue; // not for anything sent (the + 1 is our FIN)
        }
        if let Some(ts) = seg.tsval.filter(|&ts| seq_ge(ts, c.ts_recent)) {
            c.ts_recent = ts;
        }
        let wnd = u64::from(seg.window) << c.peer_wscale;
        if acked > w.una {
            w.una = acked;
            w.nxt = w.nxt.max(acked);
            w.wnd = wnd;
            w.dups = 0;
            w.progress_at = Instant::now();
            if w.recover.is_some_and(|r| acked >= r) {
                w.recover = None;
            }
        } else if acked == w.una && seg.payload_len == 0 && wnd == w.wnd && w.max > w.una {
            w.dups += 1;
            if w.dups == 3 && w.recover.is_none() {
                go_back(w, stats);
            }
        } else if acked == w.una {
            w.wnd = wnd; // a window update
        }
    }
    Ok(())
}

fn go_back(w: &mut Window, stats: &mut SendStats) {
    w.recover = Some(w.max);
    w.nxt = w.una;
    w.dups = 0;
    w.progress_at = Instant::now();
    stats.retransmits += 1;
}

/// Send our FIN after the last byte, and acknowledge the kernel's when its reader closes:
/// both sides end closed, nothing left to time out in the namespace. Bounded: the result
/// is already measured.
fn close(c: &mut Conn, w: &mut Window, stats: &mut SendStats, n: u64) -> Result<()> {
    let mut fin = c.segment(c.snd_base.wrapping_add(n as u32), TcpFlags::FIN, &[]);
    let give_up = Instant::now() + Duration::from_secs(2);
    let mut sent_at = None::<Instant>;
    loop {
        let fin_acked = w.una > n;
        if !fin_acked && sent_at.is_none_or(|t| t.elapsed() >= STALL) {
            fin.set_timestamps(c.ts_now(), c.ts_recent);
            c.send(&fin.bytes)?;
            sent_at = Some(Instant::now());
        }
        if fin_acked && w.peer_fin {
            let mut last = c.segment(c.snd_base.wrapping_add(n as u32 + 1), TcpFlags::empty(), &[]);
            last.set_ack(c.rcv_base.wrapping_add(1));
            c.send(&last.bytes)?;
            return Ok(());
        }
        if Instant::now() >= give_up || c.past_deadline() {
            bail!("the kernel did not close within 2 s after the last byte (FIN acknowledged: {fin_acked})");
        }
        c.wait(Some(Instant::now() + STALL))?;
        drain(c, w, stats)?;
    }
}
