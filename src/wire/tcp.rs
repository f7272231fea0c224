//! TCP header: flags, options, parsing with checksum verification, and building.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use bitflags::bitflags;

use super::checksum;
use super::seq::SeqNum;
use super::tcp_options::{self, TcpOption};
use super::DropReason;

pub const TCP_HEADER_LEN: usize = 20;
pub const PROTO_TCP: u8 = 6;

bitflags! {
    /// The TCP control bits, in header order (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
    pub struct TcpFlags: u8 {
        const FIN = 0x01;
        const SYN = 0x02;
        const RST = 0x04;
        const PSH = 0x08;
        const ACK = 0x10;
        const URG = 0x20;
        const ECE = 0x40;
        const CWR = 0x80;
    }
}

/// The NS bit (RFC 3540, historic; AE in accurate ECN): the ninth flag, in the byte before
/// the other eight. `TcpFlags` leaves it out, since synack neither sends nor reads it; the
/// analyzer shows it.
pub const FLAG_NS: u16 = 0x100;

/// Flag names in Wireshark's order (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, NS), for the
/// 12 flag bits of a header: bits 0-7 as in [`TcpFlags`], bit 8 NS.
pub fn flag_names(bits: u16) -> impl Iterator<Item = &'static str> {
    const ORDER: [(u16, &str); 9] = [
        (0x01, "FIN"),
        (0x02, "SYN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x10, "ACK"),
        (0x20, "URG"),
        (0x40, "ECE"),
        (0x80, "CWR"),
        (FLAG_NS, "NS"),
    ];
    ORDER.into_iter().filter(move |(bit, _)| bits & bit != 0).map(|(_, name)| name)
}

impl fmt::Display for TcpFlags {
    /// Wireshark's way: `[SYN, ACK]`, `[PSH, ACK]`, `[FIN, ACK]`, `[RST]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, name) in flag_names(u16::from(self.bits())).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        f.write_str("]")
    }
}

/// The options synack understands; unknown kinds are skipped (RFC 9293 §3.1 requires that).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr), RFC 7323.
    pub timestamps: Option<(u32, u32)>,
    /// Up to four SACK blocks (RFC 2018), `sack_len` of them valid.
    pub sack: [(SeqNum, SeqNum); 4],
    pub sack_len: u8,
}

impl TcpOptions {
    pub fn sack_blocks(&self) -> &[(SeqNum, SeqNum)] {
        &self.sack[..usize::from(self.sack_len)]
    }

    /// Parse the option bytes between the fixed header and the data: what synack understands
    /// is kept, unknown kinds and malformed SACK options are skipped (RFC 9293 §3.1), and a
    /// broken list or a known option of the wrong length drops the segment.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<TcpOptions, DropReason> {
        let mut opts = TcpOptions::default();
        for (_, opt) in tcp_options::walk(bytes) {
            match opt.map_err(|_| DropReason::BadTcpOptions)? {
                TcpOption::Eol | TcpOption::Nop | TcpOption::Unknown { .. } => {}
                TcpOption::Mss(mss) => opts.mss = Some(mss),
                // RFC 7323 §2.3: a shift above 14 is treated as 14.
                TcpOption::WindowScale(shift) => opts.window_scale = Some(shift.min(14)),
                TcpOption::SackPermitted => opts.sack_permitted = true,
                // Four blocks at most across all SACK options (40 option bytes hold no more;
                // a caller may pass more bytes than a header can).
                TcpOption::Sack(blocks) => {
                    for (left, right) in blocks.iter() {
                        let Some(slot) = opts.sack.get_mut(usize::from(opts.sack_len)) else { break };
                        *slot = (SeqNum(left), SeqNum(right));
                        opts.sack_len += 1;
                    }
                }
                TcpOption::Timestamps { value, echo } => opts.timestamps = Some((value, echo)),
                TcpOption::WrongLength { kind: 5, .. } => {}
                TcpOption::WrongLength { .. } => return Err(DropReason::BadTcpOptions),
            }
        }
        Ok(opts)
    }

    /// Encoded length, padded to a multiple of 4.
    pub fn encoded_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 4; // NOP + 3
        }
        if self.sack_permitted {
            n += 4; // NOP NOP + 2, or beside timestamps
        }
        if self.timestamps.is_some() {
            n += 12; // NOP NOP + 10 (or SACK-permitted + 10)
        }
        if self.sack_len > 0 {
            n += 4 + 8 * usize::from(self.sack_len); // NOP NOP + 2 + 8n
        }
        if self.sack_permitted && self.timestamps.is_some() {
            n -= 4; // SACK-permitted takes the place of the two NOPs before timestamps.
        }
        n
    }

    /// Encode in the layout Linux uses, so captures look familiar in Wireshark.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(mss) = self.mss {
            out.extend_from_slice(&[2, 4]);
            out.extend_from_slice(&mss.to_be_bytes());
        }
        match (self.sack_permitted, self.timestamps) {
            (true, Some(_)) => out.extend_from_slice(&[4, 2]),
            (true, None) => out.extend_from_slice(&[1, 1, 4, 2]),
            (false, Some(_)) => out.extend_from_slice(&[1, 1]),
            (false, None) => {}
        }
        if let Some((val, ecr)) = self.timestamps {
            out.extend_from_slice(&[8, 10]);
            out.extend_from_slice(&val.to_be_bytes());
            out.extend_from_slice(&ecr.to_be_bytes());
        }
        if let Some(ws) = self.window_scale {
            out.extend_from_slice(&[1, 3, 3, ws]);
        }
        if self.sack_len > 0 {
            out.extend_from_slice(&[1, 1, 5, 2 + 8 * self.sack_len]);
            for (l, r) in self.sack_blocks() {
                out.extend_from_slice(&l.0.to_be_bytes());
                out.extend_from_slice(&r.0.to_be_bytes());
            }
        }
    }
}

