//! The one bulk-transfer client `scripts/bench.sh` runs against every stack (synack on a TUN,
//! the kernel on a veth, …), so that only the server side differs between rows of the table.
//!
//! ```text
//! bulk_client down ADDR N   GET /bytes/N over HTTP/1.1, read exactly N body bytes (the length
//!                           from Content-Length), check every byte against the pattern
//! bulk_client up ADDR N     write N bytes to a discard server (RFC 863), shut down the write
//!                           side, wait for the server's FIN
//! ```
//!
//! The clock starts before `connect` and stops at the last body byte (down) or at the server's
//! FIN (up), so both include the handshake. On success it prints one line to stdout:
//!
//! ```text
//! result dir=down bytes=100000000 secs=0.123456 mbps=810.05
//! ```
//!
//! (`mbps` is 10^6 bytes per second.) Any failure (short body, wrong byte, refused) prints a
//! message to stderr and exits 1. Bounding the run time is the caller's job (`timeout`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use synack::app::http::{fill_pattern, PATTERN_PERIOD};

const CHUNK: usize = 256 * 1024;

fn main() {
    if let Err(e) = run() {
        eprintln!("bulk_client: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, addr, n] = args.as_slice() else {
        bail!("usage: bulk_client down|up ADDR:PORT BYTES");
    };
    let addr: SocketAddr = addr.parse().with_context(|| format!("bad address {addr:?}"))?;
    let n: u64 = n.parse().with_context(|| format!("bad byte count {n:?}"))?;
    let start = Instant::now();
    match dir.as_str() {
        "down" => download(addr, n)?,
        "up" => upload(addr, n)?,
        other => bail!("unknown direction {other:?}: use down or up"),
    }
    let secs = start.elapsed().as_secs_f64();
    println!("result dir={dir} bytes={n} secs={secs:.6} mbps={:.2}", n as f64 / secs / 1e6);
    Ok(())
}

/// A run of the `/bytes/N` pattern long enough that the expected bytes at any offset, up to
/// `CHUNK` of them, are one slice of it.
fn pattern_block() -> Vec<u8> {
    let mut block = vec![0u8; CHUNK + PATTERN_PERIOD as usize];
    fill_pattern(0, &mut block);
    block
}

fn expected(block: &[u8], offset: u64, len: usize) -> &[u8] {
    let start = (offset % PATTERN_PERIOD) as usize;
    &block[start..start + len]
}

fn download(addr: SocketAddr, n: u64) -> Result<()> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    // One write, one segment (with Nagle off `write!` sends each formatted piece on its own).
    let req = format!("GET /bytes/{n} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", addr.ip());
    s.write_all(req.as_bytes())?;

    // Read until the end of the header section; whatever follows it is body.
    let mut buf = vec![0u8; CHUNK];
    let mut have = 0;
    let head_end = loop {
        if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        ensure!(have < 64 * 1024, "no end of the response header in {have} bytes");
        let got = s.read(&mut buf[have..])?;
        ensure!(got > 0, "connection closed inside the response header");
        have += got;
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response header is not UTF-8")?;
    let status = head.lines().next().unwrap_or_default();
    ensure!(status.starts_with("HTTP/1.1 200"), "unexpected status line {status:?}");
    let len: u64 = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")))
        .map(|(_, v)| v.trim().parse())
        .context("no Content-Length in the response")?
        .context("bad Content-Length")?;
    ensure!(len == n, "Content-Length {len}, asked for {n}");

    let block = pattern_block();
    let mut got = 0u64;
    let check = |data: &[u8], got: &mut u64| -> Result<()> {
        ensure!(*got + data.len() as u64 <= n, "more body bytes than Content-Length {n}");
        if data != expected(&block, *got, data.len()) {
            let i = data.iter().enumerate().position(|(i, &b)| b != expected(&block, *got + i as u64, 1)[0]);
            bail!("wrong byte at body offset {}", *got + i.unwrap_or(0) as u64);
        }
        *got += data.len() as u64;
        Ok(())
    };
    check(&buf[head_end..have], &mut got)?;
    while got < n {
        let want = CHUNK.min((n - got) as usize);
        let k = s.read(&mut buf[..want])?;
        ensure!(k > 0, "connection closed after {got} of {n} body bytes");
        check(&buf[..k], &mut got)?;
    }
    Ok(())
}

fn upload(addr: SocketAddr, n: u64) -> Result<()> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    let block = pattern_block();
    let mut sent = 0u64;
    while sent < n {
        let len = CHUNK.min((n - sent) as usize);
        s.write_all(expected(&block, sent, len)).with_context(|| format!("writing after {sent} bytes"))?;
        sent += len as u64;
    }
    s.shutdown(Shutdown::Write)?;
    // A discard server sends nothing; its FIN (EOF here) says it has read everything.
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(k) => bail!("discard server sent {k} bytes"),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("waiting for the server's FIN"),
        }
    }
}
