//! getsockopt and setsockopt: SO_ERROR, SO_REUSEADDR, SO_LINGER, SO_RCVBUF, SO_SNDBUF,
//! TCP_NODELAY, TCP_MAXSEG and TCP_INFO in Linux's `struct tcp_info` layout (packetdrill's
//! Python blocks read `tcpi_state` from it, in Linux's numbering of the states).

use synack::tcp::{Connection, State};

use crate::sockets::{take_error, Kind};
use crate::world::{Shared, SysResult};

/// SO_MEMINFO (Linux), which packetdrill asks for beside TCP_INFO before a Python block.
const SO_MEMINFO: i32 = 55;
const SK_MEMINFO_VARS: usize = 9;
/// TCP_CC_INFO: no congestion-control details here; an empty answer is what Linux gives
/// for an algorithm without any.
const TCP_CC_INFO: i32 = 26;

/// Linux's `struct tcp_info` (include/uapi/linux/tcp.h), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpInfo {
    pub tcpi_state: u8,
    pub tcpi_ca_state: u8,
    pub tcpi_retransmits: u8,
    pub tcpi_probes: u8,
    pub tcpi_backoff: u8,
    pub tcpi_options: u8,
    /// snd_wscale in the low four bits, rcv_wscale in the high four.
    pub tcpi_wscale: u8,
    pub tcpi_app_limited_flags: u8,
    pub tcpi_rto: u32,
    pub tcpi_ato: u32,
    pub tcpi_snd_mss: u32,
    pub tcpi_rcv_mss: u32,
    pub tcpi_unacked: u32,
    pub tcpi_sacked: u32,
    pub tcpi_lost: u32,
    pub tcpi_retrans: u32,
    pub tcpi_fackets: u32,
    pub tcpi_last_data_sent: u32,
    pub tcpi_last_ack_sent: u32,
    pub tcpi_last_data_recv: u32,
    pub tcpi_last_ack_recv: u32,
    pub tcpi_pmtu: u32,
    pub tcpi_rcv_ssthresh: u32,
    pub tcpi_rtt: u32,
    pub tcpi_rttvar: u32,
    pub tcpi_snd_ssthresh: u32,
    pub tcpi_snd_cwnd: u32,
    pub tcpi_advmss: u32,
    pub tcpi_reordering: u32,
    pub tcpi_rcv_rtt: u32,
    pub tcpi_rcv_space: u32,
    pub tcpi_total_retrans: u32,
    pub tcpi_pacing_rate: u64,
    pub tcpi_max_pacing_rate: u64,
    pub tcpi_bytes_acked: u64,
    pub tcpi_bytes_received: u64,
    pub tcpi_segs_out: u32,
    pub tcpi_segs_in: u32,
    pub tcpi_notsent_bytes: u32,
    pub tcpi_min_rtt: u32,
    pub tcpi_data_segs_in: u32,
    pub tcpi_data_segs_out: u32,
    pub tcpi_delivery_rate: u64,
    pub tcpi_busy_time: u64,
    pub tcpi_rwnd_limited: u64,
    pub tcpi_sndbuf_limited: u64,
    pub tcpi_delivered: u32,
    pub tcpi_delivered_ce: u32,
    pub tcpi_bytes_sent: u64,
    pub tcpi_bytes_retrans: u64,
    pub tcpi_dsack_dups: u32,
    pub tcpi_reord_seen: u32,
    pub tcpi_rcv_ooopack: u32,
    pub tcpi_snd_wnd: u32,
    pub tcpi_rcv_wnd: u32,
    pub tcpi_rehash: u32,
    pub tcpi_total_rto: u16,
    pub tcpi_total_rto_recoveries: u16,
    pub tcpi_total_rto_time: u32,
}

/// Linux's numbering of the states (include/net/tcp_states.h).
pub fn linux_state(s: State) -> u8 {
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Closing => 11,
    }
}
const TCP_LISTEN: u8 = 10;

