//! A Linux TUN device (layer 3: raw IPv4 packets, no Ethernet header, no packet info).
//!
//! Two ways to open it: [`Tun::open`] for plain packets of at most the MTU, and
//! [`Tun::open_offload`], which asks for a virtio-net header before every packet
//! (`IFF_VNET_HDR`, see [`super::vnet`]) and turns on checksum and TCP segmentation offload
//! (`TUNSETOFFLOAD`), so that packets of up to 64 KiB cross the device: the kernel cuts what
//! we write into MSS-sized segments and hands us what its TCP sends (or GRO merged) whole.
//! tun-tap cannot set either flag, so the offload path makes its ioctls itself with nix.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use super::vnet::{VnetHdr, VNET_HDR_LEN};
use super::{Device, OffloadCounts, PacketMeta};

// From <linux/if_tun.h>.
// TUNSETOFFLOAD = _IOW('T', 208, unsigned int), its argument passed by value.
nix::ioctl_write_int!(tun_set_offload, b'T', 208);
// TUNSETIFF = _IOW('T', 202, int), though it takes a pointer to a struct ifreq.
nix::ioctl_write_ptr_bad!(tun_set_iff, nix::request_code_write!(b'T', 202, size_of::<nix::libc::c_int>()), IfReq);
// TUNSETVNETHDRSZ = _IOW('T', 216, int) and TUNSETVNETLE = _IOW('T', 220, int): pointers to int.
nix::ioctl_write_ptr!(tun_set_vnet_hdr_sz, b'T', 216, nix::libc::c_int);
nix::ioctl_write_ptr!(tun_set_vnet_le, b'T', 220, nix::libc::c_int);

const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;
const IFF_VNET_HDR: i16 = 0x4000;
const TUN_F_CSUM: u64 = 0x01;
const TUN_F_TSO4: u64 = 0x02;

/// The largest packet with offloads on: an IPv4 total length is 16 bits.
const OFFLOAD_MTU: usize = 65_535;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags in the union's first bytes
/// (40 bytes in all on 64-bit Linux).
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: i16,
    _pad: [u8; 22],
}

pub struct Tun {
    handle: Handle,
}

enum Handle {
    Plain(tun_tap::Iface),
    Vnet(VnetTun),
}

struct VnetTun {
    file: File,
    name: String,
    counts: OffloadCounts,
}

impl Tun {
    /// Attach to the TUN device `name` (persistent, made by `scripts/setup.sh`, or a new one
    /// when the caller may create devices).
    pub fn open(name: &str) -> io::Result<Tun> {
        let iface = tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun).map_err(|e| open_error(name, e))?;
        iface.set_non_blocking()?;
        // Offload flags survive on a persistent device after the fd that set them closes;
        // without a vnet header we must see fully formed packets with real checksums.
        // SAFETY: a valid, open TUN fd and an integer argument, as the ioctl expects.
        unsafe { tun_set_offload(iface.as_raw_fd(), 0) }.map_err(io::Error::from)?;
        Ok(Tun { handle: Handle::Plain(iface) })
    }

    /// Attach to `name` with a virtio-net header on every packet and checksum + TCPv4
    /// segmentation offload on (see the module documentation).
    pub fn open_offload(name: &str) -> io::Result<Tun> {
        if name.is_empty() || name.len() > 15 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad TUN device name {name:?}")));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open("/dev/net/tun")
            .map_err(|e| open_error(name, e))?;
        let mut req = IfReq { name: [0; 16], flags: IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, _pad: [0; 22] };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        let fd = file.as_raw_fd();
        // SAFETY: `fd` is an open /dev/net/tun; `req` is a properly laid out ifreq that lives
        // across the call (the kernel writes the device's name back into it).
        unsafe { tun_set_iff(fd, &req) }.map_err(|e| open_error(name, e.into()))?;
        let hdr_len = VNET_HDR_LEN as nix::libc::c_int;
        let little_endian: nix::libc::c_int = 1;
        // A persistent device keeps the last owner's header size and byte order: set both.
        // SAFETY: valid fd, pointers to ints that outlive the calls.
        unsafe { tun_set_vnet_hdr_sz(fd, &hdr_len) }.map_err(io::Error::from)?;
        // SAFETY: as above.
        if let Err(e) = unsafe { tun_set_vnet_le(fd, &little_endian) } {
            // Legacy virtio headers are in host order, which is little-endian already here.
            if cfg!(target_endian = "big") {
                return Err(e.into());
            }
        }
        // SAFETY: valid fd, integer argument.
        unsafe { tun_set_offload(fd, TUN_F_CSUM | TUN_F_TSO4) }.map_err(io::Error::from)?;
        let end = req.name.iter().position(|&b| b == 0).unwrap_or(req.name.len());
        let name = String::from_utf8_lossy(&req.name[..end]).into_owned();
        Ok(Tun { handle: Handle::Vnet(VnetTun { file, name, counts: OffloadCounts::default() }) })
    }

    pub fn name(&self) -> &str {
        match &self.handle {
            Handle::Plain(iface) => iface.name(),
            Handle::Vnet(v) => &v.name,
        }
    }
}

