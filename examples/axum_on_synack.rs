//! An axum app served over synack's TCP instead of the kernel's (feature `tokio`):
//!
//! ```text
//! sudo scripts/setup.sh                  # the TUN device synack0, kernel side 10.7.0.1
//! cargo run --example axum_on_synack [-- DEVICE [PORT]]
//! curl http://10.7.0.2/                  # from the kernel's side
//! ```
//!
//! axum is used as it comes: `axum::serve` runs on a small listener adapter around
//! `synack::tokio::TcpListener`. Routes: `GET /` (a page), `GET /api/stack` (JSON about the
//! connection and the stack), `GET /stream` (a body sent in chunks as they are made).
//! Ctrl-C stops it and closes the connections cleanly.
//!
//! `axum_on_synack --kernel ADDR:PORT` serves the same app on the kernel's TCP (tokio's own
//! listener), for comparing the two stacks under the same load.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use synack::runtime::StackOptions;
use synack::stack::HostConfig;
use synack::Stack;

/// axum's `Listener` over synack's: axum's own accept loop and connection handling, on the
/// userspace stack.
pub struct SynackListener(pub synack::tokio::TcpListener);

impl axum::serve::Listener for SynackListener {
    type Io = synack::tokio::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    // Answers go out whole at once: Nagle would hold a response's last small
                    // segment until the client's (delayed) ACK.
                    let _ = stream.set_nodelay(true);
                    return (stream, peer);
                }
                // The stack is gone (shut down): nothing will come; axum's contract is to
                // retry, so wait rather than spin.
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The peer's address, for `ConnectInfo` (axum provides it for its own listener types).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, SynackListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, SynackListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, KernelListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, KernelListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// The kernel's listener, set up as `SynackListener` is (no Nagle), for a fair comparison.
pub struct KernelListener(tokio::net::TcpListener);

impl axum::serve::Listener for KernelListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return (stream, peer);
                }
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The app; `stack` is `None` when it runs on the kernel's TCP.
pub fn app(stack: Option<Stack>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                axum::response::Html("<h1>axum on synack</h1>\n<p>This page came over a userspace TCP stack.</p>\n")
            }),
        )
        .route("/api/stack", get(stack_info))
        .route("/stream", get(stream))
        .with_state(stack)
}

async fn stack_info(State(stack): State<Option<Stack>>, ConnectInfo(Peer(peer)): ConnectInfo<Peer>) -> Json<Value> {
    match stack {
        Some(stack) => Json(json!({
            "stack": "synack",
            "you": peer.to_string(),
            "connections": stack.connections().len(),
            "segments_in": stack.counters().segs_in,
        })),
        None => Json(json!({ "stack": "kernel", "you": peer.to_string() })),
    }
}

/// Five chunks, 50 ms apart: each leaves as soon as it is made (chunked encoding).
async fn stream() -> Body {
    let chunks = futures_util::stream::unfold(0u32, |i| async move {
        if i == 5 {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(format!("chunk {i}\n"))), i + 1))
    });
    Body::from_stream(chunks)
}

/// Serve the app on `port` until `stop` resolves.
pub async fn serve(
    stack: &Stack,
    port: u16,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = SynackListener(synack::tokio::TcpListener::bind(stack, port)?);
    let app = app(Some(stack.clone())).into_make_service_with_connect_info::<Peer>();
    axum::serve(listener, app).with_graceful_shutdown(stop).await
}

/// The same app on the kernel's TCP.
async fn serve_kernel(addr: SocketAddr) -> std::io::Result<()> {
    let listener = KernelListener(tokio::net::TcpListener::bind(addr).await?);
    println!("axum on the kernel's TCP: http://{addr}/ (Ctrl-C stops)");
    let app = app(None).into_make_service_with_connect_info::<Peer>();
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, app).with_graceful_shutdown(stop).await
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--kernel") {
        let Some(Ok(addr)) = args.get(1).map(|a| a.parse::<SocketAddr>()) else {
            eprintln!("usage: axum_on_synack --kernel ADDR:PORT  (e.g. 10.7.0.1:8080)");
            std::process::exit(2);
        };
        let served = tokio::runtime::Runtime::new().and_then(|rt| rt.block_on(serve_kernel(addr)));
        if let Err(e) = served {
            eprintln!("serving on the kernel's TCP: {e}");
            std::process::exit(1);
        }
        return;
    }
    let dev = args.first().map_or("synack0", String::as_str);
    let port: u16 = match args.get(1).map(|p| p.parse()) {
        None => 80,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("usage: axum_on_synack [DEVICE [PORT]]  (PORT is a number, e.g. 8080)");
            std::process::exit(2);
        }
    };
    let tun = match synack::device::Tun::open(dev) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("opening {dev}: {e} (create it with `sudo scripts/setup.sh`)");
            std::process::exit(1);
        }
    };
    let opts = StackOptions { host: HostConfig::default(), ..Default::default() };
    let stack = match Stack::new(tun, opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("starting the stack: {e}");
            std::process::exit(1);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starting tokio: {e}");
            std::process::exit(1);
        }
    };
    println!("axum on synack: http://{}:{port}/ (Ctrl-C stops)", stack.addr());
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = rt.block_on(serve(&stack, port, stop));
    println!("{}", stack.shutdown(Duration::from_secs(1)));
    if let Err(e) = served {
        eprintln!("serving: {e}");
        std::process::exit(1);
    }
}
