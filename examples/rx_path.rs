//! The receive path's cost, measured without a device: a peer's handshake and then N in-order
//! data segments of 1460 bytes (with timestamps, as Linux sends them) fed to the sans-I/O
//! `Host` in batches of 64, as the event loop feeds it from the TUN, the application reading
//! as it goes.
//!
//! ```text
//! cargo run --release --example rx_path [N]        # N defaults to 200000
//! ```
//!
//! Prints the wall-clock ns per packet spent in `Host::handle_packet_meta` (noisy on a shared
//! machine). For a count that does not depend on the machine's load, count instructions in
//! that function only and divide by the packets:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*Host::handle_packet_meta*' \
//!     target/release/examples/rx_path 200000
//! ```
//!
//! Segments are built a batch at a time, outside the measured calls.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use synack::device::PacketMeta;
use synack::stack::{Host, HostConfig};
use synack::wire::{ipv4, parse_packet, Packet, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

const HOST: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
const PORT: u16 = 80;
const MSS: usize = 1460;
const BATCH: usize = 64;

fn main() -> Result<()> {
    let n: usize = match std::env::args().nth(1) {
        None => 200_000,
        Some(a) => a.parse().with_context(|| format!("N must be a packet count, not {a:?}"))?,
    };
    let mut now = Instant::now();
    let mut host = Host::new(HostConfig { addr: HOST, ..Default::default() }, now);
    host.listen(PORT, None).context("listen on port 80")?;
    let me = SocketAddrV4::new(PEER, 40000);
    let them = SocketAddrV4::new(HOST, PORT);
    let mut pkt = Vec::new();
    let mut ts = 1000u32;

    // Handshake: SYN with Linux's options, then the ACK of the host's SYN-ACK.
    let syn_opts = TcpOptions {
        mss: Some(MSS as u16),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((ts, 0)),
        ..Default::default()
    };
    let syn =
        TcpHeaderOut { seq: SeqNum(1), flags: TcpFlags::SYN, window: 64240, options: syn_opts, ..Default::default() };
    ipv4::build_tcp(me, them, &syn, b"", 1, &mut pkt);
    host.handle_packet(now, &pkt);
    let (their_seq, their_ts) = loop {
        let Some(out) = host.pop_output() else { bail!("the host did not answer the SYN") };
        if let Ok(Packet::Tcp(seg)) = parse_packet(PEER, &out) {
            if seg.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
                break (seg.seq + 1, seg.options.timestamps.map_or(0, |(val, _)| val));
            }
        }
    };
    let mut seq = SeqNum(2);
    let mut hdr = TcpHeaderOut {
        seq,
        ack: their_seq,
        flags: TcpFlags::ACK,
        window: 502,
        options: TcpOptions { timestamps: Some((ts, their_ts)), ..Default::default() },
    };
    ipv4::build_tcp(me, them, &hdr, b"", 2, &mut pkt);
    host.handle_packet(now, &pkt);
    let Some(conn) = host.accept(PORT) else { bail!("the handshake did not complete") };
    while let Some(out) = host.pop_output() {
        host.recycle(out);
    }

    let payload = vec![b'x'; MSS];
    let mut read_buf = vec![0u8; 1 << 20];
    let mut batch: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1600)).collect();
    let mut in_host = Duration::ZERO;
    let mut id = 3u16;
    let mut sent = 0;
    let mut acks = 0u64;
    while sent < n {
        let count = BATCH.min(n - sent);
        for buf in &mut batch[..count] {
            hdr.seq = seq;
            hdr.flags = TcpFlags::ACK | TcpFlags::PSH;
            hdr.options.timestamps = Some((ts, their_ts));
            ipv4::build_tcp(me, them, &hdr, &payload, id, buf);
            seq += MSS as u32;
            id = id.wrapping_add(1);
        }
        let start = Instant::now();
        host.begin_batch();
        for buf in &batch[..count] {
            host.handle_packet_meta(now, buf, PacketMeta::default());
        }
        host.end_batch(now);
        in_host += start.elapsed();
        sent += count;
        while let Some(out) = host.pop_output() {
            acks += 1;
            host.recycle(out);
        }
        let read = host.with_conn(now, conn, |c| {
            let mut total = 0;
            while let Ok(got) = c.recv(&mut read_buf) {
                if got == 0 {
                    break;
                }
                total += got;
            }
            total
        });
        if read != Some(count * MSS) {
            bail!("after {sent} segments the application read {read:?} bytes of {}", count * MSS);
        }
        // A millisecond per batch: timestamps advance and the delayed-ACK timer may fire.
        now += Duration::from_millis(1);
        ts = ts.wrapping_add(1);
        host.on_timer(now);
        while let Some(out) = host.pop_output() {
            acks += 1;
            host.recycle(out);
        }
    }
    let drops: u64 = host.counters.drops.values().sum();
    if drops != 0 {
        bail!("the host dropped {drops} packets: {:?}", host.counters.drops);
    }
    println!("rx_path packets={n} acks={acks} ns_per_packet={:.1}", in_host.as_nanos() as f64 / n as f64);
    Ok(())
}
