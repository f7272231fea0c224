//! Real-TUN test harness: every test gets a network namespace of its own, made with the
//! project's `scripts/setup.sh --netns`, holding the TUN device, the kernel peer and the
//! clients; the guard removes it even when the test fails.
#![allow(dead_code)]

pub mod packet_socket;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub mod chromium;

pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `Some(())` when TUN tests can run. Outside CI a test that cannot run says so and passes
/// as skipped; under `CI=true` it fails, so CI never passes without running it.
pub fn require_root(test: &str) -> Option<()> {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("needs root (TUN devices and network namespaces)")
    } else if !Path::new("/dev/net/tun").exists() {
        Some("/dev/net/tun does not exist")
    } else if Command::new("ip").arg("-V").output().is_err() {
        Some("`ip` (iproute2) is not installed")
    } else {
        None
    };
    match why {
        None => Some(()),
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("{test}: cannot run under CI: {why}"),
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

/// A tool the test needs; missing is a failure under CI and a skip elsewhere.
pub fn require_tool(test: &str, tool: &str) -> Option<()> {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if found {
        return Some(());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: `{tool}` is not installed (scripts/test.sh installs it)");
    }
    eprintln!("SKIPPED {test}: `{tool}` is not installed");
    None
}

/// What the Python test clients (tests/clients/*.py) import.
const PY_IMPORTS: &str = "import websockets.sync.client, socketio, websocket";
static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();

/// A Python with the test clients' packages: the virtual environment that
/// `scripts/install-deps.sh --python` makes under target/ (made here on first use, quietly),
/// or a `python3` on PATH that has them. Missing: a failure under CI, a skip elsewhere.
pub fn require_python_clients(test: &str) -> Option<()> {
    let found = PYTHON.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().map(Path::to_path_buf).unwrap_or_default();
        let venv = target.join("python/bin/python");
        let works = |p: &Path| Command::new(p).args(["-c", PY_IMPORTS]).output().is_ok_and(|o| o.status.success());
        if works(&venv) {
            return Some(venv);
        }
        if works(Path::new("python3")) {
            return Some(PathBuf::from("python3"));
        }
        eprintln!("{test}: making the Python test clients: scripts/install-deps.sh --python");
        let _ = Command::new("timeout")
            .args(["300", "bash"])
            .arg(repo().join("scripts/install-deps.sh"))
            .arg("--python")
            .env("CARGO_TARGET_DIR", &target)
            .status();
        works(&venv).then_some(venv)
    });
    if found.is_some() {
        return Some(());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: the Python test clients are missing and scripts/install-deps.sh --python could not make them");
    }
    eprintln!("SKIPPED {test}: the Python test clients are missing (scripts/install-deps.sh --python makes them)");
    None
}

/// The Python [`require_python_clients`] found; call that first.
pub fn python() -> PathBuf {
    PYTHON.get().cloned().flatten().expect("require_python_clients was not called, or found none")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The release build of synack, if it is newer than every source file: for tests whose
/// verdict is a speed a debug build cannot reach (`scripts/test.sh` builds it first).
/// `Err` says why there is none.
pub fn release_binary() -> Result<PathBuf, String> {
    let debug = PathBuf::from(env!("CARGO_BIN_EXE_synack"));
    let bin = debug.parent().and_then(Path::parent).map(|t| t.join("release/synack")).ok_or("no target dir")?;
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e} (run `cargo build --release`)", bin.display()))?;
    let mut dirs = vec![repo().join("src")];
    let mut newest = ["Cargo.toml", "Cargo.lock"]
        .iter()
        .filter_map(|f| std::fs::metadata(repo().join(f)).and_then(|m| m.modified()).ok())
        .max();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if let Ok(t) = meta.modified() {
                newest = newest.max(Some(t));
            }
        }
    }
    if newest.is_some_and(|t| t > built) {
        return Err(format!("{} is older than the sources (run `cargo build --release`)", bin.display()));
    }
    Ok(bin)
}

