//! Test captures for the `analyze` tools, built packet by packet with etherparse and written
//! with pcap-file, so every scenario is reproducible byte for byte and needs no fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::{PacketBuilder, TcpOptionElement};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, TsResolution};

/// Client and server addresses used everywhere (a TUN-style private network).
pub const CLIENT: [u8; 4] = [10, 7, 0, 1];
/// The server end.
pub const SERVER: [u8; 4] = [10, 7, 0, 2];
/// Capture epoch: 2023-11-14 22:13:20 UTC.
pub const EPOCH: u64 = 1_700_000_000;

/// One IPv4 packet and when it was seen (offset from `EPOCH`).
#[derive(Clone)]
pub struct Pkt {
    pub at: Duration,
    pub ip: Vec<u8>,
    /// Bytes on the wire if more than captured (simulates a snap length cut).
    pub orig_len: Option<u32>,
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// Internet checksum, independent from the crate's, to fix up hand-edited headers.
pub fn checksum(data: &[u8], init: u32) -> u16 {
    let mut sum = init;
    for c in data.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from(c[0]) << 8 };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sets identification and DF like Linux does, and recomputes the header checksum.
pub fn linuxify(mut ip: Vec<u8>, id: u16) -> Vec<u8> {
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[6] = 0x40;
    ip[7] = 0;
    refresh_ip_checksum(&mut ip);
    ip
}

/// Recomputes the IPv4 header checksum after an edit.
pub fn refresh_ip_checksum(ip: &mut [u8]) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    ip[10] = 0;
    ip[11] = 0;
    let c = checksum(&ip[..ihl.min(ip.len())], 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Recomputes the TCP checksum (over the IPv4 pseudo-header) after an edit.
pub fn refresh_tcp_checksum(ip: &mut [u8]) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    ip[ihl + 16] = 0;
    ip[ihl + 17] = 0;
    let mut pseudo = 0u32;
    for c in ip[12..20].chunks(2) {
        pseudo += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    pseudo += 6 + (total - ihl) as u32;
    let c = checksum(&ip[ihl..total], pseudo);
    ip[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
}

/// A TCP segment description with defaults, so a scenario states only what matters.
#[derive(Clone)]
pub struct Seg {
    pub from_client: bool,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: Option<u32>,
    pub win: u16,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub opts: Vec<TcpOptionElement>,
    pub data: Vec<u8>,
}

pub fn seg(from_client: bool, seq: u32) -> Seg {
    Seg {
        from_client,
        sport: if from_client { 41234 } else { 80 },
        dport: if from_client { 80 } else { 41234 },
        seq,
        ack: None,
        win: 502,
        syn: false,
        fin: false,
        rst: false,
        psh: false,
        opts: Vec::new(),
        data: Vec::new(),
    }
}

impl Seg {
    pub fn ack(mut self, a: u32) -> Self {
        self.ack = Some(a);
        self
    }
    pub fn win(mut self, w: u16) -> Self {
        self.win = w;
        self
    }
    pub fn syn(mut self) -> Self {
        self.syn = true;
        self
    }
    pub fn fin(mut self) -> Self {
        self.fin = true;
        self
    }
    pub fn rst(mut self) -> Self {
        self.rst = true;
        self
    }
    pub fn data(mut self, d: &[u8]) -> Self {
        self.psh = true;
        self.data = d.to_vec();
        self
    }
    pub fn opts(mut self, o: Vec<TcpOptionElement>) -> Self {
        self.opts = o;
        self
    }
    pub fn ports(mut self, sport: u16, dport: u16) -> Self {
        self.sport = sport;
        self.dport = dport;
        self
    }

    pub fn build(&self, id: u16) -> Vec<u8> {
        let (src, dst) = if self.from_client { (CLIENT, SERVER) } else { (SERVER, CLIENT) };
        let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(self.sport, self.dport, self.seq, self.win);
        if self.syn {
            b = b.syn();
        }
        if self.fin {
            b = b.fin();
        }
        if self.rst {
            b = b.rst();
        }
        if self.psh {
            b = b.psh();
        }
        if let Some(a) = self.ack {
            b = b.ack(a);
        }
        if !self.opts.is_empty() {
            b = b.options(&self.opts).expect("options fit");
        }
        let mut out = Vec::new();
        b.write(&mut out, &self.data).expect("build packet");
        linuxify(out, id)
    }
}

/// Linux-like SYN options: MSS, SACK-permitted, timestamps, NOP, window scale.
pub fn syn_opts(ts: u32, ecr: u32) -> Vec<TcpOptionElement> {
    vec![
        TcpOptionElement::MaximumSegmentSize(1460),
        TcpOptionElement::SelectiveAcknowledgementPermitted,
        TcpOptionElement::Timestamp(ts, ecr),
        TcpOptionElement::Noop,
        TcpOptionElement::WindowScale(7),
    ]
}

/// Turns (time in µs, segment) pairs into packets with increasing IP ids.
pub fn packets(segs: &[(u64, Seg)]) -> Vec<Pkt> {
    segs.iter()
        .enumerate()
        .map(|(i, (t, s))| Pkt { at: us(*t), ip: s.build(0x1000 + i as u16), orig_len: None })
        .collect()
}

pub const C_ISN: u32 = 1_000_000;
/// Server ISN close to 2^32 so relative numbers must wrap correctly.
pub const S_ISN: u32 = 4_294_967_000;

pub const GET: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: 10.7.0.2\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
pub const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 52\r\n\r\n<html><body><h1>Hello from synack</h1></body></html>";

/// Handshake, one HTTP GET and its answer, and a FIN close from the client.
pub fn http_session() -> Vec<Pkt> {
    let c = C_ISN;
    let s = S_ISN;
    let g = GET.len() as u32;
    let o = OK.len() as u32;
    packets(&[
        (0, seg(true, c).syn().win(64240).opts(syn_opts(100, 0))),
        (120, seg(false, s).syn().ack(c + 1).win(65160).opts(syn_opts(900, 100))),
        (200, seg(true, c + 1).ack(s.wrapping_add(1))),
        (212_000, seg(true, c + 1).ack(s.wrapping_add(1)).data(GET)),
        (212_100, seg(false, s.wrapping_add(1)).ack(c + 1 + g).win(509)),
        (213_000, seg(false, s.wrapping_add(1)).ack(c + 1 + g).win(509).data(OK)),
        (213_100, seg(true, c + 1 + g).ack(s.wrapping_add(1 + o))),
        (300_000, seg(true, c + 1 + g).ack(s.wrapping_add(1 + o)).fin()),
        (300_150, seg(false, s.wrapping_add(1 + o)).ack(c + 2 + g).win(509).fin()),
        (300_200, seg(true, c + 2 + g).ack(s.wrapping_add(2 + o))),
    ])
}

fn sack(l: u32, r: u32) -> Vec<TcpOptionElement> {
    vec![
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
        TcpOptionElement::SelectiveAcknowledgement((l, r), [None, None, None]),
    ]
}

/// A timeout retransmission, then a loss repaired by fast retransmit after dup ACKs, then RST.
pub fn retransmission() -> Vec<Pkt> {
    let c = C_ISN;
    let s = 7_000;
    let d = [b'x'; 100];
    packets(&[
        (0, seg(true, c).syn().win(64240).opts(syn_opts(1, 0))),
        (100, seg(false, s).syn().ack(c + 1).win(65160).opts(syn_opts(2, 1))),
        (200, seg(true, c + 1).ack(s + 1)),
        (10_000, seg(true, c + 1).ack(s + 1).data(&d)),
        (220_000, seg(true, c + 1).ack(s + 1).data(&d)),
        (220_100, seg(false, s + 1).ack(c + 101).win(509)),
        (230_000, seg(true, c + 101).ack(s + 1).data(&d)),
        (230_010, seg(true, c + 201).ack(s + 1).data(&d)),
        (230_100, seg(false, s + 1).ack(c + 101).win(509).opts(sack(c + 201, c + 301))),
        (230_110, seg(true, c + 301).ack(s + 1).data(&d)),
        (230_200, seg(false, s + 1).ack(c + 101).win(509).opts(sack(c + 201, c + 401))),
        (230_300, seg(true, c + 101).ack(s + 1).data(&d)),
        (230_400, seg(false, s + 1).ack(c + 401).win(509)),
        (240_000, seg(true, c + 401).ack(s + 1).rst()),
    ])
}

/// A capture that starts in the middle of a connection: no SYN, ends with a bare RST.
pub fn midstream() -> Vec<Pkt> {
    let c = 3_000_000_000u32;
    let s = 12_345u32;
    packets(&[
        (0, seg(true, c).ack(s).data(b"hello, are you there?\n")),
        (50, seg(false, s).ack(c + 22).win(509)),
        (1_000, seg(false, s).ack(c + 22).win(509).data(b"yes\n")),
        (1_100, seg(true, c + 22).ack(s + 4)),
        (2_000, seg(true, c + 22).rst()),
    ])
}

/// Masks a WebSocket payload the way a client must.
fn ws_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        f.push(m | payload.len() as u8);
    } else {
        f.push(m | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

pub const UPGRADE: &[u8] = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 10.7.0.2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
pub const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// WebSocket upgrade, Engine.IO open, Socket.IO connect, a chat event each way, close.
pub fn websocket() -> Vec<Pkt> {
    let c = C_ISN;
    let s = 2_000_000u32;
    let k = Some([0x37, 0xfa, 0x21, 0x3d]);
    let open = ws_frame(1, br#"0{"sid":"Lbo5JLzTotvW3g2LAAAA","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#, None);
    let connect = ws_frame(1, b"40", k);
    let connected = ws_frame(1, br#"40{"sid":"edRUPQ3fSGLyGZA-AAAB"}"#, None);
    let event = ws_frame(1, br#"42["chat message","hi"]"#, k);
    let echo = ws_frame(1, br#"42["chat message","hi"]"#, None);
    let ping = ws_frame(1, b"2", None);
    let pong = ws_frame(1, b"3", k);
    let close = ws_frame(8, &[0x03, 0xe8], k);
    let close_reply = ws_frame(8, &[0x03, 0xe8], None);
    let mut cs = c + 1;
    let mut ss = s + 1;
    let mut v: Vec<(u64, Seg)> = vec![
        (0, seg(true, c).syn().win(64240).opts(syn_opts(10, 0))),
        (80, seg(false, s).syn().ack(c + 1).win(65160).opts(syn_opts(20, 10))),
        (160, seg(true, c + 1).ack(s + 1)),
    ];
    let mut t = 1_000u64;
    let mut send = |from_client: bool, data: &[u8], v: &mut Vec<(u64, Seg)>| {
        let (seq, ack) = if from_client { (cs, ss) } else { (ss, cs) };
        v.push((t, seg(from_client, seq).ack(ack).data(data)));
        t += 100;
        if from_client {
            cs += data.len() as u32;
        } else {
            ss += data.len() as u32;
        }
        let (seq, ack) = if from_client { (ss, cs) } else { (cs, ss) };
        v.push((t, seg(!from_client, seq).ack(ack).win(509)));
        t += 900;
    };
    send(true, UPGRADE, &mut v);
    send(false, SWITCH, &mut v);
    send(false, &open, &mut v);
    send(true, &connect, &mut v);
    send(false, &connected, &mut v);
    send(true, &event, &mut v);
    send(false, &echo, &mut v);
    send(false, &ping, &mut v);
    send(true, &pong, &mut v);
    send(true, &close, &mut v);
    send(false, &close_reply, &mut v);
    v.push((t, seg(false, ss).ack(cs).win(509).fin()));
    v.push((t + 100, seg(true, cs).ack(ss + 1).fin()));
    v.push((t + 200, seg(false, ss + 1).ack(cs + 1).win(509)));
    packets(&v)
}

/// Two connections from different client ports, and a third reusing the first's ports with a
/// new ISN (Wireshark starts a new tcp.stream for it).
pub fn port_reuse() -> Vec<Pkt> {
    let mut v = Vec::new();
    let conns = [(41234u16, 100u32, 9_000u32, 0u64), (41236, 5_000, 90_000, 500), (41234, 777_777, 123_456, 2_000_000)];
    for (port, c, s, t0) in conns {
        let p = |x: Seg| {
            if x.from_client {
                x.ports(port, 80)
            } else {
                x.ports(80, port)
            }
        };
        v.push((t0, p(seg(true, c).syn().win(64240).opts(syn_opts(1, 0)))));
        v.push((t0 + 50, p(seg(false, s).syn().ack(c + 1).win(65160).opts(syn_opts(2, 1)))));
        v.push((t0 + 100, p(seg(true, c + 1).ack(s + 1))));
        v.push((t0 + 150, p(seg(true, c + 1).ack(s + 1).data(b"ping\n"))));
        v.push((t0 + 200, p(seg(false, s + 1).ack(c + 6).win(509).data(b"pong\n"))));
        v.push((t0 + 250, p(seg(true, c + 6).ack(s + 6).fin())));
        v.push((t0 + 300, p(seg(false, s + 6).ack(c + 7).win(509).fin())));
        v.push((t0 + 350, p(seg(true, c + 7).ack(s + 7))));
    }
    v.sort_by_key(|(t, _)| *t);
    packets(&v)
}

/// Broken packets: each must be described, none may panic.
pub fn malformed() -> Vec<Pkt> {
    let mut v = Vec::new();
    let good = seg(true, C_ISN).syn().win(64240).opts(syn_opts(1, 0)).build(1);
    // 1: only 10 bytes of an IPv4 header.
    v.push(good[..10].to_vec());
    // 2: IHL of 3 (12 bytes), impossible.
    let mut p = good.clone();
    p[0] = 0x43;
    v.push(p);
    // 3: TCP data offset 2 (8 bytes), impossible.
    let mut p = good.clone();
    p[20 + 12] = 0x20;
    v.push(p);
    // 4: wrong IP and TCP checksums.
    let mut p = seg(true, C_ISN + 1).ack(1).data(b"data").build(4);
    p[10] ^= 0xff;
    p[20 + 16] ^= 0x55;
    v.push(p);
    // 5: a TCP option whose length runs past the header; unknown option kind 30.
    let mut p = seg(true, C_ISN + 1).ack(1).opts(vec![TcpOptionElement::Noop; 8]).build(5);
    p[40..48].copy_from_slice(&[30, 4, 0xab, 0xcd, 2, 9, 0x05, 0xb4]);
    refresh_tcp_checksum(&mut p);
    v.push(p);
    // 6, 7: ICMP echo request and reply.
    let mut e = Vec::new();
    PacketBuilder::ipv4(CLIENT, SERVER, 64).icmpv4_echo_request(0x4242, 1).write(&mut e, b"synack ping").expect("icmp");
    v.push(linuxify(e, 7));
    let mut e = Vec::new();
    PacketBuilder::ipv4(SERVER, CLIENT, 64).icmpv4_echo_reply(0x4242, 1).write(&mut e, b"synack ping").expect("icmp");
    v.push(linuxify(e, 8));
    // 8: an IPv6 packet (a Raw IP capture can hold both).
    let mut e = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64).udp(5353, 5353).write(&mut e, b"v6").expect("v6");
    v.push(e);
    // 9: total length larger than the packet (the datagram was cut short).
    let mut p = seg(false, 5).ack(C_ISN + 1).data(&[b'z'; 40]).build(9);
    p.truncate(50);
    v.push(p);
    // 10: a 1-byte frame.
    v.push(vec![0x45]);
    let mut out: Vec<Pkt> =
        v.into_iter().enumerate().map(|(i, ip)| Pkt { at: us(i as u64 * 1000), ip, orig_len: None }).collect();
    // 11: snap length cut: 60 of 140 bytes saved.
    let full = seg(true, C_ISN + 1).ack(1).data(&[b'q'; 100]).build(11);
    out.push(Pkt { at: us(20_000), ip: full[..60].to_vec(), orig_len: Some(full.len() as u32) });
    out
}

/// Link-layer framings a capture can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Raw,
    Ethernet,
    Sll,
    Sll2,
}

impl Link {
    pub fn datalink(self) -> DataLink {
        match self {
            Link::Raw => DataLink::RAW,
            Link::Ethernet => DataLink::ETHERNET,
            Link::Sll => DataLink::LINUX_SLL,
            Link::Sll2 => DataLink::LINUX_SLL2,
        }
    }

    fn wrap(self, ip: &[u8], from_client: bool) -> Vec<u8> {
        let cmac = [0x02, 0, 0, 0, 0, 0x01];
        let smac = [0x02, 0, 0, 0, 0, 0x02];
        let (src, dst) = if from_client { (cmac, smac) } else { (smac, cmac) };
        let proto: u16 = if ip.first().map(|b| b >> 4) == Some(6) { 0x86dd } else { 0x0800 };
        let mut f = Vec::new();
        match self {
            Link::Raw => {}
            Link::Ethernet => {
                f.extend_from_slice(&dst);
                f.extend_from_slice(&src);
                f.extend_from_slice(&proto.to_be_bytes());
            }
            Link::Sll => {
                f.extend_from_slice(&(if from_client { 4u16 } else { 0 }).to_be_bytes());
                f.extend_from_slice(&1u16.to_be_bytes());
                f.extend_from_slice(&6u16.to_be_bytes());
                f.extend_from_slice(&src);
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&proto.to_be_bytes());
            }
            Link::Sll2 => {
                f.extend_from_slice(&proto.to_be_bytes());
                f.extend_from_slice(&[0, 0]);
                f.extend_from_slice(&3u32.to_be_bytes());
                f.extend_from_slice(&1u16.to_be_bytes());
                f.push(if from_client { 4 } else { 0 });
                f.push(6);
                f.extend_from_slice(&src);
                f.extend_from_slice(&[0, 0]);
            }
        }
        f.extend_from_slice(ip);
        if self == Link::Ethernet && f.len() < 60 {
            f.resize(60, 0); // Ethernet pads short frames to its 60-byte minimum.
        }
        f
    }
}

fn from_client(ip: &[u8]) -> bool {
    ip.get(12..16) == Some(&CLIENT[..])
}

/// Writes a classic pcap file.
pub fn write_pcap(path: &Path, link: Link, pkts: &[Pkt], nanos: bool) {
    let file = std::fs::File::create(path).expect("create pcap");
    let header = PcapHeader {
        datalink: link.datalink(),
        ts_resolution: if nanos { TsResolution::NanoSecond } else { TsResolution::MicroSecond },
        snaplen: 262_144,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(file, header).expect("pcap header");
    for p in pkts {
        let frame = link.wrap(&p.ip, from_client(&p.ip));
        let extra = p.orig_len.map(|o| o as usize - p.ip.len()).unwrap_or(0);
        let ts = Duration::from_secs(EPOCH) + p.at;
        w.write_packet(&PcapPacket::new(ts, (frame.len() + extra) as u32, &frame)).expect("write packet");
    }
}

/// Writes a pcapng file with one interface (nanosecond timestamps, declared via if_tsresol).
pub fn write_pcapng(path: &Path, link: Link, pkts: &[Pkt]) {
    let file = std::fs::File::create(path).expect("create pcapng");
    let mut w = PcapNgWriter::new(file).expect("pcapng header");
    let mut idb = InterfaceDescriptionBlock::new(link.datalink(), 262_144);
    idb.options.push(InterfaceDescriptionOption::IfName("synack0".into()));
    idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
    w.write_pcapng_block(idb).expect("idb");
    for p in pkts {
        let frame = link.wrap(&p.ip, from_client(&p.ip));
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_secs(EPOCH) + p.at,
            original_len: frame.len() as u32,
            data: frame.into(),
            options: vec![],
        };
        w.write_pcapng_block(epb).expect("epb");
    }
}

/// A directory for this test binary's capture files.
pub fn out_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("synack-analyze-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// Every capture the tests use: (file name, writer). Names are what the golden files are named after.
pub fn write_all(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(&Path)| {
        let p = dir.join(name);
        f(&p);
        files.push(p);
    };
    add("http_raw.pcap", &|p| write_pcap(p, Link::Raw, &http_session(), false));
    add("http_ethernet.pcap", &|p| write_pcap(p, Link::Ethernet, &http_session(), false));
    add("http_raw.pcapng", &|p| write_pcapng(p, Link::Raw, &http_session()));
    add("http_sll.pcap", &|p| write_pcap(p, Link::Sll, &http_session(), true));
    add("http_sll2.pcapng", &|p| write_pcapng(p, Link::Sll2, &http_session()));
    add("retransmission.pcap", &|p| write_pcap(p, Link::Raw, &retransmission(), false));
    add("midstream.pcap", &|p| write_pcap(p, Link::Ethernet, &midstream(), false));
    add("websocket.pcap", &|p| write_pcap(p, Link::Raw, &websocket(), false));
    add("port_reuse.pcap", &|p| write_pcap(p, Link::Raw, &port_reuse(), false));
    add("malformed.pcap", &|p| write_pcap(p, Link::Raw, &malformed(), false));
    files
}

/// A small XML well-formedness checker (tags nest and match, attributes are quoted, `&` starts
/// a known entity, no stray `<`), enough to prove the SVG opens in any viewer.
pub fn check_xml(s: &str) -> Result<(), String> {
    fn entity_ok(rest: &str) -> bool {
        let Some(end) = rest.find(';') else {
            return false;
        };
        let name = &rest[1..end];
        matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
            || (name.starts_with("#x") && name.len() > 2 && name[2..].chars().all(|c| c.is_ascii_hexdigit()))
            || (name.starts_with('#') && name.len() > 1 && name[1..].chars().all(|c| c.is_ascii_digit()))
    }
    fn text_ok(t: &str, at: usize) -> Result<(), String> {
        for (i, c) in t.char_indices() {
            if c == '<' {
                return Err(format!("stray '<' at byte {}", at + i));
            }
            if c == '&' && !entity_ok(&t[i..]) {
                return Err(format!("bad entity at byte {}", at + i));
            }
            if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') {
                return Err(format!("control character at byte {}", at + i));
            }
        }
        Ok(())
    }
    let mut stack: Vec<String> = Vec::new();
    let mut i = 0;
    let mut roots = 0;
    if s.starts_with("<?xml") {
        i = s.find("?>").ok_or("unterminated XML declaration")? + 2;
    }
    while i < s.len() {
        let rest = &s[i..];
        let Some(lt) = rest.find('<') else {
            text_ok(rest, i)?;
            if !rest.trim().is_empty() && stack.is_empty() {
                return Err("text after the root element".into());
            }
            break;
        };
        text_ok(&rest[..lt], i)?;
        if stack.is_empty() && !rest[..lt].trim().is_empty() {
            return Err(format!("text outside the root element at byte {i}"));
        }
        let tag_start = i + lt;
        let tag = &s[tag_start..];
        if tag.starts_with("<!--") {
            i = tag_start + tag.find("-->").ok_or("unterminated comment")? + 3;
            continue;
        }
        let end = tag.find('>').ok_or(format!("unterminated tag at byte {tag_start}"))?;
        let inner = &tag[1..end];
        i = tag_start + end + 1;
        if let Some(name) = inner.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("closing </{name}> with nothing open"))?;
            if open != name.trim() {
                return Err(format!("</{}> closes <{open}>", name.trim()));
            }
            continue;
        }
        let self_closing = inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let name_end = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
        let name = &inner[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || matches!(c, ':' | '-' | '_' | '.')) {
            return Err(format!("bad element name {name:?} at byte {tag_start}"));
        }
        // Attributes: name="value" pairs, each name once.
        let mut attrs = inner[name_end..].trim();
        let mut seen = Vec::new();
        while !attrs.is_empty() {
            let eq = attrs.find('=').ok_or(format!("attribute without value in <{name}>"))?;
            let an = attrs[..eq].trim();
            if seen.contains(&an) {
                return Err(format!("duplicate attribute {an} in <{name}>"));
            }
            seen.push(an);
            let after = attrs[eq + 1..].trim_start();
            let q = after.chars().next().ok_or("missing attribute value")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted attribute {an} in <{name}>"));
            }
            let close = after[1..].find(q).ok_or(format!("unterminated attribute {an}"))?;
            text_ok(&after[1..1 + close], tag_start)?;
            attrs = after[close + 2..].trim_start();
        }
        if stack.is_empty() {
            roots += 1;
            if roots > 1 {
                return Err("more than one root element".into());
            }
        }
        if !self_closing {
            stack.push(name.to_string());
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> is never closed"));
    }
    if roots != 1 {
        return Err("no root element".into());
    }
    Ok(())
}

/// `SYNACK_BLESS=1` rewrites golden files instead of comparing against them.
pub fn bless() -> bool {
    std::env::var("SYNACK_BLESS").is_ok_and(|v| v == "1")
}

/// Compares `actual` with the golden file `dir/name`, or rewrites it when blessing.
pub fn check_golden(dir: &Path, name: &str, actual: &str) -> Result<(), String> {
    let path = dir.join(name);
    if bless() {
        std::fs::create_dir_all(dir).expect("create golden dir");
        std::fs::write(&path, actual).expect("write golden");
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (run with SYNACK_BLESS=1 to create it)", path.display()))?;
    if expected == actual {
        return Ok(());
    }
    let detail = match expected.lines().zip(actual.lines()).position(|(a, b)| a != b) {
        Some(n) => format!(
            "first difference at line {}:\n  expected: {}\n  actual:   {}",
            n + 1,
            expected.lines().nth(n).unwrap_or_default(),
            actual.lines().nth(n).unwrap_or_default()
        ),
        None => format!("lengths differ: expected {} lines, got {}", expected.lines().count(), actual.lines().count()),
    };
    Err(format!("{name} differs from {} — {detail}\n(SYNACK_BLESS=1 regenerates)", path.display()))
}

/// One row of tshark fields per TCP frame, with the analysis preferences set explicitly so a
/// user's Wireshark profile cannot change the numbers.
pub fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-o", "tcp.relative_sequence_numbers:TRUE", "-o", "tcp.analyze_sequence_numbers:TRUE"]);
    cmd.arg("-r").arg(file).args(["-Y", "tcp", "-T", "fields", "-E", "separator=/t"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(out.status.success(), "tshark failed on {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}
