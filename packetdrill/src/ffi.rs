//! The C side: packetdrill's `struct packetdrill_interface`, and one `extern "C"` function
//! per member that turns raw pointers into slices and addresses, calls `sockets`/`sockopt`,
//! and turns the answer into a return value and `errno`. No panic crosses this boundary.

use std::ffi::{c_char, c_int, c_long, c_longlong, c_uint, c_ulong, c_void, CStr};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use libc::{iovec, msghdr, pollfd, size_t, sockaddr, socklen_t, ssize_t, timeval};

use crate::world::{Shared, SysResult, World};
use crate::{preload, sockets, sockopt};

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
compile_error!("the packetdrill adapter passes fcntl's and ioctl's variadic argument as a named one, which is right for the Linux x86-64 and AArch64 calling conventions only");

type Ud = *mut c_void;

/// packetdrill.h's `struct packetdrill_interface`, member for member.
#[repr(C)]
pub struct PacketdrillInterface {
    userdata: Ud,
    free: Option<unsafe extern "C" fn(Ud)>,
    socket: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int) -> c_int>,
    bind: Option<unsafe extern "C" fn(Ud, c_int, *const sockaddr, socklen_t) -> c_int>,
    listen: Option<unsafe extern "C" fn(Ud, c_int, c_int) -> c_int>,
    accept: Option<unsafe extern "C" fn(Ud, c_int, *mut sockaddr, *mut socklen_t) -> c_int>,
    connect: Option<unsafe extern "C" fn(Ud, c_int, *const sockaddr, socklen_t) -> c_int>,
    read: Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, size_t) -> ssize_t>,
    readv: Option<unsafe extern "C" fn(Ud, c_int, *const iovec, c_int) -> ssize_t>,
    recv: Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, size_t, c_int) -> ssize_t>,
    recvfrom:
        Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t>,
    recvmsg: Option<unsafe extern "C" fn(Ud, c_int, *mut msghdr, c_int) -> ssize_t>,
    write: Option<unsafe extern "C" fn(Ud, c_int, *const c_void, size_t) -> ssize_t>,
    writev: Option<unsafe extern "C" fn(Ud, c_int, *const iovec, c_int) -> ssize_t>,
    send: Option<unsafe extern "C" fn(Ud, c_int, *const c_void, size_t, c_int) -> ssize_t>,
    sendto:
        Option<unsafe extern "C" fn(Ud, c_int, *const c_void, size_t, c_int, *const sockaddr, socklen_t) -> ssize_t>,
    sendmsg: Option<unsafe extern "C" fn(Ud, c_int, *const msghdr, c_int) -> ssize_t>,
    fcntl: Option<unsafe extern "C" fn(Ud, c_int, c_int, ...) -> c_int>,
    ioctl: Option<unsafe extern "C" fn(Ud, c_int, c_ulong, ...) -> c_int>,
    close: Option<unsafe extern "C" fn(Ud, c_int) -> c_int>,
    shutdown: Option<unsafe extern "C" fn(Ud, c_int, c_int) -> c_int>,
    getsockopt: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int>,
    setsockopt: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *const c_void, socklen_t) -> c_int>,
    poll: Option<unsafe extern "C" fn(Ud, *mut pollfd, libc::nfds_t, c_int) -> c_int>,
    netdev_send: Option<unsafe extern "C" fn(Ud, *const c_void, size_t) -> c_int>,
    netdev_receive: Option<unsafe extern "C" fn(Ud, *mut c_void, *mut size_t, *mut c_longlong) -> c_int>,
    usleep: Option<unsafe extern "C" fn(Ud, c_uint) -> c_int>,
    gettimeofday: Option<unsafe extern "C" fn(Ud, *mut timeval, *mut c_void) -> c_int>,
    epoll_create: Option<unsafe extern "C" fn(Ud, c_int) -> c_int>,
    epoll_ctl: Option<unsafe extern "C" fn(Ud, c_int, c_int, c_int, *mut c_void) -> c_int>,
    epoll_wait: Option<unsafe extern "C" fn(Ud, c_int, *mut c_void, c_int, c_int) -> c_int>,
    pipe: Option<unsafe extern "C" fn(Ud, *mut c_int) -> c_int>,
    splice: Option<unsafe extern "C" fn(Ud, c_int, *mut i64, c_int, *mut i64, size_t, c_uint) -> ssize_t>,
}

