//! Application-layer decoding of TCP payloads: HTTP/1.x, WebSocket frames (RFC 6455) and
//! Engine.IO v4 / Socket.IO v5 packets, the protocols synack's own demo speaks.
//!
//! Decoding is per segment, without reassembly: a message split across segments is shown as
//! far as this segment goes, and says so. Nothing here can panic on hostile bytes.

/// A titled block of decoded lines for the explain output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    /// Heading, e.g. "Hypertext Transfer Protocol (HTTP)".
    pub title: String,
    /// Field lines (without indentation).
    pub lines: Vec<String>,
}

const METHODS: [&str; 9] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"];

/// Whether the bytes start like an HTTP/1.x request or response.
pub(crate) fn looks_like_http(p: &[u8]) -> bool {
    if p.starts_with(b"HTTP/1.") {
        return true;
    }
    METHODS.iter().any(|m| p.len() > m.len() && p.starts_with(m.as_bytes()) && p[m.len()] == b' ')
}

/// Whether this is an HTTP `101 Switching Protocols` answer to a WebSocket upgrade, after which
/// the connection carries WebSocket frames.
pub(crate) fn is_upgrade_response(p: &[u8]) -> bool {
    if !(p.starts_with(b"HTTP/1.1 101") || p.starts_with(b"HTTP/1.0 101")) {
        return false;
    }
    let Some(msg) = parse_http(p) else {
        return false;
    };
    msg.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("upgrade") && v.trim().eq_ignore_ascii_case("websocket"))
}

/// A one-line summary for the ladder, or `None` when the payload is nothing we recognize.
pub(crate) fn summarize(p: &[u8], websocket: bool) -> Option<String> {
    if looks_like_http(p) {
        let msg = parse_http(p)?;
        let mut s = msg.start_line.clone();
        if let Some(sio) = msg.engineio_body().and_then(|b| engineio_summary(&b)) {
            s.push_str(&format!(" — {sio}"));
        }
        return Some(s);
    }
    if websocket {
        let frames = parse_ws_frames(p);
        let parts: Vec<String> = frames.iter().map(|f| f.summary()).collect();
        if !parts.is_empty() {
            return Some(parts.join("; "));
        }
    }
    None
}

/// Full decoding for explain: HTTP, WebSocket (+ Socket.IO), or a hex dump.
pub(crate) fn describe(p: &[u8], websocket: bool) -> Vec<Section> {
    if p.is_empty() {
        return Vec::new();
    }
    if looks_like_http(p) {
        if let Some(msg) = parse_http(p) {
            return msg.describe();
        }
    }
    if websocket {
        let frames = parse_ws_frames(p);
        if !frames.is_empty() {
            return frames.iter().map(|f| f.describe()).collect();
        }
    }
    vec![Section { title: format!("Data ({} bytes)", p.len()), lines: hex_dump(p) }]
}

/// Classic 16-bytes-per-line hex dump with offsets and printable ASCII.
pub(crate) fn hex_dump(p: &[u8]) -> Vec<String> {
    p.chunks(16)
        .enumerate()
        .map(|(i, c)| {
            let hex: Vec<String> = c.iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String = c.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
            format!("{:04x}  {:<47}  {}", i * 16, hex.join(" "), ascii)
        })
        .collect()
}

/// Printable preview of bytes: text in quotes (escaped, cut at `max` chars), else hex.
pub(crate) fn preview(p: &[u8], max: usize) -> String {
    match std::str::from_utf8(p) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') => {
            // Quotes stay as they are (JSON reads better that way); only line breaks are shown.
            let cut: String = s
                .chars()
                .take(max)
                .map(|c| match c {
                    '\n' => "\\n".to_string(),
                    '\r' => "\\r".to_string(),
                    '\t' => "\\t".to_string(),
                    c => c.to_string(),
                })
                .collect();
            let more = if s.chars().count() > max { "…" } else { "" };
            format!("\"{cut}\"{more}")
        }
        _ => {
            let hex: Vec<String> = p.iter().take(max / 2).map(|b| format!("{b:02x}")).collect();
            let more = if p.len() > max / 2 { " …" } else { "" };
            format!("hex {}{more}", hex.join(" "))
        }
    }
}

