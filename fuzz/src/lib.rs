//! What the fuzz targets share: the host under test, a driver that plays the applications
//! and checks everything the host writes, and the two targets' bodies (kept here, not in
//! `fuzz_targets/`, so the seed corpus can be replayed by an ordinary `cargo test` and the
//! seed writer can reuse them).
//!
//! The checks, after every input step:
//! - nothing panics (a panic inside `Host` would take the whole stack down);
//! - every packet the host writes is a well-formed IPv4 packet from us with correct
//!   checksums: TCP that our own parser accepts, or an ICMP echo reply;
//! - per connection, `snd_una ≤ snd_nxt ≤ snd_max` and the advertised right edge of the
//!   receive window never moves left;
//! - the host never holds more connections than `max_connections`.

pub mod packet_input;
pub mod seeds;
pub mod segment_sequence;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use synack::stack::{ConnId, Host, HostConfig};
use synack::wire::{self, checksum, Packet, SeqNum, TcpFlags, TcpHeaderOut};

pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
/// The echo port (RFC 862): what arrives goes back.
pub const ECHO_PORT: u16 = 7;
/// A port whose application writes `SERVE_BYTES` bytes at once, then closes.
pub const SERVE_PORT: u16 = 80;
pub const SERVE_BYTES: usize = 20_000;

/// Small limits, so the fuzzer reaches every one of them: a full backlog (SYN cookies), a
/// full accept queue, the connection limit, the TIME-WAIT limit, the memory budget, the
/// challenge-ACK rate limit, and full windows.
pub fn host_config() -> HostConfig {
    let mut cfg = HostConfig { addr: HOST_IP, ..Default::default() };
    cfg.backlog = 4;
    cfg.accept_queue = 4;
    cfg.max_connections = 32;
    cfg.max_time_wait = 4;
    cfg.memory_budget = 96 * 1024;
    cfg.challenge_acks_per_sec = 5;
    cfg.tcp.recv_buf = 16 * 1024;
    cfg.tcp.send_buf = 16 * 1024;
    cfg.tcp.mss = 1000;
    cfg.tcp.msl = Duration::from_secs(2);
    cfg.tcp.fin_wait2_timeout = Duration::from_secs(10);
    cfg.tcp.max_rto = Duration::from_secs(10);
    cfg
}

/// A TCP segment the host wrote, decoded.
#[derive(Clone, Debug)]
pub struct Sent {
    pub local_port: u16,
    pub remote: SocketAddrV4,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub window_scale: Option<u8>,
    pub timestamps: Option<(u32, u32)>,
    pub len: u32,
}

impl Sent {
    /// The sequence number after this segment (SYN and FIN count one each).
    pub fn end(&self) -> SeqNum {
        self.seq
            + self.len
            + u32::from(self.flags.contains(TcpFlags::SYN))
            + u32::from(self.flags.contains(TcpFlags::FIN))
    }
}

/// Check one packet the host wrote; panics (a finding) when it is malformed. Returns the TCP
/// segment, or `None` for an ICMP echo reply.
pub fn check_output(pkt: &[u8]) -> Option<Sent> {
    assert!(pkt.len() >= 20, "host wrote a packet of {} bytes", pkt.len());
    assert_eq!(pkt[0], 0x45, "host wrote IPv4 with options or another version: {:02x}", pkt[0]);
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    assert_eq!(total, pkt.len(), "host wrote total length {total} for a packet of {}", pkt.len());
    assert_eq!(checksum::checksum(&pkt[..20]), 0, "host wrote a bad IPv4 header checksum");
    assert_eq!(u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff, 0, "host wrote a fragment");
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    assert_eq!(src, HOST_IP, "host wrote a packet from another address");
    match pkt[9] {
        wire::tcp::PROTO_TCP => {
            let parsed = wire::parse_packet(dst, pkt);
            let Ok(Packet::Tcp(seg)) = parsed else {
                panic!("host wrote TCP its own parser refuses: {parsed:?} {pkt:02x?}");
            };
            let f = seg.flags;
            assert!(
                !(f.contains(TcpFlags::RST) && f.intersects(TcpFlags::SYN | TcpFlags::FIN)),
                "host wrote {f} (a RST with SYN or FIN)"
            );
            assert!(!(f.contains(TcpFlags::SYN) && f.contains(TcpFlags::FIN)), "host wrote {f}");
            assert!(
                !f.contains(TcpFlags::RST) || seg.payload.is_empty(),
                "host wrote a RST carrying {} bytes",
                seg.payload.len()
            );
            Some(Sent {
                local_port: seg.src.port(),
                remote: seg.dst,
                seq: seg.seq,
                ack: seg.ack,
                flags: f,
                window: seg.window,
                window_scale: seg.options.window_scale,
                timestamps: seg.options.timestamps,
                len: seg.payload.len() as u32,
            })
        }
        wire::ipv4::PROTO_ICMP => {
            let body = &pkt[20..];
            assert!(body.len() >= 8, "host wrote a short ICMP message");
            assert_eq!(checksum::checksum(body), 0, "host wrote a bad ICMP checksum");
            match (body[0], body[1]) {
                // An echo reply, with the request's code (as Linux answers).
                (0, _) => {}
                // A port or protocol unreachable, quoting at least the offending IPv4 header.
                (3, 2 | 3) => assert!(body.len() >= 8 + 20, "host wrote an unreachable quoting no header"),
                other => panic!("host wrote ICMP (type, code) {other:?}"),
            }
            None
        }
        p => panic!("host wrote IP protocol {p}"),
    }
}

