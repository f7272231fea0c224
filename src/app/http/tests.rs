use std::io::{self, Read, Write};

use super::*;

/// An in-memory connection: reads come from `input`, at most `max_read` bytes per call;
/// writes accumulate in `output`.
struct Duplex {
    input: Vec<u8>,
    pos: usize,
    max_read: usize,
    output: Vec<u8>,
    reads: usize,
}

impl Duplex {
    fn new(input: impl AsRef<[u8]>) -> Self {
        Duplex { input: input.as_ref().to_vec(), pos: 0, max_read: usize::MAX, output: Vec::new(), reads: 0 }
    }

    fn max_read(mut self, n: usize) -> Self {
        self.max_read = n;
        self
    }
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        let n = buf.len().min(self.max_read).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct Parsed {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Parsed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits `out` into responses; `head_only[i]` says response i answers a HEAD (no body).
fn parse_responses(mut out: &[u8], head_only: &[bool]) -> Vec<Parsed> {
    let mut all = Vec::new();
    for &head in head_only {
        let end = find(out, b"\r\n\r\n").expect("response head") + 4;
        let text = std::str::from_utf8(&out[..end - 4]).expect("ascii head");
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").expect("header line");
                (n.to_owned(), v.to_owned())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "Content-Length")
            .expect("Content-Length")
            .1
            .parse()
            .expect("numeric length");
        let body_len = if head { 0 } else { len };
        all.push(Parsed { status_line, headers, body: out[end..end + body_len].to_vec() });
        out = &out[end + body_len..];
    }
    assert!(out.is_empty(), "unexpected trailing output: {out:?}");
    all
}

fn run(input: &str) -> (ServeStats, Vec<u8>) {
    run_stream(Duplex::new(input))
}

fn run_stream(mut s: Duplex) -> (ServeStats, Vec<u8>) {
    let stats = serve(&mut s, &HttpConfig::default()).expect("serve");
    (stats, s.output)
}

fn one(input: &str) -> Parsed {
    let (_, out) = run(input);
    let mut v = parse_responses(&out, &[input.starts_with("HEAD")]);
    v.remove(0)
}

fn expected_pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(pattern_byte).collect()
}

#[test]
fn pattern_definition() {
    assert_eq!(pattern_byte(0), 0);
    assert_eq!(pattern_byte(250), 250);
    assert_eq!(pattern_byte(251), 0);
    assert_eq!(pattern_byte(1_000_000_000 - 1), ((1_000_000_000u64 - 1) % 251) as u8);
    let mut buf = vec![0; 1000];
    fill_pattern(12_345, &mut buf);
    assert!(buf.iter().enumerate().all(|(i, &b)| b == pattern_byte(12_345 + i as u64)));
}

#[test]
fn index_page() {
    let r = one("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("Server"), Some("synack"));
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()));
    assert_eq!(r.header("Date"), None);
    let html = String::from_utf8(r.body).expect("utf-8");
    assert!(html.contains("synack — a userspace TCP/IP stack on a TUN device"));
    assert!(html.contains("not by the kernel"));
    for service in ["port 7", "RFC 862", "port 9", "RFC 863", "port 80", "/bytes/N"] {
        assert!(html.contains(service), "index lacks {service}");
    }
}

#[test]
fn index_extra_is_called_per_request() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let cfg = HttpConfig {
        index_extra: Some(Arc::new(move || format!("<p id=live>{}</p>", c.fetch_add(1, Ordering::Relaxed)))),
        ..HttpConfig::default()
    };
    let mut s = Duplex::new("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    serve(&mut s, &cfg).expect("serve");
    let r = parse_responses(&s.output, &[false, false]);
    assert!(String::from_utf8_lossy(&r[0].body).contains("<p id=live>0</p>"));
    assert!(String::from_utf8_lossy(&r[1].body).contains("<p id=live>1</p>"));
}

#[test]
fn bytes_small_sizes_match_pattern() {
    for n in [0usize, 1, 250, 251, 252, 100_000] {
        let (stats, out) = run(&format!("GET /bytes/{n} HTTP/1.1\r\n\r\n"));
        let r = &parse_responses(&out, &[false])[0];
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
        assert_eq!(r.header("Content-Length"), Some(n.to_string().as_str()));
        assert_eq!(r.header("Transfer-Encoding"), None);
        assert_eq!(r.body, expected_pattern(n), "body of /bytes/{n}");
        assert_eq!(stats, ServeStats { requests: 1, body_bytes: n as u64 });
    }
}

