//! Captures made by other tools read correctly by `synack ladder` and `synack explain`.
//!
//! - On the kernel side of synack's TUN, while curl fetches a page: `tcpdump -i synack0`
//!   (LINKTYPE_RAW), `tcpdump -i any` (Linux cooked v1, and v2 with `-y LINUX_SLL2`) and
//!   `dumpcap -i synack0` (pcapng), next to synack's own `--pcap`. All five hold the same
//!   packets, so the four kernel-side ladders must draw the same arrows in the same order, and
//!   synack's own the same arrows (its tap sits on the other side of the TUN, where a segment
//!   out and an ACK in may pass each other).
//! - On a veth between two namespaces (Ethernet frames, ARP included), kernel to kernel: curl
//!   and `python3 -m http.server`, captured with tcpdump.
//!
//! Each ladder must show the connection with the right flags ([SYN], [SYN, ACK], [ACK], …, a
//! FIN each way), `explain --packet N` must dissect the link layer and the IPv4 header, and,
//! where tshark is installed, every TCP packet's relative seq/ack/len must equal tshark's.
//!
//! Every process is bounded: captures are stopped with SIGINT (so the file is complete) and
//! killed if they do not exit; the namespaces are removed even when a test fails.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{require_root, require_tool, temp_path, Netns, STACK_IP};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use synack::analyze::capture::read_capture;
use synack::analyze::conversation::analyze;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `ip netns exec NS PROGRAM`: `ip` execs the program, so the child's pid is the program's.
fn ns_cmd(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// Collects a child's stderr lines on a thread.
fn drain(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// A packet capture running in a namespace; stopped with SIGINT, killed on drop if still up.
struct Capture {
    what: String,
    file: PathBuf,
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    /// Starts `program args…` in namespace `ns` and waits until its stderr says `ready`.
    fn start(ns: &str, what: &str, file: PathBuf, program: &str, args: &[&str], ready: &str) -> Capture {
        let _ = std::fs::remove_file(&file);
        let mut child = ns_cmd(ns, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let stderr = drain(&mut child);
        let mut cap = Capture { what: what.to_string(), file, child, stderr };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if cap.stderr.lock().unwrap().iter().any(|l| l.contains(ready)) {
                return cap;
            }
            if let Ok(Some(status)) = cap.child.try_wait() {
                panic!("{what} exited with {status} before capturing: {:?}", cap.stderr.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "{what} did not start: {:?}", cap.stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, so the tool flushes and closes the file; waits up to 10 s.
    fn stop(mut self) -> PathBuf {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).expect("signal the capture");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "{} did not exit within 10 s of SIGINT", self.what);
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50)); // the stderr reader's last lines
        let stderr = self.stderr.lock().unwrap().clone();
        assert!(status.success(), "{} exited with {status}: {stderr:?}", self.what);
        // tcpdump's own count: packets it lost would otherwise look like a bug of the ladder.
        for line in &stderr {
            if let Some(n) = line.strip_suffix(" packets dropped by kernel") {
                assert_eq!(n.trim(), "0", "{} lost packets (its buffer overflowed): {stderr:?}", self.what);
            }
        }
        self.file.clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `tcpdump IFACE_ARGS -w FILE`, set up so that it neither loses packets nor the file:
/// `--immediate-mode` (otherwise packets still in the kernel ring when SIGINT arrives are
/// never written), a snapshot length of 4096 and an 8 MiB buffer (immediate mode gives each
/// packet a ring slot of the snapshot length, and with the default 262144 the default buffer
/// holds only a handful, so a burst of segments overflows it), `-U` to write each packet at
/// once and `-Z root` so it can write where the test points it.
fn tcpdump(ns: &str, iface: &[&str], file: PathBuf) -> Capture {
    let what = format!("tcpdump {}", iface.join(" "));
    let mut args: Vec<&str> = iface.to_vec();
    args.extend(["--immediate-mode", "-s", "4096", "-B", "8192", "-U", "-Z", "root", "-w", p(&file)]);
    Capture::start(ns, &what, file.clone(), "tcpdump", &args, "listening on")
}

fn synack(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_synack")).args(args).output().expect("run synack");
    assert!(out.status.success(), "synack {args:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The arrows of a ladder, without the time and frame columns (which differ between capture
/// points and link types): `|-- [SYN] seq=0 … -->|` and so on.
fn arrows(ladder: &str) -> Vec<String> {
    ladder
        .lines()
        .filter(|l| l.contains("|--") || l.contains("|<--"))
        .map(|l| l[l.find('|').expect("arrow")..].trim_end().to_string())
        .collect()
}

/// The flags of an arrow as Wireshark writes them: `[SYN, ACK]`.
fn flags(arrow: &str) -> &str {
    let start = arrow.find('[').expect("flags");
    let end = start + arrow[start..].find(']').expect("flags end");
    &arrow[start..=end]
}

/// Checks that the ladder shows one well-formed connection: handshake, data, a FIN each way,
/// a last ACK, no RST. Returns the ladder text.
fn check_ladder(file: &Path, what: &str) -> String {
    let ladder = synack(&["ladder", p(file)]);
    assert!(ladder.contains(", 1 TCP connection(s)"), "{what}: expected one connection:\n{ladder}");
    let a = arrows(&ladder);
    assert!(a.len() >= 8, "{what}: too few segments:\n{ladder}");
    let f: Vec<&str> = a.iter().map(|l| flags(l)).collect();
    assert_eq!(&f[..3], ["[SYN]", "[SYN, ACK]", "[ACK]"], "{what}: the handshake:\n{ladder}");
    assert!(a[0].starts_with("|--") && a[1].starts_with("|<--") && a[2].starts_with("|--"), "{what}:\n{ladder}");
    assert!(
        a[0].contains("seq=0") && a[1].contains("seq=0 ack=1") && a[2].contains("seq=1 ack=1"),
        "{what}:\n{ladder}"
    );
    assert!(f.contains(&"[PSH, ACK]"), "{what}: no data pushed:\n{ladder}");
    let fins: Vec<&String> = a.iter().filter(|l| flags(l).starts_with("[FIN")).collect();
    assert_eq!(fins.len(), 2, "{what}: expected one FIN each way:\n{ladder}");
    assert_ne!(fins[0].starts_with("|--"), fins[1].starts_with("|--"), "{what}: both FINs one way:\n{ladder}");
    assert_eq!(*f.last().unwrap(), "[ACK]", "{what}: the close ends with an ACK:\n{ladder}");
    assert!(!f.iter().any(|x| x.contains("RST")), "{what}: a reset:\n{ladder}");
    assert!(ladder.contains("GET /"), "{what}: the request is not labelled:\n{ladder}");
    ladder
}

/// `explain --packet N` dissects the link layer and the IPv4 and TCP headers.
fn check_explain(file: &Path, frame: usize, link: &str, what: &str) {
    let text = synack(&["explain", p(file), "--packet", &frame.to_string()]);
    assert!(text.starts_with(&format!("Frame {frame}:")), "{what}:\n{text}");
    let link_line = text.lines().find(|l| l.starts_with("Link layer:")).unwrap_or_default();
    assert!(link_line.contains(link), "{what}: link layer should be {link}:\n{text}");
    assert!(text.contains("\nInternet Protocol Version 4 (IPv4)\n"), "{what}: no IPv4 section:\n{text}");
    assert!(text.contains("\nTransmission Control Protocol (TCP)\n"), "{what}: no TCP section:\n{text}");
    assert!(text.contains("[correct]") && !text.contains("[incorrect]"), "{what}: checksums:\n{text}");
}

/// Frame number of the first SYN in a ladder (ARP and other frames may come first).
fn syn_frame(ladder: &str) -> usize {
    let line = ladder.lines().find(|l| l.contains("|-- [SYN] ")).expect("a SYN");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("frame column")
}

/// Where tshark is installed: every TCP frame's relative seq/ack/len equals tshark's.
fn check_against_tshark(file: &Path, what: &str) {
    if !Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return; // require_tool at the top of each test has already decided skip or fail
    }
    let out = Command::new("tshark")
        .args(["-o", "tcp.relative_sequence_numbers:TRUE", "-o", "tcp.analyze_sequence_numbers:TRUE", "-r"])
        .arg(file)
        .args(["-Y", "tcp", "-T", "fields", "-e", "frame.number", "-e", "tcp.seq", "-e", "tcp.ack", "-e", "tcp.len"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "{what}: tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    let cap = read_capture(file).expect("read capture");
    let analysis = analyze(&cap);
    let rows: Vec<Vec<String>> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').map(str::to_string).collect()).collect();
    assert!(!rows.is_empty(), "{what}: tshark saw no TCP");
    assert_eq!(rows.len(), analysis.by_frame.len(), "{what}: number of TCP frames differs from tshark's");
    let mut bad = Vec::new();
    for row in &rows {
        let n: usize = row[0].parse().expect("frame number");
        let ours =
            analysis.segment(n).map(|(_, s)| [s.rel_seq.to_string(), s.rel_ack.to_string(), s.tcp.len.to_string()]);
        let theirs = [1, 2, 3].map(|i| row.get(i).cloned().unwrap_or_default());
        if ours.as_ref() != Some(&theirs) {
            bad.push(format!("frame {n}: synack {ours:?} tshark {theirs:?}"));
        }
    }
    assert!(bad.is_empty(), "{what}: [seq, ack, len] differ from tshark:\n{}", bad.join("\n"));
}

#[test]
fn kernel_side_captures_of_the_tun_are_laddered() {
    const T: &str = "kernel_side_captures_of_the_tun_are_laddered";
    if require_root(T).is_none() || require_tool(T, "tcpdump").is_none() || require_tool(T, "dumpcap").is_none() {
        return;
    }
    if require_tool(T, "tshark").is_none() || require_tool(T, "curl").is_none() {
        return;
    }
    let mut ns = Netns::new("capt");
    let ours = temp_path("tools-synack.pcap");
    let _ = std::fs::remove_file(&ours);
    let server = ns.serve(&["--pcap", p(&ours)]);
    let name = ns.name.clone();
    let tun = tcpdump(&name, &["-i", "synack0"], temp_path("tools-tun-raw.pcap"));
    let sll = tcpdump(&name, &["-i", "any", "-y", "LINUX_SLL"], temp_path("tools-any-sll.pcap"));
    let sll2 = tcpdump(&name, &["-i", "any", "-y", "LINUX_SLL2"], temp_path("tools-any-sll2.pcap"));
    let ng_file = temp_path("tools-dumpcap.pcapng");
    let ng = Capture::start(
        &name,
        "dumpcap -i synack0",
        ng_file.clone(),
        "dumpcap",
        &["-q", "-i", "synack0", "-s", "4096", "-B", "8", "-w", p(&ng_file)],
        "File:",
    );
    let out = ns.sh(&format!("curl -sS --max-time 10 -o /dev/null -w '%{{http_code}}' http://{STACK_IP}/"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "curl: {}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(300)); // the last ACK of the close
    let files = [
        (tun.stop(), "Raw IP (LINKTYPE_RAW)", "tcpdump -i synack0"),
        (sll.stop(), "Linux cooked capture v1", "tcpdump -i any -y LINUX_SLL"),
        (sll2.stop(), "Linux cooked capture v2", "tcpdump -i any -y LINUX_SLL2"),
        (ng.stop(), "Raw IP (LINKTYPE_RAW)", "dumpcap -i synack0 (pcapng)"),
    ];
    let (_, status, lines) = server.interrupt(&mut ns);
    assert!(status.success(), "synack serve: {lines:?}");

    // The kernel-side taps see the packets in the same order; synack's own capture records
    // them where it reads and writes, so a segment out and an ACK in may swap places there.
    let reference = arrows(&check_ladder(&files[0].0, files[0].2));
    // Compared as sets of arrows without the notes beside them (which depend on the order).
    let sorted = |a: Vec<String>| {
        let mut a: Vec<String> = a.iter().map(|l| l[..=1 + l[1..].find('|').expect("arrow end")].to_string()).collect();
        a.sort();
        a
    };
    let ours_arrows = sorted(arrows(&check_ladder(&ours, "synack --pcap")));
    assert_eq!(ours_arrows, sorted(reference.clone()), "synack's own capture and tcpdump's hold different segments");
    for (file, link, what) in &files {
        let ladder = check_ladder(file, what);
        assert_eq!(arrows(&ladder), reference, "{what} draws different arrows from tcpdump -i synack0:\n{ladder}");
        check_explain(file, 1, link, what);
        check_against_tshark(file, what);
    }
    let header = synack(&["ladder", p(&files[3].0)]);
    assert!(header.lines().next().is_some_and(|l| l.contains("pcapng")), "{header}");
}

/// Two namespaces joined by a veth: `a` (10.9.0.1, the client and tcpdump) and `b` (10.9.0.2,
/// python3 -m http.server). Removed on drop, with the processes started in them.
struct VethPair {
    a: String,
    b: String,
    children: Vec<Child>,
}

impl VethPair {
    fn new() -> VethPair {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("synack-t{}-{n}-veth", std::process::id());
        let pair = VethPair { a: format!("{base}a"), b: format!("{base}b"), children: Vec::new() };
        let script = format!(
            "set -e
             ip netns add {a}
             ip netns add {b}
             ip -n {a} link add vcap0 type veth peer name vcap1 netns {b}
             ip -n {a} addr add 10.9.0.1/24 dev vcap0
             ip -n {b} addr add 10.9.0.2/24 dev vcap1
             for ns in {a} {b}; do ip -n $ns link set lo up; done
             ip -n {a} link set vcap0 up
             ip -n {b} link set vcap1 up",
            a = pair.a,
            b = pair.b
        );
        let out = Command::new("bash").args(["-c", &script]).output().expect("bash");
        assert!(out.status.success(), "veth setup failed: {}", String::from_utf8_lossy(&out.stderr));
        pair
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

#[test]
fn veth_ethernet_capture_is_laddered() {
    const T: &str = "veth_ethernet_capture_is_laddered";
    if require_root(T).is_none() || require_tool(T, "tcpdump").is_none() || require_tool(T, "python3").is_none() {
        return;
    }
    if require_tool(T, "tshark").is_none() || require_tool(T, "curl").is_none() {
        return;
    }
    let mut veth = VethPair::new();
    let root = temp_path("veth-www");
    std::fs::create_dir_all(&root).expect("web root");
    std::fs::write(root.join("hello.txt"), "hello over a veth\n".repeat(100)).expect("page");
    let mut server = ns_cmd(&veth.b, "python3")
        .args(["-m", "http.server", "8000", "--bind", "10.9.0.2", "--directory", p(&root)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3 -m http.server");
    let _log = drain(&mut server);
    veth.children.push(server);
    // Listening? Asked of the socket table, so no probe connection lands in the capture.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ss = ns_cmd(&veth.b, "ss").args(["-Hltn", "sport = :8000"]).output().expect("ss");
        if !String::from_utf8_lossy(&ss.stdout).trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "python3 -m http.server did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    let file = temp_path("tools-veth.pcap");
    let cap = tcpdump(&veth.a, &["-i", "vcap0"], file);
    let out = ns_cmd(&veth.a, "curl")
        .args(["-sS", "--max-time", "10", "http://10.9.0.2:8000/hello.txt"])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, "hello over a veth\n".repeat(100).into_bytes());
    std::thread::sleep(Duration::from_millis(300));
    let file = cap.stop();

    let ladder = check_ladder(&file, "tcpdump on a veth");
    assert!(ladder.contains("10.9.0.1:") && ladder.contains("10.9.0.2:8000"), "{ladder}");
    check_explain(&file, syn_frame(&ladder), "Ethernet (LINKTYPE_ETHERNET)", "tcpdump on a veth");
    check_against_tshark(&file, "tcpdump on a veth");
    let _ = std::fs::remove_dir_all(&root);
}
