//! Services that run on the event loop itself, for protocols simple enough never to block
//! (discard, echo). A blocking service costs a thread per connection, and a sleep and a
//! wake-up per readiness change: the loop hands data to the thread, the thread runs, the
//! loop runs again. On a two-CPU machine that third busy thread (beside the loop and the
//! peer) is what set the receiving rate. A loop service is called right after the batch
//! that made its connection ready, with the stack locked, and reads without copying when it
//! only drops the bytes.

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use crate::stack::{ConnId, Host};

/// A service on the event loop. Its calls hold the stack's lock: they must not block.
pub trait LoopService: Send {
    /// `conn` was accepted, or what it can do changed (readable, writable, closed, failed).
    /// Do what can be done now; the next change calls again. Call [`LoopConn::release`]
    /// when done with the connection (as dropping a `TcpStream` would).
    fn ready(&mut self, conn: &mut LoopConn<'_>);
}

/// One connection as a loop service sees it: non-blocking calls, `WouldBlock` when nothing
/// can be done now.
pub struct LoopConn<'a> {
    host: &'a mut Host,
    id: ConnId,
    now: Instant,
    released: bool,
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

    /// Drop up to `max` received bytes unread: `Ok(0)` at end of stream.
    pub fn skip(&mut self, max: usize) -> io::Result<usize> {
        self.conn_call(|c| c.recv_skip(max))
    }

    /// Queue what fits of `data` for sending.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn_call(|c| c.send(data))
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
}

/// The loop services and their connections, kept with the host.
#[derive(Default)]
pub(super) struct LoopServices {
    services: HashMap<u16, Box<dyn LoopService>>,
    conns: HashMap<ConnId, u16>,
    /// Connections whose readiness changed outside the loop's own pass (another thread
    /// flushed first): served on the loop's next pass.
    pending: Vec<ConnId>,
}

/// Passes per loop iteration: a service's own calls change readiness again (reading makes
/// room, sending fills the buffer), each change one more pass; a few settle it.
const MAX_PASSES: usize = 16;

impl LoopServices {
    pub(super) fn add(&mut self, host: &mut Host, port: u16, service: Box<dyn LoopService>) -> io::Result<()> {
        host.listen(port, None)?;
        self.services.insert(port, service);
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

    /// Accept on the services' ports and call them for every connection whose readiness
    /// changed, until nothing changes (or MAX_PASSES). What the host reported for other
    /// connections and ports is left for `hand_over`.
    pub(super) fn serve(&mut self, host: &mut Host, now: Instant) {
        if self.services.is_empty() {
            return;
        }
        let mut work = std::mem::take(&mut self.pending);
        for _ in 0..MAX_PASSES {
            let (conns, ports) = host.take_touched();
            let (mut others, mut other_ports) = (Vec::new(), Vec::new());
            other_ports.extend(ports.into_iter().filter(|p| !self.services.contains_key(p)));
            // Every service port, not only those reported: a report taken by another
            // thread's flush is not lost.
            for &port in self.services.keys() {
                while let Some(id) = host.accept(port) {
                    self.conns.insert(id, port);
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
            work.dedup();
            for id in work.drain(..) {
                self.call(host, now, id);
            }
        }
        // Still changing: finish on the next pass (the caller wakes the loop for it).
        let (conns, _) = host.take_touched();
        let (mine, others): (Vec<ConnId>, Vec<ConnId>) = conns.into_iter().partition(|id| self.conns.contains_key(id));
        self.pending.extend(mine);
        host.touch_again(others, Vec::new());
    }

    fn call(&mut self, host: &mut Host, now: Instant, id: ConnId) {
        let Some(&port) = self.conns.get(&id) else { return };
        let Some(service) = self.services.get_mut(&port) else { return };
        let mut conn = LoopConn { host: &mut *host, id, now, released: false };
        service.ready(&mut conn);
        if conn.released || host.conn(id).is_none() {
            self.conns.remove(&id);
            host.release(now, id);
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
}