/// An HTTP/1.x message head (and whatever body is in this segment).
#[derive(Debug, Clone)]
struct HttpMessage {
    start_line: String,
    headers: Vec<(String, String)>,
    /// The head was complete (blank line found) in this segment.
    complete_head: bool,
    body: Vec<u8>,
}

fn parse_http(p: &[u8]) -> Option<HttpMessage> {
    let (head, body, complete_head) = match find(p, b"\r\n\r\n") {
        Some(i) => (&p[..i], p.get(i + 4..).unwrap_or_default(), true),
        None => (p, &[][..], false),
    };
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let start_line = lines.next()?.to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.trim().to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    Some(HttpMessage { start_line, headers, complete_head, body: body.to_vec() })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl HttpMessage {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as Engine.IO long-polling payload, when the request targets /socket.io/.
    fn engineio_body(&self) -> Option<String> {
        let is_eio = self.start_line.contains("/socket.io/") || self.start_line.contains("/engine.io/");
        if !is_eio || self.body.is_empty() {
            return None;
        }
        String::from_utf8(self.body.clone()).ok()
    }

    fn describe(&self) -> Vec<Section> {
        let mut lines = Vec::new();
        if self.start_line.starts_with("HTTP/") {
            let mut parts = self.start_line.splitn(3, ' ');
            let version = parts.next().unwrap_or_default();
            let code = parts.next().unwrap_or_default();
            let reason = parts.next().unwrap_or_default();
            lines.push(format!("Status line: {}", self.start_line));
            lines.push(format!("  Version: {version}"));
            lines.push(format!("  Status code: {code} ({})", status_meaning(code)));
            lines.push(format!("  Reason phrase: {reason}"));
        } else {
            let mut parts = self.start_line.splitn(3, ' ');
            lines.push(format!("Request line: {}", self.start_line));
            lines.push(format!("  Method: {}", parts.next().unwrap_or_default()));
            lines.push(format!("  Target: {}", parts.next().unwrap_or_default()));
            lines.push(format!("  Version: {}", parts.next().unwrap_or_default()));
        }
        for (n, v) in &self.headers {
            lines.push(format!("Header: {n}: {v}"));
        }
        if !self.complete_head {
            lines.push("(the header block continues in a later segment)".to_string());
        } else {
            lines.push("(blank line: end of headers)".to_string());
        }
        if let Some(v) = self.header("upgrade") {
            if self.start_line.starts_with("HTTP/") {
                if self.start_line.split(' ').nth(1) == Some("101") {
                    lines.push(format!("Note: the server agrees; after this head the connection speaks {v}"));
                }
            } else {
                lines.push(format!("Note: asks to switch this connection to the {v} protocol"));
            }
        }
        if let Some(key) = self.header("sec-websocket-accept") {
            lines.push(format!("Note: Sec-WebSocket-Accept {key} proves the server read the client's key"));
        }
        if !self.body.is_empty() {
            let declared = self.header("content-length").and_then(|v| v.parse::<usize>().ok());
            let mut l = format!("Body: {} bytes in this segment", self.body.len());
            if let Some(d) = declared {
                l.push_str(&format!(" (Content-Length: {d})"));
            }
            lines.push(l);
            lines.push(format!("  {}", preview(&self.body, 80)));
        }
        let mut out = vec![Section { title: "Hypertext Transfer Protocol (HTTP)".to_string(), lines }];
        if let Some(body) = self.engineio_body() {
            out.push(Section { title: "Engine.IO (long-polling payload)".to_string(), lines: engineio_lines(&body) });
        }
        out
    }
}

fn status_meaning(code: &str) -> &'static str {
    match code {
        "101" => "Switching Protocols",
        "200" => "OK",
        "204" => "No Content",
        "301" | "302" | "307" | "308" => "redirect",
        "304" => "Not Modified",
        "400" => "Bad Request",
        "404" => "Not Found",
        "500" => "Internal Server Error",
        c if c.starts_with('1') => "informational",
        c if c.starts_with('2') => "success",
        c if c.starts_with('3') => "redirection",
        c if c.starts_with('4') => "client error",
        c if c.starts_with('5') => "server error",
        _ => "unknown",
    }
}

