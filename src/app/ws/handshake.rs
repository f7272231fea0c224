//! The server half of RFC 6455's opening handshake (§4.2), done by hand.
//!
//! Why by hand and not `tungstenite::accept`: our HTTP server has already read the request
//! (it had to, to route it), and it may have read bytes past it that belong to the first
//! frames. tungstenite's `accept` wants to read the request itself and refuses extra bytes.
//! So we check the request here, compute `Sec-WebSocket-Accept` with tungstenite's
//! `derive_accept_key`, write the `101` ourselves and hand the stream on; a learner sees
//! every step of the upgrade in this file and, with tracing on, in the log.

use std::io::{self, Write};

use crate::app::http::{Request, Response, Status, Version};

/// The only protocol version RFC 6455 defines.
pub const VERSION: &str = "13";

/// A request that passed every check: what the `101` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The client's `Sec-WebSocket-Key`, as sent.
    pub key: String,
    /// base64(SHA-1(key + the RFC's GUID)): proves to the client that this server read its
    /// handshake (and is not, say, a cache replaying an old answer).
    pub accept: String,
}

/// Whether the client is trying to open a WebSocket at all. A request without any sign of
/// it is a plain page load (answered `426 Upgrade Required`); one with some sign of it but a
/// broken handshake gets `400` and the reason.
pub fn is_attempt(req: &Request) -> bool {
    req.header("Upgrade").is_some() || req.header("Sec-WebSocket-Key").is_some()
}

/// Checks the handshake (RFC 6455 §4.2.1) and computes the accept value, or says, as a
/// `400` response, what is wrong.
pub fn check(req: &Request) -> Result<Accepted, Response> {
    if req.method != "GET" {
        return Err(bad(format!("a WebSocket handshake must be a GET request, not {}", req.method)));
    }
    if req.version != Version::Http11 {
        return Err(bad("a WebSocket handshake needs HTTP/1.1".into()));
    }
    if !req.has_token("Upgrade", "websocket") {
        return Err(bad("the handshake needs `Upgrade: websocket`".into()));
    }
    if !req.has_token("Connection", "Upgrade") {
        return Err(bad("the handshake needs `Connection: Upgrade`".into()));
    }
    match req.header("Sec-WebSocket-Version").map(<[u8]>::trim_ascii) {
        None => return Err(bad_version("missing Sec-WebSocket-Version".into())),
        Some(v) if v != VERSION.as_bytes() => {
            let v = String::from_utf8_lossy(v);
            return Err(bad_version(format!("Sec-WebSocket-Version {v} is not supported")));
        }
        Some(_) => {}
    }
    let mut keys = req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Key"));
    let key = match (keys.next(), keys.next()) {
        (None, _) => return Err(bad("missing Sec-WebSocket-Key".into())),
        (Some(_), Some(_)) => return Err(bad("more than one Sec-WebSocket-Key".into())),
        (Some((_, v)), None) => v.trim_ascii(),
    };
    if !key_is_valid(key) {
        return Err(bad("Sec-WebSocket-Key must be 16 bytes in base64 (24 characters ending in ==)".into()));
    }
    if req.body_len > 0 {
        // Body bytes would be taken for the first frames.
        return Err(bad("a WebSocket handshake has no body".into()));
    }
    // `key_is_valid` admitted only base64 characters, so this is plain ASCII.
    let key = String::from_utf8_lossy(key).into_owned();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(Accepted { key, accept })
}

/// The answer to a plain request (no `Upgrade`) for a WebSocket endpoint.
pub fn upgrade_required(path: &str) -> Response {
    let mut resp = Response::text(
        Status::UPGRADE_REQUIRED,
        format!("426 Upgrade Required: {path} is a WebSocket endpoint; connect with a WebSocket client\n"),
    );
    // RFC 9110 §15.5.22: a 426 names the protocol to switch to.
    resp.headers.push(("Upgrade", "websocket".into()));
    resp.headers.push(("Sec-WebSocket-Version", VERSION.into()));
    resp
}

/// Writes the `101 Switching Protocols` that completes the handshake. No body and no
/// `Content-Length`: from the byte after the blank line on, the connection carries frames.
pub fn write_switching<W: Write>(w: &mut W, accepted: &Accepted) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nServer: synack\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accepted.accept
    );
    w.write_all(head.as_bytes())?;
    w.flush()
}

fn bad(reason: String) -> Response {
    Response::text(Status::BAD_REQUEST, format!("400 Bad Request: {reason}\n"))
}

/// RFC 6455 §4.4: a version mismatch is answered with the versions this server speaks.
fn bad_version(reason: String) -> Response {
    let mut resp = bad(format!("{reason}; this server speaks version {VERSION}"));
    resp.headers.push(("Sec-WebSocket-Version", VERSION.into()));
    resp
}

