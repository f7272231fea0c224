//! Bulk transfers over a bad network, checked byte for byte: `synack serve --faults` (loss,
//! duplication, reordering and delay in synack's own device layer) and random drops by
//! nftables on the kernel's side of the TUN. Each test runs in a network namespace of its own.
//!
//! Every transfer has a time limit; the time each one took is printed (`--nocapture`).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};

/// The fault mix of issue 3.
const FAULTS: &str = "loss=0.05,reorder=0.05,dup=0.02,delay=10ms";
const SIZE: usize = 20_000_000;
/// The most a 20 MB transfer may take before the test calls it stalled.
const LIMIT: Duration = Duration::from_secs(300);

/// `curl /bytes/SIZE` in the namespace; checks length and hash against the pattern.
fn download(ns: &Netns, what: &str) -> Duration {
    let start = Instant::now();
    let out = ns
        .cmd("curl")
        .args(["-sS", "-m", &LIMIT.as_secs().to_string(), &format!("http://10.7.0.2/bytes/{SIZE}")])
        .output()
        .expect("run curl");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{what}: curl failed after {took:.1?} with {} of {SIZE} bytes: {}",
        out.stdout.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), SIZE, "{what}: length");
    assert!(sha256(&out.stdout) == sha256(&pattern(SIZE)), "{what}: the body differs from /bytes/{SIZE}'s pattern");
    eprintln!("{what}: {SIZE} bytes down in {took:.2?} ({:.2} MB/s)", SIZE as f64 / took.as_secs_f64() / 1e6);
    took
}

/// SIZE random bytes to echo (port 7) from one thread while another reads them back; checks
/// the hash of what came back. Socket timeouts and a deadline bound every wait.
fn echo(ns: &Netns, what: &'static str) -> Duration {
    ns.run(move || {
        let data = random_bytes(SIZE, 20);
        let want = sha256(&data);
        let start = Instant::now();
        let s = TcpStream::connect_timeout(&stack_addr(7).into(), Duration::from_secs(10)).expect("connect to echo");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            for chunk in data.chunks(64 * 1024) {
                if start.elapsed() > LIMIT {
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "past the time limit"));
                }
                w.write_all(chunk)?;
            }
            w.shutdown(Shutdown::Write)
        });
        let mut hash = Sha256::new();
        let mut got = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        let result = loop {
            if start.elapsed() > LIMIT {
                break Err(format!("past the {LIMIT:?} limit"));
            }
            match (&s).read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    hash.update(&buf[..n]);
                    got += n;
                }
                Err(e) => break Err(format!("read failed: {e}")),
            }
        };
        let took = start.elapsed();
        if result.is_err() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let written = writer.join().expect("writer thread");
        if let Err(e) = result {
            panic!("{what}: after {took:.1?}, {got} of {SIZE} bytes echoed: {e} (writer: {written:?})");
        }
        written.unwrap_or_else(|e| panic!("{what}: writing failed: {e}"));
        assert_eq!(got, SIZE, "{what}: echoed length");
        assert!(<[u8; 32]>::from(hash.finalize()) == want, "{what}: the echo differs from what was sent");
        eprintln!(
            "{what}: {SIZE} bytes up and back in {took:.2?} ({:.2} MB/s each way)",
            SIZE as f64 / took.as_secs_f64() / 1e6
        );
        took
    })
}

/// Stop the server; return its fault-count line, after checking every fault happened in
/// both directions.
fn faults_line(srv: Server, ns: &mut Netns) -> String {
    let (_, status, lines) = srv.interrupt(ns);
    assert!(status.success(), "{status}: {lines:?}");
    let line = lines.iter().find(|l| l.contains("faults:")).unwrap_or_else(|| panic!("no fault counts: {lines:?}"));
    eprintln!("{}", lines.iter().find(|l| l.contains("connections,")).map(String::as_str).unwrap_or("no summary"));
    eprintln!("{line}");
    for dir in [" in ", "; out "] {
        let part = &line[line.find(dir).expect("both directions")..];
        for what in ["dropped", "duplicated", "reordered", "delayed"] {
            let n: u64 = part
                .split(", ")
                .find(|p| p.ends_with(what))
                .and_then(|p| p.split_whitespace().rev().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {what} count in {line}"));
            assert!(n > 0, "{dir}: nothing {what}: {line}");
        }
    }
    line.clone()
}

#[test]
fn download_20_mb_under_faults() {
    let name = "download_20_mb_under_faults";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "curl") else { return };
    let mut ns = Netns::new("fdown");
    let srv = ns.serve(&["--faults", FAULTS]);
    download(&ns, name);
    faults_line(srv, &mut ns);
}

#[test]
fn echo_20_mb_under_faults() {
    let name = "echo_20_mb_under_faults";
    let Some(()) = require_root(name) else { return };
    let mut ns = Netns::new("fecho");
    let srv = ns.serve(&["--faults", FAULTS]);
    echo(&ns, name);
    faults_line(srv, &mut ns);
}

