//! The raw Engine.IO echo over Unix socket pairs, through the HTTP server and its hook: the
//! protocol's corner cases that the official test suite checks, without the stack.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::*;

fn short() -> Config {
    Config { ping_interval: Duration::from_millis(300), ping_timeout: Duration::from_millis(200), ..Config::default() }
}

/// Heartbeats far off, for tests that must not meet one however slow the machine.
fn long() -> Config {
    Config { ping_interval: Duration::from_secs(20), ping_timeout: Duration::from_secs(20), ..Config::default() }
}

/// A connection to the HTTP server with the Engine.IO hook.
fn connect(eio: &EngineIo) -> UnixStream {
    let (a, mut b) = UnixStream::pair().expect("socket pair");
    let server = eio.clone();
    std::thread::spawn(move || {
        let cfg = crate::app::http::HttpConfig::default();
        let _ = crate::app::http::serve_with(&mut b, &cfg, |req, s| server.hook(req, s));
    });
    a.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    a
}

/// One request (the connection closes after it); the status and the body.
fn http(eio: &EngineIo, method: &str, query: &str, body: &str) -> (u16, String) {
    let mut a = connect(eio);
    let req = format!(
        "{method} /engine.io/?EIO=4&{query} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    a.write_all(req.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = a.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_owned()))
}

fn open_polling(eio: &EngineIo) -> String {
    let (status, body) = http(eio, "GET", "transport=polling", "");
    assert_eq!(status, 200, "{body}");
    let open: Value = serde_json::from_str(&body[1..]).expect("open json");
    open["sid"].as_str().expect("sid").to_owned()
}

/// A WebSocket through the hook (`101` read, then frames).
fn websocket(eio: &EngineIo, query: &str) -> WebSocket<UnixStream> {
    let mut a = connect(eio);
    let req = format!(
        "GET /engine.io/?EIO=4&{query} HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    a.write_all(req.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(a.read(&mut byte).expect("read the 101"), 1, "closed before the 101");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    WebSocket::from_raw_socket(a, Role::Client, None)
}

fn text(ws: &mut WebSocket<UnixStream>) -> String {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return t.to_string(),
            Ok(Message::Binary(b)) => return format!("binary {:?}", b.to_vec()),
            Ok(Message::Close(f)) => return format!("close {:?}", f.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(e) => return format!("error {e}"),
        }
    }
}

#[test]
fn polling_echoes_text_and_binary_in_one_payload() {
    let eio = echo(short());
    let sid = open_polling(&eio);
    let q = format!("transport=polling&sid={sid}");
    assert_eq!(http(&eio, "POST", &q, "4hello\x1ebAQIDBA=="), (200, "ok".into()));
    assert_eq!(http(&eio, "GET", &q, ""), (200, "4hello\x1ebAQIDBA==".into()));
}

#[test]
fn an_invalid_packet_in_a_post_is_400_and_ends_the_session() {
    let eio = echo(short());
    let sid = open_polling(&eio);
    let q = format!("transport=polling&sid={sid}");
    assert_eq!(http(&eio, "POST", &q, "abc").0, 400);
    assert_eq!(http(&eio, "GET", &q, "").0, 400);
}

#[test]
fn a_client_close_ends_the_waiting_get_with_a_noop() {
    let eio = echo(short());
    let sid = open_polling(&eio);
    let q = format!("transport=polling&sid={sid}");
    let (e, q2) = (eio.clone(), q.clone());
    let get = std::thread::spawn(move || http(&e, "GET", &q2, ""));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(http(&eio, "POST", &q, "1"), (200, "ok".into()));
    assert_eq!(get.join().expect("get"), (200, "6".into()));
    assert_eq!(http(&eio, "GET", &q, "").0, 400);
}

#[test]
fn a_duplicate_get_closes_the_session() {
    let eio = echo(short());
    let sid = open_polling(&eio);
    let q = format!("transport=polling&sid={sid}");
    let (e, q2) = (eio.clone(), q.clone());
    let get = std::thread::spawn(move || http(&e, "GET", &q2, ""));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(http(&eio, "GET", &q, "").0, 400);
    assert_eq!(get.join().expect("get"), (200, "1".into()));
    assert_eq!(http(&eio, "GET", &q, "").0, 400);
}

#[test]
fn the_ping_timeout_is_exact_whatever_the_heartbeat_thread_does() {
    let eio = echo(short());
    let sid = open_polling(&eio);
    let q = format!("transport=polling&sid={sid}");
    let start = Instant::now();
    assert_eq!(http(&eio, "GET", &q, ""), (200, "2".into()));
    // Unanswered: 200 ms after the ping was due the session is gone.
    std::thread::sleep(Duration::from_millis(500).saturating_sub(start.elapsed()) + Duration::from_millis(210));
    assert_eq!(http(&eio, "GET", &q, "").0, 400);
}

#[test]
fn upgrade_with_no_get_pending_sends_no_stray_noop_and_a_second_websocket_is_closed() {
    let eio = echo(short());
    let sid = open_polling(&eio);
    let mut ws = websocket(&eio, &format!("transport=websocket&sid={sid}"));
    ws.send(Message::Text("2probe".into())).expect("probe");
    assert_eq!(text(&mut ws), "3probe");
    // The next GET ends at once with a NOOP.
    assert_eq!(http(&eio, "GET", &format!("transport=polling&sid={sid}"), ""), (200, "6".into()));
    ws.send(Message::Text("5".into())).expect("upgrade");
    // The echo comes back once the session is on the WebSocket (a Unix socket cannot tell
    // a GET what the WebSocket's reader has yet to read: the TUN suite checks that race).
    ws.send(Message::Text("4hello".into())).expect("send");
    assert_eq!(text(&mut ws), "4hello");
    // After the upgrade, polling requests for the sid are refused…
    assert_eq!(http(&eio, "GET", &format!("transport=polling&sid={sid}"), "").0, 400);
    // …and a second WebSocket is opened, then closed, the session left alone.
    let mut second = websocket(&eio, &format!("transport=websocket&sid={sid}"));
    assert_eq!(text(&mut second), "close Some(1008)");
    ws.send(Message::Text("4again".into())).expect("send");
    ws.send(Message::Binary(vec![1, 2, 3].into())).expect("send");
    assert_eq!(text(&mut ws), "4again");
    assert_eq!(text(&mut ws), "binary [1, 2, 3]");
}

#[test]
fn a_websocket_session_sid_is_known_a_second_websocket_is_closed_and_polling_refused() {
    let eio = echo(short());
    let mut ws = websocket(&eio, "transport=websocket");
    let open: Value = serde_json::from_str(&text(&mut ws)[1..]).expect("open json");
    let sid = open["sid"].as_str().expect("sid").to_owned();
    let mut second = websocket(&eio, &format!("transport=websocket&sid={sid}"));
    assert_eq!(text(&mut second), "close Some(1008)");
    assert_eq!(http(&eio, "GET", &format!("transport=polling&sid={sid}"), "").0, 400);
    ws.send(Message::Text("4hello".into())).expect("send");
    assert_eq!(text(&mut ws), "4hello");
}

#[test]
fn a_server_close_with_no_get_waiting_waits_for_the_next_get() {
    let eio = EngineIo::new("/engine.io/", long());
    let (tx, rx) = std::sync::mpsc::channel();
    eio.on_connection(move |socket| tx.send(socket).unwrap_or(()));
    let sid = open_polling(&eio);
    let socket = rx.recv_timeout(Duration::from_secs(5)).expect("the connection handler ran");
    let q = format!("transport=polling&sid={sid}");
    socket.close();
    // Not told yet: a POST is still `ok` (its packets ignored), as the reference server has it.
    assert_eq!(http(&eio, "POST", &q, "4ignored"), (200, "ok".into()));
    assert!(!socket.is_closed());
    // The next GET carries the CLOSE, and the session is gone.
    assert_eq!(http(&eio, "GET", &q, ""), (200, "1".into()));
    assert!(socket.is_closed());
    assert_eq!(http(&eio, "GET", &q, "").0, 400);
}

#[test]
fn a_server_close_ends_a_waiting_get_with_a_close() {
    let eio = EngineIo::new("/engine.io/", long());
    let (tx, rx) = std::sync::mpsc::channel();
    eio.on_connection(move |socket| tx.send(socket).unwrap_or(()));
    let sid = open_polling(&eio);
    let socket = rx.recv_timeout(Duration::from_secs(5)).expect("the connection handler ran");
    let q = format!("transport=polling&sid={sid}");
    let waiting = {
        let (eio, q) = (eio.clone(), q.clone());
        std::thread::spawn(move || http(&eio, "GET", &q, ""))
    };
    // Once the GET waits (the first ping is seconds away), close.
    while !socket.session.get_busy.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    socket.close();
    assert_eq!(waiting.join().expect("get"), (200, "1".into()));
    assert!(socket.is_closed());
}

#[test]
fn websocket_session_pings_and_closes_on_a_client_close() {
    let eio = echo(short());
    let mut ws = websocket(&eio, "transport=websocket");
    assert!(text(&mut ws).starts_with("0{"));
    assert_eq!(text(&mut ws), "2");
    ws.send(Message::Text("3".into())).expect("pong");
    assert_eq!(text(&mut ws), "2");
    ws.send(Message::Text("1".into())).expect("close");
    assert_eq!(text(&mut ws), "close Some(1000)");
}

#[test]
fn a_get_that_found_the_session_before_the_client_close_takes_the_one_noop() {
    let eio = echo(long());
    let sid = open_polling(&eio);
    // A GET's thread looked the session up just before the client's CLOSE ended it…
    let found = eio.session(&sid).expect("the session");
    assert_eq!(http(&eio, "POST", &format!("transport=polling&sid={sid}"), "1"), (200, "ok".into()));
    // …and is answered the NOOP; a later GET is not that GET.
    assert_eq!(polling::poll(&found, None).status, crate::app::http::Status::OK);
    assert_eq!(http(&eio, "GET", &format!("transport=polling&sid={sid}"), "").0, 400);
}

/// A Unix socket that says all its input arrived as the stack's arrival `number`, as
/// synack's `TcpStream` tells from the stack: the order two requests came in on the wire,
/// whatever order their threads run in.
struct Stamped {
    inner: UnixStream,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    number: u64,
}

impl Read for Stamped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for Stamped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Conn for Stamped {
    fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Stamped { inner: self.inner.try_clone()?, read: self.read.clone(), number: self.number })
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.inner.set_read_timeout(t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        self.inner.set_write_timeout(t)
    }
    fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
        self.inner.shutdown(how)
    }
    fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        None
    }
    fn input_counts(&self) -> Option<crate::app::ws::conn::InputCounts> {
        let read = self.read.load(Ordering::Relaxed);
        Some(crate::app::ws::conn::InputCounts { read, arrived: read })
    }
    fn arrival_number(&self, offset: u64) -> Option<u64> {
        (offset < self.read.load(Ordering::Relaxed)).then_some(self.number)
    }
}

