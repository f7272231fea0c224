//! The committed sample captures (captures/handshake.pcap, retransmission.pcap,
//! websocket.pcap, made by scripts/captures.sh) through `synack ladder` and `synack explain`:
//!
//! - the text equals the committed expected output in tests/golden/captures/ (after
//!   regenerating the captures or an intended change of output:
//!   `SYNACK_BLESS=1 cargo test --test captures_golden`, then review the diff);
//! - the `--svg` and `--html` outputs are well-formed;
//! - every TCP packet's relative seq/ack/len (and stream, window, retransmission and dup-ACK
//!   marks) equal what tshark prints, and tshark finds no error-level expert entry with
//!   checksum validation on.
//!
//! The tshark checks need tshark: without it they say SKIPPED, and fail under `CI=true`.

mod analyze_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use synack::analyze::capture::read_capture;
use synack::analyze::conversation::{analyze, Finding};

const CAPTURES: [&str; 3] = ["handshake.pcap", "retransmission.pcap", "websocket.pcap"];

fn capture(name: &str) -> PathBuf {
    common::repo().join("captures").join(name)
}

fn golden_dir() -> PathBuf {
    common::repo().join("tests/golden/captures")
}

/// Runs the built `synack` binary and returns its stdout; any failure panics with stderr.
fn synack(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_synack")).args(args).output().expect("run synack");
    assert!(out.status.success(), "synack {args:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Frames the TCP analysis marks (retransmissions, dup ACKs, gaps, window updates…).
fn frames_with_findings(file: &Path) -> Vec<usize> {
    let cap = read_capture(file).expect("read capture");
    let analysis = analyze(&cap);
    let mut frames: Vec<usize> = analysis
        .conversations
        .iter()
        .flat_map(|c| c.segments.iter())
        .filter(|s| !s.findings.is_empty())
        .map(|s| s.frame)
        .collect();
    frames.sort_unstable();
    frames
}

#[test]
fn committed_captures_are_small_and_present() {
    for name in CAPTURES {
        let len = std::fs::metadata(capture(name)).unwrap_or_else(|e| panic!("captures/{name}: {e}")).len();
        assert!(len > 24 && len < 200 * 1024, "captures/{name} is {len} bytes (want a small, non-empty capture)");
    }
}

#[test]
fn ladder_and_explain_match_the_golden_text() {
    let mut failures = Vec::new();
    let mut check = |name: String, text: String| {
        if let Err(e) = analyze_support::check_golden(&golden_dir(), &name, &text) {
            failures.push(e);
        }
    };
    for name in CAPTURES {
        let file = capture(name);
        let file = path_str(&file);
        check(format!("{name}.ladder.txt"), synack(&["ladder", file]));
        if name == "retransmission.pcap" {
            // Every frame in full would be mostly hex dumps of /bytes/N; the frames with an
            // analysis note tell the story (the gap, the duplicate ACKs, the retransmission).
            let frames = frames_with_findings(Path::new(file));
            assert!(frames.len() >= 3, "{name}: expected a gap, dup ACKs and a retransmission, got frames {frames:?}");
            let mut text = String::new();
            for n in frames {
                text += &synack(&["explain", file, "--packet", &n.to_string()]);
            }
            check(format!("{name}.explain-findings.txt"), text);
        } else {
            check(format!("{name}.explain.txt"), synack(&["explain", file]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What a newcomer should see in each capture, stated independently of the golden files, so
/// a bad bless cannot quietly turn the story into something else.
#[test]
fn ladders_tell_the_story() {
    let handshake = synack(&["ladder", path_str(&capture("handshake.pcap"))]);
    let arrows: Vec<&str> = handshake.lines().filter(|l| l.contains("|--") || l.contains("<--")).collect();
    assert!(arrows.len() >= 8, "{handshake}");
    assert!(arrows[0].contains("[SYN] seq=0 "), "{}", arrows[0]);
    assert!(arrows[1].contains("[SYN, ACK] seq=0 ack=1 "), "{}", arrows[1]);
    assert!(arrows[2].contains("[ACK] seq=1 ack=1 "), "{}", arrows[2]);
    assert!(arrows[3].contains("GET / HTTP/1.1"), "{}", arrows[3]);
    assert!(handshake.contains("HTTP/1.1 200 OK"), "{handshake}");
    assert_eq!(arrows.iter().filter(|l| l.contains("[FIN, ACK]")).count(), 2, "{handshake}");
    assert!(!handshake.contains("Retransmission"), "{handshake}");

    let rtx = synack(&["ladder", path_str(&capture("retransmission.pcap"))]);
    assert!(rtx.contains("[TCP Previous segment not captured]"), "{rtx}");
    assert!(rtx.contains("[TCP Dup ACK"), "{rtx}");
    assert!(rtx.contains("Retransmission]"), "{rtx}");
    assert_eq!(rtx.lines().filter(|l| l.contains("[FIN, ACK]")).count(), 2, "{rtx}");

    let ws = synack(&["ladder", path_str(&capture("websocket.pcap"))]);
    assert!(ws.contains("GET /ws HTTP/1.1") && ws.contains("101 Switching Protocols"), "{ws}");
    let explained = synack(&["explain", path_str(&capture("websocket.pcap"))]);
    for text in ["hello, synack", "a second message", "bye"] {
        assert_eq!(explained.matches(&format!("\"{text}\"")).count(), 2, "{text:?} both ways in\n{explained}");
    }
}

#[test]
fn svg_and_html_are_well_formed() {
    let dir = analyze_support::out_dir("captures-svg");
    for name in CAPTURES {
        let svg = dir.join(format!("{name}.svg"));
        let html = dir.join(format!("{name}.html"));
        synack(&["ladder", path_str(&capture(name)), "--svg", path_str(&svg), "--html", path_str(&html)]);
        let svg_text = std::fs::read_to_string(&svg).expect("svg written");
        if let Err(e) = analyze_support::check_xml(&svg_text) {
            panic!("{name}: SVG is not well-formed: {e}");
        }
        assert!(svg_text.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{name}");
        assert!(svg_text.contains("[SYN, ACK]"), "{name}: the SVG should draw the handshake");
        let html_text = std::fs::read_to_string(&html).expect("html written");
        assert!(html_text.starts_with("<!DOCTYPE html>"), "{name}");
        let start = html_text.find("<svg").expect("html embeds the svg");
        let end = html_text.find("</svg>").expect("svg closed") + "</svg>".len();
        analyze_support::check_xml(&html_text[start..end]).expect("embedded svg well-formed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn relative_numbers_match_tshark() {
    if common::require_tool("relative_numbers_match_tshark", "tshark").is_none() {
        return;
    }
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for name in CAPTURES {
        let file = capture(name);
        let cap = read_capture(&file).expect("read capture");
        let analysis = analyze(&cap);
        let rows = analyze_support::tshark_fields(
            &file,
            &[
                "frame.number",
                "tcp.seq",
                "tcp.ack",
                "tcp.len",
                "tcp.stream",
                "tcp.window_size",
                "tcp.analysis.retransmission",
                "tcp.analysis.fast_retransmission",
                "tcp.analysis.duplicate_ack_num",
            ],
        );
        assert!(!rows.is_empty(), "tshark saw no TCP in {name}");
        assert_eq!(analysis.by_frame.len(), rows.len(), "{name}: number of TCP frames differs");
        for row in &rows {
            let n: usize = row[0].parse().expect("frame number");
            let Some((conv, seg)) = analysis.segment(n) else {
                mismatches.push(format!("{name} frame {n}: TCP for tshark but not for synack"));
                continue;
            };
            let retransmitted = seg.findings.iter().any(|f| {
                matches!(f, Finding::Retransmission | Finding::FastRetransmission | Finding::SpuriousRetransmission)
            });
            let ours = [
                seg.rel_seq.to_string(),
                seg.rel_ack.to_string(),
                seg.tcp.len.to_string(),
                (conv.number - 1).to_string(),
                seg.window.to_string(),
                if retransmitted { "1".into() } else { String::new() },
                if seg.findings.contains(&Finding::FastRetransmission) { "1".into() } else { String::new() },
                seg.findings
                    .iter()
                    .find_map(|f| if let Finding::DupAck { n, .. } = f { Some(n.to_string()) } else { None })
                    .unwrap_or_default(),
            ];
            let theirs: Vec<String> = (1..=ours.len()).map(|i| row.get(i).cloned().unwrap_or_default()).collect();
            if ours[..] != theirs[..] {
                mismatches.push(format!("{name} frame {n}: synack {ours:?} tshark {theirs:?}"));
            }
            checked += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "[seq, ack, len, stream, win, retrans, fast-retrans, dupack#] differ:\n{}",
        mismatches.join("\n")
    );
    assert!(checked >= 50, "only {checked} packets checked");
}

#[test]
fn tshark_finds_no_errors() {
    if common::require_tool("tshark_finds_no_errors", "tshark").is_none() {
        return;
    }
    for name in CAPTURES {
        let out = Command::new("tshark")
            .args(["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-r"])
            .arg(capture(name))
            .args(["-q", "-z", "expert"])
            .output()
            .expect("run tshark");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "tshark failed on {name}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("Chats ("), "{name}: no expert summary from tshark:\n{text}");
        assert!(!text.lines().any(|l| l.starts_with("Errors")), "{name}: tshark reports errors:\n{text}");
        if name != "retransmission.pcap" {
            assert!(!text.lines().any(|l| l.starts_with("Warns")), "{name}: tshark warns:\n{text}");
        }
        // And checksums, verified frame by frame: none bad.
        let bad = Command::new("tshark")
            .args(["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-r"])
            .arg(capture(name))
            .args(["-Y", "ip.checksum.status != 1 || tcp.checksum.status != 1"])
            .output()
            .expect("run tshark");
        let bad = String::from_utf8_lossy(&bad.stdout);
        assert!(bad.trim().is_empty(), "{name}: frames without a good checksum:\n{bad}");
    }
}
