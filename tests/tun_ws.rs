//! WebSocket on synack's TCP, on a real TUN device: `synack serve` in a fresh network
//! namespace per test, with independent clients as peers: Python's `websockets` library
//! (tests/clients/ws_client.py), curl for the handshake errors, and headless Chromium for
//! the demo page.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

/// Each client run is bounded by this (the `timeout` command), whatever happens inside.
const CLIENT_LIMIT_S: u32 = 300;

fn client_script() -> PathBuf {
    repo().join("tests/clients/ws_client.py")
}

fn require_websockets(test: &str) -> Option<()> {
    require_python_clients(test)
}

/// Runs one ws_client.py subcommand in the namespace; returns its JSON result line.
fn client(ns: &Netns, args: &[&str]) -> serde_json::Value {
    let start = Instant::now();
    let out = ns
        .cmd("timeout")
        .arg(CLIENT_LIMIT_S.to_string())
        .arg(python())
        .arg(client_script())
        .args(args)
        .output()
        .expect("run ws_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ws_client.py {args:?} failed ({}):\n{stdout}\n{stderr}", out.status);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad result line {line:?}: {e}"));
    eprintln!("ws_client.py {} → {v} ({:.2?})", args.join(" "), start.elapsed());
    v
}

fn curl(ns: &Netns, args: &[&str]) -> Output {
    ns.cmd("curl").args(["-sS", "-m", "10"]).args(args).output().expect("run curl")
}

#[test]
fn ws_echo_thousand_round_trips_sixteen_mib_ping_and_close_codes() {
    let test = "ws_echo_thousand_round_trips_sixteen_mib_ping_and_close_codes";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_websockets(test) else { return };
    let mut ns = Netns::new("wsecho");
    let _srv = ns.serve(&[]);
    let echo = client(&ns, &["echo", "--count", "1000"]);
    assert_eq!(echo["round_trips"], 1000);
    eprintln!(
        "1,000 echo round trips (0 B – 1 MiB, text and binary): {} bytes each way in {} s",
        echo["bytes_each_way"], echo["seconds"]
    );
    let big = client(&ns, &["big"]);
    assert_eq!(big["fragmented"], true);
    let ping = client(&ns, &["ping"]);
    assert!(ping["pong_ms"].as_f64().is_some());
    let close = client(&ns, &["close"]);
    assert_eq!(close["echoed"]["1000"], 1000);
    assert_eq!(close["echoed"]["4001"], 4001);
}

#[test]
fn ws_chat_in_order_with_join_leave_two_hundred_clients_and_a_stalled_reader_dropped() {
    let test = "ws_chat_in_order_with_join_leave_two_hundred_clients_and_a_stalled_reader_dropped";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_websockets(test) else { return };
    let mut ns = Netns::new("wschat");
    let _srv = ns.serve(&[]);
    let chat = client(&ns, &["chat", "--count", "200"]);
    assert_eq!(chat["messages_each"], 401);
    let many = client(&ns, &["many", "--count", "200"]);
    assert_eq!(many["messages_delivered"], 200 * 200);
    let stall = client(&ns, &["stall", "--count", "600"]);
    assert!(stall["dropped"].as_u64().is_some());
    // The stalled client cost the live one no more than a moment per message.
    assert!(stall["slowest_round_trip_s"].as_f64().is_some_and(|s| s < 5.0), "{stall}");
}

#[test]
fn ws_stats_first_snapshot_at_once_with_the_viewers_own_connection() {
    let test = "ws_stats_first_snapshot_at_once_with_the_viewers_own_connection";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_websockets(test) else { return };
    let mut ns = Netns::new("wsstats");
    let _srv = ns.serve(&[]);
    let stats = client(&ns, &["stats"]);
    assert_eq!(stats["row"]["state"], "ESTABLISHED");
    assert!(stats["first_ms"].as_f64().is_some_and(|ms| ms < 500.0), "{stats}");
}

#[test]
fn ws_bad_handshakes_get_400_or_426_and_the_server_keeps_serving() {
    let test = "ws_bad_handshakes_get_400_or_426_and_the_server_keeps_serving";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "curl") else { return };
    let mut ns = Netns::new("wsbad");
    let _srv = ns.serve(&[]);
    let url = "http://10.7.0.2/ws";
    let upgrade = ["-H", "Upgrade: websocket", "-H", "Connection: Upgrade"];
    let key = ["-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="];
    let v13 = ["-H", "Sec-WebSocket-Version: 13"];
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec![url], "426", "WebSocket endpoint"),
        (vec!["http://10.7.0.2/chat"], "426", "WebSocket endpoint"),
        ([&upgrade[..], &v13, &[url]].concat(), "400", "missing Sec-WebSocket-Key"),
        ([&upgrade[..], &v13, &["-H", "Sec-WebSocket-Key: short=="], &[url]].concat(), "400", "16 bytes"),
        ([&upgrade[..], &key, &[url]].concat(), "400", "missing Sec-WebSocket-Version"),
        ([&upgrade[..], &key, &["-H", "Sec-WebSocket-Version: 8"], &[url]].concat(), "400", "not supported"),
        ([&upgrade[..], &key, &v13, &["-X", "POST", url]].concat(), "400", "must be a GET"),
        ([&key[..], &v13, &["-H", "Upgrade: websocket"], &[url]].concat(), "400", "Connection: Upgrade"),
    ];
    for (args, code, reason) in cases {
        let out = curl(&ns, &[&["-w", "\n%{http_code}"], &args[..]].concat());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.ends_with(code), "curl {args:?}: wanted {code}, got {text:?}");
        assert!(text.contains(reason), "curl {args:?}: body lacks {reason:?}: {text:?}");
    }
    // Still serving: the page, /bytes/N, a 404, and a real WebSocket.
    let page = curl(&ns, &["http://10.7.0.2/"]);
    assert!(String::from_utf8_lossy(&page.stdout).contains("synack — a userspace TCP/IP stack"));
    let bytes = curl(&ns, &["http://10.7.0.2/bytes/100000"]);
    assert_eq!(sha256(&bytes.stdout), sha256(&pattern(100_000)));
    let missing = curl(&ns, &["-o", "/dev/null", "-w", "%{http_code}", "http://10.7.0.2/nope"]);
    assert_eq!(String::from_utf8_lossy(&missing.stdout), "404");
    if require_websockets(test).is_some() {
        client(&ns, &["ping"]);
    }
}

