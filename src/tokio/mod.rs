//! synack's TCP for tokio (feature `tokio`): `TcpListener` and `TcpStream` with the shape of
//! tokio's own, implementing [`AsyncRead`](::tokio::io::AsyncRead) and
//! [`AsyncWrite`](::tokio::io::AsyncWrite), so axum, hyper and tokio-tungstenite run on the
//! userspace stack unmodified.
//!
//! ```no_run
//! # async fn demo(stack: synack::Stack) -> std::io::Result<()> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let listener = synack::tokio::TcpListener::bind(&stack, 8080)?;
//! loop {
//!     let (mut stream, _peer) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut buf = [0u8; 1024];
//!         while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!             if stream.write_all(&buf[..n]).await.is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! Readiness comes from the stack through wakers (see [`crate::runtime::task`]): a task
//! that cannot go on leaves its waker on the edge a blocking thread would sleep on, and
//! whichever thread changes the connection wakes it. Any tokio runtime works, current-thread
//! or multi-thread; the stack's event loop stays on its own thread.

/// `AsyncRead` for a type whose `inner` derefs to the connection's `TaskStream`.
macro_rules! impl_async_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                poll_read(&self.inner, cx, buf)
            }
        }
    };
}

/// `AsyncWrite` for a type whose `inner` derefs to the connection's `TaskStream`: written
/// bytes are already the stack's, so a flush has nothing to do; shutdown is a FIN after
/// what is queued (tokio's `shutdown(Write)`).
macro_rules! impl_async_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                self.inner.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.inner.shutdown_write())
            }
        }
    };
}

mod listener;
mod split;
mod stream;

pub use listener::TcpListener;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::TcpStream;

#[cfg(test)]
mod tests;
