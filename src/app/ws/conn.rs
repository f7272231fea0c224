//! One WebSocket connection over any byte stream, usable from two threads at once: a
//! [`WsReceiver`] that blocks reading frames, and any number of [`WsSender`]s.
//!
//! tungstenite's `WebSocket` owns its stream and does reads and writes through one `&mut`,
//! so a thread blocked reading would keep every other thread from sending (a chat message
//! could not go out until the client sent something). Instead the receiver reads from the
//! stream with no lock held, then hands the bytes it got to tungstenite's
//! `WebSocketContext` under a mutex, through an adapter that reads only those bytes
//! (`WouldBlock` after them) and writes straight to the stream. Senders take the same mutex
//! to write. One context sees every byte both ways, so its close handshake and automatic
//! pong replies stay correct, and frames from different threads never interleave.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tungstenite::error::{CapacityError, Error as WsErr};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Message};

use super::frame_trace::{FrameHead, FrameTap};
use super::TRACE_TARGET;
pub use crate::runtime::InputCounts;

/// A byte stream a WebSocket can run on: synack's `TcpStream`, std's, or a Unix socket pair
/// in tests.
pub trait Conn: Read + Write + Send + Sized + 'static {
    fn try_clone(&self) -> io::Result<Self>;
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// For logs and for `/stats` to point out the viewer's own connection.
    fn peer_addr(&self) -> Option<SocketAddr>;
    /// Our own address, where known (the live ladder must not watch its own connection).
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }
    /// Bytes read so far and bytes arrived so far, if the stream can tell both at once
    /// (synack's can; a kernel socket cannot say what another thread has read).
    fn input_counts(&self) -> Option<InputCounts> {
        None
    }
    /// Where input byte `offset` stands in the order bytes arrived on all connections (see
    /// `TcpStream::arrival_number`), if the stream can tell.
    fn arrival_number(&self, _offset: u64) -> Option<u64> {
        None
    }
    /// Whether a flush pushes small writes out at once (see `TcpStream::set_push_on_flush`).
    fn set_push_on_flush(&self, _on: bool) {}
}

impl Conn for crate::runtime::TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        crate::runtime::TcpStream::try_clone(self)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        crate::runtime::TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        crate::runtime::TcpStream::set_write_timeout(self, t)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        crate::runtime::TcpStream::shutdown(self, how)
    }
    fn peer_addr(&self) -> Option<SocketAddr> {
        crate::runtime::TcpStream::peer_addr(self).ok()
    }
    fn local_addr(&self) -> Option<SocketAddr> {
        crate::runtime::TcpStream::local_addr(self).ok()
    }
    fn input_counts(&self) -> Option<InputCounts> {
        crate::runtime::TcpStream::input_counts(self).ok()
    }
    fn arrival_number(&self, offset: u64) -> Option<u64> {
        crate::runtime::TcpStream::arrival_number(self, offset).ok().flatten()
    }
    fn set_push_on_flush(&self, on: bool) {
        crate::runtime::TcpStream::set_push_on_flush(self, on);
    }
}

impl Conn for std::net::TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::net::TcpStream::try_clone(self)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, t)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::net::TcpStream::shutdown(self, how)
    }
    fn peer_addr(&self) -> Option<SocketAddr> {
        std::net::TcpStream::peer_addr(self).ok()
    }
}

impl Conn for std::os::unix::net::UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, t)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }
    fn peer_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// Sizes and times for one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message (and frame) accepted; a bigger one closes with 1009.
    pub max_message: usize,
    /// After this long with nothing from the peer, ping it; after twice this, give up.
    /// Bounds how long a vanished peer holds a thread.
    pub idle: Duration,
    /// A write that makes no progress for this long fails: a client that stopped reading
    /// cannot hold a thread forever.
    pub write_stall: Duration,
    /// tungstenite's read buffer, allocated per connection.
    pub read_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 16 << 20,
            idle: Duration::from_secs(30),
            write_stall: Duration::from_secs(20),
            read_buffer: 64 * 1024,
        }
    }
}

/// What both halves share: the protocol state and the writing end of the stream.
struct Out<S> {
    ctx: WebSocketContext,
    stream: S,
    tap: Option<FrameTap>,
}

/// Who the connection is with, for log lines.
type Label = Arc<str>;

/// The sending half; cheap to clone, safe to use from any thread.
pub struct WsSender<S> {
    out: Arc<Mutex<Out<S>>>,
    label: Label,
}

impl<S> Clone for WsSender<S> {
    fn clone(&self) -> Self {
        WsSender { out: self.out.clone(), label: self.label.clone() }
    }
}

