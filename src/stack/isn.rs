//! Initial sequence numbers per RFC 6528: ISN = M + F(local, remote, secret), where M is a
//! 4-microsecond clock and F a keyed hash (SipHash-2-4). Off-path attackers cannot predict
//! it, yet a reconnecting four-tuple still gets increasing sequence numbers.

use std::hash::Hasher;
use std::net::SocketAddrV4;
use std::time::Instant;

use siphasher::sip::SipHasher24;

use crate::wire::SeqNum;

pub(super) struct IsnGenerator {
    key: [u8; 16],
    epoch: Instant,
}

impl IsnGenerator {
    pub(super) fn new(epoch: Instant) -> Self {
        let mut key = [0u8; 16];
        if getrandom::fill(&mut key).is_err() {
            // No OS entropy: fall back to the address of a stack value and the time, which
            // is weak, so say so.
            tracing::warn!("no OS randomness for the ISN key; sequence numbers are guessable");
            let t =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            key.copy_from_slice(&t.to_le_bytes());
        }
        IsnGenerator { key, epoch }
    }

    pub(super) fn generate(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNum {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(&local.ip().octets());
        h.write_u16(local.port());
        h.write(&remote.ip().octets());
        h.write_u16(remote.port());
        let f = h.finish() as u32;
        let m = (now.saturating_duration_since(self.epoch).as_micros() / 4) as u32;
        SeqNum(m.wrapping_add(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    #[test]
    fn keyed_per_tuple_and_advances_with_the_clock() {
        let t0 = Instant::now();
        let g = IsnGenerator::new(t0);
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 2), 80);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), 40000);
        let c = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), 40001);
        assert_ne!(g.generate(t0, a, b), g.generate(t0, a, c));
        let later = g.generate(t0 + Duration::from_millis(4), a, b);
        assert_eq!(later - g.generate(t0, a, b), 1000);
        // A second generator has another key.
        assert_ne!(IsnGenerator::new(t0).generate(t0, a, b), g.generate(t0, a, b));
    }
}
