//! The application's side of a connection: reading, looking, writing, and what a blocked
//! reader or writer waits for.

use std::io;

use super::connection::{Connection, Readiness};
use super::state::State;

impl Connection {
    /// Read what has arrived in order. `Ok(0)` is end of stream (the peer's FIN);
    /// `WouldBlock` means wait.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(r) = self.read_gate(buf.len()) {
            return r;
        }
        let n = self.recv_buf.read(buf);
        self.maybe_window_update();
        Ok(n)
    }

    /// `recv` without the copy: drop up to `max` bytes (a discard server's read).
    pub fn recv_skip(&mut self, max: usize) -> io::Result<usize> {
        if let Some(r) = self.read_gate(max) {
            return r;
        }
        let n = self.recv_buf.skip(max);
        self.maybe_window_update();
        Ok(n)
    }

    /// `recv` that leaves the bytes in place: a server can look at a request before deciding
    /// who reads it.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_gate(buf.len()).unwrap_or_else(|| Ok(self.recv_buf.peek(buf)))
    }

    /// The answer of a read of `want` bytes that finds no data to take: the connection's
    /// error, end of stream (`Ok(0)`), or `WouldBlock`. `None`: data is there.
    fn read_gate(&self, want: usize) -> Option<io::Result<usize>> {
        if let Some(kind) = self.error {
            return Some(Err(kind.into()));
        }
        if !self.recv_buf.is_empty() {
            return None;
        }
        if self.state.fin_received() || self.state == State::Closed || want == 0 {
            return Some(Ok(0));
        }
        Some(Err(io::ErrorKind::WouldBlock.into()))
    }

    /// Bytes a read would take now.
    pub fn recv_len(&self) -> usize {
        self.recv_buf.len()
    }

    /// Bytes that have become readable since the connection opened (in order, read or
    /// not): the offset in the stream just past the last byte arrived.
    pub fn arrived_in_order(&self) -> u64 {
        self.rcv.in_order_total
    }

    /// The most the receive buffer holds.
    pub fn recv_capacity(&self) -> usize {
        self.recv_buf.capacity()
    }

    /// Bytes `send` would take now.
    pub fn send_room(&self) -> usize {
        self.send_buf.free()
    }

    /// Queue bytes to send; takes what fits in the send buffer.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(kind) = self.error {
            return Err(kind.into());
        }
        if self.snd.fin_queued {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            _ => return Err(io::ErrorKind::NotConnected.into()),
        }
        if data.is_empty() {
            return Ok(0);
        }
        // Like Linux's sk_stream_write_space: a blocked writer goes on only once a third of
        // the buffer is free (or all it has to write fits), so it wakes for large chunks,
        // not for each ACK that frees a segment's worth.
        if self.send_buf.free() < data.len().min(self.send_buf.capacity() / 3).max(1) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(self.send_buf.write(data))
    }

    /// What a thread blocked on this connection may be waiting for; it is woken only when
    /// this changes (see `Host::dispatch`). Must agree with `recv` and `send`: whenever
    /// they would stop returning `WouldBlock`, this changes.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            state: self.state,
            error: self.error.is_some(),
            readable: !self.recv_buf.is_empty(),
            writable: self.send_buf.free() >= (self.send_buf.capacity() / 3).max(1),
            arrived: if self.modes.report_arrivals { self.stats.bytes_in } else { 0 },
        }
    }

    /// Count every arrival of data as a change of readiness, not only the buffer becoming
    /// non-empty: for a reader that looks at data without taking it (a server waiting for
    /// the rest of a request head), which would otherwise never hear of more.
    pub fn report_arrivals(&mut self, on: bool) {
        self.modes.report_arrivals = on;
    }
}