fn set_errno(e: i32) {
    // SAFETY: libc's thread-local errno.
    unsafe { *libc::__errno_location() = e };
}

/// Run one call: its value, or -1 with errno set; a panic is reported and becomes EIO.
fn guard<T: From<i8>>(name: &str, f: impl FnOnce() -> SysResult<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_errno(e);
            T::from(-1)
        }
        Err(_) => {
            eprintln!("synack-packetdrill: {name} panicked (a bug in synack or its adapter)");
            set_errno(libc::EIO);
            T::from(-1)
        }
    }
}

/// # Safety
/// `ud` is the pointer `packetdrill_interface_init` handed out, not yet freed.
unsafe fn shared<'a>(ud: Ud) -> SysResult<&'a Shared> {
    (ud as *const Shared).as_ref().ok_or(libc::EINVAL)
}

unsafe fn sockaddr_in(addr: *const sockaddr, len: socklen_t) -> SysResult<SocketAddrV4> {
    if addr.is_null() || (len as usize) < std::mem::size_of::<libc::sockaddr_in>() {
        return Err(libc::EINVAL);
    }
    let sin = &*(addr as *const libc::sockaddr_in);
    if c_int::from(sin.sin_family) != libc::AF_INET {
        return Err(libc::EOPNOTSUPP);
    }
    Ok(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)), u16::from_be(sin.sin_port)))
}

unsafe fn put_sockaddr_in(a: SocketAddrV4, addr: *mut sockaddr, len: *mut socklen_t) {
    if addr.is_null() || len.is_null() {
        return;
    }
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    };
    let n = (*len as usize).min(std::mem::size_of_val(&sin));
    std::ptr::copy_nonoverlapping(&sin as *const _ as *const u8, addr as *mut u8, n);
    *len = std::mem::size_of_val(&sin) as socklen_t;
}

unsafe fn buf_mut<'a>(p: *mut c_void, n: size_t) -> SysResult<&'a mut [u8]> {
    match (p.is_null(), n) {
        (_, 0) => Ok(&mut []),
        (true, _) => Err(libc::EFAULT),
        (false, n) => Ok(std::slice::from_raw_parts_mut(p as *mut u8, n)),
    }
}

unsafe fn buf<'a>(p: *const c_void, n: size_t) -> SysResult<&'a [u8]> {
    match (p.is_null(), n) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(libc::EFAULT),
        (false, n) => Ok(std::slice::from_raw_parts(p as *const u8, n)),
    }
}

unsafe fn iovecs<'a>(iov: *const iovec, n: c_int) -> SysResult<&'a [iovec]> {
    match (iov.is_null(), n) {
        (_, 0) => Ok(&[]),
        (true, _) | (_, ..0) => Err(libc::EINVAL),
        (false, n) => Ok(std::slice::from_raw_parts(iov, n as usize)),
    }
}

/// Read into a scatter list: into one buffer first, then out to the pieces.
unsafe fn read_vec(s: &Shared, fd: c_int, iov: &[iovec], flags: c_int) -> SysResult<usize> {
    let total = iov.iter().map(|v| v.iov_len).sum();
    let mut tmp = vec![0u8; total];
    let n = sockets::read(s, fd, &mut tmp, flags)?;
    let mut at = 0;
    for v in iov {
        let take = v.iov_len.min(n - at);
        if take > 0 {
            std::ptr::copy_nonoverlapping(tmp[at..].as_ptr(), v.iov_base as *mut u8, take);
        }
        at += take;
    }
    Ok(n)
}

unsafe fn write_vec(s: &Shared, fd: c_int, iov: &[iovec], flags: c_int) -> SysResult<usize> {
    let mut tmp = Vec::new();
    for v in iov {
        tmp.extend_from_slice(buf(v.iov_base, v.iov_len)?);
    }
    sockets::write(s, fd, &tmp, flags)
}

fn sz(r: SysResult<usize>) -> SysResult<ssize_t> {
    r.map(|n| n as ssize_t)
}

