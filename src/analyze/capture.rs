//! Reading capture files (pcap and pcapng) and peeling off the link layer.
//!
//! Frames are numbered from 1 in file order, the way Wireshark numbers them, and every frame is
//! kept (even ARP or IPv6) so that "frame 7" here is frame 7 in Wireshark too. The analysis tools
//! then ask [`Frame::link`] where the IPv4 packet starts, if there is one.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{PcapError, TsResolution};

/// LINKTYPE_NULL: BSD loopback, a 4-byte address family in the capturing host's byte order.
pub const LINKTYPE_NULL: u32 = 0;
/// LINKTYPE_ETHERNET: Ethernet II (or 802.3) frames.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// DLT_RAW as most systems number it; files from them may carry 12 instead of 101.
pub const LINKTYPE_RAW_12: u32 = 12;
/// DLT_RAW as OpenBSD numbers it.
pub const LINKTYPE_RAW_14: u32 = 14;
/// LINKTYPE_RAW: the frame is the IP packet itself (what a TUN device and synack write).
pub const LINKTYPE_RAW: u32 = 101;
/// LINKTYPE_LOOP: OpenBSD loopback, a 4-byte address family in network byte order.
pub const LINKTYPE_LOOP: u32 = 108;
/// LINKTYPE_LINUX_SLL: Linux "cooked" capture v1 (`tcpdump -i any` on older libpcap).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// LINKTYPE_IPV4: raw IPv4 only.
pub const LINKTYPE_IPV4: u32 = 228;
/// LINKTYPE_LINUX_SLL2: Linux "cooked" capture v2 (`tcpdump -i any` on current libpcap).
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Which container the frames came in; shown to the learner so they know what they opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic libpcap file; `nanos` is true for the nanosecond-resolution variant.
    Pcap {
        /// Timestamps are nanoseconds (magic 0xa1b23c4d) rather than microseconds.
        nanos: bool,
    },
    /// pcapng (Wireshark's default format).
    PcapNg,
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileFormat::Pcap { nanos: false } => write!(f, "pcap (microsecond timestamps)"),
            FileFormat::Pcap { nanos: true } => write!(f, "pcap (nanosecond timestamps)"),
            FileFormat::PcapNg => write!(f, "pcapng"),
        }
    }
}

/// One captured frame, exactly as stored in the file.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Position in the file, from 1, as Wireshark numbers frames.
    pub number: usize,
    /// Capture time since the Unix epoch.
    pub timestamp: Duration,
    /// The LINKTYPE_ value of the interface the frame was captured on.
    pub linktype: u32,
    /// Length of the frame on the wire (may exceed `data.len()` when the snap length cut it).
    pub orig_len: u32,
    /// The captured bytes, link-layer header included.
    pub data: Vec<u8>,
}

/// A whole capture file read into memory.
#[derive(Debug, Clone)]
pub struct Capture {
    /// pcap or pcapng.
    pub format: FileFormat,
    /// Every frame, in file order.
    pub frames: Vec<Frame>,
    /// Problems met while reading (e.g. a file cut off mid-packet); the frames before them are kept.
    pub warnings: Vec<String>,
}

impl Capture {
    /// Frame `number` (counting from 1), if the file has it.
    pub fn frame(&self, number: usize) -> Option<&Frame> {
        number
            .checked_sub(1)
            .and_then(|i| self.frames.get(i))
            .filter(|f| f.number == number)
            .or_else(|| self.frames.iter().find(|f| f.number == number))
    }

    /// Timestamp of the first frame: Wireshark's "time since beginning of capture" origin.
    pub fn start(&self) -> Duration {
        self.frames.first().map(|f| f.timestamp).unwrap_or_default()
    }
}

/// Reads a pcap or pcapng file, whichever it is (decided by its magic number).
///
/// A file that cannot be opened or is neither format is an error naming the file; a file that is
/// damaged part-way yields the frames before the damage plus a warning, as Wireshark does.
pub fn read_capture(path: &Path) -> anyhow::Result<Capture> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read capture file {}", path.display()))?;
    parse_capture(&bytes).with_context(|| format!("cannot read capture file {}", path.display()))
}