/// A throwaway network namespace with the TUN device `synack0` and the kernel side
/// 10.7.0.1/24, removed on drop.
pub struct Netns {
    pub name: String,
    children: Vec<Child>,
    /// What each server started here printed, shown when a test fails.
    outputs: Vec<Arc<Mutex<Vec<String>>>>,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("synack-t{}-{n}-{tag}", std::process::id());
        let ns = Netns { name, children: Vec::new(), outputs: Vec::new() };
        let out = Command::new("bash")
            .arg(repo().join("scripts/setup.sh"))
            .args(["--netns", &ns.name])
            .output()
            .expect("run scripts/setup.sh");
        assert!(out.status.success(), "setup.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        ns
    }

    /// A command run inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    pub fn sh(&self, script: &str) -> Output {
        self.cmd("bash").args(["-c", script]).output().expect("run a shell in the namespace")
    }

    /// Run `f` on a thread that has entered the namespace: sockets it opens live there.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let fd = File::open(&path).expect("open the namespace");
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    /// Start `synack serve` inside the namespace with extra arguments; returns once it says
    /// it is serving.
    pub fn serve(&mut self, args: &[&str]) -> Server {
        self.serve_env(args, &[])
    }

    /// `serve_env` with another build of synack (see [`release_binary`]).
    pub fn serve_bin(&mut self, bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        self.spawn_server(bin, &all, env, "serving as")
    }

    /// `serve` with extra environment variables (log filters, test-only settings).
    pub fn serve_env(&mut self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        self.spawn_server(Path::new(env!("CARGO_BIN_EXE_synack")), &all, env, "serving as")
    }

    /// Start `program` inside the namespace (a server: it is killed with the namespace);
    /// returns once a line of its stderr contains `ready`.
    pub fn spawn_server(&mut self, program: &Path, args: &[&str], env: &[(&str, &str)], ready: &str) -> Server {
        let mut cmd = self.cmd(&program.to_string_lossy());
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if lines.lock().unwrap().iter().any(|l| l.contains(ready)) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited with {status}: {:?}", program.display(), lines.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "{} did not start: {:?}", program.display(), lines.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = child.id();
        self.children.push(child);
        self.outputs.push(lines.clone());
        Server { pid, lines }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for srv in &self.outputs {
                eprintln!("synack serve said: {:?}", srv.lock().map(|l| l.clone()).unwrap_or_default());
            }
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("bash")
            .arg(repo().join("scripts/teardown.sh"))
            .args(["--netns", &self.name, "--force"])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

pub struct Server {
    pub pid: u32,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Send SIGINT and wait for the exit; returns how long it took and the output.
    pub fn interrupt(&self, ns: &mut Netns) -> (Duration, std::process::ExitStatus, Vec<String>) {
        let start = Instant::now();
        // The child is `ip netns exec`, which execs synack: the pid is synack's.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), nix::sys::signal::Signal::SIGINT)
            .expect("signal synack");
        let child = ns.children.iter_mut().find(|c| c.id() == self.pid).expect("our child");
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "synack did not exit after SIGINT");
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = start.elapsed();
        std::thread::sleep(Duration::from_millis(50)); // let the stderr reader finish
        (took, status, self.lines.lock().unwrap().clone())
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The frames of a capture that tshark flags, with IP and TCP checksum verification on:
/// a bad checksum, a malformed packet, or anything else `filter` adds (`|| …`). One line each.
pub fn tshark_flagged(pcap: &Path, filter_extra: &str) -> Vec<String> {
    let filter = format!("tcp.checksum.status == 0 || ip.checksum.status == 0 || _ws.malformed{filter_extra}");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-Y", &filter])
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

pub fn stack_addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(STACK_IP, port)
}

/// Write `data` to the stack's echo port from one thread and read it all back on another
/// (both directions at once, as a real echo client does); the read waits up to `timeout`.
pub fn echo_round_trip(data: Vec<u8>, timeout: Duration) -> Vec<u8> {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};
    let s = TcpStream::connect_timeout(&stack_addr(7).into(), Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    (&s).read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

/// Byte i of `/bytes/N`.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

pub fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("synack-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}
