//! The seed corpus: what `write_seeds` (an ignored test) puts in `fuzz/seeds/<target>/`.
//!
//! For `packet_input`: the client side of every TCP stream in the captures under
//! `captures/` and `tests/golden/` (pcap or pcapng; none are committed today, but a local
//! `captures/demo.pcap` from `scripts/demo.sh` is used when present), sessions recorded
//! here between a synack client host and the harness's host (echo, a download, a refused
//! port, a ping), and hand-made malformed and hostile packets. Recorded sequence and
//! acknowledgment numbers are stored relative to the ISNs and replayed with
//! [`packet_input::REPLAY`], so they land in this run's windows.
//!
//! For `segment_sequence`: inputs decoded from pseudo-random bytes, kept when they make a
//! connection and exercise something (data, FIN, RST, shutdown, release).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use synack::analyze::capture;
use synack::stack::{Host, HostConfig};
use synack::wire::{self, checksum, Packet, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

use crate::packet_input::{self, encode_advance, encode_packet, FIX_IP, FIX_L4, FIX_LEN, REPLAY};
use crate::segment_sequence::{self, Op};
use crate::{peer, Driver, ECHO_PORT, HOST_IP, PEER_IP, SERVE_PORT};

pub type Seed = (String, Vec<u8>);
/// A captured packet and when it was captured.
type Timed = (Duration, Vec<u8>);

/// The repository root (the fuzz crate's parent).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target)
}

// ----- packet_input -----

pub fn packet_input_seeds() -> Vec<Seed> {
    let mut seeds = vec![("setup-only".to_string(), Vec::new())];
    seeds.extend(capture_seeds(&repo(), 12));
    seeds.push(("session-echo".into(), session(ECHO_PORT, b"the quick brown fox ".repeat(150), true)));
    seeds.push(("session-download".into(), session(SERVE_PORT, b"GET /\r\n\r\n".to_vec(), false)));
    seeds.push(("session-refused".into(), session(9, b"x".to_vec(), true)));
    seeds.extend(crafted_seeds());
    seeds
}

/// Rewrite a client→host TCP packet with numbers relative to the ISNs (`None` leaves a bare
/// SYN, whose own number defines the peer's ISN, as it is).
fn relative(pkt: &[u8], client_isn: SeqNum, server_iss: Option<SeqNum>) -> Vec<u8> {
    let mut p = pkt.to_vec();
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if p.len() < ihl + 20 || p[9] != 6 {
        return p;
    }
    let flags = TcpFlags::from_bits_truncate(p[ihl + 13]);
    if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
        return p;
    }
    let be32 = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let seq = be32(ihl + 4).wrapping_sub(client_isn.0);
    let ack = be32(ihl + 8).wrapping_sub(server_iss.map_or(0, |s| s.0));
    p[ihl + 4..ihl + 8].copy_from_slice(&seq.to_be_bytes());
    p[ihl + 8..ihl + 12].copy_from_slice(&ack.to_be_bytes());
    p
}

/// The IPv4 packet in a captured frame, if its link type carries one we can find.
fn ipv4_of(frame: &capture::Frame) -> Option<&[u8]> {
    let d = &frame.data;
    let ip = match frame.linktype {
        101 | 228 => d.as_slice(),
        1 if d.len() > 14 && d[12..14] == [0x08, 0x00] => &d[14..],
        113 if d.len() > 16 && d[14..16] == [0x08, 0x00] => &d[16..],
        276 if d.len() > 20 && d[0..2] == [0x08, 0x00] => &d[20..],
        _ => return None,
    };
    (ip.first().is_some_and(|b| b >> 4 == 4) && ip.len() >= 20).then_some(ip)
}

