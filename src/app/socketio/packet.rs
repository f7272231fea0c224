//! The two wire formats, as text: Engine.IO v4 packets (one per WebSocket message, or
//! `\x1e`-separated in a polling payload) and the Socket.IO v5 packets carried inside
//! Engine.IO MESSAGE packets.
//!
//! ```text
//! Engine.IO:  <type digit><data>            2 = PING, 3 = PONG, 4 = MESSAGE, …
//! Socket.IO:  <type digit>[<n>-][/<nsp>,][<ack id>][<JSON>]
//!             42["chat message","hi"]       EVENT on "/"
//!             40/chat,{"sid":"…"}           CONNECT on "/chat"
//!             4317["ok"]                    ACK for emit id 17
//! ```
//!
//! Decoding never panics: anything that does not fit the grammar, or whose JSON does not
//! have the shape its type needs (an EVENT's array starting with a name), is an error the
//! caller turns into a close.

use serde_json::Value;

pub use crate::app::engineio::packet::{decode_eio, encode_eio, DecodeError, EioType};

/// Socket.IO packet types (protocol v5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioType {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    /// An EVENT with binary arguments: placeholders in the JSON, the bytes in the next
    /// `N` Engine.IO binary messages (`N-` after the type digit).
    BinaryEvent,
    BinaryAck,
}

impl SioType {
    pub fn digit(self) -> char {
        match self {
            SioType::Connect => '0',
            SioType::Disconnect => '1',
            SioType::Event => '2',
            SioType::Ack => '3',
            SioType::ConnectError => '4',
            SioType::BinaryEvent => '5',
            SioType::BinaryAck => '6',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SioType::Connect => "CONNECT",
            SioType::Disconnect => "DISCONNECT",
            SioType::Event => "EVENT",
            SioType::Ack => "ACK",
            SioType::ConnectError => "CONNECT_ERROR",
            SioType::BinaryEvent => "BINARY_EVENT",
            SioType::BinaryAck => "BINARY_ACK",
        }
    }

    fn from_digit(c: char) -> Option<SioType> {
        Some(match c {
            '0' => SioType::Connect,
            '1' => SioType::Disconnect,
            '2' => SioType::Event,
            '3' => SioType::Ack,
            '4' => SioType::ConnectError,
            '5' => SioType::BinaryEvent,
            '6' => SioType::BinaryAck,
            _ => return None,
        })
    }
}

/// One Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    pub kind: SioType,
    /// `/` when the packet names none.
    pub nsp: String,
    /// Binary attachment count (BINARY_* only).
    pub attachments: Option<u32>,
    pub id: Option<u64>,
    pub data: Option<Value>,
}

/// Ack ids are counters; more digits than this is not a counter but an attack on the parser.
const MAX_ID_DIGITS: usize = 15;
/// Namespaces are short names; this bounds what one packet can make us allocate for it.
const MAX_NSP_LEN: usize = 256;

impl SioPacket {
    pub fn new(kind: SioType, nsp: &str, id: Option<u64>, data: Option<Value>) -> Self {
        SioPacket { kind, nsp: nsp.to_owned(), attachments: None, id, data }
    }

    /// `42["name",args…]` for an EVENT: the name, if this is one.
    pub fn event_name(&self) -> Option<&str> {
        match (&self.kind, &self.data) {
            (SioType::Event | SioType::BinaryEvent, Some(Value::Array(a))) => a.first().and_then(Value::as_str),
            _ => None,
        }
    }

    /// The arguments: after the name for an EVENT, all of them for an ACK.
    pub fn args(&self) -> &[Value] {
        match (&self.kind, &self.data) {
            (SioType::Event | SioType::BinaryEvent, Some(Value::Array(a))) => a.get(1..).unwrap_or(&[]),
            (SioType::Ack | SioType::BinaryAck, Some(Value::Array(a))) => a,
            _ => &[],
        }
    }

