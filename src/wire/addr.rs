//! Connection addresses. Shared by the host, the trace and the live ladder, so it lives at the
//! bottom of the layers where all of them may import it.

use std::net::SocketAddrV4;

/// The four-tuple as seen from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quad {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
}