#[test]
fn ws_echo_byte_exact_under_loss_and_reorder() {
    let test = "ws_echo_byte_exact_under_loss_and_reorder";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_websockets(test) else { return };
    let mut ns = Netns::new("wsfaults");
    let srv = ns.serve(&["--faults", "loss=0.03,reorder=0.03,seed=11"]);
    // Fewer round trips than without faults: every lost segment costs a retransmission
    // timeout or a fast-recovery round, and the point here is correctness, not speed.
    let echo = client(&ns, &["--seed", "5", "echo", "--count", "100"]);
    assert_eq!(echo["round_trips"], 100);
    client(&ns, &["close"]);
    let (_, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success(), "{lines:?}");
    let faults = lines.iter().find(|l| l.contains("dropped")).cloned().unwrap_or_default();
    eprintln!("faults: {faults}");
    assert!(!faults.contains(" 0 dropped"), "no loss was injected: {faults}");
}

#[test]
fn ws_trace_shows_the_upgrade_and_every_frame() {
    let test = "ws_trace_shows_the_upgrade_and_every_frame";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_websockets(test) else { return };
    let mut ns = Netns::new("wstrace");
    let srv = ns.serve_env(&[], &[("SYNACK_LOG", "synack::ws=info")]);
    client(&ns, &["ping"]);
    client(&ns, &["close"]);
    std::thread::sleep(Duration::from_millis(200));
    let log = srv.lines.lock().unwrap().join("\n");
    for want in [
        "upgrade: GET /ws HTTP/1.1",
        "Sec-WebSocket-Key: ",
        "Sec-WebSocket-Accept: ",
        "→ synack [PING] opcode=0x9 len=13 fin=1 masked",
        "[PONG] opcode=0xa len=13 fin=1",
        "[TEXT] opcode=0x1 len=10 fin=1 masked",
        "→ synack [CLOSE]",
        "synack → 10.7.0.1:",
    ] {
        assert!(log.contains(want), "trace lacks {want:?}:\n{log}");
    }
}

/// Debian ships the browser as `chromium`; the smaller `chromium-headless-shell` also works.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-headless-shell"].into_iter().find(|b| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {b}"))
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn run_chromium(ns: &Netns, browser: &str, profile: &std::path::Path, extra: &[&str], url: &str) -> Output {
    ns.cmd("timeout")
        .args(["90", browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        // Virtual time: the page's timers run ahead while the network is idle, and the
        // browser stops when the budget is used, so the run is short and bounded.
        .arg("--virtual-time-budget=5000")
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium")
}

#[test]
fn ws_demo_page_in_headless_chromium_chats_and_shows_live_connections() {
    let test = "ws_demo_page_in_headless_chromium_chats_and_shows_live_connections";
    let Some(()) = require_root(test) else { return };
    let browser = match chromium() {
        Some(b) => b,
        None => {
            require_tool(test, "chromium");
            return;
        }
    };
    let mut ns = Netns::new("wspage");
    let _srv = ns.serve(&[]);
    // `?hello=` makes the page send that text on /chat as soon as it is open and mark the
    // page when the broadcast brings it back.
    let url = "http://10.7.0.2/?hello=hello-from-chromium";
    let mut dom = String::new();
    let mut ok = false;
    // The browser is real and CI machines vary: a few tries, each bounded.
    for attempt in 1..=3 {
        let profile = temp_path(&format!("chromium-profile-{attempt}"));
        let _ = std::fs::remove_dir_all(&profile);
        let out = run_chromium(&ns, browser, &profile, &["--dump-dom"], url);
        dom = String::from_utf8_lossy(&out.stdout).into_owned();
        let _ = std::fs::remove_dir_all(&profile);
        ok = dom.contains(r#"data-chat-roundtrip="ok""#)
            && dom.contains(r#"<span id="stats-status" class="status live">live</span>"#)
            && dom.contains(r#"class="conn you" data-state="ESTABLISHED""#);
        if ok {
            break;
        }
        eprintln!("attempt {attempt}: page not ready yet; stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(ok, "the page's chat round trip or its live table is missing:\n{dom}");
    assert!(dom.contains("synack — a userspace TCP/IP stack on a TUN device"));
    assert!(dom.contains("hello-from-chromium"));
    let established = dom.matches(r#"data-state="ESTABLISHED""#).count();
    assert!(established >= 1, "no ESTABLISHED row");
    assert!(dom.contains("<td>10.7.0.2:80</td><td>10.7.0.1:"), "rows show the four-tuple");

    // A screenshot for people: target/tmp/ws-demo-page.png.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ws-demo-page.png");
    let _ = std::fs::remove_file(&shot);
    let profile = temp_path("chromium-profile-shot");
    let out = run_chromium(
        &ns,
        browser,
        &profile,
        &["--window-size=1100,1300", "--hide-scrollbars", &format!("--screenshot={}", shot.display())],
        url,
    );
    let _ = std::fs::remove_dir_all(&profile);
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG"), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("screenshot of the demo page: {} ({} bytes)", shot.display(), png.len());
}