    pub fn encode(&self) -> String {
        let mut s = String::new();
        s.push(self.kind.digit());
        if let Some(n) = self.attachments {
            s.push_str(&format!("{n}-"));
        }
        if self.nsp != "/" {
            s.push_str(&self.nsp);
            s.push(',');
        }
        if let Some(id) = self.id {
            s.push_str(&id.to_string());
        }
        if let Some(d) = &self.data {
            s.push_str(&d.to_string());
        }
        s
    }

    pub fn decode(s: &str) -> Result<SioPacket, DecodeError> {
        let err = |m: &str| Err(DecodeError(m.to_owned()));
        let mut rest = s;
        let kind = match rest.chars().next().map(SioType::from_digit) {
            Some(Some(k)) => k,
            Some(None) => return err("unknown Socket.IO packet type"),
            None => return err("empty Socket.IO packet"),
        };
        rest = &rest[1..];

        let mut attachments = None;
        if matches!(kind, SioType::BinaryEvent | SioType::BinaryAck) {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 6 || rest.as_bytes().get(digits) != Some(&b'-') {
                return err("a binary packet needs an attachment count like `1-`");
            }
            attachments = rest[..digits].parse().ok();
            rest = &rest[digits + 1..];
        }

        let mut nsp = "/".to_owned();
        if rest.starts_with('/') {
            let end = rest.find(',').unwrap_or(rest.len());
            if end > MAX_NSP_LEN {
                return err("namespace too long");
            }
            nsp = rest[..end].to_owned();
            rest = rest.get(end + 1..).unwrap_or("");
        }

        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut id = None;
        if digits > 0 {
            if digits > MAX_ID_DIGITS {
                return err("ack id too long");
            }
            id = rest[..digits].parse().ok();
            rest = &rest[digits..];
        }

        let data = if rest.is_empty() {
            None
        } else {
            match serde_json::from_str::<Value>(rest) {
                Ok(v) => Some(v),
                Err(e) => return Err(DecodeError(format!("bad JSON: {e}"))),
            }
        };

        // Each type's shape (socket.io-parser's `isPayloadValid`).
        let ok = match kind {
            SioType::Connect => matches!(data, None | Some(Value::Object(_))),
            SioType::Disconnect => data.is_none(),
            SioType::ConnectError => matches!(data, Some(Value::Object(_) | Value::String(_))),
            SioType::Event | SioType::BinaryEvent => {
                matches!(&data, Some(Value::Array(a)) if a.first().is_some_and(Value::is_string))
            }
            SioType::Ack | SioType::BinaryAck => id.is_some() && matches!(data, Some(Value::Array(_))),
        };
        if !ok {
            return Err(DecodeError(format!("invalid payload for {}", kind.name())));
        }
        Ok(SioPacket { kind, nsp, attachments, id, data })
    }
}

