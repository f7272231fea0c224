//! The IPv4 Identification field: a counter per destination, not one for the host.
//!
//! One global counter tells anyone who can elicit two packets how many the host sent in
//! between, to anyone: its traffic rate, and an idle scan (nmap -sI) bounces a port scan off
//! the host that way. RFC 6864 lets an atomic (DF, unfragmented) datagram carry any ID and
//! RFC 7739 §5 recommends per-destination counters; this keeps 2048 counters, each a keyed
//! hash of source, destination and protocol choosing the counter and a secret offset (as
//! Linux's ip_idents do). IDs to one destination still advance by one per packet, which
//! keeps them unique for reassembly when a packet goes without DF (ICMP errors).

use std::hash::Hasher;
use std::net::Ipv4Addr;

use siphasher::sip::SipHasher24;

const BUCKETS: usize = 2048;

pub(super) struct IpIds {
    key: [u8; 16],
    counters: Vec<u16>,
    /// The last flow hashed and its hash: a bulk transfer sends every packet to the same
    /// destination, and SipHash per packet was a tenth of the stack's own work per segment.
    last: Option<((Ipv4Addr, Ipv4Addr, u8), u64)>,
}

impl IpIds {
    pub(super) fn new() -> IpIds {
        let mut key = [0u8; 16];
        if getrandom::fill(&mut key).is_err() {
            tracing::warn!("no OS randomness for the IPv4 ID key; IDs are per destination but guessable");
            let t =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            key.copy_from_slice(&t.to_le_bytes());
        }
        IpIds { key, counters: vec![0; BUCKETS], last: None }
    }

    /// The ID for the next packet from `src` to `dst` carrying `protocol`.
    pub(super) fn next(&mut self, src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> u16 {
        let flow = (src, dst, protocol);
        let hash = match self.last {
            Some((f, hash)) if f == flow => hash,
            _ => {
                let hash = self.hash(flow);
                self.last = Some((flow, hash));
                hash
            }
        };
        let counter = &mut self.counters[hash as usize % BUCKETS];
        *counter = counter.wrapping_add(1);
        counter.wrapping_add((hash >> 48) as u16)
    }

    fn hash(&self, (src, dst, protocol): (Ipv4Addr, Ipv4Addr, u8)) -> u64 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(&src.octets());
        h.write(&dst.octets());
        h.write_u8(protocol);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);

    #[test]
    fn each_destination_counts_on_its_own() {
        let mut ids = IpIds::new();
        let a = Ipv4Addr::new(10, 7, 0, 1);
        // A destination in another bucket than `a`'s (2047 in 2048 are).
        let b = (3..=254u8)
            .map(|i| Ipv4Addr::new(10, 7, 0, i))
            .find(|&b| {
                let mut probe = IpIds { key: ids.key, counters: vec![0; BUCKETS], last: None };
                probe.next(US, a, 6);
                let before = probe.next(US, b, 6);
                probe.next(US, a, 6);
                probe.next(US, b, 6) == before.wrapping_add(1)
            })
            .unwrap();
        let first = ids.next(US, a, 6);
        // Traffic to b between two packets to a does not show in a's IDs.
        for _ in 0..100 {
            ids.next(US, b, 6);
        }
        assert_eq!(ids.next(US, a, 6), first.wrapping_add(1));
    }

    #[test]
    fn the_remembered_hash_gives_the_ids_a_fresh_one_would() {
        let mut ids = IpIds::new();
        let mut fresh = IpIds { key: ids.key, counters: vec![0; BUCKETS], last: None };
        let (a, b) = (Ipv4Addr::new(10, 7, 0, 1), Ipv4Addr::new(10, 7, 0, 9));
        for dst in [a, a, a, b, a, b, b, a] {
            fresh.last = None;
            assert_eq!(ids.next(US, dst, 6), fresh.next(US, dst, 6), "to {dst}");
        }
        assert_eq!(ids.next(US, a, 17), fresh.next(US, a, 17), "another protocol is another flow");
    }

    #[test]
    fn destinations_start_at_unrelated_values() {
        let mut ids = IpIds::new();
        let starts: std::collections::HashSet<u16> =
            (1..=50u8).map(|i| ids.next(US, Ipv4Addr::new(10, 9, 0, i), 6)).collect();
        assert!(starts.len() > 40, "per-destination offsets: {} distinct of 50", starts.len());
    }
}
