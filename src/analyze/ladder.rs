//! Ladder (sequence) diagrams of TCP connections, as text for the terminal and as SVG (the
//! interactive HTML is in `interactive`).
//!
//! The client (the SYN sender) is always the left column, so a handshake always reads
//! left→right, right→left, left→right. When the capture has no SYN the first sender is left.
//!
//! Gaps in time: a dotted line with the gap's length is drawn before a segment when the time
//! since the previous segment of the same connection is at least 1 ms, at least ten times the
//! median gap of that connection, and at least 5% of the connection's whole duration. That
//! marks a retransmission timeout or a user pausing, not ordinary jitter, whatever the link's
//! speed, and keeps a long session from being striped with marks.

use std::fmt::Write as _;
use std::time::Duration;

use super::conversation::{Conversation, Segment};
use super::headers::flags;
use super::timefmt;

/// Longest application summary shown beside an arrow (characters).
const APP_MAX: usize = 64;

/// The label written on a segment's arrow: flags and relative numbers, Wireshark style.
pub(crate) fn arrow_label(seg: &Segment) -> String {
    let t = &seg.tcp;
    let mut s = format!("{} seq={}", t.flags_str(), seg.rel_seq);
    if t.has(flags::ACK) {
        let _ = write!(s, " ack={}", seg.rel_ack);
    }
    let _ = write!(s, " win={} len={}", seg.window, t.len);
    if let Some(m) = t.mss() {
        let _ = write!(s, " mss={m}");
    }
    if let Some(w) = t.window_scale() {
        let _ = write!(s, " ws={}", 1u32 << w.min(14));
    }
    if t.options.contains(&super::headers::TcpOption::SackPermitted) {
        s.push_str(" sack_perm");
    }
    s
}

/// Findings and the application summary, shown to the right of the arrow.
pub(crate) fn annotation(seg: &Segment) -> String {
    let mut parts: Vec<String> = seg.findings.iter().map(|f| f.to_string()).collect();
    if let Some(app) = &seg.app {
        let mut a: String = app.chars().take(APP_MAX).collect();
        if app.chars().count() > APP_MAX {
            a.push('…');
        }
        parts.push(a);
    }
    parts.join(" ")
}

/// Indices `i` (≥ 1) of segments preceded by a gap worth marking, with the gap's length.
pub fn gaps(conv: &Conversation) -> Vec<(usize, Duration)> {
    let segs = &conv.segments;
    let mut deltas: Vec<Duration> = segs.windows(2).map(|w| w[1].time.saturating_sub(w[0].time)).collect();
    if deltas.is_empty() {
        return Vec::new();
    }
    let all = deltas.clone();
    deltas.sort();
    let median = deltas[deltas.len() / 2];
    let total = segs.last().map(|s| s.time).unwrap_or_default().saturating_sub(segs[0].time);
    let threshold = (median * 10).max(Duration::from_millis(1)).max(total / 20);
    all.iter().enumerate().filter(|(_, d)| **d >= threshold).map(|(i, d)| (i + 1, *d)).collect()
}

fn client_server(conv: &Conversation) -> (String, String) {
    let l = conv.left();
    let (a, b) = (conv.endpoints[l], conv.endpoints[1 - l]);
    match conv.client {
        Some(_) => (format!("client {a}"), format!("server {b}")),
        None => (a.to_string(), b.to_string()),
    }
}