/// Whether `key` is the base64 encoding of exactly 16 bytes (RFC 6455 §4.1 item 7): 22
/// significant characters and `==`. The last significant character carries only 2 bits of
/// data, so its low 4 bits must be zero in a canonical encoding.
pub fn key_is_valid(key: &[u8]) -> bool {
    let [body @ .., b'=', b'='] = key else { return false };
    body.len() == 22
        && body.iter().all(|&c| base64_value(c).is_some())
        && base64_value(body[21]).is_some_and(|v| v & 0x0f == 0)
}

fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: "/ws".into(),
            version: Version::Http11,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect(),
            body_len: 0,
            leftover: Vec::new(),
        }
    }

    const GOOD: &[(&str, &str)] = &[
        ("Host", "10.7.0.2"),
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        GOOD.iter().copied().filter(|(n, _)| *n != name).collect()
    }

    fn with(name: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut h = without(name);
        h.push((name, value));
        h
    }

    fn reason(resp: &Response) -> String {
        match &resp.body {
            crate::app::http::Body::Static(b) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn accept_key_of_rfc_6455_example() {
        // RFC 6455 §1.3 works this exact example (verified independently with Python's
        // hashlib + base64).
        let ok = check(&request("GET", GOOD)).expect("valid handshake");
        assert_eq!(ok.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(ok.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn switching_protocols_response_is_exact() {
        let ok = check(&request("GET", GOOD)).expect("valid handshake");
        let mut out = Vec::new();
        write_switching(&mut out, &ok).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "HTTP/1.1 101 Switching Protocols\r\nServer: synack\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn header_names_and_tokens_are_case_insensitive() {
        let h = [
            ("upgrade", "WebSocket"),
            ("connection", "UPGRADE"),
            ("sec-websocket-key", " dGhlIHNhbXBsZSBub25jZQ== "),
            ("sec-websocket-version", "13"),
        ];
        assert_eq!(check(&request("GET", &h)).expect("valid").accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn refusals_are_400_with_a_reason() {
        let cases: Vec<(Request, &str)> = vec![
            (request("POST", GOOD), "must be a GET"),
            (request("GET", &without("Upgrade")), "Upgrade: websocket"),
            (request("GET", &with("Upgrade", "h2c")), "Upgrade: websocket"),
            (request("GET", &without("Connection")), "Connection: Upgrade"),
            (request("GET", &without("Sec-WebSocket-Key")), "missing Sec-WebSocket-Key"),
            (request("GET", &with("Sec-WebSocket-Key", "not base64!")), "16 bytes"),
            (request("GET", &with("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ")), "16 bytes"),
            (request("GET", &with("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZR==")), "16 bytes"),
            (request("GET", &with("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZXh4eA==")), "16 bytes"),
            (request("GET", &without("Sec-WebSocket-Version")), "missing Sec-WebSocket-Version"),
            (request("GET", &with("Sec-WebSocket-Version", "8")), "version 8 is not supported"),
        ];
        for (req, want) in cases {
            let resp = check(&req).expect_err("must be refused");
            assert_eq!(resp.status, Status::BAD_REQUEST, "{req:?}");
            let text = reason(&resp);
            assert!(text.to_lowercase().contains(&want.to_lowercase()), "{text:?} lacks {want:?}");
        }
    }

    #[test]
    fn version_refusal_names_the_supported_version() {
        let resp = check(&request("GET", &with("Sec-WebSocket-Version", "7"))).expect_err("refused");
        assert!(resp.headers.contains(&("Sec-WebSocket-Version", "13".into())));
    }

    #[test]
    fn two_keys_http10_and_a_body_are_refused() {
        let mut h = GOOD.to_vec();
        h.push(("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="));
        assert_eq!(check(&request("GET", &h)).expect_err("two keys").status, Status::BAD_REQUEST);
        let mut r = request("GET", GOOD);
        r.version = Version::Http10;
        assert_eq!(check(&r).expect_err("1.0").status, Status::BAD_REQUEST);
        let mut r = request("GET", GOOD);
        r.body_len = 3;
        assert_eq!(check(&r).expect_err("body").status, Status::BAD_REQUEST);
    }

    #[test]
    fn plain_requests_are_not_attempts() {
        assert!(!is_attempt(&request("GET", &[("Host", "x")])));
        assert!(is_attempt(&request("GET", &[("Upgrade", "websocket")])));
        assert!(is_attempt(&request("GET", &[("Sec-WebSocket-Key", "x")])));
        let resp = upgrade_required("/ws");
        assert_eq!(resp.status, Status::UPGRADE_REQUIRED);
        assert!(resp.headers.contains(&("Upgrade", "websocket".into())));
    }

    #[test]
    fn key_validation() {
        assert!(key_is_valid(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(key_is_valid(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(key_is_valid(b"/////////////////////w=="));
        assert!(!key_is_valid(b"/////////////////////x=="), "non-zero padding bits");
        assert!(!key_is_valid(b""));
        assert!(!key_is_valid(b"=="));
        assert!(!key_is_valid(b"dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!key_is_valid("dGhlIHNhbXBsZSBub25jZ€==".as_bytes()));
    }
}