/// One seed per TCP stream towards 10.7.0.2 in every capture found (at most `max`).
pub fn capture_seeds(root: &Path, max: usize) -> Vec<Seed> {
    let mut files = Vec::new();
    for dir in ["captures", "tests/golden", "tests/golden/analyze"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if matches!(p.extension().and_then(|x| x.to_str()), Some("pcap" | "pcapng")) {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut seeds = Vec::new();
    for file in files {
        let Ok(cap) = capture::read_capture(&file) else { continue };
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("capture").to_string();
        // Per client four-tuple: its ISN, the server's ISS, and its packets with times.
        let mut isn: HashMap<SocketAddrV4, SeqNum> = HashMap::new();
        let mut iss: HashMap<SocketAddrV4, SeqNum> = HashMap::new();
        let mut streams: Vec<(SocketAddrV4, Vec<Timed>)> = Vec::new();
        for frame in &cap.frames {
            let Some(ip) = ipv4_of(frame) else { continue };
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let Ok(Packet::Tcp(seg)) = wire::parse_packet(dst, ip) else { continue };
            if src == HOST_IP && seg.flags.contains(TcpFlags::SYN) {
                iss.insert(seg.dst, seg.seq);
                continue;
            }
            if dst != HOST_IP {
                continue;
            }
            if seg.flags.contains(TcpFlags::SYN) && !seg.flags.contains(TcpFlags::ACK) {
                isn.insert(seg.src, seg.seq);
            }
            let client = seg.src;
            let idx = match streams.iter().position(|(c, _)| *c == client) {
                Some(i) => i,
                None => {
                    streams.push((client, Vec::new()));
                    streams.len() - 1
                }
            };
            if streams[idx].1.len() < 40 {
                streams[idx].1.push((frame.timestamp, ip.to_vec()));
            }
        }
        for (client, pkts) in streams {
            let (Some(&cisn), Some(&siss)) = (isn.get(&client), iss.get(&client)) else { continue };
            let mut input = Vec::new();
            let mut last = pkts.first().map(|(t, _)| *t).unwrap_or_default();
            for (t, pkt) in &pkts {
                let gap = t.saturating_sub(last);
                if gap >= Duration::from_millis(4) {
                    encode_advance(gap.as_millis() as u64, &mut input);
                }
                last = *t;
                encode_packet(REPLAY, &relative(pkt, cisn, Some(siss)), &mut input);
            }
            seeds.push((format!("capture-{name}-{}", client.port()), input));
            if seeds.len() >= max {
                return seeds;
            }
        }
    }
    seeds
}

/// Record a session between a synack client host and the harness's host: the client
/// connects to `port`, writes `data` (then shuts down if `close`), and reads everything.
pub fn session(port: u16, data: Vec<u8>, close: bool) -> Vec<u8> {
    let mut d = Driver::new();
    packet_input::setup(&mut d);
    d.keep_raw = true;
    d.raw_out.clear();
    let mut client = Host::new(HostConfig { addr: PEER_IP, ..Default::default() }, d.now);
    let Ok(id) = client.connect(d.now, SocketAddrV4::new(HOST_IP, port)) else { return Vec::new() };
    let mut input = Vec::new();
    let mut client_isn = None;
    let (mut written, mut shut) = (0, false);
    for _ in 0..2000 {
        let mut moved = false;
        while let Some(pkt) = client.pop_output() {
            moved = true;
            let Ok(Packet::Tcp(seg)) = wire::parse_packet(HOST_IP, &pkt) else { continue };
            if seg.flags.contains(TcpFlags::SYN) {
                client_isn = Some(seg.seq);
            }
            let server_iss = d.our_iss.get(&(seg.src, port)).copied();
            let rel = client_isn.map_or(pkt.clone(), |isn| relative(&pkt, isn, server_iss));
            encode_packet(REPLAY, &rel, &mut input);
            d.deliver(&pkt);
        }
        let local_port = client.conn(id).map(|c| c.local.port());
        for pkt in std::mem::take(&mut d.raw_out) {
            // Only this session's packets: the set-up connections' retransmissions would
            // get RSTs from the client host, which would then be recorded too.
            if pkt.len() >= 24 && Some(u16::from_be_bytes([pkt[22], pkt[23]])) == local_port {
                moved = true;
                client.handle_packet(d.now, &pkt);
            }
        }
        let now = d.now;
        if client.conn(id).is_some_and(|c| c.is_connected()) {
            if written < data.len() {
                if let Some(Ok(n)) = client.with_conn(now, id, |c| c.send(&data[written..])) {
                    written += n;
                    moved |= n > 0;
                }
            } else if close && !shut {
                shut = true;
                client.with_conn(now, id, |c| c.shutdown_write(now));
                moved = true;
            }
            let mut buf = [0u8; 8192];
            while let Some(Ok(n)) = client.with_conn(now, id, |c| c.recv(&mut buf)) {
                if n == 0 {
                    break;
                }
                moved = true;
            }
        }
        if client.conn(id).is_none_or(|c| c.is_closed()) && !client.pop_output_pending() {
            break;
        }
        if !moved {
            let next = [client.poll_at(), d.host.poll_at()].into_iter().flatten().min();
            let Some(next) = next else { break };
            let gap = next.saturating_duration_since(d.now).max(Duration::from_millis(4));
            encode_advance(gap.as_millis() as u64, &mut input);
            d.advance(gap);
            client.on_timer(d.now);
        }
    }
    input
}

fn tcp_packet(port: u16, to: u16, hdr: &TcpHeaderOut, payload: &[u8]) -> Vec<u8> {
    let mut pkt = Vec::new();
    wire::ipv4::build_tcp(peer(port), SocketAddrV4::new(HOST_IP, to), hdr, payload, 9, &mut pkt);
    pkt
}

fn syn(seq: u32) -> TcpHeaderOut {
    TcpHeaderOut {
        seq: SeqNum(seq),
        flags: TcpFlags::SYN,
        window: 65535,
        options: TcpOptions { mss: Some(1460), ..Default::default() },
        ..Default::default()
    }
}

/// Put IPv4 options after the header (fix-ups mend lengths and checksums on replay).
fn with_ip_options(pkt: &[u8], opts: &[u8]) -> Vec<u8> {
    let mut p = pkt.to_vec();
    p.splice(20..20, opts.iter().copied());
    p[0] = 0x40 | ((20 + opts.len()) / 4) as u8;
    p
}

/// Malformed and hostile packets, each a seed of its own.
pub fn crafted_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut one = |name: &str, records: &[(u8, Vec<u8>)]| {
        let mut input = Vec::new();
        for (ctrl, pkt) in records {
            encode_packet(*ctrl, pkt, &mut input);
        }
        seeds.push((name.to_string(), input));
    };
    let good = tcp_packet(41000, ECHO_PORT, &syn(77), &[]);
    one("syn-raw", &[(0, good.clone())]);
    one("truncated", &[(FIX_LEN | FIX_IP, good[..30].to_vec()), (0, good[..19].to_vec())]);
    let mut bad_sum = good.clone();
    bad_sum[30] ^= 0x55;
    one("bad-checksums", &[(0, bad_sum.clone()), (FIX_IP, bad_sum)]);
    one("ip-record-route", &[(FIX_LEN | FIX_IP, with_ip_options(&good, &[7, 7, 4, 0, 0, 0, 0, 0]))]);
    one("ip-source-route", &[(FIX_LEN | FIX_IP, with_ip_options(&good, &[131, 7, 4, 10, 7, 0, 9, 0]))]);
    let mut frag = good.clone();
    frag[6] = 0x20;
    one("fragment", &[(FIX_IP, frag)]);
    let mut offset = good.clone();
    offset[32] = 0xf0; // data offset 60 in a 24-byte header
    one("tcp-data-offset", &[(FIX_L4 | FIX_IP, offset)]);
    let mut opts = good.clone();
    opts[40..44].copy_from_slice(&[3, 2, 0, 0]); // window scale with a bad length
    one("tcp-bad-option", &[(FIX_L4 | FIX_IP, opts)]);
    let mut ping = Vec::new();
    wire::ipv4::write_header(PEER_IP, HOST_IP, 1, 16, 3, &mut ping);
    ping.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g', b'!', b'!', b'!', b'!']);
    let sum = checksum::checksum(&ping[20..]);
    ping[22..24].copy_from_slice(&sum.to_be_bytes());
    one("ping", &[(0, ping)]);
    // Against the first set-up connection (peer ISN 1000, so relative 1 is its RCV.NXT
    // after "hello\n" is 7): a blind RST sweep, an in-window SYN, an ACK of unsent data,
    // then data and a FIN at the right place.
    let port = packet_input::SETUP_PORTS[0];
    let rel = |seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]| {
        let hdr = TcpHeaderOut { seq: SeqNum(seq), ack: SeqNum(ack), flags, window: 1000, ..Default::default() };
        (REPLAY, tcp_packet(port, ECHO_PORT, &hdr, payload))
    };
    let mut sweep: Vec<(u8, Vec<u8>)> = (0..8).map(|i| rel(8 + i * 1000, 0, TcpFlags::RST, b"")).collect();
    sweep.push(rel(100, 1, TcpFlags::SYN, b""));
    sweep.push(rel(7, 100_000, TcpFlags::ACK, b""));
    sweep.push(rel(7, 7, TcpFlags::ACK | TcpFlags::PSH, b"more data\n"));
    sweep.push(rel(17, 7, TcpFlags::ACK | TcpFlags::FIN, b""));
    one("hostile-established", &sweep);
    // A SYN flood: more than the backlog, so cookies go out.
    let flood: Vec<(u8, Vec<u8>)> =
        (0..8).map(|i| (0, tcp_packet(42000 + i, SERVE_PORT, &syn(i.into()), &[]))).collect();
    one("syn-flood", &flood);
    seeds
}

