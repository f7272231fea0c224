//! The host's configuration: its address and its limits, with the defaults `synack serve`
//! starts from.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::tcp::TcpConfig;

/// The host's address and its limits. Each limit, when hit, is counted, traced, and has a
/// defined answer (a dropped SYN, a SYN cookie, the oldest TIME-WAIT forgotten); none lets
/// memory grow without bound.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub addr: Ipv4Addr,
    /// The prefix length of the link `addr` is on: packets from its directed broadcast
    /// address are dropped (RFC 1122 §3.2.1.3).
    pub prefix_len: u8,
    /// Drop a SYN+FIN that would open a connection (in LISTEN or SYN-SENT, or with none),
    /// as Linux does and FreeBSD's `net.inet.tcp.drop_synfin`; off, it is taken as a SYN
    /// (RFC 9293 leaves the combination legal).
    pub drop_syn_fin: bool,
    pub tcp: TcpConfig,
    /// Half-open connections (SYN-RECEIVED) a listener may hold; beyond it SYNs get a SYN
    /// cookie instead of state (or are dropped with `syn_cookies` off).
    pub backlog: usize,
    /// Established connections a listener may hold before the application accepts them;
    /// beyond it SYNs are dropped (the client retries).
    pub accept_queue: usize,
    pub syn_cookies: bool,
    /// Connections in any state, TIME-WAIT included. At the limit a SYN for a listener gets
    /// a SYN cookie instead of state, and a connection completed from a cookie takes the
    /// place of the one idle longest (see `reclaim_idle`); with none to take, it is refused.
    pub max_connections: usize,
    /// Connections from one source address, TIME-WAIT not included (`max_time_wait` bounds
    /// those); at the limit that source's next connection takes the place of its own
    /// connection idle longest, as at `max_connections`.
    pub max_per_source: usize,
    /// A connection whose peer has been silent this long may be reclaimed for a new one
    /// when a limit above is reached; busier ones never are.
    pub reclaim_idle: Duration,
    /// Connections in TIME-WAIT; beyond it the oldest is forgotten early.
    pub max_time_wait: usize,
    /// Bytes all connections may hold in their buffers; beyond it no new connection is
    /// made and no out-of-order data is kept. Each connection is bounded by its own buffer
    /// sizes as well, so the worst case is max_connections × (recv_buf + send_buf).
    pub memory_budget: usize,
    /// RFC 5961 §7: challenge ACKs sent per second, across all connections.
    pub challenge_acks_per_sec: u32,
    /// ICMP errors (destination unreachables) sent per second, and how many may go at once
    /// after a quiet spell: a token bucket, as Linux's icmp_msgs_per_sec and icmp_msgs_burst.
    pub icmp_errors_per_sec: u32,
    pub icmp_error_burst: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            addr: Ipv4Addr::new(10, 7, 0, 2),
            prefix_len: 24,
            drop_syn_fin: true,
            tcp: TcpConfig::default(),
            backlog: 256,
            accept_queue: 128,
            syn_cookies: true,
            max_connections: 16384,
            max_per_source: 4096,
            reclaim_idle: Duration::from_secs(1),
            max_time_wait: 4096,
            memory_budget: 1 << 30,
            challenge_acks_per_sec: 1000,
            icmp_errors_per_sec: 1000,
            icmp_error_burst: 50,
        }
    }
}