unsafe extern "C" fn pd_free(ud: Ud) {
    if !ud.is_null() {
        preload::unregister();
        drop(Arc::from_raw(ud as *const Shared));
    }
}
unsafe extern "C" fn pd_socket(ud: Ud, domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    guard("socket", || sockets::socket(shared(ud)?, domain, ty, protocol))
}
unsafe extern "C" fn pd_bind(ud: Ud, fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    guard("bind", || sockets::bind(shared(ud)?, fd, sockaddr_in(addr, len)?))
}
unsafe extern "C" fn pd_listen(ud: Ud, fd: c_int, backlog: c_int) -> c_int {
    guard("listen", || sockets::listen(shared(ud)?, fd, backlog))
}
unsafe extern "C" fn pd_accept(ud: Ud, fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    guard("accept", || {
        let (newfd, remote) = sockets::accept(shared(ud)?, fd)?;
        put_sockaddr_in(remote, addr, len);
        Ok(newfd)
    })
}
unsafe extern "C" fn pd_connect(ud: Ud, fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    guard("connect", || sockets::connect(shared(ud)?, fd, sockaddr_in(addr, len)?))
}
unsafe extern "C" fn pd_read(ud: Ud, fd: c_int, p: *mut c_void, n: size_t) -> ssize_t {
    guard("read", || sz(sockets::read(shared(ud)?, fd, buf_mut(p, n)?, 0)))
}
unsafe extern "C" fn pd_readv(ud: Ud, fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    guard("readv", || sz(read_vec(shared(ud)?, fd, iovecs(iov, n)?, 0)))
}
unsafe extern "C" fn pd_recv(ud: Ud, fd: c_int, p: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    guard("recv", || sz(sockets::read(shared(ud)?, fd, buf_mut(p, n)?, flags)))
}
unsafe extern "C" fn pd_recvfrom(
    ud: Ud,
    fd: c_int,
    p: *mut c_void,
    n: size_t,
    flags: c_int,
    src: *mut sockaddr,
    srclen: *mut socklen_t,
) -> ssize_t {
    guard("recvfrom", || {
        let s = shared(ud)?;
        let got = sockets::read(s, fd, buf_mut(p, n)?, flags)?;
        if let Some(remote) = sockets::peer(s, fd) {
            put_sockaddr_in(remote, src, srclen);
        }
        sz(Ok(got))
    })
}
unsafe extern "C" fn pd_recvmsg(ud: Ud, fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    guard("recvmsg", || {
        let m = msg.as_mut().ok_or(libc::EFAULT)?;
        let n = read_vec(shared(ud)?, fd, iovecs(m.msg_iov, m.msg_iovlen as c_int)?, flags)?;
        m.msg_controllen = 0;
        m.msg_flags = 0;
        m.msg_namelen = 0;
        sz(Ok(n))
    })
}
unsafe extern "C" fn pd_write(ud: Ud, fd: c_int, p: *const c_void, n: size_t) -> ssize_t {
    guard("write", || sz(sockets::write(shared(ud)?, fd, buf(p, n)?, 0)))
}
unsafe extern "C" fn pd_writev(ud: Ud, fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    guard("writev", || sz(write_vec(shared(ud)?, fd, iovecs(iov, n)?, 0)))
}
unsafe extern "C" fn pd_send(ud: Ud, fd: c_int, p: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    guard("send", || sz(sockets::write(shared(ud)?, fd, buf(p, n)?, flags)))
}
unsafe extern "C" fn pd_sendto(
    ud: Ud,
    fd: c_int,
    p: *const c_void,
    n: size_t,
    flags: c_int,
    _dest: *const sockaddr,
    _destlen: socklen_t,
) -> ssize_t {
    // A connected TCP socket ignores the destination, as Linux's does.
    guard("sendto", || sz(sockets::write(shared(ud)?, fd, buf(p, n)?, flags)))
}
unsafe extern "C" fn pd_sendmsg(ud: Ud, fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    guard("sendmsg", || {
        let m = msg.as_ref().ok_or(libc::EFAULT)?;
        if m.msg_controllen > 0 {
            return Err(libc::EOPNOTSUPP);
        }
        sz(write_vec(shared(ud)?, fd, iovecs(m.msg_iov, m.msg_iovlen as c_int)?, flags))
    })
}
/// Stored as packetdrill's variadic `fcntl` member: the one argument it passes arrives in the
/// register of a named third argument (see the `compile_error!` above).
unsafe extern "C" fn pd_fcntl(ud: Ud, fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    guard("fcntl", || sockets::fcntl(shared(ud)?, fd, cmd, arg))
}
unsafe extern "C" fn pd_ioctl(ud: Ud, fd: c_int, request: c_ulong, arg: *mut c_int) -> c_int {
    guard("ioctl", || {
        if request != libc::FIONREAD as c_ulong {
            return Err(libc::EOPNOTSUPP);
        }
        let n = sockets::readable_bytes(shared(ud)?, fd)?;
        *arg.as_mut().ok_or(libc::EFAULT)? = n;
        Ok(0)
    })
}
pub(crate) unsafe extern "C" fn pd_close(ud: Ud, fd: c_int) -> c_int {
    guard("close", || sockets::close(shared(ud)?, fd))
}
unsafe extern "C" fn pd_shutdown(ud: Ud, fd: c_int, how: c_int) -> c_int {
    guard("shutdown", || sockets::shutdown(shared(ud)?, fd, how))
}
pub(crate) unsafe extern "C" fn pd_getsockopt(
    ud: Ud,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    guard("getsockopt", || sockopt::getsockopt(shared(ud)?, fd, level, name, val as *mut u8, len))
}
unsafe extern "C" fn pd_setsockopt(
    ud: Ud,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    guard("setsockopt", || sockopt::setsockopt(shared(ud)?, fd, level, name, val as *const u8, len))
}
unsafe extern "C" fn pd_poll(ud: Ud, fds: *mut pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    guard("poll", || {
        let fds = match (fds.is_null(), n) {
            (_, 0) => &mut [],
            (true, _) => return Err(libc::EFAULT),
            (false, n) => std::slice::from_raw_parts_mut(fds, n as usize),
        };
        sockets::poll(shared(ud)?, fds, timeout)
    })
}
unsafe extern "C" fn pd_netdev_send(ud: Ud, p: *const c_void, n: size_t) -> c_int {
    guard("netdev_send", || {
        let s = shared(ud)?;
        let bytes = buf(p, n)?;
        let mut w = s.lock();
        let now = w.now();
        w.host.handle_packet(now, bytes);
        s.changed(&mut w);
        Ok(0)
    })
}
unsafe extern "C" fn pd_netdev_receive(ud: Ud, p: *mut c_void, n: *mut size_t, t: *mut c_longlong) -> c_int {
    guard("netdev_receive", || {
        let s = shared(ud)?;
        let room = n.as_mut().ok_or(libc::EFAULT)?;
        let Some((pkt, at)) = s.next_packet() else {
            eprintln!(
                "synack-packetdrill: synack has nothing more to send (no packet queued, no timer \
                 left within an hour): the packet the script expects never comes"
            );
            *room = 0;
            return Ok(0);
        };
        let out = buf_mut(p, *room)?;
        let len = pkt.len().min(out.len());
        out[..len].copy_from_slice(&pkt[..len]);
        *room = len;
        if let Some(t) = t.as_mut() {
            *t = s.lock().wall_clock_at(at) as c_longlong;
        }
        Ok(0)
    })
}
unsafe extern "C" fn pd_usleep(ud: Ud, usec: c_uint) -> c_int {
    guard("usleep", || {
        let s = shared(ud)?;
        let w = s.lock();
        let to = w.now_us() + u64::from(usec);
        drop(s.advance_to(w, to));
        Ok(0)
    })
}
unsafe extern "C" fn pd_gettimeofday(ud: Ud, tv: *mut timeval, _tz: *mut c_void) -> c_int {
    guard("gettimeofday", || {
        let s = shared(ud)?;
        let w = s.lock();
        // Each look at the clock lets a microsecond pass: packetdrill spins on it for the
        // last few microseconds before an event.
        let to = w.now_us() + 1;
        let w = s.advance_to(w, to);
        let us = w.wall_clock_us();
        let tv = tv.as_mut().ok_or(libc::EFAULT)?;
        tv.tv_sec = (us / 1_000_000) as libc::time_t;
        tv.tv_usec = (us % 1_000_000) as libc::suseconds_t;
        Ok(0)
    })
}
unsafe extern "C" fn pd_epoll_create(_: Ud, _: c_int) -> c_int {
    guard("epoll_create", || Err(libc::EOPNOTSUPP))
}
unsafe extern "C" fn pd_epoll_ctl(_: Ud, _: c_int, _: c_int, _: c_int, _: *mut c_void) -> c_int {
    guard("epoll_ctl", || Err(libc::EOPNOTSUPP))
}
unsafe extern "C" fn pd_epoll_wait(_: Ud, _: c_int, _: *mut c_void, _: c_int, _: c_int) -> c_int {
    guard("epoll_wait", || Err(libc::EOPNOTSUPP))
}
unsafe extern "C" fn pd_pipe(_: Ud, _: *mut c_int) -> c_int {
    guard("pipe", || Err(libc::EOPNOTSUPP))
}
unsafe extern "C" fn pd_splice(_: Ud, _: c_int, _: *mut i64, _: c_int, _: *mut i64, _: size_t, _: c_uint) -> ssize_t {
    guard("splice", || Err(libc::EOPNOTSUPP))
}

