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

/// How long the page may take to do its part in a real browser on a loaded machine.
const PAGE_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn ws_demo_page_in_headless_chromium_chats_and_shows_live_connections() {
    let test = "ws_demo_page_in_headless_chromium_chats_and_shows_live_connections";
    let Some(()) = require_root(test) else { return };
    let mut ns = Netns::new("wspage");
    let _srv = ns.serve(&[]);
    let Some(mut browser) = common::chromium::Chromium::start(&ns, test) else { return };
    // `?hello=` makes the page send that text on /chat as soon as it is open and mark the
    // page when the broadcast brings it back; `?sio=` does the same over Socket.IO.
    browser.open("http://10.7.0.2/?hello=hello-from-chromium&sio=hello-over-socketio");
    let took = browser.wait_until(
        "the chat round trip and the live table",
        r##"document.body.dataset.chatRoundtrip === "ok" && document.body.dataset.sioRoundtrip === "ok"
           && document.querySelector("#stats-status.live") !== null
           && document.querySelector('tr.conn.you[data-state="ESTABLISHED"]') !== null"##,
        PAGE_LIMIT,
    );
    eprintln!("chat and Socket.IO round trips and the live table {took:.2?} after loading");
    // A table pushed after all three WebSockets were open lists them; every connection in
    // it has had its handshake timed, so each row shows a round trip with its unit.
    let update = r#"Number((/update #(\d+)/.exec(document.getElementById("counters").textContent) || [0, -1])[1])"#;
    let seen = browser.eval(update).ok().and_then(|v| v.as_i64()).unwrap_or(-1);
    browser.wait_until("a newer table", &format!("{update} > {seen}"), PAGE_LIMIT);
    browser.wait_until(
        "an RTT with its unit in every ESTABLISHED row",
        r#"(() => { const cells = [...document.querySelectorAll('tr.conn[data-state="ESTABLISHED"] td.rtt')];
            return cells.length >= 3 && cells.every(td => /^[1-9][0-9.]* (µs|ms)$/.test(td.textContent)); })()"#,
        PAGE_LIMIT,
    );
    let dom = browser.dom();
    assert!(dom.contains("synack — a userspace TCP/IP stack on a TUN device"));
    assert!(dom.contains("hello-from-chromium"));
    assert!(dom.contains("<td>10.7.0.2:80</td><td>10.7.0.1:"), "rows show the four-tuple");
    // The page says how many WebSockets it opens; the browser counts them.
    let opened = browser.websockets();
    let paths: Vec<&str> = opened.iter().map(|u| u.trim_start_matches("ws://10.7.0.2")).collect();
    // Three for the table and the chats, then the live ladder's two (its events, and the
    // echo connection it watches first).
    assert_eq!(paths, ["/stats", "/chat", "/socket.io/?EIO=4&transport=websocket", "/events", "/ws"], "{opened:?}");
    assert!(dom.contains("The page then opened three WebSockets"), "the text miscounts them:\n{dom}");
    assert!(dom.contains("The ladder opens two more WebSockets"), "the ladder's text miscounts its own:\n{dom}");

    // A screenshot for people, 1280 px wide: target/tmp/demo-page.png (docs/images/ has a copy).
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-page.png");
    browser.screenshot(&shot);
    eprintln!("screenshot of the demo page: {}", shot.display());
}
