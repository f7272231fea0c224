//! `/events`: the live ladder's WebSocket. The page says which connection to watch and which
//! packet to dissect; synack answers with that connection's history, then its events as they
//! happen (the tracer's own, through [`LiveHub`]), and dissections from `synack explain`'s
//! decoder.
//!
//! From the page (text messages, JSON):
//! - `{"watch":{"remote":"10.7.0.1:41234","local":"10.7.0.2:80"}}` (or `"watch":null`);
//! - `{"watch":"next"}`: the next connection opened from the page's address, from its SYN;
//! - `{"decode":17}`: dissect packet 17 of the watched connection.
//!
//! To the page:
//! - `{"type":"hello","you":"10.7.0.1:…"}` (this socket's own address: it cannot be watched);
//! - `{"type":"armed"}` once a `"watch":"next"` is in force (the page opens the connection
//!   then, so that its SYN cannot come first);
//! - `{"type":"history","remote":…,"local":…,"forgotten":N,"events":[…]}` after a watch;
//! - `{"type":"events","dropped":N,"events":[…]}`: new events of the watched connection,
//!   `dropped` the events this viewer lost so far to a full queue;
//! - `{"type":"decoded","pkt":17,"layers":[…],"hex":"45…"}`, or `{"type":"error","what":…}`.

pub(crate) mod lab;

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::Message;

use crate::analyze::dissection::dissect_packets;
use crate::app::ws::{handshake, open, Conn, Limits, WsSender, TRACE_TARGET};
use crate::live::LiveHub;
use crate::wire::Quad;

/// How long the pusher sleeps when nothing happens (and how late a request may be seen).
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug)]
enum Request {
    Watch(Option<Quad>),
    /// The next connection this viewer's address opens.
    WatchNext,
    /// That watch is set: the page may open the connection.
    Armed,
    Decode(u64),
    Bad(String),
}

fn v4(s: &str) -> Option<std::net::SocketAddrV4> {
    match s.parse::<SocketAddr>().ok()? {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    }
}

fn parse_request(text: &str) -> Result<Request, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(w) = v.get("watch") {
        if w.is_null() {
            return Ok(Request::Watch(None));
        }
        if w == "next" {
            return Ok(Request::WatchNext);
        }
        let addr = |k: &str| w.get(k).and_then(Value::as_str).and_then(v4);
        let remote = addr("remote").ok_or("watch needs \"remote\":\"ADDR:PORT\"")?;
        let local = addr("local").ok_or("watch needs \"local\":\"ADDR:PORT\"")?;
        return Ok(Request::Watch(Some(Quad { local, remote })));
    }
    if let Some(n) = v.get("decode").and_then(Value::as_u64) {
        return Ok(Request::Decode(n));
    }
    Err("expected {\"watch\":…} or {\"decode\":N}".into())
}

