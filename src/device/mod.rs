//! Where packets come from and go to: a TUN device, an in-memory pipe for tests, and two
//! wrappers that stack on top of any device: a pcap tee that records both directions as they
//! cross, and seeded faults (loss, duplication, reordering, delay).
//!
//! The stack's device chain, built by [`build`]: Stack → [`Faults`] → [`Pcap`] → the device,
//! so a capture shows the wire: outbound packets after the faults, inbound before them.

mod capture_file;
pub mod faults;
pub mod pcap;
pub mod pipe;
pub mod tun;

use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::time::Instant;

pub use faults::{FaultConfig, FaultCounts, Faults};
pub use pcap::{Pcap, PcapTee};
pub use pipe::Pipe;
pub use tun::Tun;

/// A source and sink of raw IPv4 packets. `recv` never blocks: it returns `WouldBlock` when
/// nothing is queued, and the event loop polls `fd` for readability.
///
/// A device may also hold packets on a timer (see [`Faults`]): the loop wakes by `poll_at`,
/// calls `on_timer`, and reads with `recv` until `WouldBlock` on every turn, readable fd or not.
pub trait Device: Send {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&mut self, packet: &[u8]) -> io::Result<()>;
    fn fd(&self) -> RawFd;
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