/// A parsed TCP segment, borrowing its payload from the packet buffer.
#[derive(Clone, Debug)]
pub struct TcpSegment<'a> {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

impl TcpSegment<'_> {
    /// SEG.LEN: payload plus one for each of SYN and FIN (RFC 9293 §3.4).
    pub fn seg_len(&self) -> u32 {
        self.payload.len() as u32
            + u32::from(self.flags.contains(TcpFlags::SYN))
            + u32::from(self.flags.contains(TcpFlags::FIN))
    }
}

/// Parse and verify the TCP part of an IPv4 packet.
pub fn parse(src: Ipv4Addr, dst: Ipv4Addr, bytes: &[u8]) -> Result<TcpSegment<'_>, DropReason> {
    parse_with(src, dst, bytes, true)
}

/// [`parse`], verifying the checksum only when `verify` is set: a caller passes false for a
/// packet whose checksum the kernel vouches for (see `device::PacketMeta::csum_trusted`).
pub fn parse_with(src: Ipv4Addr, dst: Ipv4Addr, bytes: &[u8], verify: bool) -> Result<TcpSegment<'_>, DropReason> {
    // etherparse checks the header's lengths; the checksum is the caller's.
    let tcp = etherparse::TcpSlice::from_slice(bytes).map_err(|_| {
        if bytes.len() < TCP_HEADER_LEN {
            DropReason::Truncated
        } else {
            DropReason::BadTcpHeader
        }
    })?;
    let acc = checksum::pseudo_header(src, dst, PROTO_TCP, bytes.len());
    if verify && checksum::fold(checksum::sum_words(bytes, acc)) != 0 {
        return Err(DropReason::BadTcpChecksum);
    }
    Ok(TcpSegment {
        src: SocketAddrV4::new(src, tcp.source_port()),
        dst: SocketAddrV4::new(dst, tcp.destination_port()),
        seq: SeqNum(tcp.sequence_number()),
        ack: SeqNum(tcp.acknowledgment_number()),
        flags: TcpFlags::from_bits_truncate(bytes[13]),
        window: tcp.window_size(),
        options: TcpOptions::parse(tcp.options())?,
        payload: tcp.payload(),
    })
}

/// The fields of a segment to send; addresses come from the connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpHeaderOut {
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
}

/// Append a TCP header plus payload to `out` (which holds the IP header already), with the
/// checksum filled in.
pub fn write(src: SocketAddrV4, dst: SocketAddrV4, hdr: &TcpHeaderOut, payload: &[u8], out: &mut Vec<u8>) {
    write_with(src, dst, hdr, payload, false, out)
}

/// [`write`](fn@write); with `partial` the checksum field holds only the pseudo-header sum (not
/// complemented), for a device that finishes it (checksum offload, TSO), as Linux's own TCP
/// leaves it for such a device.
pub(crate) fn write_with(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    hdr: &TcpHeaderOut,
    payload: &[u8],
    partial: bool,
    out: &mut Vec<u8>,
) {
    write_filled(src, dst, hdr, partial, out, |o| o.extend_from_slice(payload))
}

