//! ICMP echo (RFC 792), so `ping 10.7.0.2` answers.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::{write_header, PROTO_ICMP};
use super::DropReason;

const ECHO_REPLY: u8 = 0;
const ECHO_REQUEST: u8 = 8;

#[derive(Debug)]
pub struct EchoRequest<'a> {
    pub src: Ipv4Addr,
    /// Identifier, sequence number and data: everything after type/code/checksum, echoed back.
    pub rest: &'a [u8],
}

pub fn parse_echo_request(src: Ipv4Addr, body: &[u8]) -> Result<EchoRequest<'_>, DropReason> {
    if body.len() < 8 {
        return Err(DropReason::BadIcmp);
    }
    if checksum::checksum(body) != 0 {
        return Err(DropReason::BadIcmp);
    }
    if body[0] != ECHO_REQUEST || body[1] != 0 {
        // Other ICMP (unreachable, replies, …) carries nothing we act on yet.
        return Err(DropReason::UnsupportedProtocol);
    }
    Ok(EchoRequest { src, rest: &body[4..] })
}

/// Build the echo reply for `req`, sent from `local`.
pub fn build_echo_reply(local: Ipv4Addr, req: &EchoRequest<'_>, id: u16, out: &mut Vec<u8>) {
    out.clear();
    write_header(local, req.src, PROTO_ICMP, 4 + req.rest.len(), id, out);
    let start = out.len();
    out.extend_from_slice(&[ECHO_REPLY, 0, 0, 0]);
    out.extend_from_slice(req.rest);
    let sum = checksum::checksum(&out[start..]);
    out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
}
