//! The tokio examples on a real TUN, each in a fresh network namespace, with the kernel's
//! own programs as peers: curl against the axum app, Python's `http.server` serving the
//! hyper client, Python's `websockets` against the tokio-tungstenite echo. The examples'
//! code is compiled in as it is (`#[path]`), and runs on a stack in this process, on threads
//! that have entered the namespace.

mod common;

#[allow(dead_code)]
#[path = "../examples/axum_on_synack.rs"]
mod axum_example;
#[allow(dead_code)]
#[path = "../examples/hyper_client_on_synack.rs"]
mod hyper_example;
#[allow(dead_code)]
#[path = "../examples/tungstenite_echo_on_synack.rs"]
mod ws_example;

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use synack::device::Tun;
use synack::runtime::StackOptions;
use synack::stack::HostConfig;
use synack::Stack;

fn start_stack() -> Stack {
    let tun = Tun::open("synack0").expect("open synack0");
    let opts = StackOptions { host: HostConfig { addr: STACK_IP, ..Default::default() }, ..Default::default() };
    Stack::new(tun, opts).expect("start the stack")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio")
}

/// Run in the namespace (the caller's thread has entered it, and children inherit it).
fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(["-sS", "-m", "10"]).args(args).output().expect("run curl")
}

fn text(out: &Output) -> String {
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The axum app on synack with a stop switch; `f` runs (in the namespace) while it serves.
fn with_axum<T>(stack: &Stack, port: u16, f: impl FnOnce() -> T) -> T {
    let rt = runtime();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let srv = stack.clone();
    let server = rt.spawn(async move {
        axum_example::serve(&srv, port, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let r = f();
    let _ = stop_tx.send(());
    rt.block_on(server).expect("server task").expect("axum::serve");
    r
}

#[test]
fn curl_fetches_the_axum_apps_page_json_and_streamed_body_over_one_connection() {
    let test = "curl_fetches_the_axum_apps_page_json_and_streamed_body_over_one_connection";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "curl") else { return };
    let ns = Netns::new("axum");
    let (page, json, head, streamed, conns) = ns.run(|| {
        let stack = start_stack();
        let (page, json, head, streamed) = with_axum(&stack, 80, || {
            let page = text(&curl(&["http://10.7.0.2/"]));
            // Three requests on one keep-alive connection, each answer written to a file
            // of its own, the last with its head.
            let dir = temp_path("axum");
            std::fs::create_dir_all(&dir).unwrap();
            let (j, h, b) = (dir.join("json"), dir.join("head"), dir.join("body"));
            let out = curl(&[
                "http://10.7.0.2/api/stack",
                "-o",
                j.to_str().unwrap(),
                "http://10.7.0.2/stream",
                "-D",
                h.to_str().unwrap(),
                "-o",
                b.to_str().unwrap(),
            ]);
            text(&out);
            let read = |p| std::fs::read_to_string(p).unwrap();
            (page, read(&j), read(&h), read(&b))
        });
        let conns = stack.counters().connections;
        stack.shutdown(Duration::from_millis(200));
        (page, json, head, streamed, conns)
    });
    assert!(page.contains("<h1>axum on synack</h1>"), "{page}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json:?}: {e}"));
    assert_eq!(v["stack"], "synack", "{v}");
    assert!(v["you"].as_str().is_some_and(|s| s.starts_with("10.7.0.1:")), "the peer seen by axum: {v}");
    assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    assert_eq!(streamed, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    assert_eq!(conns, 2, "one connection for the page, one kept alive for the other two");
}

#[test]
fn the_hyper_client_fetches_from_python_http_server_on_the_kernel_side() {
    let test = "the_hyper_client_fetches_from_python_http_server_on_the_kernel_side";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "python3") else { return };
    let ns = Netns::new("hyper");
    let dir = temp_path("www");
    std::fs::create_dir_all(&dir).unwrap();
    let file = random_bytes(700_000, 19);
    std::fs::write(dir.join("blob.bin"), &file).unwrap();
    let mut server = ns
        .cmd("timeout")
        .args(["120", "python3", "-m", "http.server", "8000", "--bind", "10.7.0.1", "--directory"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python3 -m http.server");
    let got = ns.run(move || {
        // The kernel's server is up once a kernel client gets through.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(SocketAddrV4::new(KERNEL_IP, 8000)).is_err() {
            assert!(Instant::now() < deadline, "python3 -m http.server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let stack = start_stack();
        let server = SocketAddrV4::new(KERNEL_IP, 8000);
        let rt = runtime();
        let fetch = |path: &'static str| {
            let stack = stack.clone();
            rt.block_on(async move {
                tokio::time::timeout(Duration::from_secs(20), hyper_example::fetch(&stack, server, path)).await
            })
            .expect("no answer in 20 s")
            .expect("fetch")
        };
        let found = fetch("/blob.bin");
        let missing = fetch("/nothing-here");
        stack.shutdown(Duration::from_millis(200));
        (found.status().as_u16(), sha256(found.body()), found.body().len(), missing.status().as_u16())
    });
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(got.0, 200);
    assert_eq!(got.2, file.len());
    assert_eq!(got.1, sha256(&file), "the body differs from the file");
    assert_eq!(got.3, 404);
}

#[test]
fn python_websockets_round_trips_through_the_tungstenite_echo() {
    let test = "python_websockets_round_trips_through_the_tungstenite_echo";
    let Some(()) = require_root(test) else { return };
    let Some(_) = require_python_clients(test) else { return };
    let ns = Netns::new("tungstenite");
    let script = repo().join("tests/clients/ws_client.py");
    let python = python();
    let results = ns.run(move || {
        let stack = start_stack();
        let rt = runtime();
        let listener = synack::tokio::TcpListener::bind(&stack, 9001).unwrap();
        let server = rt.spawn(ws_example::serve(listener));
        let client = |args: &[&str]| {
            let out = Command::new("timeout")
                .arg("120")
                .arg(&python)
                .arg(&script)
                .args(["--url", "ws://10.7.0.2:9001"])
                .args(args)
                .output()
                .expect("run ws_client.py");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "ws_client.py {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
            let line = stdout.lines().last().unwrap_or_default().to_string();
            serde_json::from_str::<serde_json::Value>(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
        };
        // Text and binary, 0 B to 1 MiB (frame-length encodings at 126 and 65536 included).
        let echo = client(&["echo", "--count", "300"]);
        let ping = client(&["ping"]);
        let close = client(&["close"]);
        server.abort();
        stack.shutdown(Duration::from_millis(200));
        (echo, ping, close)
    });
    let (echo, ping, close) = results;
    assert_eq!(echo["round_trips"], 300, "{echo}");
    assert!(ping["pong_ms"].as_f64().is_some(), "{ping}");
    assert_eq!(close["echoed"]["1000"], 1000, "{close}");
    assert_eq!(close["echoed"]["4001"], 4001, "{close}");
}

#[test]
fn blocking_echo_and_async_axum_serve_the_kernel_from_one_stack_at_once() {
    let test = "blocking_echo_and_async_axum_serve_the_kernel_from_one_stack_at_once";
    let Some(()) = require_root(test) else { return };
    let Some(()) = require_tool(test, "curl") else { return };
    let ns = Netns::new("mixed");
    let (echoed, sent, pages) = ns.run(|| {
        let stack = start_stack();
        let blocking = synack::TcpListener::bind(&stack, 7).unwrap();
        let echo = std::thread::spawn(move || {
            let mut s = blocking.accept().unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match s.read(&mut buf).unwrap() {
                    0 => return,
                    n => s.write_all(&buf[..n]).unwrap(),
                }
            }
        });
        let data = random_bytes(2_000_000, 23);
        let (echoed, pages) = with_axum(&stack, 80, || {
            let sent = data.clone();
            // The kernel's client of the blocking echo runs while curl fetches from axum.
            let kernel = std::thread::spawn(move || echo_round_trip(sent, Duration::from_secs(20)));
            let pages: Vec<String> = (0..20).map(|_| text(&curl(&["http://10.7.0.2/api/stack"]))).collect();
            (kernel.join().unwrap(), pages)
        });
        echo.join().unwrap();
        stack.shutdown(Duration::from_millis(200));
        (sha256(&echoed), sha256(&data), pages)
    });
    assert_eq!(echoed, sent, "the blocking echo returned different bytes");
    assert!(pages.iter().all(|p| p.contains("\"stack\":\"synack\"")), "{pages:?}");
}
