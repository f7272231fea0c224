//! The connection against a reference model of RFC 9293's state diagram (§3.3.2, Figure 5),
//! for random sequences of peer segments (SYN, SYN-ACK, ACK, data, FIN, RST with sequence and
//! acknowledgment numbers exact, near, or wild), application calls (read, write, shutdown,
//! abort, drop) and clock advances. After every step:
//!
//! - every state change the connection reports (its trace, which the stack writes for every
//!   `set_state`) is an edge of the diagram, taken for a cause that edge allows (a segment,
//!   with or without RST; the application's CLOSE or ABORT; a timeout), and together they
//!   account for the state the connection is in;
//! - where the RFC leaves no choice, the model predicts the state and the connection must be
//!   in it: a RST at exactly RCV.NXT closes, one elsewhere in the window does not (RFC
//!   5961 §3); CLOSE moves ESTABLISHED to FIN-WAIT-1 and CLOSE-WAIT to LAST-ACK; an
//!   acceptable FIN at RCV.NXT moves ESTABLISHED to CLOSE-WAIT and FIN-WAIT-2 to TIME-WAIT;
//!   2×MSL after entering it, TIME-WAIT is over;
//! - SND.UNA ≤ SND.NXT ≤ SND.MAX; SND.UNA and SND.MAX never move back; the right edge of the
//!   advertised receive window never moves left, in the connection (RCV.ADV) and on the wire
//!   (SEG.ACK + SEG.WND scaled, RFC 9293 §3.8.6.2.2);
//! - no counter of the host or the connection ever decreases.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::stack::Counters;
use crate::trace::TraceFormat;
use crate::wire::DropReason;

// ----- The reference model -----

/// Why a state may change in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// The application opened the connection (active OPEN).
    Open,
    /// A segment arrived; `rst`: it carried RST.
    Segment { rst: bool },
    /// The application's CLOSE (shutdown, or dropping a handle with nothing unread).
    Close,
    /// The application's ABORT (or dropping a handle with data unread, RFC 9293 §3.10.4).
    Abort,
    /// A timer: retransmissions exhausted, TIME-WAIT over, an orphan's FIN-WAIT-2 limit.
    Timeout,
    /// A read or a write: no state changes for these.
    Quiet,
}

/// RFC 9293's state diagram as an edge table, each edge with the causes that may take it.
/// LISTEN is the listener's state before a connection exists; a connection that leaves
/// SYN-RECEIVED for LISTEN is removed, which the table writes as CLOSED.
fn legal(from: &str, to: &str, cause: Cause) -> bool {
    use Cause::*;
    let seg = matches!(cause, Segment { .. });
    let rst = cause == Segment { rst: true };
    match (from, to) {
        ("LISTEN", "SYN-RECEIVED") => seg,
        ("CLOSED", "SYN-SENT") => cause == Open,
        // rcv SYN (simultaneous open); rcv SYN,ACK.
        ("SYN-SENT", "SYN-RECEIVED") | ("SYN-SENT", "ESTABLISHED") => seg && !rst,
        // rcv ACK of SYN; rcv FIN (§3.10.7.4, eighth check).
        ("SYN-RECEIVED", "ESTABLISHED") | ("SYN-RECEIVED", "CLOSE-WAIT") => seg && !rst,
        // CLOSE; or, where the FIN waits for ESTABLISHED (§3.10.4), the ACK of our SYN.
        ("SYN-RECEIVED", "FIN-WAIT-1") => cause == Close || seg && !rst,
        ("ESTABLISHED", "FIN-WAIT-1") | ("CLOSE-WAIT", "LAST-ACK") => cause == Close,
        ("ESTABLISHED", "CLOSE-WAIT")
        | ("FIN-WAIT-1", "FIN-WAIT-2")
        | ("FIN-WAIT-1", "CLOSING")
        | ("FIN-WAIT-1", "TIME-WAIT")
        | ("FIN-WAIT-2", "TIME-WAIT")
        | ("CLOSING", "TIME-WAIT") => seg && !rst,
        // rcv ACK of FIN, or a RST.
        ("LAST-ACK", "CLOSED") => seg || cause == Abort || cause == Timeout,
        // CLOSE in SYN-SENT deletes the TCB; RST,ACK for our SYN; retries exhausted.
        ("SYN-SENT", "CLOSED") => cause == Close || rst || cause == Abort || cause == Timeout,
        // Any other state: a RST, ABORT, or a timeout.
        (_, "CLOSED") => rst || cause == Abort || cause == Timeout,
        _ => false,
    }
}

