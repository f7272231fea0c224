//! Hostile input written straight onto a real TUN, through an AF_PACKET socket bound to
//! `synack0`: a packet sent that way goes to the TUN's reader (synack) byte for byte, without
//! the kernel's IP layer routing it, fixing its lengths or filling in its checksums.
//!
//! 1. A blind RST sweep: 1,000 RSTs with an established connection's four-tuple, each inside
//!    synack's receive window but never at RCV.NXT (RFC 5961 §3). The connection survives and
//!    keeps echoing exactly.
//! 2. 10,000 seeded random malformed packets of known kinds: synack does not crash, counts
//!    every one under the reason its parser (src/wire/ipv4.rs, src/wire/tcp.rs) gives first,
//!    exits cleanly on SIGINT, and a real client still works afterwards.
//!
//! Everything happens inside the test's own network namespace.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use common::packet_socket::PacketSocket;
use common::*;
use rand::{Rng, SeedableRng};
use synack::wire::checksum;
use synack::wire::{ipv4, parse_packet, Packet, SeqNum, TcpFlags, TcpHeaderOut};

/// Packets the kernel could not queue on the TUN (tx from the kernel's side), so far.
fn tun_tx_dropped(ns: &Netns) -> u64 {
    let stats = ns.sh("ip -s -j link show dev synack0");
    serde_json::from_slice::<serde_json::Value>(&stats.stdout)
        .ok()
        .and_then(|v| v[0]["stats64"]["tx"]["dropped"].as_u64())
        .expect("tx dropped of synack0")
}

/// The exit summary line and its `drops:` part as reason → count.
fn summary(lines: &[String]) -> (String, BTreeMap<String, u64>) {
    let line = lines.iter().rev().find(|l| l.contains("connections,") && l.contains("drops:")).cloned();
    let line = line.unwrap_or_else(|| panic!("no exit summary in synack's output: {lines:?}"));
    let drops = line.split("drops:").nth(1).unwrap_or("");
    let mut map = BTreeMap::new();
    for item in drops.split(',').map(str::trim) {
        if let Some((reason, n)) = item.split_once('=') {
            map.insert(reason.to_string(), n.trim().parse().unwrap_or_else(|_| panic!("bad count in {item:?}")));
        }
    }
    (line, map)
}

fn echo_exact(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).expect("write to the echo port");
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).expect("read the echo back");
    assert_eq!(sha256(&back), sha256(data), "the echo came back different");
}

const RSTS: u32 = 1000;
const RST_STEP: u32 = 97;

