//! The one connection the ceiling plays the far end of: the TUN, the two endpoints, what the
//! kernel's SYN offered, and the handshake (a SYN,ACK shaped like synack's).

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use synack::device::{Device, Tun};
use synack::wire::{ipv4, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

use crate::wire::{parse, Incoming, Segment};

/// Our initial sequence number: any value does (there is one connection per process).
const ISS: u32 = 0x5eed_0001;
/// What synack advertises by default: MSS 1460, a 4 MiB receive buffer (window scale 7).
pub const OUR_MSS: u16 = 1460;
const RECV_BUF: u32 = 4 << 20;
const OUR_WSCALE: u8 = 7;

pub struct Conn {
    tun: Tun,
    rx: Vec<u8>,
    pub ours: SocketAddrV4,
    pub peer: SocketAddrV4,
    /// Our first data byte's sequence number (ISS + 1) and the kernel's (IRS + 1).
    pub snd_base: u32,
    pub rcv_base: u32,
    /// The kernel's window scale (0 when it offered none: then neither side scales).
    pub peer_wscale: u8,
    /// The window we advertise after the handshake, in the header's units.
    pub window_field: u16,
    pub timestamps: bool,
    /// The TSval to echo (the latest the kernel sent on an in-order segment or ACK).
    pub ts_recent: u32,
    /// TCP payload per full segment: the smaller MSS, less 12 bytes of timestamps.
    pub payload_per_segment: usize,
    epoch: Instant,
    pub deadline: Instant,
}

impl Conn {
    /// Wait for the kernel's SYN to `ours` and answer it; the handshake's last ACK is the
    /// caller's to see.
    pub fn accept(mut tun: Tun, ours: SocketAddrV4, deadline: Instant) -> Result<Conn> {
        let mut rx = vec![0u8; 65536];
        let epoch = Instant::now();
        loop {
            wait_readable(&tun, deadline, deadline).context("waiting for the kernel's SYN")?;
            while let Some(n) = recv(&mut tun, &mut rx)? {
                let Some(syn) = parse(&rx[..n]) else { continue };
                if syn.dst != ours || syn.flags & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::RST) != TcpFlags::SYN {
                    continue;
                }
                let mut conn = Conn::from_syn(tun, rx, ours, &syn, epoch, deadline);
                conn.send_syn_ack()?;
                return Ok(conn);
            }
        }
    }

    fn from_syn(tun: Tun, rx: Vec<u8>, ours: SocketAddrV4, syn: &Incoming, epoch: Instant, deadline: Instant) -> Conn {
        let timestamps = syn.tsval.is_some();
        let peer_wscale = syn.window_scale.unwrap_or(0);
        let window_field = if syn.window_scale.is_some() { (RECV_BUF >> OUR_WSCALE) as u16 } else { u16::MAX };
        Conn {
            tun,
            rx,
            ours,
            peer: syn.src,
            snd_base: ISS.wrapping_add(1),
            rcv_base: syn.seq.wrapping_add(1),
            peer_wscale,
            window_field,
            timestamps,
            ts_recent: syn.tsval.unwrap_or(0),
            payload_per_segment: payload_per_segment(syn.mss, timestamps),
            epoch,
            deadline,
        }
    }

    /// Answer only what the kernel offered, as synack does: MSS, window scale, timestamps;
    /// no SACK (nothing here is ever out of order on purpose), which leaves data segments
    /// and ACKs the size synack's are.
    pub fn send_syn_ack(&mut self) -> Result<()> {
        let options = TcpOptions {
            mss: Some(OUR_MSS),
            window_scale: (self.window_field != u16::MAX).then_some(OUR_WSCALE),
            timestamps: self.timestamps.then(|| (self.ts_now(), self.ts_recent)),
            ..Default::default()
        };
        let hdr = TcpHeaderOut {
            seq: SeqNum(ISS),
            ack: SeqNum(self.rcv_base),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            // The window in a SYN is never scaled (RFC 7323 §2.2).
            window: RECV_BUF.min(65535) as u16,
            options,
        };
        let mut p = Vec::new();
        ipv4::build_tcp(self.ours, self.peer, &hdr, &[], 0, &mut p);
        self.send(&p)
    }

    /// A segment from us to the kernel with the usual ACK, window and timestamps.
    pub fn segment(&self, seq: u32, flags: TcpFlags, payload: &[u8]) -> Segment {
        let options =
            TcpOptions { timestamps: self.timestamps.then(|| (self.ts_now(), self.ts_recent)), ..Default::default() };
        let hdr = TcpHeaderOut {
            seq: SeqNum(seq),
            ack: SeqNum(self.rcv_base),
            flags: flags | TcpFlags::ACK,
            window: self.window_field,
            options,
        };
        Segment::build(self.ours, self.peer, &hdr, payload)
    }

    /// Our TSval: milliseconds since the connection began (never 0, like Linux's).
    pub fn ts_now(&self) -> u32 {
        (self.epoch.elapsed().as_millis() as u32).wrapping_add(1)
    }

    pub fn send(&mut self, packet: &[u8]) -> Result<()> {
        loop {
            match self.tun.send(packet) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("writing to the TUN"),
            }
        }
    }

    /// The next packet of this connection (to `ours`, from the kernel's end), None when the
    /// TUN is empty. Other packets are skipped.
    pub fn recv(&mut self) -> Result<Option<Incoming>> {
        while let Some(n) = recv(&mut self.tun, &mut self.rx)? {
            if let Some(seg) = parse(&self.rx[..n]).filter(|s| s.dst == self.ours && s.src == self.peer) {
                if seg.flags.contains(TcpFlags::RST) {
                    bail!("the kernel reset the connection");
                }
                return Ok(Some(seg));
            }
        }
        Ok(None)
    }

    /// Wait until the TUN has a packet or `until` (at the latest the run's deadline) passes;
    /// at once when `until` has passed already, an error only once the deadline has.
    pub fn wait(&self, until: Option<Instant>) -> Result<()> {
        wait_readable(&self.tun, until.unwrap_or(self.deadline), self.deadline)
    }

    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// The smallest MSS taken from a SYN: a smaller one (down to 0) would leave no room for data
