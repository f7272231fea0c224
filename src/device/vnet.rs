//! The virtio-net header that a TUN opened with `IFF_VNET_HDR` puts before every packet
//! (`struct virtio_net_hdr`, 10 bytes), and what it means for the packet behind it.
//!
//! Fields (legacy virtio: the host's byte order, which the TUN is told is little-endian with
//! `TUNSETVNETLE`, so it is the same on any host):
//! - `flags`: `NEEDS_CSUM` says the checksum at `csum_start + csum_offset` holds only the
//!   pseudo-header sum and the sum over `csum_start..` is still to be added; `DATA_VALID`
//!   says the kernel already verified the checksum.
//! - `gso_type`, `gso_size`: a super-packet to be cut into segments carrying `gso_size`
//!   bytes of TCP payload each (TSO); `hdr_len` is the length of its IP+TCP headers.
//!
//! The device layer keeps the packet's bytes exactly as the kernel gave them; what the header
//! said travels beside them as a [`PacketMeta`].

use super::PacketMeta;
use crate::wire::checksum;

/// `sizeof(struct virtio_net_hdr)`, the size we set with `TUNSETVNETHDRSZ`.
pub(crate) const VNET_HDR_LEN: usize = 10;

pub(crate) const F_NEEDS_CSUM: u8 = 1;
pub(crate) const F_DATA_VALID: u8 = 2;
pub(crate) const GSO_NONE: u8 = 0;
pub(crate) const GSO_TCPV4: u8 = 1;
/// Set beside a GSO type when the segments carry ECN's CWR flag.
pub(crate) const GSO_ECN: u8 = 0x80;

/// Where the TCP checksum sits in an IPv4 packet's TCP header.
const TCP_CSUM_OFFSET: u16 = 16;
const PROTO_TCP: u8 = 6;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

/// Why an inbound header was refused (the packet is dropped and counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadVnet {
    Short,
    UnknownFlags,
    /// A GSO type other than TCPv4 (we asked for no other), or TCPv4 with `gso_size` 0.
    Gso,
    /// `csum_start + csum_offset` points past the packet.
    CsumRange,
}

impl VnetHdr {
    pub(crate) fn parse(b: &[u8]) -> Result<VnetHdr, BadVnet> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN).and_then(|s| s.try_into().ok()).ok_or(BadVnet::Short)?;
        let le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Ok(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: le(2),
            gso_size: le(4),
            csum_start: le(6),
            csum_offset: le(8),
        })
    }

    pub(crate) fn encode(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// The header for an outbound IPv4 packet described by `meta`: all zero for a plain
    /// packet; `NEEDS_CSUM` at the TCP checksum for a partial one; TCPv4 GSO for a
    /// super-packet (which the stack always sends with a partial checksum, as the kernel's
    /// segmentation expects: it adjusts the pseudo-header sum for each segment's length).
    pub(crate) fn for_outbound(packet: &[u8], meta: PacketMeta) -> Option<VnetHdr> {
        if !meta.csum_partial && meta.gso_size == 0 {
            return Some(VnetHdr::default());
        }
        let (ip_len, tcp_len) = tcp_layout(packet)?;
        let mut h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: ip_len as u16,
            csum_offset: TCP_CSUM_OFFSET,
            ..Default::default()
        };
        if meta.gso_size > 0 {
            h.gso_type = GSO_TCPV4;
            h.gso_size = meta.gso_size;
            h.hdr_len = (ip_len + tcp_len) as u16;
        }
        Some(h)
    }

    /// Check an inbound header against its packet and say what it means. `complete` asks
    /// for a partial checksum to be finished here, for a reader that wants plain packets;
    /// otherwise a partial TCP checksum is left as it is and marked trusted (see
    /// [`PacketMeta::csum_trusted`]). A partial checksum anywhere but at the TCP checksum of
    /// an IPv4 packet is always finished here, so the stack's own check passes.
    pub(crate) fn accept_inbound(&self, packet: &mut [u8], complete: bool) -> Result<PacketMeta, BadVnet> {
        if self.flags & !(F_NEEDS_CSUM | F_DATA_VALID) != 0 {
            return Err(BadVnet::UnknownFlags);
        }
        let mut meta = PacketMeta::default();
        match self.gso_type & !GSO_ECN {
            GSO_NONE => {}
            GSO_TCPV4 if self.gso_size > 0 => meta.gso_size = self.gso_size,
            _ => return Err(BadVnet::Gso),
        }
        if self.flags & F_NEEDS_CSUM != 0 {
            let (start, offset) = (usize::from(self.csum_start), usize::from(self.csum_offset));
            if start + offset + 2 > packet.len() {
                return Err(BadVnet::CsumRange);
            }
            let at_tcp = tcp_layout(packet).is_some_and(|(ip_len, _)| ip_len == start) && self.csum_offset == 16;
            if at_tcp && !complete {
                meta.csum_partial = true;
                meta.csum_trusted = true;
            } else {
                complete_checksum(packet, start, offset);
            }
        } else if self.flags & F_DATA_VALID != 0 {
            meta.csum_trusted = true;
        }
        Ok(meta)
    }
}

