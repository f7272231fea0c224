//! Maps keyed by [`ConnId`], with a hash that costs one multiplication. A bulk transfer looks
//! its connection up several times per packet (the segment, the batch's deferral, the
//! accounting after it); with the standard library's keyed SipHash those lookups were about
//! 15% of the event loop's instructions per packet. The keyed hash is there to stop an
//! attacker from choosing keys that collide, and nobody chooses a `ConnId`: the host numbers
//! its connections itself, one after another. Maps keyed by what a peer sends (the
//! four-tuple) keep SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ConnId;

/// A `HashMap` from connection ids.
pub type ConnMap<V> = HashMap<ConnId, V, BuildHasherDefault<ConnIdHasher>>;

/// Fibonacci hashing: the id times 2^64 divided by the golden ratio. The multiplier is odd, so
/// consecutive ids get distinct low bits (the bucket index) and well-mixed high bits (the
/// table's tag byte).
#[derive(Default)]
pub struct ConnIdHasher(u64);

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(GOLDEN);
    }

    /// Only `u64` keys are hashed here; any other write still hashes every byte.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_spread_over_buckets_and_tags() {
        let build = BuildHasherDefault::<ConnIdHasher>::default();
        let hashes: Vec<u64> = (1..=1024u64).map(|id| build.hash_one(id)).collect();
        // hashbrown takes the bucket from the low bits and a tag from the top 7.
        let buckets: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        assert_eq!(buckets.len(), 1024, "1024 consecutive ids fill 1024 buckets");
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128, "and use every tag");
    }

    #[test]
    fn a_map_keyed_by_ids_works_as_any_map() {
        let mut m: ConnMap<u32> = ConnMap::default();
        for id in 0..5000u64 {
            m.insert(id * 3, id as u32);
        }
        assert_eq!(m.len(), 5000);
        assert!((0..5000u64).all(|id| m.get(&(id * 3)) == Some(&(id as u32))));
        assert_eq!(m.get(&1), None);
    }
}
