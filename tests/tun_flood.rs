//! A SYN flood on a real TUN: 50,000 SYNs from spoofed addresses in the namespace's subnet,
//! written as fast as a raw socket takes them, while a real client (the kernel's TCP)
//! connects to the echo port and echoes 1 MiB. The client must succeed (its handshake
//! completes through a SYN cookie or a backlog slot), and synack's peak resident memory
//! (VmHWM) must stay under 256 MiB.
//!
//! The spoofed sources are on-link (10.7.0.0/24, never .1 or .2): synack's SYN,ACKs to them
//! go back into the namespace's kernel, which owns none of them and drops them.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use nix::libc;
use rand::{Rng, SeedableRng};
use synack::wire::{ipv4, SeqNum, TcpFlags, TcpHeaderOut, TcpOptions};

const FLOOD: usize = 50_000;
const RSS_LIMIT_KB: u64 = 256 * 1024;

/// Peak resident set size of a process, in KiB.
fn vm_hwm_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// What the flood did.
struct Flood {
    sent: usize,
    retries: usize,
    elapsed: Duration,
}

/// Send `n` spoofed SYNs to 10.7.0.2:`port` from random sources in 10.7.0.3–254, as fast as
/// the raw socket takes them. Runs on a thread inside the namespace. `progress` counts
/// what has gone out.
fn flood(n: usize, port: u16, progress: Arc<AtomicUsize>) -> Flood {
    // SAFETY: plain socket(2); the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let dst = SocketAddrV4::new(STACK_IP, port);
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(STACK_IP.octets()) },
        sin_zero: [0; 8],
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut pkt = Vec::with_capacity(64);
    let (mut sent, mut retries) = (0, 0);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    while sent < n {
        let src = SocketAddrV4::new(Ipv4Addr::new(10, 7, 0, rng.random_range(3..=254)), rng.random_range(1024..=65535));
        let hdr = TcpHeaderOut {
            seq: SeqNum(rng.random()),
            flags: TcpFlags::SYN,
            window: 64240,
            options: TcpOptions { mss: Some(1460), ..Default::default() },
            ..Default::default()
        };
        ipv4::build_tcp(src, dst, &hdr, &[], rng.random(), &mut pkt);
        loop {
            // SAFETY: the buffer and the address outlive the call; lengths are theirs.
            let r = unsafe {
                libc::sendto(
                    fd,
                    pkt.as_ptr().cast(),
                    pkt.len(),
                    0,
                    (&sin as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if r == pkt.len() as isize {
                break;
            }
            let err = std::io::Error::last_os_error();
            // The TUN's queue is full (synack has not read it yet): try again at once.
            assert!(matches!(err.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)), "sendto: {err}");
            assert!(Instant::now() < deadline, "the flood did not finish in 120 s ({sent} sent)");
            retries += 1;
            std::thread::yield_now();
        }
        sent += 1;
        progress.store(sent, Ordering::Relaxed);
    }
    let elapsed = start.elapsed();
    // SAFETY: fd is ours and open.
    unsafe { libc::close(fd) };
    Flood { sent, retries, elapsed }
}

/// Connect to the echo port, send `data`, read it all back.
fn echo(data: Vec<u8>) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let s =
        TcpStream::connect_timeout(&stack_addr(7).into(), Duration::from_secs(60)).expect("connect during the flood");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).expect("write to the echo port");
        w.shutdown(Shutdown::Write).expect("shutdown");
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back).expect("read the echo");
    writer.join().expect("writer");
    (back, start.elapsed())
}

#[test]
fn syn_flood_of_spoofed_sources_leaves_room_for_a_real_client() {
    let name = "syn_flood_of_spoofed_sources_leaves_room_for_a_real_client";
    let Some(()) = require_root(name) else { return };
    let mut ns = Netns::new("flood");
    let srv = ns.serve(&[]);
    let base_kb = vm_hwm_kb(srv.pid);

    let data = random_bytes(1 << 20, 42);
    let want = sha256(&data);
    let progress = Arc::new(AtomicUsize::new(0));
    let p = progress.clone();
    let path = format!("/var/run/netns/{}", ns.name);
    // The flood and the client each on a thread inside the namespace, at the same time:
    // the client starts once a tenth of the flood is out.
    let flooder = {
        let path = path.clone();
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).expect("open the namespace");
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            flood(FLOOD, 7, p)
        })
    };
    let client = std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).expect("open the namespace");
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let wait = Instant::now() + Duration::from_secs(30);
        while progress.load(Ordering::Relaxed) < FLOOD / 10 && Instant::now() < wait {
            std::thread::sleep(Duration::from_micros(200));
        }
        let at = progress.load(Ordering::Relaxed);
        let (back, took) = echo(data);
        (back, took, at, progress.load(Ordering::Relaxed))
    });
    let f = flooder.join().expect("the flood thread panicked");
    let (back, took, started_at, ended_at) = client.join().expect("the client thread panicked");

    let peak_kb = vm_hwm_kb(srv.pid);
    // What the kernel could not queue on the TUN (synack reads it slower than the flood).
    let stats = ns.sh("ip -s -j link show dev synack0");
    let tun_dropped = serde_json::from_slice::<serde_json::Value>(&stats.stdout)
        .ok()
        .and_then(|v| v[0]["stats64"]["tx"]["dropped"].as_u64())
        .unwrap_or(0);
    let rate = f.sent as f64 / f.elapsed.as_secs_f64();
    let (_, status, lines) = srv.interrupt(&mut ns);
    let summary = lines.iter().rev().find(|l| l.contains("connections,")).cloned().unwrap_or_default();
    eprintln!(
        "flood: {} spoofed SYNs in {:.3} s = {:.0} SYN/s ({} sendto retries, {tun_dropped} dropped by the full TUN queue); \
         client started after {started_at} and finished after {ended_at} of them, echo of 1 MiB took {:.3} s; \
         synack VmHWM {} KiB before, {} KiB peak ({:.1} MiB, limit 256 MiB)\nsynack: {summary}",
        f.sent,
        f.elapsed.as_secs_f64(),
        rate,
        f.retries,
        took.as_secs_f64(),
        base_kb,
        peak_kb,
        peak_kb as f64 / 1024.0,
    );
    assert_eq!(f.sent, FLOOD);
    assert_eq!(back.len(), 1 << 20, "the echo came back short");
    assert_eq!(sha256(&back), want, "the echo came back different");
    assert!(peak_kb < RSS_LIMIT_KB, "synack's peak RSS {peak_kb} KiB is over 256 MiB");
    assert!(status.success() || status.code() == Some(130), "synack exited with {status}");
    assert!(summary.contains("SYN cookies sent"), "the flood overflowed no backlog: {summary}");
}