/// `snd_una`, `snd_nxt`, `snd_max` (relative to our ISS) and `rcv_adv` (relative to the
/// peer's), read from `Connection::describe()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqVars {
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub snd_max: u32,
    pub rcv_adv: u32,
}

pub fn seq_vars(describe: &str) -> Option<SeqVars> {
    let field = |name: &str| -> Option<u32> {
        let rest = describe.split(' ').find_map(|w| w.strip_prefix(name)?.strip_prefix('='))?;
        rest.parse().ok()
    };
    Some(SeqVars {
        snd_una: field("snd_una")?,
        snd_nxt: field("snd_nxt")?,
        snd_max: field("snd_max")?,
        rcv_adv: field("rcv_adv")?,
    })
}

/// `a` comes no later than `b` in sequence space.
pub fn seq_le(a: u32, b: u32) -> bool {
    b.wrapping_sub(a) as i32 >= 0
}

/// What one accepted connection's application does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AppKind {
    Echo,
    Serve,
}

struct App {
    id: ConnId,
    kind: AppKind,
    pending: Vec<u8>,
    written: usize,
    eof: bool,
    shut: bool,
}

/// A host, a fake clock, and the applications behind its listeners.
pub struct Driver {
    pub host: Host,
    pub start: Instant,
    pub now: Instant,
    apps: Vec<App>,
    /// Everything the host wrote, decoded, since the last `take_sent`.
    sent: Vec<Sent>,
    /// Our ISS per (remote, local port), from the SYNs and SYN,ACKs we sent.
    pub our_iss: HashMap<(SocketAddrV4, u16), SeqNum>,
    /// The peer's ISN per (remote, local port), from the SYNs delivered.
    pub their_isn: HashMap<(SocketAddrV4, u16), SeqNum>,
    /// Per connection, the last `SeqVars` seen.
    vars: HashMap<ConnId, SeqVars>,
    pub packets_out: u64,
    /// Keep the raw packets the host writes in `raw_out` (for the seed writer's sessions).
    pub keep_raw: bool,
    pub raw_out: Vec<Vec<u8>>,
}

impl Driver {
    pub fn new() -> Driver {
        let start = Instant::now();
        let mut host = Host::new(host_config(), start);
        // SYNACK_FUZZ_TRACE=1: print synack's --trace lines (to see what an input does).
        host.tracer.set_enabled(std::env::var_os("SYNACK_FUZZ_TRACE").is_some());
        // Both ports are free on a new host; nothing to handle.
        let _ = host.listen(ECHO_PORT, None);
        let _ = host.listen(SERVE_PORT, None);
        Driver {
            host,
            start,
            now: start,
            apps: Vec::new(),
            sent: Vec::new(),
            our_iss: HashMap::new(),
            their_isn: HashMap::new(),
            vars: HashMap::new(),
            packets_out: 0,
            keep_raw: false,
            raw_out: Vec::new(),
        }
    }

