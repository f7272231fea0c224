//! Reading one request head off the stream, and skipping its body.

use std::io::{self, Read};
use std::time::Instant;

use super::{HttpConfig, Status};

/// httparse needs a fixed array of header slots; more lines than this → 431.
const MAX_HEADERS: usize = 64;
/// Bytes asked for per `read` while collecting a header section.
const READ_CHUNK: usize = 4096;
/// Below this size a partial head is re-parsed on every read (so garbage such as a TLS
/// ClientHello is refused at once); above it only when a line ends, which keeps a
/// byte-by-byte client from making parsing quadratic in the header size.
const EAGER_PARSE_LIMIT: usize = 1024;

/// The HTTP version of a request (httparse accepts only these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A parsed request head. Public, with the bytes read past the head, so that an upgrade
/// handler (WebSocket) can take over the stream without losing data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (may carry a query string).
    pub path: String,
    pub version: Version,
    /// In arrival order, names as sent; look up with [`Request::header`].
    pub headers: Vec<(String, Vec<u8>)>,
    /// From `Content-Length` (0 if absent).
    pub body_len: u64,
    /// Bytes already read from the stream after the head: the body's start, then any
    /// pipelined requests.
    pub leftover: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    /// Whether any `name` header lists `token` in its comma-separated values
    /// (case-insensitive), as `Connection: keep-alive, Upgrade` does.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Whether the connection stays open after this request (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.has_token("Connection", "close"),
            Version::Http10 => self.has_token("Connection", "keep-alive"),
        }
    }

    /// Whether the client waits for `100 Continue` before sending its body.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self.header("Expect").is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"100-continue"))
    }

    /// The path to route on: no scheme and authority (absolute-form targets), no query, no
    /// fragment.
    pub fn route_path(&self) -> &str {
        let mut p = self.path.as_str();
        for scheme in ["http://", "https://"] {
            if p.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme)) {
                let rest = &p[scheme.len()..];
                p = rest.find('/').map_or("/", |i| &rest[i..]);
                break;
            }
        }
        let end = p.find(['?', '#']).unwrap_or(p.len());
        &p[..end]
    }
}

/// The result of waiting for a request head.
#[derive(Debug)]
pub enum ReadOutcome {
    Request(Request),
    /// The client closed: cleanly between requests, or part-way through a head (there is
    /// nothing to answer either way).
    Closed,
    /// The head is unacceptable; answer with this status and close.
    Rejected(Status),
}

/// Reads until `buf` (bytes left over from the previous request, then whatever the stream
/// gives) holds a full request head.
pub fn read_request<R: Read>(stream: &mut R, buf: Vec<u8>, cfg: &HttpConfig) -> io::Result<ReadOutcome> {
    read_request_by(stream, buf, cfg, |_, _| Ok(()))
}

/// [`read_request`] with [`HttpConfig::head_timeout`] from the head's first byte:
/// `deadline` bounds the stream's reads until then (see `serve_with_deadline`), and a read
/// that times out inside a head ends it with 408.
pub fn read_request_by<R, D>(stream: &mut R, buf: Vec<u8>, cfg: &HttpConfig, mut deadline: D) -> io::Result<ReadOutcome>
where
    R: Read,
    D: FnMut(&mut R, Option<Instant>) -> io::Result<()>,
{
    let mut started = !buf.is_empty();
    if started {
        deadline(stream, Some(Instant::now() + cfg.head_timeout))?;
    }
    let outcome = read_head_into(stream, buf, cfg, &mut started, &mut deadline);
    // Between requests only the stream's own (idle) timeout applies.
    deadline(stream, None)?;
    match outcome {
        // Timed out inside a head; a timeout while idle between requests stays an error.
        Err(e) if started && matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
            tracing::debug!("request head not complete within {:?}", cfg.head_timeout);
            Ok(ReadOutcome::Rejected(Status::REQUEST_TIMEOUT))
        }
        other => other,
    }
}

