//! Where packets come from and go to: a TUN device, an in-memory pipe for tests, and two
//! wrappers that stack on top of any device: a pcap tee that records both directions as they
//! cross, and seeded faults (loss, duplication, reordering, delay).
//!
//! The stack's device chain, built by [`build`]: Stack → [`Faults`] → [`Pcap`] → the device,
//! so a capture shows the wire: outbound packets after the faults, inbound before them.

mod capture_file;
pub(crate) mod faults;
pub(crate) mod pcap;
pub(crate) mod pipe;
pub mod rps;
pub(crate) mod tun;
pub(crate) mod vnet;

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::time::Instant;

pub use faults::{FaultConfig, FaultCounts, Faults};
pub use pcap::{Pcap, PcapTee};
pub use pipe::Pipe;
pub use tun::Tun;

/// What a device knows about a packet beyond its bytes: the virtio-net offload metadata of a
/// TUN opened with a vnet header (see `device::vnet`). The default is a plain, complete packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    /// Outbound: a TCP super-packet that the kernel cuts into segments of this many payload
    /// bytes (TSO). Inbound: the kernel coalesced (GRO) or built (TSO) a super-packet of
    /// segments this size. 0: an ordinary packet.
    pub gso_size: u16,
    /// The TCP checksum field holds only the pseudo-header sum (the packet never crossed a
    /// wire, so nobody has summed its payload yet); a capture or a real wire needs it finished.
    pub csum_partial: bool,
    /// Inbound: the kernel vouches for the TCP checksum, so the stack need not verify it:
    /// the kernel made the packet itself and left the sum partial (`NEEDS_CSUM`), or it
    /// verified the sum already (`DATA_VALID`). Nothing else is skipped.
    pub csum_trusted: bool,
}

/// What the offload path saw, for the exit summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffloadCounts {
    /// Super-packets read (GSO type set by the kernel).
    pub gso_in: u64,
    /// Super-packets written (TSO: the kernel cuts them).
    pub gso_out: u64,
    /// Packets read whose TCP checksum was not verified because the kernel vouched for it.
    pub csum_trusted_in: u64,
    /// Packets read with a malformed vnet header, dropped.
    pub bad_header: u64,
}

impl fmt::Display for OffloadCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "offload: {} super-packets in, {} out, {} checksums vouched for by the kernel, {} bad vnet headers",
            self.gso_in, self.gso_out, self.csum_trusted_in, self.bad_header
        )
    }
}

/// A source and sink of raw IPv4 packets. `recv` never blocks: it returns `WouldBlock` when
/// nothing is queued, and the event loop polls `fd` for readability.
///
/// A device may also hold packets on a timer (see [`Faults`]): the loop wakes by `poll_at`,
/// calls `on_timer`, and reads with `recv` until `WouldBlock` on every turn, readable fd or not.
pub trait Device: Send {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&mut self, packet: &[u8]) -> io::Result<()>;
    fn fd(&self) -> RawFd;
    /// `recv`, with what the device knows about the packet. A device without offloads
    /// returns plain packets.
    fn recv_meta(&mut self, buf: &mut [u8]) -> io::Result<(usize, PacketMeta)> {
        Ok((self.recv(buf)?, PacketMeta::default()))
    }
    /// `send` a packet described by `meta`. Only a device that [`offloads`](Device::offloads)
    /// takes super-packets or partial checksums; the others refuse them.
    fn send_meta(&mut self, packet: &[u8], meta: PacketMeta) -> io::Result<()> {
        if meta.gso_size != 0 || meta.csum_partial {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "this device has no TCP segmentation offload"));
        }
        self.send(packet)
    }
    /// The device takes TSO super-packets with partial checksums in `send_meta`.
    fn offloads(&self) -> bool {
        false
    }
    /// What the offload path saw, when there is one.
    fn offload_counts(&self) -> Option<OffloadCounts> {
        None
    }
    /// The largest packet the device carries.
    fn mtu(&self) -> usize {
        1500
    }
    /// When the device next has something to do without any fd becoming readable.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
    /// Let the device release what is due at `now`.
    fn on_timer(&mut self, _now: Instant) {}
    /// Write out anything buffered (a capture file).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The packets sent and received until the next call are one batch, handled within a
    /// moment of each other: a capture reads the clock once for them instead of per packet.
    fn begin_batch(&mut self) {}
    /// What the fault layer did, when there is one in the chain.
    fn fault_counts(&self) -> Option<FaultCounts> {
        None
    }
}

impl Device for Box<dyn Device> {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).recv(buf)
    }
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        (**self).send(packet)
    }
    fn fd(&self) -> RawFd {
        (**self).fd()
    }
    fn recv_meta(&mut self, buf: &mut [u8]) -> io::Result<(usize, PacketMeta)> {
        (**self).recv_meta(buf)
    }
    fn send_meta(&mut self, packet: &[u8], meta: PacketMeta) -> io::Result<()> {
        (**self).send_meta(packet, meta)
    }
    fn offloads(&self) -> bool {
        (**self).offloads()
    }
    fn offload_counts(&self) -> Option<OffloadCounts> {
        (**self).offload_counts()
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
    fn poll_at(&self) -> Option<Instant> {
        (**self).poll_at()
    }
    fn on_timer(&mut self, now: Instant) {
        (**self).on_timer(now)
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn begin_batch(&mut self) {
        (**self).begin_batch()
    }
    fn fault_counts(&self) -> Option<FaultCounts> {
        (**self).fault_counts()
    }
}

/// The stack's device chain: `device`, with a [`Pcap`] tee right above it when `pcap` names a
/// file, and [`Faults`] above that when either direction has a fault config.
pub fn build(
    device: impl Device + 'static,
    pcap: Option<&Path>,
    faults_in: Option<FaultConfig>,
    faults_out: Option<FaultConfig>,
) -> io::Result<Box<dyn Device>> {
    let mut dev: Box<dyn Device> = Box::new(device);
    if let Some(path) = pcap {
        dev = Box::new(Pcap::create(dev, path)?);
    }
    if faults_in.is_some() || faults_out.is_some() {
        dev = Box::new(Faults::new(dev, faults_in, faults_out));
    }
    Ok(dev)
}
