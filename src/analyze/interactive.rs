//! `synack ladder FILE --html`: the demo page's interactive ladder for any capture, in one
//! self-contained file. The segments become the events the live ladder draws (the tracer's
//! JSON form: flags, relative numbers, window), the analysis findings notes under their
//! arrows, and each frame's dissection by `synack explain`'s decoder is embedded for the
//! layer view. The script and styles are the page's own (`src/app/page/ladder.*`).

use serde_json::{json, Value};

use super::capture::Capture;
use super::conversation::{Analysis, Conversation};
use super::dissection::Dissection;
use super::explain::{dissect_frame, finding_meaning};
use super::headers::{flags, TcpOption};
use super::ladder::escape;

pub(crate) const LADDER_CSS: &str = include_str!("../app/page/ladder.css");
pub(crate) const LADDER_JS: &str = include_str!("../app/page/ladder.js");

/// Frames dissected into the file at most (each is a few kilobytes of JSON).
pub(crate) const MAX_EMBEDDED: usize = 3000;

/// One conversation as ladder events.
pub(crate) fn events(conv: &Conversation, start: std::time::Duration) -> Vec<Value> {
    let mut out = Vec::new();
    for s in &conv.segments {
        let t = &s.tcp;
        out.push(json!({
            "event": "segment",
            "src": conv.endpoints[s.from].to_string(),
            "dst": conv.endpoints[1 - s.from].to_string(),
            "flags": t.flags_str(),
            "seq": s.rel_seq,
            "ack": t.has(flags::ACK).then_some(s.rel_ack),
            "win": s.window,
            "len": t.len,
            "mss": t.mss(),
            "ws": t.window_scale(),
            "sack_perm": t.options.contains(&TcpOption::SackPermitted),
            "t": (s.time.saturating_sub(start).as_secs_f64() * 1e6).round() / 1e6,
            "pkt": s.frame,
            "app": s.app,
            // Drawn under the arrow they are about.
            "notes": s.findings.iter().map(|f| format!("{f} {}", finding_meaning(*f))).collect::<Vec<_>>(),
        }));
    }
    out
}

/// The whole page: the ladder of each conversation (one shown at a time), the layer view,
/// and below them the static SVG and the text diagram.
pub(crate) fn render(
    cap: &Capture,
    analysis: &Analysis,
    convs: &[&Conversation],
    title: &str,
    svg: &str,
    text: &str,
) -> String {
    let start = cap.start();
    let conversations: Vec<Value> = convs
        .iter()
        .map(|c| {
            json!({
                "title": format!("#{} {} ↔ {} ({} segments)", c.number, c.endpoints[c.left()], c.endpoints[1 - c.left()], c.segments.len()),
                "left": c.endpoints[c.left()].to_string(),
                "right": c.endpoints[1 - c.left()].to_string(),
                "events": events(c, start),
            })
        })
        .collect();
    let mut packets = serde_json::Map::new();
    let wanted = convs.iter().flat_map(|c| c.segments.iter().map(|s| s.frame));
    for n in wanted.take(MAX_EMBEDDED) {
        if let Some(frame) = cap.frame(n) {
            let mut d = Dissection::new();
            dissect_frame(cap, analysis, frame, &mut d);
            let mut v = d.to_json(&frame.data);
            v["pkt"] = json!(n);
            v["type"] = json!("decoded");
            packets.insert(n.to_string(), v);
        }
    }
    let data = json!({"conversations": conversations, "packets": packets, "max_embedded": MAX_EMBEDDED});
    // Inside <script>, "<" is escaped so no text from the capture can end the element.
    let data = data.to_string().replace('<', "\\u003c");
    let svg_body = svg.split_once("?>\n").map(|(_, rest)| rest).unwrap_or(svg);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\n\
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}\n\
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}\n{css}</style>\n</head>\n<body>\n<h1>{t}</h1>\n\
<p>One arrow per segment, labelled as Wireshark labels it; between arrows, what the analysis found. \
Click an arrow to read that packet layer by layer, and a field to light up its bytes. \
Long runs of plain data and ACKs are folded: click to open them.</p>\n\
<div class=\"lad-bar\"><label>connection <select id=\"conv\"></select></label></div>\n<div id=\"ladder\"></div>\n\
<script>\n{js}</script>\n<script>\n\"use strict\";\nconst DATA = {data};\n\
(() => {{\n  const sel = document.getElementById(\"conv\");\n\
  const ladder = SynackLadder.create(document.getElementById(\"ladder\"), {{\n\
    decode: (pkt) => DATA.packets[pkt] || {{ type: \"error\", what: \"frame \" + pkt + \" was not embedded (only the first \" + DATA.max_embedded + \" are)\" }},\n  }});\n\
  window.offlineLadder = ladder;\n\
  DATA.conversations.forEach((c, i) => sel.add(new Option(c.title, String(i))));\n\
  const show = (i) => {{ const c = DATA.conversations[i]; if (!c) return; ladder.reset(c.left, c.right, \"\"); ladder.add(c.events); }};\n\
  sel.onchange = () => show(Number(sel.value));\n  show(0);\n\
  document.body.dataset.segmentsTotal = String(DATA.conversations.reduce((n, c) => n + c.events.filter((e) => e.event === \"segment\").length, 0));\n\
}})();\n</script>\n\
<details><summary>The same as an image (SVG)</summary>\n{svg_body}</details>\n<h2>As text</h2>\n<pre>{text}</pre>\n</body>\n</html>\n",
        t = escape(title),
        css = LADDER_CSS,
        js = LADDER_JS,
        text = escape(text)
    )
}
