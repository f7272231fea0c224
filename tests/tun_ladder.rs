//! The live ladder in a real browser (headless Chromium over the DevTools protocol, waiting
//! in real time for what the page shows), against `synack serve` on a TUN in a namespace of
//! the test's own; and `synack ladder --html` files opened in the same browser. Screenshots
//! of each state go to target/tmp/ladder-*.png.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::chromium::Chromium;
use common::*;
use serde_json::Value;

/// How long the page may take to do its part in a real browser on a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

fn shot(browser: &mut Chromium, name: &str) -> PathBuf {
    browser.wait_until(
        "the ladder drawn up to its last event",
        r##"(typeof liveLadder === "object" ? liveLadder : offlineLadder).drawn()"##,
        LIMIT,
    );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ladder-{name}.png"));
    browser.screenshot(&path);
    eprintln!("screenshot: {}", path.display());
    path
}

fn eval(browser: &mut Chromium, expr: &str) -> Value {
    browser.eval(expr).unwrap_or_else(|e| panic!("{e}"))
}

/// The drawn segments of the watched connection as (flags, len, from the peer).
fn segments(browser: &mut Chromium) -> Vec<(String, u64, bool)> {
    let v =
        eval(browser, "JSON.stringify(liveLadder.segments().map(s => [s.flags, s.len, s.src === liveLadder.left()]))");
    let list: Vec<(String, u64, bool)> = serde_json::from_str(v.as_str().unwrap_or("[]")).expect("segments");
    list
}

fn position(segs: &[(String, u64, bool)], from: usize, what: &str, f: impl Fn(&(String, u64, bool)) -> bool) -> usize {
    match segs.iter().skip(from).position(f) {
        Some(i) => from + i,
        None => panic!("no {what} after segment {from}: {segs:?}"),
    }
}

/// What tshark reads in the capture for the SYN from `port`: MSS and window-scale shift.
fn tshark_syn_options(pcap: &Path, port: u16) -> (String, String) {
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(pcap)
        .args(["-Y", &format!("tcp.srcport == {port} && tcp.flags.syn == 1 && tcp.flags.ack == 0")])
        .args(["-T", "fields", "-e", "tcp.options.mss_val", "-e", "tcp.options.wscale.shift"])
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_else(|| panic!("tshark found no SYN from port {port}: {text}"));
    let mut f = line.split('\t');
    (f.next().unwrap_or_default().to_string(), f.next().unwrap_or_default().to_string())
}