#[test]
fn the_edge_table_is_the_diagram() {
    let seg = Cause::Segment { rst: false };
    assert!(legal("ESTABLISHED", "CLOSE-WAIT", seg));
    assert!(!legal("ESTABLISHED", "CLOSE-WAIT", Cause::Close));
    assert!(!legal("ESTABLISHED", "TIME-WAIT", seg));
    assert!(!legal("CLOSE-WAIT", "FIN-WAIT-1", Cause::Close));
    assert!(!legal("ESTABLISHED", "CLOSED", seg), "only a RST closes on a segment");
    assert!(legal("ESTABLISHED", "CLOSED", Cause::Segment { rst: true }));
    assert!(legal("TIME-WAIT", "CLOSED", Cause::Timeout));
    assert!(!legal("CLOSED", "ESTABLISHED", seg));
}

// ----- What the random sequences are made of -----

/// A sequence or acknowledgment number, relative to what the peer should send.
#[derive(Clone, Copy, Debug)]
enum Num {
    Exact,
    Near(i32),
    Wild(u32),
}

fn num() -> impl Strategy<Value = Num> {
    prop_oneof![
        6 => Just(Num::Exact),
        3 => (-3000i32..3000).prop_map(Num::Near),
        1 => any::<u32>().prop_map(Num::Wild),
    ]
}