/// IP and TCP header lengths of an IPv4/TCP packet whose headers are all there and whose
/// total length is the buffer's.
fn tcp_layout(packet: &[u8]) -> Option<(usize, usize)> {
    let first = *packet.first()?;
    let ip_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ip_len < 20 || packet.len() < ip_len + 20 || packet[9] != PROTO_TCP {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let tcp_len = usize::from(packet[ip_len + 12] >> 4) * 4;
    (total == packet.len() && tcp_len >= 20 && ip_len + tcp_len <= total).then_some((ip_len, tcp_len))
}

/// Finish a partial checksum: the field at `start + offset` holds the pseudo-header sum;
/// add everything from `start` to the end and store the complement (RFC 1071).
pub(crate) fn complete_checksum(packet: &mut [u8], start: usize, offset: usize) {
    if start + offset + 2 > packet.len() {
        return;
    }
    let sum = checksum::checksum(&packet[start..]);
    packet[start + offset..start + offset + 2].copy_from_slice(&sum.to_be_bytes());
}

/// Finish the partial TCP checksum of an IPv4 packet (as the stack builds super-packets);
/// false when the packet is not IPv4/TCP.
pub(crate) fn complete_tcp_checksum(packet: &mut [u8]) -> bool {
    match tcp_layout(packet) {
        Some((ip_len, _)) => {
            complete_checksum(packet, ip_len, usize::from(TCP_CSUM_OFFSET));
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4;
    use crate::wire::{SeqNum, TcpFlags, TcpHeaderOut};
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn packet(payload: usize, partial: bool) -> Vec<u8> {
        let hdr =
            TcpHeaderOut { seq: SeqNum(7), ack: SeqNum(9), flags: TcpFlags::ACK, window: 100, ..Default::default() };
        let src = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 2), 80);
        let dst = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), 40000);
        let data: Vec<u8> = (0..payload).map(|i| (i * 7) as u8).collect();
        let mut out = Vec::new();
        if partial {
            ipv4::build_tcp_partial(src, dst, &hdr, &data, 1, &mut out);
        } else {
            ipv4::build_tcp(src, dst, &hdr, &data, 1, &mut out);
        }
        out
    }

    #[test]
    fn header_round_trips_little_endian() {
        let h = VnetHdr { flags: 1, gso_type: 1, hdr_len: 52, gso_size: 1448, csum_start: 20, csum_offset: 16 };
        let b = h.encode();
        assert_eq!(&b[..6], &[1, 1, 52, 0, 0xa8, 0x05]);
        assert_eq!(VnetHdr::parse(&b), Ok(h));
        assert_eq!(VnetHdr::parse(&b[..9]), Err(BadVnet::Short));
    }

    #[test]
    fn outbound_super_packet_gets_tso_header() {
        let p = packet(3000, true);
        let h = VnetHdr::for_outbound(&p, PacketMeta { gso_size: 1448, csum_partial: true, csum_trusted: false });
        assert_eq!(
            h,
            Some(VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: 40,
                gso_size: 1448,
                csum_start: 20,
                csum_offset: 16
            })
        );
        assert_eq!(VnetHdr::for_outbound(&p, PacketMeta::default()), Some(VnetHdr::default()));
    }

    #[test]
    fn partial_checksum_completes_to_the_full_one() {
        let full = packet(1001, false);
        let mut partial = packet(1001, true);
        assert_ne!(full, partial);
        assert!(complete_tcp_checksum(&mut partial));
        assert_eq!(full, partial);
    }

    #[test]
    fn inbound_partial_is_trusted_or_completed() {
        let full = packet(500, false);
        let h = VnetHdr { flags: F_NEEDS_CSUM, csum_start: 20, csum_offset: 16, ..Default::default() };
        let mut p = packet(500, true);
        let meta = h.accept_inbound(&mut p, false).unwrap();
        assert!(meta.csum_partial && meta.csum_trusted);
        assert_ne!(p, full, "left as the kernel gave it");
        let meta = h.accept_inbound(&mut p, true).unwrap();
        assert!(!meta.csum_partial && !meta.csum_trusted);
        assert_eq!(p, full);
    }

    #[test]
    fn malformed_headers_are_refused() {
        let mut p = packet(10, true);
        let bad = |h: VnetHdr, p: &mut Vec<u8>| h.accept_inbound(p, false).unwrap_err();
        assert_eq!(bad(VnetHdr { flags: 0x40, ..Default::default() }, &mut p), BadVnet::UnknownFlags);
        assert_eq!(bad(VnetHdr { gso_type: GSO_TCPV4, ..Default::default() }, &mut p), BadVnet::Gso);
        assert_eq!(bad(VnetHdr { gso_type: 4, gso_size: 1400, ..Default::default() }, &mut p), BadVnet::Gso);
        let range = VnetHdr { flags: F_NEEDS_CSUM, csum_start: 40, csum_offset: 16, ..Default::default() };
        assert_eq!(bad(range, &mut p), BadVnet::CsumRange);
        let gro = VnetHdr { gso_type: GSO_TCPV4 | GSO_ECN, gso_size: 1448, flags: F_DATA_VALID, ..Default::default() };
        assert_eq!(gro.accept_inbound(&mut p, false).unwrap().gso_size, 1448);
    }
}
