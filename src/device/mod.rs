//! Where packets come from and go to: a TUN device, an in-memory pipe for tests, and a pcap
//! tee that records both directions as they cross.

pub mod pcap;
pub mod pipe;
pub mod tun;

use std::io;
use std::os::fd::RawFd;

pub use pcap::PcapTee;
pub use pipe::Pipe;
pub use tun::Tun;

/// A source and sink of raw IPv4 packets. `recv` never blocks: it returns `WouldBlock` when
/// nothing is queued, and the event loop polls `fd` for readability.
pub trait Device: Send {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&mut self, packet: &[u8]) -> io::Result<()>;
    fn fd(&self) -> RawFd;
    /// The largest packet the device carries.
    fn mtu(&self) -> usize {
        1500
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
}