/// One WebSocket frame (possibly only the start of it, if it continues in later segments).
#[derive(Debug, Clone)]
struct WsFrame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload_len: u64,
    header_len: usize,
    /// Unmasked payload bytes present in this segment.
    data: Vec<u8>,
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        0 => "continuation",
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => "reserved",
    }
}

/// Splits a segment into WebSocket frames; an incomplete header ends the list.
fn parse_ws_frames(mut p: &[u8]) -> Vec<WsFrame> {
    let mut out = Vec::new();
    while p.len() >= 2 {
        let b0 = p[0];
        let b1 = p[1];
        let mut at = 2;
        let mut len = u64::from(b1 & 0x7f);
        if len == 126 {
            let Some(x) = p.get(2..4) else { break };
            len = u64::from(u16::from_be_bytes([x[0], x[1]]));
            at = 4;
        } else if len == 127 {
            let Some(x) = p.get(2..10) else { break };
            let mut a = [0u8; 8];
            a.copy_from_slice(x);
            len = u64::from_be_bytes(a);
            at = 10;
        }
        let mask = if b1 & 0x80 != 0 {
            let Some(k) = p.get(at..at + 4) else { break };
            at += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        let avail = p.len() - at;
        let take = usize::try_from(len).unwrap_or(usize::MAX).min(avail);
        let mut data = p[at..at + take].to_vec();
        if let Some(k) = mask {
            for (i, b) in data.iter_mut().enumerate() {
                *b ^= k[i % 4];
            }
        }
        out.push(WsFrame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0x0f,
            mask,
            payload_len: len,
            header_len: at,
            data,
        });
        p = &p[at + take..];
    }
    out
}

impl WsFrame {
    fn complete(&self) -> bool {
        self.data.len() as u64 == self.payload_len
    }

    fn summary(&self) -> String {
        let mut s = format!("WebSocket {}", opcode_name(self.opcode));
        if !self.fin {
            s.push_str(" (more fragments)");
        }
        match self.opcode {
            1 => {
                let text = String::from_utf8_lossy(&self.data);
                match socketio_summary(&text) {
                    Some(sio) => s.push_str(&format!(" {sio}")),
                    None => s.push_str(&format!(" {}", preview(&self.data, 40))),
                }
            }
            8 => {
                if let Some(c) = self.data.get(0..2) {
                    s.push_str(&format!(" code {}", u16::from_be_bytes([c[0], c[1]])));
                }
            }
            _ => s.push_str(&format!(" {} bytes", self.payload_len)),
        }
        if !self.complete() {
            s.push_str(" (continues)");
        }
        s
    }

    fn describe(&self) -> Section {
        let mut lines = vec![
            format!(
                "FIN: {} ({})",
                u8::from(self.fin),
                if self.fin { "final fragment of the message" } else { "more fragments follow" }
            ),
            format!(
                "RSV1-3: {} ({})",
                self.rsv,
                if self.rsv == 0 { "no extension" } else { "set by an extension, e.g. compression" }
            ),
            format!("Opcode: {} ({})", self.opcode, opcode_name(self.opcode)),
        ];
        match self.mask {
            Some(k) => lines.push(format!(
                "Mask: 1, masking key {:02x}{:02x}{:02x}{:02x} (client-to-server frames are always masked)",
                k[0], k[1], k[2], k[3]
            )),
            None => lines.push("Mask: 0 (server-to-client frames are not masked)".to_string()),
        }
        lines.push(format!("Payload length: {} bytes (header is {} bytes)", self.payload_len, self.header_len));
        if !self.complete() {
            lines.push(format!(
                "Only {} of the {} payload bytes are in this segment; the rest follows",
                self.data.len(),
                self.payload_len
            ));
        }
        let label = if self.mask.is_some() { "Payload (unmasked)" } else { "Payload" };
        match self.opcode {
            8 => {
                if let Some(c) = self.data.get(0..2) {
                    let code = u16::from_be_bytes([c[0], c[1]]);
                    lines.push(format!("Close code: {code} ({})", close_meaning(code)));
                    lines.push(format!("Close reason: {}", preview(&self.data[2..], 60)));
                }
            }
            _ => lines.push(format!("{label}: {}", preview(&self.data, 60))),
        }
        if self.opcode == 1 {
            let text = String::from_utf8_lossy(&self.data);
            if let Some(l) = socketio_lines(&text) {
                lines.extend(l);
            }
        }
        Section { title: "WebSocket".to_string(), lines }
    }
}