/// A polling GET on a connection whose bytes arrived as arrival `number`.
fn get_arrived(eio: &EngineIo, query: &str, number: u64) -> (u16, String) {
    let (mut a, b) = UnixStream::pair().expect("socket pair");
    let server = eio.clone();
    std::thread::spawn(move || {
        let mut b = Stamped { inner: b, read: Default::default(), number };
        let cfg = crate::app::http::HttpConfig::default();
        let _ = crate::app::http::serve_with(&mut b, &cfg, |req, s| server.hook(req, s));
    });
    a.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    a.write_all(format!("GET /engine.io/?EIO=4&{query} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes())
        .expect("write");
    let mut out = String::new();
    let _ = a.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_owned()))
}

/// Two GETs, the second sent while the first waits; the thread of the one that `waits`
/// reaches the session first. The one that arrived first (number 10) gets the CLOSE and the
/// other the 400, in either thread order; the session is over.
fn duplicate_gets(waits: u64, comes: u64) -> [(u16, String); 2] {
    let eio = echo(long());
    let sid = open_polling(&eio);
    let q = format!("transport=polling&sid={sid}");
    let session = eio.session(&sid).expect("the session");
    let waiting = {
        let (eio, q) = (eio.clone(), q.clone());
        std::thread::spawn(move || get_arrived(&eio, &q, waits))
    };
    while !session.get_busy.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = get_arrived(&eio, &q, comes);
    let first = waiting.join().expect("the waiting GET");
    assert_eq!(http(&eio, "GET", &q, "").0, 400, "the session is over");
    [first, second]
}

#[test]
fn of_two_gets_the_one_that_arrived_first_gets_the_close_whichever_thread_runs_first() {
    let close = (200, "1".to_owned());
    // In order: the waiting GET arrived first.
    let [waited, came] = duplicate_gets(10, 20);
    assert_eq!((waited, came.0), (close.clone(), 400));
    // The GET that arrived second reached the session first and waits; the one that
    // arrived first comes after and takes its place.
    let [waited, came] = duplicate_gets(20, 10);
    assert_eq!((waited.0, came), (400, close));
}
