//! A Linux TUN device (layer 3: raw IPv4 packets, no Ethernet header, no packet info).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::Device;

// TUNSETOFFLOAD = _IOW('T', 208, unsigned int).
nix::ioctl_write_int!(tun_set_offload, b'T', 208);

pub struct Tun {
    iface: tun_tap::Iface,
}

impl Tun {
    /// Attach to the TUN device `name` (persistent, made by `scripts/setup.sh`, or a new one
    /// when the caller may create devices).
    pub fn open(name: &str) -> io::Result<Tun> {
        let iface = tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun).map_err(|e| {
            let hint = match e.raw_os_error() {
                Some(libc_eperm) if libc_eperm == nix::errno::Errno::EPERM as i32 => {
                    " (not allowed: run `sudo scripts/setup.sh` to create it owned by you, or run as root)"
                }
                Some(busy) if busy == nix::errno::Errno::EBUSY as i32 => " (another process has it open)",
                _ => "",
            };
            io::Error::new(e.kind(), format!("cannot open TUN device {name:?}: {e}{hint}"))
        })?;
        iface.set_non_blocking()?;
        // Offload flags survive on a persistent device after the fd that set them closes;
        // without a vnet header we must see fully formed packets with real checksums.
        // SAFETY: a valid, open TUN fd and an integer argument, as the ioctl expects.
        unsafe { tun_set_offload(iface.as_raw_fd(), 0) }.map_err(io::Error::from)?;
        Ok(Tun { iface })
    }

    pub fn name(&self) -> &str {
        self.iface.name()
    }
}

impl Device for Tun {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.iface.recv(buf)
    }

    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.iface.send(packet).map(|_| ())
    }

    fn fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }
}