/// Parses capture bytes already in memory (see [`read_capture`]).
pub fn parse_capture(bytes: &[u8]) -> anyhow::Result<Capture> {
    let Some(magic) = bytes.get(0..4) else {
        bail!("file is too short ({} bytes) to be a pcap or pcapng capture", bytes.len());
    };
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => read_pcapng(bytes),
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xd4, 0xc3, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d] | [0x4d, 0x3c, 0xb2, 0xa1] => {
            read_pcap(bytes)
        }
        _ => bail!(
            "not a pcap or pcapng file (starts with {:02x} {:02x} {:02x} {:02x})",
            magic[0],
            magic[1],
            magic[2],
            magic[3]
        ),
    }
}

fn describe_pcap_error(e: &PcapError) -> String {
    match e {
        PcapError::IncompleteBuffer => "the file ends in the middle of a record".to_string(),
        other => other.to_string(),
    }
}

fn read_pcap(bytes: &[u8]) -> anyhow::Result<Capture> {
    let (mut rest, parser) =
        PcapParser::new(bytes).map_err(|e| anyhow::anyhow!("bad pcap file header: {}", describe_pcap_error(&e)))?;
    let header = parser.header();
    let nanos = header.ts_resolution == TsResolution::NanoSecond;
    let linktype = u32::from(header.datalink);
    let mut capture = Capture { format: FileFormat::Pcap { nanos }, frames: Vec::new(), warnings: Vec::new() };
    while !rest.is_empty() {
        match parser.next_raw_packet(rest) {
            Ok((next, raw)) => {
                rest = next;
                let number = capture.frames.len() + 1;
                // Be lenient where libpcap readers are: note oddities, keep the frame.
                let frac_ns = if nanos { u64::from(raw.ts_frac) } else { u64::from(raw.ts_frac) * 1000 };
                if frac_ns >= 1_000_000_000 {
                    capture
                        .warnings
                        .push(format!("frame {number}: timestamp fraction {} is out of range", raw.ts_frac));
                }
                if raw.incl_len > raw.orig_len {
                    capture.warnings.push(format!(
                        "frame {number}: captured length {} exceeds original length {}",
                        raw.incl_len, raw.orig_len
                    ));
                }
                capture.frames.push(Frame {
                    number,
                    timestamp: Duration::from_secs(u64::from(raw.ts_sec)) + Duration::from_nanos(frac_ns),
                    linktype,
                    orig_len: raw.orig_len,
                    data: raw.data.into_owned(),
                });
            }
            Err(e) => {
                capture.warnings.push(format!(
                    "stopped reading after frame {}: {}",
                    capture.frames.len(),
                    describe_pcap_error(&e)
                ));
                break;
            }
        }
    }
    Ok(capture)
}

/// What pcapng says about one interface: its link type and how to turn timestamp units into time.
struct Interface {
    linktype: u32,
    /// Nanoseconds per unit as a fraction `num / den`, from `if_tsresol` (default: microseconds).
    num: u128,
    den: u128,
    offset_secs: u64,
}

impl Interface {
    fn timestamp(&self, units: u64) -> Duration {
        let nanos = u128::from(units).saturating_mul(self.num) / self.den.max(1);
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        Duration::from_nanos(nanos) + Duration::from_secs(self.offset_secs)
    }
}

/// A packet block's (interface id, timestamp units if any, original length, data).
type PacketRecord<'a> = (u32, Option<u64>, u32, Cow<'a, [u8]>);

