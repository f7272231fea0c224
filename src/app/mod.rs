//! Applications on synack's byte stream: the classic test services and an HTTP server.

pub mod http;
pub mod services;
