//! Applications on synack's byte stream: the classic test services, an HTTP server, and
//! WebSocket endpoints (echo, chat, live stats) behind it.

pub mod chat;
pub mod engineio;
pub mod http;
pub mod live;
pub mod loop_http;
pub mod pool;
pub mod services;
pub mod socketio;
pub mod stats;
pub mod ws;