fn read_pcapng(bytes: &[u8]) -> anyhow::Result<Capture> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes)
        .map_err(|e| anyhow::anyhow!("bad pcapng section header: {}", describe_pcap_error(&e)))?;
    let mut capture = Capture { format: FileFormat::PcapNg, frames: Vec::new(), warnings: Vec::new() };
    let mut interfaces: Vec<Interface> = Vec::new();
    while !rest.is_empty() {
        let (next, block) = match parser.next_block(rest) {
            Ok(x) => x,
            Err(e) => {
                capture.warnings.push(format!(
                    "stopped reading after frame {}: {}",
                    capture.frames.len(),
                    describe_pcap_error(&e)
                ));
                break;
            }
        };
        rest = next;
        let packet: Option<PacketRecord> = match block {
            Block::SectionHeader(_) => {
                interfaces.clear();
                None
            }
            Block::InterfaceDescription(idb) => {
                let mut iface = Interface { linktype: u32::from(idb.linktype), num: 1000, den: 1, offset_secs: 0 };
                for opt in &idb.options {
                    match opt {
                        InterfaceDescriptionOption::IfTsResol(r) => {
                            let (num, den) = tsresol_to_nanos(*r);
                            iface.num = num;
                            iface.den = den;
                        }
                        InterfaceDescriptionOption::IfTsOffset(s) => iface.offset_secs = *s,
                        _ => {}
                    }
                }
                interfaces.push(iface);
                None
            }
            // pcap-file hands the raw 64-bit count back as "nanoseconds"; the unit is the IDB's.
            Block::EnhancedPacket(epb) => Some((
                epb.interface_id,
                Some(u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX)),
                epb.original_len,
                epb.data,
            )),
            Block::SimplePacket(spb) => {
                let mut data = spb.data;
                let keep = (spb.original_len as usize).min(data.len());
                if keep < data.len() {
                    data = Cow::Owned(data[..keep].to_vec());
                }
                Some((0, None, spb.original_len, data))
            }
            Block::Packet(pb) => Some((u32::from(pb.interface_id), Some(pb.timestamp), pb.original_len, pb.data)),
            _ => None,
        };
        let Some((iface_id, units, orig_len, data)) = packet else {
            continue;
        };
        let number = capture.frames.len() + 1;
        let (linktype, timestamp) = match interfaces.get(iface_id as usize) {
            Some(iface) => (iface.linktype, units.map(|u| iface.timestamp(u)).unwrap_or_default()),
            None => {
                capture
                    .warnings
                    .push(format!("frame {number}: refers to interface {iface_id}, which the file never described"));
                (u32::MAX, Duration::ZERO)
            }
        };
        capture.frames.push(Frame { number, timestamp, linktype, orig_len, data: data.into_owned() });
    }
    Ok(capture)
}

/// Decodes pcapng's `if_tsresol`: high bit clear = 10^-n seconds, set = 2^-n seconds.
fn tsresol_to_nanos(r: u8) -> (u128, u128) {
    let exp = u32::from(r & 0x7f);
    if r & 0x80 == 0 {
        if exp <= 9 {
            (10u128.pow(9 - exp), 1)
        } else {
            (1, 10u128.pow(exp.min(30) - 9))
        }
    } else {
        (1_000_000_000, 1u128 << exp.min(100))
    }
}

/// Human name of a link type, with its LINKTYPE_ name, for the explain output.
pub(crate) fn linktype_name(linktype: u32) -> &'static str {
    match linktype {
        LINKTYPE_NULL => "BSD loopback (LINKTYPE_NULL)",
        LINKTYPE_ETHERNET => "Ethernet (LINKTYPE_ETHERNET)",
        LINKTYPE_RAW_12 | LINKTYPE_RAW_14 | LINKTYPE_RAW => "Raw IP (LINKTYPE_RAW)",
        LINKTYPE_LOOP => "OpenBSD loopback (LINKTYPE_LOOP)",
        LINKTYPE_LINUX_SLL => "Linux cooked capture v1 (LINKTYPE_LINUX_SLL)",
        LINKTYPE_IPV4 => "Raw IPv4 (LINKTYPE_IPV4)",
        LINKTYPE_LINUX_SLL2 => "Linux cooked capture v2 (LINKTYPE_LINUX_SLL2)",
        u32::MAX => "unknown (no interface description)",
        _ => "unsupported link type",
    }
}

