//! Layer-by-layer dissection of one frame: link, IPv4, TCP (or ICMP), application.
//!
//! Each field is printed with its value *and* what it means, because the reader is learning
//! the protocol, not debugging a known one. Broken packets are dissected as far as they go and
//! the problem is named; nothing here panics on file content.

use std::fmt::Write as _;
use std::ops::Range;

use super::capture::{Capture, Frame};
use super::conversation::{Analysis, Conversation, Finding, Segment};
use super::dissection::Dissection;
use super::headers::{
    flags, icmp_type_name, ip_protocol_name, parse_icmp, parse_ipv4, parse_tcp, ChecksumStatus, Icmp, Ipv4, Tcp,
    TcpOption,
};
use super::payload;
use super::timefmt;
use crate::wire::SeqNum;

const IND: &str = "    ";

fn field(out: &mut Dissection, name: &str, value: impl std::fmt::Display) {
    let label = format!("{name}:");
    let width = 24.max(label.chars().count() + 1);
    let _ = writeln!(out.named(name), "{IND}{label:<width$}{value}");
}

/// A field whose value is in these bytes of the frame.
fn field_at(out: &mut Dissection, bytes: Range<usize>, name: &str, value: impl std::fmt::Display) {
    out.at(bytes);
    field(out, name, value);
}

fn problem(out: &mut Dissection, text: &str) {
    let _ = writeln!(out, "{IND}! {text}");
}

fn checksum_text(value: u16, status: ChecksumStatus, covers: &str) -> String {
    match status {
        ChecksumStatus::Good => format!("0x{value:04x} [correct] (verified over {covers})"),
        ChecksumStatus::Bad { expected } => {
            format!("0x{value:04x} [INCORRECT, should be 0x{expected:04x}] (computed over {covers})")
        }
        ChecksumStatus::Unverifiable => {
            format!("0x{value:04x} [not verified: not all of {covers} was captured]")
        }
    }
}

/// Explains one frame into `out`.
pub(crate) fn explain_frame(capture: &Capture, analysis: &Analysis, frame: &Frame, out: &mut String) {
    let mut d = Dissection::new();
    dissect_frame(capture, analysis, frame, &mut d);
    out.push_str(&d.text());
}

/// Dissects one frame into `out`, each field with the frame bytes it came from.
pub(crate) fn dissect_frame(capture: &Capture, analysis: &Analysis, frame: &Frame, out: &mut Dissection) {
    let rel = frame.timestamp.saturating_sub(capture.start());
    let _ = writeln!(
        out,
        "Frame {}: {} bytes captured ({} bytes on the wire), at {} s ({})",
        frame.number,
        frame.data.len(),
        frame.orig_len,
        timefmt::secs9(rel),
        timefmt::utc(frame.timestamp)
    );
    if (frame.orig_len as usize) > frame.data.len() {
        problem(
            out,
            &format!("only the first {} bytes were saved (the capture's snap length cut the rest)", frame.data.len()),
        );
    }
    let link = frame.link();
    out.at(0..link.header_len);
    let _ = writeln!(out, "Link layer: {}", link.name);
    if link.fields.is_empty() && link.header_len == 0 && link.ipv4.is_ok() {
        let _ = writeln!(
            out,
            "{IND}No link-layer header: the frame starts directly with the IP header (a TUN device or `tcpdump -i tun0` gives these)."
        );
    }
    for f in &link.fields {
        field(out, &f.name, &f.value);
    }
    let off = match link.ipv4 {
        Ok(o) => o,
        Err(why) => {
            let _ = writeln!(out, "{IND}Not dissected further: this frame {why}.");
            return;
        }
    };
    let bytes = frame.data.get(off..).unwrap_or_default();
    let ip = match parse_ipv4(bytes) {
        Ok(ip) => ip,
        Err(why) => {
            let _ = writeln!(out, "Internet Protocol Version 4 (IPv4)");
            problem(out, &format!("malformed: {why}"));
            for l in payload::hex_dump(bytes) {
                let _ = writeln!(out, "{IND}{l}");
            }
            return;
        }
    };
    explain_ipv4(&ip, off, out);
    if ip.ihl < 5 {
        let _ = writeln!(
            out,
            "{IND}Not dissected further: with an invalid header length, where the payload starts is unknown."
        );
        return;
    }
    if ip.fragment_offset != 0 {
        let _ = writeln!(
            out,
            "{IND}This is a later fragment: its {} bytes continue a datagram whose start is in another frame (synack does not reassemble fragments).",
            ip.payload.len()
        );
        return;
    }
    match ip.protocol {
        6 => match parse_tcp(&ip) {
            Ok(tcp) => {
                let seg = analysis.segment(frame.number);
                let at = off + ip.header_len;
                explain_tcp(&tcp, seg, at, out);
                let websocket = seg.is_some_and(|(_, s)| s.websocket);
                let data = at + tcp.header_len;
                for sec in payload::describe(&tcp.payload, websocket) {
                    out.at(data..data + tcp.payload.len());
                    let _ = writeln!(out, "{}", sec.title);
                    for l in sec.lines {
                        let _ = writeln!(out, "{IND}{l}");
                    }
                }
            }
            Err(why) => {
                let _ = writeln!(out, "Transmission Control Protocol (TCP)");
                problem(out, &format!("malformed: {why}"));
                for l in payload::hex_dump(&ip.payload) {
                    let _ = writeln!(out, "{IND}{l}");
                }
            }
        },
        1 => match parse_icmp(&ip) {
            Ok(icmp) => explain_icmp(&icmp, out),
            Err(why) => {
                let _ = writeln!(out, "Internet Control Message Protocol (ICMP)");
                problem(out, &format!("malformed: {why}"));
            }
        },
        p => {
            let _ = writeln!(
                out,
                "{} payload ({} bytes): synack dissects only TCP and ICMP",
                ip_protocol_name(p),
                ip.payload.len()
            );
        }
    }
}

