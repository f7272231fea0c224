//! What a newcomer meets at the command line: errors that say how to fix them, output that
//! stops quietly when its reader does, and log lines fit for a file. The tests that run
//! `synack serve` do so in a network namespace of their own.

mod common;

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn synack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_synack"))
}

/// `synack ladder x.pcap | head`: the reader goes away before synack writes; synack ends
/// quietly with success, as Unix filters do (it said "Broken pipe" and exited 1).
#[test]
fn ladder_and_explain_into_a_closed_pipe_end_quietly() {
    let capture = repo().join("captures/websocket.pcap");
    for cmd in ["ladder", "explain"] {
        let mut child = synack()
            .arg(cmd)
            .arg(&capture)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start synack");
        drop(child.stdout.take()); // the reader is gone before the first line
        let out = child.wait_with_output().expect("wait for synack");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "synack {cmd} into a closed pipe: {} {stderr}", out.status);
        assert_eq!(stderr, "", "synack {cmd} into a closed pipe said something");
    }
}

#[test]
fn serve_help_names_the_protocols_and_the_create_flag() {
    let out = synack().args(["serve", "--help"]).output().expect("synack serve --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let summary = help.lines().next().unwrap_or_default();
    assert!(summary.contains("WebSocket") && summary.contains("Socket.IO"), "{summary}");
    assert!(help.contains("--create"), "{help}");
    // 4 MiB buffers are the default, not something --offload brings.
    assert!(!help.contains("256 KiB"), "{help}");
}

/// `synack serve --tun nosuch0` made a bare device nothing could reach; now it refuses and
/// says how to make one. As root it runs in a namespace, so a regression would make its
/// device there; without root it cannot make one anywhere.
#[test]
fn serve_on_a_missing_device_says_how_to_make_it() {
    let ns = nix::unistd::geteuid().is_root().then(|| Netns::new("nodev"));
    let mut cmd = match &ns {
        Some(ns) => ns.cmd(env!("CARGO_BIN_EXE_synack")),
        None => synack(),
    };
    let out = cmd.args(["serve", "--tun", "nosuch0"]).output().expect("run synack serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no TUN device \"nosuch0\""), "{stderr}");
    assert!(stderr.contains("sudo scripts/setup.sh --name nosuch0"), "{stderr}");
    assert!(stderr.contains("--create"), "{stderr}");
    assert!(!stderr.contains("serving as"), "{stderr}");
    if let Some(ns) = &ns {
        let link = ns.sh("ip link show nosuch0");
        assert!(!link.status.success(), "a device was made: {}", String::from_utf8_lossy(&link.stdout));
    }
}

#[test]
fn serve_create_makes_the_missing_device() {
    let Some(()) = require_root("serve_create_makes_the_missing_device") else { return };
    let mut ns = Netns::new("create");
    let srv = ns.serve(&["--tun", "made0", "--create"]);
    let link = ns.sh("ip link show made0");
    assert!(link.status.success(), "no device made0: {}", String::from_utf8_lossy(&link.stderr));
    let (_, status, lines) = srv.interrupt(&mut ns);
    assert!(status.success(), "{lines:?}");
}

/// Log lines (here `synack::ws`'s) written to a file carry no colour codes, and count
/// seconds since the start as the trace does, instead of wall-clock timestamps.
#[test]
fn log_lines_in_a_file_have_no_colour_and_the_trace_clock() {
    let test = "log_lines_in_a_file_have_no_colour_and_the_trace_clock";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "curl") else { return };
    let ns = Netns::new("logfile");
    let log = temp_path("serve-stderr.log");
    let mut child = ns
        .cmd(env!("CARGO_BIN_EXE_synack"))
        .args(["serve", "--trace"])
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("create the log file"))
        .spawn()
        .expect("start synack serve");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read().contains("serving as") {
        assert!(Instant::now() < deadline, "synack serve did not start: {}", read());
        std::thread::sleep(Duration::from_millis(20));
    }
    // A WebSocket handshake without its key: refused, and logged by synack::ws.
    let out = ns
        .cmd("curl")
        .args(["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13"])
        .arg("http://10.7.0.2/ws")
        .output()
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "400");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .expect("signal synack");
    let status = child.wait().expect("wait for synack");
    let text = read();
    let _ = std::fs::remove_file(&log);
    assert!(status.success(), "{text}");
    assert!(!text.contains('\x1b'), "escape codes in a file:\n{text:?}");
    let ws = text.lines().find(|l| l.contains("synack::ws")).unwrap_or_else(|| panic!("no synack::ws line:\n{text}"));
    let secs = |l: &str| l.split_whitespace().next().and_then(|t| t.parse::<f64>().ok());
    let syn = text.lines().find(|l| l.contains("[SYN]")).unwrap_or_else(|| panic!("no trace line:\n{text}"));
    let (t_trace, t_log) = (secs(syn), secs(ws));
    assert!(t_log.is_some(), "the log line does not start with seconds: {ws}");
    assert!(t_trace <= t_log, "the SYN at {t_trace:?} is traced after its log line at {t_log:?}:\n{text}");
}
