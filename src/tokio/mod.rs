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

mod listener;
mod split;
mod stream;

pub use listener::TcpListener;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::TcpStream;

#[cfg(test)]
mod tests;