fn dscp_name(d: u8) -> String {
    let n = match d {
        0 => "CS0, default forwarding (best effort)".to_string(),
        46 => "EF, expedited forwarding (low latency, e.g. voice)".to_string(),
        44 => "VOICE-ADMIT".to_string(),
        d if d % 8 == 0 => format!("CS{}, class selector", d / 8),
        d if (10..=38).contains(&d) && d % 2 == 0 && (d % 8 == 2 || d % 8 == 4 || d % 8 == 6) => {
            format!("AF{}{}, assured forwarding", d / 8, (d % 8) / 2)
        }
        _ => "unassigned".to_string(),
    };
    format!("{d} ({n})")
}

fn ecn_name(e: u8) -> &'static str {
    match e {
        0 => "0 (Not-ECT: the sender does not do ECN)",
        1 => "1 (ECT(1): ECN-capable transport)",
        2 => "2 (ECT(0): ECN-capable transport)",
        _ => "3 (CE: a router saw congestion and marked instead of dropping)",
    }
}

fn explain_ipv4(ip: &Ipv4, at: usize, out: &mut Dissection) {
    out.at(at..at + ip.header_len);
    let _ = writeln!(out, "Internet Protocol Version 4 (IPv4)");
    let b = |r: Range<usize>| at + r.start..at + r.end;
    field_at(out, b(0..1), "Version", format!("{} (IPv4)", ip.version));
    field_at(
        out,
        b(0..1),
        "Header length",
        format!(
            "{} bytes (IHL {} × 4 bytes{})",
            usize::from(ip.ihl) * 4,
            ip.ihl,
            if ip.ihl == 5 { ", no options" } else { "" }
        ),
    );
    field_at(out, b(1..2), "DSCP", dscp_name(ip.dscp));
    field_at(out, b(1..2), "ECN", ecn_name(ip.ecn));
    field_at(
        out,
        b(2..4),
        "Total length",
        format!("{} bytes (this {}-byte header + {} bytes of payload)", ip.total_len, ip.header_len, ip.payload_len),
    );
    field_at(
        out,
        b(4..6),
        "Identification",
        format!("0x{:04x} ({}) (groups the fragments of one datagram)", ip.identification, ip.identification),
    );
    let fl = (u8::from(ip.evil_bit) << 2) | (u8::from(ip.dont_fragment) << 1) | u8::from(ip.more_fragments);
    let mut names = Vec::new();
    if ip.dont_fragment {
        names.push("DF: don't fragment; a router must drop it and send ICMP instead of splitting it");
    }
    if ip.more_fragments {
        names.push("MF: more fragments follow");
    }
    if ip.evil_bit {
        names.push("reserved bit set (must be zero)");
    }
    if names.is_empty() {
        names.push("none set (may be fragmented; this is the last or only fragment)");
    }
    field_at(out, b(6..7), "Flags", format!("0x{fl:x} ({})", names.join("; ")));
    field_at(
        out,
        b(6..8),
        "Fragment offset",
        format!(
            "{} (× 8 = byte {} of the original datagram{})",
            ip.fragment_offset,
            u32::from(ip.fragment_offset) * 8,
            if ip.is_fragment() { "" } else { "; not a fragment" }
        ),
    );
    field_at(out, b(8..9), "Time to live", format!("{} (each router subtracts 1; at 0 the packet is dropped)", ip.ttl));
    field_at(out, b(9..10), "Protocol", format!("{} ({})", ip.protocol, ip_protocol_name(ip.protocol)));
    if ip.ihl < 5 {
        field_at(
            out,
            b(10..12),
            "Header checksum",
            format!("0x{:04x} [not verified: the header length is invalid]", ip.checksum),
        );
    } else {
        field_at(out, b(10..12), "Header checksum", checksum_text(ip.checksum, ip.checksum_status, "the IPv4 header"));
    }
    field_at(out, b(12..16), "Source address", ip.source);
    field_at(out, b(16..20), "Destination address", ip.destination);
    if !ip.options.is_empty() {
        let hex: Vec<String> = ip.options.iter().map(|b| format!("{b:02x}")).collect();
        field_at(
            out,
            b(20..20 + ip.options.len()),
            "Options",
            format!("{} bytes: {}", ip.options.len(), hex.join(" ")),
        );
    }
    if ip.trailer_len > 0 {
        field(
            out,
            "Trailer",
            format!(
                "{} bytes after the datagram, not part of it (e.g. Ethernet's padding to its 60-byte minimum)",
                ip.trailer_len
            ),
        );
    }
    for p in &ip.problems {
        problem(out, p);
    }
}