impl Num {
    fn at(self, base: u32) -> u32 {
        match self {
            Num::Exact => base,
            Num::Near(d) => base.wrapping_add(d as u32),
            Num::Wild(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Syn,
    SynAck,
    Ack,
    Data(u16),
    Fin,
    DataFin(u16),
    Rst,
    RstAck,
}

impl Kind {
    fn flags(self) -> TcpFlags {
        match self {
            Kind::Syn => TcpFlags::SYN,
            Kind::SynAck => TcpFlags::SYN | TcpFlags::ACK,
            Kind::Ack => TcpFlags::ACK,
            Kind::Data(_) => TcpFlags::ACK | TcpFlags::PSH,
            Kind::Fin => TcpFlags::FIN | TcpFlags::ACK,
            Kind::DataFin(_) => TcpFlags::FIN | TcpFlags::ACK | TcpFlags::PSH,
            Kind::Rst => TcpFlags::RST,
            Kind::RstAck => TcpFlags::RST | TcpFlags::ACK,
        }
    }

    fn payload_len(self) -> usize {
        match self {
            Kind::Data(n) | Kind::DataFin(n) => usize::from(n),
            _ => 0,
        }
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        1 => Just(Kind::Syn),
        1 => Just(Kind::SynAck),
        5 => Just(Kind::Ack),
        4 => (1u16..2500).prop_map(Kind::Data),
        3 => Just(Kind::Fin),
        1 => (1u16..1500).prop_map(Kind::DataFin),
        2 => Just(Kind::Rst),
        1 => Just(Kind::RstAck),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Segment {
        kind: Kind,
        seq: Num,
        ack: Num,
        window: u16,
    },
    Read,
    Write(u16),
    Shutdown,
    Abort,
    /// The application drops its handle.
    Drop,
    Advance(Duration),
}

fn step() -> impl Strategy<Value = Step> {
    let window = prop_oneof![4 => Just(65535u16), 1 => Just(0u16), 2 => 1u16..4000];
    prop_oneof![
        12 => (kind(), num(), num(), window)
            .prop_map(|(kind, seq, ack, window)| Step::Segment { kind, seq, ack, window }),
        2 => Just(Step::Read),
        2 => (1u16..20000).prop_map(Step::Write),
        2 => Just(Step::Shutdown),
        1 => Just(Step::Abort),
        1 => Just(Step::Drop),
        3 => prop_oneof![
            Just(Duration::from_millis(10)),
            Just(Duration::from_millis(250)),
            Just(Duration::from_secs(1)),
            Just(Duration::from_secs(5)),
            Just(Duration::from_secs(70)),
            Just(Duration::from_secs(600)),
        ]
        .prop_map(Step::Advance),
    ]
}

#[derive(Clone, Debug)]
struct Scenario {
    active: bool,
    /// Options on the peer's SYN (or SYN,ACK): MSS, window scale, SACK-permitted.
    mss: Option<u16>,
    wscale: Option<u8>,
    sack: bool,
    steps: Vec<Step>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        any::<bool>(),
        proptest::option::of(prop_oneof![Just(536u16), Just(1460), 1u16..9000]),
        proptest::option::of(0u8..16),
        any::<bool>(),
        proptest::collection::vec(step(), 1..48),
    )
        .prop_map(|(active, mss, wscale, sack, steps)| Scenario { active, mss, wscale, sack, steps })
}

// ----- Running a scenario -----

/// The peer's first sequence number.
const ISN: u32 = 1000;

/// `snd_una`, `snd_nxt`, `snd_max`, `rcv_adv` as `describe()` prints them (relative to the
/// ISNs).
#[derive(Clone, Copy, Debug)]
struct Vars {
    snd_una: u32,
    snd_nxt: u32,
    snd_max: u32,
    rcv_adv: u32,
}

fn vars(describe: &str) -> Vars {
    let field = |name: &str| -> u32 {
        describe
            .split(' ')
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in describe(): {describe}"))
    };
    Vars { snd_una: field("snd_una"), snd_nxt: field("snd_nxt"), snd_max: field("snd_max"), rcv_adv: field("rcv_adv") }
}

/// `a` is no later than `b` in sequence space.
fn le(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) as i32 >= 0
}

/// Every counter, by name, so two snapshots can be compared.
fn counters(c: &Counters) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (name, v) in [
        ("packets_in", c.packets_in),
        ("segs_in", c.segs_in),
        ("segs_out", c.segs_out),
        ("connections", c.connections),
        ("rst_sent", c.rst_sent),
        ("no_listener", c.no_listener),
        ("icmp_echo", c.icmp_echo),
        ("retransmits_closed", c.retransmits_closed),
        ("device_drops", c.device_drops),
        ("syn_cookies_sent", c.syn_cookies_sent),
        ("syn_cookies_accepted", c.syn_cookies_accepted),
        ("challenge_acks_suppressed", c.challenge_acks_suppressed),
        ("time_wait_dropped", c.time_wait_dropped),
    ] {
        m.insert(name.to_string(), v);
    }
    for r in DropReason::ALL {
        m.insert(format!("drop:{r}"), c.drops.get(&r).copied().unwrap_or(0));
    }
    m
}

/// The state the model predicts for the end of a step, where RFC 9293 leaves no choice.
#[derive(Debug)]
enum Predict {
    Nothing,
    Is(&'static str),
    OneOf(&'static [&'static str]),
    Unchanged,
}

struct Run {
    t: Peer,
    active: bool,
    /// The model's state for the peer's four-tuple.
    model: &'static str,
    /// The connection the model follows, and the application's handle on it.
    id: Option<ConnId>,
    held: Option<ConnId>,
    local_port: u16,
    last: Option<(ConnId, Vars)>,
    /// Window scaling as negotiated in the handshake: our shift, if both sides offered it.
    our_shift: Option<u8>,
    peer_offered_ws: bool,
    /// MSS, window scale and SACK-permitted on the peer's SYNs.
    syn_options: (Option<u16>, Option<u8>, bool),
    /// Right edge of the last window advertised on the wire, per connection.
    wire_edge: Option<(ConnId, u32)>,
    counters: BTreeMap<String, u64>,
    conn_stats: Option<(ConnId, [u64; 5])>,
    log: Vec<String>,
}

const STATES: [&str; 11] = [
    "LISTEN",
    "SYN-SENT",
    "SYN-RECEIVED",
    "ESTABLISHED",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSE-WAIT",
    "CLOSING",
    "LAST-ACK",
    "TIME-WAIT",
    "CLOSED",
];

fn intern(name: &str) -> &'static str {
    STATES.iter().find(|s| **s == name).copied().unwrap_or_else(|| panic!("unknown state name {name:?}"))
}

