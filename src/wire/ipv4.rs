//! IPv4: verify incoming headers; build outgoing packets. Demultiplexing by protocol is
//! `packet.rs`'s.

use std::net::Ipv4Addr;

use super::checksum;
use super::tcp::{self, TcpHeaderOut, PROTO_TCP};
use super::DropReason;

pub const IPV4_HEADER_LEN: usize = 20;
pub const PROTO_ICMP: u8 = 1;
const DEFAULT_TTL: u8 = 64;

/// A source address no host may send from (RFC 1122 §3.2.1.3, RFC 6890): 0/8 ("this
/// network"), 127/8 (loopback), 224/4 (multicast) and 240/4 (reserved, and the limited
/// broadcast 255.255.255.255).
pub(crate) fn is_martian_source(src: Ipv4Addr) -> bool {
    let first = src.octets()[0];
    first == 0 || first == 127 || first >= 224
}

/// A verified IPv4 datagram for this host: its addresses, its protocol, and its transport part.
#[derive(Debug)]
pub struct Datagram<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// The transport part, to the total length.
    pub body: &'a [u8],
    /// The whole datagram, header first, to the total length (bytes beyond it are padding).
    pub whole: &'a [u8],
}

/// Verify an IPv4 header addressed to `local`: version, lengths, the header checksum (which
/// etherparse leaves to the caller), no fragment, no source route, a source a host may use.
/// Inlined: it is the first step of every packet received.
///
/// The header is sliced by etherparse's `Ipv4HeaderSlice`, not `Ipv4Slice`: the latter would
/// also unwrap an authentication header, which this host does not serve (it is answered as an
/// unserved protocol).
#[inline]
pub fn verify(local: Ipv4Addr, bytes: &[u8]) -> Result<Datagram<'_>, DropReason> {
    let header = etherparse::Ipv4HeaderSlice::from_slice(bytes).map_err(|_| refused(bytes))?;
    let header_bytes = header.slice();
    let header_len = header_bytes.len();
    let total_len = usize::from(header.total_len());
    if total_len < header_len {
        return Err(DropReason::BadIpHeader);
    }
    if total_len > bytes.len() {
        return Err(DropReason::Truncated);
    }
    if checksum::checksum(header_bytes) != 0 {
        return Err(DropReason::BadIpChecksum);
    }
    // Fragments are dropped, not reassembled: every peer here does PMTU discovery (DF set) and
    // the TUN's MTU bounds what the kernel sends us.
    if header.is_fragmenting_payload() {
        return Err(DropReason::Fragment);
    }
    check_options(header.options())?;
    let src = header.source_addr();
    let dst = header.destination_addr();
    if dst != local {
        return Err(DropReason::NotForUs);
    }
    if is_martian_source(src) {
        return Err(DropReason::Martian);
    }
    if src == local {
        return Err(DropReason::SourceIsUs);
    }
    Ok(Datagram {
        src,
        dst,
        protocol: header.protocol().0,
        body: &bytes[header_len..total_len],
        whole: &bytes[..total_len],
    })
}

/// Why etherparse refused a header, in the order synack checks: version before length, and a
/// total length shorter than the header before options cut off. Off the hot path: only a
/// refused packet comes here.
#[cold]
fn refused(bytes: &[u8]) -> DropReason {
    let Some(&first) = bytes.first() else { return DropReason::Truncated };
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 {
        DropReason::NotIpv4
    } else if bytes.len() < IPV4_HEADER_LEN {
        DropReason::Truncated
    } else if header_len < IPV4_HEADER_LEN || usize::from(u16::from_be_bytes([bytes[2], bytes[3]])) < header_len {
        DropReason::BadIpHeader
    } else {
        DropReason::Truncated
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
pub(crate) fn write_header_id(
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
/// checksum offload, or a super-packet the device cuts into segments (tests play such a
/// device's peer with it; the stack builds from its send buffer with [`build_tcp_filled`]).
#[cfg(test)]
pub(crate) fn build_tcp_partial(
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
pub(crate) fn build_tcp_filled(
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
