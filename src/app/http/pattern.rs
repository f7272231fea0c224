//! The `/bytes/N` body pattern: byte `i` is `i mod 251`.
//!
//! Why this pattern: it depends only on the byte's offset, so `/bytes/M` is a prefix of
//! `/bytes/N` for every M ≤ N and any receiver can check a stream incrementally without
//! storing it. 251 is prime (the largest below 256), so the period shares no factor with any
//! segment size, MSS or buffer size: a segment delivered at the wrong offset, duplicated or
//! swapped with another almost always lands on different bytes and is caught.

/// The period of the pattern (prime, and ≤ 256 so every value fits a byte).
pub const PATTERN_PERIOD: u64 = 251;

/// Byte `i` of every `/bytes/N` body.
pub fn pattern_byte(i: u64) -> u8 {
    (i % PATTERN_PERIOD) as u8
}

/// Fills `buf` with pattern bytes `offset .. offset + buf.len()`.
pub fn fill_pattern(offset: u64, buf: &mut [u8]) {
    let mut value = pattern_byte(offset);
    for b in buf {
        *b = value;
        value = if u64::from(value) + 1 == PATTERN_PERIOD { 0 } else { value + 1 };
    }
}

/// A pre-filled run of the pattern from which any window of up to `max_len` bytes at any
/// offset is a plain slice, so streaming a body costs no per-byte work.
pub(crate) struct PatternBlock {
    bytes: Vec<u8>,
    max_len: usize,
}

impl PatternBlock {
    pub(crate) fn new(max_len: usize) -> Self {
        let mut bytes = vec![0; max_len + PATTERN_PERIOD as usize - 1];
        fill_pattern(0, &mut bytes);
        PatternBlock { bytes, max_len }
    }

    /// Pattern bytes `offset .. offset + len`, with `len` clamped to `max_len`.
    pub(crate) fn window(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % PATTERN_PERIOD) as usize;
        &self.bytes[start..start + len.min(self.max_len)]
    }
}
