//! The socket calls a script makes, as Linux answers them, on top of synack's host: a table
//! of descriptors, each a fresh socket, a listener or a connection. Errors are errno values;
//! an unsupported call or option is `EOPNOTSUPP`.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4};

use synack::stack::ConnId;
use synack::tcp::{Connection, State, TcpConfig};

use crate::world::{Shared, SysResult, World};

/// Options set on a socket; a listener's are inherited by the connections it accepts.
#[derive(Clone, Copy, Debug, Default)]
pub struct SockOpts {
    pub reuseaddr: bool,
    pub nodelay: bool,
    /// SO_LINGER's l_linger when l_onoff is set.
    pub linger: Option<i32>,
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
}

pub enum Kind {
    Fresh {
        bound: Option<SocketAddrV4>,
    },
    /// `ready`: connections taken from the host's accept queue by `poll`, not yet accepted.
    Listener {
        port: u16,
        ready: VecDeque<ConnId>,
    },
    /// `connecting`: a connect is in progress, or done and not yet reported by `connect`.
    Conn {
        id: ConnId,
        connecting: bool,
    },
}

pub struct Socket {
    pub kind: Kind,
    pub nonblock: bool,
    pub opts: SockOpts,
    /// The connection's error was returned once (by a call or SO_ERROR); as on Linux, later
    /// reads see end of file and later writes EPIPE.
    pub err_reported: bool,
    pub rd_shut: bool,
}

impl Socket {
    fn new(kind: Kind, opts: SockOpts) -> Socket {
        Socket { kind, nonblock: false, opts, err_reported: false, rd_shut: false }
    }
}

pub fn errno_of(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::ConnectionReset => libc::ECONNRESET,
        ErrorKind::ConnectionRefused => libc::ECONNREFUSED,
        ErrorKind::ConnectionAborted => libc::ECONNABORTED,
        ErrorKind::TimedOut => libc::ETIMEDOUT,
        ErrorKind::NotConnected => libc::ENOTCONN,
        ErrorKind::BrokenPipe => libc::EPIPE,
        ErrorKind::WouldBlock => libc::EAGAIN,
        ErrorKind::AddrInUse => libc::EADDRINUSE,
        ErrorKind::AddrNotAvailable => libc::EADDRNOTAVAIL,
        _ => libc::EIO,
    }
}

/// The connection configuration a socket's options ask for.
pub fn tcp_for(base: TcpConfig, o: &SockOpts) -> TcpConfig {
    let mut tcp = base;
    if let Some(n) = o.rcvbuf {
        tcp.recv_buf = n;
    }
    if let Some(n) = o.sndbuf {
        tcp.send_buf = n;
    }
    tcp.nagle = tcp.nagle && !o.nodelay;
    tcp
}

fn sock(w: &World, fd: i32) -> SysResult<&Socket> {
    w.socks.get(&fd).ok_or(libc::EBADF)
}

fn sock_mut(w: &mut World, fd: i32) -> SysResult<&mut Socket> {
    w.socks.get_mut(&fd).ok_or(libc::EBADF)
}

fn conn_id(w: &World, fd: i32) -> SysResult<ConnId> {
    match sock(w, fd)?.kind {
        Kind::Conn { id, .. } => Ok(id),
        _ => Err(libc::ENOTCONN),
    }
}

/// The peer of a connected socket.
pub fn peer(shared: &Shared, fd: i32) -> Option<SocketAddrV4> {
    let w = shared.lock();
    let id = conn_id(&w, fd).ok()?;
    w.host.conn(id).map(|c| c.remote)
}

/// The connection's error, once: the first caller to look gets it.
pub fn take_error(w: &mut World, fd: i32) -> Option<i32> {
    let id = conn_id(w, fd).ok()?;
    let kind = w.host.conn(id)?.error()?;
    let s = w.socks.get_mut(&fd)?;
    if s.err_reported {
        return None;
    }
    s.err_reported = true;
    Some(errno_of(kind))
}

pub fn socket(shared: &Shared, domain: i32, ty: i32, protocol: i32) -> SysResult<i32> {
    let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    if domain != libc::AF_INET || base != libc::SOCK_STREAM || !(protocol == 0 || protocol == libc::IPPROTO_TCP) {
        return Err(libc::EOPNOTSUPP);
    }
    let mut w = shared.lock();
    let mut s = Socket::new(Kind::Fresh { bound: None }, SockOpts::default());
    s.nonblock = ty & libc::SOCK_NONBLOCK != 0;
    Ok(w.alloc_fd(s))
}

