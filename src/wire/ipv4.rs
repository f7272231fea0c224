//! IPv4: verify and demultiplex incoming packets; build outgoing ones.

use std::net::Ipv4Addr;

use super::checksum;
use super::icmp::{self, EchoRequest, Unreachable};
use super::tcp::{self, TcpHeaderOut, TcpSegment, PROTO_TCP};
use super::udp::{self, PROTO_UDP};
use super::DropReason;

pub const IPV4_HEADER_LEN: usize = 20;
pub const PROTO_ICMP: u8 = 1;
const DEFAULT_TTL: u8 = 64;

/// An incoming packet synack handles.
#[derive(Debug)]
pub enum Packet<'a> {
    Tcp(TcpSegment<'a>),
    IcmpEcho(EchoRequest<'a>),
    /// A well-formed datagram nothing here serves: UDP (to any port) or another protocol.
    Unserved(Unserved<'a>),
}

/// A datagram for a protocol or UDP port this host does not serve, to answer with an ICMP
/// destination unreachable (RFC 1122 §3.2.2.1, §4.1.3.1).
#[derive(Debug)]
pub struct Unserved<'a> {
    pub src: Ipv4Addr,
    pub code: Unreachable,
    /// The whole packet as received (to the total length), header first, to quote.
    pub datagram: &'a [u8],
}

/// A source address no host may send from (RFC 1122 §3.2.1.3, RFC 6890): 0/8 ("this
/// network"), 127/8 (loopback), 224/4 (multicast) and 240/4 (reserved, and the limited
/// broadcast 255.255.255.255).
pub fn is_martian_source(src: Ipv4Addr) -> bool {
    let first = src.octets()[0];
    first == 0 || first == 127 || first >= 224
}

/// Verify an IPv4 packet addressed to `local` and return its transport part.
///
/// Checks what etherparse leaves to the caller: the header checksum, that the total length is
/// consistent, and the transport checksum.
pub fn parse_packet(local: Ipv4Addr, bytes: &[u8]) -> Result<Packet<'_>, DropReason> {
    parse_packet_with(local, bytes, true)
}

/// [`parse_packet`], skipping the TCP checksum (only that: the IPv4 header checksum is always
/// checked) when `verify_tcp` is false, for a packet the kernel vouches for.
pub fn parse_packet_with(local: Ipv4Addr, bytes: &[u8], verify_tcp: bool) -> Result<Packet<'_>, DropReason> {
    let first = *bytes.first().ok_or(DropReason::Truncated)?;
    if first >> 4 != 4 {
        return Err(DropReason::NotIpv4);
    }
    if bytes.len() < IPV4_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if header_len < IPV4_HEADER_LEN || total_len < header_len {
        return Err(DropReason::BadIpHeader);
    }
    if total_len > bytes.len() {
        return Err(DropReason::Truncated);
    }
    if checksum::checksum(&bytes[..header_len]) != 0 {
        return Err(DropReason::BadIpChecksum);
    }
    // Fragments are dropped, not reassembled: every peer here does PMTU discovery (DF set) and
    // the TUN's MTU bounds what the kernel sends us.
    let frag = u16::from_be_bytes([bytes[6], bytes[7]]);
    if frag & 0x2000 != 0 || frag & 0x1fff != 0 {
        return Err(DropReason::Fragment);
    }
    check_options(&bytes[IPV4_HEADER_LEN..header_len])?;
    let src = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
    let dst = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
    if dst != local {
        return Err(DropReason::NotForUs);
    }
    if is_martian_source(src) {
        return Err(DropReason::Martian);
    }
    if src == local {
        return Err(DropReason::SourceIsUs);
    }
    let body = &bytes[header_len..total_len];
    let datagram = &bytes[..total_len];
    match bytes[9] {
        PROTO_TCP => tcp::parse_with(src, dst, body, verify_tcp).map(Packet::Tcp),
        PROTO_ICMP => icmp::parse_echo_request(src, body).map(Packet::IcmpEcho),
        PROTO_UDP => {
            udp::check(src, dst, body)?;
            Ok(Packet::Unserved(Unserved { src, code: Unreachable::Port, datagram }))
        }
        _ => Ok(Packet::Unserved(Unserved { src, code: Unreachable::Protocol, datagram })),
    }
}

