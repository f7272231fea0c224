//! Cross-check against Wireshark: for every TCP packet of every test capture, synack's
//! relative seq/ack/len (and connection number, window, retransmission marks) must equal what
//! tshark prints. Skipped with a note when tshark is missing, except in CI (CI=true), where a
//! missing tshark is a failure so the check cannot silently stop running.

mod analyze_support;

use std::process::Command;

use synack::analyze::capture::read_capture;
use synack::analyze::conversation::{analyze, Finding};

/// Writes straight to stderr: libtest captures `eprintln!` of passing tests, and this note
/// must be seen.
fn skip_note() {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: tshark not installed");
}

fn tshark_available() -> bool {
    Command::new("tshark").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn relative_numbers_match_tshark() {
    if !tshark_available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("tshark is not installed, and CI=true requires this cross-check to run");
        }
        skip_note();
        return;
    }
    let dir = analyze_support::out_dir("tshark");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for file in analyze_support::write_all(&dir) {
        if file.file_name().is_some_and(|n| n == "malformed.pcap") {
            continue; // tshark's view of deliberately broken headers is checked by explain's goldens
        }
        let cap = read_capture(&file).expect("read capture");
        let analysis = analyze(&cap);
        let rows = analyze_support::tshark_fields(
            &file,
            &[
                "frame.number",
                "tcp.stream",
                "tcp.seq",
                "tcp.ack",
                "tcp.len",
                "tcp.window_size",
                "tcp.analysis.retransmission",
                "tcp.analysis.fast_retransmission",
                "tcp.analysis.duplicate_ack_num",
            ],
        );
        assert!(!rows.is_empty(), "tshark saw no TCP in {}", file.display());
        for row in &rows {
            let n: usize = row[0].parse().expect("frame number");
            let (conv, seg) = analysis
                .segment(n)
                .unwrap_or_else(|| panic!("{}: frame {n} is TCP for tshark but not for synack", file.display()));
            let ours = vec![
                (conv.number - 1).to_string(),
                seg.rel_seq.to_string(),
                seg.rel_ack.to_string(),
                seg.tcp.len.to_string(),
                seg.window.to_string(),
                // Wireshark sets tcp.analysis.retransmission for fast and spurious ones too.
                if seg.findings.iter().any(|f| {
                    matches!(f, Finding::Retransmission | Finding::FastRetransmission | Finding::SpuriousRetransmission)
                }) {
                    "1".into()
                } else {
                    String::new()
                },
                if seg.findings.contains(&Finding::FastRetransmission) { "1".into() } else { String::new() },
                seg.findings
                    .iter()
                    .find_map(|f| if let Finding::DupAck { n, .. } = f { Some(n.to_string()) } else { None })
                    .unwrap_or_default(),
            ];
            let theirs: Vec<String> = row[1..].iter().map(|s| s.to_string()).collect();
            let theirs: Vec<String> = (0..ours.len()).map(|i| theirs.get(i).cloned().unwrap_or_default()).collect();
            if ours != theirs {
                mismatches.push(format!("{} frame {n}: synack {ours:?} tshark {theirs:?}", file.display()));
            }
            checked += 1;
        }
        let ours_tcp = analysis.by_frame.len();
        assert_eq!(ours_tcp, rows.len(), "{}: number of TCP frames differs", file.display());
    }
    assert!(
        mismatches.is_empty(),
        "[stream, seq, ack, len, win, retrans, fast-retrans, dupack#] differ:\n{}",
        mismatches.join("\n")
    );
    assert!(checked > 50, "only {checked} packets checked");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checksum_verdicts_match_tshark() {
    use synack::analyze::headers::{parse_icmp, parse_ipv4, parse_tcp, ChecksumStatus};
    if !tshark_available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("tshark is not installed, and CI=true requires this cross-check to run");
        }
        skip_note();
        return;
    }
    // tshark's status codes: 0 bad, 1 good, 2 unverified.
    let code = |s: ChecksumStatus| match s {
        ChecksumStatus::Bad { .. } => "0",
        ChecksumStatus::Good => "1",
        ChecksumStatus::Unverifiable => "2",
    };
    let dir = analyze_support::out_dir("checksums");
    let mut compared = 0;
    for file in analyze_support::write_all(&dir) {
        let cap = read_capture(&file).expect("read capture");
        let out = Command::new("tshark")
            .args(["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-r"])
            .arg(&file)
            .args(["-T", "fields", "-e", "frame.number", "-e", "ip.checksum.status", "-e", "tcp.checksum.status"])
            .args(["-e", "icmp.checksum.status"])
            .output()
            .expect("run tshark");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let n: usize = f[0].parse().expect("frame number");
            let frame = cap.frame(n).expect("frame exists");
            let Ok(bytes) = frame.ipv4() else { continue };
            let Ok(ip) = parse_ipv4(bytes) else { continue };
            let mut pairs = vec![(f.get(1), code(ip.checksum_status), "IP")];
            if let Ok(t) = parse_tcp(&ip) {
                pairs.push((f.get(2), code(t.checksum_status), "TCP"));
            }
            if let Ok(i) = parse_icmp(&ip) {
                if ip.protocol == 1 {
                    pairs.push((f.get(3), code(i.checksum_status), "ICMP"));
                }
            }
            for (theirs, ours, what) in pairs {
                // Where tshark has no verdict (bogus header) or we cannot verify (bytes missing),
                // there is nothing to compare: tshark then sums whatever bytes it has.
                let Some(theirs) = theirs.filter(|t| !t.is_empty()) else {
                    continue;
                };
                if ours == "2" {
                    continue;
                }
                assert_eq!(ours, *theirs, "{} frame {n}: {what} checksum verdict", file.display());
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "only {compared} checksums compared");
    let _ = std::fs::remove_dir_all(&dir);
}
