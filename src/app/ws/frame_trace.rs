//! Frame headers seen on the wire, for the trace.
//!
//! tungstenite hands us whole messages and answers pings itself, so what it returns cannot
//! show a learner the frames: a fragmented message is several frames, a ping never reaches
//! us. So the trace watches the raw bytes instead, in both directions, and parses just the
//! headers (RFC 6455 §5.2) as they go by. It is independent of tungstenite, so it also shows
//! frames tungstenite would refuse.

use std::fmt;

/// One frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub fin: bool,
    pub opcode: u8,
    pub masked: bool,
    /// Payload length (the header not counted).
    pub len: u64,
}

impl FrameHead {
    pub fn opcode_name(self) -> &'static str {
        match self.opcode {
            0x0 => "CONTINUATION",
            0x1 => "TEXT",
            0x2 => "BINARY",
            0x8 => "CLOSE",
            0x9 => "PING",
            0xA => "PONG",
            _ => "RESERVED",
        }
    }
}

impl fmt::Display for FrameHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] opcode={:#x} len={} fin={}", self.opcode_name(), self.opcode, self.len, u8::from(self.fin))?;
        if self.masked {
            f.write_str(" masked")?;
        }
        Ok(())
    }
}

/// Follows one direction of a connection's byte stream across reads of any size.
#[derive(Debug, Default)]
pub struct FrameTap {
    /// The header being collected (at most 14 bytes: 2 + 8 of length + 4 of mask).
    head: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to pass before the next header.
    skip: u64,
}

impl FrameTap {
    /// Feeds the next bytes of the stream; calls `on_frame` for every header completed.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_frame: impl FnMut(FrameHead)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).map_or(bytes.len(), |s| s.min(bytes.len()));
                bytes = &bytes[n..];
                self.skip -= n as u64;
                continue;
            }
            let need = self.head_len();
            let n = (need - self.have).min(bytes.len());
            self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            // The length is only known once the first two bytes are in, so ask again.
            if self.have == self.head_len() {
                let head = self.parse();
                self.have = 0;
                self.skip = head.len;
                on_frame(head);
            }
        }
    }

    /// How long the current header is, as far as its bytes so far tell.
    fn head_len(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let ext = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.head[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn parse(&self) -> FrameHead {
        let h = &self.head;
        let len = match h[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            n => u64::from(n),
        };
        FrameHead { fin: h[0] & 0x80 != 0, opcode: h[0] & 0x0f, masked: h[1] & 0x80 != 0, len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<FrameHead> {
        let mut tap = FrameTap::default();
        let mut out = Vec::new();
        for c in chunks {
            tap.feed(c, |h| out.push(h));
        }
        out
    }

    #[test]
    fn frames_split_anywhere_are_found() {
        // RFC 6455 §5.7's examples: a masked "Hello", then "Hel" + "lo" fragmented, an
        // unmasked ping, and a 256-byte binary frame with a 16-bit length.
        let mut stream = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        stream.extend([0x01, 0x03, b'H', b'e', b'l', 0x80, 0x02, b'l', b'o']);
        stream.extend([0x89, 0x05, b'H', b'e', b'l', b'l', b'o']);
        stream.extend([0x82, 0x7e, 0x01, 0x00]);
        stream.extend([7u8; 256]);
        let want = vec![
            FrameHead { fin: true, opcode: 1, masked: true, len: 5 },
            FrameHead { fin: false, opcode: 1, masked: false, len: 3 },
            FrameHead { fin: true, opcode: 0, masked: false, len: 2 },
            FrameHead { fin: true, opcode: 9, masked: false, len: 5 },
            FrameHead { fin: true, opcode: 2, masked: false, len: 256 },
        ];
        assert_eq!(all(&[&stream]), want);
        for split in 1..stream.len() {
            assert_eq!(all(&[&stream[..split], &stream[split..]]), want, "split at {split}");
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(all(&bytewise), want);
    }

    #[test]
    fn sixty_four_bit_length() {
        let mut tap = FrameTap::default();
        let mut out = Vec::new();
        tap.feed(&[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4], |h| out.push(h));
        assert_eq!(out, vec![FrameHead { fin: true, opcode: 2, masked: true, len: 65536 }]);
        tap.feed(&vec![0u8; 65536], |h| out.push(h));
        tap.feed(&[0x88, 0x02, 0x03, 0xe8], |h| out.push(h));
        assert_eq!(out[1], FrameHead { fin: true, opcode: 8, masked: false, len: 2 });
        assert_eq!(out[1].to_string(), "[CLOSE] opcode=0x8 len=2 fin=1");
    }
}
