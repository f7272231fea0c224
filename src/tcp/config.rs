//! Per-connection tunables. Defaults follow the RFCs, except where a fast local link makes a
//! shorter value the sensible one (said beside each).

use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct TcpConfig {
    /// MSS we advertise: the TUN's MTU minus 40 bytes of IPv4 and TCP headers.
    pub mss: u16,
    pub recv_buf: usize,
    pub send_buf: usize,
    /// RFC 6298 §2.1: 1 s before any RTT sample.
    pub initial_rto: Duration,
    /// RFC 6298 asks for 1 s; 200 ms (as Linux uses) recovers loss on a local link quickly.
    pub min_rto: Duration,
    pub max_rto: Duration,
    /// Retransmissions of one segment before the connection gives up with `TimedOut`.
    pub max_retries: u32,
    pub syn_retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts 2×MSL. RFC 9293 says 2 minutes; Linux holds
    /// TIME-WAIT for 60 s, so MSL defaults to 30 s. Tests use milliseconds.
    pub msl: Duration,
    /// How long an orphaned connection (the application closed it) waits in FIN-WAIT-2 for
    /// the peer's FIN, like Linux's tcp_fin_timeout.
    pub fin_wait2_timeout: Duration,
    /// Offer RFC 7323 window scaling.
    pub window_scaling: bool,
    /// Offer RFC 7323 timestamps (better RTT samples, and PAWS).
    pub timestamps: bool,
    /// Offer RFC 2018 selective acknowledgements (we send SACK blocks for out-of-order data).
    pub sack: bool,
    /// Delayed ACK (RFC 1122 §4.2.3.2, RFC 5681 §4.2): acknowledge every second full segment,
    /// or after this long. Zero acknowledges every segment at once.
    pub delayed_ack: Duration,
    /// Nagle's algorithm (RFC 896): hold a small segment while data is unacknowledged.
    pub nagle: bool,
    /// Early loss detection before the retransmission timer: RACK-style on SACKed holes and
    /// tail loss probes (RFC 8985).
    pub early_retransmit: bool,
    /// The most TCP payload one segment handed to the device may carry. 0 (the default): one
    /// MSS. A device with TCP segmentation offload (a TUN with a vnet header) takes up to
    /// 64 KiB and cuts it into MSS-sized segments itself; the runtime sets this then, so the
    /// core stays device-agnostic and testable.
    pub tso_max: u32,
    /// Congestion control: NewReno (the default) or BBR-style.
    pub congestion: super::congestion::Algorithm,
    /// RFC 793's original RST and SYN handling instead of RFC 5961's (off by default, as in
    /// FreeBSD's `insecure_rst`/`insecure_syn`): a RST anywhere in the window resets the
    /// connection, and a SYN in the window of a synchronized connection is answered with a
    /// RST and resets it, where RFC 5961 §3 and §4 send a challenge ACK. Blind attackers
    /// then need to guess only a window, not an exact sequence number; this exists so both
    /// behaviours can be seen side by side.
    pub rfc793_rst_syn: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            recv_buf: 4 << 20,
            send_buf: 4 << 20,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            max_retries: 12,
            syn_retries: 6,
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            window_scaling: true,
            timestamps: true,
            sack: true,
            delayed_ack: Duration::from_millis(40),
            nagle: true,
            early_retransmit: true,
            tso_max: 0,
            congestion: super::congestion::Algorithm::NewReno,
            rfc793_rst_syn: false,
        }
    }
}

/// The largest TCP payload in one IPv4 packet: a 16-bit total length less the IPv4 header
/// and the largest TCP header.
pub(crate) const MAX_TSO_PAYLOAD: u32 = 65_535 - 20 - 60;

impl TcpConfig {
    /// The smallest shift that lets the receive buffer be advertised in 16 bits.
    pub fn window_shift(&self) -> u8 {
        let mut shift = 0u8;
        while (self.recv_buf >> shift) > 65535 && shift < 14 {
            shift += 1;
        }
        shift
    }
}
