//! ICMP (RFC 792): echo, so `ping 10.7.0.2` answers, and destination unreachable, the
//! answer to a datagram for a protocol or UDP port nothing here serves.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::{write_header, write_header_id, PROTO_ICMP};
use super::DropReason;

const ECHO_REPLY: u8 = 0;
const DEST_UNREACHABLE: u8 = 3;
const ECHO_REQUEST: u8 = 8;
/// RFC 1812 §4.3.2.3: an ICMP error carries as much of the offending datagram as fits in a
/// 576-byte packet.
const MAX_ERROR_LEN: usize = 576;

#[derive(Debug)]
pub struct EchoRequest<'a> {
    pub src: Ipv4Addr,
    /// The request's code: 0 from ping, anything from a scanner. Linux answers every code
    /// and echoes it (nmap's IE probe sends 9), so this stack does too.
    pub code: u8,
    /// Identifier, sequence number and data: everything after type/code/checksum, echoed back.
    pub rest: &'a [u8],
}

/// Destination unreachable codes (RFC 792) this host sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    Protocol = 2,
    Port = 3,
}

pub(crate) fn parse_echo_request(src: Ipv4Addr, body: &[u8]) -> Result<EchoRequest<'_>, DropReason> {
    if body.len() < 8 {
        return Err(DropReason::BadIcmp);
    }
    if checksum::checksum(body) != 0 {
        return Err(DropReason::BadIcmp);
    }
    if body[0] != ECHO_REQUEST {
        // Other ICMP (unreachable, replies, …) carries nothing we act on yet.
        return Err(DropReason::IcmpIgnored);
    }
    Ok(EchoRequest { src, code: body[1], rest: &body[4..] })
}

/// Build the echo reply for `req`, sent from `local`.
pub(crate) fn build_echo_reply(local: Ipv4Addr, req: &EchoRequest<'_>, id: u16, out: &mut Vec<u8>) {
    out.clear();
    write_header(local, req.src, PROTO_ICMP, 4 + req.rest.len(), id, out);
    let start = out.len();
    out.extend_from_slice(&[ECHO_REPLY, req.code, 0, 0]);
    out.extend_from_slice(req.rest);
    let sum = checksum::checksum(&out[start..]);
    out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
}

/// Build a destination unreachable from `local` to the source of `datagram` (the offending
/// IPv4 packet as received, header first), quoting as much of it as RFC 1812 allows. Sent
/// without DF, so `id` must be unique for the destination (RFC 6864 §4.2).
pub(crate) fn build_unreachable(
    local: Ipv4Addr,
    to: Ipv4Addr,
    code: Unreachable,
    datagram: &[u8],
    id: u16,
    out: &mut Vec<u8>,
) {
    out.clear();
    let quoted = &datagram[..datagram.len().min(MAX_ERROR_LEN - 20 - 8)];
    write_header_id(local, to, PROTO_ICMP, 8 + quoted.len(), id, false, out);
    let start = out.len();
    out.extend_from_slice(&[DEST_UNREACHABLE, code as u8, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(quoted);
    let sum = checksum::checksum(&out[start..]);
    out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
    const THEM: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);

    fn echo_request(code: u8) -> Vec<u8> {
        let mut b = vec![ECHO_REQUEST, code, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        let sum = checksum::checksum(&b);
        b[2..4].copy_from_slice(&sum.to_be_bytes());
        b
    }

    #[test]
    fn echo_with_any_code_is_answered_with_that_code() {
        let body = echo_request(9);
        let req = parse_echo_request(THEM, &body).unwrap();
        let mut out = Vec::new();
        build_echo_reply(US, &req, 7, &mut out);
        let reply = &out[20..];
        assert_eq!((reply[0], reply[1]), (ECHO_REPLY, 9), "code echoed, as Linux does");
        assert_eq!(&reply[4..], &body[4..]);
        assert_eq!(checksum::checksum(reply), 0);
    }

    #[test]
    fn other_icmp_is_ignored_and_bad_icmp_dropped() {
        let mut reply = echo_request(0);
        reply[0] = ECHO_REPLY;
        reply[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum::checksum(&reply);
        reply[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse_echo_request(THEM, &reply).unwrap_err(), DropReason::IcmpIgnored);
        let mut bad = echo_request(0);
        bad[9] ^= 1;
        assert_eq!(parse_echo_request(THEM, &bad).unwrap_err(), DropReason::BadIcmp);
    }

    #[test]
    fn unreachable_quotes_the_datagram_within_576_bytes() {
        let datagram: Vec<u8> = (0..1000u16).map(|i| i as u8).collect();
        let mut out = Vec::new();
        build_unreachable(US, THEM, Unreachable::Port, &datagram, 42, &mut out);
        assert_eq!(out.len(), 576);
        let ep = etherparse::Ipv4HeaderSlice::from_slice(&out).unwrap();
        assert!(!ep.dont_fragment(), "an ICMP error may be fragmented on its way");
        assert_eq!((ep.destination_addr(), ep.protocol().0, ep.identification()), (THEM, PROTO_ICMP, 42));
        let icmp = &out[20..];
        assert_eq!((icmp[0], icmp[1]), (3, 3));
        assert_eq!(&icmp[8..], &datagram[..548]);
        assert_eq!(checksum::checksum(icmp), 0);
        build_unreachable(US, THEM, Unreachable::Protocol, &datagram[..28], 43, &mut out);
        assert_eq!((out.len(), out[21]), (20 + 8 + 28, 2));
    }
}
