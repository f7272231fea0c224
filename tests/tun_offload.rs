//! `synack serve --offload` on a real TUN device: super-packets both ways (TSO out, the
//! kernel's TSO/GRO in), data checked by hash, the counters proving super-packets were used,
//! a capture Wireshark finds clean, and a plain open afterwards turning the offloads off again.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;

/// The numbers in synack's exit line `offload: A super-packets in, B out, C checksums …, D bad
/// vnet headers`.
fn offload_counts(lines: &[String]) -> Option<(u64, u64, u64)> {
    let line = lines.iter().find(|l| l.contains("offload:") && l.contains("super-packets in"))?;
    let nums: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect();
    match nums[..] {
        [gso_in, gso_out, _trusted, bad] => Some((gso_in, gso_out, bad)),
        _ => None,
    }
}

/// GET /bytes/N over one connection; the body.
fn http_get_bytes(n: usize) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&stack_addr(80).into(), Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET /bytes/{n} HTTP/1.1\r\nHost: synack\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = Vec::with_capacity(n + 1024);
    s.read_to_end(&mut all).unwrap();
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    assert!(all.starts_with(b"HTTP/1.1 200 OK"), "{:?}", String::from_utf8_lossy(&all[..head_end]));
    all.split_off(head_end)
}

#[test]
fn offload_moves_fifty_megabytes_both_ways_in_super_packets() {
    let test = "offload_moves_fifty_megabytes_both_ways_in_super_packets";
    let Some(()) = require_root(test) else { return };
    let mut ns = Netns::new("offload");
    let srv = ns.serve(&["--offload"]);
    if require_tool(test, "ethtool").is_some() {
        let k = ns.sh("ethtool -k synack0");
        let text = String::from_utf8_lossy(&k.stdout);
        assert!(text.contains("tcp-segmentation-offload: on"), "TSO on the TUN:\n{text}");
        assert!(text.contains("tx-checksumming: on"), "{text}");
    }
    const N: usize = 50_000_000;
    let body = ns.run(|| http_get_bytes(N));
    assert_eq!(body.len(), N);
    assert_eq!(sha256(&body), sha256(&pattern(N)), "the download differs from the /bytes pattern");

    // Upload: to discard (the server's FIN ends it), then through echo, hash-checked.
    let sent = ns.run(|| {
        let mut s = TcpStream::connect_timeout(&stack_addr(9).into(), Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let chunk = random_bytes(1 << 20, 3);
        for _ in 0..N / chunk.len() {
            s.write_all(&chunk).unwrap();
        }
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        rest.len()
    });
    assert_eq!(sent, 0, "discard sends nothing back");
    let data = random_bytes(20 << 20, 9);
    let want = sha256(&data);
    let back = ns.run(move || echo_round_trip(data, Duration::from_secs(60)));
    assert_eq!(back.len(), 20 << 20);
    assert_eq!(sha256(&back), want, "the echo differs from what was sent");

    let (_, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success(), "{lines:?}");
    let (gso_in, gso_out, bad) = offload_counts(&lines).unwrap_or_else(|| panic!("no offload line: {lines:?}"));
    // 50 MB at 64 KiB is ~770 super-packets each way; most of them must have been.
    assert!(gso_out > 300, "TSO super-packets written: {gso_out} ({lines:?})");
    assert!(gso_in > 300, "super-packets read: {gso_in} ({lines:?})");
    assert_eq!(bad, 0, "{lines:?}");
    let summary = lines.iter().find(|l| l.contains("connections,")).expect("a summary line");
    assert!(summary.contains("super-segments in"), "{summary}");
    // A zero-window probe may count as outside-window; a checksum or header drop would mean
    // the offload path built or read a packet wrong.
    assert!(!summary.contains("bad-") && !summary.contains("truncated"), "{summary}");
}

#[test]
fn offload_capture_holds_valid_super_packets() {
    let test = "offload_capture_holds_valid_super_packets";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "tshark") else { return };
    let mut ns = Netns::new("offpcap");
    let pcap = temp_path("offload.pcap");
    let pcap_arg = pcap.to_string_lossy().to_string();
    let srv = ns.serve(&["--offload", "--pcap", &pcap_arg]);
    let body = ns.run(|| http_get_bytes(3_000_000));
    assert_eq!(sha256(&body), sha256(&pattern(3_000_000)));
    let back = ns.run(|| echo_round_trip(random_bytes(2_000_000, 4), Duration::from_secs(60)));
    assert_eq!(back.len(), 2_000_000);
    let (_, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success(), "{lines:?}");

    // Super-packets are in the capture as they crossed the TUN...
    let big = std::process::Command::new("tshark")
        .args(["-r", &pcap_arg, "-Y", "ip.len > 1500", "-T", "fields", "-e", "ip.len"])
        .output()
        .unwrap();
    let sizes: Vec<u32> = String::from_utf8_lossy(&big.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(sizes.len() > 20, "super-packets in the capture: {sizes:?}");
    // ...with checksums Wireshark verifies (partial ones were finished before recording).
    let flagged = tshark_flagged(&pcap, "");
    assert!(flagged.is_empty(), "tshark flagged:\n{}", flagged.join("\n"));
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn a_plain_open_after_offload_turns_the_offloads_off() {
    let test = "a_plain_open_after_offload_turns_the_offloads_off";
    let Some(()) = require_root(test) else { return };
    let mut ns = Netns::new("offreset");
    let srv = ns.serve(&["--offload"]);
    let (_, status, _) = srv.interrupt(&mut ns);
    assert!(status.success());
    // The persistent TUN kept TSO and checksum offload: without TUNSETOFFLOAD(0) the kernel
    // would now hand a plain reader super-packets with partial checksums, which it drops.
    let srv = ns.serve(&[]);
    if require_tool(test, "ethtool").is_some() {
        let k = ns.sh("ethtool -k synack0");
        let text = String::from_utf8_lossy(&k.stdout);
        assert!(text.contains("tcp-segmentation-offload: off"), "{text}");
    }
    let data = random_bytes(4 << 20, 5);
    let want = sha256(&data);
    let back = ns.run(move || echo_round_trip(data, Duration::from_secs(60)));
    assert_eq!(sha256(&back), want);
    let (_, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success());
    let summary = lines.iter().find(|l| l.contains("connections,")).expect("a summary line");
    assert!(!summary.contains("bad-tcp-checksum") && !summary.contains("super-segments"), "{summary}");
}
