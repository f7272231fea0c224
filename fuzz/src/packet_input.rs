//! Target `packet_input`: arbitrary bytes into `Host::handle_packet`, on a host listening on
//! the echo port and port 80 that already has three connections.
//!
//! The input is a list of records, read until the bytes run out. Each starts with a
//! control byte:
//! - `ctrl & 3 == 3`: move the clock on by the next little-endian u16 × 4 ms (up to 262 s)
//!   and fire the timers;
//! - otherwise a packet: a little-endian u16 length, then that many bytes (fewer if the input
//!   ends first). Bits of the control byte ask for fix-ups before delivery, so the fuzzer
//!   gets past the checks it cannot guess, while raw bytes (no bits) still test every check:
//!   - [`FIX_LEN`]: IPv4 total length := the packet's length;
//!   - [`REBASE`]: TCP sequence number += the peer's ISN and acknowledgment number += our
//!     ISS, for that four-tuple when known (a SYN's own sequence number is left alone), so
//!     a recorded session replays against this host's random ISNs;
//!   - [`FIX_L4`]: TCP (pseudo-header) or ICMP checksum recomputed;
//!   - [`FIX_IP`]: IPv4 header checksum recomputed.
//!
//! At the end the clock runs on (200 ms, 1 s, 5 s, 60 s, 300 s), then every connection is
//! released and must be gone within 48 h of silence.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use synack::wire::{checksum, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

use crate::{peer, Driver, ECHO_PORT, SERVE_PORT};

pub const ADVANCE: u8 = 3;
pub const FIX_LEN: u8 = 0x04;
pub const REBASE: u8 = 0x08;
pub const FIX_L4: u8 = 0x10;
pub const FIX_IP: u8 = 0x20;
/// What a recorded, well-formed packet needs to replay: relative numbers made absolute and
/// the checksums that change with them.
pub const REPLAY: u8 = REBASE | FIX_L4 | FIX_IP;

/// Port numbers of the connections made before the input runs (from `peer()`).
pub const SETUP_PORTS: [u16; 3] = [40001, 40002, 40003];

pub fn run(data: &[u8]) {
    let mut d = replay(data);
    d.wind_down();
}

/// Set up, deliver the records, run the clock on; the driver is returned for inspection.
pub fn replay(data: &[u8]) -> Driver {
    let mut d = Driver::new();
    setup(&mut d);
    let mut rest = data;
    while let Some((&ctrl, tail)) = rest.split_first() {
        rest = tail;
        let word = |r: &mut &[u8]| -> usize {
            let v = match *r {
                [a, b, ..] => u16::from_le_bytes([*a, *b]),
                [a] => u16::from(*a),
                [] => 0,
            };
            *r = r.get(2..).unwrap_or(&[]);
            usize::from(v)
        };
        if ctrl & 3 == ADVANCE {
            let ms = word(&mut rest) as u64 * 4;
            d.advance(Duration::from_millis(ms));
            continue;
        }
        let len = word(&mut rest).min(rest.len());
        let mut pkt = rest[..len].to_vec();
        rest = &rest[len..];
        fix_up(ctrl, &mut pkt, &d);
        d.deliver(&pkt);
    }
    for ms in [200, 1000, 5000, 60_000, 300_000] {
        d.advance(Duration::from_millis(ms));
    }
    d
}