/// Name of an EtherType, for the ones a learner will meet.
pub(crate) fn ethertype_name(ethertype: u16) -> &'static str {
    match ethertype {
        0x0800 => "IPv4",
        0x0806 => "ARP",
        0x86dd => "IPv6",
        0x8100 => "802.1Q VLAN",
        0x88a8 => "802.1ad QinQ",
        0x88cc => "LLDP",
        _ => "unknown",
    }
}

/// One field of a link-layer header, already formatted for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkField {
    /// Field name, e.g. "Destination".
    pub name: String,
    /// Field value with its meaning, e.g. "02:00:00:00:00:01".
    pub value: String,
}

/// What the link layer of one frame says, and where the network-layer packet starts.
#[derive(Debug, Clone)]
pub struct LinkLayer {
    /// Link type description, e.g. "Ethernet (LINKTYPE_ETHERNET)".
    pub name: String,
    /// The header's fields, in order; empty for Raw IP.
    pub fields: Vec<LinkField>,
    /// Length of the link-layer header in bytes.
    pub header_len: usize,
    /// `Ok(offset)` of the IPv4 packet in the frame, or `Err(why not)` when there is none.
    pub ipv4: Result<usize, String>,
}

fn mac(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

fn field(name: &str, value: String) -> LinkField {
    LinkField { name: name.to_string(), value }
}

fn ip_by_ethertype(ethertype: u16, offset: usize) -> Result<usize, String> {
    if ethertype == 0x0800 {
        Ok(offset)
    } else {
        Err(format!("carries EtherType 0x{ethertype:04x} ({}), not IPv4", ethertype_name(ethertype)))
    }
}

/// Linux `sll_pkttype`: who the packet was for, from the capturing host's point of view.
fn sll_packet_type(t: u16) -> &'static str {
    match t {
        0 => "unicast to us",
        1 => "broadcast",
        2 => "multicast",
        3 => "to another host",
        4 => "sent by us",
        _ => "unknown",
    }
}

fn arphrd_name(t: u16) -> &'static str {
    match t {
        1 => "Ethernet",
        772 => "loopback",
        65534 => "none (e.g. a TUN device)",
        776 => "IPv6-in-IPv4 tunnel",
        _ => "other",
    }
}