pub fn bind(shared: &Shared, fd: i32, addr: SocketAddrV4) -> SysResult<i32> {
    let mut w = shared.lock();
    let ours = w.host.addr();
    if !(addr.ip() == &ours || addr.ip().is_unspecified()) {
        return Err(libc::EADDRNOTAVAIL);
    }
    if addr.port() == 0 {
        // An ephemeral port on bind: scripts bind to a known port; say so rather than guess.
        return Err(libc::EOPNOTSUPP);
    }
    if w.host.is_listening(addr.port()) {
        return Err(libc::EADDRINUSE);
    }
    let s = sock_mut(&mut w, fd)?;
    match &mut s.kind {
        Kind::Fresh { bound: b @ None } => {
            *b = Some(SocketAddrV4::new(ours, addr.port()));
            Ok(0)
        }
        _ => Err(libc::EINVAL),
    }
}

pub fn listen(shared: &Shared, fd: i32, backlog: i32) -> SysResult<i32> {
    let mut w = shared.lock();
    let base = w.host.config().tcp;
    let s = sock(&w, fd)?;
    let (port, tcp) = match s.kind {
        Kind::Listener { .. } => return Ok(0),
        Kind::Fresh { bound: Some(a) } => (a.port(), tcp_for(base, &s.opts)),
        // Linux would bind an ephemeral port; scripts always bind first.
        Kind::Fresh { bound: None } => return Err(libc::EOPNOTSUPP),
        Kind::Conn { .. } => return Err(libc::EINVAL),
    };
    w.host.listen_with(port, Some(backlog.max(0) as usize), tcp).map_err(|e| errno_of(e.kind()))?;
    sock_mut(&mut w, fd)?.kind = Kind::Listener { port, ready: VecDeque::new() };
    Ok(0)
}

/// Move the host's accepted connections into the listener's own queue.
fn collect_ready(w: &mut World, fd: i32) -> SysResult<usize> {
    let Kind::Listener { port, .. } = sock(w, fd)?.kind else { return Err(libc::EINVAL) };
    while let Some(id) = w.host.accept(port) {
        if let Kind::Listener { ready, .. } = &mut sock_mut(w, fd)?.kind {
            ready.push_back(id);
        }
    }
    match &sock(w, fd)?.kind {
        Kind::Listener { ready, .. } => Ok(ready.len()),
        _ => Err(libc::EINVAL),
    }
}

pub fn accept(shared: &Shared, fd: i32) -> SysResult<(i32, SocketAddrV4)> {
    let w = shared.lock();
    let s = sock(&w, fd)?;
    if !matches!(s.kind, Kind::Listener { .. }) {
        return Err(libc::EINVAL);
    }
    let nonblock = s.nonblock;
    shared.block(w, None, |w, _| {
        if let Err(e) = collect_ready(w, fd) {
            return Some(Err(e));
        }
        let s = w.socks.get_mut(&fd)?;
        let opts = s.opts;
        let next = match &mut s.kind {
            Kind::Listener { ready, .. } => ready.pop_front(),
            _ => None,
        };
        let Some(id) = next else {
            return nonblock.then_some(Err(libc::EAGAIN));
        };
        let remote = w.host.conn(id).map(|c| c.remote).unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let fd = w.alloc_fd(Socket::new(Kind::Conn { id, connecting: false }, opts));
        Some(Ok((fd, remote)))
    })
}

/// A connect in progress: done, failed, or still going (`None`).
fn connect_progress(w: &mut World, fd: i32, id: ConnId) -> Option<SysResult<i32>> {
    let (state, error) = match w.host.conn(id) {
        Some(c) => (c.state(), c.error()),
        None => (State::Closed, None),
    };
    if let Some(e) = take_error(w, fd) {
        return Some(Err(e));
    }
    if error.is_some() {
        // Reported already (SO_ERROR): the socket is simply not connected.
        return Some(Err(libc::ECONNABORTED));
    }
    if state.is_synchronized() || state == State::Closed {
        if let Ok(Socket { kind: Kind::Conn { connecting, .. }, .. }) = sock_mut(w, fd) {
            *connecting = false;
        }
        return Some(if state == State::Closed { Err(libc::ECONNREFUSED) } else { Ok(0) });
    }
    None
}

