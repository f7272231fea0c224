//! Maps keyed by [`ConnId`], with a hash that costs two multiplications. A bulk transfer looks
//! its connection up several times per packet (the segment, the batch's deferral, the
//! accounting after it); with the standard library's SipHash those lookups were about 15% of
//! the event loop's instructions per packet.
//!
//! A peer cannot pick an id (the host numbers its connections itself, one after another), but
//! it does pick which connections stay open, and so which ids are in a map at once. With the
//! bare product `id * K` as the hash, keeping every 1024th open put them all in one bucket of a
//! 1024-bucket table (the bucket is the hash's low bits, and a product's low bits depend only on
//! its factors' low bits). So each multiplication here is 64 × 64 → 128 bits with the high half
//! folded into the low (every bit of the id reaches every bit of the hash), and the id is mixed
//! with a seed drawn once per process (which ids collide is not known outside). Maps keyed by
//! what a peer sends (the four-tuple) keep SipHash.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use super::ConnId;

/// A `HashMap` from connection ids.
pub type ConnMap<V> = HashMap<ConnId, V, ConnIdState>;

/// The maps' hasher factory: every hasher starts from the process's seed.
#[derive(Clone, Copy, Debug)]
pub struct ConnIdState {
    seed: u64,
}

impl Default for ConnIdState {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        // RandomState's keys come from the operating system's random source.
        ConnIdState { seed: *SEED.get_or_init(|| RandomState::new().hash_one(0x5eed_u64)) }
    }
}

impl BuildHasher for ConnIdState {
    type Hasher = ConnIdHasher;

    fn build_hasher(&self) -> ConnIdHasher {
        ConnIdHasher(self.seed)
    }
}

/// The id (XOR the seed) through a folded multiplication, and the result through another.
pub struct ConnIdHasher(u64);

/// 2^64 over the golden ratio, and splitmix64's first multiplier: odd, bits well mixed.
const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xbf58_476d_1ce4_e5b9;

/// The 128-bit product's halves XORed: one `mul` instruction on x86-64 and aarch64 (two).
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for ConnIdHasher {
    fn finish(&self) -> u64 {
        folded_multiply(self.0, K2)
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = folded_multiply(self.0 ^ id, K1);
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
    use std::collections::HashSet;

    /// How many of 1024 buckets (the hash's low 10 bits, as hashbrown takes them) `ids` land
    /// in, and the most in one.
    fn spread(build: &ConnIdState, ids: impl Iterator<Item = u64>) -> (usize, usize) {
        let mut load = [0usize; 1024];
        for id in ids {
            load[(build.hash_one(id) & 1023) as usize] += 1;
        }
        (load.iter().filter(|&&n| n > 0).count(), load.iter().copied().max().unwrap_or(0))
    }

    /// Fixed seeds (the tests do not depend on the process's), and the process's.
    fn states() -> Vec<ConnIdState> {
        let mut v: Vec<ConnIdState> = [0, 1, 0x5eed, u64::MAX].map(|seed| ConnIdState { seed }).into();
        v.push(ConnIdState::default());
        v
    }

    #[test]
    fn ids_a_peer_can_keep_open_spread_over_buckets() {
        // Consecutive ids, and every 2^k-th (3·2^k-th) as a peer that closes all the others
        // keeps. A random hash puts 1024 keys in about 1 - 1/e of 1024 buckets (647), at most
        // about 6 in one; the bare product `id * K1` put each strided set in one bucket.
        for build in states() {
            for stride in [1u64, 3, 1 << 10, 3 << 10, 1 << 12, 1 << 16, 1 << 20, 1 << 32, 1 << 40] {
                let (used, most) = spread(&build, (0..1024u64).map(|i| 7 + i * stride));
                assert!(used > 512 && most <= 12, "{build:?}, stride {stride:#x}: {used} buckets, {most} in one");
            }
        }
    }

    #[test]
    fn consecutive_ids_use_the_tags() {
        // hashbrown keeps the top 7 bits as a tag, compared before the key.
        for seed in [0, 1, 0x5eed, u64::MAX] {
            let build = ConnIdState { seed };
            let tags: HashSet<u64> = (1..=1024u64).map(|id| build.hash_one(id) >> 57).collect();
            assert!(tags.len() >= 120, "seed {seed:#x}: {} of 128 tags", tags.len());
        }
    }

    #[test]
    fn the_seed_changes_which_ids_collide() {
        let (a, b) = (ConnIdState { seed: 1 }, ConnIdState { seed: 2 });
        let same = (0..1024u64).filter(|&id| a.hash_one(id) & 1023 == b.hash_one(id) & 1023).count();
        assert!(same < 16, "{same} of 1024 ids in the same bucket under two seeds");
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
