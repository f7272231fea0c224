//! Tolerant IPv4, TCP and ICMP header parsing for the analysis tools.
//!
//! Unlike the stack's own parser (which drops what it cannot trust), this one has to *show*
//! broken packets: it reads every field it can, lists what is wrong in `problems`, and only
//! gives up when not even the fixed part of a header is there. What it shares with the stack
//! comes from [`crate::wire`]: the checksum, the TCP option walker, the flag names.

use std::net::Ipv4Addr;

use crate::wire::checksum;
use crate::wire::tcp::{flag_names, TcpFlags, FLAG_NS};
use crate::wire::tcp_options::{self, OptionError};

/// Check the checksum field at `field` of `covered` (the bytes it covers, `acc` the sum of a
/// pseudo-header if any); when it is wrong, what it should have held.
fn checksum_status(covered: &[u8], field: usize, acc: u64) -> ChecksumStatus {
    if checksum::fold(checksum::sum_words(covered, acc)) == 0 {
        return ChecksumStatus::Good;
    }
    let mut copy = covered.to_vec();
    copy[field..field + 2].fill(0);
    ChecksumStatus::Bad { expected: checksum::fold(checksum::sum_words(&copy, acc)) }
}

/// The result of checking a checksum field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// The field holds the right value.
    Good,
    /// The field is wrong; `expected` is what it should have held.
    Bad {
        /// The value a correct sender would have written.
        expected: u16,
    },
    /// Not all covered bytes were captured, so it cannot be checked.
    Unverifiable,
}

/// An IPv4 header, field by field, plus what was wrong with it.
#[derive(Debug, Clone)]
pub struct Ipv4 {
    /// Version nibble (4, or we would not be here unless the link layer insisted).
    pub version: u8,
    /// Internet Header Length in 32-bit words.
    pub ihl: u8,
    /// Header length in bytes as used for slicing (IHL × 4, or 20 when IHL is bogus).
    pub header_len: usize,
    /// Differentiated Services Code Point (upper 6 bits of the old TOS byte).
    pub dscp: u8,
    /// Explicit Congestion Notification (lower 2 bits).
    pub ecn: u8,
    /// Total length of the datagram (header + payload) claimed by the header.
    pub total_len: u16,
    /// Identification: ties together the fragments of one datagram.
    pub identification: u16,
    /// Reserved bit (must be zero).
    pub evil_bit: bool,
    /// Don't Fragment.
    pub dont_fragment: bool,
    /// More Fragments.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub fragment_offset: u16,
    /// Time to live (a hop limit, in practice).
    pub ttl: u8,
    /// Protocol number of the payload (6 = TCP, 1 = ICMP, 17 = UDP).
    pub protocol: u8,
    /// Header checksum as written.
    pub checksum: u16,
    /// Whether that checksum is right.
    pub checksum_status: ChecksumStatus,
    /// Source address.
    pub source: Ipv4Addr,
    /// Destination address.
    pub destination: Ipv4Addr,
    /// Raw option bytes (between byte 20 and the header end).
    pub options: Vec<u8>,
    /// Payload bytes actually captured (bounded by the total length).
    pub payload: Vec<u8>,
    /// Payload length according to the header (total length − header length).
    pub payload_len: usize,
    /// Bytes after the datagram in the frame (e.g. Ethernet minimum-size padding).
    pub trailer_len: usize,
    /// Everything that is wrong or unusual, in words a learner can act on.
    pub problems: Vec<String>,
}

impl Ipv4 {
    /// True when this datagram is a fragment (first or later) of a bigger one.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }
}

