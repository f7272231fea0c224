//! Packets for the ceiling: pre-built segments whose sequence, acknowledgement and timestamp
//! fields are rewritten in place with an incremental checksum (RFC 1624), and a parser that
//! reads only the fixed fields a TUN stack must look at (no checksum verification: that is
//! stack work, not packet I/O).

use std::net::{Ipv4Addr, SocketAddrV4};

use synack::wire::{ipv4, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

const IP_LEN: usize = 20;
/// Offsets inside the TCP header.
const SEQ: usize = IP_LEN + 4;
const ACK: usize = IP_LEN + 8;
const CSUM: usize = IP_LEN + 16;
/// TSval and TSecr in a header whose options are NOP NOP TS (as built here, and as Linux and
/// synack lay them out on data segments and ACKs).
const TSVAL: usize = IP_LEN + 20 + 4;
const TSECR: usize = TSVAL + 4;

/// RFC 1624 eqn. 3: the checksum `hc` after a 32-bit field changes from `old` to `new`,
/// HC' = ~(~HC + ~m + m'), one 16-bit half at a time.
pub fn update_checksum(hc: u16, old: u32, new: u32) -> u16 {
    let mut sum = u32::from(!hc);
    for shift in [16, 0] {
        sum += u32::from(!((old >> shift) as u16));
        sum += u32::from((new >> shift) as u16);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One pre-built IPv4+TCP packet (built once with synack's own packet writer) whose
/// variable fields are patched per use.
pub struct Segment {
    pub bytes: Vec<u8>,
    timestamps: bool,
}

impl Segment {
    /// `hdr`'s options must be empty or timestamps alone (NOP NOP TS): the patched offsets
    /// assume that layout.
    pub fn build(src: SocketAddrV4, dst: SocketAddrV4, hdr: &TcpHeaderOut, payload: &[u8]) -> Segment {
        debug_assert!(hdr.options == TcpOptions { timestamps: hdr.options.timestamps, ..Default::default() });
        let mut bytes = Vec::with_capacity(IP_LEN + 32 + payload.len());
        // IP ID 0: every packet carries DF, so the ID identifies no fragments (RFC 6864).
        ipv4::build_tcp(src, dst, hdr, payload, 0, &mut bytes);
        Segment { bytes, timestamps: hdr.options.timestamps.is_some() }
    }

    fn set32(&mut self, at: usize, new: u32) {
        let old = u32::from_be_bytes([self.bytes[at], self.bytes[at + 1], self.bytes[at + 2], self.bytes[at + 3]]);
        if old == new {
            return;
        }
        self.bytes[at..at + 4].copy_from_slice(&new.to_be_bytes());
        let hc = u16::from_be_bytes([self.bytes[CSUM], self.bytes[CSUM + 1]]);
        self.bytes[CSUM..CSUM + 2].copy_from_slice(&update_checksum(hc, old, new).to_be_bytes());
    }

    pub fn set_seq(&mut self, seq: u32) {
        self.set32(SEQ, seq);
    }

    pub fn set_ack(&mut self, ack: u32) {
        self.set32(ACK, ack);
    }

    /// Our TSval and the TSecr we echo; nothing when timestamps were not negotiated.
    pub fn set_timestamps(&mut self, val: u32, ecr: u32) {
        if self.timestamps {
            self.set32(TSVAL, val);
            self.set32(TSECR, ecr);
        }
    }
}

/// What the ceiling reads from a packet the kernel wrote into the TUN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub payload_len: usize,
    /// Options: parsed fully on a SYN, only timestamps otherwise.
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub tsval: Option<u32>,
}

/// The TCP segment in an IPv4 packet, or None for anything else (IPv6, UDP, a fragment, a
/// truncated header).
pub fn parse(p: &[u8]) -> Option<Incoming> {
    let ihl = usize::from(*p.first()? & 0x0f) * 4;
    if p[0] >> 4 != 4 || ihl < IP_LEN || p.len() < ihl + 20 || p[9] != 6 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let fragment = u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0;
    if total > p.len() || total < ihl + 20 || fragment {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]);
    let t = &p[ihl..total];
    let word = |at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
    let port = |at: usize| u16::from_be_bytes([t[at], t[at + 1]]);
    let doff = usize::from(t[12] >> 4) * 4;
    if doff < 20 || doff > t.len() {
        return None;
    }
    let flags = TcpFlags::from_bits_truncate(t[13]);
    let mut seg = Incoming {
        src: SocketAddrV4::new(ip(12), port(0)),
        dst: SocketAddrV4::new(ip(16), port(2)),
        seq: word(4),
        ack: word(8),
        flags,
        window: port(14),
        payload_len: t.len() - doff,
        mss: None,
        window_scale: None,
        tsval: None,
    };
    let mut opts = &t[20..doff];
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => {
                opts = &opts[1..];
                continue;
            }
            _ => {}
        }
        let len = usize::from(*opts.get(1)?);
        if len < 2 || len > opts.len() {
            return None;
        }
        let body = &opts[2..len];
        match (kind, body.len()) {
            (8, 8) => seg.tsval = Some(u32::from_be_bytes([body[0], body[1], body[2], body[3]])),
            (2, 2) if flags.contains(TcpFlags::SYN) => seg.mss = Some(u16::from_be_bytes([body[0], body[1]])),
            (3, 1) if flags.contains(TcpFlags::SYN) => seg.window_scale = Some(body[0].min(14)),
            _ => {}
        }
        opts = &opts[len..];
    }
    Some(seg)
}

