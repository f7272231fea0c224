//! A connected TCP stream with the std::net::TcpStream shape: blocking `Read`/`Write`,
//! `shutdown`, addresses and timeouts.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Sleepers, Stack, Waiter};
use crate::stack::ConnId;

/// Handles made by `try_clone` share this; the connection is released when the last goes.
struct Handle {
    stack: Stack,
    id: ConnId,
    waiter: Arc<Waiter>,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    read_shut: AtomicBool,
    /// `flush` ends a message (see `push`); off, small writes are left to Nagle.
    push_on_flush: AtomicBool,
    /// Bytes the application has read, counted under the stack lock (see `input_counts`).
    read_total: AtomicU64,
    /// Timeouts in nanoseconds; 0 means none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// An instant no read waits past, whatever the timeout (an HTTP head's deadline).
    read_deadline: Mutex<Option<Instant>>,
}

/// A connection's input so far, in bytes: see [`TcpStream::input_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputCounts {
    /// Read by the application.
    pub read: u64,
    /// Arrived in order: read, or waiting in the receive buffer.
    pub arrived: u64,
}

pub struct TcpStream {
    handle: Arc<Handle>,
}

impl TcpStream {
    /// Wrap connection `id`, registering its condition variable. Called with the stack
    /// unlocked.
    pub(super) fn attach(stack: &Stack, id: ConnId) -> io::Result<TcpStream> {
        let waiter = Arc::new(Waiter::default());
        let (local, remote) = {
            let mut g = stack.lock()?;
            g.conn_waiters.insert(id, Sleepers::Threads(waiter.clone()));
            let c = g.host.conn(id).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            (c.local, c.remote)
        };
        Ok(TcpStream {
            handle: Arc::new(Handle {
                stack: stack.clone(),
                id,
                waiter,
                local,
                remote,
                read_shut: AtomicBool::new(false),
                push_on_flush: AtomicBool::new(true),
                read_total: AtomicU64::new(0),
                read_timeout: AtomicU64::new(0),
                write_timeout: AtomicU64::new(0),
                read_deadline: Mutex::new(None),
            }),
        })
    }

    /// Active open: send a SYN and wait for the handshake to finish.
    pub fn connect(stack: &Stack, remote: SocketAddrV4) -> io::Result<TcpStream> {
        Self::connect_timeout(stack, remote, None)
    }

    pub fn connect_timeout(stack: &Stack, remote: SocketAddrV4, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let id = stack.with_host(|h, now| h.connect(now, remote))??;
        let stream = TcpStream::attach(stack, id)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        stack.block_on(&stream.handle.waiter, deadline, |h, _| match h.conn(id) {
            None => Err(io::ErrorKind::NotConnected.into()),
            Some(c) if c.is_connected() => Ok(()),
            Some(c) => match c.error() {
                Some(kind) => Err(kind.into()),
                None if c.is_closed() => Err(io::ErrorKind::ConnectionRefused.into()),
                None => Err(io::ErrorKind::WouldBlock.into()),
            },
        })?;
        Ok(stream)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.handle.remote))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.handle.local))
    }

    /// Like std's: `Write` sends a FIN after the queued data; `Read` makes further reads
    /// return end of stream.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let h = &self.handle;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            h.read_shut.store(true, Ordering::Release);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            h.stack
                .with_host(|host, now| host.with_conn(now, h.id, |c| c.shutdown_write(now)))?
                .ok_or(io::ErrorKind::NotConnected)?;
        }
        Ok(())
    }

    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream { handle: self.handle.clone() })
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.handle.read_timeout, t)
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        store_timeout(&self.handle.write_timeout, t)
    }

    /// What was written is a complete message: its small tail goes without a Nagle wait
    /// (`flush` does this; std's TCP has no such call, where a flush is a no-op).
    pub fn push(&self) -> io::Result<()> {
        let h = &self.handle;
        h.stack.with_host(|host, now| host.with_conn(now, h.id, |c| c.push()))?.ok_or(io::ErrorKind::NotConnected)?;
        Ok(())
    }

    /// Whether `flush` pushes what was written (the default) or leaves small writes to
    /// Nagle's algorithm, which then holds a small segment while another small one is
    /// unacknowledged.
    pub fn set_push_on_flush(&self, on: bool) {
        self.handle.push_on_flush.store(on, Ordering::Relaxed);
    }

    fn flush_inner(&self) -> io::Result<()> {
        if self.handle.push_on_flush.load(Ordering::Relaxed) {
            self.push()
        } else {
            Ok(())
        }
    }

    /// No read waits past `at` (it fails with `TimedOut`), whatever the read timeout says;
    /// `None` lifts it.
    pub fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        *self.handle.read_deadline.lock().map_err(|_| io::Error::other("stream lock poisoned by a panic"))? = at;
        Ok(())
    }

    /// Turn Nagle's algorithm off (`true`: small writes go out at once) or back on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let h = &self.handle;
        h.stack
            .with_host(|host, now| host.with_conn(now, h.id, |c| c.set_nodelay(nodelay)))?
            .ok_or(io::ErrorKind::NotConnected.into())
    }

    /// How many bytes have been read from this connection, and how many have arrived in
    /// order (read or not), taken together: another thread can tell whether everything that
    /// arrived before some moment has been read since (the two counts never disagree, as
    /// both move under the stack lock).
    pub fn input_counts(&self) -> io::Result<InputCounts> {
        let h = &self.handle;
        h.stack.with_host(|host, _| {
            let unread = host.conn(h.id).map_or(0, |c| c.recv_len()) as u64;
            let read = h.read_total.load(Ordering::Relaxed);
            InputCounts { read, arrived: read + unread }
        })
    }

    /// Where byte `offset` of this connection's input (counted from its first byte, as
    /// [`InputCounts`] counts) stands among the stack's arrivals on every connection: the
    /// byte with the smaller number became readable first. `None` if it has not arrived or
    /// is too far back to be remembered (a few arrivals).
    pub fn arrival_number(&self, offset: u64) -> io::Result<Option<u64>> {
        let h = &self.handle;
        // A look only: nothing to flush.
        Ok(h.stack.lock()?.host.arrival_number(h.id, offset))
    }

    fn deadline(t: &AtomicU64) -> Option<Instant> {
        match t.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Instant::now() + Duration::from_nanos(ns)),
        }
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        let h = &self.handle;
        if h.read_shut.load(Ordering::Acquire) {
            return Ok(0);
        }
        let fixed = h.read_deadline.lock().ok().and_then(|d| *d);
        let deadline = match (Self::deadline(&h.read_timeout), fixed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        h.stack.block_on(&h.waiter, deadline, |host, now| {
            let r =
                host.with_conn(now, h.id, |c| c.recv(buf)).unwrap_or_else(|| Err(io::ErrorKind::NotConnected.into()));
            if let Ok(n) = r {
                h.read_total.fetch_add(n as u64, Ordering::Relaxed);
            }
            r
        })
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        let h = &self.handle;
        let deadline = Self::deadline(&h.write_timeout);
        h.stack.block_on(&h.waiter, deadline, |host, now| {
            host.with_conn(now, h.id, |c| c.send(buf)).unwrap_or_else(|| Err(io::ErrorKind::NotConnected.into()))
        })
    }
}