#[test]
fn blind_rst_sweep_in_window_does_not_reset_the_connection() {
    let name = "blind_rst_sweep_in_window_does_not_reset_the_connection";
    let Some(()) = require_root(name) else { return };
    let mut ns = Netns::new("blindrst");
    let srv = ns.serve(&[]);

    let (rcv_nxt, challenge_acks, before_rsts) = ns.run(|| {
        let sniffer = PacketSocket::open(true);
        let sender = PacketSocket::open(false);
        let mut s = TcpStream::connect_timeout(&stack_addr(7).into(), Duration::from_secs(10)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        let client = match s.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("not IPv4: {other}"),
        };
        echo_exact(&mut s, &random_bytes(10_000, 1));
        std::thread::sleep(Duration::from_millis(100)); // let the last ACKs cross

        // RCV.NXT in the client → synack direction: the end of the furthest client segment.
        let mut rcv_nxt: Option<SeqNum> = None;
        let mut seen = 0;
        for (pkt, outgoing) in sniffer.drain() {
            let Ok(Packet::Tcp(seg)) = parse_packet(STACK_IP, &pkt) else { continue };
            if !outgoing || seg.src != client || seg.dst != stack_addr(7) {
                continue;
            }
            seen += 1;
            let end = seg.seq + seg.seg_len();
            if rcv_nxt.is_none_or(|n| end > n) {
                rcv_nxt = Some(end);
            }
        }
        let rcv_nxt = rcv_nxt.expect("sniffed no client segment on synack0");
        assert!(seen >= 3, "sniffed only {seen} client segments");

        // 1,000 in-window RSTs, none at RCV.NXT, written onto the TUN as they are; in bursts
        // the TUN queue holds, counting synack's challenge ACKs as they come back.
        let mut challenge_acks = 0u32;
        let mut count = |pkts: Vec<(Vec<u8>, bool)>| {
            for (pkt, outgoing) in pkts {
                let Ok(Packet::Tcp(seg)) = parse_packet(client.ip().to_owned(), &pkt) else { continue };
                if !outgoing
                    && seg.src == stack_addr(7)
                    && seg.dst == client
                    && seg.flags == TcpFlags::ACK
                    && seg.payload.is_empty()
                    && seg.ack == rcv_nxt
                {
                    challenge_acks += 1;
                }
            }
        };
        let mut pkt = Vec::new();
        for k in 0..RSTS {
            let seq = rcv_nxt + 1 + k * RST_STEP;
            assert!(seq != rcv_nxt);
            let hdr = TcpHeaderOut { seq, flags: TcpFlags::RST, window: 0, ..Default::default() };
            ipv4::build_tcp(client, stack_addr(7), &hdr, &[], k as u16, &mut pkt);
            sender.send(&pkt);
            if k % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1));
                count(sniffer.drain());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        count(sniffer.drain());

        // The connection is still there and still exact.
        let more = random_bytes(100_000, 2);
        echo_exact(&mut s, &more);
        echo_exact(&mut s, b"still here");
        (rcv_nxt, challenge_acks, seen)
    });
    let dropped = tun_tx_dropped(&ns);
    let (took, status, lines) = srv.interrupt(&mut ns);
    let (line, _) = summary(&lines);
    let suppressed: u64 = line
        .split(',')
        .find_map(|p| p.trim().strip_suffix(" challenge ACKs suppressed"))
        .map_or(0, |n| n.trim().parse().expect("suppressed count"));
    eprintln!(
        "blind RST sweep: {RSTS} RSTs at RCV.NXT({}) + 1 + k·{RST_STEP} after {before_rsts} sniffed client segments; \
         {challenge_acks} challenge ACKs seen, {suppressed} suppressed; {dropped} dropped by the TUN queue; \
         synack exited in {:.3} s\nsynack: {line}",
        rcv_nxt.0,
        took.as_secs_f64()
    );
    assert_eq!(dropped, 0, "the kernel dropped packets on the TUN queue: the sweep is incomplete");
    assert!(status.success() || status.code() == Some(130), "synack exited with {status}");
    // Every RST reached the connection as an in-window, inexact one: each got a challenge
    // ACK or was counted as suppressed by the RFC 5961 §7 limit.
    assert_eq!(challenge_acks as u64 + suppressed, u64::from(RSTS), "not every RST was challenged: {line}");
}

// ----- Malformed packets -----

const FLOOD: usize = 10_000;
const SEED: u64 = 0x5eed_b11d;

/// The kinds of malformed packet, each with the drop reason the parser gives it first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ShortIpHeader,
    NotIpv4,
    BadIhl,
    TotalLenBelowHeader,
    BadIpOption,
    TotalLenPastBuffer,
    BadIpChecksum,
    Fragment,
    SourceRoute,
    MartianSource,
    UnsupportedProtocol,
    ShortTcpHeader,
    BadDataOffset,
    BadTcpChecksum,
    BadTcpOptions,
}

const KINDS: [Kind; 15] = [
    Kind::ShortIpHeader,
    Kind::NotIpv4,
    Kind::BadIhl,
    Kind::TotalLenBelowHeader,
    Kind::BadIpOption,
    Kind::TotalLenPastBuffer,
    Kind::BadIpChecksum,
    Kind::Fragment,
    Kind::SourceRoute,
    Kind::MartianSource,
    Kind::UnsupportedProtocol,
    Kind::ShortTcpHeader,
    Kind::BadDataOffset,
    Kind::BadTcpChecksum,
    Kind::BadTcpOptions,
];