/// Parses an IPv4 header; `Err` only when even the 20 fixed bytes are missing or it is not IPv4.
pub fn parse_ipv4(b: &[u8]) -> Result<Ipv4, String> {
    if b.len() < 20 {
        return Err(format!("only {} bytes captured, an IPv4 header needs at least 20", b.len()));
    }
    let version = b[0] >> 4;
    if version != 4 {
        return Err(format!("version field is {version}, not 4"));
    }
    let mut problems = Vec::new();
    let ihl = b[0] & 0x0f;
    let mut header_len = usize::from(ihl) * 4;
    if ihl < 5 {
        problems.push(format!("IHL {ihl} means a {header_len}-byte header, but the minimum is 20"));
        header_len = 20;
    }
    let total_len = u16::from_be_bytes([b[2], b[3]]);
    let flags_frag = u16::from_be_bytes([b[6], b[7]]);
    let checksum = u16::from_be_bytes([b[10], b[11]]);
    let checksum_status = match b.get(..header_len) {
        Some(h) if ihl >= 5 => checksum_status(h, 10, 0),
        _ => ChecksumStatus::Unverifiable,
    };
    if header_len > b.len() {
        problems.push(format!("header claims {header_len} bytes but only {} were captured", b.len()));
    }
    let mut end = usize::from(total_len);
    if end < header_len {
        problems.push(format!("total length {total_len} is smaller than the {header_len}-byte header"));
        end = header_len;
    }
    let payload_len = end - header_len;
    if b.len() < end {
        problems.push(format!(
            "only {} of the {} bytes of the datagram were captured (cut short by the capture or truncated)",
            b.len(),
            end
        ));
    }
    let trailer_len = b.len().saturating_sub(end);
    let payload = b.get(header_len..end.min(b.len())).unwrap_or_default().to_vec();
    let options = b.get(20..header_len.min(b.len())).unwrap_or_default().to_vec();
    Ok(Ipv4 {
        version,
        ihl,
        header_len,
        dscp: b[1] >> 2,
        ecn: b[1] & 0x03,
        total_len,
        identification: u16::from_be_bytes([b[4], b[5]]),
        evil_bit: flags_frag & 0x8000 != 0,
        dont_fragment: flags_frag & 0x4000 != 0,
        more_fragments: flags_frag & 0x2000 != 0,
        fragment_offset: flags_frag & 0x1fff,
        ttl: b[8],
        protocol: b[9],
        checksum,
        checksum_status,
        source: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
        destination: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
        options,
        payload,
        payload_len,
        trailer_len,
        problems,
    })
}

/// Name of an IP protocol number.
pub(crate) fn ip_protocol_name(p: u8) -> &'static str {
    match p {
        1 => "ICMP",
        2 => "IGMP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6 encapsulation",
        47 => "GRE",
        50 => "ESP",
        58 => "ICMPv6",
        132 => "SCTP",
        _ => "unknown",
    }
}

/// One TCP option, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOption {
    /// Kind 0: end of the option list; what follows is padding.
    Eol,
    /// Kind 1: one byte of padding so the next option is aligned.
    Nop,
    /// Kind 2: the largest segment the sender is willing to receive.
    Mss(u16),
    /// Kind 3: the shift count the sender will apply to the windows *it* advertises.
    WindowScale(u8),
    /// Kind 4: the sender understands selective acknowledgments.
    SackPermitted,
    /// Kind 5: blocks of data received beyond the cumulative ACK, as (left, right) edges.
    Sack(Vec<(u32, u32)>),
    /// Kind 8: timestamp value and echo reply (RFC 7323), for RTT measurement and PAWS.
    Timestamps {
        /// TSval: the sender's clock.
        value: u32,
        /// TSecr: the latest TSval received from the peer.
        echo: u32,
    },
    /// Any other kind, shown raw.
    Unknown {
        /// Option kind byte.
        kind: u8,
        /// Option bytes after the kind and length bytes.
        data: Vec<u8>,
    },
    /// An option whose length does not fit; decoding stopped here.
    Malformed {
        /// Option kind byte.
        kind: u8,
        /// What is wrong.
        reason: String,
    },
}

/// A TCP header, field by field.
#[derive(Debug, Clone)]
pub struct Tcp {
    /// Source port.
    pub source_port: u16,
    /// Destination port.
    pub destination_port: u16,
    /// Raw (absolute) sequence number.
    pub seq: u32,
    /// Raw (absolute) acknowledgment number.
    pub ack: u32,
    /// Data offset in 32-bit words.
    pub data_offset: u8,
    /// Header length in bytes (data offset × 4).
    pub header_len: usize,
    /// The 12 flag bits: reserved(3) AE/NS CWR ECE URG ACK PSH RST SYN FIN.
    pub flags: u16,
    /// Window field as written (before any scaling).
    pub window: u16,
    /// Checksum as written.
    pub checksum: u16,
    /// Whether it is right (against the IPv4 pseudo-header).
    pub checksum_status: ChecksumStatus,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options in order.
    pub options: Vec<TcpOption>,
    /// Where each option lies, counted from the first option byte.
    pub option_spans: Vec<std::ops::Range<usize>>,
    /// Payload bytes actually captured.
    pub payload: Vec<u8>,
    /// Payload length from the IP header (Wireshark's `tcp.len`), even if not all was captured.
    pub len: u32,
    /// What is wrong, if anything.
    pub problems: Vec<String>,
}

