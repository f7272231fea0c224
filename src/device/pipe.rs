//! Two devices joined back to back in memory, for tests: what one sends, the other receives.
//! A datagram socket pair keeps packet boundaries and gives the event loop a real fd to poll.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;

use super::Device;

pub struct Pipe {
    sock: UnixDatagram,
}

impl Pipe {
    pub fn pair() -> io::Result<(Pipe, Pipe)> {
        let (a, b) = UnixDatagram::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((Pipe { sock: a }, Pipe { sock: b }))
    }
}

impl Device for Pipe {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf)
    }

    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.sock.send(packet).map(|_| ())
    }

    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}