impl Kind {
    fn reason(self) -> &'static str {
        match self {
            // Version is checked first, then the 20-byte minimum.
            Kind::ShortIpHeader | Kind::TotalLenPastBuffer | Kind::ShortTcpHeader => "truncated",
            Kind::NotIpv4 => "not-ipv4",
            Kind::BadIhl | Kind::TotalLenBelowHeader | Kind::BadIpOption => "bad-ip-header",
            Kind::BadIpChecksum => "bad-ip-checksum",
            Kind::Fragment => "fragment",
            Kind::SourceRoute => "ip-source-route",
            Kind::MartianSource => "martian-source",
            Kind::UnsupportedProtocol => "unsupported-protocol",
            Kind::BadDataOffset => "bad-tcp-header",
            Kind::BadTcpChecksum => "bad-tcp-checksum",
            Kind::BadTcpOptions => "bad-tcp-options",
        }
    }
}

/// Recompute the IPv4 header checksum for the header length in byte 0.
fn fix_ip_checksum(p: &mut [u8]) {
    let hl = usize::from(p[0] & 0x0f) * 4;
    p[10] = 0;
    p[11] = 0;
    let sum = checksum::checksum(&p[..hl]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// A well-formed IPv4 header (with `opts`, a multiple of 4 bytes) to 10.7.0.2 and `body`.
fn ip_packet(src: Ipv4Addr, proto: u8, opts: &[u8], body: &[u8], id: u16) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let hl = 20 + opts.len();
    let total = (hl + body.len()) as u16;
    let mut p = vec![0x40 | (hl / 4) as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&STACK_IP.octets());
    p.extend_from_slice(opts);
    fix_ip_checksum(&mut p);
    p.extend_from_slice(body);
    p
}

/// A TCP header + options + payload from `src` to 10.7.0.2:80 with a correct checksum and
/// `doff` (in 32-bit words) written as the data offset, whatever it says.
fn tcp_body(rng: &mut impl Rng, src: Ipv4Addr, doff: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&rng.random_range(1024u16..=65535).to_be_bytes());
    b.extend_from_slice(&80u16.to_be_bytes());
    b.extend_from_slice(&rng.random::<u32>().to_be_bytes());
    b.extend_from_slice(&rng.random::<u32>().to_be_bytes());
    b.push(doff << 4);
    b.push(rng.random::<u8>());
    b.extend_from_slice(&rng.random::<u16>().to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(opts);
    b.extend_from_slice(payload);
    fix_tcp_checksum(src, &mut b);
    b
}

fn fix_tcp_checksum(src: Ipv4Addr, b: &mut [u8]) {
    b[16] = 0;
    b[17] = 0;
    let acc = checksum::pseudo_header(src, STACK_IP, 6, b.len());
    let sum = checksum::fold(checksum::sum_words(b, acc));
    b[16..18].copy_from_slice(&sum.to_be_bytes());
}

fn random_payload(rng: &mut impl Rng, max: usize) -> Vec<u8> {
    let n = rng.random_range(0..=max);
    (0..n).map(|_| rng.random()).collect()
}

/// A well-formed TCP/IPv4 packet from 10.7.0.1 (it would parse).
fn valid_tcp(rng: &mut impl Rng) -> Vec<u8> {
    let payload = random_payload(rng, 200);
    let body = tcp_body(rng, KERNEL_IP, 5, &[], &payload);
    let id = rng.random();
    ip_packet(KERNEL_IP, 6, &[], &body, id)
}

/// Set the checksum field at `at` to a wrong value: one that fails verification.
fn break_checksum(rng: &mut impl Rng, p: &mut [u8], at: usize, verifies: impl Fn(&[u8]) -> bool) {
    assert!(verifies(p));
    loop {
        let v: u16 = rng.random();
        p[at..at + 2].copy_from_slice(&v.to_be_bytes());
        if !verifies(p) {
            return;
        }
    }
}

fn malformed(rng: &mut impl Rng, kind: Kind) -> Vec<u8> {
    let id = rng.random();
    match kind {
        Kind::ShortIpHeader => {
            let n = rng.random_range(1..20);
            let mut p: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            p[0] = 0x40 | (p[0] & 0x0f);
            p
        }
        Kind::NotIpv4 => {
            let mut p = valid_tcp(rng);
            p.truncate(rng.random_range(1..=p.len()));
            let v = [0u8, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15][rng.random_range(0..15)];
            p[0] = (v << 4) | (p[0] & 0x0f);
            p
        }
        Kind::BadIhl => {
            let mut p = valid_tcp(rng);
            p[0] = 0x40 | rng.random_range(0..5);
            p
        }
        Kind::TotalLenBelowHeader => {
            let mut p = valid_tcp(rng);
            let t: u16 = rng.random_range(0..20);
            p[2..4].copy_from_slice(&t.to_be_bytes());
            fix_ip_checksum(&mut p);
            p
        }
        Kind::BadIpOption => {
            // An option length under 2, one past the header, or a length byte missing.
            let opts: &[u8] = match rng.random_range(0..4) {
                0 => &[7, 1, 0, 0],
                1 => &[7, 40, 4, 0],
                2 => &[1, 1, 1, 68],
                _ => &[68, 0, 0, 0],
            };
            let payload = random_payload(rng, 100);
            let body = tcp_body(rng, KERNEL_IP, 5, &[], &payload);
            ip_packet(KERNEL_IP, 6, opts, &body, id)
        }
        Kind::TotalLenPastBuffer => {
            let mut p = valid_tcp(rng);
            let t = (p.len() + rng.random_range(1..=1000)) as u16;
            p[2..4].copy_from_slice(&t.to_be_bytes());
            fix_ip_checksum(&mut p);
            p
        }
        Kind::BadIpChecksum => {
            let mut p = valid_tcp(rng);
            break_checksum(rng, &mut p, 10, |p| checksum::checksum(&p[..20]) == 0);
            p
        }
        Kind::Fragment => {
            let mut p = valid_tcp(rng);
            let frag: u16 = match rng.random_range(0..3) {
                0 => 0x2000,                                  // MF, first fragment
                1 => 0x2000 | rng.random_range(1..0x2000u16), // MF, a middle one
                _ => rng.random_range(1..0x2000u16),          // the last one
            };
            p[6..8].copy_from_slice(&frag.to_be_bytes());
            fix_ip_checksum(&mut p);
            p
        }
        Kind::SourceRoute => {
            let mut opts = vec![1; rng.random_range(0..=3)];
            let hops = rng.random_range(1..=2);
            opts.push(if rng.random() { 131 } else { 137 });
            opts.push(3 + 4 * hops);
            opts.push(4);
            for _ in 0..hops {
                opts.extend_from_slice(&[10, 7, 0, rng.random_range(3..=254)]);
            }
            while opts.len() % 4 != 0 {
                opts.push(0);
            }
            let payload = random_payload(rng, 100);
            let body = tcp_body(rng, KERNEL_IP, 5, &[], &payload);
            ip_packet(KERNEL_IP, 6, &opts, &body, id)
        }
        Kind::MartianSource => {
            let src = match rng.random_range(0..6) {
                0 => Ipv4Addr::UNSPECIFIED,
                1 => Ipv4Addr::BROADCAST,
                2 => Ipv4Addr::new(rng.random_range(224..=239), rng.random(), rng.random(), rng.random()),
                3 => Ipv4Addr::new(0, rng.random(), rng.random(), rng.random()),
                4 => Ipv4Addr::new(rng.random_range(240..=255), rng.random(), rng.random(), rng.random()),
                _ => Ipv4Addr::new(127, rng.random(), rng.random(), rng.random()),
            };
            let payload = random_payload(rng, 100);
            let body = tcp_body(rng, src, 5, &[], &payload);
            ip_packet(src, 6, &[], &body, id)
        }
        Kind::UnsupportedProtocol => {
            // Not ICMP, TCP or UDP (a UDP datagram is answered with a port unreachable).
            let proto = loop {
                let p: u8 = rng.random();
                if p != 1 && p != 6 && p != 17 {
                    break p;
                }
            };
            let body = random_payload(rng, 200);
            ip_packet(KERNEL_IP, proto, &[], &body, id)
        }
        Kind::ShortTcpHeader => {
            let body = random_payload(rng, 19);
            ip_packet(KERNEL_IP, 6, &[], &body, id)
        }
        Kind::BadDataOffset => {
            let payload = random_payload(rng, 40);
            let doff = if rng.random() {
                rng.random_range(0..5)
            } else {
                // Past the end of the segment.
                let words = (20 + payload.len()) / 4;
                if words >= 15 {
                    return malformed(rng, kind);
                }
                rng.random_range(words as u8 + 1..=15)
            };
            let body = tcp_body(rng, KERNEL_IP, doff, &[], &payload);
            ip_packet(KERNEL_IP, 6, &[], &body, id)
        }
        Kind::BadTcpChecksum => {
            let mut p = valid_tcp(rng);
            let verifies = |p: &[u8]| {
                let b = &p[20..];
                checksum::fold(checksum::sum_words(b, checksum::pseudo_header(KERNEL_IP, STACK_IP, 6, b.len()))) == 0
            };
            break_checksum(rng, &mut p, 36, verifies);
            p
        }
        Kind::BadTcpOptions => {
            // Wrong lengths for the kinds synack reads, a length under 2 or past the options,
            // a kind with no length byte.
            let opts: &[u8] = match rng.random_range(0..8) {
                0 => &[2, 3, 5, 0],
                1 => &[2, 0, 5, 180],
                2 => &[3, 4, 7, 0],
                3 => &[4, 3, 0, 0],
                4 => &[8, 4, 0, 0],
                5 => &[30, 9, 0, 0],
                6 => &[1, 1, 1, 2],
                _ => &[2, 4, 5, 180, 1, 1, 8, 9, 1, 2, 3, 4, 5, 6, 7, 0],
            };
            let payload = random_payload(rng, 100);
            let doff = (20 + opts.len()) as u8 / 4;
            let body = tcp_body(rng, KERNEL_IP, doff, opts, &payload);
            ip_packet(KERNEL_IP, 6, &[], &body, id)
        }
    }
}

#[test]
fn malformed_packets_on_the_tun_are_each_counted_under_their_reason() {
    let name = "malformed_packets_on_the_tun_are_each_counted_under_their_reason";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "curl") else { return };
    let mut ns = Netns::new("malformed");
    let srv = ns.serve(&[]);

    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let mut sent: BTreeMap<Kind, u64> = BTreeMap::new();
    let mut packets = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        let pkt = malformed(&mut rng, kind);
        assert!(!pkt.is_empty() && pkt.len() <= 1500);
        *sent.entry(kind).or_insert(0) += 1;
        packets.push(pkt);
    }
    let start = Instant::now();
    ns.run(move || {
        let sock = PacketSocket::open(false);
        for (i, pkt) in packets.iter().enumerate() {
            sock.send(pkt);
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let flood_took = start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let dropped = tun_tx_dropped(&ns);

    // A real client afterwards.
    let curl = ns.sh("curl -sS -m 10 -o /dev/null -w '%{http_code}' http://10.7.0.2/");
    let code = String::from_utf8_lossy(&curl.stdout).to_string();
    let echo_ok = ns.run(|| {
        let mut s = TcpStream::connect_timeout(&stack_addr(7).into(), Duration::from_secs(10)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        echo_exact(&mut s, &random_bytes(50_000, 3));
        true
    });

    let (took, status, lines) = srv.interrupt(&mut ns);
    let (line, drops) = summary(&lines);
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (kind, n) in &sent {
        *expected.entry(kind.reason()).or_insert(0) += n;
    }
    eprintln!(
        "malformed flood: {FLOOD} packets in {:.3} s, {dropped} dropped by the TUN queue; per kind {sent:?}\n\
         expected per reason {expected:?}\ncurl: {code} {}; synack exited in {:.3} s with {status}\nsynack: {line}",
        flood_took.as_secs_f64(),
        String::from_utf8_lossy(&curl.stderr).trim(),
        took.as_secs_f64()
    );
    assert_eq!(dropped, 0, "the kernel dropped packets on the TUN queue before synack read them");
    assert!(status.success() || status.code() == Some(130), "synack exited with {status}");
    assert!(took < Duration::from_secs(2), "synack took {took:?} to exit after SIGINT");
    assert!(curl.status.success() && code == "200", "curl after the flood: {code} {curl:?}");
    assert!(echo_ok);
    for (reason, n) in &expected {
        assert_eq!(drops.get(*reason).copied().unwrap_or(0), *n, "drops counted as {reason}: {line}");
    }
    // Nothing else was dropped at parse level (the real clients send nothing malformed).
    for reason in ["not-for-us", "bad-icmp"] {
        assert_eq!(drops.get(reason), None, "unexpected {reason} drops: {line}");
    }
    assert_eq!(expected.values().sum::<u64>(), FLOOD as u64);
}
