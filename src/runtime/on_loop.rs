//! Services that run on the event loop itself, for protocols simple enough never to block
//! (discard, echo). A blocking service costs a thread per connection, and a sleep and a
//! wake-up per readiness change: the loop hands data to the thread, the thread runs, the
//! loop runs again. On a two-CPU machine that third busy thread (beside the loop and the
//! peer) is what set the receiving rate. A loop service is called right after the batch
//! that made its connection ready, with the stack locked, and reads without copying when it
//! only drops the bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::stack::{ConnId, ConnMap, Host};
use crate::tcp::State;

/// A service on the event loop. Its calls hold the stack's lock: they must not block, nor
/// call the `Stack` (that would lock it again).
pub trait LoopService: Send {
    /// `conn` was accepted, or what it can do changed (readable, writable, closed, failed),
    /// or its deadline passed ([`LoopConn::timed_out`]), or it asked to be called
    /// [`again`](LoopConn::again). Do what can be done now; the next change calls again.
    /// Call [`LoopConn::release`] when done with the connection (as dropping a `TcpStream`
    /// would), or [`LoopConn::hand_over`] to give it to a thread that blocks (see
    /// [`HandOff`]). A connection that ends up CLOSED is released whatever the service did.
    fn ready(&mut self, conn: &mut LoopConn<'_>);

    /// Whether to be called for every arrival of data, not only when the connection becomes
    /// readable: for a service that looks at data without taking it (HTTP waiting for the
    /// rest of a request head). A service that reads all it is given does not need it.
    fn hears_every_arrival(&self) -> bool {
        false
    }
}

/// One connection as a loop service sees it: non-blocking calls, `WouldBlock` when nothing
/// can be done now.
pub struct LoopConn<'a> {
    host: &'a mut Host,
    id: ConnId,
    now: Instant,
    released: bool,
    handed_over: bool,
    again: bool,
    timed_out: bool,
    deadline: Option<Option<Instant>>,
}

impl LoopConn<'_> {
    pub fn id(&self) -> ConnId {
        self.id
    }

    fn conn_call<R>(&mut self, f: impl FnOnce(&mut crate::tcp::Connection) -> io::Result<R>) -> io::Result<R> {
        let (now, id) = (self.now, self.id);
        self.host.with_conn(now, id, f).unwrap_or_else(|| Err(io::ErrorKind::NotConnected.into()))
    }

    /// Read into `buf`: `Ok(0)` at end of stream.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn_call(|c| c.recv(buf))
    }

    /// Copy received bytes without consuming them: `Ok(0)` at end of stream.
    pub fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn_call(|c| c.peek(buf))
    }

    /// Drop up to `max` received bytes unread: `Ok(0)` at end of stream.
    pub fn skip(&mut self, max: usize) -> io::Result<usize> {
        self.conn_call(|c| c.recv_skip(max))
    }

    /// Queue what fits of `data` for sending.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn_call(|c| c.send(data))
    }

    /// The peer's address.
    pub fn remote(&self) -> Option<std::net::SocketAddrV4> {
        self.host.conn(self.id).map(|c| c.remote)
    }

    /// Drop `share` of this connection's outgoing segments from now on (seeded, traced as
    /// deliberate drops): loss on one connection, for a learner to watch.
    pub fn set_drop_fault(&mut self, share: f64, seed: u64) {
        self.host.set_drop_fault(self.id, share, seed);
    }

    /// The message queued so far is complete: send its small tail without a Nagle wait.
    pub fn push(&mut self) -> io::Result<()> {
        self.conn_call(|c| {
            c.push();
            Ok(())
        })
    }

    /// Bytes `send` would take now.
    pub fn send_room(&self) -> usize {
        self.host.conn(self.id).map_or(0, |c| c.send_room())
    }

    /// Send a FIN after what is queued.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        let now = self.now;
        self.conn_call(|c| {
            c.shutdown_write(now);
            Ok(())
        })
    }

    /// The service is done with the connection: it closes as a dropped stream would.
    pub fn release(&mut self) {
        self.released = true;
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Call `ready` at `at` even if nothing changes (`None`: no deadline). One per
    /// connection: a new one replaces the last.
    pub fn set_deadline(&mut self, at: Option<Instant>) {
        self.deadline = Some(at);
    }

    /// This call is because the deadline passed.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// Call `ready` again on the loop's next pass: a service that stops with work left (so
    /// as not to hold the loop) says so, since nothing may change to call it.
    pub fn again(&mut self) {
        self.again = true;
    }

    /// The most the receive buffer holds: a peeking reader waiting for more than this would
    /// wait forever.
    pub fn recv_capacity(&self) -> usize {
        self.host.conn(self.id).map_or(0, |c| c.recv_capacity())
    }

    pub fn is_handed_over(&self) -> bool {
        self.handed_over
    }

    /// The peer sent its FIN: what is buffered is all there will be.
    pub fn peer_closed(&self) -> bool {
        self.host.conn(self.id).is_none_or(|c| c.state().fin_received())
    }

    /// Give the connection, with whatever is still unread, to the threads accepting on this
    /// service's [`HandOff`]; without one, it is released.
    pub fn hand_over(&mut self) {
        self.handed_over = true;
    }
}

