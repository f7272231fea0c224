//! Keep-alive HTTP with ApacheBench: one request at a time on one connection, the page
//! (13 KB, its last segment small) and a 2,000-byte body (its head sent before the body).
//! A response whose small tail waited for the client's delayed ACK (Nagle holding it behind
//! unacknowledged full segments) cost 40 ms each, capping ab below 25 requests a second.

mod common;

use common::*;

/// (requests per second, median ms, longest ms, failed, keep-alive requests) from ab's report.
fn ab(ns: &Netns, url: &str) -> (f64, u64, u64, u64, u64, String) {
    let out = ns.sh(&format!("timeout 60 ab -k -n 200 -c 1 {url}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "ab failed: {text} {}", String::from_utf8_lossy(&out.stderr));
    let field = |prefix: &str, n: usize| -> String {
        let line = text.lines().find(|l| l.trim_start().starts_with(prefix));
        let line = line.unwrap_or_else(|| panic!("no '{prefix}' in ab's report: {text}"));
        line.split_whitespace().nth(n).unwrap_or_else(|| panic!("short '{prefix}' line: {line}")).to_string()
    };
    let num = |s: String| s.parse::<f64>().unwrap_or_else(|_| panic!("not a number: {s} in {text}"));
    let rps = num(field("Requests per second:", 3));
    let median = num(field("50%", 1)) as u64;
    let longest = num(field("100%", 1)) as u64;
    let failed = num(field("Failed requests:", 2)) as u64;
    let keep_alive = num(field("Keep-Alive requests:", 2)) as u64;
    (rps, median, longest, failed, keep_alive, text)
}

#[test]
fn ab_keep_alive_one_at_a_time_has_no_delayed_ack_stalls() {
    let name = "ab_keep_alive_one_at_a_time_has_no_delayed_ack_stalls";
    let Some(()) = require_root(name) else { return };
    let Some(()) = require_tool(name, "ab") else { return };
    let mut ns = Netns::new("keepalive");
    let _srv = ns.serve(&[]);
    for url in ["http://10.7.0.2/", "http://10.7.0.2/bytes/2000"] {
        let (rps, median, longest, failed, keep_alive, text) = ab(&ns, url);
        eprintln!("ab -k -n 200 -c 1 {url}: {rps:.0} requests/s, median {median} ms, longest {longest} ms");
        assert_eq!((failed, keep_alive), (0, 200), "every request answered on the one connection: {text}");
        // 200 stalls of 40 ms would be 8 s: under 25/s. Far above that, with room for a slow
        // debug build on a busy machine.
        assert!(rps > 150.0, "{url}: {rps:.0} requests/s: responses wait for delayed ACKs\n{text}");
        assert!(median < 20, "{url}: median {median} ms\n{text}");
    }
}