fn read_head_into<R, D>(
    stream: &mut R,
    mut buf: Vec<u8>,
    cfg: &HttpConfig,
    started: &mut bool,
    deadline: &mut D,
) -> io::Result<ReadOutcome>
where
    R: Read,
    D: FnMut(&mut R, Option<Instant>) -> io::Result<()>,
{
    let mut try_parse = !buf.is_empty();
    loop {
        if try_parse {
            if let Some(outcome) = parse_head(&buf, cfg) {
                return Ok(outcome);
            }
        }
        if buf.len() >= cfg.max_header_bytes {
            return Ok(ReadOutcome::Rejected(Status::REQUEST_HEADER_FIELDS_TOO_LARGE));
        }
        let old_len = buf.len();
        buf.resize(old_len + READ_CHUNK, 0);
        let n = read_retrying(stream, &mut buf[old_len..])?;
        buf.truncate(old_len + n);
        if n == 0 {
            return Ok(ReadOutcome::Closed);
        }
        if !*started {
            *started = true;
            deadline(stream, Some(Instant::now() + cfg.head_timeout))?;
        }
        try_parse = buf.len() <= EAGER_PARSE_LIMIT || buf[old_len..].contains(&b'\n');
    }
}

/// `None` while the head is incomplete. On a request, `leftover` holds what followed the head.
pub fn parse_head(buf: &[u8], cfg: &HttpConfig) -> Option<ReadOutcome> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return None,
        Err(httparse::Error::TooManyHeaders) => {
            return Some(ReadOutcome::Rejected(Status::REQUEST_HEADER_FIELDS_TOO_LARGE))
        }
        Err(e) => {
            tracing::debug!(error = %e, "unparseable request");
            return Some(ReadOutcome::Rejected(Status::BAD_REQUEST));
        }
    };
    if head_len > cfg.max_header_bytes {
        return Some(ReadOutcome::Rejected(Status::REQUEST_HEADER_FIELDS_TOO_LARGE));
    }
    let (Some(method), Some(path), Some(minor)) = (parsed.method, parsed.path, parsed.version) else {
        return Some(ReadOutcome::Rejected(Status::BAD_REQUEST));
    };
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };
    let headers: Vec<(String, Vec<u8>)> =
        parsed.headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect();

    if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("Transfer-Encoding")) {
        return Some(ReadOutcome::Rejected(Status::NOT_IMPLEMENTED));
    }
    let Some(body_len) = content_length(&headers) else {
        return Some(ReadOutcome::Rejected(Status::BAD_REQUEST));
    };

    Some(ReadOutcome::Request(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        version,
        headers,
        body_len,
        leftover: buf[head_len..].to_vec(),
    }))
}

/// The body length, or `None` if `Content-Length` is malformed or its copies disagree
/// (RFC 9112 §6.3: a request smuggling risk, so refuse).
fn content_length(headers: &[(String, Vec<u8>)]) -> Option<u64> {
    let mut len = None;
    for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length")) {
        for part in value.split(|&b| b == b',') {
            let n = parse_decimal(part.trim_ascii())?;
            if len.is_some_and(|l| l != n) {
                return None;
            }
            len = Some(n);
        }
    }
    Some(len.unwrap_or(0))
}

/// Plain ASCII digits only: `u64::from_str` would also accept a leading `+`.
pub(super) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Consumes the request body (from `req.leftover`, then the stream) and drops it, so the
/// next request starts at the right byte. `Ok(false)` if the client closed mid-body.
pub fn discard_body<R: Read>(stream: &mut R, req: &mut Request) -> io::Result<bool> {
    let buffered = req.body_len.min(req.leftover.len() as u64) as usize;
    req.leftover.drain(..buffered);
    let mut remaining = req.body_len - buffered as u64;
    let mut scratch = [0u8; 8192];
    while remaining > 0 {
        let want = remaining.min(scratch.len() as u64) as usize;
        let n = read_retrying(stream, &mut scratch[..want])?;
        if n == 0 {
            return Ok(false);
        }
        remaining -= n as u64;
    }
    Ok(true)
}

fn read_retrying<R: Read>(stream: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