#[test]
fn live_ladder_draws_fetches_loss_and_a_shell_connection() {
    let test = "live_ladder_draws_fetches_loss_and_a_shell_connection";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "tshark") else { return };
    let Some(()) = require_tool(test, "curl") else { return };
    let mut ns = Netns::new("ladder");
    let pcap = temp_path("ladder.pcap");
    let srv = ns.serve(&["--pcap", pcap.to_str().expect("utf-8 path")]);
    let Some(mut browser) = Chromium::start(&ns, test) else { return };
    browser.open("http://10.7.0.2/");

    // 1. The page loads and the ladder draws its own /ws connection from the SYN on.
    browser.wait_until(
        "the ladder's own WebSocket drawn from its handshake",
        r##"document.querySelector("#ladder-status.live") !== null && typeof liveLadder === "object"
           && liveLadder.segments().length >= 3 && liveLadder.segments()[0].flags === "[SYN]""##,
        LIMIT,
    );
    shot(&mut browser, "1-own-websocket");

    // 2. A /bytes/100000 fetch from the page: SYN, SYN-ACK, ACK, data, FIN in order.
    eval(
        &mut browser,
        r##"document.getElementById("lad-n").value = "100000"; document.getElementById("lad-fetch").click(); 0"##,
    );
    browser.wait_until(
        "the fetch done and its FIN drawn",
        r##"document.body.dataset.fetched === "100000" && liveLadder.left() === document.body.dataset.fetchPeer
           && liveLadder.segments().some(s => s.flags.includes("FIN") && s.src !== liveLadder.left())"##,
        LIMIT,
    );
    let peer = eval(&mut browser, "document.body.dataset.fetchPeer");
    let port: u16 = peer.as_str().and_then(|p| p.rsplit(':').next()).and_then(|p| p.parse().ok()).expect("peer port");
    let segs = segments(&mut browser);
    let syn = position(&segs, 0, "SYN from the browser", |s| s.0 == "[SYN]" && s.2);
    let synack = position(&segs, syn, "SYN-ACK", |s| s.0 == "[SYN, ACK]" && !s.2);
    let ack = position(&segs, synack, "ACK", |s| s.0 == "[ACK]" && s.2);
    let data = position(&segs, ack, "data from synack", |s| s.1 > 0 && !s.2);
    position(&segs, data, "FIN from synack", |s| s.0.contains("FIN") && !s.2);
    let data_bytes: u64 = segs.iter().filter(|s| !s.2).map(|s| s.1).sum();
    assert!(data_bytes >= 100_000, "synack's data segments carry {data_bytes} bytes: {segs:?}");
    // A bulk transfer folds.
    browser.wait_until("the data folded", r##"document.querySelector("#ladder .lad-fold") !== null"##, LIMIT);
    shot(&mut browser, "2-fetch");

    // 3. Clicking the SYN shows it layer by layer; its options as tshark reads them.
    eval(&mut browser, r##"document.querySelector('#ladder .lad-seg[data-flags="[SYN]"]').click(); 0"##);
    browser.wait_until(
        "the SYN decoded",
        r##"document.querySelector(".lad-pkt").textContent.includes("Maximum segment size")"##,
        LIMIT,
    );
    let pane = eval(&mut browser, r##"document.querySelector(".lad-pkt").textContent"##);
    let pane = pane.as_str().unwrap_or_default().to_string();
    for layer in ["Internet Protocol Version 4 (IPv4)", "Transmission Control Protocol (TCP)"] {
        assert!(pane.contains(layer), "no {layer} in the layer view:\n{pane}");
    }
    // A click on the MSS option lights its four bytes.
    let lit = eval(
        &mut browser,
        r##"(() => { const f = [...document.querySelectorAll(".lad-pkt .lad-f")].find(f => f.textContent.startsWith("  Maximum segment size") || f.textContent.includes("Maximum segment size:"));
             f.click(); return [...document.querySelectorAll(".lad-hex span.hl")].map(s => s.textContent).join(" "); })()"##,
    );
    shot(&mut browser, "3-syn-layers");

    // 4. Fetch with loss: retransmissions, each explained.
    eval(
        &mut browser,
        r##"document.getElementById("lad-n").value = "200000"; document.getElementById("lad-drop").value = "0.05";
           document.getElementById("lad-loss").click(); 0"##,
    );
    browser.wait_until(
        "the lossy fetch done with a retransmission explained",
        r##"document.body.dataset.fetched === "200000" && liveLadder.left() === document.body.dataset.fetchPeer
           && document.querySelector("#ladder .lad-seg.lost") !== null
           && document.querySelector("#ladder .lad-seg.retrans") !== null
           && [...document.querySelectorAll("#ladder .lad-ev")].some(e => /fast retransmit|retransmission timer|tail loss probe/.test(e.textContent))"##,
        LIMIT,
    );
    eval(&mut browser, r##"document.querySelector("#ladder .lad-seg.retrans").scrollIntoView({block: "center"}); 0"##);
    shot(&mut browser, "4-loss");

    // 5. A curl from the shell shows in the table, and its ladder opens with a click.
    let mut curl = ns
        .cmd("curl")
        .args(["-s", "-o", "/dev/null", "--limit-rate", "40k", "--local-port", "40555"])
        .arg("http://10.7.0.2/bytes/300000")
        .spawn()
        .expect("start curl");
    browser.wait_until(
        "curl's connection in the table",
        r##"[...document.querySelectorAll("#conns tr.conn")].some(tr => tr.cells[1].textContent === "10.7.0.1:40555")"##,
        LIMIT,
    );
    eval(
        &mut browser,
        r##"[...document.querySelectorAll("#conns tr.conn")].find(tr => tr.cells[1].textContent === "10.7.0.1:40555").click(); 0"##,
    );
    browser.wait_until(
        "curl's ladder from its SYN",
        r##"liveLadder.left() === "10.7.0.1:40555" && liveLadder.segments().length > 5
           && liveLadder.segments()[0].flags === "[SYN]""##,
        LIMIT,
    );
    shot(&mut browser, "5-curl");
    let _ = curl.kill();
    let _ = curl.wait();
    let console = browser.console();
    assert!(!console.iter().any(|l| l.starts_with("exception")), "the page threw: {console:?}");
    drop(browser);

    // The capture, flushed at exit, has the same SYN options the page showed.
    srv.interrupt(&mut ns);
    let (mss, shift) = tshark_syn_options(&pcap, port);
    assert!(pane.contains(&format!("Maximum segment size: {mss} bytes")), "tshark says MSS {mss}:\n{pane}");
    assert!(pane.contains(&format!("Window scale: {shift} (multiply by")), "tshark says shift {shift}:\n{pane}");
    let mss_hex =
        format!("{:02x} {:02x}", mss.parse::<u16>().expect("mss") >> 8, mss.parse::<u16>().expect("mss") & 0xff);
    assert!(lit.as_str().unwrap_or_default().ends_with(&mss_hex), "the MSS field lit {lit} (want … {mss_hex})");
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn ladder_html_of_each_capture_opens_and_lists_every_segment() {
    let test = "ladder_html_of_each_capture_opens_and_lists_every_segment";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "tshark") else { return };
    let ns = Netns::new("ladhtml");
    let Some(mut browser) = Chromium::start(&ns, test) else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("captures"))
        .expect("captures/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures");
    for file in files {
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("capture").to_string();
        let html = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ladder-{name}.html"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_synack"))
            .arg("ladder")
            .arg(&file)
            .arg("--html")
            .arg(&html)
            .output()
            .expect("run synack ladder");
        assert!(out.status.success(), "synack ladder failed: {}", String::from_utf8_lossy(&out.stderr));
        let tshark = std::process::Command::new("tshark").arg("-r").arg(&file).args(["-Y", "tcp"]).output();
        let count = String::from_utf8_lossy(&tshark.expect("tshark").stdout).lines().count();
        browser.open(&format!("file://{}", html.display()));
        browser.wait_until(
            "the offline ladder drawn",
            &format!(r##"document.body.dataset.segmentsTotal === "{count}" && document.getElementById("ladder").dataset.segments !== undefined"##),
            LIMIT,
        );
        // The layer view works offline too.
        eval(&mut browser, r##"document.querySelector("#ladder .lad-seg").click(); 0"##);
        browser.wait_until(
            "a frame decoded offline",
            r##"document.querySelector(".lad-pkt").textContent.includes("Transmission Control Protocol")"##,
            LIMIT,
        );
        shot(&mut browser, &format!("offline-{name}"));
        let console = browser.console();
        assert!(!console.iter().any(|l| l.starts_with("exception")), "{}: the page threw: {console:?}", html.display());
        eprintln!("{}: {count} segments, as tshark counts", file.display());
    }
}

