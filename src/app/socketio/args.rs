//! An event's (or an ack's) arguments: JSON values, binary ones among them.
//!
//! Socket.IO sends binary data beside the JSON, not inside it: each binary value becomes
//! `{"_placeholder":true,"num":N}` in the JSON, and its bytes travel as the N-th binary
//! message after the packet. [`Args`] keeps that shape: `values` with the placeholders in
//! place, and `attachments` with the bytes, so what a handler sees is what was on the wire
//! and re-emitting received arguments sends the same bytes on.

use serde_json::{json, Value};

/// The arguments of one event or ack, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    values: Vec<Value>,
    attachments: Vec<Vec<u8>>,
}

static NULL: Value = Value::Null;

impl Args {
    /// No arguments: add them with [`Args::arg`] and [`Args::bytes`].
    pub fn new() -> Args {
        Args::default()
    }

    /// JSON arguments, no binary ones.
    pub fn from_values(values: Vec<Value>) -> Args {
        Args { values, attachments: Vec::new() }
    }

    /// Arguments as received: `values` may hold placeholders for `attachments`.
    pub(super) fn from_parts(values: Vec<Value>, attachments: Vec<Vec<u8>>) -> Args {
        Args { values, attachments }
    }

    /// One more JSON argument.
    pub fn arg(mut self, v: impl Into<Value>) -> Args {
        self.values.push(v.into());
        self
    }

    /// One more binary argument (a `Buffer` / `ArrayBuffer` in JavaScript, `bytes` in Python).
    pub fn bytes(mut self, data: impl Into<Vec<u8>>) -> Args {
        let placeholder = self.attach(data);
        self.values.push(placeholder);
        self
    }

    /// Adds binary data to send and returns its placeholder, to put anywhere inside an
    /// argument (`{"name": "a.png", "data": <placeholder>}`).
    pub fn attach(&mut self, data: impl Into<Vec<u8>>) -> Value {
        self.attachments.push(data.into());
        json!({"_placeholder": true, "num": self.attachments.len() - 1})
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// All arguments as JSON (binary ones as placeholders).
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Argument `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.values.get(i)
    }

    /// The first argument, `Null` if there is none (the common one-argument event).
    pub fn first(&self) -> &Value {
        self.values.first().unwrap_or(&NULL)
    }

    /// The bytes of argument `i`, if it is a binary one.
    pub fn binary(&self, i: usize) -> Option<&[u8]> {
        self.values.get(i).and_then(|v| self.bytes_of(v))
    }

    /// The bytes a placeholder (found anywhere in the arguments) stands for.
    pub fn bytes_of(&self, placeholder: &Value) -> Option<&[u8]> {
        let num = placeholder_num(placeholder)?;
        self.attachments.get(usize::try_from(num).ok()?).map(Vec::as_slice)
    }

    /// The binary attachments, in order.
    pub fn attachments(&self) -> &[Vec<u8>] {
        &self.attachments
    }

    pub fn into_parts(self) -> (Vec<Value>, Vec<Vec<u8>>) {
        (self.values, self.attachments)
    }
}

/// `N` if `v` is `{"_placeholder":true,"num":N}`.
pub(super) fn placeholder_num(v: &Value) -> Option<u64> {
    let o = v.as_object()?;
    (o.get("_placeholder") == Some(&Value::Bool(true))).then(|| o.get("num").and_then(Value::as_u64))?
}

/// Whether every placeholder in `v` names one of `n` attachments (socket.io-parser refuses
/// a packet otherwise: "illegal attachments").
pub(super) fn placeholders_valid(v: &Value, n: usize) -> bool {
    match v {
        Value::Object(o) if o.get("_placeholder") == Some(&Value::Bool(true)) => {
            placeholder_num(v).is_some_and(|num| num < n as u64)
        }
        Value::Object(o) => o.values().all(|x| placeholders_valid(x, n)),
        Value::Array(a) => a.iter().all(|x| placeholders_valid(x, n)),
        _ => true,
    }
}

/// One JSON argument.
impl From<Value> for Args {
    fn from(v: Value) -> Args {
        Args::new().arg(v)
    }
}

impl From<&str> for Args {
    fn from(s: &str) -> Args {
        Args::new().arg(s)
    }
}

impl From<String> for Args {
    fn from(s: String) -> Args {
        Args::new().arg(s)
    }
}

/// One binary argument.
impl From<Vec<u8>> for Args {
    fn from(b: Vec<u8>) -> Args {
        Args::new().bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_arguments_are_placeholders_with_attachments() {
        let mut a = Args::new().arg(1).bytes(vec![1, 2, 3]);
        let nested = a.attach(b"xyz".to_vec());
        let a = a.arg(json!({"file": nested}));
        assert_eq!(
            a.values(),
            &[json!(1), json!({"_placeholder":true,"num":0}), json!({"file":{"_placeholder":true,"num":1}})]
        );
        assert_eq!(a.binary(1), Some(&[1u8, 2, 3][..]));
        assert_eq!(a.binary(0), None);
        assert_eq!(a.get(2).and_then(|f| a.bytes_of(&f["file"])), Some(&b"xyz"[..]));
        assert_eq!(Args::new().first(), &Value::Null);
        assert!(placeholders_valid(&Value::Array(a.values().to_vec()), 2));
        assert!(!placeholders_valid(&Value::Array(a.values().to_vec()), 1));
        assert!(!placeholders_valid(&json!([{"_placeholder":true,"num":"0"}]), 1));
    }
}