fn flag_meaning(bit: u16) -> &'static str {
    match bit {
        flags::FIN => "FIN: the sender has no more data (closing its direction)",
        flags::SYN => "SYN: synchronize sequence numbers (opening a connection; carries the ISN)",
        flags::RST => "RST: reset, abort the connection now",
        flags::PSH => "PSH: push, hand the data to the application without waiting",
        flags::ACK => "ACK: the acknowledgment number is valid",
        flags::URG => "URG: the urgent pointer is valid",
        flags::ECE => "ECE: ECN echo (congestion seen, or ECN offered in a SYN)",
        flags::CWR => "CWR: congestion window reduced (answer to ECE)",
        _ => "NS/AE: ECN nonce / accurate ECN",
    }
}

fn explain_tcp(tcp: &Tcp, seg: Option<(&Conversation, &Segment)>, at: usize, out: &mut Dissection) {
    out.at(at..at + tcp.header_len);
    let _ = writeln!(out, "Transmission Control Protocol (TCP)");
    let b = |r: Range<usize>| at + r.start..at + r.end;
    field_at(out, b(0..2), "Source port", tcp.source_port);
    field_at(out, b(2..4), "Destination port", tcp.destination_port);
    if let Some((conv, s)) = seg {
        let who = |i: usize| match conv.client {
            Some(c) if c == i => "client",
            Some(_) => "server",
            None => "",
        };
        let from = who(s.from);
        let dir = if from.is_empty() {
            format!("{} → {}", conv.endpoints[s.from], conv.endpoints[1 - s.from])
        } else {
            format!("{} → {}", from, who(1 - s.from))
        };
        field(out, "Connection", format!("#{} (tshark tcp.stream {}), {dir}", conv.number, conv.number - 1));
        field_at(
            out,
            b(4..8),
            "Sequence number",
            format!("{} (relative; raw {}) (number of this segment's first byte)", s.rel_seq, tcp.seq),
        );
        if tcp.seq_space() > 0 {
            let why = match (tcp.has(flags::SYN), tcp.has(flags::FIN)) {
                (true, _) => " (the SYN counts as one byte)",
                (_, true) => " (the FIN counts as one byte)",
                _ => "",
            };
            field(out, "Next sequence number", format!("{} (relative){why}", s.rel_seq.wrapping_add(tcp.seq_space())));
        }
        if tcp.has(flags::ACK) {
            field_at(
                out,
                b(8..12),
                "Acknowledgment number",
                format!(
                    "{} (relative; raw {}) (every byte before this one has arrived; send this one next)",
                    s.rel_ack, tcp.ack
                ),
            );
        } else {
            field_at(
                out,
                b(8..12),
                "Acknowledgment number",
                format!("raw {} (ignored: the ACK flag is not set)", tcp.ack),
            );
        }
    } else {
        field_at(out, b(4..8), "Sequence number", format!("{} (raw)", tcp.seq));
        field_at(out, b(8..12), "Acknowledgment number", format!("{} (raw)", tcp.ack));
    }
    field_at(
        out,
        b(12..13),
        "Header length",
        format!("{} bytes (data offset {} × 4)", tcp.header_len, tcp.data_offset),
    );
    field_at(out, b(12..14), "Flags", format!("0x{:03x} {}", tcp.flags, tcp.flags_str()));
    for bit in
        [flags::CWR, flags::ECE, flags::URG, flags::ACK, flags::PSH, flags::RST, flags::SYN, flags::FIN, flags::NS]
    {
        if tcp.flags & bit != 0 {
            let _ = writeln!(out.at(b(12..14)), "{IND}  {}", flag_meaning(bit));
        }
    }
    if tcp.flags & 0x0e00 != 0 {
        problem(out, "reserved flag bits are set (must be zero)");
    }
    let win = match seg {
        Some(_) if tcp.has(flags::SYN) => {
            format!("{} bytes (never scaled in a SYN segment)", tcp.window)
        }
        Some((_, s)) => match s.window_shift {
            Some(0) => format!("{} bytes (no window scaling on this connection)", tcp.window),
            Some(sh) => format!(
                "{} × {} (scale 2^{sh} from the handshake) = {} bytes the sender can still receive",
                tcp.window,
                1u32 << sh,
                s.window
            ),
            None => format!(
                "{} (window scale unknown: the handshake is not in the capture, so the true window may be larger)",
                tcp.window
            ),
        },
        None => format!("{}", tcp.window),
    };
    field_at(out, b(14..16), "Window", win);
    field_at(
        out,
        b(16..18),
        "Checksum",
        checksum_text(tcp.checksum, tcp.checksum_status, "the pseudo-header (addresses, protocol, length) and segment"),
    );
    if let ChecksumStatus::Bad { .. } = tcp.checksum_status {
        let _ = writeln!(
            out,
            "{IND}  (a capture taken on the sending host often shows this: the network card fills the checksum in later)"
        );
    }
    field_at(
        out,
        b(18..20),
        "Urgent pointer",
        if tcp.has(flags::URG) {
            format!("{} (urgent data ends this many bytes into the payload)", tcp.urgent)
        } else {
            format!("{} (ignored: URG not set)", tcp.urgent)
        },
    );
    if tcp.options.is_empty() {
        field(out, "Options", "none");
    } else {
        field_at(out, b(20..tcp.header_len), "Options", format!("{} bytes", tcp.header_len.saturating_sub(20)));
        // SACK edges are in the peer's sequence space; shift them as the ACK was shifted.
        let peer_offset = seg.filter(|_| tcp.has(flags::ACK)).map(|(_, s)| s.rel_ack.wrapping_sub(tcp.ack));
        for (i, o) in tcp.options.iter().enumerate() {
            let ack = tcp.has(flags::ACK).then_some(tcp.ack);
            if let Some(span) = tcp.option_spans.get(i) {
                out.at(b(20 + span.start..20 + span.end));
            }
            let _ = writeln!(out, "{IND}  {}", option_text(o, peer_offset, ack));
        }
    }
    for p in &tcp.problems {
        problem(out, p);
    }
    if tcp.len == 0 {
        field(out, "Payload", "none");
    } else if tcp.payload.len() < tcp.len as usize {
        field(out, "Payload", format!("{} bytes ({} captured)", tcp.len, tcp.payload.len()));
    } else {
        field(out, "Payload", format!("{} bytes", tcp.len));
    }
    if let Some((_, s)) = seg {
        for f in &s.findings {
            let _ = writeln!(out, "{IND}Analysis: {f} {}", finding_meaning(*f));
        }
    }
}