fn open_error(name: &str, e: io::Error) -> io::Error {
    let hint = match e.raw_os_error() {
        Some(eperm) if eperm == nix::errno::Errno::EPERM as i32 => {
            " (not allowed: run `sudo scripts/setup.sh` to create it owned by you, or run as root)"
        }
        Some(busy) if busy == nix::errno::Errno::EBUSY as i32 => " (another process has it open)",
        Some(inval) if inval == nix::errno::Errno::EINVAL as i32 => " (is it a TUN device? scripts/setup.sh makes one)",
        _ => "",
    };
    io::Error::new(e.kind(), format!("cannot open TUN device {name:?}: {e}{hint}"))
}

impl VnetTun {
    /// Read one packet into `buf` and check its header; a packet with a malformed header is
    /// counted and skipped. `complete` finishes partial checksums (for `recv`'s plain packets).
    fn recv(&mut self, buf: &mut [u8], complete: bool) -> io::Result<(usize, PacketMeta)> {
        // Bounded, so a run of bad packets cannot hold the event loop; the fd stays readable.
        for _ in 0..64 {
            let mut hdr = [0u8; VNET_HDR_LEN];
            let n = self.file.read_vectored(&mut [IoSliceMut::new(&mut hdr), IoSliceMut::new(buf)])?;
            let accepted = VnetHdr::parse(&hdr[..n.min(VNET_HDR_LEN)])
                .and_then(|h| h.accept_inbound(&mut buf[..n.saturating_sub(VNET_HDR_LEN)], complete));
            match accepted {
                Ok(meta) => {
                    self.counts.gso_in += u64::from(meta.gso_size > 0);
                    self.counts.csum_trusted_in += u64::from(meta.csum_trusted);
                    return Ok((n - VNET_HDR_LEN, meta));
                }
                Err(why) => {
                    self.counts.bad_header += 1;
                    tracing::debug!(?why, "dropped a packet with a malformed vnet header");
                }
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn send(&mut self, packet: &[u8], meta: PacketMeta) -> io::Result<()> {
        let hdr = VnetHdr::for_outbound(packet, meta)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "an offloaded packet that is not IPv4/TCP"))?;
        let hdr = hdr.encode();
        // A TUN write takes the whole packet or fails; a short count would be a kernel bug.
        let n = self.file.write_vectored(&[IoSlice::new(&hdr), IoSlice::new(packet)])?;
        if n != hdr.len() + packet.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write to the TUN device"));
        }
        self.counts.gso_out += u64::from(meta.gso_size > 0);
        Ok(())
    }
}

impl Device for Tun {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.handle {
            Handle::Plain(iface) => iface.recv(buf),
            Handle::Vnet(v) => v.recv(buf, true).map(|(n, _)| n),
        }
    }

    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        match &mut self.handle {
            Handle::Plain(iface) => iface.send(packet).map(|_| ()),
            Handle::Vnet(v) => v.send(packet, PacketMeta::default()),
        }
    }

    fn recv_meta(&mut self, buf: &mut [u8]) -> io::Result<(usize, PacketMeta)> {
        match &mut self.handle {
            Handle::Plain(iface) => Ok((iface.recv(buf)?, PacketMeta::default())),
            Handle::Vnet(v) => v.recv(buf, false),
        }
    }

    fn send_meta(&mut self, packet: &[u8], meta: PacketMeta) -> io::Result<()> {
        match &mut self.handle {
            Handle::Plain(_) if meta != PacketMeta::default() => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "TUN opened without offloads"))
            }
            Handle::Plain(iface) => iface.send(packet).map(|_| ()),
            Handle::Vnet(v) => v.send(packet, meta),
        }
    }

    fn offloads(&self) -> bool {
        matches!(self.handle, Handle::Vnet(_))
    }

    fn offload_counts(&self) -> Option<OffloadCounts> {
        match &self.handle {
            Handle::Plain(_) => None,
            Handle::Vnet(v) => Some(v.counts),
        }
    }

    fn mtu(&self) -> usize {
        match self.handle {
            Handle::Plain(_) => 1500,
            Handle::Vnet(_) => OFFLOAD_MTU,
        }
    }

    fn fd(&self) -> RawFd {
        match &self.handle {
            Handle::Plain(iface) => iface.as_raw_fd(),
            Handle::Vnet(v) => v.file.as_raw_fd(),
        }
    }
}