/// `a` is at or after `b` in sequence space.
pub fn seq_ge(a: u32, b: u32) -> bool {
    SeqNum(a) >= SeqNum(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use synack::wire::checksum;

    fn addrs() -> (SocketAddrV4, SocketAddrV4) {
        (SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 2), 5001), SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), 40000))
    }

    fn tcp_checksum_ok(p: &[u8]) -> bool {
        let (src, dst) = (Ipv4Addr::new(p[12], p[13], p[14], p[15]), Ipv4Addr::new(p[16], p[17], p[18], p[19]));
        let acc = checksum::pseudo_header(src, dst, 6, p.len() - IP_LEN);
        checksum::fold(checksum::sum_words(&p[IP_LEN..], acc)) == 0
    }

    fn data_segment(ts: bool) -> Segment {
        let (src, dst) = addrs();
        let options = TcpOptions { timestamps: ts.then_some((7, 9)), ..Default::default() };
        let hdr = TcpHeaderOut { seq: SeqNum(1), ack: SeqNum(2), flags: TcpFlags::ACK, window: 32768, options };
        let payload: Vec<u8> = (0..1448u32).map(|i| (i % 251) as u8).collect();
        Segment::build(src, dst, &hdr, &payload)
    }

    #[test]
    fn patched_fields_keep_the_checksum_right() {
        for ts in [true, false] {
            let mut seg = data_segment(ts);
            assert!(tcp_checksum_ok(&seg.bytes));
            // Values that carry across the 16-bit halves, wrap, and return to the start.
            let mut x = 0x9e37_79b9u32;
            for i in 0..2000u32 {
                x = x.rotate_left(7) ^ i.wrapping_mul(0x85eb_ca6b);
                seg.set_seq(x);
                seg.set_ack(!x);
                seg.set_timestamps(x.wrapping_add(i), 0xffff_0000 | i);
                assert!(tcp_checksum_ok(&seg.bytes), "round {i}: seq {x:#x}");
                let back = parse(&seg.bytes).unwrap();
                assert_eq!((back.seq, back.ack), (x, !x));
                assert_eq!(back.tsval, ts.then_some(x.wrapping_add(i)), "round {i}");
                if ts {
                    assert_eq!(seg.bytes[TSECR..TSECR + 4], (0xffff_0000 | i).to_be_bytes(), "round {i}: TSecr");
                }
            }
            seg.set_seq(0);
            seg.set_ack(0xffff_ffff);
            assert!(tcp_checksum_ok(&seg.bytes));
            let back = parse(&seg.bytes).unwrap();
            assert_eq!((back.seq, back.ack, back.payload_len), (0, 0xffff_ffff, 1448));
        }
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC 0xDD2F, a word 0x5555 becomes 0x3285; HC' 0x0000 (not 0xFFFF).
        assert_eq!(update_checksum(0xdd2f, 0x0000_5555, 0x0000_3285), 0x0000);
    }

    #[test]
    fn parses_a_syn_with_linux_options() {
        let (ours, kernel) = addrs();
        let options = TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((0x1234_5678, 0)),
            ..Default::default()
        };
        let hdr = TcpHeaderOut { seq: SeqNum(99), ack: SeqNum(0), flags: TcpFlags::SYN, window: 64240, options };
        let mut p = Vec::new();
        ipv4::build_tcp(kernel, ours, &hdr, &[], 1, &mut p);
        let seg = parse(&p).unwrap();
        assert_eq!((seg.src, seg.dst, seg.seq, seg.window), (kernel, ours, 99, 64240));
        assert_eq!((seg.mss, seg.window_scale, seg.tsval), (Some(1460), Some(7), Some(0x1234_5678)));
        assert_eq!((seg.flags, seg.payload_len), (TcpFlags::SYN, 0));
    }

    #[test]
    fn rejects_what_is_not_tcp_over_ipv4() {
        let seg = data_segment(true);
        assert!(parse(&seg.bytes[..30]).is_none(), "truncated");
        let mut udp = seg.bytes.clone();
        udp[9] = 17;
        assert!(parse(&udp).is_none(), "UDP");
        let mut v6 = seg.bytes.clone();
        v6[0] = 0x60;
        assert!(parse(&v6).is_none(), "IPv6");
        assert!(parse(&[]).is_none(), "empty");
        let mut bad_opt = seg.bytes.clone();
        bad_opt[IP_LEN + 20 + 3] = 40; // the TS option's length runs past the header
        assert!(parse(&bad_opt).is_none(), "bad option length");
    }

    #[test]
    fn sequence_comparison_wraps() {
        assert!(seq_ge(5, 0xffff_fff0));
        assert!(!seq_ge(0xffff_fff0, 5));
        assert!(seq_ge(7, 7));
    }
}
