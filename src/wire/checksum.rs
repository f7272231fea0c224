//! The Internet checksum (RFC 1071). Written out because it is on every packet's path, both
//! to verify input (etherparse does not verify when it parses) and to build output.

use std::net::Ipv4Addr;

/// One's-complement sum of 16-bit big-endian words, added to `acc`; not yet folded or
/// inverted.
///
/// Every packet in and out is summed, so this is the stack's hottest loop. Where the CPU has
/// AVX2 the same code is compiled for it as well and chosen at run time: 256-bit adds take
/// the sum of a 1,480-byte segment from ~750 instructions to ~400 (the detection is cached
/// by the standard library: one load and a branch).
pub fn sum_words(data: &[u8], acc: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { sum_words_avx2(data, acc) };
    }
    sum_words_any(data, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_words_avx2(data: &[u8], acc: u64) -> u64 {
    sum_words_any(data, acc)
}

/// The sum itself: it adds 32-bit native-endian words into a 64-bit accumulator (which the compiler
/// vectorises), folds, and swaps bytes at the end. That gives the same result because the
/// one's-complement sum is unchanged by the word size (2^16 ≡ 1 mod 0xffff) and commutes
/// with byte swapping (RFC 1071 §2 (A), (B)).
#[inline(always)]
fn sum_words_any(data: &[u8], acc: u64) -> u64 {
    let mut sum = 0u64;
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        // At most 2^32 words before the 64-bit sum could overflow: packets are far smaller.
        let mut part = 0u64;
        for w in block.chunks_exact(4) {
            part += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
        }
        sum += part;
    }
    let rest = blocks.remainder();
    let mut words = rest.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut tail = words.remainder();
    if tail.len() >= 2 {
        sum += u64::from(u16::from_ne_bytes([tail[0], tail[1]]));
        tail = &tail[2..];
    }
    if let [last] = tail {
        // A lone last byte is the high half of a big-endian word padded with zero.
        sum += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    let folded = fold_sum(sum);
    acc + u64::from(u16::from_be(folded))
}

/// Fold a one's-complement sum to 16 bits (no inversion).
fn fold_sum(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Sum of the TCP/UDP pseudo-header (RFC 9293 §3.1).
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: usize) -> u64 {
    let mut acc = sum_words(&src.octets(), 0);
    acc = sum_words(&dst.octets(), acc);
    acc + u64::from(protocol) + len as u64
}

/// Checksum of a whole buffer; a buffer that already holds a correct checksum sums to 0.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum_words(data, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2 (before inversion).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    /// The plain definition, 16-bit big-endian words one at a time: the oracle for the fast one.
    fn reference_sum(data: &[u8], mut acc: u64) -> u64 {
        for p in data.chunks(2) {
            acc += u64::from(u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]));
        }
        acc
    }

    proptest::proptest! {
        #[test]
        fn fast_sum_matches_the_definition(data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000), start in 0usize..8, acc in 0u64..(1 << 40)) {
            let data = &data[start.min(data.len())..];
            proptest::prop_assert_eq!(fold(sum_words(data, acc)), fold(reference_sum(data, acc)));
        }
    }

    /// Whichever variant `sum_words` picks on this CPU, the portable one agrees with it.
    #[test]
    fn both_variants_agree() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in (0..300).chain([1479, 1480, 1481, 65_535, 70_000]) {
            for start in 0..3 {
                let d = &data[start..len.max(start)];
                assert_eq!(fold(sum_words(d, 9)), fold(sum_words_any(d, 9)), "len {len} start {start}");
                assert_eq!(fold(sum_words(d, 9)), fold(reference_sum(d, 9)), "len {len} start {start}");
            }
        }
    }

    #[test]
    fn all_ones_and_odd_tails() {
        for len in 0..200 {
            let data = vec![0xffu8; len];
            assert_eq!(fold(sum_words(&data, 7)), fold(reference_sum(&data, 7)), "len {len}");
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(fold(sum_words(&data, 0)), fold(reference_sum(&data, 0)), "len {len}");
        }
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0x12, 0x34, 0x56]), checksum(&[0x12, 0x34, 0x56, 0x00]));
    }
}