pub fn connect(shared: &Shared, fd: i32, remote: SocketAddrV4) -> SysResult<i32> {
    let mut w = shared.lock();
    let base = w.host.config().tcp;
    let s = sock(&w, fd)?;
    let nonblock = s.nonblock;
    let id = match s.kind {
        Kind::Fresh { bound: Some(a) } if a.port() != 0 => {
            // synack picks the local port of an active open itself.
            return Err(libc::EOPNOTSUPP);
        }
        Kind::Fresh { .. } => {
            let tcp = tcp_for(base, &s.opts);
            let now = w.now();
            let id = w.host.connect_with(now, remote, tcp).map_err(|e| errno_of(e.kind()))?;
            sock_mut(&mut w, fd)?.kind = Kind::Conn { id, connecting: true };
            shared.changed(&mut w);
            if nonblock {
                return Err(libc::EINPROGRESS);
            }
            id
        }
        Kind::Conn { connecting: false, .. } => return Err(libc::EISCONN),
        Kind::Conn { id, connecting: true } => {
            if nonblock {
                return connect_progress(&mut w, fd, id).unwrap_or(Err(libc::EALREADY));
            }
            id
        }
        Kind::Listener { .. } => return Err(libc::EINVAL),
    };
    shared.block(w, None, |w, _| connect_progress(w, fd, id))
}

/// MSG_PEEK / MSG_DONTWAIT and the socket's O_NONBLOCK, for one read.
pub fn read(shared: &Shared, fd: i32, buf: &mut [u8], flags: i32) -> SysResult<usize> {
    let w = shared.lock();
    let s = sock(&w, fd)?;
    let id = match s.kind {
        Kind::Conn { id, .. } => id,
        _ => return Err(libc::ENOTCONN),
    };
    let nonblock = s.nonblock || flags & libc::MSG_DONTWAIT != 0;
    let peek = flags & libc::MSG_PEEK != 0;
    shared.block(w, None, |w, _| {
        if sock(w, fd).ok()?.rd_shut {
            return Some(Ok(0));
        }
        let now = w.now();
        let r = w.host.with_conn(now, id, |c: &mut Connection| if peek { c.peek(buf) } else { c.recv(buf) });
        match r {
            None => Some(Ok(0)),
            Some(Ok(n)) => Some(Ok(n)),
            Some(Err(e)) if e.kind() == ErrorKind::WouldBlock => nonblock.then_some(Err(libc::EAGAIN)),
            Some(Err(e)) => match take_error(w, fd) {
                Some(errno) => Some(Err(errno)),
                // The error was reported before: end of file from now on.
                None if w.host.conn(id).and_then(|c| c.error()).is_some() => Some(Ok(0)),
                None => Some(Err(errno_of(e.kind()))),
            },
        }
    })
}

pub fn write(shared: &Shared, fd: i32, data: &[u8], flags: i32) -> SysResult<usize> {
    let w = shared.lock();
    let s = sock(&w, fd)?;
    let id = match s.kind {
        Kind::Conn { id, .. } => id,
        _ => return Err(libc::ENOTCONN),
    };
    let nonblock = s.nonblock || flags & libc::MSG_DONTWAIT != 0;
    let mut done = 0usize;
    shared.block(w, None, |w, _| {
        let now = w.now();
        let r = w.host.with_conn(now, id, |c: &mut Connection| c.send(&data[done..]));
        match r {
            None => Some(Err(libc::EPIPE)),
            Some(Ok(n)) => {
                done += n;
                (done == data.len() || nonblock).then_some(Ok(done))
            }
            Some(Err(e)) if e.kind() == ErrorKind::WouldBlock => {
                if !nonblock {
                    None
                } else if done == 0 {
                    Some(Err(libc::EAGAIN))
                } else {
                    Some(Ok(done))
                }
            }
            Some(Err(_)) if done > 0 => Some(Ok(done)),
            Some(Err(e)) => match take_error(w, fd) {
                Some(errno) => Some(Err(errno)),
                None if w.host.conn(id).and_then(|c| c.error()).is_some() => Some(Err(libc::EPIPE)),
                None => Some(Err(errno_of(e.kind()))),
            },
        }
    })
}

pub fn close(shared: &Shared, fd: i32) -> SysResult<i32> {
    let mut w = shared.lock();
    let s = w.socks.remove(&fd).ok_or(libc::EBADF)?;
    let now = w.now();
    match s.kind {
        Kind::Fresh { .. } => {}
        Kind::Listener { port, ready } => {
            w.host.unlisten(now, port);
            for id in ready {
                w.host.with_conn(now, id, |c| c.abort(now, ErrorKind::ConnectionAborted));
                w.host.release(now, id);
            }
        }
        Kind::Conn { id, .. } => {
            if s.opts.linger == Some(0) {
                // SO_LINGER with a zero timeout: abort with a RST (RFC 9293 §3.10.5 ABORT).
                w.host.with_conn(now, id, |c| c.abort(now, ErrorKind::ConnectionAborted));
            }
            w.host.release(now, id);
            if let (Some(secs), false) = (s.opts.linger.filter(|t| *t > 0), s.nonblock) {
                // SO_LINGER: a blocking close returns once the FIN is acknowledged, or when
                // the time runs out.
                shared.changed(&mut w);
                let deadline = w.now_us() + secs as u64 * 1_000_000;
                return shared.block(w, Some(deadline), |w, timed_out| {
                    let done = w
                        .host
                        .conn(id)
                        .is_none_or(|c| matches!(c.state(), State::Closed | State::TimeWait | State::FinWait2));
                    (done || timed_out).then_some(Ok(0))
                });
            }
        }
    }
    shared.changed(&mut w);
    Ok(0)
}