impl Frame {
    /// Decodes the link-layer header (never panics: short frames are described, not indexed).
    pub fn link(&self) -> LinkLayer {
        let d = &self.data;
        let name = linktype_name(self.linktype).to_string();
        let short = |need: usize| Err(format!("frame is {} bytes, shorter than the {need}-byte link header", d.len()));
        match self.linktype {
            LINKTYPE_RAW | LINKTYPE_RAW_12 | LINKTYPE_RAW_14 | LINKTYPE_IPV4 => {
                let ipv4 = match d.first().map(|b| b >> 4) {
                    Some(4) => Ok(0),
                    Some(6) => Err("is an IPv6 packet, not IPv4".to_string()),
                    Some(v) if self.linktype != LINKTYPE_IPV4 => Err(format!("starts with IP version {v}, not 4")),
                    Some(_) => Ok(0),
                    None => Err("frame is empty".to_string()),
                };
                LinkLayer { name, fields: Vec::new(), header_len: 0, ipv4 }
            }
            LINKTYPE_ETHERNET => {
                let Ok(eth) = etherparse::Ethernet2HeaderSlice::from_slice(d) else {
                    return LinkLayer { name, fields: Vec::new(), header_len: d.len(), ipv4: short(14) };
                };
                let mut fields =
                    vec![field("Destination", mac(&eth.destination())), field("Source", mac(&eth.source()))];
                let mut t = eth.ether_type().0;
                let mut len = eth.slice().len();
                // 802.1Q / QinQ tags sit between the addresses and the real EtherType.
                while t == 0x8100 || t == 0x88a8 {
                    let vlan_tag = |priority: u8, id: u16| {
                        field(
                            "VLAN tag",
                            format!("0x{t:04x} ({}), priority {priority}, VLAN ID {id}", ethertype_name(t)),
                        )
                    };
                    let Ok(vlan) = etherparse::SingleVlanHeaderSlice::from_slice(&d[len..]) else {
                        // A tag cut off after its TCI: show what was captured of it.
                        fields.extend(be16(d, len).map(|tci| vlan_tag((tci >> 13) as u8, tci & 0x0fff)));
                        return LinkLayer { name, fields, header_len: d.len(), ipv4: short(len + 4) };
                    };
                    fields.push(vlan_tag(vlan.priority_code_point().value(), vlan.vlan_identifier().value()));
                    t = vlan.ether_type().0;
                    len += vlan.slice().len();
                }
                if t <= 1500 {
                    fields.push(field("Length", format!("{t} (IEEE 802.3 frame, not Ethernet II)")));
                    return LinkLayer {
                        name,
                        fields,
                        header_len: len,
                        ipv4: Err("is an 802.3/LLC frame, not IPv4".to_string()),
                    };
                }
                fields.push(field("Type", format!("0x{t:04x} ({})", ethertype_name(t))));
                LinkLayer { name, fields, header_len: len, ipv4: ip_by_ethertype(t, len) }
            }
            // By hand: etherparse's LinuxSllHeaderSlice refuses packet types and
            // address-type/protocol pairs it does not know, and those must be shown too.
            LINKTYPE_LINUX_SLL => {
                let (Some(pkttype), Some(hatype), Some(halen), Some(proto)) =
                    (be16(d, 0), be16(d, 2), be16(d, 4), be16(d, 14))
                else {
                    return LinkLayer { name, fields: Vec::new(), header_len: d.len(), ipv4: short(16) };
                };
                let addr_len = usize::from(halen).min(8);
                let fields = vec![
                    field("Packet type", format!("{pkttype} ({})", sll_packet_type(pkttype))),
                    field("Address type", format!("{hatype} ({})", arphrd_name(hatype))),
                    field("Address length", halen.to_string()),
                    field("Source", if addr_len == 0 { "(none)".into() } else { mac(&d[6..6 + addr_len]) }),
                    field("Protocol", format!("0x{proto:04x} ({})", ethertype_name(proto))),
                ];
                LinkLayer { name, fields, header_len: 16, ipv4: ip_by_ethertype(proto, 16) }
            }
            // By hand: etherparse has no Linux cooked capture v2.
            LINKTYPE_LINUX_SLL2 => {
                let (Some(proto), Some(ifindex), Some(hatype), Some(&pkttype), Some(&halen)) =
                    (be16(d, 0), be32(d, 4), be16(d, 8), d.get(10), d.get(11))
                else {
                    return LinkLayer { name, fields: Vec::new(), header_len: d.len(), ipv4: short(20) };
                };
                if d.len() < 20 {
                    return LinkLayer { name, fields: Vec::new(), header_len: d.len(), ipv4: short(20) };
                }
                let addr_len = usize::from(halen).min(8);
                let fields = vec![
                    field("Protocol", format!("0x{proto:04x} ({})", ethertype_name(proto))),
                    field("Interface index", ifindex.to_string()),
                    field("Address type", format!("{hatype} ({})", arphrd_name(hatype))),
                    field("Packet type", format!("{pkttype} ({})", sll_packet_type(u16::from(pkttype)))),
                    field("Address length", halen.to_string()),
                    field("Source", if addr_len == 0 { "(none)".into() } else { mac(&d[12..12 + addr_len]) }),
                ];
                LinkLayer { name, fields, header_len: 20, ipv4: ip_by_ethertype(proto, 20) }
            }
            // By hand: etherparse has no BSD loopback header.
            LINKTYPE_NULL | LINKTYPE_LOOP => {
                let Some(raw) = d.get(0..4) else {
                    return LinkLayer { name, fields: Vec::new(), header_len: d.len(), ipv4: short(4) };
                };
                let raw = [raw[0], raw[1], raw[2], raw[3]];
                // LINKTYPE_NULL is in the writer's byte order: AF_INET (2) is small either way.
                let family = if self.linktype == LINKTYPE_LOOP {
                    u32::from_be_bytes(raw)
                } else {
                    let le = u32::from_le_bytes(raw);
                    if le < 0x100 {
                        le
                    } else {
                        u32::from_be_bytes(raw)
                    }
                };
                let fields = vec![field(
                    "Address family",
                    format!("{family} ({})", if family == 2 { "AF_INET, IPv4" } else { "not IPv4" }),
                )];
                let ipv4 = if family == 2 { Ok(4) } else { Err(format!("has address family {family}, not IPv4")) };
                LinkLayer { name, fields, header_len: 4, ipv4 }
            }
            other => LinkLayer {
                name,
                fields: vec![field("Link type", other.to_string())],
                header_len: 0,
                ipv4: Err(format!("uses link type {other}, which synack cannot decode")),
            },
        }
    }