#[test]
fn exact_head_bytes() {
    let (_, out) = run("GET /bytes/3 HTTP/1.1\r\n\r\n");
    assert_eq!(
        out,
        b"HTTP/1.1 200 OK\r\nServer: synack\r\nContent-Type: application/octet-stream\r\n\
          Content-Length: 3\r\n\r\n\x00\x01\x02"
    );
}

#[test]
fn bytes_is_prefix_of_longer_bytes() {
    let (_, out) = run("GET /bytes/70000 HTTP/1.1\r\n\r\nGET /bytes/200000 HTTP/1.1\r\n\r\n");
    let r = parse_responses(&out, &[false, false]);
    assert_eq!(r[0].body[..], r[1].body[..70_000]);
}

#[test]
fn query_string_is_ignored_for_routing() {
    let r = one("GET /bytes/5?nocache=1 HTTP/1.1\r\n\r\n");
    assert_eq!(r.body, expected_pattern(5));
    let r = one("GET http://example.test/bytes/4 HTTP/1.1\r\n\r\n");
    assert_eq!(r.body, expected_pattern(4));
}

/// Checks a response to one `/bytes/N` as it is written, never storing the body.
struct CheckingSink {
    request: Vec<u8>,
    pos: usize,
    head: Vec<u8>,
    body_seen: u64,
    block: Vec<u8>,
    writes: u64,
    largest_write: usize,
}

impl CheckingSink {
    fn new(request: &str) -> Self {
        let mut block = vec![0; 64 * 1024 + 250];
        fill_pattern(0, &mut block);
        CheckingSink {
            request: request.as_bytes().to_vec(),
            pos: 0,
            head: Vec::new(),
            body_seen: 0,
            block,
            writes: 0,
            largest_write: 0,
        }
    }

    fn check_body(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let start = (self.body_seen % 251) as usize;
            let n = data.len().min(self.block.len() - start);
            assert!(data[..n] == self.block[start..start + n], "pattern mismatch near body offset {}", self.body_seen);
            self.body_seen += n as u64;
            data = &data[n..];
        }
    }
}

