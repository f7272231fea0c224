//! Headless Chromium driven over the DevTools protocol, for the tests that load the demo
//! page. A test waits for what the page really does (a DOM condition polled in real time
//! until a deadline), never for virtual time, which runs ahead of the network replies on a
//! loaded machine. The browser runs inside the test's network namespace with a fresh
//! profile; dropping the driver kills it and removes the profile, on every path.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use super::{require_tool, Netns};

/// Starting the browser on a loaded two-core machine can take many seconds.
const START_LIMIT: Duration = Duration::from_secs(60);
/// One DevTools command and its answer.
const CALL_LIMIT: Duration = Duration::from_secs(30);
/// `timeout -s KILL` ends the browser after this even if the test process dies without
/// running `Drop`.
const LIFETIME_S: u32 = 900;
/// The width a person's laptop window has; the screenshot is taken at it.
pub const WIDTH: u32 = 1280;

static PROFILES: AtomicU32 = AtomicU32::new(0);

/// Debian ships the browser as `chromium`; the smaller `chromium-headless-shell` also works.
fn find_browser() -> Option<&'static str> {
    ["chromium", "chromium-headless-shell"].into_iter().find(|b| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {b}"))
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

pub struct Chromium {
    /// `timeout`, leader of a process group that holds every browser process.
    child: Child,
    profile: PathBuf,
    log: PathBuf,
    ws: WebSocket<TcpStream>,
    /// The DevTools session of the one page (flattened sessions: commands carry its id).
    session: String,
    next_id: u64,
    /// The page's console output and uncaught exceptions, shown when a wait fails.
    console: Vec<String>,
    /// The URL of every WebSocket the page opened, in order.
    websockets: Vec<String>,
}

impl Chromium {
    /// Starts the browser in `ns` with one blank page `WIDTH` pixels wide. `None` when no
    /// browser is installed (a failure under CI, a skip elsewhere, as `require_tool`).
    pub fn start(ns: &Netns, test: &str) -> Option<Chromium> {
        let Some(browser) = find_browser() else {
            require_tool(test, "chromium");
            return None;
        };
        let n = PROFILES.fetch_add(1, Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("synack-chromium-{}-{n}", std::process::id()));
        let log = profile.with_extension("log");
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("create the browser profile dir");
        let stderr = File::create(&log).expect("create the browser log");
        let mut child = ns
            .cmd("timeout")
            .args(["-s", "KILL", &LIFETIME_S.to_string(), browser])
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .args(["--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own process group, so that Drop can end every process the browser forks.
            .process_group(0)
            .spawn()
            .expect("start chromium");
        // Without a DevTools socket there is no driver whose Drop cleans up: do it here.
        match connect(ns, &mut child, &profile) {
            Ok(ws) => {
                let mut c = Chromium {
                    child,
                    profile,
                    log,
                    ws,
                    session: String::new(),
                    next_id: 1,
                    console: Vec::new(),
                    websockets: Vec::new(),
                };
                c.open_page();
                Some(c)
            }
            Err(why) => {
                end_group(&mut child);
                let tail = log_tail(&log);
                remove_profile(&profile, &log);
                panic!("{test}: chromium did not start: {why}\nits stderr:\n{tail}");
            }
        }
    }

    fn open_page(&mut self) {
        let target = self.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].as_str().unwrap_or_default().to_string();
        let attached = self.browser_call("Target.attachToTarget", json!({"targetId": id, "flatten": true}));
        self.session = attached["sessionId"].as_str().unwrap_or_default().to_string();
        assert!(!self.session.is_empty(), "no DevTools session: {attached}");
        self.page_call("Page.enable", json!({}));
        self.page_call("Runtime.enable", json!({}));
        self.page_call("Network.enable", json!({}));
        self.set_size(WIDTH, 900);
    }

    fn set_size(&mut self, width: u32, height: u32) {
        let size = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false});
        self.page_call("Emulation.setDeviceMetricsOverride", size);
    }

    /// Loads `url`; returns at once (the page's own work is waited for with `wait_until`).
    pub fn open(&mut self, url: &str) {
        let r = self.page_call("Page.navigate", json!({"url": url}));
        if let Some(err) = r.get("errorText").and_then(Value::as_str) {
            let report = self.report();
            panic!("could not load {url}: {err}\n{report}");
        }
    }

    /// Evaluates a JavaScript expression in the page; its value, or the exception text.
    pub fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true}), true)?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"].as_str().or(ex["text"].as_str()).unwrap_or("exception");
            return Err(format!("`{expr}` threw: {text}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `condition` (JavaScript, true when done) in real time until it holds; returns
    /// how long that took. At `limit` it fails with what the page showed then.
    pub fn wait_until(&mut self, what: &str, condition: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        let mut last_error = String::new();
        loop {
            // Errors while the page is still loading (no document yet) are not final.
            match self.eval(condition) {
                Ok(Value::Bool(true)) => return start.elapsed(),
                Ok(_) => {}
                Err(e) => last_error = e,
            }
            if start.elapsed() >= limit {
                let report = self.report();
                panic!("waited {limit:?} for {what}: `{condition}` never held (last error: {last_error:?})\n{report}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URLs of the WebSockets the page has opened so far (as the browser saw them in
    /// the answers and events read until now).
    pub fn websockets(&self) -> Vec<String> {
        self.websockets.clone()
    }

    /// The page's console lines and uncaught exceptions so far (`exception: …` for those).
    pub fn console(&mut self) -> Vec<String> {
        // Events that arrived since the last command are read with the next one.
        let _ = self.eval("0");
        self.console.clone()
    }

    /// The page's body as HTML now, without its scripts: what the page shows, and nothing
    /// that only looks like it in the source.
    pub fn dom(&mut self) -> String {
        let body = r#"(() => { const b = document.body.cloneNode(true);
            b.querySelectorAll("script").forEach((s) => s.remove()); return b.outerHTML; })()"#;
        match self.eval(body) {
            Ok(Value::String(html)) => html,
            Ok(other) => format!("(no DOM: {other})"),
            Err(e) => format!("(no DOM: {e})"),
        }
    }

    /// The whole page, `WIDTH` pixels wide, as a PNG at `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let metrics = self.page_call("Page.getLayoutMetrics", json!({}));
        let height = metrics["cssContentSize"]["height"].as_f64().unwrap_or(900.0).ceil() as u32;
        self.set_size(WIDTH, height.clamp(100, 10_000));
        let shot = self.page_call("Page.captureScreenshot", json!({"format": "png"}));
        self.set_size(WIDTH, 900);
        let png = base64_decode(shot["data"].as_str().unwrap_or_default());
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is no PNG ({} bytes)", png.len());
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// What a failure message shows: the DOM, the page's console, the browser's stderr.
    fn report(&mut self) -> String {
        let dom = self.dom();
        let console = if self.console.is_empty() { "(nothing)".to_string() } else { self.console.join("\n") };
        format!(
            "DOM now:\n{dom}\npage console and exceptions:\n{console}\nchromium stderr (last lines):\n{}",
            log_tail(&self.log)
        )
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params, false).unwrap_or_else(|e| panic!("{e}\nchromium stderr:\n{}", log_tail(&self.log)))
    }

    fn page_call(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params, true).unwrap_or_else(|e| panic!("{e}\nchromium stderr:\n{}", log_tail(&self.log)))
    }

    /// Sends one command and reads until its answer, keeping the events that come between.
    fn call(&mut self, method: &str, params: Value, on_page: bool) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if on_page {
            msg["sessionId"] = Value::String(self.session.clone());
        }
        self.ws.send(Message::Text(msg.to_string().into())).map_err(|e| format!("{method}: send: {e}"))?;
        let deadline = Instant::now() + CALL_LIMIT;
        loop {
            // The socket's read timeout bounds each read; the deadline bounds a stream of
            // events with no answer among them.
            if Instant::now() > deadline {
                return Err(format!("{method}: no answer in {CALL_LIMIT:?}"));
            }
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(e) => return Err(format!("{method}: reading the answer: {e}")),
            };
            let v: Value = serde_json::from_str(text.as_str()).map_err(|e| format!("{method}: bad JSON {e}"))?;
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(v["result"].clone());
            }
            self.note_event(&v);
        }
    }

    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        let line = match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| match &a["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => a["description"].as_str().unwrap_or("?").to_string(),
                        other => other.to_string(),
                    })
                    .collect();
                format!("console.{}: {}", p["type"].as_str().unwrap_or("log"), args.join(" "))
            }
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                format!("exception: {}", d["exception"]["description"].as_str().or(d["text"].as_str()).unwrap_or("?"))
            }
            Some("Inspector.detached") => format!("inspector detached: {}", p["reason"]),
            Some("Target.targetCrashed") => "the page crashed".to_string(),
            Some("Network.webSocketCreated") => {
                self.websockets.push(p["url"].as_str().unwrap_or_default().to_string());
                return;
            }
            _ => return,
        };
        if self.console.len() < 200 {
            self.console.push(line);
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        end_group(&mut self.child);
        remove_profile(&self.profile, &self.log);
    }
}

