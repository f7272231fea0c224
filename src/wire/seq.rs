//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4, RFC 1982 style).
//!
//! All sequence arithmetic in synack goes through [`SeqNum`]; comparing raw `u32`s with `<`
//! breaks the moment a connection's sequence space wraps.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A TCP sequence number. `a < b` means "a comes before b" in the circular space, which is
/// well defined while the two are less than 2^31 apart (always true inside one window).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self` lies in `[start, start + len)`.
    pub fn in_range(self, start: SeqNum, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }

    pub fn max(self, other: SeqNum) -> SeqNum {
        if self >= other {
            self
        } else {
            other
        }
    }

    pub fn min(self, other: SeqNum) -> SeqNum {
        if self <= other {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Not a total order over all of u32 (it is not transitive across half the space), but it is
/// one for any set of numbers inside a window, which is all TCP ever compares.
impl Ord for SeqNum {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.wrapping_sub(other.0) as i32).cmp(&0)
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

/// Distance from `rhs` forward to `self`. Callers ensure `rhs <= self`.
impl Sub<SeqNum> for SeqNum {
    type Output = u32;
    fn sub(self, rhs: SeqNum) -> u32 {
        self.0.wrapping_sub(rhs.0)
    }
}

/// `n` sequence numbers back.
impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_around() {
        let a = SeqNum(u32::MAX - 10);
        let b = a + 20;
        assert_eq!(b.0, 9);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b - a, 20);
    }

    #[test]
    fn in_range_across_wrap() {
        let start = SeqNum(u32::MAX - 2);
        assert!(start.in_range(start, 1));
        assert!(SeqNum(1).in_range(start, 10));
        assert!(!SeqNum(7).in_range(start, 10));
        assert!(!SeqNum(1).in_range(start, 0));
    }

    proptest! {
        #[test]
        fn order_matches_offset(base in any::<u32>(), d in 1u32..(1 << 31)) {
            let a = SeqNum(base);
            let b = a + d;
            prop_assert!(a < b);
            prop_assert_eq!(b - a, d);
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.min(b), a);
        }
    }
}
