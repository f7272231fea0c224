//! `synack serve` on a real TUN device, with the kernel's TCP, curl and nc as peers. Each test
//! runs in a network namespace of its own.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn echo_one_mib_of_random_bytes_intact() {
    let Some(()) = require_root("echo_one_mib_of_random_bytes_intact") else { return };
    let mut ns = Netns::new("echo");
    let _srv = ns.serve(&[]);
    let data = random_bytes(1 << 20, 1);
    let want = sha256(&data);
    let got = ns.run(move || echo_round_trip(data, Duration::from_secs(30)));
    assert_eq!(got.len(), 1 << 20);
    assert_eq!(sha256(&got), want);
}

#[test]
fn curl_fetches_the_index_and_ten_megabytes() {
    let Some(()) = require_root("curl_fetches_the_index_and_ten_megabytes") else { return };
    let Some(()) = require_tool("curl_fetches_the_index_and_ten_megabytes", "curl") else { return };
    let mut ns = Netns::new("curl");
    let _srv = ns.serve(&[]);
    let out = ns.cmd("curl").args(["-sS", "-m", "10", "-i", "http://10.7.0.2/"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("synack"));
    let body = ns.cmd("curl").args(["-sS", "-m", "60", "http://10.7.0.2/bytes/10000000"]).output().unwrap();
    assert!(body.status.success(), "curl failed: {}", String::from_utf8_lossy(&body.stderr));
    assert_eq!(body.stdout.len(), 10_000_000);
    assert_eq!(sha256(&body.stdout), sha256(&pattern(10_000_000)));
    let missing =
        ns.cmd("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://10.7.0.2/nope"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&missing.stdout), "404");
}

