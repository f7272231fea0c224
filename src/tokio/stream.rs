//! A connected stream with tokio's `TcpStream` shape.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::{SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::runtime::task::TaskStream;
use crate::Stack;

/// Errors are those a tokio `TcpStream` gives: `ConnectionRefused` (connect answered by a
/// RST), `ConnectionReset` (a RST later), `TimedOut` (retransmissions unanswered),
/// `BrokenPipe` (writing after `shutdown`), `ConnectionAborted` (the stack shut down).
pub struct TcpStream {
    inner: Arc<TaskStream>,
}

impl TcpStream {
    pub(super) fn from_task(s: TaskStream) -> TcpStream {
        TcpStream { inner: Arc::new(s) }
    }

    /// Active open from an ephemeral port; done when the handshake is. There is no timeout
    /// beyond the SYN retries' (wrap it in `tokio::time::timeout` for one).
    pub async fn connect(stack: &Stack, remote: SocketAddrV4) -> io::Result<TcpStream> {
        let s = TaskStream::connect(stack, remote)?;
        poll_fn(|cx| s.poll_connected(cx)).await?;
        Ok(TcpStream::from_task(s))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer_addr())
    }

    /// Turn Nagle's algorithm off (`true`: small writes go out at once) or back on.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.inner.nodelay())
    }

    /// A reader and a writer for two tasks. Dropping the writer sends a FIN, as tokio's
    /// does; the connection is released when both are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        super::split::owned(self.inner)
    }

    /// Borrowed halves, for two futures of one task (e.g. under `tokio::join!`).
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        super::split::borrowed(&self.inner)
    }

    pub(super) fn from_shared(inner: Arc<TaskStream>) -> TcpStream {
        TcpStream { inner }
    }
}

pub(super) fn poll_read(s: &TaskStream, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    let n = match s.poll_read(cx, buf.initialize_unfilled()) {
        Poll::Ready(Ok(n)) => n,
        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        Poll::Pending => return Poll::Pending,
    };
    buf.advance(n);
    Poll::Ready(Ok(()))
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.inner.local_addr())
            .field("peer", &self.inner.peer_addr())
            .finish()
    }
}

impl_async_read!(TcpStream);
impl_async_write!(TcpStream);
