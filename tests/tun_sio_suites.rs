//! The official protocol test suites of Engine.IO and Socket.IO (`../shared/sio-suites`,
//! unmodified upstream; see its `SOURCE`) against synack, on a real TUN: each suite is
//! copied to a temp dir, its pinned packages installed there with `npm ci`, its URL
//! constant pointed at the stack (the only change), and run with mocha inside a fresh
//! network namespace, the server being `examples/sio_reference_server.rs` (what the
//! reference test servers serve, on a synack stack). Also binary round trips with the
//! official clients: socket.io-client (Node) and python-socketio against `synack serve`.
//!
//! `SYNACK_SUITE_RUNS=N` runs each suite N times in a row (a stability check).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use common::*;

/// Each client or suite run is bounded by this (the `timeout` command).
const RUN_LIMIT_S: u32 = 300;

/// cargo runs a binary's tests in parallel; on a 2-core machine a suite would then share
/// the cores with another suite or client run, load of the test's own making. Each test
/// holds this throughout.
static ONE_TEST_AT_A_TIME: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_TEST_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the suites are, relative to the repository: the workspace's shared reference
/// material, or `SYNACK_SIO_SUITES` if set.
fn suites_dir() -> PathBuf {
    std::env::var_os("SYNACK_SIO_SUITES").map_or_else(|| repo().join("../shared/sio-suites"), PathBuf::from)
}

/// What the reference Socket.IO server fails too: the test waits for a ping and does not
/// answer it, so the server's pingTimeout (200 ms) may close the connection before the
/// final message arrives; mocha's 2 s timeout then fails it. Allowed to fail here only
/// that way (a timeout), never with a wrong answer.
const REFERENCE_FAILS_TOO: &str =
    "Socket.IO protocol disconnect should connect then disconnect from a custom namespace";