/// Waits for the browser's `DevToolsActivePort` file and opens the DevTools WebSocket from
/// inside the namespace (the port is on the namespace's loopback).
fn connect(ns: &Netns, child: &mut Child, profile: &Path) -> Result<WebSocket<TcpStream>, String> {
    let port_file = profile.join("DevToolsActivePort");
    let start = Instant::now();
    let (port, path) = loop {
        let text = std::fs::read_to_string(&port_file).unwrap_or_default();
        let mut lines = text.lines();
        if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
            if let Ok(port) = port.trim().parse::<u16>() {
                break (port, path.trim().to_string());
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status}"));
        }
        if start.elapsed() > START_LIMIT {
            return Err(format!("no {} after {START_LIMIT:?}", port_file.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stream = ns
        .run(move || TcpStream::connect(("127.0.0.1", port)))
        .map_err(|e| format!("connect to its DevTools port {port}: {e}"))?;
    stream.set_read_timeout(Some(CALL_LIMIT)).map_err(|e| format!("set a read timeout: {e}"))?;
    let (ws, _) = tungstenite::client::client(format!("ws://127.0.0.1:{port}{path}"), stream)
        .map_err(|e| format!("DevTools WebSocket handshake: {e}"))?;
    Ok(ws)
}

/// Kills the browser's whole process group and waits until none of it is left.
fn end_group(child: &mut Child) {
    let group = Pid::from_raw(-(child.id() as i32));
    let _ = kill(group, Signal::SIGKILL);
    let _ = child.wait();
    let start = Instant::now();
    // The renderer and helper processes are reaped by init once their parent is gone.
    while kill(group, None).is_ok() && start.elapsed() < Duration::from_secs(10) {
        let _ = kill(group, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn remove_profile(profile: &Path, log: &Path) {
    let _ = std::fs::remove_dir_all(profile);
    let _ = std::fs::remove_file(log);
}

fn log_tail(log: &Path) -> String {
    let Ok(f) = File::open(log) else { return "(no log)".to_string() };
    let lines: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Standard base64 (the screenshot's encoding); anything else in the input is skipped.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