/// The same transfers with `--cc bbr`, whose window does not shrink at each loss: every
/// byte still arrives in order, through loss, reordering, duplicates and delay.
#[test]
fn download_and_echo_20_mb_under_faults_with_bbr() {
    let name = "download_and_echo_20_mb_under_faults_with_bbr";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "curl") else { return };
    let mut ns = Netns::new("fbbr");
    let srv = ns.serve(&["--cc", "bbr", "--faults", FAULTS]);
    download(&ns, name);
    echo(&ns, "echo_20_mb_under_faults_with_bbr");
    faults_line(srv, &mut ns);
}

/// Drop 5% of the packets each way with nftables on the kernel's side of the TUN: `egress`
/// is kernel → synack, `ingress` is synack → kernel.
fn nft_random_drop(ns: &Netns) {
    let out = ns.sh("set -e
         nft add table netdev t
         nft add chain netdev t e '{ type filter hook egress device synack0 priority 0; }'
         nft add rule netdev t e numgen random mod 100 '<' 5 counter drop
         nft add chain netdev t i '{ type filter hook ingress device synack0 priority 0; }'
         nft add rule netdev t i numgen random mod 100 '<' 5 counter drop");
    assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
}

/// The packets the two nft rules dropped: (kernel → synack, synack → kernel).
fn nft_drops(ns: &Netns) -> (u64, u64) {
    let out = ns.sh("nft list table netdev t");
    let text = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split("packets ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "{text}");
    (counts[0], counts[1])
}

#[test]
fn download_20_mb_with_nft_random_drop() {
    let name = "download_20_mb_with_nft_random_drop";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "curl") else { return };
    let Some(()) = require_tool(name, "nft") else { return };
    let mut ns = Netns::new("ndown");
    nft_random_drop(&ns);
    let _srv = ns.serve(&[]);
    download(&ns, name);
    let (to_stack, to_kernel) = nft_drops(&ns);
    eprintln!("{name}: nft dropped {to_stack} packets kernel → synack, {to_kernel} synack → kernel");
    assert!(to_stack > 0 && to_kernel > 0);
}

#[test]
fn echo_20_mb_with_nft_random_drop() {
    let name = "echo_20_mb_with_nft_random_drop";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "nft") else { return };
    let mut ns = Netns::new("necho");
    nft_random_drop(&ns);
    let _srv = ns.serve(&[]);
    echo(&ns, name);
    let (to_stack, to_kernel) = nft_drops(&ns);
    eprintln!("{name}: nft dropped {to_stack} packets kernel → synack, {to_kernel} synack → kernel");
    assert!(to_stack > 0 && to_kernel > 0);
}

/// The capture is the wire: an inbound packet is recorded before the faults can drop it, an
/// outbound one only if the faults let it through.
#[test]
fn pcap_records_the_wire_around_the_faults() {
    let name = "pcap_records_the_wire_around_the_faults";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "tshark") else { return };
    let mut ns = Netns::new("fpcap");
    let pcap = temp_path("faults-wire.pcap");
    let pcap_arg = pcap.to_string_lossy().to_string();
    let srv = ns.serve(&["--pcap", &pcap_arg, "--faults-in", "loss=0.3,seed=1", "--faults-out", "loss=0.3,seed=2"]);
    let out = ns.sh("ping -c 40 -i 0.02 -W 1 10.7.0.2 | grep -o '[0-9]* received'");
    let received: usize = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ping output: {out:?}"));
    let (_, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success(), "{lines:?}");
    let faults = lines.iter().find(|l| l.contains("faults:")).expect("fault counts");
    let count = |filter: &str| {
        let out = Command::new("tshark").args(["-r", &pcap_arg, "-Y", filter]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let requests = count("icmp.type == 8");
    let replies = count("icmp.type == 0");
    eprintln!("{name}: ping received {received}/40; capture: {requests} requests, {replies} replies; {faults}");
    assert_eq!(requests, 40, "every request is on the wire, dropped inbound or not");
    assert_eq!(replies, received, "only the replies the faults let out are on the wire");
    assert!(received > 5 && received < 35, "about half get through: {received}");
    assert!(faults.contains("in 40 packets"), "{faults}");
}

#[test]
fn an_invalid_fault_spec_is_refused_with_the_fix() {
    for (args, expect) in [
        (vec!["--faults", "loss=5%"], "a probability is a number from 0 to 1"),
        (vec!["--faults-in", "delay=20"], "e.g. delay=20ms"),
        (vec!["--faults-out", "drop=0.1"], "the keys are loss, dup and reorder"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_synack")).arg("serve").args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(err.contains(expect) && err.contains(args[0]), "{args:?}: {err}");
    }
}