/// Three connections before the fuzzer's packets: to the echo port with every option and
/// "hello" echoed, to the echo port with none, and to port 80, whose 20 kB the peer does
/// not acknowledge.
pub fn setup(d: &mut Driver) {
    let full = TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((100, 0)),
        ..Default::default()
    };
    let plain = TcpOptions { mss: Some(536), ..Default::default() };
    for (port, to, opts) in
        [(SETUP_PORTS[0], ECHO_PORT, full), (SETUP_PORTS[1], ECHO_PORT, plain), (SETUP_PORTS[2], SERVE_PORT, full)]
    {
        let remote = peer(port);
        let syn = TcpHeaderOut {
            seq: SeqNum(1000),
            flags: TcpFlags::SYN,
            window: 65535,
            options: opts,
            ..Default::default()
        };
        d.send(remote, to, &syn, &[]);
        let Some(iss) = d.our_iss.get(&(remote, to)).copied() else { continue };
        let mut ack = TcpHeaderOut {
            seq: SeqNum(1001),
            ack: iss + 1,
            flags: TcpFlags::ACK,
            window: 1000,
            options: TcpOptions { timestamps: opts.timestamps.map(|_| (101, 0)), ..Default::default() },
        };
        d.send(remote, to, &ack, &[]);
        if port == SETUP_PORTS[0] {
            ack.flags |= TcpFlags::PSH;
            d.send(remote, to, &ack, b"hello\n");
        }
    }
    d.take_sent();
}

fn be16(p: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([p[i], p[i + 1]])
}

fn be32(p: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]])
}

/// Apply the fix-ups `ctrl` asks for, where the packet is long enough to have the fields.
pub fn fix_up(ctrl: u8, pkt: &mut [u8], d: &Driver) {
    if pkt.len() < 20 {
        return;
    }
    if ctrl & FIX_LEN != 0 {
        if let Ok(len) = u16::try_from(pkt.len()) {
            pkt[2..4].copy_from_slice(&len.to_be_bytes());
        }
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    if ihl < 20 || ihl > pkt.len() {
        return;
    }
    let total = usize::from(be16(pkt, 2)).min(pkt.len());
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    if total >= ihl {
        let (head, rest) = pkt.split_at_mut(ihl);
        let body = &mut rest[..total - ihl];
        match head[9] {
            6 if body.len() >= 20 => {
                if ctrl & REBASE != 0 {
                    let remote = SocketAddrV4::new(src, be16(body, 0));
                    let key = (remote, be16(body, 2));
                    let flags = TcpFlags::from_bits_truncate(body[13]);
                    let bare_syn = flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK);
                    if let (false, Some(isn)) = (bare_syn, d.their_isn.get(&key)) {
                        let seq = be32(body, 4).wrapping_add(isn.0);
                        body[4..8].copy_from_slice(&seq.to_be_bytes());
                    }
                    if let Some(iss) = d.our_iss.get(&key) {
                        let ack = be32(body, 8).wrapping_add(iss.0);
                        body[8..12].copy_from_slice(&ack.to_be_bytes());
                    }
                }
                if ctrl & FIX_L4 != 0 {
                    body[16..18].copy_from_slice(&[0, 0]);
                    let acc = checksum::pseudo_header(src, dst, 6, body.len());
                    let sum = checksum::fold(checksum::sum_words(body, acc));
                    body[16..18].copy_from_slice(&sum.to_be_bytes());
                }
            }
            1 if body.len() >= 4 && ctrl & FIX_L4 != 0 => {
                body[2..4].copy_from_slice(&[0, 0]);
                let sum = checksum::checksum(body);
                body[2..4].copy_from_slice(&sum.to_be_bytes());
            }
            _ => {}
        }
    }
    if ctrl & FIX_IP != 0 {
        pkt[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum::checksum(&pkt[..ihl]);
        pkt[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}

/// One record of the input format: `pkt` delivered with fix-ups `ctrl`.
pub fn encode_packet(ctrl: u8, pkt: &[u8], out: &mut Vec<u8>) {
    let len = pkt.len().min(usize::from(u16::MAX));
    out.push(ctrl & !3);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&pkt[..len]);
}

/// One record of the input format: the clock moves on by `ms` (rounded down to 4 ms).
pub fn encode_advance(ms: u64, out: &mut Vec<u8>) {
    out.push(ADVANCE);
    out.extend_from_slice(&((ms / 4).min(65535) as u16).to_le_bytes());
}
