//! Socket.IO on synack's TCP, on a real TUN device: `synack serve` in a fresh network
//! namespace per test, with the Python `python-socketio` client (WebSocket transport) and
//! raw packets over Python's `websockets` as peers (tests/clients/sio_client.py).

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// Each client run is bounded by this (the `timeout` command), whatever happens inside.
const CLIENT_LIMIT_S: u32 = 120;

fn require_clients(test: &str) -> Option<()> {
    require_python_clients(test)
}

/// Runs one sio_client.py subcommand in the namespace; returns its JSON result line.
fn client(ns: &Netns, args: &[&str]) -> serde_json::Value {
    let start = Instant::now();
    let out = ns
        .cmd("timeout")
        .arg(CLIENT_LIMIT_S.to_string())
        .arg(python())
        .arg(repo().join("tests/clients/sio_client.py"))
        .args(args)
        .output()
        .expect("run sio_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sio_client.py {args:?} failed ({}):\n{stdout}\n{stderr}", out.status);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad result line {line:?}: {e}"));
    eprintln!("sio_client.py {} → {v} ({:.2?})", args.join(" "), start.elapsed());
    v
}

#[test]
fn sio_python_client_connect_ack_broadcast_room_namespace_disconnect() {
    let test = "sio_python_client_connect_ack_broadcast_room_namespace_disconnect";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_clients(test) else { return };
    let mut ns = Netns::new("siosteps");
    let _srv = ns.serve(&[]);
    let r = client(&ns, &["steps"]);
    assert_eq!(r["connected"], 2);
    assert_eq!(r["transport"], "websocket");
    for step in ["echo_ack", "broadcast", "room", "namespace", "disconnected"] {
        assert_eq!(r[step], true, "{step}: {r}");
    }
}

#[test]
fn sio_python_client_on_long_polling_only() {
    let test = "sio_python_client_on_long_polling_only";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_clients(test) else { return };
    let mut ns = Netns::new("siopoll");
    // Short heartbeats, so pings and pongs cross the polling transport during the steps.
    let _srv = ns.serve_env(&[], &[("SYNACK_SIO_PING_INTERVAL_MS", "300"), ("SYNACK_SIO_PING_TIMEOUT_MS", "2000")]);
    let r = client(&ns, &["steps", "--transport", "polling"]);
    assert_eq!(r["transport"], "polling");
    for step in ["echo_ack", "broadcast", "room", "namespace", "disconnected"] {
        assert_eq!(r[step], true, "{step}: {r}");
    }
}

#[test]
fn sio_heartbeat_drops_the_silent_client_keeps_the_answering_one() {
    let test = "sio_heartbeat_drops_the_silent_client_keeps_the_answering_one";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_clients(test) else { return };
    let mut ns = Netns::new("siohb");
    let _srv = ns.serve_env(&[], &[("SYNACK_SIO_PING_INTERVAL_MS", "400"), ("SYNACK_SIO_PING_TIMEOUT_MS", "300")]);
    let r = client(&ns, &["heartbeat", "--interval-ms", "400", "--timeout-ms", "300"]);
    let closed = r["silent_closed_after_s"].as_f64().expect("a time");
    assert!((0.6..=1.7).contains(&closed), "closed after {closed}s; interval+timeout is 0.7s");
    assert!(r["answering_pings"].as_u64().unwrap_or(0) >= 3, "{r}");
}

#[test]
fn sio_malformed_packets_get_the_documented_error_and_spare_other_clients() {
    let test = "sio_malformed_packets_get_the_documented_error_and_spare_other_clients";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_clients(test) else { return };
    let mut ns = Netns::new("siobad");
    let srv = ns.serve(&[]);
    let r = client(&ns, &["malformed"]);
    for case in ["bad_eio_type", "bad_sio_type", "broken_json", "event_not_array", "binary_event"] {
        assert_eq!(r[case], 1002, "{case}: {r}");
    }
    assert_eq!(r["other_client_ok"], true);
    // The server is still up and serves a new client.
    let again = client(&ns, &["steps"]);
    assert_eq!(again["disconnected"], true);
    let lines = srv.lines.lock().unwrap().clone();
    assert!(!lines.iter().any(|l| l.contains("panicked")), "{lines:?}");
}

