//! UDP (RFC 768): only as far as deciding that a datagram is well formed, so that one sent
//! to a port nothing serves is answered with an ICMP port unreachable (RFC 1122 §4.1.3.1).

use std::net::Ipv4Addr;

use super::checksum;
use super::DropReason;

pub(crate) const PROTO_UDP: u8 = 17;
const HEADER_LEN: usize = 8;

/// Check a UDP datagram's length and checksum (zero: none was computed, RFC 768); returns
/// its destination port.
pub(crate) fn check(src: Ipv4Addr, dst: Ipv4Addr, body: &[u8]) -> Result<u16, DropReason> {
    if body.len() < HEADER_LEN {
        return Err(DropReason::BadUdp);
    }
    let len = usize::from(u16::from_be_bytes([body[4], body[5]]));
    if len < HEADER_LEN || len > body.len() {
        return Err(DropReason::BadUdp);
    }
    let datagram = &body[..len];
    if datagram[6..8] != [0, 0] {
        let acc = checksum::pseudo_header(src, dst, PROTO_UDP, len);
        if checksum::fold(checksum::sum_words(datagram, acc)) != 0 {
            return Err(DropReason::BadUdp);
        }
    }
    Ok(u16::from_be_bytes([body[2], body[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);

    /// A datagram from A:5000 to B:`port` with its checksum.
    pub(super) fn datagram(port: u16, payload: &[u8]) -> Vec<u8> {
        let len = (HEADER_LEN + payload.len()) as u16;
        let mut d = [&5000u16.to_be_bytes()[..], &port.to_be_bytes(), &len.to_be_bytes(), &[0, 0], payload].concat();
        let sum = checksum::fold(checksum::sum_words(&d, checksum::pseudo_header(A, B, PROTO_UDP, d.len())));
        d[6..8].copy_from_slice(&sum.to_be_bytes());
        d
    }

    #[test]
    fn good_datagrams_give_their_port() {
        assert_eq!(check(A, B, &datagram(53, b"query")), Ok(53));
        let mut no_sum = datagram(161, b"x");
        no_sum[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(check(A, B, &no_sum), Ok(161), "a zero checksum means none");
    }

    #[test]
    fn bad_length_or_checksum_is_dropped() {
        let d = datagram(53, b"query");
        assert_eq!(check(A, B, &d[..7]), Err(DropReason::BadUdp));
        let mut long = d.clone();
        long[5] = 200;
        assert_eq!(check(A, B, &long), Err(DropReason::BadUdp));
        let mut short = d.clone();
        short[5] = 7;
        assert_eq!(check(A, B, &short), Err(DropReason::BadUdp));
        let mut flipped = d;
        flipped[9] ^= 1;
        assert_eq!(check(A, B, &flipped), Err(DropReason::BadUdp));
    }
}
