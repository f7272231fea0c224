//! The sender's SACK scoreboard (RFC 2018, RFC 6675): which ranges above SND.UNA the peer has
//! told us it holds, so fast recovery resends only the holes, several per round trip,
//! instead of one segment per round trip as NewReno alone would.

use crate::wire::SeqNum;

/// Blocks kept at most; beyond it the highest are forgotten (they only speed recovery up).
const MAX_BLOCKS: usize = 32;

/// Where a sequence number lies relative to the SACKed blocks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Around {
    /// Not SACKed; the next SACKed block starts here.
    Before(SeqNum),
    /// SACKed; the block ends here.
    Inside(SeqNum),
    /// Not SACKed, and nothing above it is.
    Beyond,
}

#[derive(Debug, Default)]
pub(crate) struct Scoreboard {
    /// Sorted, disjoint, all above SND.UNA.
    blocks: Vec<(SeqNum, SeqNum)>,
}

impl Scoreboard {
    /// Add the blocks of one ACK; blocks outside (SND.UNA, SND.MAX] are ignored (stale, or a
    /// D-SACK, or forged).
    /// Returns how many bytes are newly SACKed.
    pub(crate) fn update(&mut self, sack: &[(SeqNum, SeqNum)], snd_una: SeqNum, snd_max: SeqNum) -> u32 {
        let before = self.sacked_bytes();
        for &(l, r) in sack {
            if l >= r || l < snd_una || r > snd_max {
                continue;
            }
            let at = self.blocks.partition_point(|b| b.0 < l);
            self.blocks.insert(at, (l, r));
        }
        // Merge overlapping or touching blocks.
        let mut merged: Vec<(SeqNum, SeqNum)> = Vec::with_capacity(self.blocks.len());
        for &(l, r) in &self.blocks {
            match merged.last_mut() {
                Some(last) if l <= last.1 => last.1 = last.1.max(r),
                _ => merged.push((l, r)),
            }
        }
        merged.truncate(MAX_BLOCKS);
        self.blocks = merged;
        self.sacked_bytes().saturating_sub(before)
    }

    /// If `seq` is SACKed, where its block ends; otherwise where the next block starts.
    pub(crate) fn around(&self, seq: SeqNum) -> Around {
        for &(l, r) in &self.blocks {
            if seq < l {
                return Around::Before(l);
            }
            if seq < r {
                return Around::Inside(r);
            }
        }
        Around::Beyond
    }

    /// Forget what SND.UNA has passed.
    pub(crate) fn prune(&mut self, snd_una: SeqNum) {
        self.blocks.retain(|b| b.1 > snd_una);
        if let Some(first) = self.blocks.first_mut() {
            first.0 = first.0.max(snd_una);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.blocks.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The first range at or after `from` that the peer has not SACKed and that lies below
    /// the highest SACKed byte (so it is known lost, not merely in flight).
    pub(crate) fn next_hole(&self, from: SeqNum) -> Option<(SeqNum, SeqNum)> {
        let mut cur = from;
        for &(l, r) in &self.blocks {
            if r <= cur {
                continue;
            }
            if l > cur {
                return Some((cur, l));
            }
            cur = r;
        }
        None
    }

    /// The end of the highest SACKed block.
    pub(crate) fn highest(&self) -> Option<SeqNum> {
        self.blocks.last().map(|b| b.1)
    }

    pub(crate) fn sacked_bytes(&self) -> u32 {
        self.blocks.iter().map(|(l, r)| *r - *l).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    #[test]
    fn holes_between_sacked_blocks() {
        let mut b = Scoreboard::default();
        b.update(&[(s(300), s(400)), (s(100), s(200))], s(0), s(1000));
        assert_eq!(b.next_hole(s(0)), Some((s(0), s(100))));
        assert_eq!(b.next_hole(s(100)), Some((s(200), s(300))));
        assert_eq!(b.next_hole(s(250)), Some((s(250), s(300))));
        assert_eq!(b.next_hole(s(300)), None, "nothing known lost above the highest SACK");
        assert_eq!(b.sacked_bytes(), 200);
    }

    #[test]
    fn merges_prunes_and_ignores_nonsense() {
        let mut b = Scoreboard::default();
        b.update(&[(s(100), s(200)), (s(150), s(250)), (s(250), s(260))], s(0), s(1000));
        assert_eq!(b.next_hole(s(0)), Some((s(0), s(100))));
        assert_eq!(b.sacked_bytes(), 160);
        b.update(&[(s(2000), s(3000)), (s(50), s(40))], s(0), s(1000));
        assert_eq!(b.sacked_bytes(), 160, "beyond SND.MAX and reversed blocks ignored");
        b.prune(s(180));
        assert_eq!(b.sacked_bytes(), 80);
        b.prune(s(300));
        assert!(b.is_empty());
    }
}
