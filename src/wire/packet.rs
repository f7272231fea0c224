//! An incoming packet, verified layer by layer and handed on by protocol: TCP to the host's
//! connections, ICMP echo to the responder, everything else to be answered as unserved.

use std::net::Ipv4Addr;

use super::icmp::{self, EchoRequest, Unreachable};
use super::ipv4::{self, PROTO_ICMP};
use super::tcp::{self, TcpSegment, PROTO_TCP};
use super::udp::{self, PROTO_UDP};
use super::DropReason;

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

/// Verify an IPv4 packet addressed to `local` and return its transport part.
///
/// Checks what etherparse leaves to the caller: the header checksum, that the total length is
/// consistent, and the transport checksum.
pub fn parse_packet(local: Ipv4Addr, bytes: &[u8]) -> Result<Packet<'_>, DropReason> {
    parse_packet_with(local, bytes, true)
}

/// [`parse_packet`], skipping the TCP checksum (only that: the IPv4 header checksum is always
/// checked) when `verify_tcp` is false, for a packet the kernel vouches for.
pub(crate) fn parse_packet_with(local: Ipv4Addr, bytes: &[u8], verify_tcp: bool) -> Result<Packet<'_>, DropReason> {
    let ipv4::Datagram { src, dst, protocol, body, whole: datagram } = ipv4::verify(local, bytes)?;
    match protocol {
        PROTO_TCP => tcp::parse_with(src, dst, body, verify_tcp).map(Packet::Tcp),
        PROTO_ICMP => icmp::parse_echo_request(src, body).map(Packet::IcmpEcho),
        PROTO_UDP => {
            udp::check(src, dst, body)?;
            Ok(Packet::Unserved(Unserved { src, code: Unreachable::Port, datagram }))
        }
        _ => Ok(Packet::Unserved(Unserved { src, code: Unreachable::Protocol, datagram })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use crate::wire::ipv4::{build_tcp, write_header};
    use crate::wire::{SeqNum, TcpFlags, TcpHeaderOut};
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

    #[test]
    fn what_etherparse_refuses_keeps_synack_s_drop_reasons() {
        let pkt = sample();
        assert_eq!(parse_packet(US, &[]).unwrap_err(), DropReason::Truncated);
        assert_eq!(parse_packet(US, &[0x60, 0, 0]).unwrap_err(), DropReason::NotIpv4, "version before length");
        assert_eq!(parse_packet(US, &pkt[..12]).unwrap_err(), DropReason::Truncated);
        let mut short_ihl = pkt.clone();
        short_ihl[0] = 0x44;
        assert_eq!(parse_packet(US, &short_ihl).unwrap_err(), DropReason::BadIpHeader);
        // IHL 15 (60 bytes) in a 30-byte packet: options cut off.
        let mut cut = pkt[..30].to_vec();
        cut[0] = 0x4f;
        cut[2..4].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(parse_packet(US, &cut).unwrap_err(), DropReason::Truncated);
        cut[2..4].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(parse_packet(US, &cut).unwrap_err(), DropReason::BadIpHeader, "total length below the header");
        // A TCP header whose data offset says 60 bytes in a 40-byte segment.
        let mut offset = pkt.clone();
        offset[32] = 0xf0;
        assert_eq!(parse_packet(US, &offset).unwrap_err(), DropReason::BadTcpHeader);
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