pub fn shutdown(shared: &Shared, fd: i32, how: i32) -> SysResult<i32> {
    let mut w = shared.lock();
    let id = conn_id(&w, fd)?;
    if !(how == libc::SHUT_RD || how == libc::SHUT_WR || how == libc::SHUT_RDWR) {
        return Err(libc::EINVAL);
    }
    if how != libc::SHUT_WR {
        sock_mut(&mut w, fd)?.rd_shut = true;
    }
    if how != libc::SHUT_RD {
        let now = w.now();
        w.host.with_conn(now, id, |c| c.shutdown_write(now));
    }
    shared.changed(&mut w);
    Ok(0)
}

pub fn fcntl(shared: &Shared, fd: i32, cmd: i32, arg: std::ffi::c_long) -> SysResult<i32> {
    let mut w = shared.lock();
    let s = sock_mut(&mut w, fd)?;
    match cmd {
        libc::F_GETFL => Ok(libc::O_RDWR | if s.nonblock { libc::O_NONBLOCK } else { 0 }),
        libc::F_SETFL => {
            s.nonblock = arg & std::ffi::c_long::from(libc::O_NONBLOCK) != 0;
            Ok(0)
        }
        _ => Err(libc::EOPNOTSUPP),
    }
}

/// Bytes waiting to be read (FIONREAD).
pub fn readable_bytes(shared: &Shared, fd: i32) -> SysResult<i32> {
    let w = shared.lock();
    let id = conn_id(&w, fd)?;
    Ok(w.host.conn(id).map_or(0, |c| c.buffered().0.min(i32::MAX as usize) as i32))
}

/// What `poll` would report for `fd` (Linux's tcp_poll, before masking with the events).
fn poll_mask(w: &mut World, fd: i32) -> i16 {
    let Some(s) = w.socks.get(&fd) else { return libc::POLLNVAL };
    let (id, rd_shut, err_reported) = match s.kind {
        Kind::Fresh { .. } => return libc::POLLOUT | libc::POLLHUP,
        Kind::Listener { .. } => {
            return match collect_ready(w, fd) {
                Ok(n) if n > 0 => libc::POLLIN | libc::POLLRDNORM,
                _ => 0,
            };
        }
        Kind::Conn { id, .. } => (id, s.rd_shut, s.err_reported),
    };
    let Some(c) = w.host.conn(id) else { return libc::POLLIN | libc::POLLOUT | libc::POLLHUP };
    let state = c.state();
    let r = c.readiness();
    let mut m = 0;
    if c.error().is_some() && !err_reported {
        m |= libc::POLLERR;
    }
    let closed = state == State::Closed;
    let send_shut =
        matches!(state, State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait);
    if closed || (rd_shut && send_shut) {
        m |= libc::POLLHUP;
    }
    if closed || rd_shut || state.fin_received() {
        m |= libc::POLLIN | libc::POLLRDNORM | libc::POLLRDHUP;
    }
    if !matches!(state, State::SynSent | State::SynReceived) {
        if r.readable {
            m |= libc::POLLIN | libc::POLLRDNORM;
        }
        if closed || send_shut || r.writable {
            m |= libc::POLLOUT | libc::POLLWRNORM;
        }
    }
    m
}

/// `poll` over our descriptors; `timeout_ms` < 0 waits for ever (virtual time).
pub fn poll(shared: &Shared, fds: &mut [libc::pollfd], timeout_ms: i32) -> SysResult<i32> {
    let w = shared.lock();
    let deadline = (timeout_ms >= 0).then(|| w.now_us() + timeout_ms as u64 * 1000);
    shared.block(w, deadline, |w, timed_out| {
        let mut n = 0;
        for p in fds.iter_mut() {
            let m = poll_mask(w, p.fd);
            p.revents = m & (p.events | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL);
            if p.revents != 0 {
                n += 1;
            }
        }
        (n > 0 || timeout_ms == 0 || timed_out).then_some(Ok(n))
    })
}
