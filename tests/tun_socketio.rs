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

/// How long the page may take to do its part in a real browser on a loaded machine.
const PAGE_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn sio_demo_page_client_in_headless_chromium_gets_its_ack_and_broadcast() {
    let test = "sio_demo_page_client_in_headless_chromium_gets_its_ack_and_broadcast";
    let Some(()) = require_root(test) else { return };
    let mut ns = Netns::new("siopage");
    let _srv = ns.serve(&[]);
    let Some(mut browser) = common::chromium::Chromium::start(&ns, test) else { return };
    // `?sio=` makes the page's hand-written client emit `echo` with that text as soon as it
    // is connected and, on the ack, a chat message with it; the page is marked when the
    // broadcast comes back.
    browser.open("http://10.7.0.2/?sio=hello-over-socketio");
    let took = browser.wait_until(
        "the Socket.IO broadcast round trip",
        "document.body.dataset.sioRoundtrip === 'ok'",
        PAGE_LIMIT,
    );
    eprintln!("the page's Socket.IO ack and broadcast round trip done {took:.2?} after loading");
    let dom = browser.dom();
    assert!(dom.contains(r#"data-sio-ack="hello-over-socketio""#), "no echo ack in the page:\n{dom}");
    assert!(dom.contains(r#"<li class="msg mine">hello-over-socketio</li>"#), "no broadcast in the page:\n{dom}");
    assert!(dom.contains(r#"id="sio-status" class="status live">live: sid "#), "{dom}");
    let shown = browser.eval("document.getElementById('sio-ack').textContent");
    let shown = shown.as_ref().ok().and_then(|v| v.as_str()).unwrap_or_default();
    eprintln!("the page shows: {shown}");
    assert!(
        shown.starts_with("echo acknowledged in ") && shown.ends_with(" ms: hello-over-socketio"),
        "the ack's round trip is not shown: {shown:?}"
    );
}