fn close_meaning(code: u16) -> &'static str {
    match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1006 => "abnormal closure",
        1008 => "policy violation",
        1009 => "message too big",
        1011 => "internal error",
        _ => "other",
    }
}

fn engineio_type(c: char) -> Option<&'static str> {
    Some(match c {
        '0' => "OPEN",
        '1' => "CLOSE",
        '2' => "PING",
        '3' => "PONG",
        '4' => "MESSAGE",
        '5' => "UPGRADE",
        '6' => "NOOP",
        _ => return None,
    })
}

/// A decoded Socket.IO v5 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketIo {
    /// CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT or BINARY_ACK.
    pub kind: &'static str,
    /// Namespace ("/" when absent).
    pub namespace: String,
    /// Acknowledgment id, when the sender wants (or this is) an acknowledgment.
    pub ack_id: Option<u64>,
    /// Number of binary attachments (BINARY_* only).
    pub attachments: Option<u64>,
    /// Event name (EVENT / BINARY_EVENT).
    pub event: Option<String>,
    /// The JSON data as written (for events: the arguments after the name, as an array).
    pub data: String,
}

impl SocketIo {
    /// `EVENT chat message ["hi"]`, `CONNECT /admin {"sid":"x"}`, `ACK 12 ["ok"]`.
    pub(crate) fn summary(&self) -> String {
        let mut s = self.kind.to_string();
        if self.namespace != "/" {
            s.push_str(&format!(" {}", self.namespace));
        }
        if let Some(id) = self.ack_id {
            s.push_str(&format!(" #{id}"));
        }
        if let Some(e) = &self.event {
            s.push_str(&format!(" {e}"));
        }
        if !self.data.is_empty() {
            s.push_str(&format!(" {}", self.data));
        }
        s
    }
}

/// Parses a Socket.IO v5 packet (the text after Engine.IO's `4`).
pub(crate) fn parse_socketio(s: &str) -> Option<SocketIo> {
    let t = s.chars().next()?;
    let kind = match t {
        '0' => "CONNECT",
        '1' => "DISCONNECT",
        '2' => "EVENT",
        '3' => "ACK",
        '4' => "CONNECT_ERROR",
        '5' => "BINARY_EVENT",
        '6' => "BINARY_ACK",
        _ => return None,
    };
    let mut rest = &s[1..];
    let mut attachments = None;
    if t == '5' || t == '6' {
        let (n, r) = rest.split_once('-')?;
        attachments = Some(n.parse().ok()?);
        rest = r;
    }
    let mut namespace = "/".to_string();
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        namespace = rest[..end].to_string();
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 { rest[..digits].parse().ok() } else { None };
    rest = &rest[digits..];
    if !rest.is_empty() && serde_json::from_str::<serde_json::Value>(rest).is_err() {
        return None;
    }
    let mut event = None;
    let mut data = rest.to_string();
    if t == '2' || t == '5' {
        let v: serde_json::Value = serde_json::from_str(rest).ok()?;
        let name = v.as_array()?.first()?.as_str()?.to_string();
        data = args_after_first(rest).unwrap_or_else(|| "[]".to_string());
        event = Some(name);
    }
    Some(SocketIo { kind, namespace, ack_id, attachments, event, data })
}

/// The text of a JSON array without its first element, as written: `["a",1,{"b":2}]` →
/// `[1,{"b":2}]`. Keeps the sender's formatting and key order, which re-serializing would not.
fn args_after_first(json: &str) -> Option<String> {
    let t = json.trim();
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if b.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => break,
            _ => i += 1,
        }
    }
    let after = inner.get(i + 1..)?.trim_start();
    let args = after.strip_prefix(',').unwrap_or(after).trim();
    Some(format!("[{args}]"))
}