    /// Deliver one packet (remembering the ISN of any SYN in it), then let the
    /// applications run and check what comes out.
    pub fn deliver(&mut self, pkt: &[u8]) {
        if let Some(dst) = pkt.get(16..20) {
            let dst = Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]);
            if let Ok(Packet::Tcp(seg)) = wire::parse_packet(dst, pkt) {
                if seg.flags.contains(TcpFlags::SYN) {
                    self.their_isn.insert((seg.src, seg.dst.port()), seg.seq);
                }
            }
        }
        self.host.handle_packet(self.now, pkt);
        self.settle();
    }

    /// Build and deliver a segment from `remote` to our `port`.
    pub fn send(&mut self, remote: SocketAddrV4, port: u16, hdr: &TcpHeaderOut, payload: &[u8]) {
        let mut pkt = Vec::new();
        wire::ipv4::build_tcp(remote, SocketAddrV4::new(HOST_IP, port), hdr, payload, 1, &mut pkt);
        self.deliver(&pkt);
    }

    /// Move the clock on and fire what is due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.host.on_timer(self.now);
        self.settle();
    }

    /// Segments the host wrote since the last call.
    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    /// Run the applications until they are quiet, checking every output and invariant.
    pub fn settle(&mut self) {
        for _ in 0..8 {
            self.drain();
            if !self.run_apps() {
                break;
            }
        }
        self.drain();
        self.check_connections();
    }

    fn drain(&mut self) {
        for line in self.host.tracer.take_lines() {
            eprintln!("{line}");
        }
        while let Some(pkt) = self.host.pop_output() {
            self.packets_out += 1;
            if let Some(s) = check_output(&pkt) {
                if s.flags.contains(TcpFlags::SYN) {
                    self.our_iss.insert((s.remote, s.local_port), s.seq);
                }
                if self.sent.len() < 4096 {
                    self.sent.push(s);
                }
            }
            if self.keep_raw {
                self.raw_out.push(pkt);
            } else {
                self.host.recycle(pkt);
            }
        }
    }

    /// One round of application work; true if anything happened.
    fn run_apps(&mut self) -> bool {
        let mut busy = false;
        for (port, kind) in [(ECHO_PORT, AppKind::Echo), (SERVE_PORT, AppKind::Serve)] {
            while let Some(id) = self.host.accept(port) {
                self.apps.push(App { id, kind, pending: Vec::new(), written: 0, eof: false, shut: false });
                busy = true;
            }
        }
        let now = self.now;
        let mut buf = [0u8; 4096];
        let mut done = Vec::new();
        for (i, app) in self.apps.iter_mut().enumerate() {
            let id = app.id;
            // Read (echo keeps at most 64 KiB it could not write back yet).
            if !app.eof && app.pending.len() < 65536 {
                match self.host.with_conn(now, id, |c| c.recv(&mut buf)) {
                    Some(Ok(0)) => {
                        app.eof = true;
                        busy = true;
                    }
                    Some(Ok(n)) => {
                        if app.kind == AppKind::Echo {
                            app.pending.extend_from_slice(&buf[..n]);
                        }
                        busy = true;
                    }
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    _ => {
                        done.push(i);
                        continue;
                    }
                }
            }
            // Write.
            let data: Vec<u8> = match app.kind {
                AppKind::Echo => app.pending.clone(),
                AppKind::Serve => (app.written..SERVE_BYTES).map(|i| (i % 251) as u8).collect(),
            };
            if !data.is_empty() && !app.shut {
                match self.host.with_conn(now, id, |c| c.send(&data)) {
                    Some(Ok(n)) => {
                        match app.kind {
                            AppKind::Echo => {
                                app.pending.drain(..n);
                            }
                            AppKind::Serve => app.written += n,
                        }
                        busy |= n > 0;
                    }
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    _ => {
                        done.push(i);
                        continue;
                    }
                }
            }
            // Close: the echo when the peer has closed and all is written back; the server
            // once all is written.
            let finished = match app.kind {
                AppKind::Echo => app.eof && app.pending.is_empty(),
                AppKind::Serve => app.written == SERVE_BYTES,
            };
            if finished && !app.shut {
                app.shut = true;
                self.host.with_conn(now, id, |c| c.shutdown_write(now));
                busy = true;
            }
            if app.shut && (app.eof || app.kind == AppKind::Serve) {
                done.push(i);
            }
        }
        done.dedup();
        for i in done.into_iter().rev() {
            let app = self.apps.remove(i);
            self.host.release(now, app.id);
            busy = true;
        }
        busy
    }

    fn check_connections(&mut self) {
        let cfg = self.host.config();
        let count = self.host.connections().count();
        assert!(count <= cfg.max_connections, "{count} connections, limit {}", cfg.max_connections);
        let mut seen = HashMap::new();
        for (id, conn) in self.host.connections() {
            let d = conn.describe();
            let v = seq_vars(&d).unwrap_or_else(|| panic!("describe() changed its format: {d}"));
            assert!(seq_le(v.snd_una, v.snd_nxt) && seq_le(v.snd_nxt, v.snd_max), "SND.UNA ≤ SND.NXT ≤ SND.MAX: {d}");
            if let Some(old) = self.vars.get(&id) {
                assert!(seq_le(old.snd_una, v.snd_una), "SND.UNA moved back: {old:?} → {d}");
                assert!(seq_le(old.snd_max, v.snd_max), "SND.MAX moved back: {old:?} → {d}");
                assert!(seq_le(old.rcv_adv, v.rcv_adv), "the window's right edge moved left: {old:?} → {d}");
            }
            seen.insert(id, v);
        }
        self.vars = seen;
    }

    /// Release every connection and run the clock until the host holds none: whatever the
    /// peer did, a connection the application let go of must not live forever.
    pub fn wind_down(&mut self) {
        for _ in 0..4 {
            let now = self.now;
            for app in std::mem::take(&mut self.apps) {
                self.host.release(now, app.id);
            }
            self.settle();
        }
        // The applications took everything established; what is left never reached them
        // (SYN-RECEIVED) or was released already.
        let limit = self.now + Duration::from_secs(48 * 3600);
        for _ in 0..100_000 {
            if self.host.connections().next().is_none() {
                return;
            }
            let Some(next) = self.host.poll_at() else { break };
            if next > limit {
                break;
            }
            self.now = self.now.max(next);
            self.host.on_timer(self.now);
            self.drain();
            self.sent.clear();
        }
        let left: Vec<String> = self.host.connections().map(|(_, c)| c.describe()).collect();
        assert!(left.is_empty(), "released connections still held after 48 h with a silent peer: {left:?}");
    }
}

impl Default for Driver {
    fn default() -> Self {
        Driver::new()
    }
}

/// A peer endpoint, from the kernel side's address.
pub fn peer(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(PEER_IP, port)
}
