//! The send buffer: bytes the application wrote that the peer has not acknowledged yet.
//! Offset 0 is always SND.UNA's byte, so acknowledging is dropping from the front.

use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) struct SendBuf {
    data: VecDeque<u8>,
    capacity: usize,
}

impl SendBuf {
    pub(crate) fn new(capacity: usize) -> Self {
        SendBuf { data: VecDeque::new(), capacity }
    }

    /// Append as much of `bytes` as fits; returns how much was taken.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.free());
        self.data.extend(&bytes[..n]);
        n
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn free(&self) -> usize {
        self.capacity - self.data.len()
    }

    /// Drop `n` acknowledged bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
        if self.data.is_empty() && self.data.capacity() > self.capacity {
            self.data.shrink_to(self.capacity);
        }
    }

    /// Copy `len` bytes starting at `offset` (from SND.UNA) into `out`.
    pub(crate) fn copy_range(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        let (a, b) = self.data.as_slices();
        let end = offset + len;
        if offset < a.len() {
            out.extend_from_slice(&a[offset..end.min(a.len())]);
        }
        if end > a.len() {
            let from = offset.saturating_sub(a.len());
            out.extend_from_slice(&b[from..end - a.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_copies_across_the_ring_seam() {
        let mut b = SendBuf::new(8);
        assert_eq!(b.write(b"abcdefghij"), 8);
        b.consume(5);
        assert_eq!(b.write(b"klmno"), 5);
        let mut out = Vec::new();
        b.copy_range(1, 6, &mut out);
        assert_eq!(out, b"ghklmn");
        assert_eq!(b.free(), 0);
    }
}