fn conn_info(c: &Connection) -> TcpInfo {
    let ctx = c.trace_context();
    let (unread, unacked) = c.buffered();
    let mut i = TcpInfo {
        tcpi_state: linux_state(c.state()),
        tcpi_retransmits: 0,
        tcpi_wscale: (ctx.peer_shift & 0xf) | (ctx.our_shift << 4),
        tcpi_rto: c.rto().as_micros() as u32,
        tcpi_snd_mss: c.snd_mss(),
        tcpi_rcv_mss: c.snd_mss(),
        tcpi_snd_cwnd: c.cwnd() / c.snd_mss().max(1),
        tcpi_advmss: c.snd_mss(),
        tcpi_total_retrans: c.stats.retransmits as u32,
        tcpi_bytes_acked: c.stats.bytes_out,
        tcpi_bytes_received: c.stats.bytes_in,
        tcpi_segs_out: c.stats.segs_out as u32,
        tcpi_segs_in: c.stats.segs_in as u32,
        tcpi_notsent_bytes: unacked as u32,
        tcpi_snd_wnd: c.peer_window(),
        tcpi_rcv_space: unread as u32,
        ..Default::default()
    };
    if let Some(srtt) = c.srtt() {
        i.tcpi_rtt = srtt.as_micros() as u32;
    }
    i
}

/// Write an int option value the way the kernel does: as many bytes as asked, up to 4.
unsafe fn put_bytes(optval: *mut u8, optlen: *mut u32, bytes: &[u8]) {
    let n = (*optlen as usize).min(bytes.len());
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), optval, n);
    *optlen = n as u32;
}

/// # Safety
/// `optval` must be writable for `*optlen` bytes, and `optlen` valid.
pub unsafe fn getsockopt(
    shared: &Shared,
    fd: i32,
    level: i32,
    name: i32,
    optval: *mut u8,
    optlen: *mut u32,
) -> SysResult<i32> {
    if optval.is_null() || optlen.is_null() {
        return Err(libc::EFAULT);
    }
    let mut w = shared.lock();
    let s = w.socks.get(&fd).ok_or(libc::EBADF)?;
    let opts = s.opts;
    let conn = match s.kind {
        Kind::Conn { id, .. } => Some(id),
        _ => None,
    };
    let listening = matches!(s.kind, Kind::Listener { .. });
    let int = |v: i32| v.to_ne_bytes();
    let value: Vec<u8> = match (level, name) {
        (libc::SOL_SOCKET, libc::SO_ERROR) => int(take_error(&mut w, fd).unwrap_or(0)).to_vec(),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => int(opts.reuseaddr as i32).to_vec(),
        (libc::SOL_SOCKET, libc::SO_TYPE) => int(libc::SOCK_STREAM).to_vec(),
        (libc::SOL_SOCKET, libc::SO_RCVBUF) => {
            int(opts.rcvbuf.unwrap_or(w.host.config().tcp.recv_buf).min(i32::MAX as usize) as i32).to_vec()
        }
        (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
            int(opts.sndbuf.unwrap_or(w.host.config().tcp.send_buf).min(i32::MAX as usize) as i32).to_vec()
        }
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            let l = libc::linger { l_onoff: opts.linger.is_some() as i32, l_linger: opts.linger.unwrap_or(0) };
            [l.l_onoff.to_ne_bytes(), l.l_linger.to_ne_bytes()].concat()
        }
        (libc::SOL_SOCKET, SO_MEMINFO) => vec![0; 4 * SK_MEMINFO_VARS],
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => int(opts.nodelay as i32).to_vec(),
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => {
            let mss = conn.and_then(|id| w.host.conn(id)).map_or(u32::from(w.host.config().tcp.mss), |c| c.snd_mss());
            int(mss as i32).to_vec()
        }
        (libc::IPPROTO_TCP, TCP_CC_INFO) => Vec::new(),
        (libc::IPPROTO_TCP, libc::TCP_INFO) => {
            let info = match conn.and_then(|id| w.host.conn(id)) {
                Some(c) => conn_info(c),
                None if listening => TcpInfo { tcpi_state: TCP_LISTEN, ..Default::default() },
                None => TcpInfo { tcpi_state: linux_state(State::Closed), ..Default::default() },
            };
            // SAFETY: TcpInfo is plain old data without padding holes read as values.
            let p = &info as *const TcpInfo as *const u8;
            let mut v = std::slice::from_raw_parts(p, std::mem::size_of::<TcpInfo>()).to_vec();
            // Fields newer than ours (packetdrill's copy of the struct grows with Linux's)
            // read as zero rather than as a short answer.
            v.resize(v.len().max((*optlen as usize).min(1024)), 0);
            v
        }
        _ => return Err(libc::EOPNOTSUPP),
    };
    put_bytes(optval, optlen, &value);
    Ok(0)
}

