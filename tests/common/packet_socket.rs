//! Raw packets on the TUN from inside a test's namespace: an AF_PACKET socket bound to
//! `synack0` writes bare IPv4 straight to synack (no routing, no fixing of lengths or
//! checksums) and, sniffing, sees every packet crossing the device both ways.

use std::time::{Duration, Instant};

use nix::libc;

/// An AF_PACKET, SOCK_DGRAM socket on `synack0`: on a TUN it sends and receives bare IPv4.
pub struct PacketSocket {
    fd: libc::c_int,
    addr: libc::sockaddr_ll,
}

impl PacketSocket {
    /// `sniff`: also receive a copy of every packet crossing the device (both ways).
    pub fn open(sniff: bool) -> PacketSocket {
        let proto = (libc::ETH_P_IP as u16).to_be();
        // Only an ETH_P_ALL socket sees what the kernel sends out on a device.
        let all = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2); closed in Drop.
        let fd =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, if sniff { libc::c_int::from(all) } else { 0 }) };
        assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
        // SAFETY: a NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(c"synack0".as_ptr()) };
        assert!(ifindex != 0, "no synack0 in this namespace");
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = if sniff { all } else { 0 };
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: the address outlives the call; the length is its size.
        let r = unsafe {
            libc::bind(
                fd,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "bind to synack0: {}", std::io::Error::last_os_error());
        if sniff {
            let size: libc::c_int = 16 << 20;
            // SAFETY: an int option, passed by pointer with its size.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        addr.sll_protocol = proto;
        PacketSocket { fd, addr }
    }

    /// Write one packet onto the TUN as it is. Bounded retries while the queue is full.
    pub fn send(&self, pkt: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: the buffer and the address outlive the call; lengths are theirs.
            let r = unsafe {
                libc::sendto(
                    self.fd,
                    pkt.as_ptr().cast(),
                    pkt.len(),
                    0,
                    (&self.addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if r == pkt.len() as isize {
                return;
            }
            let err = std::io::Error::last_os_error();
            assert!(
                matches!(err.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR)),
                "sendto on synack0 ({} bytes): {err}",
                pkt.len()
            );
            assert!(Instant::now() < deadline, "synack0 would not take a packet for 10 s");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// One sniffed packet, without waiting: (bytes, outgoing from the kernel to synack).
    pub fn try_recv(&self, buf: &mut [u8]) -> Option<(usize, bool)> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: the buffer and the address outlive the call; recvfrom fills at most the sizes given.
        let r = unsafe {
            libc::recvfrom(
                self.fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if r < 0 {
            let err = std::io::Error::last_os_error();
            assert!(matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)), "recvfrom: {err}");
            return None;
        }
        Some((r as usize, from.sll_pkttype == libc::PACKET_OUTGOING))
    }

    /// Every packet queued now, each as (bytes, outgoing).
    pub fn drain(&self) -> Vec<(Vec<u8>, bool)> {
        let mut buf = vec![0u8; 65536];
        let mut out = Vec::new();
        while let Some((n, outgoing)) = self.try_recv(&mut buf) {
            out.push((buf[..n].to_vec(), outgoing));
        }
        out
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: fd is ours and open.
        unsafe { libc::close(self.fd) };
    }
}