fn store_timeout(slot: &AtomicU64, t: Option<Duration>) -> io::Result<()> {
    let ns = match t {
        None => 0,
        Some(d) if d.is_zero() => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a zero timeout is not allowed (std's rule)"))
        }
        Some(d) => d.as_nanos().min(u128::from(u64::MAX)) as u64,
    };
    slot.store(ns, Ordering::Relaxed);
    Ok(())
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_inner()
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_inner()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let id = self.id;
        if let Ok(mut g) = self.stack.lock() {
            g.conn_waiters.remove(&id);
            g.host.release(std::time::Instant::now(), id);
            self.stack.flush(g);
        }
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream").field("local", &self.handle.local).field("peer", &self.handle.remote).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::{Duration, Instant};

    use super::InputCounts;
    use crate::app::services::LoopEcho;
    use crate::device::Pipe;
    use crate::runtime::{Stack, StackOptions, TcpStream};
    use crate::stack::HostConfig;

    #[test]
    fn input_counts_tell_arrived_from_read() {
        let server_ip = Ipv4Addr::new(10, 7, 0, 2);
        let (a, b) = Pipe::pair().unwrap();
        let opts = |addr| StackOptions { host: HostConfig { addr, ..Default::default() }, ..Default::default() };
        let server = Stack::new(a, opts(server_ip)).unwrap();
        server.serve_on_loop(7, LoopEcho::default()).unwrap();
        let client = Stack::new(b, opts(Ipv4Addr::new(10, 7, 0, 1))).unwrap();
        let s = TcpStream::connect_timeout(&client, SocketAddrV4::new(server_ip, 7), Some(Duration::from_secs(10)))
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(s.input_counts().unwrap(), InputCounts { read: 0, arrived: 0 });
        (&s).write_all(b"hello").unwrap();
        // The echo arrives unread…
        let end = Instant::now() + Duration::from_secs(10);
        while s.input_counts().unwrap().arrived < 5 {
            assert!(Instant::now() < end, "no echo");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(s.input_counts().unwrap(), InputCounts { read: 0, arrived: 5 });
        // …and reading moves it from one count to the other.
        let mut buf = [0u8; 2];
        (&s).read_exact(&mut buf).unwrap();
        assert_eq!(s.input_counts().unwrap(), InputCounts { read: 2, arrived: 5 });
        let mut rest = [0u8; 3];
        (&s).read_exact(&mut rest).unwrap();
        assert_eq!(s.input_counts().unwrap(), InputCounts { read: 5, arrived: 5 });
        assert_eq!(&[buf.as_slice(), rest.as_slice()].concat(), b"hello");
    }

    #[test]
    fn arrival_numbers_order_bytes_across_connections() {
        let server_ip = Ipv4Addr::new(10, 7, 0, 2);
        let (a, b) = Pipe::pair().unwrap();
        let opts = |addr| StackOptions { host: HostConfig { addr, ..Default::default() }, ..Default::default() };
        let server = Stack::new(a, opts(server_ip)).unwrap();
        server.serve_on_loop(7, LoopEcho::default()).unwrap();
        let client = Stack::new(b, opts(Ipv4Addr::new(10, 7, 0, 1))).unwrap();
        let connect = || {
            TcpStream::connect_timeout(&client, SocketAddrV4::new(server_ip, 7), Some(Duration::from_secs(10))).unwrap()
        };
        let (one, two) = (connect(), connect());
        // Each echo waited for before the next write: the arrival order is known.
        let echoed = |s: &TcpStream, data: &[u8], total: u64| {
            let mut w = s;
            w.write_all(data).unwrap();
            let end = Instant::now() + Duration::from_secs(10);
            while s.input_counts().unwrap().arrived < total {
                assert!(Instant::now() < end, "no echo");
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        echoed(&one, b"a", 1);
        echoed(&two, b"b", 1);
        echoed(&one, b"c", 2);
        let n = |s: &TcpStream, offset| s.arrival_number(offset).unwrap().expect("arrived");
        assert!(n(&one, 0) < n(&two, 0));
        assert!(n(&two, 0) < n(&one, 1));
        assert_eq!(one.arrival_number(2).unwrap(), None, "not arrived");
    }
}
