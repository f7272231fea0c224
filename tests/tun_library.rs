//! The library API on a real TUN: synack as a client of the kernel (active open), and the
//! kernel resetting a connection to synack. The stack runs in-process, on a thread that has
//! entered the test's namespace.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddrV4};
use std::time::Duration;

use common::*;
use synack::device::Tun;
use synack::runtime::StackOptions;
use synack::stack::HostConfig;
use synack::{Stack, TcpListener, TcpStream};

fn start_stack() -> Stack {
    let tun = Tun::open("synack0").expect("open synack0");
    let opts = StackOptions { host: HostConfig { addr: STACK_IP, ..Default::default() }, ..Default::default() };
    Stack::new(tun, opts).expect("start the stack")
}

#[test]
fn active_open_to_the_kernel_moves_data_both_ways() {
    let Some(()) = require_root("active_open_to_the_kernel_moves_data_both_ways") else { return };
    let ns = Netns::new("client");
    let (sent, echoed, eof) = ns.run(|| {
        let stack = start_stack();
        let kernel = std::net::TcpListener::bind(SocketAddrV4::new(KERNEL_IP, 5000)).unwrap();
        let server = std::thread::spawn(move || {
            // The kernel echoes, then closes first after our FIN.
            let (mut s, _) = kernel.accept().unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            s.write_all(&all).unwrap();
        });
        let data = random_bytes(300_000, 9);
        let s = TcpStream::connect_timeout(&stack, SocketAddrV4::new(KERNEL_IP, 5000), Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(s.peer_addr().unwrap(), SocketAddrV4::new(KERNEL_IP, 5000).into());
        (&s).write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut back = Vec::new();
        (&s).read_to_end(&mut back).unwrap();
        let eof = (&s).read(&mut [0u8; 8]).unwrap();
        server.join().unwrap();
        stack.shutdown(Duration::from_millis(100));
        (sha256(&data), sha256(&back), eof)
    });
    assert_eq!(sent, echoed);
    assert_eq!(eof, 0);
}

#[test]
fn connect_to_a_closed_kernel_port_is_refused() {
    let Some(()) = require_root("connect_to_a_closed_kernel_port_is_refused") else { return };
    let ns = Netns::new("krefused");
    let kind = ns.run(|| {
        let stack = start_stack();
        let err = TcpStream::connect_timeout(&stack, SocketAddrV4::new(KERNEL_IP, 5999), Some(Duration::from_secs(5)))
            .unwrap_err();
        err.kind()
    });
    assert_eq!(kind, ErrorKind::ConnectionRefused);
}

#[test]
fn kernel_reset_reaches_the_reader_as_connection_reset() {
    let Some(()) = require_root("kernel_reset_reaches_the_reader_as_connection_reset") else { return };
    let ns = Netns::new("reset");
    let kind = ns.run(|| {
        let stack = start_stack();
        let listener = TcpListener::bind(&stack, 6000).unwrap();
        let client = std::thread::spawn(|| {
            let s = std::net::TcpStream::connect(SocketAddrV4::new(STACK_IP, 6000)).unwrap();
            // Closing with unread data makes the kernel send a RST (RFC 2525 §2.17).
            std::thread::sleep(Duration::from_millis(200));
            drop(s);
        });
        let s = listener.accept().unwrap();
        (&s).write_all(b"never read").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let r = (&s).read(&mut [0u8; 16]);
        client.join().unwrap();
        r.map(|_| ErrorKind::Other).unwrap_or_else(|e| e.kind())
    });
    assert_eq!(kind, ErrorKind::ConnectionReset);
}