#[test]
fn sio_trace_decodes_engine_io_and_socket_io_packets() {
    let test = "sio_trace_decodes_engine_io_and_socket_io_packets";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_clients(test) else { return };
    let mut ns = Netns::new("siotrace");
    let srv = ns.serve(&["--trace"]);
    client(&ns, &["steps"]);
    std::thread::sleep(Duration::from_millis(200));
    let lines = srv.lines.lock().unwrap().clone();
    let has = |needle: &str| lines.iter().any(|l| l.contains("sio ") && l.contains(needle));
    for needle in [
        r#"→ synack EVENT chat message ["hi from a"]  ‹42["chat message","hi from a"]›"#,
        r#"EVENT chat message ["hi from a"]"#,
        "→ synack CONNECT /chat",
        "OPEN {",
        "ACK id=",
    ] {
        assert!(has(needle), "no trace line with {needle:?} in {lines:#?}");
    }
}

/// `socket.io-client` at a pinned version, npm-installed once per test run into a temp
/// dir; returns its `node_modules`. Missing after that: a failure under CI, a skip elsewhere.
fn require_node_client(test: &str) -> Option<std::path::PathBuf> {
    require_tool(test, "node")?;
    require_tool(test, "npm")?;
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_path("sio-node-client");
    let modules = dir.join("node_modules");
    let has = || modules.join("socket.io-client/package.json").exists();
    if !has() {
        let _ = std::fs::create_dir_all(&dir);
        eprintln!("{test}: npm install socket.io-client@{NODE_CLIENT_VERSION}");
        let _ = std::process::Command::new("timeout")
            .args(["300", "npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("socket.io-client@{NODE_CLIENT_VERSION}"))
            .status();
    }
    if has() {
        return Some(modules);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: npm could not install socket.io-client");
    }
    eprintln!("SKIPPED {test}: socket.io-client is missing and npm could not install it");
    None
}

const NODE_CLIENT_VERSION: &str = "4.8.1";

#[test]
fn sio_node_client_default_options_polling_then_upgrade() {
    let test = "sio_node_client_default_options_polling_then_upgrade";
    let Some(()) = require_root(test) else { return };
    let Some(modules) = require_node_client(test) else { return };
    let mut ns = Netns::new("sionode");
    let _srv = ns.serve(&[]);
    let out = ns
        .cmd("timeout")
        .arg(CLIENT_LIMIT_S.to_string())
        .arg("node")
        .arg(repo().join("tests/clients/sio_node.js"))
        .env("NODE_PATH", &modules)
        .output()
        .expect("run sio_node.js");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sio_node.js failed ({}):\n{stdout}\n{stderr}", out.status);
    let line = stdout.lines().last().unwrap_or_default();
    let r: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad result line {line:?}: {e}"));
    eprintln!("sio_node.js → {r}");
    assert_eq!(r["first_transport"], "polling", "{r}");
    assert_eq!(r["upgraded_transport"], "websocket", "{r}");
    for step in ["echo_ack", "broadcast", "room", "namespace", "disconnected"] {
        assert_eq!(r[step], true, "{step}: {r}");
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

#[test]
fn sio_demo_page_client_in_headless_chromium_gets_its_ack_and_broadcast() {
    let test = "sio_demo_page_client_in_headless_chromium_gets_its_ack_and_broadcast";
    let Some(()) = require_root(test) else { return };
    let Some(browser) = chromium() else {
        require_tool(test, "chromium");
        return;
    };
    let mut ns = Netns::new("siopage");
    let _srv = ns.serve(&[]);
    // `?sio=` makes the page's hand-written client emit `echo` with that text as soon as it
    // is connected and, on the ack, a chat message with it; the page is marked when the
    // broadcast comes back.
    let url = "http://10.7.0.2/?sio=hello-over-socketio";
    let mut dom = String::new();
    // The browser is real and CI machines vary: a few tries, each bounded.
    for attempt in 1..=5 {
        let profile = temp_path(&format!("sio-chromium-profile-{attempt}"));
        let _ = std::fs::remove_dir_all(&profile);
        let out = ns
            .cmd("timeout")
            .args(["90", browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            .args(["--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--virtual-time-budget=5000")
            .arg("--dump-dom")
            .arg(url)
            .output()
            .expect("run chromium");
        let _ = std::fs::remove_dir_all(&profile);
        dom = String::from_utf8_lossy(&out.stdout).into_owned();
        if dom.contains(r#"data-sio-roundtrip="ok""#) {
            break;
        }
        eprintln!("attempt {attempt}: page not ready yet; stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(dom.contains(r#"data-sio-roundtrip="ok""#), "no broadcast round trip in the page:\n{dom}");
    assert!(dom.contains(r#"data-sio-ack="hello-over-socketio""#), "no echo ack in the page:\n{dom}");
    assert!(dom.contains(r#"<li class="msg">hello-over-socketio</li>"#), "no broadcast in the page:\n{dom}");
    assert!(dom.contains(r#"id="sio-status" class="status live">live: sid "#), "{dom}");
}