/// One line for `--trace`: `EVENT chat message ["hi"]`, `ACK id=3 ["ok"]`, `CONNECT /chat`.
pub fn describe(text: &str) -> String {
    match decode_eio(text) {
        Err(e) => format!("malformed ({e})"),
        Ok((EioType::Message, body)) => match SioPacket::decode(body) {
            Ok(p) => {
                let mut s = p.kind.name().to_string();
                if p.nsp != "/" {
                    s.push_str(&format!(" {}", p.nsp));
                }
                if let Some(name) = p.event_name() {
                    s.push_str(&format!(" {name}"));
                }
                if let Some(id) = p.id {
                    s.push_str(&format!(" id={id}"));
                }
                match p.kind {
                    SioType::Event | SioType::Ack | SioType::BinaryEvent | SioType::BinaryAck => {
                        s.push_str(&format!(" {}", Value::Array(p.args().to_vec())));
                    }
                    _ => {
                        if let Some(d) = &p.data {
                            s.push_str(&format!(" {d}"));
                        }
                    }
                }
                s
            }
            Err(e) => format!("MESSAGE malformed Socket.IO packet ({e})"),
        },
        Ok((t, "")) => t.name().to_string(),
        Ok((t, data)) => format!("{} {data}", t.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(text: &str, expect: SioPacket) {
        let p = SioPacket::decode(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(p, expect, "{text}");
        assert_eq!(p.encode(), text);
    }

    #[test]
    fn every_packet_type_round_trips() {
        round_trip("0", SioPacket::new(SioType::Connect, "/", None, None));
        round_trip(r#"0{"token":"x"}"#, SioPacket::new(SioType::Connect, "/", None, Some(json!({"token":"x"}))));
        round_trip("1", SioPacket::new(SioType::Disconnect, "/", None, None));
        round_trip(
            r#"2["chat message","hi"]"#,
            SioPacket::new(SioType::Event, "/", None, Some(json!(["chat message", "hi"]))),
        );
        round_trip(r#"312["ok",1]"#, SioPacket::new(SioType::Ack, "/", Some(12), Some(json!(["ok", 1]))));
        round_trip(
            r#"4{"message":"Invalid namespace"}"#,
            SioPacket::new(SioType::ConnectError, "/", None, Some(json!({"message":"Invalid namespace"}))),
        );
        let mut bin =
            SioPacket::new(SioType::BinaryEvent, "/", None, Some(json!(["up", {"_placeholder":true,"num":0}])));
        bin.attachments = Some(1);
        round_trip(r#"51-["up",{"_placeholder":true,"num":0}]"#, bin);
        let mut back = SioPacket::new(SioType::BinaryAck, "/x", Some(4), Some(json!([{"_placeholder":true,"num":0}])));
        back.attachments = Some(1);
        round_trip(r#"61-/x,4[{"_placeholder":true,"num":0}]"#, back);
    }

    #[test]
    fn namespaces_and_ack_ids() {
        round_trip("0/chat,", SioPacket::new(SioType::Connect, "/chat", None, None));
        round_trip(r#"0/chat,{"sid":"a"}"#, SioPacket::new(SioType::Connect, "/chat", None, Some(json!({"sid":"a"}))));
        round_trip(
            r#"2/chat,7["echo",{"a":1}]"#,
            SioPacket::new(SioType::Event, "/chat", Some(7), Some(json!(["echo", {"a":1}]))),
        );
        round_trip("1/chat,", SioPacket::new(SioType::Disconnect, "/chat", None, None));
        // A namespace without the trailing comma (older clients) still decodes.
        assert_eq!(SioPacket::decode("1/chat").map(|p| p.nsp), Ok("/chat".to_string()));
        let p = SioPacket::decode(r#"2123456789["e"]"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.id, p.event_name(), p.args().len()), (Some(123456789), Some("e"), 0));
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        for bad in [
            "",
            "9",
            "x",
            "é",
            "2",
            "2[",
            r#"2{"a":1}"#,
            "2[]",
            "2[1]",
            "3[1]",
            "31",
            r#"1{"a":1}"#,
            "0[1]",
            "4",
            "5[\"x\"]",
            "5x-[\"x\"]",
            "21234567890123456[\"x\"]",
            "2/chat,[\"e\"",
            "2\"str\"",
        ] {
            assert!(SioPacket::decode(bad).is_err(), "{bad:?} decoded");
        }
        let long_nsp = format!("0/{},", "n".repeat(300));
        assert!(SioPacket::decode(&long_nsp).is_err());
    }

    #[test]
    fn trace_lines_read_like_the_protocol() {
        assert_eq!(describe(r#"42["chat message","hi"]"#), r#"EVENT chat message ["hi"]"#);
        assert_eq!(describe(r#"43/chat,3["ok"]"#), r#"ACK /chat id=3 ["ok"]"#);
        assert_eq!(describe("40/chat,"), "CONNECT /chat");
        assert_eq!(describe("2"), "PING");
        assert_eq!(describe("9"), "malformed (unknown Engine.IO packet type '9')");
    }
}
