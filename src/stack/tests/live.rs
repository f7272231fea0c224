//! A connection's own drop fault, and the events the live ladder gets: what the tracer
//! hands the hub, segment by segment, with the bytes that crossed the device.

use std::time::Duration;

use super::*;
use crate::live::LiveHub;
use crate::wire::Quad;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_connections_drop_fault_keeps_its_segments_from_the_device_and_it_recovers() {
    let (mut t, iss) = established();
    let id = t.conn.unwrap();
    assert!(t.host.set_drop_fault(id, 1.0, 7));
    t.app_write(b"lost");
    t.expect_nothing();
    assert_eq!(t.host.counters.fault_drops, 1);
    // The connection thinks it sent it: the timer brings it back, once the fault is gone.
    assert!(t.host.set_drop_fault(id, 0.0, 7));
    t.advance(ms(200));
    let r = t.expect();
    assert_eq!((r.seq, r.payload.as_slice()), (iss + 1, &b"lost"[..]));
    assert_eq!(t.host.conn(id).unwrap().stats.retransmits, 1);
    assert!(!t.host.set_drop_fault(id + 100, 0.5, 1), "no such connection");
}

#[test]
fn the_same_seed_drops_the_same_segments() {
    let run = |seed| {
        let (mut t, _) = established();
        let id = t.conn.unwrap();
        t.host.set_drop_fault(id, 0.5, seed);
        let mut sent = Vec::new();
        // Full segments, so that Nagle holds none back behind a lost one.
        for i in 0..8u8 {
            t.app_write(&[i; 1000]);
            sent.push(t.next().is_some());
        }
        sent
    };
    assert_eq!(run(3), run(3));
    assert!(run(3).contains(&false) && run(3).contains(&true), "{:?}", run(3));
}

#[test]
fn the_hub_gets_the_trace_events_with_the_bytes_and_the_deliberate_drops() {
    let mut cfg = config();
    cfg.tcp.mss = 1000;
    let mut t = Peer::listening_with(cfg);
    let hub = LiveHub::new();
    t.host.tracer.set_live(hub.clone());
    let viewer = hub.join(None);
    let quad = Quad { local: SocketAddrV4::new(HOST_IP, t.port), remote: SocketAddrV4::new(PEER_IP, 5000) };
    hub.watch(viewer, Some(quad)).expect("watch");
    t.send(syn().seq(PEER_ISS).mss(1460).sport(5000));
    let sa = t.expect();
    t.send(ack().seq(PEER_ISS + 1).ack(sa.seq + 1).sport(5000));
    t.accept();
    let id = t.conn.unwrap();
    t.host.set_drop_fault(id, 1.0, 1);
    t.app_write(b"hi");
    let batch = hub.wait(viewer, ms(0)).expect("viewer");
    let events: Vec<serde_json::Value> =
        batch.events.iter().map(|e| serde_json::from_str(e).expect("event is JSON")).collect();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e["event"].as_str().unwrap_or(""), e["flags"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds[0], "segment [SYN]", "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "state "), "state changes are there: {kinds:?}");
    let synack = events.iter().find(|e| e["flags"] == "[SYN, ACK]").expect("SYN-ACK");
    assert_eq!(synack["seq"], 0, "relative");
    let lost = events.last().expect("the data segment");
    assert_eq!(lost["fault_drop"], true);
    assert!(lost["pkt"].is_null(), "a dropped segment has no bytes: it never reached the device");
    // The SYN's bytes are kept: the IPv4 header and the TCP header with its MSS option.
    let pkt = events[0]["pkt"].as_u64().expect("SYN has bytes");
    let packets = hub.packets_around(pkt);
    assert_eq!(packets[0].bytes[0] >> 4, 4);
    assert_eq!(packets.len(), 3, "SYN, SYN-ACK, ACK");
}
