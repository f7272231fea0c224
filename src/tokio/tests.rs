//! The tokio types over two stacks joined in memory (a datagram socket pair): the kernel's
//! own behaviours (reset, refusal, timeout, FIN on drop) checked as a tokio program sees them.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::time::Duration;

use ::tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{TcpListener, TcpStream};
use crate::device::Pipe;
use crate::runtime::{Stack, StackOptions};
use crate::stack::HostConfig;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);

fn host(addr: Ipv4Addr) -> HostConfig {
    HostConfig { addr, ..Default::default() }
}

fn pair() -> (Stack, Stack) {
    let (a, b) = Pipe::pair().unwrap();
    let opts = |addr| StackOptions { host: host(addr), ..Default::default() };
    (Stack::new(a, opts(SERVER)).unwrap(), Stack::new(b, opts(CLIENT)).unwrap())
}

fn rt() -> ::tokio::runtime::Runtime {
    ::tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match ::tokio::time::timeout(Duration::from_secs(20), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not done in 20 s"),
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn echo_through_split_halves_returns_every_byte() {
    let (server, client) = pair();
    rt().block_on(async {
        let listener = TcpListener::bind(&server, 7).unwrap();
        let echo = ::tokio::spawn(async move {
            let (s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, SocketAddrV4::new(CLIENT, peer.port()).into());
            let (mut r, mut w) = s.into_split();
            ::tokio::io::copy(&mut r, &mut w).await.unwrap();
            // Dropping the write half sends the FIN.
        });
        let s = within("connect", TcpStream::connect(&client, SocketAddrV4::new(SERVER, 7))).await.unwrap();
        let (mut r, mut w) = s.into_split();
        let sent = data(3 << 20);
        let to_send = sent.clone();
        let writer = ::tokio::spawn(async move {
            w.write_all(&to_send).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        within("read back", r.read_to_end(&mut back)).await.unwrap();
        writer.await.unwrap();
        echo.await.unwrap();
        assert!(back == sent, "{} of {} bytes came back, or different ones", back.len(), sent.len());
    });
}

#[test]
fn connecting_to_a_port_nobody_listens_on_is_refused() {
    let (_server, client) = pair();
    let err = rt().block_on(TcpStream::connect(&client, SocketAddrV4::new(SERVER, 5999))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn an_unanswered_connect_times_out() {
    // The other end of the pipe has no stack: SYNs go nowhere.
    let (a, _silent) = Pipe::pair().unwrap();
    let mut h = host(CLIENT);
    h.tcp.initial_rto = Duration::from_millis(20);
    h.tcp.syn_retries = 2;
    let client = Stack::new(a, StackOptions { host: h, ..Default::default() }).unwrap();
    let err = rt().block_on(TcpStream::connect(&client, SocketAddrV4::new(SERVER, 80))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[test]
fn a_peer_reset_reaches_the_reader_as_connection_reset() {
    let (server, client) = pair();
    rt().block_on(async {
        let listener = TcpListener::bind(&server, 80).unwrap();
        let peer = std::thread::spawn(move || {
            let s = crate::TcpStream::connect(&client, SocketAddrV4::new(SERVER, 80)).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            // Closing with data unread resets (RFC 2525 §2.17).
            drop(s);
        });
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"never read").await.unwrap();
        let err = within("read", s.read(&mut [0u8; 8])).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        peer.join().unwrap();
    });
}

#[test]
fn writing_after_shutdown_is_a_broken_pipe_and_the_peer_sees_the_fin() {
    let (server, client) = pair();
    rt().block_on(async {
        let listener = TcpListener::bind(&server, 80).unwrap();
        let peer = std::thread::spawn(move || {
            let s = crate::TcpStream::connect(&client, SocketAddrV4::new(SERVER, 80)).unwrap();
            let mut got = Vec::new();
            (&s).read_to_end(&mut got).unwrap();
            got
        });
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"last words").await.unwrap();
        s.shutdown().await.unwrap();
        let err = s.write_all(b"more").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert_eq!(peer.join().unwrap(), b"last words");
    });
}

#[test]
fn dropping_a_stream_closes_it_and_the_read_half_sees_end_of_stream() {
    let (server, client) = pair();
    rt().block_on(async {
        let listener = TcpListener::bind(&server, 80).unwrap();
        let (conn, accepted) =
            ::tokio::join!(TcpStream::connect(&client, SocketAddrV4::new(SERVER, 80)), listener.accept());
        let (mut r, w) = conn.unwrap().into_split();
        let (mut s, _) = accepted.unwrap();
        // The client's write half gone: a FIN, while its read half still reads.
        drop(w);
        let mut buf = [0u8; 8];
        assert_eq!(within("eof", s.read(&mut buf)).await.unwrap(), 0);
        s.write_all(b"reply").await.unwrap();
        drop(s);
        let mut got = Vec::new();
        within("reply", r.read_to_end(&mut got)).await.unwrap();
        assert_eq!(got, b"reply");
    });
}

#[test]
fn blocking_and_async_serve_on_one_stack_at_once() {
    let (server, client) = pair();
    // A blocking echo on port 7, on a thread.
    let blocking = crate::TcpListener::bind(&server, 7).unwrap();
    let t = std::thread::spawn(move || {
        let mut s = blocking.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        s.write_all(&all).unwrap();
    });
    rt().block_on(async {
        // An async echo on port 8 of the same stack.
        let listener = TcpListener::bind(&server, 8).unwrap();
        ::tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            s.write_all(&all).await.unwrap();
        });
        let blocking_client = client.clone();
        let from_thread = ::tokio::task::spawn_blocking(move || {
            let s = crate::TcpStream::connect(&blocking_client, SocketAddrV4::new(SERVER, 7)).unwrap();
            (&s).write_all(&data(500_000)).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            (&s).read_to_end(&mut back).unwrap();
            back
        });
        let mut s = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 8)).await.unwrap();
        s.write_all(&data(400_000)).await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        within("async echo", s.read_to_end(&mut back)).await.unwrap();
        assert!(back == data(400_000), "async echo: {} bytes", back.len());
        let back = within("blocking echo", from_thread).await.unwrap();
        assert!(back == data(500_000), "blocking echo: {} bytes", back.len());
    });
    t.join().unwrap();
}

#[test]
fn many_connections_on_a_current_thread_runtime() {
    let (server, client) = pair();
    let rt = ::tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind(&server, 80).unwrap();
        ::tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else { return };
                ::tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..64u8)
            .map(|k| {
                let client = client.clone();
                ::tokio::spawn(async move {
                    let mut s = TcpStream::connect(&client, SocketAddrV4::new(SERVER, 80)).await.unwrap();
                    s.set_nodelay(true).unwrap();
                    for round in 0..20u8 {
                        let msg = [k, round, 1, 2, 3];
                        s.write_all(&msg).await.unwrap();
                        let mut back = [0u8; 5];
                        s.read_exact(&mut back).await.unwrap();
                        assert_eq!(back, msg);
                    }
                })
            })
            .collect();
        for c in clients {
            within("client", c).await.unwrap();
        }
    });
}
