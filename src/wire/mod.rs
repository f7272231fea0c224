//! Wire formats: parse and build IPv4, TCP, UDP's header and ICMP (echo, unreachable). Pure functions on byte slices;
//! nothing here knows about connections.
//!
//! The one header layer of synack: the stack parses strictly here (etherparse's
//! `Ipv4HeaderSlice` and `TcpSlice` slice the headers without copying; the checksums, which
//! etherparse leaves to the caller, and the option walk are [`checksum`] and
//! `tcp_options`), and `analyze/` reads captures tolerantly with the same checksum, option
//! walker, flag names and [`SeqNum`], adding only what it finds wrong.

pub(crate) mod addr;
pub mod checksum;
pub(crate) mod icmp;
pub mod ipv4;
pub(crate) mod packet;
pub(crate) mod seq;
pub mod tcp;
pub(crate) mod tcp_options;
pub(crate) mod udp;

pub use addr::Quad;
pub use packet::{parse_packet, Packet};
pub use seq::SeqNum;
pub use tcp::{TcpFlags, TcpHeaderOut, TcpOptions, TcpSegment};

use std::fmt;

/// Why an incoming packet was dropped. Every drop is counted under one of these, so a learner
/// (and `synack serve`'s exit summary) can see what was thrown away and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    Truncated,
    NotIpv4,
    BadIpHeader,
    BadIpChecksum,
    Fragment,
    NotForUs,
    /// A source no host may use (RFC 1122 §3.2.1.3, RFC 6890): 0/8, 127/8, 224/4 (multicast)
    /// and 240/4 (reserved, with the limited broadcast).
    Martian,
    UnsupportedProtocol,
    BadIcmp,
    BadTcpHeader,
    BadTcpChecksum,
    BadTcpOptions,
    /// Failed the RFC 9293 acceptability test (answered with an ACK).
    OutsideWindow,
    /// An ACK for data never sent.
    AckOfUnsent,
    /// A listener's SYN backlog was full.
    BacklogFull,
    /// A segment for a connection that has already closed (its last ACK or RST is on the
    /// way out; RFC 9293 says CLOSED discards everything).
    AfterClose,
    /// A RST for a listening port: there is no connection to reset (RFC 9293 §3.10.7.2).
    RstInListen,
    /// A segment for a listening port with none of SYN, ACK or RST (RFC 9293 §3.10.7.2).
    NoSynInListen,
    /// While our SYN is out (SYN-SENT), a RST that acknowledges nothing (RFC 9293 §3.10.7.3).
    RstWithoutAckInSynSent,
    /// While our SYN is out (SYN-SENT), a segment without a SYN (RFC 9293 §3.10.7.3).
    NoSynInSynSent,
    /// A SYN on a synchronized connection: answered with a challenge ACK (RFC 5961 §4).
    SynOnOpenConnection,
    /// A segment without the ACK flag on a synchronized connection (RFC 9293 §3.10.7.4).
    NoAckFlag,
    /// PAWS: an old duplicate, by its timestamp (RFC 7323 §5).
    StaleTimestamp,
    /// IPv4 source routing (LSRR/SSRR): a classic spoofing aid, dropped as RFC 7126 advises.
    SourceRoute,
    /// A new connection beyond `max_connections`, with no idle one to reclaim.
    ConnectionLimit,
    /// A new connection from a source at `max_per_source`, with no idle one of its own to reclaim.
    SourceLimit,
    /// A new connection, or out-of-order data, while buffers hold more than the memory budget.
    MemoryLimit,
    /// A SYN for a listener whose accept queue is full.
    AcceptQueueFull,
    /// An ACK for a listener whose SYN cookie does not check out while cookies are in use:
    /// dropped, not reset (a client whose cookie-carrying ACK was lost sends it again).
    SynCookieMismatch,
    /// The source is our own address: a LAND packet (RFC 1122 §3.2.1.3).
    SourceIsUs,
    /// The source is the directed broadcast (or network) address of our prefix.
    SourceBroadcast,
    /// SYN and FIN together: no real stack sends it; Linux and FreeBSD drop it.
    SynFin,
    /// UDP to a port nothing listens on (every port: synack serves no UDP); answered with
    /// an ICMP port unreachable within the rate limit.
    UdpNoListener,
    /// A UDP datagram with a bad length or checksum.
    BadUdp,
    /// ICMP other than an echo request: nothing here acts on it.
    IcmpIgnored,
}

