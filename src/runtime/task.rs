//! Listeners and connections for async tasks, of any runtime: poll functions that, where a
//! blocking call would sleep, leave the task's waker on the same readiness edge and return
//! `Pending`. The event loop (or whichever thread changes the connection) wakes the task;
//! nothing polls in a loop and no thread waits per connection. `synack::tokio` puts tokio's
//! traits on these; another runtime's adapter would be as thin.

use std::io::{self, IoSlice};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use super::wakers::{ConnTasks, Sleepers, Slot};
use super::Stack;
use crate::stack::{ConnId, Host};

/// A listening port whose connections are accepted by polling.
pub struct TaskListener {
    stack: Stack,
    port: u16,
}

impl TaskListener {
    /// Listen on `port`; `backlog` as for [`crate::TcpListener::bind_with_backlog`].
    pub fn bind(stack: &Stack, port: u16, backlog: Option<usize>) -> io::Result<TaskListener> {
        let mut g = stack.lock()?;
        g.host.listen(port, backlog)?;
        g.port_waiters.insert(port, Sleepers::Tasks(Vec::new()));
        Ok(TaskListener { stack: stack.clone(), port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.stack.addr(), self.port))
    }

    /// The next connection whose handshake has completed; several tasks may wait at once.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<TaskStream>> {
        let port = self.port;
        match self.stack.poll_op(Slot::Accept(port), cx, |h, _| h.accept(port).ok_or(io::ErrorKind::WouldBlock.into()))
        {
            Poll::Ready(Ok(id)) => Poll::Ready(TaskStream::attach(&self.stack, id)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for TaskListener {
    fn drop(&mut self) {
        if let Ok(mut g) = self.stack.lock() {
            g.port_waiters.remove(&self.port);
            g.host.unlisten(Instant::now(), self.port);
            self.stack.flush(g);
        }
    }
}

/// One connection for async tasks. Its methods take `&self`: a reader and a writer may be
/// two tasks sharing it (each has its own waker slot). Dropping it closes the connection as
/// dropping a blocking [`crate::TcpStream`] does: a FIN after what is queued, or a RST if
/// received data was left unread.
pub struct TaskStream {
    stack: Stack,
    id: ConnId,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    read_shut: AtomicBool,
}

impl TaskStream {
    fn attach(stack: &Stack, id: ConnId) -> io::Result<TaskStream> {
        let mut g = stack.lock()?;
        let (local, remote) = match g.host.conn(id) {
            Some(c) => (c.local, c.remote),
            None => return Err(io::ErrorKind::NotConnected.into()),
        };
        g.conn_waiters.insert(id, Sleepers::Tasks(ConnTasks::default()));
        drop(g);
        Ok(TaskStream { stack: stack.clone(), id, local, remote, read_shut: AtomicBool::new(false) })
    }

    /// Active open: send the SYN. The handshake's end is awaited with
    /// [`poll_connected`](Self::poll_connected).
    pub fn connect(stack: &Stack, remote: SocketAddrV4) -> io::Result<TaskStream> {
        let id = stack.with_host(|h, now| h.connect(now, remote))??;
        TaskStream::attach(stack, id)
    }

    /// Ready once the handshake is done; `ConnectionRefused` on a RST, `TimedOut` when the
    /// SYN was never answered.
    pub fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        self.stack.poll_op(Slot::Write(id), cx, |h, _| match h.conn(id) {
            None => Err(io::ErrorKind::NotConnected.into()),
            Some(c) if c.is_connected() => Ok(()),
            Some(c) => match c.error() {
                Some(kind) => Err(kind.into()),
                None if c.is_closed() => Err(io::ErrorKind::ConnectionRefused.into()),
                None => Err(io::ErrorKind::WouldBlock.into()),
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.local)
    }

    pub fn peer_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.remote)
    }

    fn call<R>(
        host: &mut Host,
        now: Instant,
        id: ConnId,
        f: impl FnOnce(&mut crate::tcp::Connection) -> io::Result<R>,
    ) -> io::Result<R> {
        host.with_conn(now, id, f).unwrap_or_else(|| Err(io::ErrorKind::NotConnected.into()))
    }

    /// Read what has arrived: `Ok(0)` at end of stream (or after
    /// [`shutdown_read`](Self::shutdown_read)).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.read_shut.load(Ordering::Acquire) {
            return Poll::Ready(Ok(0));
        }
        let id = self.id;
        self.stack.poll_op(Slot::Read(id), cx, |h, now| Self::call(h, now, id, |c| c.recv(buf)))
    }

    /// Queue what fits of `buf` for sending.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let id = self.id;
        self.stack.poll_op(Slot::Write(id), cx, |h, now| Self::call(h, now, id, |c| c.send(buf)))
    }

    /// Queue what fits of `bufs`, in order, under one lock: a response head and its body
    /// leave together.
    pub fn poll_write_vectored(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let id = self.id;
        self.stack.poll_op(Slot::Write(id), cx, |h, now| {
            Self::call(h, now, id, |c| {
                let mut total = 0;
                for b in bufs.iter().filter(|b| !b.is_empty()) {
                    match c.send(b) {
                        Ok(n) => {
                            total += n;
                            if n < b.len() {
                                break;
                            }
                        }
                        // What was queued counts; the error comes back on the next call.
                        Err(_) if total > 0 => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(total)
            })
        })
    }

    /// Send a FIN after what is queued.
    pub fn shutdown_write(&self) -> io::Result<()> {
        let id = self.id;
        self.stack
            .with_host(|h, now| h.with_conn(now, id, |c| c.shutdown_write(now)))?
            .ok_or(io::ErrorKind::NotConnected.into())
    }

    /// Further reads return end of stream.
    pub fn shutdown_read(&self) {
        self.read_shut.store(true, Ordering::Release);
    }

    /// Turn Nagle's algorithm off (`true`: small writes go out at once) or back on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        let id = self.id;
        self.stack
            .with_host(|h, now| h.with_conn(now, id, |c| c.set_nodelay(nodelay)))?
            .ok_or(io::ErrorKind::NotConnected.into())
    }

    pub fn nodelay(&self) -> bool {
        self.stack.lock().ok().and_then(|g| g.host.conn(self.id).map(|c| c.nodelay())).unwrap_or(false)
    }
}

impl Drop for TaskStream {
    fn drop(&mut self) {
        if let Ok(mut g) = self.stack.lock() {
            g.conn_waiters.remove(&self.id);
            g.host.release(Instant::now(), self.id);
            self.stack.flush(g);
        }
    }
}

impl std::fmt::Debug for TaskStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskStream").field("local", &self.local).field("peer", &self.remote).finish()
    }
}

#[cfg(test)]
#[path = "task/tests.rs"]
mod tests;