/// A missing prerequisite: a failure under CI, a skip elsewhere.
fn missing(test: &str, why: &str) -> Option<PathBuf> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// A copy of suite `name` with its pinned packages installed and its URL pointed at the
/// stack; made once per test process.
fn prepared_suite(test: &str, name: &str) -> Option<PathBuf> {
    require_tool(test, "node")?;
    require_tool(test, "npm")?;
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let src = suites_dir().join(name);
    if !src.join("test-suite.js").exists() {
        return missing(test, &format!("no suite at {} (set SYNACK_SIO_SUITES)", src.display()));
    }
    let dir = temp_path(&format!("suite-{name}"));
    if !dir.join("node_modules/mocha/bin/mocha").exists() {
        std::fs::create_dir_all(&dir).expect("suite dir");
        for f in ["package.json", "package-lock.json", "node-imports.js", "test-suite.js"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap_or_else(|e| panic!("copy {f}: {e}"));
        }
        eprintln!("{test}: npm ci in {}", dir.display());
        let status = Command::new("timeout")
            .args([&RUN_LIMIT_S.to_string(), "npm", "ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status();
        if !status.is_ok_and(|s| s.success()) || !dir.join("node_modules/mocha/bin/mocha").exists() {
            return missing(test, "`npm ci` could not install the suite's packages");
        }
        // The one change: the URL, from the reference server's to the stack's.
        let js = std::fs::read_to_string(dir.join("test-suite.js")).expect("read the suite");
        let from = r#"const URL = "http://localhost:3000";"#;
        assert_eq!(js.matches(from).count(), 1, "the suite's URL line changed upstream");
        let to = format!(r#"const URL = "http://{STACK_IP}";"#);
        std::fs::write(dir.join("test-suite.js"), js.replace(from, &to)).expect("write the suite");
    }
    Some(dir)
}

/// What one mocha run said.
struct SuiteRun {
    passes: u64,
    failures: Vec<(String, String)>,
    took_s: f64,
}

fn run_suite(ns: &Netns, dir: &Path) -> SuiteRun {
    let start = Instant::now();
    let out = ns
        .cmd("timeout")
        .args([&RUN_LIMIT_S.to_string(), "node", "node_modules/mocha/bin/mocha", "--reporter", "json", "test-suite.js"])
        .current_dir(dir)
        .output()
        .expect("run mocha");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout.find('{').map_or("", |i| &stdout[i..]);
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| {
        panic!(
            "mocha's report is not JSON ({e}); exit {}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let failures = v["failures"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|t| {
                    let title = t["fullTitle"].as_str().unwrap_or("?").to_owned();
                    (title, t["err"]["message"].as_str().unwrap_or("").to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    SuiteRun { passes: v["stats"]["passes"].as_u64().unwrap_or(0), failures, took_s: start.elapsed().as_secs_f64() }
}

fn runs() -> usize {
    std::env::var("SYNACK_SUITE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

/// Runs suite `name` against the reference server `runs()` times; checks each run with
/// `check(run_number, passes, failures)`.
fn suite_test(test: &str, name: &str, check: impl Fn(usize, &SuiteRun)) {
    let _alone = alone();
    let Some(()) = require_root(test) else { return };
    let Some(dir) = prepared_suite(test, name) else { return };
    let mut ns = Netns::new("suite");
    let server = Path::new(env!("CARGO_BIN_EXE_synack"))
        .parent()
        .map(|d| d.join("examples/sio_reference_server"))
        .expect("target dir");
    assert!(server.exists(), "{} is missing (scripts/test.sh builds it: cargo build --examples)", server.display());
    // `cargo test --test tun_sio_suites` does not build the examples: a server older than
    // the sources would be a stale one, its verdict about other code.
    let newest = newest_source(&repo().join("src")).max(newest_source(&repo().join("examples")));
    let built = std::fs::metadata(&server).and_then(|m| m.modified()).ok();
    assert!(
        built.is_some_and(|b| Some(b) >= newest),
        "{} is older than the sources: run `cargo build --examples` first",
        server.display()
    );
    let _srv = ns.spawn_server(&server, &[], &[], "serving as");
    for n in 1..=runs() {
        let run = run_suite(&ns, &dir);
        eprintln!(
            "{name} run {n}: {} passed, {} failed in {:.1} s{}",
            run.passes,
            run.failures.len(),
            run.took_s,
            run.failures.iter().map(|(t, e)| format!("\n  FAILED {t}: {e}")).collect::<String>()
        );
        check(n, &run);
    }
}

/// The latest modification time of any file under `dir`.
fn newest_source(dir: &Path) -> Option<std::time::SystemTime> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            if meta.is_dir() {
                newest_source(&e.path())
            } else {
                meta.modified().ok()
            }
        })
        .max()
}

#[test]
fn sio_engine_io_protocol_suite_passes() {
    suite_test("sio_engine_io_protocol_suite_passes", "engine.io-protocol", |n, run| {
        assert!(run.failures.is_empty(), "run {n}: {:?}", run.failures);
        assert_eq!(run.passes, 24, "run {n}");
    });
}

#[test]
fn sio_socket_io_protocol_suite_passes_all_but_the_one_the_reference_fails() {
    let test = "sio_socket_io_protocol_suite_passes_all_but_the_one_the_reference_fails";
    suite_test(test, "socket.io-protocol", |n, run| {
        for (title, err) in &run.failures {
            assert_eq!(title, REFERENCE_FAILS_TOO, "run {n}: {title} failed: {err}");
            assert!(err.starts_with("Timeout of"), "run {n}: {title} failed otherwise than by a timeout: {err}");
        }
        assert_eq!(run.passes + run.failures.len() as u64, 32, "run {n}: not every test ran");
    });
}

/// `socket.io-client` at the version the other Node test uses, installed into a temp dir.
fn node_client(test: &str) -> Option<PathBuf> {
    require_tool(test, "node")?;
    require_tool(test, "npm")?;
    let dir = temp_path("sio-binary-node-client");
    let modules = dir.join("node_modules");
    if !modules.join("socket.io-client/package.json").exists() {
        std::fs::create_dir_all(&dir).expect("dir");
        let _ = Command::new("timeout")
            .args([&RUN_LIMIT_S.to_string(), "npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("socket.io-client@4.8.1")
            .status();
    }
    if modules.join("socket.io-client/package.json").exists() {
        Some(modules)
    } else {
        missing(test, "npm could not install socket.io-client")
    }
}

fn last_json_line(what: &str, out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed ({}):\n{stdout}\n{stderr}", out.status);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: bad result line {line:?}: {e}"))
}

#[test]
fn sio_node_client_buffers_come_back_byte_exact() {
    let test = "sio_node_client_buffers_come_back_byte_exact";
    let _alone = alone();
    let Some(()) = require_root(test) else { return };
    let Some(modules) = node_client(test) else { return };
    let mut ns = Netns::new("siobin");
    let _srv = ns.serve(&[]);
    let out = ns
        .cmd("timeout")
        .arg(RUN_LIMIT_S.to_string())
        .arg("node")
        .arg(repo().join("tests/clients/sio_binary.js"))
        .env("NODE_PATH", &modules)
        .output()
        .expect("run sio_binary.js");
    let r = last_json_line("sio_binary.js", &out);
    eprintln!("sio_binary.js → {r}");
    assert_eq!(r["default_options"]["transport"], "websocket", "{r}");
    assert_eq!(r["polling_only"]["transport"], "polling", "{r}");
    assert_eq!(r["default_options"]["bytes"], 200 * 1024 + 6, "{r}");
}

#[test]
fn sio_python_client_bytes_come_back_byte_exact() {
    let test = "sio_python_client_bytes_come_back_byte_exact";
    let _alone = alone();
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_python_clients(test) else { return };
    let py = python();
    let mut ns = Netns::new("siopybin");
    let _srv = ns.serve(&[]);
    for transport in ["websocket", "polling"] {
        let out = ns
            .cmd("timeout")
            .arg(RUN_LIMIT_S.to_string())
            .arg(&py)
            .arg(repo().join("tests/clients/sio_client.py"))
            .args(["binary", "--transport", transport])
            .output()
            .expect("run sio_client.py");
        let r = last_json_line("sio_client.py binary", &out);
        eprintln!("sio_client.py binary --transport {transport} → {r}");
        assert_eq!(r["transport"], transport, "{r}");
        assert_eq!(r["bytes"], 150 * 1024 + 6, "{r}");
    }
}
