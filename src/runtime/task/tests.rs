//! The poll layer without any async runtime: a hand-made waker counts how often a task is
//! polled and woken, to show that a waiting task sleeps until its edge and is not polled in
//! a loop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::{TaskListener, TaskStream};
use crate::device::Pipe;
use crate::runtime::{Stack, StackOptions};
use crate::stack::HostConfig;
use crate::TcpStream;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);

fn stack(dev: Pipe, addr: Ipv4Addr, send_buf: Option<usize>) -> Stack {
    let mut host = HostConfig { addr, ..Default::default() };
    if let Some(b) = send_buf {
        host.tcp.send_buf = b;
    }
    Stack::new(dev, StackOptions { host, ..Default::default() }).unwrap()
}

/// Unparks the polling thread and counts the wake-ups.
struct Counter {
    thread: std::thread::Thread,
    wakes: AtomicUsize,
}

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Poll `f` until ready, parking in between (a park may return early: that only costs a
/// poll). Returns the value and how many times it was polled and woken.
fn run<T>(mut f: impl FnMut(&mut Context<'_>) -> Poll<T>) -> (T, usize, usize) {
    let counter = Arc::new(Counter { thread: std::thread::current(), wakes: AtomicUsize::new(0) });
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(v) = f(&mut cx) {
            return (v, polls, counter.wakes.load(Ordering::SeqCst));
        }
        assert!(Instant::now() < deadline, "not ready after 10 s ({polls} polls)");
        std::thread::park_timeout(Duration::from_secs(1));
    }
}

#[test]
fn a_waiting_task_is_woken_by_its_edge_not_polled_in_a_loop() {
    let (a, b) = Pipe::pair().unwrap();
    let (server, client) = (stack(a, SERVER, None), stack(b, CLIENT, None));
    let listener = TaskListener::bind(&server, 8000, None).unwrap();
    let peer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let s = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 8000)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        (&s).write_all(b"hello").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        (&s).read_to_end(&mut rest).unwrap();
        rest
    });
    let (conn, polls, wakes) = run(|cx| listener.poll_accept(cx));
    let conn = conn.unwrap();
    // 200 ms of waiting: one poll before, one after the wake (a spurious unpark at most).
    assert!(polls <= 3 && wakes >= 1, "accept: {polls} polls, {wakes} wakes");
    let mut buf = [0u8; 16];
    let (n, polls, wakes) = run(|cx| conn.poll_read(cx, &mut buf));
    assert_eq!(&buf[..n.unwrap()], b"hello");
    assert!(polls <= 3 && wakes >= 1, "read: {polls} polls, {wakes} wakes");
    let (eof, _, _) = run(|cx| conn.poll_read(cx, &mut buf));
    assert_eq!(eof.unwrap(), 0, "the peer's FIN is end of stream");
    let (n, _, _) = run(|cx| conn.poll_write(cx, b"bye"));
    assert_eq!(n.unwrap(), 3);
    drop(conn);
    assert_eq!(peer.join().unwrap(), b"bye", "dropping the stream sends what is queued, then a FIN");
}

#[test]
fn a_writer_with_a_full_buffer_is_woken_when_the_peer_reads() {
    let (a, b) = Pipe::pair().unwrap();
    // A small send buffer fills long before the peer's 4 MiB window.
    let (server, client) = (stack(a, SERVER, Some(64 * 1024)), stack(b, CLIENT, None));
    let listener = crate::TcpListener::bind(&client, 9000).unwrap();
    let s = TaskStream::connect(&server, SocketAddrV4::new(CLIENT, 9000)).unwrap();
    let (connected, _, _) = run(|cx| s.poll_connected(cx));
    connected.unwrap();
    let peer = listener.accept().unwrap();
    let total = 8 << 20;
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let mut got = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match (&peer).read(&mut buf).unwrap() {
                0 => return got,
                n => got += n,
            }
        }
    });
    let chunk = vec![5u8; 32 * 1024];
    let (mut sent, mut polls, mut wakes) = (0, 0, 0);
    while sent < total {
        let want = chunk.len().min(total - sent);
        let (n, p, w) = run(|cx| s.poll_write(cx, &chunk[..want]));
        sent += n.unwrap();
        polls += p;
        wakes += w;
    }
    s.shutdown_write().unwrap();
    assert_eq!(reader.join().unwrap(), total);
    // Each wait is one edge (a third of the buffer freed): the polls stay near the writes.
    let writes = total / chunk.len();
    assert!(wakes >= 1 && polls <= writes + 2 * wakes + 2, "{writes} writes took {polls} polls, {wakes} wakes");
}

#[test]
fn a_stack_shutting_down_ends_a_waiting_accept() {
    let (a, _b) = Pipe::pair().unwrap();
    let server = stack(a, SERVER, None);
    let listener = TaskListener::bind(&server, 8000, None).unwrap();
    let stopper = server.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        stopper.shutdown(Duration::from_millis(10));
    });
    let (r, _, wakes) = run(|cx| listener.poll_accept(cx));
    t.join().unwrap();
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionAborted);
    assert!(wakes >= 1);
}
