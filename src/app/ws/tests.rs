//! The WebSocket endpoints end to end over a Unix socket pair: the HTTP server, the hook,
//! the handshake and the framing are the real ones; only the transport is not synack's TCP
//! (the real-TUN tests in `tests/tun_ws.rs` do that). tungstenite's client plays the peer.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Bytes, Message, WebSocket};

use super::*;
use crate::app::http::{serve_with, HttpConfig};

const T: Duration = Duration::from_secs(10);

fn endpoints() -> Endpoints {
    let source: StatsSource =
        Arc::new(|you, seq| format!(r#"{{"type":"stats","seq":{seq},"you":{:?}}}"#, you.is_some()));
    Endpoints::new(Some(source))
}

/// Runs the HTTP server with `ep`'s hook on one end of a socket pair; returns the other end.
fn server(ep: &Endpoints) -> (UnixStream, JoinHandle<()>) {
    let (client, mut srv) = UnixStream::pair().expect("socket pair");
    client.set_read_timeout(Some(T)).expect("timeout");
    let ep = ep.clone();
    let h = std::thread::spawn(move || {
        let _ = serve_with(&mut srv, &HttpConfig::default(), |req, s| ep.hook(req, s));
    });
    (client, h)
}

fn connect(ep: &Endpoints, path: &str) -> (WebSocket<UnixStream>, JoinHandle<()>) {
    let (stream, h) = server(ep);
    let (ws, resp) = tungstenite::client(format!("ws://synack.test{path}"), stream).expect("handshake");
    assert_eq!(resp.status(), 101);
    (ws, h)
}

fn text(ws: &mut WebSocket<UnixStream>) -> String {
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Raw request → raw response head (and whatever followed it in the same reads).
fn raw(stream: &mut UnixStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + T;
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        assert!(Instant::now() < deadline, "no response head");
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "closed before a response: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    // Read the body too when there is a Content-Length.
    let text = String::from_utf8_lossy(&got).into_owned();
    let head_end = text.find("\r\n\r\n").map_or(0, |i| i + 4);
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while got.len() < head_end + len {
        let n = stream.read(&mut buf).expect("read body");
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn echo_text_binary_empty_and_large() {
    let ep = endpoints();
    let (mut ws, h) = connect(&ep, "/ws");
    ws.send(Message::text("hello")).expect("send");
    assert_eq!(ws.read().expect("read"), Message::text("hello"));
    ws.send(Message::text("")).expect("send");
    assert_eq!(ws.read().expect("read"), Message::text(""));
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).expect("send");
    assert_eq!(ws.read().expect("read"), Message::binary(big));
    ws.close(None).expect("close");
    while ws.read().is_ok() {}
    h.join().expect("server thread");
}

#[test]
fn fragmented_message_comes_back_whole() {
    let ep = endpoints();
    let (mut ws, h) = connect(&ep, "/ws");
    let parts: [&[u8]; 3] = [b"frag", b"men", b"ted"];
    for (i, p) in parts.iter().enumerate() {
        let op = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        ws.write(Message::Frame(Frame::message(Bytes::from_static(p), op, i == parts.len() - 1))).expect("write");
    }
    // A ping between fragments is allowed (RFC 6455 §5.4) and answered at once.
    ws.send(Message::Ping(Bytes::from_static(b"p1"))).expect("ping");
    assert_eq!(ws.read().expect("pong"), Message::Pong(Bytes::from_static(b"p1")));
    assert_eq!(ws.read().expect("echo"), Message::text("fragmented"));
    drop(ws);
    h.join().expect("server thread");
}

#[test]
fn close_code_is_echoed() {
    for code in [1000u16, 4001] {
        let ep = endpoints();
        let (mut ws, h) = connect(&ep, "/ws");
        let frame = CloseFrame { code: CloseCode::from(code), reason: "bye".into() };
        ws.close(Some(frame)).expect("close");
        let reply = loop {
            match ws.read() {
                Ok(Message::Close(f)) => break f,
                Ok(_) => {}
                Err(e) => panic!("no close reply: {e}"),
            }
        };
        assert_eq!(reply.map(|f| u16::from(f.code)), Some(code));
        h.join().expect("server thread");
    }
}

#[test]
fn frames_in_the_same_read_as_the_request_are_not_lost() {
    // The request and a masked text frame "Hi" in one write: the frame lands in the HTTP
    // server's buffer (`leftover`) and must still be echoed.
    let ep = endpoints();
    let (mut s, h) = server(&ep);
    let mut bytes = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .to_vec();
    let mask = [1u8, 2, 3, 4];
    bytes.extend([0x81, 0x82]);
    bytes.extend(mask);
    bytes.extend(b"Hi".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&bytes).expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(&[0x81, 0x02, b'H', b'i']) {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{text}");
    assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    drop(s);
    h.join().expect("server thread");
}

#[test]
fn bad_handshakes_get_400_or_426_and_the_connection_keeps_serving() {
    let ep = endpoints();
    let (mut s, h) = server(&ep);
    let plain = raw(&mut s, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{plain}");
    assert!(plain.contains("Upgrade: websocket\r\n"));
    let no_key = raw(
        &mut s,
        "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(no_key.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{no_key}");
    assert!(no_key.contains("missing Sec-WebSocket-Key"), "{no_key}");
    let bad_version = raw(
        &mut s,
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert!(bad_version.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bad_version}");
    assert!(bad_version.contains("Sec-WebSocket-Version: 13\r\n"));
    let post = raw(
        &mut s,
        "POST /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 400 Bad Request\r\n") && post.contains("GET"), "{post}");
    let post_plain = raw(&mut s, "POST /stats HTTP/1.1\r\nContent-Length: 2\r\n\r\nab");
    assert!(post_plain.starts_with("HTTP/1.1 405 "), "{post_plain}");
    // Still the same connection, and the ordinary routes are unchanged.
    let page = raw(&mut s, "GET /bytes/3 HTTP/1.1\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n") && page.ends_with("\r\n\r\n\x00\x01\x02"), "{page:?}");
    let missing = raw(&mut s, "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"));
    h.join().expect("server thread");
}

#[test]
fn chat_broadcasts_to_all_with_join_and_leave() {
    let ep = endpoints();
    let (mut a, ha) = connect(&ep, "/chat");
    assert_eq!(text(&mut a), r#"{"event":"join","id":1}"#);
    let (mut b, hb) = connect(&ep, "/chat");
    // Registered before its 101: b's own join is the first thing b gets.
    assert_eq!(text(&mut b), r#"{"event":"join","id":2}"#);
    assert_eq!(text(&mut a), r#"{"event":"join","id":2}"#);
    a.send(Message::text("from a")).expect("send");
    b.send(Message::text("from b")).expect("send");
    let got_a = [text(&mut a), text(&mut a)];
    let got_b = [text(&mut b), text(&mut b)];
    assert_eq!(got_a, got_b, "both see the same order");
    assert!(got_a.contains(&"from a".to_string()) && got_a.contains(&"from b".to_string()));
    b.close(None).expect("close");
    while b.read().is_ok() {}
    hb.join().expect("b's server");
    assert_eq!(text(&mut a), r#"{"event":"leave","id":2}"#);
    assert_eq!(ep.hub.len(), 1);
    drop(a);
    ha.join().expect("a's server");
    assert!(ep.hub.is_empty());
}

#[test]
fn a_stalled_chat_reader_is_dropped_and_does_not_block_the_others() {
    let mut ep = endpoints();
    ep.hub = Arc::new(chat::Hub::new(chat::QueueLimit { messages: 8, bytes: 1 << 20 }));
    ep.chat_limits.write_stall = Duration::from_millis(500);
    let (mut stalled, hs) = connect(&ep, "/chat");
    let (mut live, hl) = connect(&ep, "/chat");
    assert_eq!(text(&mut live), r#"{"event":"join","id":2}"#);
    // 60 KB messages: the socket buffer and then the stalled client's queue fill quickly.
    let msg = "x".repeat(60_000);
    let start = Instant::now();
    let mut left_seen = false;
    for _ in 0..200 {
        live.send(Message::text(msg.clone())).expect("send");
        loop {
            let t = text(&mut live);
            if t == msg {
                break;
            }
            assert_eq!(t, r#"{"event":"leave","id":1}"#);
            left_seen = true;
        }
    }
    assert!(left_seen, "the stalled client was never dropped");
    assert!(start.elapsed() < Duration::from_secs(10), "the live client was slowed: {:?}", start.elapsed());
    assert_eq!(ep.hub.len(), 1);
    // The stalled client, once it reads, finds its queue and then a 1008 close.
    stalled.get_ref().set_read_timeout(Some(T)).expect("timeout");
    let code = loop {
        match stalled.read() {
            Ok(Message::Close(f)) => break f.map(|f| f.code),
            Ok(_) => {}
            Err(e) => panic!("stalled client saw no close: {e}"),
        }
    };
    assert!(matches!(code, Some(CloseCode::Policy) | None), "{code:?}");
    drop(stalled);
    hs.join().expect("stalled server");
    drop(live);
    hl.join().expect("live server");
}

#[test]
fn stats_pushes_at_once_then_every_second() {
    let ep = endpoints();
    let start = Instant::now();
    let (mut ws, h) = connect(&ep, "/stats");
    assert_eq!(text(&mut ws), r#"{"type":"stats","seq":0,"you":false}"#);
    assert!(start.elapsed() < Duration::from_millis(500), "first snapshot late: {:?}", start.elapsed());
    assert_eq!(text(&mut ws), r#"{"type":"stats","seq":1,"you":false}"#);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    ws.close(None).expect("close");
    while ws.read().is_ok() {}
    h.join().expect("server");
}

#[test]
fn protocol_errors_close_with_a_reason_and_never_panic() {
    let ep = endpoints();
    // An unmasked frame from a client must fail the connection (RFC 6455 §5.1): 1002.
    let (mut s, h) = server(&ep);
    let head = raw(
        &mut s,
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(&[0x81, 0x02, b'h', b'i']).expect("write");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert_eq!(got.get(..4), Some(&[0x88, got[1], 0x03, 0xea][..]), "close 1002: {got:?}");
    h.join().expect("server");

    // A message over the limit: 1009.
    let mut ep = endpoints();
    ep.echo_limits.max_message = 1000;
    let (mut ws, h) = connect(&ep, "/ws");
    ws.send(Message::binary(vec![0u8; 2000])).expect("send");
    let code = loop {
        match ws.read() {
            Ok(Message::Close(f)) => break f.map(|f| f.code),
            Ok(_) => {}
            Err(e) => panic!("no close: {e}"),
        }
    };
    assert_eq!(code, Some(CloseCode::Size));
    drop(ws);
    h.join().expect("server");
}

#[test]
fn a_silent_peer_is_pinged_then_dropped() {
    let mut ep = endpoints();
    ep.echo_limits.idle = Duration::from_millis(200);
    let (mut ws, h) = connect(&ep, "/ws");
    // The client never reads, so it never answers the server's ping.
    let start = Instant::now();
    while !h.is_finished() {
        assert!(start.elapsed() < T, "server never gave up");
        std::thread::sleep(Duration::from_millis(10));
    }
    h.join().expect("server");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    let mut got = Vec::new();
    let _ = ws.get_mut().read_to_end(&mut got);
    assert_eq!(got, [&[0x89u8, 0x06][..], b"synack"].concat(), "one ping, then the end");
}