// ----- segment_sequence -----

/// Pseudo-random inputs (xorshift, fixed seed), kept when they are interesting.
pub fn segment_sequence_seeds(count: usize) -> Vec<Seed> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut seeds = Vec::new();
    let mut kinds_seen = std::collections::HashSet::new();
    for attempt in 0..200_000 {
        let len = 64 + (attempt % 7) * 96;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let Ok(input) = segment_sequence::Input::arbitrary_take_rest(Unstructured::new(&bytes)) else { continue };
        if !input.handshake || input.ops.len() < 4 {
            continue;
        }
        let mut kind = vec![input.active];
        for flag in [TcpFlags::FIN, TcpFlags::RST, TcpFlags::SYN] {
            kind.push(input.ops.iter().any(|o| matches!(o, Op::Segment(s) if s.flags & flag.bits() != 0)));
        }
        kind.push(input.ops.iter().any(|o| matches!(o, Op::Send(_))));
        kind.push(input.ops.iter().any(|o| matches!(o, Op::Shutdown | Op::Release)));
        if kinds_seen.insert(kind) {
            seeds.push((format!("random-{attempt}"), bytes));
            if seeds.len() >= count {
                break;
            }
        }
    }
    seeds
}

/// Replace the seeds of both targets with freshly made ones.
pub fn write_all() -> std::io::Result<usize> {
    let mut n = 0;
    for (target, seeds) in [("packet_input", packet_input_seeds()), ("segment_sequence", segment_sequence_seeds(16))] {
        let dir = seeds_dir(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Every file in `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/`.
pub fn stored_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [base.join("seeds").join(target), base.join("regressions").join(target)] {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        paths.sort();
        for p in paths {
            if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, bytes));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regenerate the committed seeds:
    /// `cargo test --manifest-path fuzz/Cargo.toml -- --ignored write_seeds`.
    #[test]
    #[ignore]
    fn write_seeds() {
        let n = write_all().expect("write the seeds");
        eprintln!("wrote {n} seed files");
    }

    #[test]
    fn packet_input_seeds_and_regressions_run_clean() {
        let inputs = stored_inputs("packet_input");
        assert!(!inputs.is_empty(), "no seeds: run the write_seeds test");
        for (path, bytes) in inputs {
            eprintln!("{}", path.display());
            packet_input::run(&bytes);
        }
    }

    #[test]
    fn segment_sequence_seeds_and_regressions_run_clean() {
        let inputs = stored_inputs("segment_sequence");
        assert!(!inputs.is_empty(), "no seeds: run the write_seeds test");
        for (path, bytes) in inputs {
            eprintln!("{}", path.display());
            if let Ok(input) = segment_sequence::Input::arbitrary_take_rest(Unstructured::new(&bytes)) {
                segment_sequence::run(&input);
            }
        }
    }

    #[test]
    fn a_recorded_session_replays_against_new_isns() {
        let input = session(ECHO_PORT, b"ping".repeat(100), true);
        assert!(input.len() > 400, "the session recorded {} bytes", input.len());
        let d = packet_input::replay(&input);
        let c = &d.host.counters;
        assert_eq!(c.connections, 4, "three set up, one replayed");
        assert_eq!(c.total_drops(), 0, "every replayed segment fits: {:?}", c.drops);
    }
}
