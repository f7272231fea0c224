//! A hyper HTTP/1.1 client whose connection is synack's active open (feature `tokio`):
//!
//! ```text
//! sudo scripts/setup.sh                      # the TUN device synack0, kernel side 10.7.0.1
//! python3 -m http.server 8000 --bind 10.7.0.1 &
//! cargo run --example hyper_client_on_synack [-- ADDR:PORT [PATH [DEVICE]]]
//! ```
//!
//! hyper is used as it comes: `hyper::client::conn::http1` over a `synack::tokio::TcpStream`
//! (wrapped in hyper-util's `TokioIo`). Prints the status line and headers to stderr and the
//! body to stdout. Defaults: 10.7.0.1:8000, `/`, synack0.

use std::net::SocketAddrV4;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use synack::runtime::StackOptions;
use synack::Stack;

/// GET `path` from `server` over a connection synack opens; the whole answer.
pub async fn fetch(
    stack: &Stack,
    server: SocketAddrV4,
    path: &str,
) -> Result<Response<Bytes>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = synack::tokio::TcpStream::connect(stack, server).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection's own task: it reads and writes while `sender` waits for answers.
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection: {e}");
        }
    });
    let req = Request::get(path).header(hyper::header::HOST, server.to_string()).body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await?;
    let (head, body) = res.into_parts();
    let body = body.collect().await?.to_bytes();
    drop(sender);
    let _ = driver.await;
    Ok(Response::from_parts(head, body))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server: SocketAddrV4 =
        match args.first().map_or(Ok(SocketAddrV4::new([10, 7, 0, 1].into(), 8000)), |a| a.parse()) {
            Ok(a) => a,
            Err(_) => {
                eprintln!("usage: hyper_client_on_synack [ADDR:PORT [PATH [DEVICE]]]  (e.g. 10.7.0.1:8000 /)");
                std::process::exit(2);
            }
        };
    let path = args.get(1).map_or("/", String::as_str);
    let dev = args.get(2).map_or("synack0", String::as_str);
    let tun = match synack::device::Tun::open(dev) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("opening {dev}: {e} (create it with `sudo scripts/setup.sh`)");
            std::process::exit(1);
        }
    };
    let stack = match Stack::new(tun, StackOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("starting the stack: {e}");
            std::process::exit(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starting tokio: {e}");
            std::process::exit(1);
        }
    };
    let got = rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), fetch(&stack, server, path)).await });
    let code = match got {
        Ok(Ok(res)) => {
            eprintln!("{:?} {}", res.version(), res.status());
            for (name, value) in res.headers() {
                eprintln!("{name}: {}", value.to_str().unwrap_or("(not text)"));
            }
            use std::io::Write;
            let _ = std::io::stdout().write_all(res.body());
            i32::from(!res.status().is_success())
        }
        Ok(Err(e)) => {
            eprintln!("GET http://{server}{path}: {e}");
            1
        }
        Err(_) => {
            eprintln!("GET http://{server}{path}: no answer in 30 s");
            1
        }
    };
    eprintln!("{}", stack.shutdown(Duration::from_secs(1)));
    std::process::exit(code);
}
