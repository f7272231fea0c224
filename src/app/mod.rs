//! Applications on synack's byte stream: the classic test services, an HTTP server, and
//! WebSocket endpoints (echo, chat, live stats) behind it.

pub(crate) mod chat;
pub mod engineio;
pub mod http;
pub(crate) mod live;
pub(crate) mod loop_http;
pub mod pool;
pub mod services;
pub mod socketio;
pub(crate) mod stats;
pub mod ws;
