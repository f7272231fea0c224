//! Routing a request to a response, and writing a response to the stream.

use std::io::{self, Write};

use super::pattern::PatternBlock;
use super::request::parse_decimal;
use super::{HttpConfig, Request};

/// An HTTP status code; a newtype rather than an enum so later routes can use any code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    pub const SWITCHING_PROTOCOLS: Status = Status(101);
    pub const OK: Status = Status(200);
    pub const BAD_REQUEST: Status = Status(400);
    pub const NOT_FOUND: Status = Status(404);
    pub const METHOD_NOT_ALLOWED: Status = Status(405);
    pub const REQUEST_TIMEOUT: Status = Status(408);
    pub const UPGRADE_REQUIRED: Status = Status(426);
    pub const REQUEST_HEADER_FIELDS_TOO_LARGE: Status = Status(431);
    pub const NOT_IMPLEMENTED: Status = Status(501);

    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            101 => "Switching Protocols",
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            411 => "Length Required",
            426 => "Upgrade Required",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            _ => "",
        }
    }
}

/// A response body: either bytes in memory, or a length of pattern bytes generated while
/// writing so `/bytes/1000000000` never allocates a gigabyte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Static(Vec<u8>),
    Pattern(u64),
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Static(bytes) => bytes.len() as u64,
            Body::Pattern(len) => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response before it is written. `Server` and `Content-Length` are added by
/// [`write_response`]; header values must not contain CR or LF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    pub fn text(status: Status, text: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Body::Static(text.into().into_bytes()),
        }
    }

    pub fn html(html: String) -> Self {
        Response {
            status: Status::OK,
            headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
            body: Body::Static(html.into_bytes()),
        }
    }

    /// The answer to a request refused before routing.
    pub fn error(status: Status) -> Self {
        Response::text(status, format!("{} {}\n", status.0, status.reason()))
    }
}

/// The resources this server knows, before the method is checked.
enum Resource<'a> {
    Index,
    /// The text after `/bytes/`, not yet validated.
    Bytes(&'a str),
}

/// Chooses the response to a fully read request. Decisions: unknown path → 404 whatever the
/// method; known path with a method other than GET/HEAD → 405; `/bytes/N` with N not plain
/// decimal digits or above `cfg.max_bytes` → 400 (the request was well-formed, so the
/// connection stays open).
pub fn route(req: &Request, cfg: &HttpConfig) -> Response {
    let path = req.route_path();
    let resource = if path == "/" {
        Resource::Index
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        Resource::Bytes(n)
    } else {
        return Response::text(Status::NOT_FOUND, "404 Not Found: this server has / and /bytes/N\n");
    };

    if req.method != "GET" && req.method != "HEAD" {
        let mut resp = Response::text(Status::METHOD_NOT_ALLOWED, "405 Method Not Allowed: use GET or HEAD\n");
        resp.headers.push(("Allow", "GET, HEAD".into()));
        return resp;
    }

    match resource {
        Resource::Index => Response::html(index_page(cfg)),
        Resource::Bytes(n) => match parse_decimal(n.as_bytes()).filter(|&n| n <= cfg.max_bytes) {
            Some(len) => Response {
                status: Status::OK,
                headers: vec![("Content-Type", "application/octet-stream".into())],
                body: Body::Pattern(len),
            },
            None => Response::text(
                Status::BAD_REQUEST,
                format!("400 Bad Request: N in /bytes/N must be decimal digits, 0 to {}\n", cfg.max_bytes),
            ),
        },
    }
}

/// The demo page: what synack is, a live table of its TCP connections and a chat, both over
/// WebSockets served by this same stack (`/stats`, `/chat`). One self-contained file, so it
/// works offline and needs no build step.
const INDEX_PAGE: &str = include_str!("../page/index.html");
use crate::analyze::interactive::{LADDER_CSS, LADDER_JS};

fn index_page(cfg: &HttpConfig) -> String {
    let extra = cfg.index_extra.as_ref().map(|f| f()).unwrap_or_default();
    INDEX_PAGE
        .replace("{{LADDER_CSS}}", LADDER_CSS)
        .replace("{{LADDER_JS}}", LADDER_JS)
        .replace("{{MAX_BYTES}}", &cfg.max_bytes.to_string())
        .replace("{{EXTRA}}", &extra)
}

/// Writes `resp` (head, then body unless `head_only`) and flushes. Returns the body bytes
/// written. The head shares its first write with the start of the body, so a small
/// response leaves as one write and the head never goes out as a lone tiny segment.
pub fn write_response<W: Write>(w: &mut W, resp: &Response, head_only: bool, cfg: &HttpConfig) -> io::Result<u64> {
    let body_len = resp.body.len();
    let mut out = Vec::with_capacity(256);
    write!(out, "HTTP/1.1 {} {}\r\nServer: synack\r\n", resp.status.0, resp.status.reason())?;
    for (name, value) in &resp.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    write!(out, "Content-Length: {body_len}\r\n\r\n")?;

    if head_only {
        w.write_all(&out)?;
        w.flush()?;
        return Ok(0);
    }
    match &resp.body {
        Body::Static(bytes) => {
            out.extend_from_slice(bytes);
            w.write_all(&out)?;
        }
        Body::Pattern(len) => write_pattern(w, out, *len, cfg.write_chunk.max(1))?,
    }
    w.flush()?;
    Ok(body_len)
}

/// Streams `len` pattern bytes in `chunk`-sized writes, the first one after `head`.
fn write_pattern<W: Write>(w: &mut W, mut head: Vec<u8>, len: u64, chunk: usize) -> io::Result<()> {
    let chunk = usize::try_from(len).map_or(chunk, |len| len.min(chunk));
    let block = PatternBlock::new(chunk);
    let first = block.window(0, chunk);
    head.extend_from_slice(first);
    w.write_all(&head)?;
    let mut sent = first.len() as u64;
    while sent < len {
        let n = usize::try_from(len - sent).map_or(chunk, |left| left.min(chunk));
        w.write_all(block.window(sent, n))?;
        sent += n as u64;
    }
    Ok(())
}
