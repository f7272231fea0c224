//! The server over a Unix socket pair, with tungstenite as the client: the WebSocket
//! transport without the stack.

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::json;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::*;

type Client = WebSocket<UnixStream>;

fn start(cfg: Config) -> (SocketIo, impl Fn() -> Client) {
    let io = demo(cfg);
    let server = io.clone();
    let connect = move || {
        let (a, b) = UnixStream::pair().expect("socket pair");
        let io = server.clone();
        std::thread::spawn(move || io.serve_ws(b, Vec::new()));
        a.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        WebSocket::from_raw_socket(a, Role::Client, None)
    };
    (io, connect)
}

/// The next text message that is not a ping.
fn next(c: &mut Client) -> String {
    loop {
        match c.read() {
            Ok(Message::Text(t)) if t.as_str() != "2" => return t.to_string(),
            Ok(Message::Text(_)) => {}
            Ok(Message::Close(f)) => return format!("close {:?}", f.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(e) => return format!("error {e}"),
        }
    }
}

fn send(c: &mut Client, t: &str) {
    c.send(Message::Text(t.into())).expect("send");
}

#[test]
fn open_connect_echo_broadcast_rooms_and_disconnect() {
    let (io, connect) = start(Config::default());
    let mut a = connect();
    let open: Value = serde_json::from_str(next(&mut a).trim_start_matches('0')).expect("open json");
    assert_eq!(open["pingInterval"], 25000);
    assert_eq!(open["upgrades"], json!([]));
    send(&mut a, "40");
    assert!(next(&mut a).starts_with("40{\"sid\":"));
    send(&mut a, r#"421["echo",{"x":[1,2]}]"#);
    assert_eq!(next(&mut a), r#"431[{"x":[1,2]}]"#);

    let mut b = connect();
    next(&mut b);
    send(&mut b, "40");
    next(&mut b);
    send(&mut b, r#"42["chat message","hi"]"#);
    assert_eq!(next(&mut a), r#"42["chat message","hi"]"#);
    assert_eq!(next(&mut b), r#"42["chat message","hi"]"#);

    send(&mut a, r#"427["join","r1"]"#);
    assert_eq!(next(&mut a), r#"437["r1"]"#);
    send(&mut b, r#"42["room message",{"room":"r1","text":"x"}]"#);
    assert_eq!(next(&mut a), r#"42["room message",{"room":"r1","text":"x"}]"#);

    // Server → client emit with an ack.
    let (tx, rx) = std::sync::mpsc::channel();
    let sock = io.of("/").sockets().into_iter().find(|s| s.rooms().contains(&"r1".to_string())).expect("a");
    assert!(sock.emit_with_ack("question", json!(1), move |v| tx.send(v).expect("send")));
    assert_eq!(next(&mut a), r#"420["question",1]"#);
    send(&mut a, r#"430["answer",2]"#);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Args::new().arg("answer").arg(2)));

    let (tx, rx) = std::sync::mpsc::channel();
    sock.on_disconnect(move |r| tx.send(r).expect("send"));
    send(&mut a, "41");
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(DisconnectReason::ClientNamespaceDisconnect));
    assert_eq!(io.of("/").sockets().len(), 1);
}

#[test]
fn namespaces_custom_and_unknown() {
    let (_io, connect) = start(Config::default());
    let mut a = connect();
    next(&mut a);
    send(&mut a, "40/chat,");
    assert!(next(&mut a).starts_with("40/chat,{\"sid\":"));
    send(&mut a, r#"40/nope,"#);
    assert_eq!(next(&mut a), r#"44/nope,{"message":"Invalid namespace"}"#);
    send(&mut a, r#"42/chat,5["echo","n"]"#);
    assert_eq!(next(&mut a), r#"43/chat,5["n"]"#);
}

#[test]
fn malformed_packets_close_that_client_only() {
    let (_io, connect) = start(Config::default());
    let mut good = connect();
    next(&mut good);
    send(&mut good, "40");
    next(&mut good);
    for bad in ["9", "49", r#"42["chat message""#, r#"42abc["echo"]"#, "42{}"] {
        let mut c = connect();
        next(&mut c);
        send(&mut c, "40");
        next(&mut c);
        send(&mut c, bad);
        assert_eq!(next(&mut c), "1", "{bad}");
        assert_eq!(next(&mut c), "close Some(1002)", "{bad}");
    }
    send(&mut good, r#"421["echo","still here"]"#);
    assert_eq!(next(&mut good), r#"431["still here"]"#);
}

#[test]
fn a_client_that_never_pongs_is_dropped_one_that_does_stays() {
    let cfg = Config {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(100),
        ..Config::default()
    };
    let (io, connect) = start(cfg);
    let mut silent = connect();
    next(&mut silent);
    send(&mut silent, "40");
    next(&mut silent);
    let (tx, rx) = std::sync::mpsc::channel();
    io.of("/").sockets()[0].on_disconnect(move |r| tx.send(r).expect("send"));
    let mut alive = connect();
    next(&mut alive);
    let start = Instant::now();
    // Answer every ping for six intervals.
    while start.elapsed() < Duration::from_millis(600) {
        match alive.read() {
            Ok(Message::Text(t)) if t.as_str() == "2" => send(&mut alive, "3"),
            Ok(_) => {}
            Err(e) => panic!("the answering client was dropped: {e}"),
        }
    }
    assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(DisconnectReason::PingTimeout));
    send(&mut alive, r#"40"#);
    assert!(next(&mut alive).starts_with("40"));
}

/// The example in docs/websocket-and-socketio.md, kept compiling.
#[test]
fn the_readme_example_builds_a_server() {
    let io = SocketIo::new(Config::default());
    let all = io.clone();
    io.on_connection(move |socket| {
        let all = all.clone();
        println!("token: {}", socket.auth()["token"]);
        socket.on("chat message", move |args, _| all.emit("chat message", args));
        socket.on("echo", |args, ack| {
            if let Some(ack) = ack {
                ack.send(args)
            }
        });
        socket.on("sum", |args, ack| {
            let sum: f64 = args.values().iter().filter_map(|v| v.as_f64()).sum();
            if let Some(ack) = ack {
                ack.send(json!(sum))
            }
        });
        socket.on("upload", |args, ack| {
            let name = args.first().as_str().unwrap_or("?").to_owned();
            let size = args.binary(1).map_or(0, <[u8]>::len);
            if let Some(ack) = ack {
                ack.send(Args::new().arg(name).arg(size))
            }
        });
        let s = socket.clone();
        socket.on("join", move |args, _| s.join(args.first().as_str().unwrap_or("lobby")));
        socket.emit("hello", Args::new().arg("welcome").arg(1).bytes(vec![0xca, 0xfe]));
        socket.emit_with_ack("question", "ready?", |reply| println!("{:?}", reply.values()));
        socket.on_disconnect(|reason| println!("left: {}", reason.as_str()));
    });
    assert_eq!(io.of("/").name(), "/");
}

/// The next message, text or binary (pings skipped).
fn frame(c: &mut Client) -> Message {
    loop {
        match c.read() {
            Ok(Message::Text(t)) if t.as_str() == "2" => {}
            Ok(m @ (Message::Text(_) | Message::Binary(_) | Message::Close(_))) => return m,
            Ok(_) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn every_argument_both_ways_and_auth() {
    let io = reference(Config::default());
    let server = io.clone();
    let connect = move || {
        let (a, b) = UnixStream::pair().expect("socket pair");
        let io = server.clone();
        std::thread::spawn(move || io.serve_ws(b, Vec::new()));
        a.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        WebSocket::from_raw_socket(a, Role::Client, None)
    };
    let mut a = connect();
    next(&mut a);
    send(&mut a, r#"40{"token":"123"}"#);
    assert!(next(&mut a).starts_with("40{\"sid\":"));
    assert_eq!(next(&mut a), r#"42["auth",{"token":"123"}]"#);
    send(&mut a, r#"42["message",1,"2",{"3":[true]}]"#);
    assert_eq!(next(&mut a), r#"42["message-back",1,"2",{"3":[true]}]"#);
    send(&mut a, r#"42456["message-with-ack",1,"2",{"3":[false]}]"#);
    assert_eq!(next(&mut a), r#"43456[1,"2",{"3":[false]}]"#);
    send(&mut a, "40/custom,");
    assert!(next(&mut a).starts_with("40/custom,{"));
    assert_eq!(next(&mut a), r#"42/custom,["auth",{}]"#);
}

#[test]
fn binary_attachments_both_ways() {
    let (io, connect) = start(Config::default());
    let mut a = connect();
    next(&mut a);
    send(&mut a, "40");
    next(&mut a);
    // Client → server → client: an echo with two binary arguments and one JSON between.
    send(&mut a, r#"452-7["echo",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]"#);
    a.send(Message::Binary(vec![1, 2, 3].into())).expect("send");
    a.send(Message::Binary(vec![4, 5].into())).expect("send");
    assert_eq!(next(&mut a), r#"462-7[{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]"#);
    assert_eq!(frame(&mut a), Message::Binary(vec![1, 2, 3].into()));
    assert_eq!(frame(&mut a), Message::Binary(vec![4, 5].into()));
    // Server → client with an ack that carries bytes back.
    let (tx, rx) = std::sync::mpsc::channel();
    let sock = io.of("/").sockets().pop().expect("the socket");
    assert!(sock.emit_with_ack("file", Args::new().arg("a.bin").bytes(vec![9; 4]), move |v| tx.send(v).expect("send")));
    assert_eq!(next(&mut a), r#"451-0["file","a.bin",{"_placeholder":true,"num":0}]"#);
    assert_eq!(frame(&mut a), Message::Binary(vec![9; 4].into()));
    send(&mut a, r#"461-0[{"_placeholder":true,"num":0}]"#);
    a.send(Message::Binary(vec![7, 7].into())).expect("send");
    let got = rx.recv_timeout(Duration::from_secs(5)).expect("the ack");
    assert_eq!(got.binary(0), Some(&[7u8, 7][..]));
}

#[test]
fn bad_attachments_close_the_connection() {
    let (_io, connect) = start(Config { max_payload: 100, ..Config::default() });
    let cases: [(&str, Vec<Vec<u8>>); 3] = [
        // A placeholder naming an attachment that is not there.
        (r#"451-["echo",{"_placeholder":true,"num":1}]"#, vec![vec![1]]),
        // Attachments each within maxPayload, together over it.
        (r#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#, vec![vec![0; 60]; 2]),
        // A binary message nobody announced.
        (r#"42["echo"]"#, vec![vec![1]]),
    ];
    for (packet, bins) in cases {
        let mut c = connect();
        next(&mut c);
        send(&mut c, "40");
        next(&mut c);
        send(&mut c, packet);
        for b in bins {
            let _ = c.send(Message::Binary(b.into()));
        }
        assert_eq!(next(&mut c), "1", "{packet}");
        assert_eq!(next(&mut c), "close Some(1002)", "{packet}");
    }
}

#[test]
fn a_client_that_never_connects_is_closed_after_connect_timeout() {
    let cfg = Config { connect_timeout: Duration::from_millis(200), ..Config::default() };
    let (_io, connect) = start(cfg);
    let mut idle = connect();
    let mut ok = connect();
    let start = Instant::now();
    next(&mut idle);
    next(&mut ok);
    send(&mut ok, "40");
    next(&mut ok);
    assert_eq!(next(&mut idle), "close Some(1000)");
    assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
    send(&mut ok, r#"421["echo","still"]"#);
    assert_eq!(next(&mut ok), r#"431["still"]"#);
}

/// One HTTP request through the HTTP server with the Socket.IO hook; the raw response.
fn http(io: &SocketIo, request: &str) -> String {
    use std::io::{Read, Write};
    let (mut a, mut b) = UnixStream::pair().expect("socket pair");
    let server = io.clone();
    let t = std::thread::spawn(move || {
        let cfg = crate::app::http::HttpConfig::default();
        let _ = crate::app::http::serve_with(&mut b, &cfg, |req, s| server.hook(req, s));
    });
    a.write_all(request.as_bytes()).expect("write");
    a.shutdown(std::net::Shutdown::Write).expect("shutdown");
    a.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut out = String::new();
    let _ = a.read_to_string(&mut out);
    let _ = t.join();
    out
}

#[test]
fn engine_io_request_errors_are_its_json_codes() {
    let io = demo(Config::default());
    let get = |q: &str| http(&io, &format!("GET /socket.io/?{q} HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert!(get("EIO=3&transport=polling").ends_with(r#"{"code":5,"message":"Unsupported protocol version"}"#));
    assert!(get("EIO=4&transport=carrier-pigeon").ends_with(r#"{"code":0,"message":"Transport unknown"}"#));
    assert!(get("EIO=4&transport=polling&sid=nope").ends_with(r#"{"code":1,"message":"Session ID unknown"}"#));
    assert!(get("EIO=4&transport=websocket&sid=nope").ends_with(r#"{"code":1,"message":"Session ID unknown"}"#));
    assert!(get("EIO=4&transport=websocket").ends_with(r#"{"code":3,"message":"Bad request"}"#));
    // Other paths are not ours.
    assert!(http(&io, "GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 404"));
}

#[test]
fn polling_handshake_post_and_get_on_one_keep_alive_connection() {
    let io = demo(Config::default());
    let first = http(&io, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let body = first.split("\r\n\r\n").nth(1).unwrap_or_default();
    let open: Value = serde_json::from_str(body.trim_start_matches('0')).expect("open json");
    assert_eq!(open["upgrades"], json!(["websocket"]));
    let sid = open["sid"].as_str().unwrap_or_default().to_owned();
    // Two packets in one POST (CONNECT, then an EVENT asking for an ack), then a GET for the
    // replies: the CONNECT answer and the ack, `\x1e` between them.
    let payload = "40\x1e421[\"echo\",\"polled\"]";
    let out = http(
        &io,
        &format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{payload}\
             GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nConnection: close\r\n\r\n",
            payload.len()
        ),
    );
    let bodies: Vec<&str> = out.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(bodies.len(), 2, "{out}");
    assert!(bodies[0].ends_with("\r\n\r\nok"), "{out}");
    let packets: Vec<&str> = bodies[1].split("\r\n\r\n").nth(1).unwrap_or_default().split('\x1e').collect();
    assert_eq!(packets.len(), 2, "{out}");
    assert!(packets[0].starts_with("40{\"sid\":"), "{out}");
    assert_eq!(packets[1], r#"431["polled"]"#);
    // A client CLOSE ends the session.
    let bye = format!("POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1");
    assert!(http(&io, &bye).ends_with("ok"));
    let get = format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nConnection: close\r\n\r\n");
    // A GET right after may have been sent beside the CLOSE: it gets a NOOP, once.
    assert!(http(&io, &get).ends_with("\r\n\r\n6"));
    let after = http(&io, &get);
    assert!(after.ends_with(r#"{"code":1,"message":"Session ID unknown"}"#), "{after}");
}