pub(crate) fn finding_meaning(f: Finding) -> &'static str {
    match f {
        Finding::Retransmission => {
            "— this data was sent before; the sender's retransmission timer (RTO) or a loss signal made it send again"
        }
        Finding::FastRetransmission => {
            "— resent at once because duplicate ACKs said it was lost, without waiting for the timer"
        }
        Finding::SpuriousRetransmission => "— resent although the receiver had already acknowledged it",
        Finding::OutOfOrder => "— arrived after data that comes later in the stream",
        Finding::PreviousSegmentNotCaptured => {
            "— there is a hole before this segment: something was lost or not captured"
        }
        Finding::AckedUnseenSegment => "— acknowledges data this capture never saw",
        Finding::DupAck { .. } => "— the same ACK again: the receiver is still waiting for a missing segment",
        Finding::ZeroWindow => "— the sender's receive buffer is full; the peer must stop sending",
        Finding::ZeroWindowProbe => "— one byte pushed into a zero window to see whether it has opened",
        Finding::KeepAlive => "— an empty probe to check that the peer is still there",
        Finding::WindowUpdate => "— nothing new but a bigger window: the receiver freed buffer space",
    }
}

fn option_text(o: &TcpOption, peer_offset: Option<u32>, ack: Option<u32>) -> String {
    match o {
        TcpOption::Eol => "End of option list (EOL): the rest is padding".to_string(),
        TcpOption::Nop => "No-Operation (NOP): one byte of padding to align the next option".to_string(),
        TcpOption::Mss(m) => {
            format!("Maximum segment size: {m} bytes (the most payload the sender wants in one segment)")
        }
        TcpOption::WindowScale(s) => format!(
            "Window scale: {s} (multiply by {}): this side's later window values are shifted left by {s}",
            1u64 << (*s).min(14)
        ),
        TcpOption::SackPermitted => "SACK permitted: the sender understands selective acknowledgments".to_string(),
        TcpOption::Sack(blocks) => {
            let parts: Vec<String> = blocks
                .iter()
                .map(|(l, r)| match peer_offset {
                    Some(off) => format!("{}-{}", l.wrapping_add(off), r.wrapping_add(off)),
                    None => format!("{l}-{r}"),
                })
                .collect();
            let kind = if peer_offset.is_some() { "relative" } else { "raw" };
            // RFC 2883: a first block at or below the cumulative ACK reports data that
            // arrived twice.
            let dsack = matches!((blocks.first(), ack), (Some((_, r)), Some(a)) if SeqNum(*r) <= SeqNum(a));
            if dsack {
                format!(
                    "SACK: {} ({kind}; D-SACK: the first block arrived twice, so its retransmission was not \
                     needed (RFC 2883); any others also arrived, beyond the ACK)",
                    parts.join(", ")
                )
            } else {
                format!("SACK: {} ({kind}; these bytes also arrived, beyond the ACK)", parts.join(", "))
            }
        }
        TcpOption::Timestamps { value, echo } => format!(
            "Timestamps: TSval {value}, TSecr {echo} (sender's clock, and the latest clock value echoed from the peer)"
        ),
        TcpOption::Unknown { kind, data } => {
            let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
            format!("Unknown option kind {kind}, {} bytes of data: {}", data.len(), hex.join(" "))
        }
        TcpOption::Malformed { kind, reason } => format!("! Malformed option kind {kind}: {reason}; options end here"),
    }
}