/// [`write_with`], with the payload appended by `fill` (straight from a send buffer, so it is
/// copied once).
pub(crate) fn write_filled(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    hdr: &TcpHeaderOut,
    partial: bool,
    out: &mut Vec<u8>,
    fill: impl FnOnce(&mut Vec<u8>),
) {
    let start = out.len();
    let opt_len = hdr.options.encoded_len();
    let header_len = TCP_HEADER_LEN + opt_len;
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&hdr.seq.0.to_be_bytes());
    out.extend_from_slice(&hdr.ack.0.to_be_bytes());
    out.push(((header_len / 4) as u8) << 4);
    out.push(hdr.flags.bits());
    out.extend_from_slice(&hdr.window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    hdr.options.encode(out);
    debug_assert_eq!(out.len() - start, header_len);
    fill(out);
    let seg = &out[start..];
    let acc = checksum::pseudo_header(*src.ip(), *dst.ip(), PROTO_TCP, seg.len());
    let sum = if partial { !checksum::fold(acc) } else { checksum::fold(checksum::sum_words(seg, acc)) };
    out[start + 16..start + 18].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(opts: TcpOptions) -> TcpOptions {
        let mut buf = Vec::new();
        opts.encode(&mut buf);
        assert_eq!(buf.len(), opts.encoded_len());
        assert_eq!(buf.len() % 4, 0);
        TcpOptions::parse(&buf).unwrap()
    }

    #[test]
    fn more_than_four_sack_blocks_keep_the_first_four() {
        // Five one-block SACK options: more than a header holds, as a library caller may pass.
        let mut bytes = Vec::new();
        for i in 0..5u32 {
            bytes.extend_from_slice(&[5, 10]);
            bytes.extend_from_slice(&(i * 100).to_be_bytes());
            bytes.extend_from_slice(&(i * 100 + 50).to_be_bytes());
        }
        let opts = TcpOptions::parse(&bytes).unwrap();
        assert_eq!(opts.sack_len, 4);
        assert_eq!(opts.sack[3], (SeqNum(300), SeqNum(350)));
    }

    #[test]
    fn options_roundtrip_in_every_combination() {
        for mask in 0..32u8 {
            let mut o = TcpOptions::default();
            if mask & 1 != 0 {
                o.mss = Some(1460);
            }
            if mask & 2 != 0 {
                o.window_scale = Some(7);
            }
            if mask & 4 != 0 {
                o.sack_permitted = true;
            }
            if mask & 8 != 0 {
                o.timestamps = Some((1, 2));
            }
            if mask & 16 != 0 {
                o.sack[0] = (SeqNum(10), SeqNum(20));
                o.sack[1] = (SeqNum(30), SeqNum(40));
                o.sack_len = 2;
            }
            assert_eq!(roundtrip(o), o, "mask {mask}");
        }
    }

    #[test]
    fn malformed_options_are_rejected_not_panicking() {
        assert_eq!(TcpOptions::parse(&[2]), Err(DropReason::BadTcpOptions));
        assert_eq!(TcpOptions::parse(&[2, 0]), Err(DropReason::BadTcpOptions));
        assert_eq!(TcpOptions::parse(&[2, 9, 1]), Err(DropReason::BadTcpOptions));
        assert_eq!(TcpOptions::parse(&[2, 3, 1]), Err(DropReason::BadTcpOptions));
        // Unknown kinds are skipped; EOL ends the list.
        let o = TcpOptions::parse(&[30, 3, 9, 2, 4, 5, 180, 0, 99]).unwrap();
        assert_eq!(o.mss, Some(1460));
    }

    #[test]
    fn window_scale_capped_at_14() {
        assert_eq!(TcpOptions::parse(&[3, 3, 20]).unwrap().window_scale, Some(14));
    }

    #[test]
    fn flags_display_like_wireshark() {
        assert_eq!((TcpFlags::SYN | TcpFlags::ACK).to_string(), "[SYN, ACK]");
        assert_eq!((TcpFlags::PSH | TcpFlags::ACK).to_string(), "[PSH, ACK]");
        assert_eq!((TcpFlags::FIN | TcpFlags::ACK).to_string(), "[FIN, ACK]");
        assert_eq!(TcpFlags::RST.to_string(), "[RST]");
    }

    #[test]
    fn write_then_parse_verifies_checksum() {
        let src = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 2), 80);
        let dst = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), 40000);
        let hdr = TcpHeaderOut {
            seq: SeqNum(7),
            ack: SeqNum(9),
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 1000,
            options: TcpOptions { mss: Some(1460), ..Default::default() },
        };
        let mut buf = Vec::new();
        write(src, dst, &hdr, b"hello", &mut buf);
        let seg = parse(*src.ip(), *dst.ip(), &buf).unwrap();
        assert_eq!(seg.payload, b"hello");
        assert_eq!(seg.seq, SeqNum(7));
        assert_eq!(seg.options.mss, Some(1460));
        buf[25] ^= 1;
        assert_eq!(parse(*src.ip(), *dst.ip(), &buf).unwrap_err(), DropReason::BadTcpChecksum);
    }
}