impl Run {
    fn new(sc: &Scenario) -> Run {
        let mut t = Peer::listening_with(config());
        t.host.tracer.set_enabled(true);
        t.host.tracer.set_format(TraceFormat::Json);
        let counters = counters(&t.host.counters);
        let mut r = Run {
            t,
            active: sc.active,
            model: if sc.active { "CLOSED" } else { "LISTEN" },
            id: None,
            held: None,
            local_port: 8000,
            last: None,
            our_shift: None,
            peer_offered_ws: sc.wscale.is_some(),
            syn_options: (sc.mss, sc.wscale, sc.sack),
            wire_edge: None,
            counters,
            conn_stats: None,
            log: Vec::new(),
        };
        if sc.active {
            let now = r.t.now;
            let id = r.t.host.connect(now, SocketAddrV4::new(PEER_IP, PEER_PORT)).expect("connect");
            r.local_port = r.t.host.conn(id).expect("the new connection").local.port();
            r.id = Some(id);
            r.held = Some(id);
            r.after(Cause::Open, Predict::Is("SYN-SENT"));
        }
        r
    }

    fn remote(&self) -> SocketAddrV4 {
        SocketAddrV4::new(PEER_IP, PEER_PORT)
    }

    /// The connection on the peer's four-tuple, if the host has one: the newest, when the
    /// application still holds an old, closed one.
    fn conn(&self) -> Option<(ConnId, &crate::tcp::Connection)> {
        let remote = self.remote();
        self.t
            .host
            .connections()
            .filter(|(_, c)| c.remote == remote && c.local.port() == self.local_port)
            .max_by_key(|(id, _)| *id)
    }