fn explain_icmp(icmp: &Icmp, out: &mut Dissection) {
    let _ = writeln!(out, "Internet Control Message Protocol (ICMP)");
    field(out, "Type", format!("{} ({})", icmp.kind, icmp_type_name(icmp.kind)));
    field(out, "Code", icmp.code);
    field(out, "Checksum", checksum_text(icmp.checksum, icmp.checksum_status, "the ICMP message"));
    if icmp.kind == 0 || icmp.kind == 8 {
        let id = u16::from_be_bytes([icmp.rest[0], icmp.rest[1]]);
        let seq = u16::from_be_bytes([icmp.rest[2], icmp.rest[3]]);
        field(out, "Identifier", format!("0x{id:04x} ({id}) (matches replies to requests)"));
        field(out, "Sequence number", seq);
    } else {
        let hex: Vec<String> = icmp.rest.iter().map(|b| format!("{b:02x}")).collect();
        field(out, "Rest of header", hex.join(" "));
    }
    field(out, "Data", format!("{} bytes", icmp.data.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_sack_block_below_the_ack_is_explained_as_a_dsack() {
        let dsack = TcpOption::Sack(vec![(1000, 1100), (1500, 1600)]);
        let text = option_text(&dsack, None, Some(1200));
        assert!(text.contains("D-SACK"), "{text}");
        let sack = TcpOption::Sack(vec![(1500, 1600)]);
        let text = option_text(&sack, None, Some(1200));
        assert!(!text.contains("D-SACK") && text.contains("beyond the ACK"), "{text}");
    }
}
