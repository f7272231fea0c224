//! One frame's dissection as lines that know which bytes of the frame they describe.
//!
//! `synack explain` prints the lines; the live ladder and `synack ladder --html` show them as
//! layers beside the raw bytes and highlight a clicked field's bytes. Both come from the same
//! calls in [`explain`](super::explain): one decoder, two renderings.

use std::fmt;
use std::ops::Range;

use std::time::Duration;

use serde_json::{json, Value};

use super::capture::{Capture, FileFormat, Frame, LINKTYPE_RAW};
use super::conversation;
use super::explain::dissect_frame;

/// Dissects packet `index` of `packets` (raw IP packets, with their times), read as a
/// capture of just these: relative numbers and findings (retransmission, duplicate ACK)
/// come from the packets around it, as `synack explain` finds them in a file.
pub(crate) fn dissect_packets(packets: &[(Duration, &[u8])], index: usize) -> Option<Value> {
    let frames = packets
        .iter()
        .enumerate()
        .map(|(i, (t, b))| Frame {
            number: i + 1,
            timestamp: *t,
            linktype: LINKTYPE_RAW,
            orig_len: u32::try_from(b.len()).unwrap_or(u32::MAX),
            data: b.to_vec(),
        })
        .collect();
    let cap = Capture { format: FileFormat::Pcap { nanos: true }, frames, warnings: Vec::new() };
    let analysis = conversation::analyze(&cap);
    let frame = cap.frames.get(index)?;
    let mut d = Dissection::new();
    dissect_frame(&cap, &analysis, frame, &mut d);
    Some(d.to_json(&frame.data))
}

/// One printed line, with the frame bytes it describes when it describes some.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub text: String,
    /// Set for `name: value` field lines.
    pub name: Option<String>,
    pub bytes: Option<Range<usize>>,
}

/// The lines of one frame's dissection, written with `write!`/`writeln!`.
#[derive(Debug, Default)]
pub(crate) struct Dissection {
    pub lines: Vec<Line>,
    pending: String,
    next_bytes: Option<Range<usize>>,
    next_name: Option<String>,
}

impl Dissection {
    pub(crate) fn new() -> Self {
        Dissection::default()
    }

    /// The next line written describes these frame bytes.
    pub(crate) fn at(&mut self, bytes: Range<usize>) -> &mut Self {
        self.next_bytes = Some(bytes);
        self
    }

    /// The next line written is the field `name`.
    pub(crate) fn named(&mut self, name: &str) -> &mut Self {
        self.next_name = Some(name.to_string());
        self
    }

    /// The text `synack explain` prints.
    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(&l.text);
            s.push('\n');
        }
        s.push_str(&self.pending);
        s
    }

    /// Layers (a line starting in column one opens one) with their lines and byte ranges,
    /// and the frame's bytes in hex, for the browser views.
    pub(crate) fn to_json(&self, frame: &[u8]) -> Value {
        let mut layers: Vec<Value> = Vec::new();
        for l in &self.lines {
            let range = l.bytes.as_ref().map(|r| json!([r.start, r.end]));
            if !l.text.starts_with(' ') {
                layers.push(json!({"title": l.text, "bytes": range, "lines": []}));
                continue;
            }
            if layers.is_empty() {
                layers.push(json!({"title": "", "bytes": null, "lines": []}));
            }
            if let Some(lines) = layers.last_mut().and_then(|v| v["lines"].as_array_mut()) {
                lines.push(json!({"text": l.text.trim_start(), "name": l.name, "bytes": range}));
            }
        }
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        json!({"layers": layers, "hex": hex})
    }
}

impl fmt::Write for Dissection {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find('\n') {
            self.pending.push_str(&rest[..i]);
            let text = std::mem::take(&mut self.pending);
            self.lines.push(Line { text, name: self.next_name.take(), bytes: self.next_bytes.take() });
            rest = &rest[i + 1..];
        }
        self.pending.push_str(rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn lines_keep_their_ranges_and_text_is_unchanged() {
        let mut d = Dissection::new();
        d.at(0..20);
        let _ = writeln!(d, "Internet Protocol Version 4 (IPv4)");
        d.at(9..10).named("Protocol");
        let _ = writeln!(d, "    Protocol: 6 (TCP)");
        let _ = writeln!(d, "    ! a problem");
        assert_eq!(d.text(), "Internet Protocol Version 4 (IPv4)\n    Protocol: 6 (TCP)\n    ! a problem\n");
        let v = d.to_json(&[0x45, 0]);
        assert_eq!(v["hex"], "4500");
        assert_eq!(v["layers"][0]["bytes"], json!([0, 20]));
        assert_eq!(v["layers"][0]["lines"][0]["bytes"], json!([9, 10]));
        assert_eq!(v["layers"][0]["lines"][0]["name"], "Protocol");
        assert!(v["layers"][0]["lines"][1]["bytes"].is_null());
    }
}