/// TCP flag bits, as the stack's [`TcpFlags`] numbers them, and NS.
pub mod flags {
    use super::{TcpFlags, FLAG_NS};
    /// No more data from sender.
    pub const FIN: u16 = TcpFlags::FIN.bits() as u16;
    /// Synchronize sequence numbers.
    pub const SYN: u16 = TcpFlags::SYN.bits() as u16;
    /// Reset the connection.
    pub const RST: u16 = TcpFlags::RST.bits() as u16;
    /// Push: deliver to the application now.
    pub const PSH: u16 = TcpFlags::PSH.bits() as u16;
    /// The acknowledgment field is valid.
    pub const ACK: u16 = TcpFlags::ACK.bits() as u16;
    /// The urgent pointer is valid.
    pub const URG: u16 = TcpFlags::URG.bits() as u16;
    /// ECN echo.
    pub const ECE: u16 = TcpFlags::ECE.bits() as u16;
    /// Congestion window reduced.
    pub const CWR: u16 = TcpFlags::CWR.bits() as u16;
    /// Nonce sum (RFC 3540, historic) / AE (accurate ECN).
    pub const NS: u16 = FLAG_NS;
}

impl Tcp {
    /// Whether flag bit(s) `f` are all set.
    pub fn has(&self, f: u16) -> bool {
        self.flags & f == f
    }

    /// Flags as Wireshark's Info column writes them: `[SYN, ACK]`, `[FIN, PSH, ACK]`, `[<None>]`.
    pub fn flags_str(&self) -> String {
        flags_str(self.flags)
    }

    /// Sequence space this segment occupies: payload plus one each for SYN and FIN.
    pub fn seq_space(&self) -> u32 {
        self.len + u32::from(self.has(flags::SYN)) + u32::from(self.has(flags::FIN))
    }

    /// The window-scale shift this segment announces, if it carries the option.
    pub fn window_scale(&self) -> Option<u8> {
        self.options.iter().find_map(|o| match o {
            TcpOption::WindowScale(s) => Some(*s),
            _ => None,
        })
    }

    /// The MSS this segment announces, if any.
    pub fn mss(&self) -> Option<u16> {
        self.options.iter().find_map(|o| match o {
            TcpOption::Mss(s) => Some(*s),
            _ => None,
        })
    }
}

/// See [`Tcp::flags_str`]; the names and their order are the stack's ([`flag_names`]).
pub fn flags_str(f: u16) -> String {
    let names: Vec<&str> = flag_names(f).collect();
    if names.is_empty() {
        "[<None>]".to_string()
    } else {
        format!("[{}]", names.join(", "))
    }
}

/// The options, and where each lies in the option bytes, from the walker the stack uses.
fn parse_tcp_options(all: &[u8]) -> (Vec<TcpOption>, Vec<std::ops::Range<usize>>) {
    use tcp_options::TcpOption as Wire;
    tcp_options::walk(all)
        .map(|(span, opt)| {
            let opt = match opt {
                Ok(Wire::Eol) => TcpOption::Eol,
                Ok(Wire::Nop) => TcpOption::Nop,
                Ok(Wire::Mss(m)) => TcpOption::Mss(m),
                Ok(Wire::WindowScale(s)) => TcpOption::WindowScale(s),
                Ok(Wire::SackPermitted) => TcpOption::SackPermitted,
                Ok(Wire::Sack(blocks)) => TcpOption::Sack(blocks.iter().collect()),
                Ok(Wire::Timestamps { value, echo }) => TcpOption::Timestamps { value, echo },
                Ok(Wire::Unknown { kind, data }) => TcpOption::Unknown { kind, data: data.to_vec() },
                Ok(Wire::WrongLength { kind, len }) => {
                    let want = match kind {
                        2 => "4",
                        3 => "3",
                        4 => "2",
                        5 => "2 + 8 × blocks",
                        _ => "10",
                    };
                    TcpOption::Malformed { kind, reason: format!("length {len}, expected {want}") }
                }
                Err(e) => TcpOption::Malformed {
                    kind: e.kind(),
                    reason: match e {
                        OptionError::NoLength { .. } => "the length byte is missing".into(),
                        OptionError::TooShort { len, .. } => format!("length {len} is less than 2"),
                        OptionError::PastEnd { len, left, .. } => {
                            format!("length {len} runs past the end of the header ({left} bytes left)")
                        }
                    },
                },
            };
            (opt, span)
        })
        .unzip()
}