/// The receiving half: owns its clone of the stream, blocks in [`WsReceiver::recv`].
pub struct WsReceiver<S: Conn> {
    out: Arc<Mutex<Out<S>>>,
    stream: S,
    buf: Vec<u8>,
    pending: VecDeque<Message>,
    tap: Option<FrameTap>,
    label: Label,
    /// The context has finished (close handshake done, or failed): no more reads.
    done: bool,
    /// A ping went out after an idle period and nothing has arrived since.
    pinged: bool,
}

/// Starts a server-side WebSocket on `stream` (the `101` already written), with `leftover`
/// the bytes read past the HTTP request: the start of the first frames. `trace` turns on
/// one log line per frame header, both ways.
pub fn open<S: Conn>(
    stream: S,
    leftover: Vec<u8>,
    limits: Limits,
    trace: bool,
) -> io::Result<(WsSender<S>, WsReceiver<S>)> {
    stream.set_read_timeout(Some(limits.idle))?;
    stream.set_write_timeout(Some(limits.write_stall))?;
    let label: Label = stream.peer_addr().map_or_else(|| "peer".to_string(), |a| a.to_string()).into();
    let config = WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer)
        .max_message_size(Some(limits.max_message))
        .max_frame_size(Some(limits.max_message))
        // Every message is flushed by `send`; no point in holding frames back.
        .write_buffer_size(0);
    // The leftover bytes go through the receiver's tap and into the context like any
    // others, rather than via `from_partially_read`, so the trace sees those frames too.
    let ctx = WebSocketContext::new(Role::Server, Some(config));
    let writer = stream.try_clone()?;
    let out = Arc::new(Mutex::new(Out { ctx, stream: writer, tap: trace.then(FrameTap::default) }));
    let mut rx = WsReceiver {
        out: out.clone(),
        stream,
        buf: vec![0; limits.read_buffer],
        pending: VecDeque::new(),
        tap: trace.then(FrameTap::default),
        label: label.clone(),
        done: false,
        pinged: false,
    };
    if !leftover.is_empty() {
        rx.absorb(&leftover)?;
    }
    Ok((WsSender { out, label }, rx))
}

impl<S: Conn> WsSender<S> {
    /// Sends one message and flushes it to the stream.
    pub fn send(&self, msg: Message) -> io::Result<()> {
        self.send_all(std::iter::once(msg))
    }

    /// Sends several messages with one flush at the end (one lock, fewer small writes).
    pub fn send_all(&self, msgs: impl IntoIterator<Item = Message>) -> io::Result<()> {
        let mut guard = lock(&self.out)?;
        let Out { ctx, stream, tap } = &mut *guard;
        let mut io = Io { input: &[], stream, tap, label: &self.label };
        for msg in msgs {
            ctx.write(&mut io, msg).map_err(to_io)?;
        }
        ctx.flush(&mut io).map_err(to_io)
    }

    /// Starts the close handshake with `code`; the receiver sees the peer's answer.
    pub fn close(&self, code: CloseCode, reason: &str) -> io::Result<()> {
        let mut guard = lock(&self.out)?;
        let Out { ctx, stream, tap } = &mut *guard;
        let mut io = Io { input: &[], stream, tap, label: &self.label };
        let frame = CloseFrame { code, reason: reason.to_owned().into() };
        ctx.close(&mut io, Some(frame)).map_err(to_io)
    }
}

