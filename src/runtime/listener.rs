//! A listening port with the std::net::TcpListener shape.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Sleepers, Stack, TcpStream, Waiter};

pub struct TcpListener {
    stack: Stack,
    port: u16,
    waiter: Arc<Waiter>,
}

impl TcpListener {
    pub fn bind(stack: &Stack, port: u16) -> io::Result<TcpListener> {
        Self::bind_with_backlog(stack, port, None)
    }

    /// `backlog`: connections not yet accepted (handshaking or queued); SYNs beyond it are
    /// dropped, and the client's retransmission tries again.
    pub fn bind_with_backlog(stack: &Stack, port: u16, backlog: Option<usize>) -> io::Result<TcpListener> {
        let waiter = Arc::new(Waiter::default());
        {
            let mut g = stack.lock()?;
            g.host.listen(port, backlog)?;
            g.port_waiters.insert(port, Sleepers::Threads(waiter.clone()));
        }
        Ok(TcpListener { stack: stack.clone(), port, waiter })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Wait for the next connection whose handshake has completed.
    pub fn accept(&self) -> io::Result<TcpStream> {
        self.accept_until(None)
    }

    /// [`accept`](Self::accept), but give up with `ErrorKind::TimedOut` after `timeout`
    /// (a service pool's idle threads use it to exit). Several threads may wait at once;
    /// each new connection wakes one of them.
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<TcpStream> {
        self.accept_until(Some(Instant::now() + timeout))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let id = self
            .stack
            .block_on(&self.waiter, deadline, |h, _| h.accept(self.port).ok_or(io::ErrorKind::WouldBlock.into()))?;
        TcpStream::attach(&self.stack, id)
    }

    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::repeat_with(move || self.accept())
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        if let Ok(mut g) = self.stack.lock() {
            g.port_waiters.remove(&self.port);
            g.host.unlisten(std::time::Instant::now(), self.port);
            self.stack.flush(g);
        }
    }
}
