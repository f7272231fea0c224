//! Golden tests for `synack ladder` and `synack explain` on captures built in the test.
//!
//! The expected text lives in tests/golden/analyze/. After an intended change of output,
//! regenerate it with `SYNACK_BLESS=1 cargo test --test analyze_golden` and review the diff.

mod analyze_support;

use std::path::{Path, PathBuf};

use synack::analyze::{explain, ladder, ExplainArgs, LadderArgs};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/analyze")
}

fn run_ladder(file: &Path) -> String {
    let args = LadderArgs { file: file.to_path_buf(), svg: None, html: None, conn: None };
    let mut out = Vec::new();
    ladder(&args, &mut out).expect("ladder");
    String::from_utf8(out).expect("utf-8")
}

fn run_explain(file: &Path, packet: Option<usize>) -> String {
    let args = ExplainArgs { file: file.to_path_buf(), packet };
    let mut out = Vec::new();
    explain(&args, &mut out).expect("explain");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn golden_outputs() {
    let dir = analyze_support::out_dir("golden");
    let files = analyze_support::write_all(&dir);
    let mut failures = Vec::new();
    let full_explain = [
        "http_raw.pcap",
        "http_ethernet.pcap",
        "retransmission.pcap",
        "midstream.pcap",
        "websocket.pcap",
        "malformed.pcap",
    ];
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).expect("name").to_string();
        if let Err(e) = analyze_support::check_golden(&golden_dir(), &format!("{name}.ladder.txt"), &run_ladder(file)) {
            failures.push(e);
        }
        if full_explain.contains(&name.as_str()) {
            if let Err(e) =
                analyze_support::check_golden(&golden_dir(), &format!("{name}.explain.txt"), &run_explain(file, None))
            {
                failures.push(e);
            }
        } else if name.starts_with("http_") {
            if let Err(e) = analyze_support::check_golden(
                &golden_dir(),
                &format!("{name}.explain-3.txt"),
                &run_explain(file, Some(3)),
            ) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn link_layer_does_not_change_the_diagram() {
    let dir = analyze_support::out_dir("links");
    let files = analyze_support::write_all(&dir);
    let body = |f: &PathBuf| run_ladder(f).lines().skip(1).collect::<Vec<_>>().join("\n");
    let reference = body(&dir.join("http_raw.pcap"));
    for f in files.iter().filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("http_"))) {
        assert_eq!(body(f), reference, "{} draws a different ladder", f.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn svg_and_html_are_well_formed() {
    let dir = analyze_support::out_dir("svg");
    for file in analyze_support::write_all(&dir) {
        let svg = file.with_extension("svg");
        let html = file.with_extension("html");
        let args = LadderArgs { file: file.clone(), svg: Some(svg.clone()), html: Some(html.clone()), conn: None };
        let mut text = Vec::new();
        ladder(&args, &mut text).expect("ladder");
        let svg_text = std::fs::read_to_string(&svg).expect("svg written");
        if let Err(e) = analyze_support::check_xml(&svg_text) {
            panic!("{}: SVG is not well-formed: {e}", svg.display());
        }
        assert!(svg_text.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        let html_text = std::fs::read_to_string(&html).expect("html written");
        assert!(html_text.starts_with("<!DOCTYPE html>"));
        let svg_start = html_text.find("<svg").expect("html embeds the svg");
        let svg_end = html_text.find("</svg>").expect("svg closed") + "</svg>".len();
        analyze_support::check_xml(&html_text[svg_start..svg_end]).expect("embedded svg well-formed");
    }
    // Text from the wire must be escaped: `<None>` flags and markup in payloads.
    let nasty = dir.join("nasty.pcap");
    let mut pkts = analyze_support::http_session();
    pkts.truncate(3);
    // No flags at all (Wireshark writes `[<None>]`) and markup in the payload.
    let mut odd = analyze_support::seg(true, analyze_support::C_ISN + 1);
    odd.data = b"GET /<script>&x=\"'\x01 HTTP/1.1\r\n\r\n".to_vec();
    let odd = odd.build(77);
    pkts.push(analyze_support::Pkt { at: std::time::Duration::from_millis(5), ip: odd, orig_len: None });
    analyze_support::write_pcap(&nasty, analyze_support::Link::Raw, &pkts, false);
    let svg = dir.join("nasty.svg");
    let args = LadderArgs { file: nasty, svg: Some(svg.clone()), html: None, conn: None };
    ladder(&args, &mut Vec::new()).expect("ladder");
    let svg_text = std::fs::read_to_string(&svg).expect("svg");
    analyze_support::check_xml(&svg_text).expect("escaped svg is well-formed");
    assert!(svg_text.contains("[&lt;None&gt;]") && svg_text.contains("&lt;script&gt;&amp;x=&quot;&apos;"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn xml_checker_rejects_broken_documents() {
    for bad in ["<a>", "<a></b>", "<a x=1/>", "<a>&nope;</a>", "<a>1 < 2</a>", "<a/><b/>", "<a x=\"1\" x=\"2\"/>"] {
        assert!(analyze_support::check_xml(bad).is_err(), "accepted {bad}");
    }
    analyze_support::check_xml("<?xml version=\"1.0\"?>\n<a b='c'><d/>&amp;&#x41;</a>\n").expect("valid");
}

#[test]
fn filters_and_errors_name_the_problem() {
    let dir = analyze_support::out_dir("errors");
    let files = analyze_support::write_all(&dir);
    let port_reuse = dir.join("port_reuse.pcap");
    let args = LadderArgs { file: port_reuse.clone(), svg: None, html: None, conn: Some(3) };
    let mut out = Vec::new();
    ladder(&args, &mut out).expect("ladder --conn 3");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("Connection 3:") && !text.contains("Connection 1:"));

    let err = ladder(&LadderArgs { conn: Some(9), ..args }, &mut Vec::new()).expect_err("no conn 9");
    assert!(format!("{err:#}").contains("no connection 9"), "{err:#}");

    let err = explain(&ExplainArgs { file: port_reuse, packet: Some(99) }, &mut Vec::new()).expect_err("no frame 99");
    assert!(format!("{err:#}").contains("no frame 99"), "{err:#}");

    let missing = dir.join("does-not-exist.pcap");
    let err = ladder(&LadderArgs { file: missing.clone(), svg: None, html: None, conn: None }, &mut Vec::new())
        .expect_err("missing file");
    assert!(format!("{err:#}").contains(&missing.display().to_string()), "{err:#}");

    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file").expect("write");
    let err = explain(&ExplainArgs { file: junk.clone(), packet: None }, &mut Vec::new()).expect_err("junk");
    let msg = format!("{err:#}");
    assert!(msg.contains("junk.pcap") && msg.contains("not a pcap or pcapng"), "{msg}");

    // A file cut off in the middle of a record: the frames before the cut are kept, with a warning.
    let whole = std::fs::read(&files[0]).expect("read");
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 30]).expect("write");
    let text = run_ladder(&cut);
    assert!(text.contains("9 frames") && text.contains("warning: stopped reading after frame 9"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Deterministic fuzzing: corrupt bytes all over valid captures; nothing may panic.
#[test]
fn corrupted_captures_never_panic() {
    let dir = analyze_support::out_dir("fuzz");
    let files = analyze_support::write_all(&dir);
    let mut state: u64 = 0x5eed_cafe_f00d_1234;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let target = dir.join("fuzzed");
    for file in &files {
        let orig = std::fs::read(file).expect("read");
        let rounds = std::env::var("SYNACK_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
        for round in 0..rounds {
            let mut bytes = orig.clone();
            let flips = 1 + (next() % 8) as usize;
            for _ in 0..flips {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            if round % 5 == 0 {
                let keep = (next() as usize) % bytes.len();
                bytes.truncate(keep);
            }
            std::fs::write(&target, &bytes).expect("write");
            let _ = ladder(&LadderArgs { file: target.clone(), svg: None, html: None, conn: None }, &mut Vec::new());
            let _ = explain(&ExplainArgs { file: target.clone(), packet: None }, &mut Vec::new());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