/// Connections a loop service handed over, for threads to accept as `TcpStream`s.
#[derive(Clone, Default)]
pub struct HandOff {
    queue: Arc<(Mutex<VecDeque<ConnId>>, Condvar)>,
}

impl HandOff {
    fn push(&self, id: ConnId) {
        if let Ok(mut q) = self.queue.0.lock() {
            q.push_back(id);
            self.queue.1.notify_one();
        }
    }

    /// The next connection handed over, waiting at most `timeout`.
    pub(super) fn next(&self, timeout: Duration) -> io::Result<ConnId> {
        let poisoned = || io::Error::other("hand-off queue poisoned by a panic");
        let deadline = Instant::now() + timeout;
        let mut q = self.queue.0.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(id) = q.pop_front() {
                return Ok(id);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            q = self.queue.1.wait_timeout(q, left).map_err(|_| poisoned())?.0;
        }
    }
}

/// The loop services and their connections, kept with the host.
#[derive(Default)]
pub(super) struct LoopServices {
    services: HashMap<u16, Box<dyn LoopService>>,
    hand_offs: HashMap<u16, HandOff>,
    conns: ConnMap<u16>,
    /// Connections whose readiness changed outside the loop's own pass (another thread
    /// flushed first), or that asked to be called again: served on the loop's next pass.
    pending: Vec<ConnId>,
    /// The services' deadlines: the heap may hold stale entries, `deadline_of` is the truth.
    deadlines: BinaryHeap<Reverse<(Instant, ConnId)>>,
    deadline_of: ConnMap<Instant>,
}

/// Passes per loop iteration: a service's own calls change readiness again (reading makes
/// room, sending fills the buffer), each change one more pass; a few settle it.
const MAX_PASSES: usize = 16;

impl LoopServices {
    pub(super) fn add(
        &mut self,
        host: &mut Host,
        port: u16,
        service: Box<dyn LoopService>,
        hand_off: Option<HandOff>,
    ) -> io::Result<()> {
        host.listen(port, None)?;
        self.services.insert(port, service);
        if let Some(h) = hand_off {
            self.hand_offs.insert(port, h);
        }
        Ok(())
    }

    pub(super) fn serves(&self, port: u16) -> bool {
        self.services.contains_key(&port)
    }

