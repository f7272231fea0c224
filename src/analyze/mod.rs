//! Offline capture analysis: `synack ladder FILE` and `synack explain FILE [--packet N]`.
//!
//! These work on any pcap/pcapng file (tcpdump, Wireshark, synack's own `--pcap`), independent
//! of the stack, so a learner can look at any TCP conversation and get the same relative
//! sequence numbers Wireshark shows, plus the reasons Wireshark leaves to the reader.
//!
//! Modules, one job each:
//! - [`capture`]: read pcap/pcapng, number frames like Wireshark, peel off the link layer;
//! - [`headers`]: tolerant IPv4/TCP/ICMP parsing, with the stack's checksum, TCP option
//!   walker and flag names from [`crate::wire`];
//! - [`conversation`]: group segments into connections, relative seq/ack, expert findings;
//! - `payload`: HTTP, WebSocket and Engine.IO/Socket.IO decoding;
//! - [`ladder`](mod@ladder): the sequence diagram as text, SVG and HTML;
//! - `dissection`: a frame's dissection as lines that know their bytes;
//! - `interactive`: the browser ladder for `--html` (the demo page's own script);
//! - [`explain`](mod@explain): the field-by-field dissection;
//! - `timefmt`: time formatting shared by both outputs.

pub mod capture;
pub mod conversation;
pub(crate) mod dissection;
pub mod explain;
pub mod headers;
pub(crate) mod interactive;
pub mod ladder;
pub(crate) mod payload;
pub(crate) mod timefmt;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Arguments of `synack ladder`.
#[derive(clap::Args, Debug, Clone)]
pub struct LadderArgs {
    /// Capture file to draw (pcap or pcapng; Raw IP, Ethernet, Linux cooked v1/v2).
    pub file: PathBuf,
    /// Also write the diagram as an SVG image to this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Also write an interactive HTML page to this file: the ladder of each connection,
    /// each packet layer by layer with its bytes, and the SVG and the text (one file, no
    /// network needed).
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Draw only connection N (numbered from 1 as listed; Wireshark's tcp.stream is N-1).
    #[arg(long, value_name = "N")]
    pub conn: Option<usize>,
}

/// Arguments of `synack explain`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExplainArgs {
    /// Capture file to dissect.
    pub file: PathBuf,
    /// Frame number to explain, counting from 1 as Wireshark does (default: every frame).
    #[arg(long, value_name = "N")]
    pub packet: Option<usize>,
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// Prints the ladder diagram of every TCP connection in the capture (and writes SVG/HTML).
pub fn ladder(args: &LadderArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let cap = capture::read_capture(&args.file)?;
    let analysis = conversation::analyze(&cap);
    let convs: Vec<&conversation::Conversation> = match args.conn {
        None => analysis.conversations.iter().collect(),
        Some(n) => match analysis.conversations.get(n.wrapping_sub(1)) {
            Some(c) => vec![c],
            None => bail!(
                "{}: there is no connection {n}; the capture has {} TCP connection(s), numbered from 1",
                args.file.display(),
                analysis.conversations.len()
            ),
        },
    };
    let mut text = String::new();
    text.push_str(&format!(
        "Capture {}: {}, {} frames, {} TCP connection(s)\n",
        file_name(&args.file),
        cap.format,
        cap.frames.len(),
        analysis.conversations.len()
    ));
    for w in &cap.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    if convs.is_empty() {
        text.push_str("\nno TCP segments in this capture\n");
    }
    for c in &convs {
        text.push('\n');
        ladder::render_text(c, &mut text);
    }
    out.write_all(text.as_bytes())?;
    let title = format!("synack ladder: {}", file_name(&args.file));
    if args.svg.is_some() || args.html.is_some() {
        let svg = ladder::render_svg(&convs, &title);
        if let Some(p) = &args.svg {
            std::fs::write(p, &svg).with_context(|| format!("cannot write SVG file {}", p.display()))?;
        }
        if let Some(p) = &args.html {
            let html = interactive::render(&cap, &analysis, &convs, &title, &svg, &text);
            std::fs::write(p, html).with_context(|| format!("cannot write HTML file {}", p.display()))?;
        }
    }
    Ok(())
}

/// Prints one frame (or every frame) layer by layer.
pub fn explain(args: &ExplainArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let cap = capture::read_capture(&args.file)?;
    let analysis = conversation::analyze(&cap);
    let mut text = String::new();
    let frames: Vec<&capture::Frame> = match args.packet {
        Some(n) => match cap.frame(n) {
            Some(f) => vec![f],
            None => bail!(
                "{}: there is no frame {n}; the capture has {} frame(s), numbered from 1",
                args.file.display(),
                cap.frames.len()
            ),
        },
        None => {
            text.push_str(&format!("Capture {}: {}, {} frames\n", file_name(&args.file), cap.format, cap.frames.len()));
            for w in &cap.warnings {
                text.push_str(&format!("warning: {w}\n"));
            }
            text.push('\n');
            cap.frames.iter().collect()
        }
    };
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        explain::explain_frame(&cap, &analysis, f, &mut text);
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}
