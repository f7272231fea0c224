//! A stream's reading and writing halves, for two tasks (owned) or two futures (borrowed).
//! Each half waits on its own waker slot, so a reader and a writer never wake each other
//! out of a registration.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::stream::poll_read;
use super::TcpStream;
use crate::runtime::task::TaskStream;

pub(super) fn owned(inner: Arc<TaskStream>) -> (OwnedReadHalf, OwnedWriteHalf) {
    (OwnedReadHalf { inner: inner.clone() }, OwnedWriteHalf { inner, shutdown_on_drop: true })
}

pub(super) fn borrowed(inner: &TaskStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf { inner }, WriteHalf { inner })
}

pub struct OwnedReadHalf {
    inner: Arc<TaskStream>,
}

pub struct OwnedWriteHalf {
    inner: Arc<TaskStream>,
    shutdown_on_drop: bool,
}

/// The halves given to [`OwnedReadHalf::reunite`] came from different streams.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl std::fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tried to reunite halves that are not from the same stream")
    }
}

impl std::error::Error for ReuniteError {}

impl OwnedReadHalf {
    /// The stream again, from the two halves of one `into_split`.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        reunite(self, other)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer_addr())
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }
}

impl OwnedWriteHalf {
    pub fn reunite(self, other: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        reunite(other, self)
    }

    /// Drop without sending a FIN (the read half keeps the connection open).
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer_addr())
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }
}

fn reunite(read: OwnedReadHalf, mut write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
    if !Arc::ptr_eq(&read.inner, &write.inner) {
        return Err(ReuniteError(read, write));
    }
    write.shutdown_on_drop = false;
    let inner = read.inner.clone();
    drop((read, write));
    Ok(TcpStream::from_shared(inner))
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // As tokio's: the peer learns at once that no more is coming; the connection
            // itself is released with the last half.
            let _ = self.inner.shutdown_write();
        }
    }
}

pub struct ReadHalf<'a> {
    inner: &'a TaskStream,
}

pub struct WriteHalf<'a> {
    inner: &'a TaskStream,
}

impl std::fmt::Debug for OwnedReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedReadHalf").field("stream", &*self.inner).finish()
    }
}

impl std::fmt::Debug for OwnedWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedWriteHalf").field("stream", &*self.inner).finish()
    }
}

impl_async_read!(OwnedReadHalf);
impl_async_write!(OwnedWriteHalf);
impl_async_read!(ReadHalf<'_>);
impl_async_write!(WriteHalf<'_>);