#[test]
fn curl_keep_alive_reuses_one_connection() {
    let Some(()) = require_root("curl_keep_alive_reuses_one_connection") else { return };
    let Some(()) = require_tool("curl_keep_alive_reuses_one_connection", "curl") else { return };
    let mut ns = Netns::new("keepalive");
    let _srv = ns.serve(&[]);
    let out = ns
        .cmd("curl")
        .args([
            "-sv",
            "-m",
            "10",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "http://10.7.0.2/bytes/1000",
            "http://10.7.0.2/",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Re-using existing connection") || err.contains("Reusing existing"), "{err}");
    let close = ns
        .cmd("curl")
        .args(["-sv", "-m", "10", "-o", "/dev/null", "-H", "Connection: close", "http://10.7.0.2/"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&close.stderr);
    assert!(err.contains("Connection: close"), "{err}");
}

#[test]
fn nc_half_close_gets_the_echo() {
    let Some(()) = require_root("nc_half_close_gets_the_echo") else { return };
    let Some(()) = require_tool("nc_half_close_gets_the_echo", "nc") else { return };
    let mut ns = Netns::new("nc");
    let _srv = ns.serve(&[]);
    // -N: shut down the sending side at end of input, then keep reading (a half-close).
    let out = ns.sh("head -c 200000 /dev/zero | tr '\\0' 'x' | timeout 20 nc -N 10.7.0.2 7 | wc -c");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200000", "{}", String::from_utf8_lossy(&out.stderr));
    let out = ns.sh("printf 'hello synack\\n' | timeout 10 nc -N 10.7.0.2 7");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello synack\n");
    let out = ns.sh("head -c 1000000 /dev/urandom | timeout 20 nc -N 10.7.0.2 9; echo rc=$?");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rc=0"), "{out:?}");
}

#[test]
fn fifty_concurrent_echo_connections() {
    let Some(()) = require_root("fifty_concurrent_echo_connections") else { return };
    let mut ns = Netns::new("fifty");
    let _srv = ns.serve(&[]);
    let ok = ns.run(|| {
        let handles: Vec<_> = (0..50u64)
            .map(|i| {
                std::thread::spawn(move || {
                    let data = random_bytes(64 * 1024 + i as usize * 97, i);
                    let s = TcpStream::connect_timeout(&stack_addr(7).into(), Duration::from_secs(10)).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut w = s.try_clone().unwrap();
                    let sent = data.clone();
                    let writer = std::thread::spawn(move || {
                        w.write_all(&sent).unwrap();
                        w.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut back = Vec::new();
                    (&s).read_to_end(&mut back).unwrap();
                    writer.join().unwrap();
                    sha256(&back) == sha256(&data)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count()
    });
    assert_eq!(ok, 50);
}

#[test]
fn closed_port_is_refused_at_once_and_ping_answers() {
    let Some(()) = require_root("closed_port_is_refused_at_once_and_ping_answers") else { return };
    let mut ns = Netns::new("refused");
    let _srv = ns.serve(&[]);
    let (kind, took) = ns.run(|| {
        let start = Instant::now();
        let err = TcpStream::connect_timeout(&stack_addr(81).into(), Duration::from_secs(5)).unwrap_err();
        (err.kind(), start.elapsed())
    });
    assert_eq!(kind, std::io::ErrorKind::ConnectionRefused);
    assert!(took < Duration::from_secs(1), "refused in {took:?}");
    let ping = ns.cmd("ping").args(["-c", "2", "-i", "0.2", "-W", "2", "10.7.0.2"]).output().unwrap();
    assert!(ping.status.success(), "{}", String::from_utf8_lossy(&ping.stdout));
}

#[test]
fn sigint_closes_connections_and_prints_a_summary_within_two_seconds() {
    let Some(()) = require_root("sigint_closes_connections_and_prints_a_summary_within_two_seconds") else { return };
    let mut ns = Netns::new("sigint");
    let srv = ns.serve(&[]);
    // An idle connection the server must close when it stops.
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let path = format!("/var/run/netns/{}", ns.name);
    let client = std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut s = TcpStream::connect(stack_addr(7)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 16];
        done_tx.send(s.read(&mut buf).map_err(|e| e.kind())).unwrap();
    });
    rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (took, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success(), "{status}: {lines:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let summary = lines.iter().find(|l| l.contains("connections,")).expect("a summary line");
    assert!(summary.contains("segments in") && summary.contains("retransmissions") && summary.contains("drops"));
    // The idle client saw the close: end of stream (FIN) or a reset, not a hang.
    let r = done_rx.recv_timeout(Duration::from_secs(5)).expect("client saw the close");
    assert!(matches!(r, Ok(0) | Err(std::io::ErrorKind::ConnectionReset)), "{r:?}");
    client.join().unwrap();
}

#[test]
fn capture_reads_clean_in_tshark() {
    let Some(()) = require_root("capture_reads_clean_in_tshark") else { return };
    let Some(()) = require_tool("capture_reads_clean_in_tshark", "tshark") else { return };
    let mut ns = Netns::new("pcap");
    let pcap = temp_path("clean.pcap");
    let pcap_arg = pcap.to_string_lossy().to_string();
    let srv = ns.serve(&["--pcap", &pcap_arg]);
    let out = ns
        .sh("curl -s -m 10 http://10.7.0.2/ >/dev/null && curl -s -m 10 http://10.7.0.2/bytes/300000 >/dev/null \
         && printf 'abc' | timeout 5 nc -N 10.7.0.2 7 >/dev/null && ping -c 1 -W 2 10.7.0.2 >/dev/null; echo rc=$?");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rc=0"), "{out:?}");
    let (_, status, _) = srv.interrupt(&mut ns);
    assert!(status.success());
    let summary = std::process::Command::new("tshark").args(["-r", &pcap_arg, "-q", "-z", "expert"]).output().unwrap();
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(summary.status.success(), "{}", String::from_utf8_lossy(&summary.stderr));
    assert!(!text.contains("Errors ("), "error-level expert entries:\n{text}");
    assert!(!text.to_lowercase().contains("malformed"), "{text}");
    assert!(!text.contains("Bad checksum"), "{text}");
    // Checksums verified by Wireshark itself.
    let flagged = tshark_flagged(&pcap, " || tcp.analysis.flags");
    let serious: Vec<&String> = flagged
        .iter()
        .filter(|l| !l.contains("Window") && !l.contains("window") && !l.contains("Keep-Alive"))
        .collect();
    assert!(serious.is_empty(), "tshark flagged:\n{}", flagged.join("\n"));
    let frames = std::process::Command::new("tshark").args(["-r", &pcap_arg]).output().unwrap();
    let frames = String::from_utf8_lossy(&frames.stdout);
    assert!(
        frames.contains("[SYN]") && frames.contains("[SYN, ACK]") && frames.contains("HTTP/1.1 200 OK"),
        "{frames}"
    );
    assert!(frames.contains("Echo (ping) reply"), "{frames}");
}

#[test]
fn trace_shows_the_handshake_relative_and_json_trace_parses() {
    let Some(()) = require_root("trace_shows_the_handshake_relative_and_json_trace_parses") else { return };
    let Some(()) = require_tool("trace_shows_the_handshake_relative_and_json_trace_parses", "curl") else { return };
    let mut ns = Netns::new("trace");
    let srv = ns.serve(&["--trace"]);
    let out = ns.cmd("curl").args(["-s", "-m", "10", "-o", "/dev/null", "http://10.7.0.2/"]).output().unwrap();
    assert!(out.status.success());
    let (_, _, lines) = srv.interrupt(&mut ns);
    let text = lines.join("\n");
    for want in ["[SYN] seq=0", "[SYN, ACK] seq=0 ack=1", "LISTEN → SYN-RECEIVED", "SYN-RECEIVED → ESTABLISHED"] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let mut ns = Netns::new("tracejson");
    let srv = ns.serve(&["--trace=json"]);
    let out = ns.cmd("curl").args(["-s", "-m", "10", "-o", "/dev/null", "http://10.7.0.2/"]).output().unwrap();
    assert!(out.status.success());
    let (_, _, lines) = srv.interrupt(&mut ns);
    let events: Vec<serde_json::Value> =
        lines.iter().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().any(|e| e["event"] == "segment" && e["flags"] == "[SYN, ACK]" && e["seq"] == 0));
    assert!(events.iter().any(|e| e["event"] == "state" && e["to"] == "ESTABLISHED"));
}
