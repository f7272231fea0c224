//! A tokio-tungstenite WebSocket echo server on synack's TCP (feature `tokio`):
//!
//! ```text
//! sudo scripts/setup.sh                      # the TUN device synack0, kernel side 10.7.0.1
//! cargo run --example tungstenite_echo_on_synack [-- DEVICE [PORT]]
//! python3 -m websockets ws://10.7.0.2:9001/  # from the kernel's side
//! ```
//!
//! tokio-tungstenite is used as it comes: `accept_async` over a `synack::tokio::TcpStream`.
//! Text and binary messages come back as they were sent; a close is answered.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use synack::runtime::StackOptions;
use synack::Stack;

/// Accept WebSocket connections on `listener` and echo each on a task of its own, until the
/// stack stops.
pub async fn serve(listener: synack::tokio::TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = echo(stream).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

async fn echo(stream: synack::tokio::TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    stream.set_nodelay(true)?;
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    // Pings are answered by tungstenite itself; a close is answered on the next read, which
    // then ends the stream.
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dev = args.first().map_or("synack0", String::as_str);
    let port: u16 = match args.get(1).map(|p| p.parse()) {
        None => 9001,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("usage: tungstenite_echo_on_synack [DEVICE [PORT]]  (PORT is a number)");
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
    let stack = match Stack::new(tun, StackOptions::default()) {
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
    println!("WebSocket echo on synack: ws://{}:{port}/ (Ctrl-C stops)", stack.addr());
    let served = rt.block_on(async {
        let listener = synack::tokio::TcpListener::bind(&stack, port)?;
        tokio::select! {
            r = serve(listener) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    println!("{}", stack.shutdown(Duration::from_secs(1)));
    if let Err(e) = served {
        eprintln!("serving: {e}");
        std::process::exit(1);
    }
}
