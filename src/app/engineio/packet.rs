//! Engine.IO v4's wire format: one packet per WebSocket message (text: a type digit and its
//! data; binary: the bytes of a MESSAGE as they are), or, over HTTP long-polling, packets
//! joined by the record separator `\x1e`, a binary one as `b` and its base64.
//!
//! ```text
//! 0{"sid":…}  OPEN      1  CLOSE     2  PING      3  PONG
//! 4hello      MESSAGE   5  UPGRADE   6  NOOP      bAQIDBA==  binary MESSAGE 01 02 03 04 (polling)
//! ```

use std::fmt;

/// Engine.IO packet types (protocol v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioType {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Upgrade,
    Noop,
}

impl EioType {
    pub fn digit(self) -> char {
        match self {
            EioType::Open => '0',
            EioType::Close => '1',
            EioType::Ping => '2',
            EioType::Pong => '3',
            EioType::Message => '4',
            EioType::Upgrade => '5',
            EioType::Noop => '6',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EioType::Open => "OPEN",
            EioType::Close => "CLOSE",
            EioType::Ping => "PING",
            EioType::Pong => "PONG",
            EioType::Message => "MESSAGE",
            EioType::Upgrade => "UPGRADE",
            EioType::Noop => "NOOP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Splits one text Engine.IO packet into its type and data.
pub fn decode_eio(s: &str) -> Result<(EioType, &str), DecodeError> {
    let mut chars = s.chars();
    let t = match chars.next() {
        Some('0') => EioType::Open,
        Some('1') => EioType::Close,
        Some('2') => EioType::Ping,
        Some('3') => EioType::Pong,
        Some('4') => EioType::Message,
        Some('5') => EioType::Upgrade,
        Some('6') => EioType::Noop,
        Some(c) => return Err(DecodeError(format!("unknown Engine.IO packet type {c:?}"))),
        None => return Err(DecodeError("empty Engine.IO packet".into())),
    };
    Ok((t, chars.as_str()))
}

pub fn encode_eio(t: EioType, data: &str) -> String {
    let mut s = String::with_capacity(1 + data.len());
    s.push(t.digit());
    s.push_str(data);
    s
}

/// One packet as it travels: text (type digit first) or a binary MESSAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    Text(String),
    Binary(Vec<u8>),
}

impl Wire {
    /// Its length in a polling payload.
    pub fn polling_len(&self) -> usize {
        match self {
            Wire::Text(t) => t.len(),
            Wire::Binary(b) => 1 + b.len().div_ceil(3) * 4,
        }
    }
}

/// A polling payload: the packets joined by `\x1e`, binary ones as `b` + base64.
pub fn encode_payload(packets: &[Wire]) -> String {
    let mut out = String::new();
    for (i, p) in packets.iter().enumerate() {
        if i > 0 {
            out.push('\x1e');
        }
        match p {
            Wire::Text(t) => out.push_str(t),
            Wire::Binary(b) => {
                out.push('b');
                base64_encode(b, &mut out);
            }
        }
    }
    out
}

/// Splits a polling payload into packets; a `b` packet whose base64 is broken is an error.
pub fn decode_payload(body: &str) -> Result<Vec<Wire>, DecodeError> {
    body.split('\x1e')
        .map(|p| match p.strip_prefix('b') {
            Some(b64) => base64_decode(b64).map(Wire::Binary).ok_or_else(|| DecodeError("bad base64".into())),
            None => Ok(Wire::Text(p.to_owned())),
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), appended to `out`.
pub fn base64_encode(data: &[u8], out: &mut String) {
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

/// Decodes standard base64; padding optional. `None` for anything else.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // One leftover character carries fewer than 8 bits: not a valid encoding.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_io_packets() {
        assert_eq!(decode_eio("2"), Ok((EioType::Ping, "")));
        assert_eq!(decode_eio("3probe"), Ok((EioType::Pong, "probe")));
        assert_eq!(decode_eio(r#"42["a"]"#), Ok((EioType::Message, r#"2["a"]"#)));
        assert_eq!(decode_eio("6"), Ok((EioType::Noop, "")));
        assert!(decode_eio("").is_err());
        assert!(decode_eio("7").is_err());
        assert!(decode_eio("é").is_err());
        assert_eq!(encode_eio(EioType::Message, "0"), "40");
    }

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        for (raw, enc) in [
            (&b""[..], ""),
            (b"\x01\x02\x03\x04", "AQIDBA=="),
            (b"ab", "YWI="),
            (b"abc", "YWJj"),
            (b"\xff\xfe", "//4="),
        ] {
            let mut s = String::new();
            base64_encode(raw, &mut s);
            assert_eq!(s, enc);
            assert_eq!(base64_decode(enc).as_deref(), Some(raw));
        }
        assert_eq!(base64_decode("AQIDBA").as_deref(), Some(&[1u8, 2, 3, 4][..]));
        for bad in ["A", "AQ!D", "é", "AQIDB"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn polling_payloads() {
        let p = decode_payload("4hello\x1ebAQIDBA==").expect("valid");
        assert_eq!(p, vec![Wire::Text("4hello".into()), Wire::Binary(vec![1, 2, 3, 4])]);
        assert_eq!(encode_payload(&p), "4hello\x1ebAQIDBA==");
        assert_eq!(p[1].polling_len(), "bAQIDBA==".len());
        assert!(decode_payload("4a\x1eb!!").is_err());
    }
}