/// Renders one connection as text.
pub(crate) fn render_text(conv: &Conversation, out: &mut String) {
    let l = conv.left();
    let (a, b) = (conv.endpoints[l], conv.endpoints[1 - l]);
    let _ = writeln!(out, "Connection {}: {a} <-> {b}", conv.number);
    match conv.client {
        Some(_) => {
            let _ = writeln!(out, "  client {a} (sent the SYN), server {b}");
        }
        None => {
            let _ = writeln!(out, "  client unknown: the capture has no SYN for this connection; {a} sent first");
        }
    }
    let bytes =
        |dir: usize| -> u64 { conv.segments.iter().filter(|s| s.from == dir).map(|s| u64::from(s.tcp.len)).sum() };
    let first = conv.segments.first().map(|s| s.time).unwrap_or_default();
    let last = conv.segments.last().map(|s| s.time).unwrap_or_default();
    let _ = writeln!(
        out,
        "  {} segments from {} s to {} s; {a} sent {} bytes, {b} sent {} bytes",
        conv.segments.len(),
        timefmt::secs6(first),
        timefmt::secs6(last),
        bytes(l),
        bytes(1 - l)
    );
    out.push('\n');

    let labels: Vec<String> = conv.segments.iter().map(arrow_label).collect();
    let label_w = labels.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let (ln, rn) = client_server(conv);
    // Inner width between the two bars: "-- " + label + " -->" at least.
    let inner = (label_w + 8).max(ln.chars().count() + rn.chars().count() + 2);
    let prefix = format!("{:>10}  {:>6}  ", "time (s)", "frame");
    let pad = " ".repeat(prefix.chars().count());
    let gap = inner + 2 - ln.chars().count();
    let _ = writeln!(out, "{prefix}{ln}{:>gap$}", rn, gap = gap);
    let gap_marks = gaps(conv);
    for (i, (seg, label)) in conv.segments.iter().zip(&labels).enumerate() {
        if let Some((_, d)) = gap_marks.iter().find(|(at, _)| *at == i) {
            let text = format!("·  ·  · {} ·  ·  ·", timefmt::human(*d));
            let w = text.chars().count();
            let left = inner.saturating_sub(w) / 2 + 1;
            let _ = writeln!(out, "{pad}{}{text}", " ".repeat(left));
        }
        let fill = inner.saturating_sub(label.chars().count() + 4);
        let arrow = if seg.from == l {
            format!("|-- {label} {}>|", "-".repeat(fill.saturating_sub(1)))
        } else {
            format!("|<{} {label} --|", "-".repeat(fill.saturating_sub(1)))
        };
        let note = annotation(seg);
        let line = format!("{:>10}  {:>6}  {arrow}  {note}", timefmt::secs6(seg.time), seg.frame);
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// XML/HTML text escaping: the labels contain `<None>` and payload text from the wire.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

const ROW: u32 = 36;
const TIME_W: u32 = 150;
const ARROW_W: u32 = 560;
const NOTE_W: u32 = 200;
const CONN_HEAD: u32 = 90;

fn color(seg: &Segment) -> &'static str {
    let t = &seg.tcp;
    if t.has(flags::RST) {
        "#c62828"
    } else if t.has(flags::SYN) {
        "#2e7d32"
    } else if t.has(flags::FIN) {
        "#1565c0"
    } else if !seg.findings.is_empty() {
        "#ef6c00"
    } else {
        "#222222"
    }
}

/// Renders the given connections as one SVG document.
pub(crate) fn render_svg(convs: &[&Conversation], title: &str) -> String {
    let mut body = String::new();
    let x_left = TIME_W;
    let x_right = TIME_W + ARROW_W;
    let mut y = 30u32;
    let _ = writeln!(body, r##"<text x="10" y="{y}" font-size="16" font-weight="bold">{}</text>"##, escape(title));
    y += 20;
    for conv in convs {
        let l = conv.left();
        let (ln, rn) = client_server(conv);
        y += 30;
        let _ = writeln!(
            body,
            r##"<text x="10" y="{y}" font-size="14" font-weight="bold">Connection {}: {} &lt;-&gt; {}</text>"##,
            conv.number,
            escape(&conv.endpoints[l].to_string()),
            escape(&conv.endpoints[1 - l].to_string())
        );
        let top = y + 46;
        let _ = writeln!(
            body,
            r##"<text x="{x_left}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"##,
            top - 24,
            escape(&ln)
        );
        let _ = writeln!(
            body,
            r##"<text x="{x_right}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"##,
            top - 24,
            escape(&rn)
        );
        let _ = writeln!(
            body,
            r##"<text x="80" y="{y}" text-anchor="end" fill="#666">time (s)</text><text x="125" y="{y}" text-anchor="end" fill="#666">frame</text>"##,
            y = top - 8
        );
        let gap_marks = gaps(conv);
        let mut row_y = top + 20;
        let mut rows = String::new();
        for (i, seg) in conv.segments.iter().enumerate() {
            if let Some((_, d)) = gap_marks.iter().find(|(at, _)| *at == i) {
                let gy = row_y - 6;
                let _ = writeln!(
                    rows,
                    r##"<line x1="{x_left}" y1="{gy}" x2="{x_right}" y2="{gy}" stroke="#999" stroke-dasharray="2 6"/>"##
                );
                let _ = writeln!(
                    rows,
                    r##"<text x="{}" y="{}" text-anchor="middle" fill="#666" font-style="italic">{} later</text>"##,
                    (x_left + x_right) / 2,
                    gy + 14,
                    escape(&timefmt::human(*d))
                );
                row_y += ROW;
            }
            let (x1, x2) = if seg.from == l { (x_left, x_right) } else { (x_right, x_left) };
            let y1 = row_y;
            let y2 = row_y + 14;
            let c = color(seg);
            let dash = if seg.findings.is_empty() { "" } else { r##" stroke-dasharray="6 3""## };
            let _ = writeln!(
                rows,
                r##"<text x="80" y="{y2}" text-anchor="end" fill="#666">{}</text><text x="125" y="{y2}" text-anchor="end" fill="#666">{}</text>"##,
                timefmt::secs6(seg.time),
                seg.frame
            );
            let _ = writeln!(
                rows,
                r##"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{c}" stroke-width="1.5"{dash}/>"##
            );
            let dir: i32 = if x2 > x1 { -1 } else { 1 };
            let _ = writeln!(
                rows,
                r##"<polygon points="{x2},{y2} {},{} {},{}" fill="{c}"/>"##,
                x2 as i32 + dir * 10,
                y2 as i32 - 6,
                x2 as i32 + dir * 10,
                y2 as i32 + 2
            );
            let _ = writeln!(
                rows,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="{c}" stroke="white" stroke-width="4" paint-order="stroke">{}</text>"##,
                (x_left + x_right) / 2,
                y1 + 1,
                escape(&arrow_label(seg))
            );
            let note = annotation(seg);
            if !note.is_empty() {
                let _ =
                    writeln!(rows, r##"<text x="{}" y="{}" fill="{c}">{}</text>"##, x_right + 16, y2, escape(&note));
            }
            row_y += ROW;
        }
        let _ = writeln!(
            body,
            r##"<line x1="{x_left}" y1="{top}" x2="{x_left}" y2="{row_y}" stroke="#444" stroke-width="2"/>"##
        );
        let _ = writeln!(
            body,
            r##"<line x1="{x_right}" y1="{top}" x2="{x_right}" y2="{row_y}" stroke="#444" stroke-width="2"/>"##
        );
        body.push_str(&rows);
        y = row_y + 10;
    }
    // Monospace 12px is about 7.3 px per character; leave room for the longest note.
    let longest_note =
        convs.iter().flat_map(|c| c.segments.iter()).map(|s| annotation(s).chars().count()).max().unwrap_or(0);
    let width = TIME_W + ARROW_W + (16 + longest_note as u32 * 73 / 10 + 20).max(NOTE_W);
    let height = y + 20 + if convs.is_empty() { CONN_HEAD } else { 0 };
    let mut s = String::new();
    let _ = writeln!(s, r##"<?xml version="1.0" encoding="UTF-8"?>"##);
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">"##
    );
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="white"/>"##);
    if convs.is_empty() {
        let _ = writeln!(s, r##"<text x="10" y="80">no TCP segments in this capture</text>"##);
    }
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}