impl<S: Conn> WsReceiver<S> {
    /// The next message from the peer. Pings are answered (and the close handshake
    /// completed) inside; `Ok(None)` once the connection is over: after a `Close` message
    /// has been returned, or when the peer closed TCP without one.
    pub fn recv(&mut self) -> io::Result<Option<Message>> {
        loop {
            if let Some(msg) = self.pending.pop_front() {
                return Ok(Some(msg));
            }
            if self.done {
                return Ok(None);
            }
            let n = match self.stream.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                    self.idle()?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                tracing::debug!(target: TRACE_TARGET, "{}: TCP closed without a WebSocket close", self.label);
                self.done = true;
                return Ok(None);
            }
            self.pinged = false;
            let bytes = std::mem::take(&mut self.buf);
            let r = self.absorb(&bytes[..n]);
            self.buf = bytes;
            r?;
        }
    }

    /// Half-closes TCP after the WebSocket is over: RFC 6455 §7.1.1 has the server close
    /// the TCP connection first.
    pub fn finish(self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.peer_addr()
    }

    /// Whether [`WsReceiver::recv`] has messages decoded already: it would return without
    /// reading.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Nothing arrived for `limits.idle`: ping once; if still nothing, give up.
    fn idle(&mut self) -> io::Result<()> {
        if self.pinged {
            self.done = true;
            return Err(io::Error::new(io::ErrorKind::TimedOut, "peer silent after a ping"));
        }
        self.pinged = true;
        let mut guard = lock(&self.out)?;
        let Out { ctx, stream, tap } = &mut *guard;
        let mut io = Io { input: &[], stream, tap, label: &self.label };
        match ctx.write(&mut io, Message::Ping(Bytes::from_static(b"synack"))).and_then(|()| ctx.flush(&mut io)) {
            Ok(()) => Ok(()),
            // Closing already: the close handshake's own wait applies.
            Err(WsErr::Protocol(_) | WsErr::AlreadyClosed | WsErr::ConnectionClosed) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }

    /// Runs `bytes` through the protocol: complete messages go to `pending`, replies
    /// (pong, close) go out.
    fn absorb(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(tap) = &mut self.tap {
            tap.feed(bytes, |h| trace_frame(&self.label, "in", h));
        }
        let mut guard = lock(&self.out)?;
        let Out { ctx, stream, tap } = &mut *guard;
        let mut io = Io { input: bytes, stream, tap, label: &self.label };
        loop {
            match ctx.read(&mut io) {
                Ok(msg @ Message::Close(_)) => {
                    self.pending.push_back(msg);
                    // Sends our half of the close handshake; tungstenite then reports the
                    // connection closed, which is what we expect.
                    match ctx.flush(&mut io) {
                        Ok(()) | Err(WsErr::ConnectionClosed | WsErr::AlreadyClosed) => {}
                        Err(e) => tracing::debug!(target: TRACE_TARGET, "{}: sending the close reply: {e}", self.label),
                    }
                    self.done = true;
                    return Ok(());
                }
                Ok(msg) => self.pending.push_back(msg),
                Err(WsErr::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(WsErr::ConnectionClosed | WsErr::AlreadyClosed) => {
                    self.done = true;
                    return Ok(());
                }
                Err(e) => {
                    // RFC 6455 §7.1.7: fail the connection, telling the peer why.
                    self.done = true;
                    let code = close_code_for(&e);
                    let reason: String = e.to_string().chars().take(100).collect();
                    let _ = ctx.close(&mut io, Some(CloseFrame { code, reason: reason.into() }));
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", self.label)));
                }
            }
        }
    }
}

/// The close code that tells the peer why its input was refused (RFC 6455 §7.4.1).
fn close_code_for(e: &WsErr) -> CloseCode {
    match e {
        WsErr::Utf8(_) => CloseCode::Invalid,
        WsErr::Capacity(CapacityError::MessageTooLong { .. }) => CloseCode::Size,
        WsErr::Capacity(_) | WsErr::Protocol(_) => CloseCode::Protocol,
        _ => CloseCode::Error,
    }
}

fn to_io(e: WsErr) -> io::Error {
    match e {
        WsErr::Io(e) => e,
        WsErr::ConnectionClosed | WsErr::AlreadyClosed => io::Error::new(io::ErrorKind::NotConnected, e.to_string()),
        e => io::Error::other(e.to_string()),
    }
}

fn lock<S>(out: &Mutex<Out<S>>) -> io::Result<MutexGuard<'_, Out<S>>> {
    out.lock().map_err(|_| io::Error::other("WebSocket state poisoned by a panic"))
}

fn trace_frame(label: &str, dir: &str, h: FrameHead) {
    match dir {
        "in" => tracing::info!(target: TRACE_TARGET, "ws {label} → synack {h}"),
        _ => tracing::info!(target: TRACE_TARGET, "ws synack → {label} {h}"),
    }
}

/// What tungstenite reads from and writes to: the bytes the receiver just got (then
/// `WouldBlock`, which tungstenite treats as "no more for now" and keeps its state), and the
/// real stream for writing.
struct Io<'a, S> {
    input: &'a [u8],
    stream: &'a mut S,
    tap: &'a mut Option<FrameTap>,
    label: &'a str,
}

impl<S> Read for Io<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl<S: Write> Write for Io<'_, S> {
    /// All or nothing: tungstenite drains its buffer by what `write` returns, which would
    /// copy a 16 MiB buffer once per partial write; a blocking `write_all` makes it one.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write_all(buf)?;
        if let Some(tap) = self.tap.as_mut() {
            tap.feed(buf, |h| trace_frame(self.label, "out", h));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}