    /// The IPv4 packet inside this frame, or why there is none.
    pub fn ipv4(&self) -> Result<&[u8], String> {
        let off = self.link().ipv4?;
        self.data.get(off..).ok_or_else(|| "frame ends before the IPv4 header".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_decoding() {
        assert_eq!(tsresol_to_nanos(6), (1000, 1));
        assert_eq!(tsresol_to_nanos(9), (1, 1));
        assert_eq!(tsresol_to_nanos(0x80 | 10), (1_000_000_000, 1024));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_capture(b"").is_err());
        assert!(parse_capture(b"hello world").is_err());
        let c = parse_capture(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]);
        assert!(c.is_err());
    }

    fn frame(linktype: u32, data: Vec<u8>) -> Frame {
        Frame { number: 1, timestamp: Duration::ZERO, linktype, orig_len: data.len() as u32, data }
    }

    #[test]
    fn vlan_and_loopback_headers() {
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0x20, 0x0a, 0x08, 0x00, 0x45]);
        let link = frame(LINKTYPE_ETHERNET, eth).link();
        assert_eq!(link.ipv4, Ok(18));
        assert!(link.fields.iter().any(|f| f.value.contains("VLAN ID 10")));
        // Cut off after the tag's TCI: the tag is still shown, the frame called short.
        let mut cut = vec![0u8; 12];
        cut.extend_from_slice(&[0x81, 0x00, 0x20, 0x0a]);
        let link = frame(LINKTYPE_ETHERNET, cut).link();
        assert!(link.fields.iter().any(|f| f.value.contains("priority 1, VLAN ID 10")), "{:?}", link.fields);
        assert!(link.ipv4.is_err_and(|e| e.contains("18-byte link header")));
        assert_eq!(frame(LINKTYPE_NULL, vec![2, 0, 0, 0, 0x45]).link().ipv4, Ok(4));
        assert_eq!(frame(LINKTYPE_LOOP, vec![0, 0, 0, 2, 0x45]).link().ipv4, Ok(4));
        assert!(frame(LINKTYPE_ETHERNET, {
            let mut arp = vec![0u8; 12];
            arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
            arp
        })
        .link()
        .ipv4
        .is_err());
    }

    #[test]
    fn pcapng_default_resolution_is_microseconds() {
        use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
        use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
        use pcap_file::pcapng::PcapNgWriter;
        use pcap_file::DataLink;
        let Ok(mut w) = PcapNgWriter::new(Vec::new()) else { panic!("writer") };
        let ok = w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::RAW, 0)).is_ok()
            && w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                // pcap-file writes the raw count; with no if_tsresol it means 1_500_000 µs.
                timestamp: Duration::from_nanos(1_500_000),
                original_len: 1,
                data: vec![0x45].into(),
                options: vec![],
            })
            .is_ok();
        assert!(ok);
        let Ok(cap) = parse_capture(&w.into_inner()) else { panic!("parse") };
        assert_eq!(cap.frames.len(), 1);
        assert_eq!(cap.frames[0].timestamp, Duration::from_millis(1500));
    }

    #[test]
    fn short_frames_do_not_panic() {
        for lt in [0, 1, 12, 14, 101, 108, 113, 228, 276, 9999] {
            for len in 0..24 {
                let f =
                    Frame { number: 1, timestamp: Duration::ZERO, linktype: lt, orig_len: 0, data: vec![0x45; len] };
                let _ = f.link();
                let _ = f.ipv4();
            }
        }
    }
}
