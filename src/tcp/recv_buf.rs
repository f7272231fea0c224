//! The receive buffer: in-order bytes waiting for the application, plus out-of-order
//! segments held for reassembly. Both live inside the window we advertised, so the memory a
//! connection can hold is bounded by its capacity.

use std::collections::VecDeque;

use crate::wire::SeqNum;

/// At most this many separate out-of-order pieces; more are dropped (the peer resends them).
/// At 5% loss with a Linux sender's flight of ~700 segments, 64 were too few: data past the
/// 64th hole was dropped, the SACK blocks reported went stale, and the sender waited out
/// retransmission timeouts. The bound stays (a peer sending one-byte pieces could otherwise
/// make every insert slow); inserts and merges only touch the blocks around the new data.
const MAX_OOO_BLOCKS: usize = 1024;

#[derive(Debug)]
pub(crate) struct RecvBuf {
    ready: VecDeque<u8>,
    capacity: usize,
    /// Out-of-order data, sorted by sequence number, never overlapping, all beyond RCV.NXT.
    ooo: Vec<(SeqNum, Vec<u8>)>,
    /// Bytes in `ooo`, kept as it changes (summing up to 1024 blocks per packet adds up).
    ooo_bytes: usize,
}

impl RecvBuf {
    pub(crate) fn new(capacity: usize) -> Self {
        RecvBuf { ready: VecDeque::new(), capacity, ooo: Vec::new(), ooo_bytes: 0 }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes the application can read now.
    pub(crate) fn len(&self) -> usize {
        self.ready.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// Space from RCV.NXT onward: the window we can honestly offer.
    pub(crate) fn window(&self) -> usize {
        self.capacity - self.ready.len()
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = self.peek(buf);
        self.ready.drain(..n);
        n
    }

    /// Copy up to `buf.len()` bytes without consuming them.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.ready.len());
        let (a, b) = self.ready.as_slices();
        if n <= a.len() {
            buf[..n].copy_from_slice(&a[..n]);
        } else {
            buf[..a.len()].copy_from_slice(a);
            buf[a.len()..n].copy_from_slice(&b[..n - a.len()]);
        }
        n
    }

    /// Drop up to `n` bytes unread; returns how many.
    pub(crate) fn skip(&mut self, n: usize) -> usize {
        let n = n.min(self.ready.len());
        self.ready.drain(..n);
        n
    }

    /// Append in-order data (the caller has trimmed it to the window).
    pub(crate) fn push(&mut self, data: &[u8]) {
        debug_assert!(data.len() <= self.window());
        self.ready.extend(data);
    }

    /// Hold data that starts beyond RCV.NXT; only the parts not already held are kept.
    /// Returns false if some of it was dropped: too many separate pieces already.
    pub(crate) fn insert_out_of_order(&mut self, seq: SeqNum, data: &[u8]) -> bool {
        let end = seq + data.len() as u32;
        let mut pieces: Vec<(SeqNum, SeqNum)> = Vec::new();
        let mut cur = seq;
        // Blocks are sorted and disjoint, so their ends are sorted too: skip those before.
        let first = self.ooo.partition_point(|(s, d)| *s + d.len() as u32 <= seq);
        for (start, held) in &self.ooo[first..] {
            let held_end = *start + held.len() as u32;
            if held_end <= cur {
                continue;
            }
            if *start >= end {
                break;
            }
            if *start > cur {
                pieces.push((cur, *start));
            }
            cur = cur.max(held_end);
            if cur >= end {
                break;
            }
        }
        if cur < end {
            pieces.push((cur, end));
        }
        let mut kept = true;
        for (from, to) in pieces {
            let at = self.ooo.partition_point(|(s, _)| *s < from);
            // A piece that touches a held block only grows it (the merge below).
            let touches = (at > 0 && self.ooo[at - 1].0 + self.ooo[at - 1].1.len() as u32 == from)
                || self.ooo.get(at).is_some_and(|(s, _)| *s == to);
            if self.ooo.len() >= MAX_OOO_BLOCKS && !touches {
                kept = false;
                continue;
            }
            let bytes = data[(from - seq) as usize..(to - seq) as usize].to_vec();
            self.ooo_bytes += bytes.len();
            self.ooo.insert(at, (from, bytes));
        }
        self.coalesce(first.saturating_sub(1), end);
        kept
    }

    /// Merge touching blocks from index `from` up to the block that starts past `until`.
    fn coalesce(&mut self, from: usize, until: SeqNum) {
        let mut i = from;
        while i + 1 < self.ooo.len() && self.ooo[i].0 <= until {
            let end = self.ooo[i].0 + self.ooo[i].1.len() as u32;
            if end == self.ooo[i + 1].0 {
                let next = self.ooo.remove(i + 1).1;
                self.ooo[i].1.extend_from_slice(&next);
            } else {
                i += 1;
            }
        }
    }

    /// Move held data that now continues the stream at `rcv_nxt` into the readable part;
    /// returns the new RCV.NXT.
    pub(crate) fn take_contiguous(&mut self, mut rcv_nxt: SeqNum) -> SeqNum {
        while let Some((start, _)) = self.ooo.first() {
            if *start > rcv_nxt {
                break;
            }
            let (start, held) = self.ooo.remove(0);
            self.ooo_bytes -= held.len();
            let end = start + held.len() as u32;
            if end > rcv_nxt {
                let skip = (rcv_nxt - start) as usize;
                let take = (held.len() - skip).min(self.window());
                self.ready.extend(&held[skip..skip + take]);
                rcv_nxt += take as u32;
            }
        }
        rcv_nxt
    }

    /// The out-of-order blocks as (left, right) edges, for SACK and for the trace.
    pub(crate) fn out_of_order_blocks(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        self.ooo.iter().map(|(s, d)| (*s, *s + d.len() as u32))
    }

    pub(crate) fn out_of_order_bytes(&self) -> usize {
        self.ooo_bytes
    }

    pub(crate) fn has_out_of_order(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// Separate out-of-order pieces held.
    pub(crate) fn out_of_order_count(&self) -> usize {
        self.ooo.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn holds_at_most_max_pieces_and_says_when_it_dropped() {
        let mut b = RecvBuf::new(1 << 20);
        let base = SeqNum(1000);
        // Pieces of one byte with a gap after each, in reverse order (each insert at the front).
        for k in (0..MAX_OOO_BLOCKS as u32).rev() {
            assert!(b.insert_out_of_order(base + 2 * k + 1, &[k as u8]));
        }
        assert_eq!(b.out_of_order_count(), MAX_OOO_BLOCKS);
        assert!(!b.insert_out_of_order(base + 5000, &[1]), "one piece too many");
        // Growing a piece (no new one) is still taken, and touching pieces merge.
        assert!(b.insert_out_of_order(base + 2, &[9]));
        assert_eq!(b.out_of_order_count(), MAX_OOO_BLOCKS - 1);
        assert_eq!(b.out_of_order_blocks().next(), Some((base + 1, base + 4)));
    }

    #[test]
    fn reassembles_permuted_and_overlapping() {
        let mut b = RecvBuf::new(100);
        let base = SeqNum(u32::MAX - 3); // across the wrap
        let data: Vec<u8> = (0..30).collect();
        b.insert_out_of_order(base + 10, &data[10..20]);
        b.insert_out_of_order(base + 5, &data[5..15]);
        b.insert_out_of_order(base + 25, &data[25..30]);
        assert_eq!(b.out_of_order_blocks().count(), 2);
        b.push(&data[0..3]);
        let nxt = b.take_contiguous(base + 3);
        assert_eq!(nxt, base + 3, "gap at 3..5 still open");
        b.push(&data[3..6]);
        let nxt = b.take_contiguous(base + 6);
        assert_eq!(nxt, base + 20);
        let mut out = [0u8; 64];
        let n = b.read(&mut out);
        assert_eq!(&out[..n], &data[..20]);
    }

    proptest! {
        /// Any permutation of overlapping pieces reassembles to the original stream.
        #[test]
        fn any_arrival_order_reassembles(
            cuts in proptest::collection::vec((0usize..200, 1usize..40), 1..30),
            base in any::<u32>(),
        ) {
            let data: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
            let base = SeqNum(base);
            let mut b = RecvBuf::new(1000);
            let mut nxt = base;
            for (start, len) in cuts {
                let end = (start + len).min(data.len());
                let seq = base + start as u32;
                if seq <= nxt {
                    let skip = (nxt - seq) as usize;
                    if start + skip < end {
                        b.push(&data[start + skip..end]);
                        nxt = base + end as u32;
                    }
                    nxt = b.take_contiguous(nxt);
                } else {
                    b.insert_out_of_order(seq, &data[start..end]);
                }
            }
            // Finally deliver everything in order, as retransmissions would.
            let upto = (nxt - base) as usize;
            b.push(&data[upto..]);
            let nxt = b.take_contiguous(base + data.len() as u32);
            prop_assert_eq!(nxt, base + data.len() as u32);
            let mut out = vec![0u8; 400];
            let n = b.read(&mut out);
            prop_assert_eq!(&out[..n], &data[..]);
        }
    }
}