impl Read for CheckingSink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.request.len() - self.pos);
        buf[..n].copy_from_slice(&self.request[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for CheckingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        self.largest_write = self.largest_write.max(buf.len());
        let mut data = buf;
        if find(&self.head, b"\r\n\r\n").is_none() {
            self.head.extend_from_slice(data);
            match find(&self.head, b"\r\n\r\n") {
                Some(end) => {
                    let body_start = self.head.split_off(end + 4);
                    self.check_body(&body_start);
                }
                None => return Ok(buf.len()),
            }
            data = &[];
        }
        self.check_body(data);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn bytes_300_mb_streamed_and_checked() {
    const N: u64 = 300_000_000;
    let mut sink = CheckingSink::new(&format!("GET /bytes/{N} HTTP/1.1\r\nConnection: close\r\n\r\n"));
    let stats = serve(&mut sink, &HttpConfig::default()).expect("serve");
    assert_eq!(stats, ServeStats { requests: 1, body_bytes: N });
    assert_eq!(sink.body_seen, N);
    let head = String::from_utf8(sink.head.clone()).expect("ascii");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head.contains(&format!("\r\nContent-Length: {N}\r\n")));
    assert!(head.contains("\r\nConnection: close\r\n"));
    assert!(sink.largest_write <= 64 * 1024 + head.len());
    assert!(sink.writes >= N / (64 * 1024));
}

#[test]
fn bytes_limits() {
    let r = one("HEAD /bytes/1000000000 HTTP/1.1\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("Content-Length"), Some("1000000000"));
    for bad in ["1000000001", "abc", "", "+5", "-1", "1.5", "99999999999999999999999", "5/6"] {
        let (stats, out) = run(&format!("GET /bytes/{bad} HTTP/1.1\r\n\r\nGET /bytes/1 HTTP/1.1\r\n\r\n"));
        let r = parse_responses(&out, &[false, false]);
        assert_eq!(r[0].status_line, "HTTP/1.1 400 Bad Request", "/bytes/{bad}");
        assert_eq!(r[0].header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r[0].header("Connection"), None, "connection stays open");
        assert_eq!(r[1].body, [0]);
        assert_eq!(stats.requests, 2);
    }
}

#[test]
fn keep_alive_two_requests() {
    let mut s = Duplex::new("GET /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").max_read(30); // split the requests across reads at odd places
    let stats = serve(&mut s, &HttpConfig::default()).expect("serve");
    let r = parse_responses(&s.output, &[false, false]);
    assert_eq!(r[0].body, expected_pattern(10));
    assert_eq!(r[0].header("Connection"), None);
    assert_eq!(r[1].status_line, "HTTP/1.1 200 OK");
    assert_eq!(r[1].header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(stats.requests, 2);
}

#[test]
fn three_pipelined_requests_in_one_read() {
    let input = "GET /bytes/3 HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n";
    let mut s = Duplex::new(input);
    let stats = serve(&mut s, &HttpConfig::default()).expect("serve");
    let r = parse_responses(&s.output, &[false, true, false]);
    assert_eq!(r[0].body, [0, 1, 2]);
    assert_eq!(r[1].status_line, "HTTP/1.1 200 OK");
    assert!(r[1].body.is_empty());
    assert_eq!(r[2].status_line, "HTTP/1.1 404 Not Found");
    assert_eq!(stats.requests, 3);
    assert_eq!(s.reads, 2, "one read for all three, one for EOF");
}

#[test]
fn request_sent_byte_by_byte() {
    let input = "GET /bytes/1000 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n\
                 GET /bytes/2 HTTP/1.1\r\nConnection: close\r\n\r\n";
    let s = Duplex::new(input).max_read(1);
    let (stats, out) = run_stream(s);
    let r = parse_responses(&out, &[false, false]);
    assert_eq!(r[0].body, expected_pattern(1000));
    assert_eq!(r[1].body, [0, 1]);
    assert_eq!(r[1].header("Connection"), Some("close"));
    assert_eq!(stats, ServeStats { requests: 2, body_bytes: 1002 });
}

#[test]
fn connection_close_is_honoured() {
    let (stats, out) = run("GET /bytes/1 HTTP/1.1\r\nConnection: close\r\n\r\nGET /bytes/2 HTTP/1.1\r\n\r\n");
    let r = parse_responses(&out, &[false]); // the second request is never answered
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert_eq!(stats.requests, 1);
    // token lists and case
    let (stats, _) = run("GET / HTTP/1.1\r\nconnection: Keep-Alive, CLOSE\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(stats.requests, 1);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let (stats, out) = run("GET /bytes/1 HTTP/1.0\r\n\r\nGET /bytes/1 HTTP/1.0\r\n\r\n");
    let r = parse_responses(&out, &[false]);
    assert_eq!(r[0].status_line, "HTTP/1.1 200 OK");
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert_eq!(stats.requests, 1);

    let (stats, out) = run("GET /bytes/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /bytes/2 HTTP/1.0\r\n\r\n");
    let r = parse_responses(&out, &[false, false]);
    assert_eq!(r[0].header("Connection"), Some("keep-alive"));
    assert_eq!(r[1].header("Connection"), Some("close"));
    assert_eq!(stats.requests, 2);
}

#[test]
fn head_gives_headers_only() {
    let (stats, out) = run("HEAD /bytes/12345 HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n");
    let r = parse_responses(&out, &[true, true]);
    assert_eq!(r[0].header("Content-Length"), Some("12345"));
    assert_eq!(r[0].header("Content-Type"), Some("application/octet-stream"));
    let get = one("GET / HTTP/1.1\r\n\r\n");
    assert_eq!(r[1].header("Content-Length"), get.header("Content-Length"));
    assert_eq!(stats, ServeStats { requests: 2, body_bytes: 0 });
}

#[test]
fn unknown_path_is_404() {
    for req in ["GET /missing HTTP/1.1\r\n\r\n", "POST /bytes HTTP/1.1\r\n\r\n", "GET /bytes HTTP/1.1\r\n\r\n"] {
        let r = one(req);
        assert_eq!(r.status_line, "HTTP/1.1 404 Not Found", "{req:?}");
        assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("Server"), Some("synack"));
        assert!(String::from_utf8_lossy(&r.body).contains("Not Found"));
    }
    let r = one("HEAD /missing HTTP/1.1\r\n\r\n");
    assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
}

#[test]
fn other_methods_are_405() {
    for req in [
        "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "PUT /bytes/5 HTTP/1.1\r\n\r\n",
        "DELETE /bytes/abc HTTP/1.1\r\n\r\n",
    ] {
        let r = one(req);
        assert_eq!(r.status_line, "HTTP/1.1 405 Method Not Allowed", "{req:?}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    }
}

#[test]
fn malformed_request_is_400_and_close() {
    for bad in [
        "GARBAGE\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        "\u{16}\u{3}\u{1}\u{2}\u{0}", // a TLS ClientHello: refused without waiting for a line end
        "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ] {
        let (stats, out) = run(bad);
        let r = parse_responses(&out, &[false]);
        assert_eq!(r[0].status_line, "HTTP/1.1 400 Bad Request", "{bad:?}");
        assert_eq!(r[0].header("Connection"), Some("close"));
        assert_eq!(stats.requests, 1);
    }
}

#[test]
fn oversize_header_is_431_and_close() {
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let (stats, out) = run(&big);
    let r = parse_responses(&out, &[false]);
    assert_eq!(r[0].status_line, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert_eq!(stats.requests, 1);

    // a header that never ends is cut off at the limit, not buffered forever
    let endless = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(100_000));
    let mut s = Duplex::new(&endless);
    serve(&mut s, &HttpConfig::default()).expect("serve");
    assert!(s.output.starts_with(b"HTTP/1.1 431 "));
    assert!(s.pos <= 16 * 1024 + 4096);

    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let r = one(&format!("GET / HTTP/1.1\r\n{many}\r\n"));
    assert_eq!(r.status_line, "HTTP/1.1 431 Request Header Fields Too Large");

    // just under the limit is fine
    let ok = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(16_000));
    assert_eq!(one(&ok).status_line, "HTTP/1.1 200 OK");
}

#[test]
fn chunked_request_body_is_501_and_close() {
    let (stats, out) = run("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    let r = parse_responses(&out, &[false]);
    assert_eq!(r[0].status_line, "HTTP/1.1 501 Not Implemented");
    assert_eq!(r[0].header("Connection"), Some("close"));
    assert_eq!(stats.requests, 1);
}

#[test]
fn request_body_is_discarded_before_next_request() {
    // the body looks like a request; answering it would be request smuggling
    let body = "GET /evil HTTP/1.1\r\n\r\n";
    let input =
        format!("POST /bytes/1 HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /bytes/2 HTTP/1.1\r\n\r\n", body.len());
    for max_read in [usize::MAX, 7, 1] {
        let (stats, out) = run_stream(Duplex::new(&input).max_read(max_read));
        let r = parse_responses(&out, &[false, false]);
        assert_eq!(r[0].status_line, "HTTP/1.1 405 Method Not Allowed");
        assert_eq!(r[1].body, [0, 1]);
        assert_eq!(stats.requests, 2);
    }
    // a large body that arrives after the head, across many reads
    let input =
        format!("GET / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n{}GET /bytes/1 HTTP/1.1\r\n\r\n", "x".repeat(100_000));
    let (stats, out) = run_stream(Duplex::new(&input).max_read(1000));
    assert_eq!(parse_responses(&out, &[false, false])[1].body, [0]);
    assert_eq!(stats.requests, 2);
}

#[test]
fn expect_100_continue_gets_interim_response() {
    let head = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n";
    let input = format!("{head}abc");
    // the head arrives alone: the client is waiting for the 100
    let (_, out) = run_stream(Duplex::new(&input).max_read(head.len()));
    let rest = out.strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n").expect("100 first");
    assert!(rest.starts_with(b"HTTP/1.1 405 "));
    // the body came with the head anyway: no 100 needed
    let (_, out) = run(&input);
    assert!(out.starts_with(b"HTTP/1.1 405 "));
}

#[test]
fn eof_between_and_inside_requests() {
    assert_eq!(run("").0, ServeStats::default());
    assert_eq!(run("\r\n").0, ServeStats::default());
    let (stats, out) = run("GET /bytes/1 HTTP/1.1\r\n\r\nGET /bytes/2 HTTP/1.1\r\nHo");
    assert_eq!(stats.requests, 1);
    assert_eq!(parse_responses(&out, &[false])[0].body, [0]);
    // EOF in the middle of a request body: nothing to answer
    let (stats, out) = run("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(stats.requests, 0);
    assert!(out.is_empty());
}

/// A stream whose reads or writes fail, as a reset connection's do.
struct Failing {
    input: Vec<u8>,
    pos: usize,
    read_fails_at_end: bool,
    write_budget: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.input.len() && self.read_fails_at_end {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        let n = buf.len().min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.write_budget == 0 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.write_budget);
        self.write_budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn stream_errors_propagate() {
    let mut s = Failing {
        input: b"GET /bytes/100000000 HTTP/1.1\r\n\r\n".to_vec(),
        pos: 0,
        read_fails_at_end: false,
        write_budget: 1_000_000,
    };
    let err = serve(&mut s, &HttpConfig::default()).expect_err("reset mid-body");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);

    let mut s =
        Failing { input: b"GET / HTTP/1.1\r\n".to_vec(), pos: 0, read_fails_at_end: true, write_budget: usize::MAX };
    let err = serve(&mut s, &HttpConfig::default()).expect_err("reset mid-head");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}

#[test]
fn hook_can_take_over_with_leftover_bytes() {
    let input = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n\x01\x05hello";
    let mut s = Duplex::new(input).max_read(usize::MAX);
    let mut seen = None;
    let stats = serve_with(&mut s, &HttpConfig::default(), |req, stream| {
        if req.route_path() != "/ws" || !req.has_token("Connection", "upgrade") {
            return Ok(Hook::Declined);
        }
        stream.write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")?;
        seen = Some(std::mem::take(&mut req.leftover));
        Ok(Hook::TookOver)
    })
    .expect("serve");
    assert_eq!(seen.as_deref(), Some(&b"\x01\x05hello"[..]));
    assert_eq!(s.output, b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert_eq!(stats.requests, 1);

    // declined requests reach the built-in routes
    let mut s = Duplex::new("GET /bytes/2 HTTP/1.1\r\n\r\n");
    serve_with(&mut s, &HttpConfig::default(), |_, _| Ok(Hook::Declined)).expect("serve");
    assert_eq!(parse_responses(&s.output, &[false])[0].body, [0, 1]);
}

#[test]
fn request_accessors() {
    let req = Request {
        method: "GET".into(),
        path: "HTTP://h:80?q".into(),
        version: Version::Http11,
        headers: vec![("connection".into(), b"foo, Upgrade".to_vec()), ("Expect".into(), b" 100-Continue ".to_vec())],
        body_len: 0,
        leftover: Vec::new(),
    };
    assert_eq!(req.route_path(), "/");
    assert!(req.has_token("Connection", "upgrade"));
    assert!(!req.has_token("Connection", "foo, Upgrade"));
    assert_eq!(req.header("CONNECTION"), Some(&b"foo, Upgrade"[..]));
    assert!(req.expects_continue());
    assert!(req.keep_alive());
    let mut non_ascii = req.clone();
    non_ascii.path = "ü/x".into();
    assert_eq!(non_ascii.route_path(), "ü/x");
}

#[test]
#[should_panic(expected = "pattern mismatch")]
fn checking_sink_catches_a_swapped_byte() {
    let mut sink = CheckingSink::new("");
    let mut body = vec![0; 100_000];
    fill_pattern(0, &mut body);
    body.swap(70_000, 70_001);
    let _ = sink.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
    let _ = sink.write_all(&body);
}

/// A client that sends `input` and then goes quiet: the next read times out, as a stream
/// with a read deadline does.
struct Stalling {
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
}

impl Read for Stalling {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.input.len() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let n = buf.len().min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Stalling {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_head_not_complete_by_its_deadline_gets_408() {
    let input = b"GET /bytes/2 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: slow".to_vec();
    let mut s = Stalling { input, pos: 0, output: Vec::new() };
    let mut bounds = Vec::new();
    let stats = serve_with_deadline(
        &mut s,
        &HttpConfig::default(),
        |_, _| Ok(Hook::Declined),
        |_, at| {
            bounds.push(at.is_some());
            Ok(())
        },
    )
    .expect("the timeout is answered, not an error");
    assert_eq!(stats.requests, 2);
    let out = String::from_utf8_lossy(&s.output);
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    let second = &out[out.find("HTTP/1.1 408").expect("a 408 for the trickled head")..];
    assert!(second.contains("Connection: close"), "{second}");
    // A bound from each head's first byte, lifted after it (and after the timed-out one).
    assert_eq!(bounds, [true, false, true, false]);
}

#[test]
fn a_client_idle_between_requests_is_not_given_a_408() {
    let mut s = Stalling { input: b"GET /bytes/2 HTTP/1.1\r\n\r\n".to_vec(), pos: 0, output: Vec::new() };
    let err = serve_with_deadline(&mut s, &HttpConfig::default(), |_, _| Ok(Hook::Declined), |_, _| Ok(()))
        .expect_err("the idle timeout ends the connection");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    let out = String::from_utf8_lossy(&s.output);
    assert!(out.starts_with("HTTP/1.1 200 OK") && !out.contains("408"), "{out}");
}