/// IP options are accepted and ignored (RFC 1122 §3.2.1.8), except source routes, which only
/// an attacker sends to a host like this one; a malformed option list drops the packet.
fn check_options(mut opts: &[u8]) -> Result<(), DropReason> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return Ok(()),
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).ok_or(DropReason::BadIpHeader)?);
                if len < 2 || len > opts.len() {
                    return Err(DropReason::BadIpHeader);
                }
                if kind == 131 || kind == 137 {
                    return Err(DropReason::SourceRoute);
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(())
}

/// Write an IPv4 header with DF set (we do PMTU-sized segments) for a payload of
/// `payload_len` bytes.
pub fn write_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: usize, id: u16, out: &mut Vec<u8>) {
    write_header_id(src, dst, protocol, payload_len, id, true, out)
}

/// [`write_header`], with DF as `dont_fragment` says.
pub fn write_header_id(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
    id: u16,
    dont_fragment: bool,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let total = (IPV4_HEADER_LEN + payload_len) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(if dont_fragment { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&[DEFAULT_TTL, protocol, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    let sum = checksum::checksum(&out[start..]);
    out[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
}

/// Build a whole IPv4+TCP packet into `out` (cleared first).
pub fn build_tcp(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    hdr: &TcpHeaderOut,
    payload: &[u8],
    id: u16,
    out: &mut Vec<u8>,
) {
    build_tcp_with(src, dst, hdr, payload, id, false, out)
}

/// [`build_tcp`] with a partial TCP checksum (see [`tcp::write_with`]): for a device with
/// checksum offload, or a super-packet the device cuts into segments.
pub fn build_tcp_partial(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    hdr: &TcpHeaderOut,
    payload: &[u8],
    id: u16,
    out: &mut Vec<u8>,
) {
    build_tcp_with(src, dst, hdr, payload, id, true, out)
}

fn build_tcp_with(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    hdr: &TcpHeaderOut,
    payload: &[u8],
    id: u16,
    partial: bool,
    out: &mut Vec<u8>,
) {
    build_tcp_filled(src, dst, hdr, payload.len(), id, partial, out, |o| o.extend_from_slice(payload))
}

/// Build an IPv4+TCP packet whose `payload_len` payload bytes `fill` appends (from a send
/// buffer, so they are copied once); `partial` as in [`build_tcp_partial`].
#[allow(clippy::too_many_arguments)]
pub fn build_tcp_filled(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    hdr: &TcpHeaderOut,
    payload_len: usize,
    id: u16,
    partial: bool,
    out: &mut Vec<u8>,
    fill: impl FnOnce(&mut Vec<u8>),
) {
    out.clear();
    let tcp_len = tcp::TCP_HEADER_LEN + hdr.options.encoded_len() + payload_len;
    write_header(*src.ip(), *dst.ip(), PROTO_TCP, tcp_len, id, out);
    tcp::write_filled(src, dst, hdr, partial, out, fill);
    debug_assert_eq!(out.len(), IPV4_HEADER_LEN + tcp_len, "fill appended a different length");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{SeqNum, TcpFlags};
    use std::net::SocketAddrV4;

    const US: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
    const THEM: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);

    fn sample() -> Vec<u8> {
        let hdr = TcpHeaderOut { seq: SeqNum(1), flags: TcpFlags::SYN, window: 100, ..Default::default() };
        let mut out = Vec::new();
        build_tcp(SocketAddrV4::new(THEM, 5555), SocketAddrV4::new(US, 80), &hdr, b"", 1, &mut out);
        out
    }

    #[test]
    fn built_packet_parses_and_etherparse_agrees() {
        let pkt = sample();
        let Packet::Tcp(seg) = parse_packet(US, &pkt).unwrap() else { panic!("not tcp") };
        assert_eq!(seg.flags, TcpFlags::SYN);
        let ep = etherparse::Ipv4HeaderSlice::from_slice(&pkt).unwrap();
        assert_eq!(ep.total_len() as usize, pkt.len());
        assert!(ep.dont_fragment());
    }

    #[test]
    fn every_truncation_is_dropped_without_panic() {
        let pkt = sample();
        for n in 0..pkt.len() {
            assert!(parse_packet(US, &pkt[..n]).is_err(), "len {n}");
        }
    }

    #[test]
    fn checks_each_header_rule() {
        let mut p = sample();
        p[10] ^= 0xff;
        assert_eq!(parse_packet(US, &p).unwrap_err(), DropReason::BadIpChecksum);
        assert_eq!(parse_packet(THEM, &sample()).unwrap_err(), DropReason::NotForUs);
        let mut frag = sample();
        frag[6] = 0x20; // MF
        frag[10] = 0;
        frag[11] = 0;
        let sum = checksum::checksum(&frag[..20]);
        frag[10..12].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse_packet(US, &frag).unwrap_err(), DropReason::Fragment);
        let mut v6 = sample();
        v6[0] = 0x60;
        assert_eq!(parse_packet(US, &v6).unwrap_err(), DropReason::NotIpv4);
    }

    fn with_options(opts: &[u8]) -> Vec<u8> {
        let mut p = sample();
        let ihl = (20 + opts.len()) / 4;
        p.splice(20..20, opts.iter().copied());
        p[0] = 0x40 | ihl as u8;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[10] = 0;
        p[11] = 0;
        let sum = checksum::checksum(&p[..ihl * 4]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn ip_options_ignored_but_source_routes_and_bad_lengths_dropped() {
        // Record route (7), then NOPs and EOL: fine.
        assert!(parse_packet(US, &with_options(&[7, 7, 4, 0, 0, 0, 0, 0])).is_ok());
        // Loose source route.
        assert_eq!(parse_packet(US, &with_options(&[131, 7, 4, 10, 7, 0, 9, 0])).unwrap_err(), DropReason::SourceRoute);
        // An option whose length runs past the header.
        assert_eq!(parse_packet(US, &with_options(&[7, 40, 0, 0])).unwrap_err(), DropReason::BadIpHeader);
    }

    fn from(src: Ipv4Addr, protocol: u8, body: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        write_header(src, US, protocol, body.len(), 9, &mut p);
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn sources_no_host_may_use_are_dropped() {
        for src in [[0, 1, 2, 3], [0, 0, 0, 0], [127, 0, 0, 1], [224, 0, 0, 1], [240, 1, 2, 3], [255, 255, 255, 255]] {
            let p = from(Ipv4Addr::from(src), PROTO_ICMP, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
            assert_eq!(parse_packet(US, &p).unwrap_err(), DropReason::Martian, "{src:?}");
        }
        let land = from(US, PROTO_ICMP, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
        assert_eq!(parse_packet(US, &land).unwrap_err(), DropReason::SourceIsUs);
        let multicast = from(Ipv4Addr::new(239, 255, 255, 255), PROTO_ICMP, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
        assert_eq!(parse_packet(US, &multicast).unwrap_err(), DropReason::Martian, "239/8 is multicast");
        let ok = from(Ipv4Addr::new(223, 255, 255, 254), PROTO_ICMP, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
        assert!(matches!(parse_packet(US, &ok), Ok(Packet::IcmpEcho(_))));
    }

    #[test]
    fn udp_and_other_protocols_are_unserved_with_their_code() {
        // UDP from THEM:5000 to port 53, no checksum.
        let udp = from(THEM, PROTO_UDP, &[0x13, 0x88, 0, 53, 0, 9, 0, 0, b'q']);
        let Ok(Packet::Unserved(u)) = parse_packet(US, &udp) else { panic!("not unserved") };
        assert_eq!((u.src, u.code, u.datagram.len()), (THEM, Unreachable::Port, udp.len()));
        let bad_udp = from(THEM, PROTO_UDP, &[0x13, 0x88, 0, 53, 0, 99, 0, 0, b'q']);
        assert_eq!(parse_packet(US, &bad_udp).unwrap_err(), DropReason::BadUdp);
        let sctp = from(THEM, 132, &[0; 12]);
        let Ok(Packet::Unserved(u)) = parse_packet(US, &sctp) else { panic!("not unserved") };
        assert_eq!(u.code, Unreachable::Protocol);
    }

    #[test]
    fn trailing_bytes_beyond_total_length_are_ignored() {
        let mut p = sample();
        p.extend_from_slice(&[0; 6]); // Ethernet-style padding.
        assert!(parse_packet(US, &p).is_ok());
    }
}