    fn state_now(&self) -> &'static str {
        match self.conn() {
            Some((_, c)) => intern(c.state().name()),
            None if self.model == "LISTEN" => "LISTEN",
            None => "CLOSED",
        }
    }

    fn step(&mut self, s: &Step) {
        self.log.push(format!("{s:?}  [in {}]", self.model));
        let now = self.t.now;
        let before = self.state_now();
        match s {
            Step::Segment { kind, seq, ack, window } => {
                let (rcv_nxt, snd_max) = match self.conn() {
                    Some((_, c)) => {
                        let (iss, _) = c.isns();
                        (c.rcv_nxt().0, iss.0.wrapping_add(vars(&c.describe()).snd_max))
                    }
                    None => (ISN, 0),
                };
                // Before the peer's SYN is in, "exact" is the peer's ISN (for a SYN) or the
                // number after it.
                let seq_base = match before {
                    "LISTEN" | "SYN-SENT" | "CLOSED" if kind.flags().contains(TcpFlags::SYN) => ISN,
                    "LISTEN" | "SYN-SENT" | "CLOSED" => ISN + 1,
                    _ => rcv_nxt,
                };
                let mut out =
                    seg(kind.flags()).seq(seq.at(seq_base)).win(*window).dport(self.local_port).flags(kind.flags());
                if kind.flags().contains(TcpFlags::ACK) {
                    out = out.ack(ack.at(snd_max));
                }
                if kind.flags().contains(TcpFlags::SYN) {
                    out.hdr.options.mss = self.syn_options.0;
                    out.hdr.options.window_scale = self.syn_options.1;
                    out.hdr.options.sack_permitted = self.syn_options.2;
                }
                out.payload = vec![0x5a; kind.payload_len()];
                let seg_seq = out.hdr.seq.0;
                let seg_ack = out.hdr.ack.0;
                let predict = self.predict_segment(before, *kind, seg_seq, seg_ack);
                self.t.send(out);
                self.after(Cause::Segment { rst: kind.flags().contains(TcpFlags::RST) }, predict);
            }
            Step::Read => {
                if let Some(id) = self.held {
                    let mut buf = vec![0u8; 4096];
                    self.t.host.with_conn(now, id, |c| c.recv(&mut buf));
                }
                self.after(Cause::Quiet, Predict::Unchanged);
            }
            Step::Write(n) => {
                if let Some(id) = self.held {
                    let data = vec![0xa5; usize::from(*n)];
                    self.t.host.with_conn(now, id, |c| c.send(&data));
                }
                self.after(Cause::Quiet, Predict::Unchanged);
            }
            Step::Shutdown => {
                let predict = match (self.held.is_some(), before) {
                    (true, "ESTABLISHED") => Predict::Is("FIN-WAIT-1"),
                    (true, "CLOSE-WAIT") => Predict::Is("LAST-ACK"),
                    (true, "SYN-SENT") => Predict::Is("CLOSED"),
                    (false, _) => Predict::Unchanged,
                    _ => Predict::Nothing,
                };
                if let Some(id) = self.held {
                    self.t.host.with_conn(now, id, |c| c.shutdown_write(now));
                }
                self.after(Cause::Close, predict);
            }
            Step::Abort => {
                let predict = if self.held.is_some() { Predict::Is("CLOSED") } else { Predict::Unchanged };
                if let Some(id) = self.held {
                    self.t.host.with_conn(now, id, |c| c.abort(now, std::io::ErrorKind::ConnectionAborted));
                }
                self.after(Cause::Abort, predict);
            }
            Step::Drop => {
                if let Some(id) = self.held.take() {
                    let unread = self.t.host.conn(id).is_some_and(|c| c.buffered().0 > 0);
                    self.t.host.release(now, id);
                    self.after(if unread { Cause::Abort } else { Cause::Close }, Predict::Nothing);
                } else {
                    self.after(Cause::Close, Predict::Unchanged);
                }
            }
            Step::Advance(d) => {
                let predict = if before == "TIME-WAIT" && *d >= config().tcp.msl * 2 {
                    Predict::Is("CLOSED")
                } else {
                    Predict::Nothing
                };
                self.t.advance(*d);
                self.after(Cause::Timeout, predict);
            }
        }
    }

    /// Where RFC 9293 (with RFC 5961) decides a segment's effect on the state alone.
    fn predict_segment(&self, before: &'static str, kind: Kind, seq: u32, ack: u32) -> Predict {
        let Some((_, c)) = self.conn() else { return Predict::Nothing };
        let synced = !matches!(before, "SYN-SENT" | "CLOSED" | "LISTEN");
        if !synced {
            return Predict::Nothing;
        }
        let rcv_nxt = c.rcv_nxt().0;
        let (iss, irs) = c.isns();
        let v = vars(&c.describe());
        let (snd_una, snd_max) = (iss.0.wrapping_add(v.snd_una), iss.0.wrapping_add(v.snd_max));
        let rcv_adv = irs.0.wrapping_add(v.rcv_adv);
        match kind {
            // RFC 5961 §3.2: exactly at RCV.NXT resets; anywhere else in the window gets a
            // challenge ACK and changes nothing.
            Kind::Rst | Kind::RstAck if seq == rcv_nxt => Predict::Is("CLOSED"),
            Kind::Rst | Kind::RstAck
                if le(rcv_nxt, seq) && seq.wrapping_sub(rcv_nxt) < rcv_adv.wrapping_sub(rcv_nxt) =>
            {
                Predict::Unchanged
            }
            // RFC 5961 §4: a SYN on a synchronized connection changes nothing (challenge ACK),
            // except that a SYN beyond RCV.NXT may end TIME-WAIT early (RFC 6191).
            Kind::Syn if before != "SYN-RECEIVED" && before != "TIME-WAIT" => Predict::Unchanged,
            Kind::SynAck if before != "SYN-RECEIVED" => Predict::Unchanged,
            // An acceptable FIN at RCV.NXT whose ACK acknowledges nothing unsent.
            Kind::Fin if seq == rcv_nxt && le(snd_una, ack) && le(ack, snd_max) => match before {
                "ESTABLISHED" => Predict::Is("CLOSE-WAIT"),
                "FIN-WAIT-2" => Predict::Is("TIME-WAIT"),
                "FIN-WAIT-1" if ack == snd_max => Predict::OneOf(&["CLOSING", "TIME-WAIT"]),
                _ => Predict::Nothing,
            },
            _ => Predict::Nothing,
        }
    }

    /// Check everything after one step.
    fn after(&mut self, cause: Cause, predict: Predict) {
        let remote = self.remote().to_string();
        let before_model = self.model;
        // 1. The state changes the trace reports for this four-tuple, each along an edge.
        for line in self.t.host.tracer.take_lines() {
            let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON trace line");
            let event = v["event"].as_str().unwrap_or("");
            if event == "note" && v["what"].as_str().is_some_and(|w| w.contains("reuses a TIME-WAIT")) {
                // RFC 1122 §4.2.2.13: a new SYN may end TIME-WAIT early.
                assert_eq!(self.model, "TIME-WAIT", "{}", self.history());
                self.model = "CLOSED";
                continue;
            }
            if event != "state" || v["remote"].as_str() != Some(remote.as_str()) {
                continue;
            }
            let from = v["from"].as_str().unwrap_or("");
            let to = v["to"].as_str().unwrap_or("");
            // A passive connection is born from the listener: the model starts over.
            let from = if from == "LISTEN" && !self.active && self.model == "CLOSED" {
                self.model = "LISTEN";
                "LISTEN"
            } else {
                from
            };
            assert_eq!(
                from,
                self.model,
                "the trace says {from} → {to} but the model is in {}\n{}",
                self.model,
                self.history()
            );
            assert!(
                legal(from, to, cause),
                "{from} → {to} is not an edge of RFC 9293's diagram for {cause:?}\n{}",
                self.history()
            );
            self.log.push(format!("    {from} → {to}"));
            self.model = intern(to);
        }
        // 2. The changes account for the state the connection is in.
        let (now_id, actual) = match self.conn() {
            Some((id, c)) => (Some(id), intern(c.state().name())),
            None => (None, "CLOSED"),
        };
        let model = if self.model == "LISTEN" { "CLOSED" } else { self.model };
        if now_id.is_some() || self.model != "LISTEN" {
            assert_eq!(actual, model, "the connection is in {actual} but its trace led to {model}\n{}", self.history());
        }
        // 3. Where the RFC decides, the model's prediction.
        match predict {
            Predict::Nothing => {}
            Predict::Is(s) => {
                assert_eq!(actual, s, "RFC 9293 says {s} here, the connection is in {actual}\n{}", self.history())
            }
            Predict::OneOf(ss) => assert!(
                ss.contains(&actual),
                "RFC 9293 says one of {ss:?} here, the connection is in {actual}\n{}",
                self.history()
            ),
            Predict::Unchanged => assert_eq!(
                self.model,
                before_model,
                "RFC 9293 says the state stays {before_model}, it went to {}\n{}",
                self.model,
                self.history()
            ),
        }
        if now_id != self.id {
            // A new connection on the four-tuple (or none): start its own checks afresh, and
            // the application lets go of the old one so that its calls go to the new one.
            if let (Some(old), false) = (self.held, self.active) {
                if Some(old) != now_id {
                    self.held = None;
                    let now = self.t.now;
                    self.t.host.release(now, old);
                }
            }
            self.id = now_id;
            self.last = None;
            self.wire_edge = None;
            self.conn_stats = None;
        }
        if self.held.is_none() && !self.active {
            self.held = self.t.host.accept(self.t.port);
        }
        // 4. Sequence-space invariants.
        if let Some((id, c)) = self.conn() {
            let d = c.describe();
            let v = vars(&d);
            assert!(
                le(v.snd_una, v.snd_nxt) && le(v.snd_nxt, v.snd_max),
                "SND.UNA ≤ SND.NXT ≤ SND.MAX broken: {d}\n{}",
                self.history()
            );
            if let Some((last_id, last)) = self.last {
                if last_id == id {
                    assert!(le(last.snd_una, v.snd_una), "SND.UNA moved back: {last:?} → {d}\n{}", self.history());
                    assert!(le(last.snd_max, v.snd_max), "SND.MAX moved back: {last:?} → {d}\n{}", self.history());
                    assert!(
                        le(last.rcv_adv, v.rcv_adv),
                        "the advertised window's right edge moved left: {last:?} → {d}\n{}",
                        self.history()
                    );
                }
            }
            let s = c.stats;
            let stats = [s.segs_in, s.segs_out, s.bytes_in, s.bytes_out, s.retransmits];
            if let Some((last_id, last)) = self.conn_stats {
                if last_id == id {
                    assert!(
                        last.iter().zip(stats.iter()).all(|(a, b)| a <= b),
                        "a connection counter went down: {last:?} → {stats:?}\n{}",
                        self.history()
                    );
                }
            }
            self.conn_stats = Some((id, stats));
            self.last = Some((id, v));
        }
        // 5. The window on the wire, segment by segment.
        while let Some(g) = self.t.next() {
            if g.dst != self.remote() || g.src.port() != self.local_port {
                continue;
            }
            if g.flags.contains(TcpFlags::SYN) {
                self.our_shift = g.options.window_scale;
                continue;
            }
            if g.flags.contains(TcpFlags::RST) || !g.flags.contains(TcpFlags::ACK) {
                continue;
            }
            let shift = if self.peer_offered_ws { self.our_shift.unwrap_or(0) } else { 0 };
            let edge = g.ack.wrapping_add(u32::from(g.window) << shift);
            if let (Some(id), Some((edge_id, last))) = (self.id, self.wire_edge) {
                if edge_id == id {
                    assert!(
                        le(last, edge),
                        "the window's right edge on the wire moved left: {last} → {edge} (ack {} win {} << {shift})\n{}",
                        g.ack,
                        g.window,
                        self.history()
                    );
                }
            }
            if let Some(id) = self.id {
                self.wire_edge = Some((id, edge));
            }
        }
        // 6. Counters never go down.
        let now = counters(&self.t.host.counters);
        for (name, v) in &now {
            let old = self.counters.get(name).copied().unwrap_or(0);
            assert!(*v >= old, "counter {name} went down: {old} → {v}\n{}", self.history());
        }
        self.counters = now;
    }

    fn history(&self) -> String {
        self.log.join("\n")
    }
}

fn run(sc: &Scenario) {
    let mut r = Run::new(sc);
    for s in &sc.steps {
        r.step(s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn connection_follows_rfc9293s_state_diagram(sc in scenario()) {
        run(&sc);
    }
}