    pub(super) fn owns(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    /// A readiness change seen outside `serve`; true if the loop must run for it.
    pub(super) fn note_pending(&mut self, id: ConnId) {
        self.pending.push(id);
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The earliest deadline a service set. The heap holds one entry per connection at
    /// most, never later than its deadline: a deadline moved later is re-queued only when
    /// its old entry comes up.
    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((t, id))) = self.deadlines.peek() {
            match self.deadline_of.get(&id) {
                Some(&d) if d == t => return Some(t),
                Some(&d) => {
                    self.deadlines.pop();
                    self.deadlines.push(Reverse((d, id)));
                }
                None => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    /// Accept on the services' ports and call them for every connection whose readiness
    /// changed, until nothing changes (or MAX_PASSES). What the host reported for other
    /// connections and ports is left for `hand_over`.
    pub(super) fn serve(&mut self, host: &mut Host, now: Instant) {
        if self.services.is_empty() {
            return;
        }
        let mut work = std::mem::take(&mut self.pending);
        let mut expired = Vec::new();
        while self.next_deadline().is_some_and(|t| t <= now) {
            if let Some(Reverse((_, id))) = self.deadlines.pop() {
                self.deadline_of.remove(&id);
                expired.push(id);
            }
        }
        for id in expired {
            self.call(host, now, id, true);
        }
        for _ in 0..MAX_PASSES {
            let (conns, ports) = host.take_touched();
            let (mut others, mut other_ports) = (Vec::new(), Vec::new());
            other_ports.extend(ports.into_iter().filter(|p| !self.services.contains_key(p)));
            // Every service port, not only those reported: a report taken by another
            // thread's flush is not lost.
            for (&port, service) in &self.services {
                let every = service.hears_every_arrival();
                while let Some(id) = host.accept(port) {
                    self.conns.insert(id, port);
                    if every {
                        host.with_conn(now, id, |c| c.report_arrivals(true));
                    }
                    work.push(id);
                }
            }
            for id in conns {
                if self.conns.contains_key(&id) {
                    work.push(id);
                } else {
                    others.push(id);
                }
            }
            host.touch_again(others, other_ports);
            if work.is_empty() {
                return;
            }
            work.sort_unstable();
            work.dedup();
            for id in work.drain(..) {
                self.call(host, now, id, false);
            }
        }
        // Still changing: finish on the next pass (the caller wakes the loop for it).
        let (conns, ports) = host.take_touched();
        let (mine, others): (Vec<ConnId>, Vec<ConnId>) = conns.into_iter().partition(|id| self.conns.contains_key(id));
        self.pending.extend(mine);
        host.touch_again(others, ports);
    }

    fn call(&mut self, host: &mut Host, now: Instant, id: ConnId, timed_out: bool) {
        let Some(&port) = self.conns.get(&id) else { return };
        let Some(service) = self.services.get_mut(&port) else { return };
        let mut conn = LoopConn {
            host: &mut *host,
            id,
            now,
            released: false,
            handed_over: false,
            again: false,
            timed_out,
            deadline: None,
        };
        // A service's bug ends its connection, not the event loop (and with it the stack).
        let panicked = catch_unwind(AssertUnwindSafe(|| service.ready(&mut conn))).is_err();
        if panicked {
            tracing::error!("a loop service panicked on port {port}; its connection is reset");
            conn.released = true;
        }
        let (released, handed_over, again, deadline) = (conn.released, conn.handed_over, conn.again, conn.deadline);
        if let Some(at) = deadline {
            match at {
                Some(t) => {
                    if self.deadline_of.insert(id, t).is_none_or(|old| t < old) {
                        self.deadlines.push(Reverse((t, id)));
                    }
                }
                None => {
                    self.deadline_of.remove(&id);
                }
            }
        }
        if panicked {
            host.with_conn(now, id, |c| c.abort(now, io::ErrorKind::ConnectionAborted));
        }
        let closed = host.conn(id).is_none_or(|c| c.state() == State::Closed);
        if handed_over {
            self.conns.remove(&id);
            self.deadline_of.remove(&id);
            // A blocking reader hears of data becoming readable, as any stream's does.
            host.with_conn(now, id, |c| c.report_arrivals(false));
            match self.hand_offs.get(&port) {
                Some(h) => h.push(id),
                None => host.release(now, id),
            }
        } else if released || closed {
            self.conns.remove(&id);
            self.deadline_of.remove(&id);
            host.release(now, id);
        } else if again {
            self.pending.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
    use std::time::Duration;

    use crate::app::services::{LoopDiscard, LoopEcho};
    use crate::device::Pipe;
    use crate::runtime::{Stack, StackOptions, TcpStream};
    use crate::stack::HostConfig;

    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);

    /// A server stack with the loop services and a client stack, joined in memory; 3% of
    /// the packets reaching the server are lost, so retransmissions and out-of-order data
    /// change readiness in every order.
    fn pair() -> (Stack, Stack) {
        let (a, b) = Pipe::pair().unwrap();
        let mut server = StackOptions { host: HostConfig { addr: SERVER, ..Default::default() }, ..Default::default() };
        server.faults_in = Some("loss=0.03,seed=5".parse().unwrap());
        let client = StackOptions {
            host: HostConfig { addr: Ipv4Addr::new(10, 7, 0, 1), ..Default::default() },
            ..Default::default()
        };
        let server = Stack::new(a, server).unwrap();
        server.serve_on_loop(7, LoopEcho::default()).unwrap();
        server.serve_on_loop(9, LoopDiscard).unwrap();
        (server, Stack::new(b, client).unwrap())
    }

    fn connect(client: &Stack, port: u16) -> TcpStream {
        let s =
            TcpStream::connect_timeout(client, SocketAddrV4::new(SERVER, port), Some(Duration::from_secs(10))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    #[test]
    fn echo_on_the_loop_returns_every_byte_then_closes() {
        let (_server, client) = pair();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let s = connect(&client, 7);
        let mut w = s.try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        (&s).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == data, "{} of {} bytes came back, or different ones", back.len(), data.len());
    }

    #[test]
    fn discard_on_the_loop_takes_everything_and_answers_the_fin() {
        let (server, client) = pair();
        let s = connect(&client, 9);
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..32 {
            (&s).write_all(&chunk).unwrap();
        }
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        assert_eq!((&s).read_to_end(&mut rest).unwrap(), 0, "discard sends nothing, then its FIN");
        let conns = server.connections();
        assert!(conns.iter().all(|c| c.stats.bytes_in == 32 * 64 * 1024 || c.local.port() != 9), "{conns:?}");
    }

    #[test]
    fn many_connections_at_once() {
        let (_server, client) = pair();
        let threads: Vec<_> = (0..8u8)
            .map(|k| {
                let client = client.clone();
                std::thread::spawn(move || {
                    let s = connect(&client, 7);
                    let msg = vec![k; 100_000];
                    (&s).write_all(&msg).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut back = Vec::new();
                    (&s).read_to_end(&mut back).unwrap();
                    assert!(back == msg, "connection {k}");
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    /// A server and a client stack joined in memory, without faults.
    fn clean_pair() -> (Stack, Stack) {
        let (a, b) = Pipe::pair().unwrap();
        let server = StackOptions { host: HostConfig { addr: SERVER, ..Default::default() }, ..Default::default() };
        let client = StackOptions {
            host: HostConfig { addr: Ipv4Addr::new(10, 7, 0, 1), ..Default::default() },
            ..Default::default()
        };
        (Stack::new(a, server).unwrap(), Stack::new(b, client).unwrap())
    }

    fn http_server(thread_path: fn(&str) -> bool) -> (Stack, Stack, crate::runtime::HandOff) {
        let (server, client) = clean_pair();
        let cfg = crate::app::http::HttpConfig::default();
        let hand_off =
            server.serve_on_loop_with_hand_off(80, crate::app::loop_http::LoopHttp::new(cfg, thread_path)).unwrap();
        (server, client, hand_off)
    }

    fn response_body(all: &[u8]) -> (&str, &[u8]) {
        let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
        (std::str::from_utf8(&all[..end]).unwrap(), &all[end..])
    }

    #[test]
    fn http_on_the_loop_waits_for_a_head_that_arrives_in_pieces() {
        let (_server, client, _) = http_server(|_| false);
        let s = connect(&client, 80);
        s.set_nodelay(true).unwrap();
        for piece in ["GET /bytes/1000", "00 HTTP/1.1\r\nHost: x\r\n", "Connection: close\r\n", "\r\n"] {
            (&s).write_all(piece.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut all = Vec::new();
        (&s).read_to_end(&mut all).unwrap();
        let (head, body) = response_body(&all);
        assert!(head.starts_with("HTTP/1.1 200 OK") && head.contains("Content-Length: 100000"), "{head}");
        let want: Vec<u8> = (0..100_000u64).map(crate::app::http::pattern_byte).collect();
        assert!(body == want.as_slice(), "{} body bytes, or not the pattern", body.len());
    }

    #[test]
    fn http_on_the_loop_answers_pipelined_requests_in_order() {
        let (_server, client, _) = http_server(|_| false);
        let s = connect(&client, 80);
        (&s).write_all(b"GET /bytes/3 HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nHEAD /bytes/5 HTTP/1.0\r\n\r\n")
            .unwrap();
        let mut all = Vec::new();
        (&s).read_to_end(&mut all).unwrap();
        let text = String::from_utf8_lossy(&all);
        let statuses: Vec<&str> =
            text.match_indices("HTTP/1.1 ").filter_map(|(i, _)| text[i..].split("\r\n").next()).collect();
        assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"], "{text}");
        assert!(text.contains("\r\n\r\n\x00\x01\x02HTTP/1.1 404"), "the 3-byte body between the answers: {text:?}");
        assert!(text.ends_with("Content-Length: 5\r\n\r\n"), "HEAD: no body, and HTTP/1.0 closes: {text:?}");
    }

    #[test]
    fn http_hands_a_thread_path_over_unread() {
        let (server, client, hand_off) = http_server(|p| p == "/thread");
        let srv = server.clone();
        let thread = std::thread::spawn(move || {
            let mut s = srv.take_handed(&hand_off, Duration::from_secs(10)).unwrap();
            // The thread reads the request from its first byte.
            crate::app::http::serve(&mut s, &crate::app::http::HttpConfig::default()).unwrap();
        });
        let s = connect(&client, 80);
        (&s).write_all(b"GET /thread HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut all = Vec::new();
        (&s).read_to_end(&mut all).unwrap();
        thread.join().unwrap();
        let (head, body) = response_body(&all);
        assert!(head.starts_with("HTTP/1.1 404 Not Found"), "{head}");
        assert!(body.starts_with(b"404 Not Found"), "{body:?}");
    }

    #[test]
    fn an_echo_whose_peer_resets_with_a_full_send_buffer_is_released() {
        let (server, client) = pair();
        let s = connect(&client, 7);
        // Never read: the echo's send buffer fills and it stops reading; our writes then
        // stall too, and a short timeout ends them.
        s.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
        let chunk = vec![1u8; 1 << 20];
        for _ in 0..32 {
            if (&s).write_all(&chunk).is_err() {
                break;
            }
        }
        // Abort: unread data in our buffer, so closing sends a RST.
        drop(s);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while server.connections().iter().any(|c| c.local.port() == 7) {
            assert!(std::time::Instant::now() < deadline, "still held: {:?}", server.connections());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn http_on_the_loop_closes_an_idle_connection() {
        let (server, client) = clean_pair();
        let http =
            crate::app::loop_http::LoopHttp::new(Default::default(), |_| false).with_idle(Duration::from_millis(300));
        server.serve_on_loop(80, http).unwrap();
        let s = connect(&client, 80);
        // One request answered, then nothing: the server closes after the idle time.
        (&s).write_all(b"GET /bytes/2 HTTP/1.1\r\n\r\n").unwrap();
        let start = std::time::Instant::now();
        let mut all = Vec::new();
        (&s).read_to_end(&mut all).unwrap();
        let waited = start.elapsed();
        assert!(all.ends_with(b"\r\n\r\n\x00\x01"), "{:?}", String::from_utf8_lossy(&all));
        assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(5), "closed after {waited:?}");
    }

    /// A server whose HTTP heads must arrive within 300 ms (idle keep-alive: 120 s).
    fn impatient_http() -> (Stack, Stack) {
        let (server, client) = clean_pair();
        let http = crate::app::loop_http::LoopHttp::new(Default::default(), |_| false)
            .with_head_timeout(Duration::from_millis(300));
        server.serve_on_loop(80, http).unwrap();
        (server, client)
    }

    fn read_all_timed(s: &TcpStream) -> (String, Duration) {
        let start = std::time::Instant::now();
        let mut all = Vec::new();
        (&*s).read_to_end(&mut all).unwrap();
        (String::from_utf8_lossy(&all).into_owned(), start.elapsed())
    }

    #[test]
    fn http_on_the_loop_answers_408_to_a_head_trickled_past_its_deadline() {
        let (_server, client) = impatient_http();
        let s = connect(&client, 80);
        (&s).write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(150));
        (&s).write_all(b"X-Slow: 1\r\n").unwrap();
        let (text, waited) = read_all_timed(&s);
        assert!(text.starts_with("HTTP/1.1 408 Request Timeout") && text.contains("Connection: close"), "{text}");
        assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
    }

    #[test]
    fn http_on_the_loop_closes_a_connection_that_sends_no_head() {
        let (_server, client) = impatient_http();
        let s = connect(&client, 80);
        let (text, waited) = read_all_timed(&s);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(5), "closed after {waited:?}");
    }

    #[test]
    fn http_on_the_loop_lets_a_keep_alive_connection_idle_past_the_head_deadline() {
        let (_server, client) = impatient_http();
        let s = connect(&client, 80);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        for round in 0..2 {
            (&s).write_all(b"GET /bytes/2 HTTP/1.1\r\n\r\n").unwrap();
            let mut got = Vec::new();
            while !got.ends_with(b"\r\n\r\n\x00\x01") {
                let n = (&s).read(&mut buf).unwrap();
                assert!(n > 0, "round {round}: closed after {:?}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&buf[..n]);
            }
            // Idle between requests: the idle timeout applies, not the head's.
            std::thread::sleep(Duration::from_millis(600));
        }
    }

    #[test]
    fn http_closing_with_requests_unread_still_delivers_the_answer() {
        let (_server, client, _) = http_server(|_| false);
        let s = connect(&client, 80);
        (&s).write_all(b"GET /bytes/300000 HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n").unwrap();
        let mut all = Vec::new();
        (&s).read_to_end(&mut all).expect("a FIN after the whole answer, not a reset");
        let (head, body) = response_body(&all);
        assert!(head.contains("Content-Length: 300000"), "{head}");
        assert_eq!(body.len(), 300_000);
    }
}