impl DropReason {
    pub const ALL: [DropReason; 35] = [
        DropReason::Truncated,
        DropReason::NotIpv4,
        DropReason::BadIpHeader,
        DropReason::BadIpChecksum,
        DropReason::Fragment,
        DropReason::NotForUs,
        DropReason::Martian,
        DropReason::UnsupportedProtocol,
        DropReason::BadIcmp,
        DropReason::BadTcpHeader,
        DropReason::BadTcpChecksum,
        DropReason::BadTcpOptions,
        DropReason::OutsideWindow,
        DropReason::AckOfUnsent,
        DropReason::BacklogFull,
        DropReason::AfterClose,
        DropReason::RstInListen,
        DropReason::NoSynInListen,
        DropReason::RstWithoutAckInSynSent,
        DropReason::NoSynInSynSent,
        DropReason::SynOnOpenConnection,
        DropReason::NoAckFlag,
        DropReason::StaleTimestamp,
        DropReason::SourceRoute,
        DropReason::ConnectionLimit,
        DropReason::SourceLimit,
        DropReason::MemoryLimit,
        DropReason::AcceptQueueFull,
        DropReason::SynCookieMismatch,
        DropReason::SourceIsUs,
        DropReason::SourceBroadcast,
        DropReason::SynFin,
        DropReason::UdpNoListener,
        DropReason::BadUdp,
        DropReason::IcmpIgnored,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NotIpv4 => "not-ipv4",
            DropReason::BadIpHeader => "bad-ip-header",
            DropReason::BadIpChecksum => "bad-ip-checksum",
            DropReason::Fragment => "fragment",
            DropReason::NotForUs => "not-for-us",
            DropReason::Martian => "martian-source",
            DropReason::UnsupportedProtocol => "unsupported-protocol",
            DropReason::BadIcmp => "bad-icmp",
            DropReason::BadTcpHeader => "bad-tcp-header",
            DropReason::BadTcpChecksum => "bad-tcp-checksum",
            DropReason::BadTcpOptions => "bad-tcp-options",
            DropReason::OutsideWindow => "outside-window",
            DropReason::AckOfUnsent => "ack-of-unsent",
            DropReason::BacklogFull => "backlog-full",
            DropReason::AfterClose => "after-close",
            DropReason::RstInListen => "rst-in-listen",
            DropReason::NoSynInListen => "no-syn-in-listen",
            DropReason::RstWithoutAckInSynSent => "rst-without-ack-in-syn-sent",
            DropReason::NoSynInSynSent => "no-syn-in-syn-sent",
            DropReason::SynOnOpenConnection => "syn-on-open-connection",
            DropReason::NoAckFlag => "no-ack-flag",
            DropReason::StaleTimestamp => "stale-timestamp",
            DropReason::SourceRoute => "ip-source-route",
            DropReason::ConnectionLimit => "connection-limit",
            DropReason::SourceLimit => "source-limit",
            DropReason::MemoryLimit => "memory-limit",
            DropReason::AcceptQueueFull => "accept-queue-full",
            DropReason::SynCookieMismatch => "syn-cookie-mismatch",
            DropReason::SourceIsUs => "source-is-us",
            DropReason::SourceBroadcast => "source-broadcast",
            DropReason::SynFin => "syn-fin",
            DropReason::UdpNoListener => "udp-no-listener",
            DropReason::BadUdp => "bad-udp",
            DropReason::IcmpIgnored => "icmp-ignored",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