#[test]
fn bytes_with_drop_loses_only_that_connections_segments_and_still_delivers() {
    let test = "bytes_with_drop_loses_only_that_connections_segments_and_still_delivers";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "curl") else { return };
    let mut ns = Netns::new("ladloss");
    let srv = ns.serve(&["--trace"]);
    let out = ns
        .cmd("curl")
        .args(["-s", "-D", "/dev/stderr", "--max-time", "30", "http://10.7.0.2/bytes/200000?drop=0.05&seed=3&close=1"])
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256(&out.stdout), sha256(&pattern(200_000)), "the body survives the loss");
    let head = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(head.contains("x-synack-peer: 10.7.0.1:"), "no peer header: {head}");
    assert!(head.contains("connection: close"), "close=1 closes: {head}");
    // A plain fetch after it is not disturbed.
    let plain = ns.cmd("curl").args(["-s", "http://10.7.0.2/bytes/100000"]).output().expect("curl");
    assert_eq!(plain.stdout.len(), 100_000);
    let (_, _, lines) = srv.interrupt(&mut ns);
    let lines = lines.join("\n");
    let dropped = lines.matches("dropped on purpose").count();
    assert!(dropped > 0, "no deliberate drops traced");
    assert!(lines.contains("retransmission") || lines.contains("fast retransmit"), "no recovery traced");
    eprintln!("{dropped} segments dropped on purpose, all recovered");
}