/// Fill in packetdrill's interface with synack.
///
/// # Safety
/// Called by packetdrill with a valid interface to fill and a NUL-terminated (or null) flags
/// string.
#[no_mangle]
pub unsafe extern "C" fn packetdrill_interface_init(flags: *const c_char, ifc: *mut PacketdrillInterface) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let flags = if flags.is_null() { String::new() } else { CStr::from_ptr(flags).to_string_lossy().into_owned() };
        let (cfg, trace) = match crate::host_config(&flags) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("synack-packetdrill: --so_flags: {e}");
                std::process::exit(2);
            }
        };
        let shared = Arc::new(Shared::new(World::new(cfg, trace)));
        preload::register(&shared);
        let Some(ifc) = ifc.as_mut() else { return };
        // SAFETY (transmutes): same ABI on the supported targets, see `pd_fcntl`.
        let fcntl: unsafe extern "C" fn(Ud, c_int, c_int, c_long) -> c_int = pd_fcntl;
        let ioctl: unsafe extern "C" fn(Ud, c_int, c_ulong, *mut c_int) -> c_int = pd_ioctl;
        *ifc = PacketdrillInterface {
            userdata: Arc::into_raw(shared) as Ud,
            free: Some(pd_free),
            socket: Some(pd_socket),
            bind: Some(pd_bind),
            listen: Some(pd_listen),
            accept: Some(pd_accept),
            connect: Some(pd_connect),
            read: Some(pd_read),
            readv: Some(pd_readv),
            recv: Some(pd_recv),
            recvfrom: Some(pd_recvfrom),
            recvmsg: Some(pd_recvmsg),
            write: Some(pd_write),
            writev: Some(pd_writev),
            send: Some(pd_send),
            sendto: Some(pd_sendto),
            sendmsg: Some(pd_sendmsg),
            fcntl: Some(std::mem::transmute::<
                unsafe extern "C" fn(Ud, c_int, c_int, c_long) -> c_int,
                unsafe extern "C" fn(Ud, c_int, c_int, ...) -> c_int,
            >(fcntl)),
            ioctl: Some(std::mem::transmute::<
                unsafe extern "C" fn(Ud, c_int, c_ulong, *mut c_int) -> c_int,
                unsafe extern "C" fn(Ud, c_int, c_ulong, ...) -> c_int,
            >(ioctl)),
            close: Some(pd_close),
            shutdown: Some(pd_shutdown),
            getsockopt: Some(pd_getsockopt),
            setsockopt: Some(pd_setsockopt),
            poll: Some(pd_poll),
            netdev_send: Some(pd_netdev_send),
            netdev_receive: Some(pd_netdev_receive),
            usleep: Some(pd_usleep),
            gettimeofday: Some(pd_gettimeofday),
            epoll_create: Some(pd_epoll_create),
            epoll_ctl: Some(pd_epoll_ctl),
            epoll_wait: Some(pd_epoll_wait),
            pipe: Some(pd_pipe),
            splice: Some(pd_splice),
        };
    }));
    if r.is_err() {
        eprintln!("synack-packetdrill: initialisation panicked");
        std::process::exit(2);
    }
}
