//! Attacks from tools nobody here wrote, on a real TUN, each in a namespace of its own and
//! bounded in time: hping3's SYN flood (from the kernel's own address, whose TCP resets every
//! SYN,ACK, and from random sources), slowhttptest's slowloris, and 16,600 connections each
//! holding part of a request head. A real client must still be served promptly.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Body fetched to time the service: long enough to be more than a handshake.
const FETCH: &str = "http://10.7.0.2/bytes/1000000";

/// One fetch of `url` with curl inside the namespace: seconds, or `None` if it failed.
fn fetch(ns: &Netns, url: &str, max_s: u32) -> Option<f64> {
    let out = ns.sh(&format!("curl -s -o /dev/null -m {max_s} -w '%{{http_code}} %{{time_total}}' {url}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (code, secs) = text.split_once(' ')?;
    (out.status.success() && code == "200").then(|| secs.parse().ok()).flatten()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Connections per state, from one `/stats` snapshot (a WebSocket) taken in the namespace.
fn states(ns: &Netns) -> Option<std::collections::BTreeMap<String, usize>> {
    ns.run(|| {
        let s = TcpStream::connect_timeout(&stack_addr(80).into(), Duration::from_secs(3)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        let (mut ws, _) = tungstenite::client("ws://10.7.0.2/stats", s).ok()?;
        let msg = ws.read().ok()?;
        let v: serde_json::Value = serde_json::from_str(msg.to_text().ok()?).ok()?;
        let mut counts = std::collections::BTreeMap::new();
        for c in v["connections"].as_array()? {
            *counts.entry(c["state"].as_str()?.to_string()).or_insert(0) += 1;
        }
        Some(counts)
    })
}

/// The line `synack serve` prints at exit.
fn summary(lines: &[String]) -> String {
    lines.iter().rev().find(|l| l.contains("connections,")).cloned().unwrap_or_default()
}

/// hping3's SYN flood on port 80 for `secs` seconds, with `extra` arguments.
fn hping_flood(ns: &Netns, secs: u32, extra: &[&str]) -> Child {
    let secs = secs.to_string();
    ns.cmd("timeout")
        .args([secs.as_str(), "hping3", "-q", "-S", "--flood", "-p", "80"])
        .args(extra)
        .arg("10.7.0.2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hping3")
}

/// Fetch times unloaded, then while hping3 floods; the flood must not take the service:
/// every fetch succeeds, their median stays within a few times the unloaded one, and
/// SYN-RECEIVED stays within the backlog (256). A flood measures the stack's packet rate,
/// so it is judged on the release build (a debug build handles a fraction of the SYNs).
/// `slack` is added to the allowed median; `None`: no bound on the time (see the tests).
fn syn_flood(name: &str, extra: &[&str], slack: Option<f64>) {
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "hping3") else { return };
    let Some(()) = require_tool(name, "curl") else { return };
    let bin = match release_binary() {
        Ok(bin) => bin,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("{name}: cannot run under CI: {why}"),
        Err(why) => return eprintln!("SKIPPED {name}: {why}"),
    };
    let mut ns = Netns::new("hping");
    let srv = ns.serve_bin(&bin, &[], &[]);
    let unloaded: Vec<f64> = (0..7).filter_map(|_| fetch(&ns, FETCH, 10)).collect();
    assert_eq!(unloaded.len(), 7, "fetches failed before any flood");

    let mut hping = hping_flood(&ns, 8, extra);
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let (mut loaded, mut failed, mut half_open) = (Vec::new(), 0, Vec::new());
    while start.elapsed() < Duration::from_secs(7) {
        match fetch(&ns, FETCH, 10) {
            Some(t) => loaded.push(t),
            None => failed += 1,
        }
        if loaded.len() % 4 == 1 {
            let counts = states(&ns);
            half_open.push(counts.as_ref().map(|c| c.get("SYN-RECEIVED").copied().unwrap_or(0)));
        }
    }
    let flooded_for = hping.wait().expect("wait for hping3");
    let (_, status, lines) = srv.interrupt(&mut ns);
    let (u, l) = (median(&unloaded), median(&loaded));
    eprintln!(
        "hping3 {extra:?}: unloaded median {u:.4} s {unloaded:?}; during the flood median {l:.4} s over {} \
         fetches ({failed} failed) {loaded:?}; SYN-RECEIVED samples {half_open:?}; hping3 {flooded_for}\nsynack: {}",
        loaded.len(),
        summary(&lines)
    );
    assert!(status.success() || status.code() == Some(130), "synack exited with {status}");
    assert_eq!(failed, 0, "fetches failed during the flood");
    assert!(!loaded.is_empty(), "no fetch completed in 7 s of flood");
    if let Some(slack) = slack {
        assert!(loaded.len() >= 3, "only {} fetches in 7 s of flood", loaded.len());
        assert!(l <= (5.0 * u).max(u + slack), "median fetch {l:.3} s during the flood, {u:.3} s without");
    }
    assert!(half_open.iter().flatten().next().is_some(), "no /stats snapshot during the flood");
    for n in half_open.iter().flatten() {
        assert!(*n <= 256 + 2, "{n} connections in SYN-RECEIVED, past the backlog of 256");
    }
    assert!(summary(&lines).contains("SYN cookies sent"), "the flood never filled the backlog");
    assert!(!summary(&lines).contains("connection-limit"), "the flood filled the connection table");
}

/// From 10.7.0.1 the kernel answers each SYN,ACK with a RST: every flood SYN costs the loop
/// a second packet in, and the kernel builds that RST inside synack's write call (a profile
/// under this flood: 86% of the loop's time in the kernel, half of it there). The loop keeps
/// up with half the SYNs it does from random sources, and the TUN's queue, full of the
/// flood, delays and drops the fetch's packets too: fetches take seconds, not the
/// milliseconds the kernel's own TCP keeps on a veth, and how many seconds varies from run
/// to run (0.6–5.6 s measured), so no time is asserted: that target is open, and the times
/// are printed. What is guarded here is that nothing is refused: the backlog stays exact,
/// the table never fills, every fetch completes.
#[test]
fn hping3_syn_flood_from_the_kernels_address_refuses_no_fetch() {
    syn_flood("hping3_syn_flood_from_the_kernels_address_refuses_no_fetch", &[], None);
}

#[test]
fn hping3_syn_flood_from_random_sources_leaves_fetches_prompt() {
    syn_flood("hping3_syn_flood_from_random_sources_leaves_fetches_prompt", &["--rand-source"], Some(0.25));
}

/// `curl http://10.7.0.2/` three times: each must answer 200 within 2 s.
fn prompt_index(ns: &Netns) -> Vec<Option<f64>> {
    (0..3).map(|_| fetch(ns, "http://10.7.0.2/", 2)).collect()
}

/// 16,600 connections from one client, each holding part of a request head (more than the
/// 16,384 the table holds); `args` for `synack serve`.
fn partial_heads(name: &str, args: &[&str]) {
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "curl") else { return };
    let Some(()) = require_tool(name, "python3") else { return };
    let mut ns = Netns::new("loris");
    let srv = ns.serve(args);
    let script = repo().join("tests/clients/partial_heads.py");
    let mut client = ns
        .cmd("timeout")
        .args(["180", "python3"])
        .arg(&script)
        .args(["--count", "16600", "--hold", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the partial-head client");
    let mut line = String::new();
    BufReader::new(client.stdout.take().expect("stdout")).read_line(&mut line).expect("the client's report");
    let report: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    let during = prompt_index(&ns);
    let counts = states(&ns);
    // Closing stdin tells the client to let go.
    drop(client.stdin.take().map(|mut s| s.write_all(b"")));
    let _ = client.wait();
    let (_, status, lines) = srv.interrupt(&mut ns);
    eprintln!(
        "partial heads {args:?}: client {report}; curl / while they are held {during:?}; states {counts:?}\nsynack: {}",
        summary(&lines)
    );
    assert!(status.success() || status.code() == Some(130), "synack exited with {status}");
    assert!(report["opened"].as_u64().unwrap_or(0) + report["failed"].as_u64().unwrap_or(0) == 16600, "{line}");
    for t in &during {
        assert!(t.is_some_and(|t| t < 2.0), "curl http://10.7.0.2/ did not answer within 2 s: {during:?}");
    }
}

#[test]
fn sixteen_thousand_partial_heads_leave_room_for_curl() {
    partial_heads("sixteen_thousand_partial_heads_leave_room_for_curl", &[]);
}

/// With no head deadline and no per-source share to help, the table fills: SYN cookies and
/// reclaiming the connections idle longest alone keep the service.
#[test]
fn sixteen_thousand_partial_heads_filling_the_table_leave_room_for_curl() {
    partial_heads(
        "sixteen_thousand_partial_heads_filling_the_table_leave_room_for_curl",
        &["--header-timeout-ms", "600000", "--max-per-source", "100000"],
    );
}

/// slowhttptest in slowloris mode (-H): 1,000 connections, each sending a header line every
/// 2 s and never the blank line. With a 3 s head deadline synack closes every one of them
/// before the test's 15 s are up (slowhttptest: "No open connections left"; without the
/// deadline it holds them all to the end), and the service stays available throughout, as
/// slowhttptest's own probe and curl both say.
#[test]
fn slowhttptest_slowloris_leaves_the_service_available() {
    let name = "slowhttptest_slowloris_leaves_the_service_available";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "slowhttptest") else { return };
    let Some(()) = require_tool(name, "curl") else { return };
    let mut ns = Netns::new("slowhttp");
    let srv = ns.serve(&["--header-timeout-ms", "3000"]);
    let tool = ns
        .cmd("timeout")
        .args(["40", "slowhttptest", "-H", "-c", "1000", "-r", "500", "-i", "2", "-l", "15", "-x", "24", "-p", "2"])
        .args(["-u", "http://10.7.0.2/"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start slowhttptest");
    std::thread::sleep(Duration::from_secs(1));
    let mut during = Vec::new();
    for _ in 0..3 {
        during.extend(prompt_index(&ns));
        std::thread::sleep(Duration::from_millis(700));
    }
    let out = tool.wait_with_output().expect("slowhttptest ran");
    let (_, status, lines) = srv.interrupt(&mut ns);
    let raw = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let text = strip_ansi(&raw);
    let verdicts: Vec<&str> = text.lines().filter(|l| l.contains("service available")).collect();
    let ended = text.lines().rev().find(|l| l.starts_with("Test ended") || l.starts_with("Exit status"));
    eprintln!(
        "slowhttptest: {} status reports, {} saying unavailable; {ended:?}; curl during it {during:?}\nsynack: {}",
        verdicts.len(),
        verdicts.iter().filter(|l| !l.contains("YES")).count(),
        summary(&lines)
    );
    assert!(status.success() || status.code() == Some(130), "synack exited with {status}");
    assert!(!verdicts.is_empty(), "slowhttptest said nothing about the service: {text}");
    assert!(verdicts.iter().all(|l| l.contains("YES")), "slowhttptest found the service unavailable: {verdicts:?}");
    assert!(text.contains("No open connections left"), "synack did not close the slow connections: {text}");
    for t in &during {
        assert!(t.is_some_and(|t| t < 2.0), "curl http://10.7.0.2/ did not answer within 2 s: {during:?}");
    }
}

/// slowhttptest colours its report.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // ESC [ parameters final-letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