/// beside the 12 bytes of timestamps (Linux clamps too: net.ipv4.tcp_min_snd_mss, 48).
const MIN_PEER_MSS: u16 = 64;

/// TCP payload per full segment: the smaller of the kernel's MSS (536 when its SYN has none,
/// RFC 9293 §3.7.1) and ours, less 12 bytes of timestamps when they are on.
fn payload_per_segment(peer_mss: Option<u16>, timestamps: bool) -> usize {
    let mss = usize::from(peer_mss.unwrap_or(536).clamp(MIN_PEER_MSS, OUR_MSS));
    mss - if timestamps { 12 } else { 0 }
}

/// One packet from the TUN into `buf`, None when it is empty.
fn recv(tun: &mut Tun, buf: &mut [u8]) -> Result<Option<usize>> {
    loop {
        match tun.recv(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading from the TUN"),
        }
    }
}

/// Block until `tun` is readable or `until` (at the latest `deadline`); an error when the
/// deadline has passed.
fn wait_readable(tun: &Tun, until: Instant, deadline: Instant) -> Result<()> {
    let Some(ms) = poll_ms(Instant::now(), until, deadline) else { bail!("timed out") };
    // SAFETY: the fd belongs to `tun`, which outlives this call.
    let fd = unsafe { BorrowedFd::borrow_raw(tun.fd()) };
    match poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], PollTimeout::from(ms)) {
        Ok(_) => Ok(()),
        Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(e).context("waiting on the TUN"),
    }
}

/// How long to poll at `now` for a wait until `until`: whole milliseconds, rounded up so that a
/// short wait does not become a busy loop, 0 when `until` has passed (a look, no wait), capped
/// at the deadline; None once the deadline has passed.
fn poll_ms(now: Instant, until: Instant, deadline: Instant) -> Option<u16> {
    if now >= deadline {
        return None;
    }
    let left = until.min(deadline).saturating_duration_since(now);
    Some(left.as_micros().div_ceil(1000).min(u128::from(u16::MAX)) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_passed_intermediate_time_is_no_timeout() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(30);
        let ms = |d: u64| Duration::from_millis(d);
        // A stall or delayed-ACK time already past: look at the TUN without waiting.
        assert_eq!(poll_ms(now + ms(5), now, deadline), Some(0));
        assert_eq!(poll_ms(now, now, deadline), Some(0));
        // Ahead: rounded up to whole milliseconds.
        assert_eq!(poll_ms(now, now + Duration::from_micros(200), deadline), Some(1));
        assert_eq!(poll_ms(now, now + ms(200), deadline), Some(200));
        // Never past the deadline, and nothing at all once it has passed.
        assert_eq!(poll_ms(now, now + ms(60_000), deadline), Some(30_000));
        assert_eq!(poll_ms(deadline, now, deadline), None);
        assert_eq!(poll_ms(deadline + ms(1), deadline + ms(9), deadline), None);
    }

    #[test]
    fn the_peer_mss_is_clamped() {
        assert_eq!(payload_per_segment(Some(1460), true), 1448);
        assert_eq!(payload_per_segment(Some(9000), false), 1460);
        assert_eq!(payload_per_segment(None, true), 524);
        // An MSS that leaves no room for data (12: `n % 0` in the writer; below: an underflow).
        for tiny in [0, 1, 11, 12, 63] {
            assert_eq!(payload_per_segment(Some(tiny), true), 52, "MSS {tiny}");
            assert_eq!(payload_per_segment(Some(tiny), false), 64, "MSS {tiny}");
        }
    }
}
