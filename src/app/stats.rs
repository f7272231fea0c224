//! `/stats`: the stack's TCP connections and counters as JSON, pushed over a WebSocket at
//! once on connect and then every second, for the demo page's live table. The viewer's own
//! connection is in the table too: the page shows the socket that carries it.
//!
//! One message:
//! ```json
//! {"type":"stats","seq":0,"you":"10.7.0.1:41234",
//!  "connections":[{"local":"10.7.0.2:80","remote":"10.7.0.1:41234","state":"ESTABLISHED",
//!                  "bytes_in":312,"bytes_out":129,"segs_in":4,"segs_out":3,
//!                  "retransmits":0,"srtt_ms":0.08,"cwnd":14600}],
//!  "counters":{"connections":3,"segs_in":40,"segs_out":38,"retransmits":0,"drops":{},...}}
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tungstenite::Message;

use crate::app::ws::{handshake, open, Conn, Limits, StatsSource, TRACE_TARGET};
use crate::runtime::{ConnInfo, Stack};
use crate::stack::Counters;

/// How often a snapshot is pushed after the first.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// A [`StatsSource`] reading `stack`.
pub(crate) fn source(stack: Stack) -> StatsSource {
    std::sync::Arc::new(move |you, seq| snapshot(&stack.connections(), &stack.counters(), you, seq).to_string())
}

/// One snapshot as JSON. Connections are ordered by remote then local address, so rows
/// keep their place from one second to the next.
pub(crate) fn snapshot(conns: &[ConnInfo], counters: &Counters, you: Option<SocketAddr>, seq: u64) -> Value {
    let mut conns: Vec<&ConnInfo> = conns.iter().collect();
    conns.sort_by_key(|c| (c.remote, c.local));
    let rows: Vec<Value> = conns
        .iter()
        .map(|c| {
            json!({
                "local": c.local.to_string(),
                "remote": c.remote.to_string(),
                "state": c.state.name(),
                "bytes_in": c.stats.bytes_in,
                "bytes_out": c.stats.bytes_out,
                "segs_in": c.stats.segs_in,
                "segs_out": c.stats.segs_out,
                "retransmits": c.stats.retransmits,
                // Rounded to microseconds: more digits would be noise.
                "srtt_ms": c.srtt.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
                "cwnd": c.cwnd,
            })
        })
        .collect();
    let live_retransmits: u64 = conns.iter().map(|c| c.stats.retransmits).sum();
    let drops: Map<String, Value> = counters.drops.iter().map(|(r, n)| (r.to_string(), json!(n))).collect();
    json!({
        "type": "stats",
        "seq": seq,
        "you": you.map(|a| a.to_string()),
        "connections": rows,
        "counters": {
            "packets_in": counters.packets_in,
            "segs_in": counters.segs_in,
            "segs_out": counters.segs_out,
            "connections": counters.connections,
            "rst_sent": counters.rst_sent,
            "no_listener": counters.no_listener,
            "icmp_echo": counters.icmp_echo,
            "retransmits": counters.retransmits_closed + live_retransmits,
            "device_drops": counters.device_drops,
            "drops": drops,
        },
    })
}

/// Serves one `/stats` connection: a pusher thread sends a snapshot at once and then every
/// [`INTERVAL`]; this thread reads (pings, the close) until the client goes.
pub(crate) fn run<S: Conn>(
    source: StatsSource,
    mut stream: S,
    accepted: &handshake::Accepted,
    leftover: Vec<u8>,
    limits: Limits,
    trace: bool,
) -> io::Result<()> {
    handshake::write_switching(&mut stream, accepted)?;
    let you = stream.peer_addr();
    let (tx, mut rx) = open(stream, leftover, limits, trace)?;
    // Dropping `stop` wakes the pusher at once instead of at its next tick.
    let (stop, stopped) = mpsc::channel::<()>();
    let pusher = std::thread::Builder::new().name("stats-push".into()).spawn(move || {
        for seq in 0.. {
            if let Err(e) = tx.send(Message::Text(source(you, seq).into())) {
                tracing::debug!(target: TRACE_TARGET, "stats: push failed: {e}");
                return;
            }
            if !matches!(stopped.recv_timeout(INTERVAL), Err(mpsc::RecvTimeoutError::Timeout)) {
                return;
            }
        }
    })?;
    let result = loop {
        match rx.recv() {
            Ok(Some(_)) => {} // nothing to answer; pings are handled inside
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    drop(stop);
    let _ = pusher.join();
    rx.finish();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::{ConnStats, State};
    use crate::wire::DropReason;

    #[test]
    fn snapshot_has_the_table_and_the_counters() {
        let conn = |port: u16, state| ConnInfo {
            local: "10.7.0.2:80".parse().expect("addr"),
            remote: format!("10.7.0.1:{port}").parse().expect("addr"),
            state,
            stats: ConnStats { segs_in: 4, segs_out: 3, bytes_in: 312, bytes_out: 129, retransmits: 2 },
            srtt: Some(Duration::from_micros(81)),
            cwnd: 14600,
        };
        let conns = vec![conn(5000, State::TimeWait), conn(4000, State::Established)];
        let mut counters = Counters { connections: 9, retransmits_closed: 5, ..Counters::default() };
        counters.count_drop(DropReason::BadTcpChecksum);
        let v = snapshot(&conns, &counters, Some("10.7.0.1:4000".parse().expect("addr")), 3);
        assert_eq!(v["type"], "stats");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["you"], "10.7.0.1:4000");
        let rows = v["connections"].as_array().expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["remote"], "10.7.0.1:4000", "sorted by remote address");
        assert_eq!(rows[0]["state"], "ESTABLISHED");
        assert_eq!(rows[0]["bytes_in"], 312);
        assert_eq!(rows[0]["bytes_out"], 129);
        assert_eq!(rows[0]["retransmits"], 2);
        assert_eq!(rows[0]["srtt_ms"], 0.081);
        assert_eq!(rows[1]["state"], "TIME-WAIT");
        assert_eq!(v["counters"]["retransmits"], 9);
        assert_eq!(v["counters"]["connections"], 9);
        assert_eq!(v["counters"]["drops"][DropReason::BadTcpChecksum.to_string()], 1);
    }

    #[test]
    fn no_rtt_yet_is_null() {
        let c = ConnInfo {
            local: "10.7.0.2:80".parse().expect("addr"),
            remote: "10.7.0.1:1".parse().expect("addr"),
            state: State::SynReceived,
            stats: ConnStats::default(),
            srtt: None,
            cwnd: 0,
        };
        let v = snapshot(&[c], &Counters::default(), None, 0);
        assert!(v["connections"][0]["srtt_ms"].is_null());
        assert!(v["you"].is_null());
    }
}
