//! synack: a userspace TCP/IP stack on a Linux TUN device that you can watch work.
//!
//! Layers, as data flows (see docs/architecture.md): `device` (TUN, pcap tee, in-memory pipe) →
//! `wire` (IPv4/TCP parsing and building) → `stack` (demultiplexing, listeners, RST, ICMP) →
//! `tcp` (the sans-I/O protocol machine) → `runtime` (the event loop and the blocking
//! `TcpListener`/`TcpStream`, and `runtime::task` for async tasks) → `app` (echo, discard,
//! HTTP). With the `tokio` feature, `synack::tokio` puts tokio's traits on the async side.

// Only what the library's users (README, docs/library.md, examples/, tests/, fuzz/, the
// packetdrill adapter and the `synack` command) reach is `pub`; the rest is `pub(crate)`,
// and these keep it so.
#![warn(unreachable_pub)]
#![warn(dead_code)]

pub mod analyze;
pub mod app;
pub mod device;
pub(crate) mod live;
pub mod runtime;
pub mod stack;
pub mod tcp;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod trace;
pub mod wire;

pub use runtime::{Stack, TcpListener, TcpStream};
