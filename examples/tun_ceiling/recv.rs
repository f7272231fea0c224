//! `--mode read`: read the kernel's segments from the TUN and answer with cumulative ACKs (a
//! pre-built ACK whose acknowledgement number, timestamps and checksum change per use), with
//! a constant 4 MiB window (what synack's discard port keeps open).
//!
//! The ACK policies:
//! - `2seg`, `64k`, `256k`: an ACK when the in-order bytes not yet acknowledged reach two
//!   segments / 64 KiB / 256 KiB, and one whenever the TUN is empty with some unacknowledged
//!   (the sender may be waiting for it: a timer here would measure the timer).
//! - `batch`: synack's (`src/runtime/mod.rs`, `src/stack/batch.rs`, `src/tcp/input.rs`): read
//!   up to 256 packets or until the TUN is empty; inside the batch an ACK as soon as 256 KiB
//!   are unacknowledged, at the batch's end one if at least two segments are, else a delayed
//!   ACK 40 ms later.
//!
//! Out-of-order data (the kernel dropped a packet on its way into the TUN) is not kept: a
//! duplicate ACK at once, and the kernel sends the rest again (counted as `ooo`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use synack::wire::TcpFlags;

use crate::conn::Conn;

/// synack's batch: at most this many reads before the batch's ACKs go out.
const BATCH: usize = 256;
/// synack's cap on one held-back ACK (MAX_STRETCH; its 4 MiB buffer's quarter is larger).
const BATCH_STRETCH: u64 = 256 * 1024;
/// synack's delayed-ACK time.
const DELAYED_ACK: Duration = Duration::from_millis(40);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckPolicy {
    /// An ACK per two full segments, and when the TUN is empty.
    TwoSegments,
    /// An ACK per this many unacknowledged in-order bytes, and when the TUN is empty.
    Bytes(u64),
    /// synack's batches.
    Batch,
}

#[derive(Default)]
pub struct RecvStats {
    pub segments: u64,
    pub acks: u64,
    pub out_of_order: u64,
    /// Times the TUN was found empty (the thread then waits for the kernel to send more).
    pub waits: u64,
}

struct Acker {
    ack: crate::wire::Segment,
    /// In-order bytes received (offset from the kernel's first data byte) and acknowledged.
    rcv_nxt: u64,
    acked: u64,
    delayed_until: Option<Instant>,
    fin: bool,
}

impl Acker {
    fn send(&mut self, c: &mut Conn, stats: &mut RecvStats) -> Result<()> {
        self.ack.set_ack(c.rcv_base.wrapping_add(self.rcv_nxt as u32));
        self.ack.set_timestamps(c.ts_now(), c.ts_recent);
        c.send(&self.ack.bytes)?;
        self.acked = self.rcv_nxt;
        self.delayed_until = None;
        stats.acks += 1;
        Ok(())
    }

    fn unacked(&self) -> u64 {
        self.rcv_nxt - self.acked
    }
}

pub fn run(c: &mut Conn, n: u64, policy: AckPolicy) -> Result<RecvStats> {
    let full = c.payload_per_segment as u64;
    let threshold = match policy {
        AckPolicy::TwoSegments => 2 * full,
        AckPolicy::Bytes(bytes) => bytes,
        AckPolicy::Batch => BATCH_STRETCH,
    };
    let batch_max = if policy == AckPolicy::Batch { BATCH } else { usize::MAX };
    let mut a = Acker {
        ack: c.segment(c.snd_base, TcpFlags::empty(), &[]),
        rcv_nxt: 0,
        acked: 0,
        delayed_until: None,
        fin: false,
    };
    let mut stats = RecvStats::default();
    while !a.fin {
        let mut reads = 0;
        let mut empty = false;
        while reads < batch_max {
            let Some(seg) = c.recv()? else {
                empty = true;
                break;
            };
            reads += 1;
            if seg.flags.contains(TcpFlags::SYN) {
                c.send_syn_ack()?;
                continue;
            }
            let has_fin = seg.flags.contains(TcpFlags::FIN);
            if seg.payload_len == 0 && !has_fin {
                continue; // the handshake's ACK, or a window probe
            }
            // Bytes at the segment's start that we have already (a resent segment may
            // overlap); more than it holds: it lies past a gap.
            let have = c.rcv_base.wrapping_add(a.rcv_nxt as u32).wrapping_sub(seg.seq);
            let len = seg.payload_len as u32;
            if have > len || (have == len && !has_fin) {
                // A gap, or a copy of what we have: tell the kernel where we are, now.
                stats.out_of_order += 1;
                a.send(c, &mut stats)?;
                continue;
            }
            a.rcv_nxt += u64::from(len - have);
            stats.segments += u64::from(seg.payload_len > 0);
            if let Some(ts) = seg.tsval {
                c.ts_recent = ts;
            }
            if a.rcv_nxt > n {
                bail!("the kernel sent {} bytes, more than --bytes {n}", a.rcv_nxt);
            }
            if has_fin {
                a.fin = true;
                break;
            }
            if a.unacked() >= threshold {
                a.send(c, &mut stats)?;
            }
        }
        if a.fin {
            break;
        }
        match policy {
            AckPolicy::Batch if a.unacked() >= 2 * full => a.send(c, &mut stats)?,
            AckPolicy::Batch if a.unacked() > 0 && a.delayed_until.is_none() => {
                a.delayed_until = Some(Instant::now() + DELAYED_ACK);
            }
            AckPolicy::TwoSegments | AckPolicy::Bytes(_) if empty && a.unacked() > 0 => a.send(c, &mut stats)?,
            _ => {}
        }
        if a.delayed_until.is_some_and(|t| Instant::now() >= t) {
            a.send(c, &mut stats)?;
        }
        if empty {
            stats.waits += 1;
            c.wait(a.delayed_until).with_context(|| format!("waiting for data after {} of {n} bytes", a.rcv_nxt))?;
        }
    }
    if a.rcv_nxt != n {
        bail!("the kernel closed after {} of {n} bytes", a.rcv_nxt);
    }
    close(c, &mut a, &mut stats)?;
    Ok(stats)
}

/// The kernel's FIN came after the last byte: acknowledge it with ours, and wait (bounded)
/// for the ACK of ours, sending it again if that is lost.
fn close(c: &mut Conn, a: &mut Acker, stats: &mut RecvStats) -> Result<()> {
    let mut fin = c.segment(c.snd_base, TcpFlags::FIN, &[]);
    fin.set_ack(c.rcv_base.wrapping_add(a.rcv_nxt as u32 + 1));
    let give_up = Instant::now() + Duration::from_secs(2);
    loop {
        fin.set_timestamps(c.ts_now(), c.ts_recent);
        c.send(&fin.bytes)?;
        stats.acks += 1;
        let resend_at = Instant::now() + Duration::from_millis(200);
        while Instant::now() < resend_at {
            c.wait(Some(resend_at))?;
            while let Some(seg) = c.recv()? {
                let fin_acked = seg.ack.wrapping_sub(c.snd_base) == 1;
                if seg.flags.contains(TcpFlags::ACK) && fin_acked {
                    return Ok(());
                }
            }
        }
        if Instant::now() >= give_up {
            bail!("the kernel did not acknowledge our FIN within 2 s");
        }
    }
}