/// Parses a TCP segment carried by `ip` (whose payload it is).
pub fn parse_tcp(ip: &Ipv4) -> Result<Tcp, String> {
    let b = &ip.payload;
    if b.len() < 20 {
        return Err(format!("only {} bytes of TCP header captured, at least 20 are needed", b.len()));
    }
    let data_offset = b[12] >> 4;
    let header_len = usize::from(data_offset) * 4;
    if data_offset < 5 {
        return Err(format!("data offset {data_offset} means a {header_len}-byte header, but the minimum is 20"));
    }
    let mut problems = Vec::new();
    if header_len > ip.payload_len {
        problems.push(format!(
            "header length {header_len} is more than the {} bytes the IP header says the segment has",
            ip.payload_len
        ));
    }
    if header_len > b.len() {
        problems.push(format!("header length {header_len} but only {} bytes captured; options cut off", b.len()));
    }
    let (options, option_spans) = parse_tcp_options(b.get(20..header_len.min(b.len())).unwrap_or_default());
    let checksum = u16::from_be_bytes([b[16], b[17]]);
    let checksum_status = if b.len() < ip.payload_len || ip.is_fragment() {
        ChecksumStatus::Unverifiable
    } else {
        checksum_status(b, 16, checksum::pseudo_header(ip.source, ip.destination, ip.protocol, ip.payload_len))
    };
    let len = ip.payload_len.saturating_sub(header_len);
    Ok(Tcp {
        source_port: u16::from_be_bytes([b[0], b[1]]),
        destination_port: u16::from_be_bytes([b[2], b[3]]),
        seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ack: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        data_offset,
        header_len,
        flags: u16::from_be_bytes([b[12], b[13]]) & 0x0fff,
        window: u16::from_be_bytes([b[14], b[15]]),
        checksum,
        checksum_status,
        urgent: u16::from_be_bytes([b[18], b[19]]),
        options,
        option_spans,
        payload: b.get(header_len..).unwrap_or_default().to_vec(),
        len: u32::try_from(len).unwrap_or(u32::MAX),
        problems,
    })
}

/// An ICMP message header.
#[derive(Debug, Clone)]
pub struct Icmp {
    /// Message type (0 echo reply, 3 destination unreachable, 8 echo request, 11 time exceeded).
    pub kind: u8,
    /// Code within the type.
    pub code: u8,
    /// Checksum as written.
    pub checksum: u16,
    /// Whether it is right.
    pub checksum_status: ChecksumStatus,
    /// The 4 "rest of header" bytes (identifier and sequence number for echo).
    pub rest: [u8; 4],
    /// Data after the 8-byte header.
    pub data: Vec<u8>,
}

/// Parses an ICMP message carried by `ip`.
pub fn parse_icmp(ip: &Ipv4) -> Result<Icmp, String> {
    let b = &ip.payload;
    if b.len() < 8 {
        return Err(format!("only {} bytes of ICMP captured, the header needs 8", b.len()));
    }
    let checksum_status = if b.len() < ip.payload_len || ip.is_fragment() {
        ChecksumStatus::Unverifiable
    } else {
        checksum_status(b, 2, 0)
    };
    Ok(Icmp {
        kind: b[0],
        code: b[1],
        checksum: u16::from_be_bytes([b[2], b[3]]),
        checksum_status,
        rest: [b[4], b[5], b[6], b[7]],
        data: b[8..].to_vec(),
    })
}

/// Name of an ICMP type.
pub(crate) fn icmp_type_name(t: u8) -> &'static str {
    match t {
        0 => "Echo (ping) reply",
        3 => "Destination unreachable",
        5 => "Redirect",
        8 => "Echo (ping) request",
        11 => "Time exceeded",
        12 => "Parameter problem",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_wireshark_order() {
        assert_eq!(flags_str(flags::SYN | flags::ACK), "[SYN, ACK]");
        assert_eq!(flags_str(flags::FIN | flags::PSH | flags::ACK), "[FIN, PSH, ACK]");
        assert_eq!(flags_str(flags::RST), "[RST]");
        assert_eq!(flags_str(0), "[<None>]");
    }

    #[test]
    fn options_never_panic() {
        for a in 0u8..=10 {
            for l in 0u8..=12 {
                let _ = parse_tcp_options(&[a, l, 1, 2, 3]);
                let _ = parse_tcp_options(&[1, a, l]);
            }
        }
        assert_eq!(
            parse_tcp_options(&[2, 4, 5, 0xb4, 1, 3, 3, 7]),
            (vec![TcpOption::Mss(1460), TcpOption::Nop, TcpOption::WindowScale(7)], vec![0..4, 4..5, 5..8])
        );
        // A malformed option's span runs to the end of the options.
        let (opts, spans) = parse_tcp_options(&[1, 2, 9, 0]);
        assert_eq!(opts.len(), spans.len());
        assert_eq!(spans.last(), Some(&(1..4)));
    }

    #[test]
    fn short_packets_never_panic() {
        for len in 0..60 {
            let mut b = vec![0u8; len];
            if let Some(x) = b.first_mut() {
                *x = 0x4f;
            }
            if let Ok(ip) = parse_ipv4(&b) {
                let _ = parse_tcp(&ip);
                let _ = parse_icmp(&ip);
            }
        }
    }
}