/// One-line decoding of an Engine.IO packet (and the Socket.IO packet inside, if any).
fn socketio_summary(text: &str) -> Option<String> {
    let mut chars = text.chars();
    let t = chars.next()?;
    let name = engineio_type(t)?;
    let rest = chars.as_str();
    if t == '4' {
        if let Some(sio) = parse_socketio(rest) {
            return Some(format!("Socket.IO {}", sio.summary()));
        }
    }
    // Anything else must look like Engine.IO, not like arbitrary text that starts with a digit.
    let plausible = match t {
        '0' => rest.starts_with('{'),
        '1' | '5' | '6' => rest.is_empty(),
        '2' | '3' => rest.is_empty() || rest == "probe",
        _ => true,
    };
    if !plausible {
        return None;
    }
    Some(if rest.is_empty() { format!("Engine.IO {name}") } else { format!("Engine.IO {name} {rest}") })
}

fn socketio_lines(text: &str) -> Option<Vec<String>> {
    let summary = socketio_summary(text)?;
    let mut lines = vec![format!("Decoded: {summary}")];
    let mut chars = text.chars();
    let t = chars.next()?;
    lines.push(format!("  Engine.IO packet type: {t} ({})", engineio_type(t)?));
    if t == '4' {
        if let Some(sio) = parse_socketio(chars.as_str()) {
            lines.push(format!("  Socket.IO packet type: {}", sio.kind));
            lines.push(format!("  Namespace: {}", sio.namespace));
            if let Some(n) = sio.attachments {
                lines.push(format!("  Binary attachments: {n}"));
            }
            if let Some(id) = sio.ack_id {
                lines.push(format!("  Ack id: {id}"));
            }
            if let Some(e) = &sio.event {
                lines.push(format!("  Event: {e}"));
                lines.push(format!("  Arguments: {}", sio.data));
            } else if !sio.data.is_empty() {
                lines.push(format!("  Data: {}", sio.data));
            }
        }
    }
    Some(lines)
}

fn engineio_summary(body: &str) -> Option<String> {
    let parts: Vec<String> = body.split('\u{1e}').filter_map(socketio_summary).collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("; "))
    }
}

fn engineio_lines(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, p) in body.split('\u{1e}').enumerate() {
        match socketio_lines(p) {
            Some(l) => {
                out.push(format!("Packet {}:", i + 1));
                out.extend(l.into_iter().map(|x| format!("  {x}")));
            }
            None => out.push(format!("Packet {}: not Engine.IO: {}", i + 1, preview(p.as_bytes(), 60))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socketio_event() {
        let s = parse_socketio(r#"2["chat message","hi"]"#).map(|s| s.summary());
        assert_eq!(s.as_deref(), Some(r#"EVENT chat message ["hi"]"#));
        assert_eq!(
            socketio_summary(r#"42["chat message","hi"]"#).as_deref(),
            Some(r#"Socket.IO EVENT chat message ["hi"]"#)
        );
        assert_eq!(
            parse_socketio(r#"2/admin,12["x",{"b":1,"a":2}]"#).map(|s| s.summary()).as_deref(),
            Some(r#"EVENT /admin #12 x [{"b":1,"a":2}]"#)
        );
        assert_eq!(parse_socketio(r#"51-["up",{"_placeholder":true,"num":0}]"#).map(|s| s.attachments), Some(Some(1)));
        assert_eq!(socketio_summary("2").as_deref(), Some("Engine.IO PING"));
        assert_eq!(socketio_summary("3probe").as_deref(), Some("Engine.IO PONG probe"));
        assert_eq!(socketio_summary("40").as_deref(), Some("Socket.IO CONNECT"));
        assert_eq!(socketio_summary("hello"), None);
        assert_eq!(socketio_summary("2 cats"), None);
    }

    #[test]
    fn ws_frames() {
        // Masked "hi" text frame, as a client sends it.
        let key = [1u8, 2, 3, 4];
        let mut f = vec![0x81, 0x82];
        f.extend_from_slice(&key);
        f.extend(b"hi".iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        let frames = parse_ws_frames(&f);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data, b"hi");
        assert_eq!(summarize(&f, true).as_deref(), Some("WebSocket text \"hi\""));
        for n in 0..f.len() {
            let _ = describe(&f[..n], true);
        }
    }

    #[test]
    fn http() {
        let r = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(looks_like_http(r));
        assert_eq!(summarize(r, false).as_deref(), Some("GET / HTTP/1.1"));
        let up = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert!(is_upgrade_response(up));
        assert!(!is_upgrade_response(b"HTTP/1.1 200 OK\r\n\r\n"));
    }
}
