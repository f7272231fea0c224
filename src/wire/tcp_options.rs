//! Walking a TCP header's options (RFC 9293 §3.1): one walker for the stack, which keeps what
//! it understands and drops a segment whose option list is broken, and for the analyzer, which
//! shows every option with where it lies.
//!
//! Written here rather than taken from etherparse: its `TcpOptionsIterator` ends at the first
//! kind it does not know, and RFC 9293 says an unknown option is skipped by its length.

use std::ops::Range;

/// Option kinds this walker decodes.
const EOL: u8 = 0;
const NOP: u8 = 1;
const MSS: u8 = 2;
const WINDOW_SCALE: u8 = 3;
const SACK_PERMITTED: u8 = 4;
const SACK: u8 = 5;
const TIMESTAMPS: u8 = 8;

/// One option, decoded as far as its kind allows, borrowing from the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TcpOption<'a> {
    /// Kind 0: the end of the list; what follows is padding. The walk stops here.
    Eol,
    /// Kind 1: one byte of padding.
    Nop,
    /// Kind 2.
    Mss(u16),
    /// Kind 3: the shift as written (RFC 7323 caps its use at 14; the reader applies that).
    WindowScale(u8),
    /// Kind 4.
    SackPermitted,
    /// Kind 5: the blocks' bytes, 8 per block (left edge, right edge), at least one block.
    Sack(SackBlocks<'a>),
    /// Kind 8: TSval and TSecr (RFC 7323).
    Timestamps { value: u32, echo: u32 },
    /// A kind this walker does not decode, with the bytes after kind and length.
    Unknown { kind: u8, data: &'a [u8] },
    /// A known kind whose length byte is not the one its kind has; the walk goes on after it.
    WrongLength { kind: u8, len: u8 },
}

/// The SACK blocks of one option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SackBlocks<'a>(&'a [u8]);

impl<'a> SackBlocks<'a> {
    /// Each block's (left, right) edges, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.0.chunks_exact(8).map(|b| (be32(&b[..4]), be32(&b[4..])))
    }
}

/// Why a walk ended early: the option list itself is broken, so nothing after it can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OptionError {
    /// The last byte is a kind that needs a length byte.
    NoLength { kind: u8 },
    /// A length below 2 (it counts the kind and length bytes).
    TooShort { kind: u8, len: u8 },
    /// A length that runs past the header; `left` bytes were left.
    PastEnd { kind: u8, len: u8, left: usize },
}

impl OptionError {
    pub(crate) fn kind(self) -> u8 {
        match self {
            OptionError::NoLength { kind } | OptionError::TooShort { kind, .. } | OptionError::PastEnd { kind, .. } => {
                kind
            }
        }
    }
}

/// The options in `bytes` (those between the fixed header and the data), each with the range
/// it occupies in `bytes`. An end-of-list option covers the rest; so does a broken one, which
/// ends the walk.
pub(crate) fn walk(bytes: &[u8]) -> Walk<'_> {
    Walk { bytes, at: 0 }
}

/// See [`walk`].
#[derive(Clone, Debug)]
pub(crate) struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Walk<'a> {
    type Item = (Range<usize>, Result<TcpOption<'a>, OptionError>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let all = self.bytes;
        let start = self.at;
        let rest = all.get(start..).filter(|r| !r.is_empty())?;
        let kind = rest[0];
        let (end, item) = match kind {
            EOL => (all.len(), Ok(TcpOption::Eol)),
            NOP => (start + 1, Ok(TcpOption::Nop)),
            _ => match rest.get(1) {
                None => (all.len(), Err(OptionError::NoLength { kind })),
                Some(&len) if len < 2 => (all.len(), Err(OptionError::TooShort { kind, len })),
                Some(&len) if usize::from(len) > rest.len() => {
                    (all.len(), Err(OptionError::PastEnd { kind, len, left: rest.len() }))
                }
                Some(&len) => (start + usize::from(len), Ok(decode(kind, len, &rest[2..usize::from(len)]))),
            },
        };
        // An end of list or a broken option ends the walk.
        self.at = if matches!(item, Ok(TcpOption::Eol) | Err(_)) { all.len() } else { end };
        Some((start..end, item))
    }
}

fn decode(kind: u8, len: u8, body: &[u8]) -> TcpOption<'_> {
    let wrong = TcpOption::WrongLength { kind, len };
    match kind {
        MSS if body.len() == 2 => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
        WINDOW_SCALE if body.len() == 1 => TcpOption::WindowScale(body[0]),
        SACK_PERMITTED if body.is_empty() => TcpOption::SackPermitted,
        SACK if !body.is_empty() && body.len().is_multiple_of(8) => TcpOption::Sack(SackBlocks(body)),
        TIMESTAMPS if body.len() == 8 => TcpOption::Timestamps { value: be32(&body[..4]), echo: be32(&body[4..]) },
        MSS | WINDOW_SCALE | SACK_PERMITTED | SACK | TIMESTAMPS => wrong,
        _ => TcpOption::Unknown { kind, data: body },
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<(Range<usize>, Result<TcpOption<'_>, OptionError>)> {
        walk(bytes).collect()
    }

    #[test]
    fn known_unknown_and_padding_with_their_spans() {
        let got = all(&[2, 4, 5, 0xb4, 1, 30, 3, 9, 3, 3, 7, 0, 0]);
        assert_eq!(
            got,
            vec![
                (0..4, Ok(TcpOption::Mss(1460))),
                (4..5, Ok(TcpOption::Nop)),
                (5..8, Ok(TcpOption::Unknown { kind: 30, data: &[9] })),
                (8..11, Ok(TcpOption::WindowScale(7))),
                (11..13, Ok(TcpOption::Eol)),
            ]
        );
    }

    #[test]
    fn a_wrong_length_goes_on_a_broken_list_stops() {
        assert_eq!(
            all(&[2, 3, 1, 4, 2]),
            vec![(0..3, Ok(TcpOption::WrongLength { kind: 2, len: 3 })), (3..5, Ok(TcpOption::SackPermitted))]
        );
        assert_eq!(all(&[1, 2]), vec![(0..1, Ok(TcpOption::Nop)), (1..2, Err(OptionError::NoLength { kind: 2 }))]);
        assert_eq!(all(&[9, 1, 2, 4]), vec![(0..4, Err(OptionError::TooShort { kind: 9, len: 1 }))]);
        assert_eq!(all(&[2, 9, 1]), vec![(0..3, Err(OptionError::PastEnd { kind: 2, len: 9, left: 3 }))]);
    }

    #[test]
    fn sack_blocks_and_timestamps() {
        let opt = [5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6];
        let got = all(&opt);
        let Ok(TcpOption::Sack(blocks)) = got[0].1 else { panic!("not SACK: {got:?}") };
        assert_eq!(blocks.iter().collect::<Vec<_>>(), vec![(1, 2), (3, 4)]);
        assert_eq!(got[1], (18..28, Ok(TcpOption::Timestamps { value: 5, echo: 6 })));
        assert_eq!(all(&[5, 2])[0].1, Ok(TcpOption::WrongLength { kind: 5, len: 2 }));
    }

    #[test]
    fn never_panics() {
        for a in 0u8..=10 {
            for l in 0u8..=12 {
                let _ = all(&[a, l, 1, 2, 3]);
                let _ = all(&[1, a, l]);
            }
        }
    }
}
