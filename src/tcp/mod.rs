//! The TCP protocol machine, sans I/O: one [`Connection`] per four-tuple. Nothing here reads
//! a clock or touches a file descriptor; every entry point takes `now`, and segments to send
//! are pulled with [`Connection::poll_transmit`]. That is what makes every behaviour testable
//! segment by segment with a fake clock.

mod app_io;
pub(crate) mod config;
pub mod congestion;
mod connection;
mod input;
mod output;
mod recovery;
pub(crate) mod recv_buf;
pub(crate) mod rtt;
pub(crate) mod sack;
pub(crate) mod send_buf;
mod seq_context;
pub(crate) mod state;
mod tcb;
mod timers;

pub use config::TcpConfig;
pub use connection::{ConnEvent, ConnStats, Connection, Readiness};
pub use output::PayloadRange;
pub use seq_context::SeqContext;
pub use state::State;