/// # Safety
/// `optval` must be readable for `optlen` bytes.
pub unsafe fn setsockopt(
    shared: &Shared,
    fd: i32,
    level: i32,
    name: i32,
    optval: *const u8,
    optlen: u32,
) -> SysResult<i32> {
    if optval.is_null() {
        return Err(libc::EFAULT);
    }
    let bytes = std::slice::from_raw_parts(optval, optlen as usize);
    let int = || -> SysResult<i32> {
        let b: [u8; 4] = bytes.get(..4).and_then(|b| b.try_into().ok()).ok_or(libc::EINVAL)?;
        Ok(i32::from_ne_bytes(b))
    };
    let mut w = shared.lock();
    let now = w.now();
    let s = w.socks.get_mut(&fd).ok_or(libc::EBADF)?;
    let conn = match s.kind {
        Kind::Conn { id, .. } => Some(id),
        _ => None,
    };
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => s.opts.reuseaddr = int()? != 0,
        (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF) => {
            let v = int()?;
            if v <= 0 {
                return Err(libc::EINVAL);
            }
            if conn.is_some() {
                // synack sizes a connection's buffers when it opens.
                return Err(libc::EOPNOTSUPP);
            }
            if name == libc::SO_RCVBUF {
                s.opts.rcvbuf = Some(v as usize);
            } else {
                s.opts.sndbuf = Some(v as usize);
            }
        }
        (libc::SOL_SOCKET, libc::SO_LINGER) => {
            let b: [u8; 8] = bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or(libc::EINVAL)?;
            let on = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            let secs = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
            s.opts.linger = (on != 0).then_some(secs.max(0));
        }
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => {
            let on = int()? != 0;
            s.opts.nodelay = on;
            if let Some(id) = conn {
                w.host.with_conn(now, id, |c| c.set_nodelay(on));
            }
        }
        _ => return Err(libc::EOPNOTSUPP),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_info_has_linux_layout() {
        // Offsets and size of Linux 6.x's struct tcp_info up to tcpi_total_rto_time.
        assert_eq!(std::mem::offset_of!(TcpInfo, tcpi_rto), 8);
        assert_eq!(std::mem::offset_of!(TcpInfo, tcpi_total_retrans), 100);
        assert_eq!(std::mem::offset_of!(TcpInfo, tcpi_pacing_rate), 104);
        assert_eq!(std::mem::offset_of!(TcpInfo, tcpi_delivery_rate), 160);
        assert_eq!(std::mem::offset_of!(TcpInfo, tcpi_snd_wnd), 228);
        assert_eq!(std::mem::size_of::<TcpInfo>(), 248);
    }

    #[test]
    fn states_use_linux_numbers() {
        assert_eq!(linux_state(State::Established), 1);
        assert_eq!(linux_state(State::Closing), 11);
        assert_eq!(linux_state(State::CloseWait), 8);
    }
}
