//! A listening port with tokio's `TcpListener` shape.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use super::TcpStream;
use crate::runtime::task::TaskListener;
use crate::Stack;

pub struct TcpListener {
    inner: TaskListener,
}

impl TcpListener {
    /// Listen on `port` of the stack's address.
    pub fn bind(stack: &Stack, port: u16) -> io::Result<TcpListener> {
        Self::bind_with_backlog(stack, port, None)
    }

    /// `backlog`: connections not yet accepted; SYNs beyond it are dropped (the client
    /// retries).
    pub fn bind_with_backlog(stack: &Stack, port: u16, backlog: Option<usize>) -> io::Result<TcpListener> {
        Ok(TcpListener { inner: TaskListener::bind(stack, port, backlog)? })
    }

    /// The next connection whose handshake has completed, with the peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.inner.poll_accept(cx).map_ok(|s| {
            let peer = s.peer_addr();
            (TcpStream::from_task(s), peer)
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener").field("port", &self.inner.port()).finish()
    }
}
