//! SYN cookies (RFC 4987 §3.6): when a listener's SYN backlog is full, answer a SYN without
//! keeping any state, encoding what we must remember in our initial sequence number. A real
//! client's ACK brings the cookie back (as ACK − 1) and the connection is made then; a
//! spoofed SYN flood fills nothing.
//!
//! Cookie layout (32 bits): 5 bits of a 64-second counter, 3 bits indexing the MSS table,
//! 24 bits of a keyed hash of the four-tuple, the client's ISN and the counter. Window scale
//! and SACK-permitted do not fit; when the client sent timestamps they ride in the low bits of
//! our TSval (as Linux does) and come back in its TSecr, otherwise they are turned off.

use std::hash::Hasher;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use siphasher::sip::SipHasher24;

use crate::wire::SeqNum;

/// MSS values a cookie can carry; the client gets the largest not above what it asked for.
pub(super) const MSS_TABLE: [u16; 8] = [536, 1024, 1220, 1360, 1400, 1440, 1460, 8960];
const PERIOD: Duration = Duration::from_secs(64);
/// Low TSval bits: 4 for the window shift (15 = none), 1 for SACK-permitted.
const TS_BITS: u32 = 0x1f;

pub(super) struct CookieJar {
    key: [u8; 16],
    epoch: Instant,
    /// Cookies are accepted only while we have been sending them recently, so a blind ACK
    /// flood cannot try its luck when no flood is on.
    last_sent: Option<Instant>,
}

impl CookieJar {
    pub(super) fn new(epoch: Instant) -> Self {
        let mut key = [0u8; 16];
        if getrandom::fill(&mut key).is_err() {
            tracing::warn!("no OS randomness for the SYN cookie key");
        }
        CookieJar { key, epoch, last_sent: None }
    }

    fn period(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.epoch).as_secs() / PERIOD.as_secs()) as u32
    }

    fn hash(&self, local: SocketAddrV4, remote: SocketAddrV4, irs: SeqNum, period: u32) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(&local.ip().octets());
        h.write_u16(local.port());
        h.write(&remote.ip().octets());
        h.write_u16(remote.port());
        h.write_u32(irs.0);
        h.write_u32(period);
        h.finish() as u32 & 0x00ff_ffff
    }

    /// The ISN to put in a stateless SYN,ACK, and the MSS it promises.
    pub(super) fn make(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        irs: SeqNum,
        peer_mss: u16,
    ) -> (SeqNum, u16) {
        self.last_sent = Some(now);
        let idx = MSS_TABLE.iter().rposition(|&m| m <= peer_mss).unwrap_or(0);
        let period = self.period(now) & 31;
        let cookie = (period << 27) | ((idx as u32) << 24) | self.hash(local, remote, irs, period);
        (SeqNum(cookie), MSS_TABLE[idx])
    }

    /// Cookies went out within their lifetime: an ACK for a listener may be a client's.
    pub(super) fn sent_recently(&self, now: Instant) -> bool {
        self.last_sent.is_some_and(|t| now.saturating_duration_since(t) < PERIOD * 2)
    }

    /// Check the cookie an ACK returns; `irs` is the client's ISN (its SEG.SEQ − 1).
    /// Returns the MSS the cookie carried.
    pub(super) fn check(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        irs: SeqNum,
        cookie: SeqNum,
    ) -> Option<u16> {
        if !self.sent_recently(now) {
            return None;
        }
        let c = cookie.0;
        let now_period = self.period(now);
        // This period or the one before: a cookie lives between 64 and 128 seconds.
        let fresh = (0..2u32).map(|age| now_period.wrapping_sub(age) & 31).find(|p| *p == c >> 27)?;
        if self.hash(local, remote, irs, fresh) != c & 0x00ff_ffff {
            return None;
        }
        Some(MSS_TABLE[((c >> 24) & 7) as usize])
    }
}

/// Our TSval for a cookie SYN,ACK, carrying window scale and SACK-permitted in its low bits.
pub(super) fn encode_ts(ts_now: u32, window_scale: Option<u8>, sack: bool) -> u32 {
    let ws = u32::from(window_scale.unwrap_or(15).min(15));
    (ts_now & !TS_BITS) | ws | (u32::from(sack) << 4)
}

/// What `encode_ts` put in, read back from the client's TSecr.
pub(super) fn decode_ts(tsecr: u32) -> (Option<u8>, bool) {
    let ws = (tsecr & 0xf) as u8;
    ((ws <= 14).then_some(ws), tsecr & 0x10 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addrs() -> (SocketAddrV4, SocketAddrV4) {
        (SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 2), 80), SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), 4444))
    }

    #[test]
    fn a_cookie_checks_out_for_its_tuple_only_and_expires() {
        let t0 = Instant::now();
        let mut jar = CookieJar::new(t0);
        let (l, r) = addrs();
        let (cookie, mss) = jar.make(t0, l, r, SeqNum(777), 1460);
        assert_eq!(mss, 1460);
        assert_eq!(jar.check(t0, l, r, SeqNum(777), cookie), Some(1460));
        assert_eq!(jar.check(t0 + Duration::from_secs(100), l, r, SeqNum(777), cookie), Some(1460));
        assert_eq!(jar.check(t0, l, r, SeqNum(778), cookie), None, "another client ISN");
        let other = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, 1), 4445);
        assert_eq!(jar.check(t0, l, other, SeqNum(777), cookie), None, "another port");
        assert_eq!(jar.check(t0, l, r, SeqNum(777), cookie + 1), None);
        assert_eq!(jar.check(t0 + Duration::from_secs(200), l, r, SeqNum(777), cookie), None, "expired");
    }

    #[test]
    fn mss_rounds_down_to_the_table() {
        let t0 = Instant::now();
        let mut jar = CookieJar::new(t0);
        let (l, r) = addrs();
        assert_eq!(jar.make(t0, l, r, SeqNum(1), 1400).1, 1400);
        assert_eq!(jar.make(t0, l, r, SeqNum(1), 1300).1, 1220);
        assert_eq!(jar.make(t0, l, r, SeqNum(1), 100).1, 536);
    }

    #[test]
    fn no_cookies_accepted_when_none_were_sent() {
        let t0 = Instant::now();
        let jar = CookieJar::new(t0);
        let (l, r) = addrs();
        assert_eq!(jar.check(t0, l, r, SeqNum(1), SeqNum(12345)), None);
    }

    #[test]
    fn options_survive_the_timestamp_round_trip() {
        for ws in [None, Some(0), Some(7), Some(14)] {
            for sack in [false, true] {
                let ts = encode_ts(0xdead_beef, ws, sack);
                assert_eq!(decode_ts(ts), (ws, sack));
                assert_eq!(ts & !0x1f, 0xdead_beef & !0x1f);
            }
        }
    }
}
