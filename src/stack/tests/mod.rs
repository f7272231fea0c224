//! Scripted-peer tests: the test plays the remote host segment by segment against a [`Host`]
//! with a fake clock, like a packetdrill script. Nothing here touches a device or the real
//! clock, so every run is the same.

mod batch;
mod burst;
mod close;
mod congestion;
mod counted;
mod data;
mod filtering;
mod fuzz_found;
mod handshake;
mod hostile;
mod limits;
mod live;
mod model;
mod nagle;
mod offload;
mod options;
mod probe_window;
mod reliability;
mod reset;
mod sim;
mod wake;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::{ConnId, Host, HostConfig};
use crate::tcp::State;
use crate::wire::{self, ipv4, Packet, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

pub(super) const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
pub(super) const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
pub(super) const PEER_PORT: u16 = 40000;

/// A segment the peer sends; built with `syn()`, `ack()`, … and refined with setters.
#[derive(Clone, Debug)]
pub(super) struct Out {
    hdr: TcpHeaderOut,
    payload: Vec<u8>,
    from_ip: Ipv4Addr,
    from_port: u16,
    to_port: Option<u16>,
}

pub(super) fn seg(flags: TcpFlags) -> Out {
    Out {
        hdr: TcpHeaderOut { flags, window: 65535, ..Default::default() },
        payload: Vec::new(),
        from_ip: PEER_IP,
        from_port: PEER_PORT,
        to_port: None,
    }
}
pub(super) fn syn() -> Out {
    seg(TcpFlags::SYN)
}
pub(super) fn ack() -> Out {
    seg(TcpFlags::ACK)
}
pub(super) fn fin() -> Out {
    seg(TcpFlags::FIN | TcpFlags::ACK)
}
pub(super) fn rst() -> Out {
    seg(TcpFlags::RST)
}

impl Out {
    pub(super) fn seq(mut self, s: u32) -> Self {
        self.hdr.seq = SeqNum(s);
        self
    }
    pub(super) fn ack(mut self, a: u32) -> Self {
        self.hdr.ack = SeqNum(a);
        self.hdr.flags |= TcpFlags::ACK;
        self
    }
    pub(super) fn win(mut self, w: u16) -> Self {
        self.hdr.window = w;
        self
    }
    pub(super) fn mss(mut self, m: u16) -> Self {
        self.hdr.options.mss = Some(m);
        self
    }
    pub(super) fn wscale(mut self, s: u8) -> Self {
        self.hdr.options.window_scale = Some(s);
        self
    }
    pub(super) fn data(mut self, d: &[u8]) -> Self {
        self.payload = d.to_vec();
        self.hdr.flags |= TcpFlags::PSH;
        self
    }
    pub(super) fn flags(mut self, f: TcpFlags) -> Self {
        self.hdr.flags = f;
        self
    }
    /// From another address than the peer's (a second client, or a forged source).
    pub(super) fn src(mut self, ip: Ipv4Addr) -> Self {
        self.from_ip = ip;
        self
    }
    pub(super) fn sport(mut self, p: u16) -> Self {
        self.from_port = p;
        self
    }
    pub(super) fn dport(mut self, p: u16) -> Self {
        self.to_port = Some(p);
        self
    }
}

/// A segment the host sent, decoded.
#[derive(Clone, Debug)]
pub(super) struct Got {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
    /// Payload per wire segment when the host sent a TSO super-packet; 0 otherwise.
    pub gso: u16,
}

impl Got {
    pub(super) fn len(&self) -> u32 {
        self.payload.len() as u32
    }
}

pub(super) struct Peer {
    pub host: Host,
    pub now: Instant,
    pub port: u16,
    pub conn: Option<ConnId>,
}

pub(super) fn config() -> HostConfig {
    let mut cfg = HostConfig { addr: HOST_IP, ..Default::default() };
    cfg.tcp.msl = Duration::from_millis(500);
    cfg.tcp.recv_buf = 8192;
    cfg.tcp.send_buf = 16384;
    cfg.tcp.mss = 1000;
    // Acknowledge every segment at once, so each test states exactly the ACK it expects;
    // the delayed-ACK tests turn it back on.
    cfg.tcp.delayed_ack = Duration::ZERO;
    // Retransmission-timer tests would see tail loss probes first; the tests of early
    // detection turn it back on.
    cfg.tcp.early_retransmit = false;
    cfg
}

impl Peer {
    pub(super) fn new(cfg: HostConfig) -> Peer {
        let now = Instant::now();
        Peer { host: Host::new(cfg, now), now, port: 8000, conn: None }
    }

    /// A host listening on port 8000.
    pub(super) fn listening() -> Peer {
        Peer::listening_with(config())
    }

    pub(super) fn listening_with(cfg: HostConfig) -> Peer {
        let mut p = Peer::new(cfg);
        p.host.listen(p.port, None).unwrap();
        p
    }

    /// Deliver a segment from the peer to the host.
    pub(super) fn send(&mut self, s: Out) {
        let src = SocketAddrV4::new(s.from_ip, s.from_port);
        let dst = SocketAddrV4::new(HOST_IP, s.to_port.unwrap_or(self.port));
        let mut pkt = Vec::new();
        ipv4::build_tcp(src, dst, &s.hdr, &s.payload, 7, &mut pkt);
        self.host.handle_packet(self.now, &pkt);
    }

    /// Deliver raw bytes as a packet.
    pub(super) fn send_raw(&mut self, bytes: &[u8]) {
        self.host.handle_packet(self.now, bytes);
    }

    /// The next segment the host sent; panics (failing the test) if there is none.
    pub(super) fn expect(&mut self) -> Got {
        self.next().expect("expected a segment from the host, got nothing")
    }

    pub(super) fn next(&mut self) -> Option<Got> {
        let (mut pkt, meta) = self.host.pop_output_meta()?;
        if meta.csum_partial {
            // What the device would finish (or the kernel's segmentation, per segment).
            assert!(crate::device::vnet::complete_tcp_checksum(&mut pkt), "partial checksum on a non-TCP packet");
        }
        // Parsed as its addressee would (the peer, or another client of the test).
        let to = pkt.get(16..20).and_then(|a| <[u8; 4]>::try_from(a).ok()).map_or(PEER_IP, Ipv4Addr::from);
        match wire::parse_packet(to, &pkt).expect("host sent a packet that does not parse") {
            Packet::Tcp(t) => Some(Got {
                src: t.src,
                dst: t.dst,
                seq: t.seq.0,
                ack: t.ack.0,
                flags: t.flags,
                window: t.window,
                options: t.options,
                payload: t.payload.to_vec(),
                gso: meta.gso_size,
            }),
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    pub(super) fn expect_nothing(&mut self) {
        if let Some(g) = self.next() {
            panic!("expected nothing, host sent {} seq={} ack={} len={}", g.flags, g.seq, g.ack, g.len());
        }
    }

    /// Move the fake clock on and fire due timers.
    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.host.on_timer(self.now);
    }

    pub(super) fn state(&self) -> State {
        self.host.conn(self.conn.expect("no connection yet")).expect("connection gone").state()
    }

    pub(super) fn accept(&mut self) -> ConnId {
        let id = self.host.accept(self.port).expect("nothing to accept");
        self.conn = Some(id);
        id
    }

    pub(super) fn app_write(&mut self, data: &[u8]) -> usize {
        let now = self.now;
        let id = self.conn.unwrap();
        self.host.with_conn(now, id, |c| c.send(data)).unwrap().unwrap()
    }

    pub(super) fn app_read(&mut self) -> Vec<u8> {
        let now = self.now;
        let id = self.conn.unwrap();
        let mut buf = vec![0u8; 1 << 20];
        match self.host.with_conn(now, id, |c| c.recv(&mut buf)).unwrap() {
            Ok(n) => buf[..n].to_vec(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Vec::new(),
            Err(e) => panic!("read failed: {e}"),
        }
    }

    pub(super) fn app_read_result(&mut self) -> std::io::Result<usize> {
        let now = self.now;
        let id = self.conn.unwrap();
        let mut buf = vec![0u8; 1 << 20];
        self.host.with_conn(now, id, |c| c.recv(&mut buf)).unwrap()
    }

    pub(super) fn app_shutdown(&mut self) {
        let now = self.now;
        let id = self.conn.unwrap();
        self.host.with_conn(now, id, |c| c.shutdown_write(now)).unwrap();
    }
}

/// Peer ISN used by the fixtures.
pub(super) const PEER_ISS: u32 = 1000;

/// A connection in ESTABLISHED, accepted by the application. Returns the peer and the
/// host's ISS; the peer's next sequence number is PEER_ISS + 1.
pub(super) fn established() -> (Peer, u32) {
    established_with(config())
}

pub(super) fn established_with(cfg: HostConfig) -> (Peer, u32) {
    let mut t = Peer::listening_with(cfg);
    t.send(syn().seq(PEER_ISS).mss(1000));
    let sa = t.expect();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    t.send(ack().seq(PEER_ISS + 1).ack(sa.seq.wrapping_add(1)));
    t.accept();
    assert_eq!(t.state(), State::Established);
    t.expect_nothing();
    (t, sa.seq)
}

/// Like `established_with`, but the peer offered SACK-permitted (no timestamps) and its
/// handshake ACK advertises `window`.
pub(super) fn established_sack_with(cfg: HostConfig, window: u16) -> (Peer, u32) {
    let mut t = Peer::listening_with(cfg);
    let mut s = syn().seq(PEER_ISS).mss(1000);
    s.hdr.options.sack_permitted = true;
    t.send(s);
    let sa = t.expect();
    assert!(sa.options.sack_permitted, "SACK-permitted answered");
    t.send(ack().seq(PEER_ISS + 1).ack(sa.seq.wrapping_add(1)).win(window));
    t.accept();
    (t, sa.seq)
}