/// Serves one `/events` connection: this thread reads the page's requests, a second one
/// carries them out and pushes events, so that what the page receives keeps its order.
pub(crate) fn run<S: Conn>(
    hub: Arc<LiveHub>,
    mut stream: S,
    accepted: &handshake::Accepted,
    leftover: Vec<u8>,
    limits: Limits,
    trace: bool,
) -> io::Result<()> {
    handshake::write_switching(&mut stream, accepted)?;
    let own = match (stream.local_addr(), stream.peer_addr()) {
        (Some(SocketAddr::V4(local)), Some(SocketAddr::V4(remote))) => Some(Quad { local, remote }),
        _ => None,
    };
    let (tx, mut rx) = open(stream, leftover, limits, trace)?;
    let viewer = hub.join(own);
    let (requests, incoming) = mpsc::channel::<Request>();
    let pusher = {
        let hub = hub.clone();
        std::thread::Builder::new().name("events-push".into()).spawn(move || push(&hub, viewer, own, &tx, &incoming))
    };
    let pusher = match pusher {
        Ok(p) => p,
        Err(e) => {
            hub.leave(viewer);
            return Err(e);
        }
    };
    let result = loop {
        match rx.recv() {
            Ok(Some(Message::Text(t))) => {
                let mut req = parse_request(t.as_str()).unwrap_or_else(Request::Bad);
                if let Request::WatchNext = req {
                    // At once, not on the pusher's next turn: the page starts the connection
                    // when told this is done, and its SYN must not come first.
                    req = match own {
                        Some(q) => {
                            hub.watch_next(viewer, *q.remote.ip());
                            Request::Armed
                        }
                        None => Request::Bad("this viewer's address is unknown".into()),
                    };
                }
                if requests.send(req).is_err() {
                    break Ok(());
                }
                hub.nudge();
            }
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    drop(requests);
    hub.leave(viewer);
    let _ = pusher.join();
    rx.finish();
    result
}

fn send<S: Conn>(tx: &WsSender<S>, v: &Value) -> io::Result<()> {
    tx.send(Message::Text(v.to_string().into()))
}

fn push<S: Conn>(hub: &LiveHub, viewer: u64, own: Option<Quad>, tx: &WsSender<S>, incoming: &mpsc::Receiver<Request>) {
    let result = (|| -> io::Result<()> {
        send(tx, &json!({"type": "hello", "you": own.map(|q| q.remote.to_string())}))?;
        let mut dropped = 0;
        loop {
            loop {
                match incoming.try_recv() {
                    Ok(Request::Watch(q)) => match hub.watch(viewer, q) {
                        Ok((events, forgotten)) => {
                            let (remote, local) = q.map(|q| (q.remote.to_string(), q.local.to_string())).unzip();
                            let head = json!({"type": "history", "remote": remote, "local": local,
                                              "forgotten": forgotten})
                            .to_string();
                            tx.send(Message::Text(with_events(&head, &events).into()))?;
                        }
                        Err(what) => send(tx, &json!({"type": "error", "what": what}))?,
                    },
                    Ok(Request::Armed) => send(tx, &json!({"type": "armed"}))?,
                    Ok(Request::WatchNext) => {}
                    Ok(Request::Decode(id)) => send(tx, &decode(hub, id))?,
                    Ok(Request::Bad(what)) => send(tx, &json!({"type": "error", "what": what}))?,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
                }
            }
            let Some(batch) = hub.wait(viewer, TICK) else { return Ok(()) };
            if !batch.events.is_empty() || batch.dropped != dropped {
                dropped = batch.dropped;
                let head = json!({"type": "events", "dropped": dropped}).to_string();
                tx.send(Message::Text(with_events(&head, &batch.events).into()))?;
            }
        }
    })();
    if let Err(e) = result {
        tracing::debug!(target: TRACE_TARGET, "events: push failed: {e}");
    }
}

/// `head` (a JSON object) with `"events":[…]` added, the events being JSON texts already.
fn with_events(head: &str, events: &[Arc<str>]) -> String {
    let mut s = String::with_capacity(head.len() + events.iter().map(|e| e.len() + 1).sum::<usize>() + 12);
    s.push_str(head.strip_suffix('}').unwrap_or(head));
    s.push_str(",\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(e);
    }
    s.push_str("]}");
    s
}

fn decode(hub: &LiveHub, id: u64) -> Value {
    let packets = hub.packets_around(id);
    let Some(index) = packets.iter().position(|p| p.id == id) else {
        return json!({"type": "error", "pkt": id,
                      "what": format!("packet {id} is no longer kept (the last {} are)", crate::live::MAX_PACKETS)});
    };
    let raw: Vec<(Duration, &[u8])> = packets.iter().map(|p| (p.time, p.bytes.as_slice())).collect();
    match dissect_packets(&raw, index) {
        Some(mut v) => {
            v["type"] = json!("decoded");
            v["pkt"] = json!(id);
            v
        }
        None => json!({"type": "error", "pkt": id, "what": "no such packet"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        let w = parse_request(r#"{"watch":{"remote":"10.7.0.1:5000","local":"10.7.0.2:80"}}"#);
        assert!(matches!(w, Ok(Request::Watch(Some(q))) if q.remote.port() == 5000 && q.local.port() == 80));
        assert!(matches!(parse_request(r#"{"watch":null}"#), Ok(Request::Watch(None))));
        assert!(matches!(parse_request(r#"{"decode":3}"#), Ok(Request::Decode(3))));
        assert!(parse_request(r#"{"watch":{"remote":"x"}}"#).unwrap_err().contains("remote"));
        assert!(parse_request("nope").is_err());
    }

    #[test]
    fn events_are_spliced_into_the_message() {
        let events: Vec<Arc<str>> = vec![Arc::from(r#"{"a":1}"#), Arc::from(r#"{"b":2}"#)];
        let s = with_events(r#"{"type":"events"}"#, &events);
        let v: Value = serde_json::from_str(&s).expect("json");
        assert_eq!(v["events"][1]["b"], 2);
    }
}
