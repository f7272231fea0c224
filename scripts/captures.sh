#!/usr/bin/env bash
# captures.sh: regenerate the sample captures in captures/ with synack's own demo.
#
#   sudo scripts/captures.sh                  # build, then write all three
#   sudo scripts/captures.sh --bin target/release/synack websocket
#
# Each capture is made by `synack serve --pcap` on a TUN device in a throwaway network
# namespace (scripts/setup.sh --netns), with the kernel's TCP as the client, and checked with
# tshark before it replaces the committed file. Nothing is changed in the machine's own
# network namespace.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

DEV=synack0
KERNEL_ADDR=10.7.0.1/24
STACK_IP=10.7.0.2
NS=synack-captures-$$
OUT=$REPO/captures
BIN=
START_TIMEOUT=10  # seconds for synack to come up
STOP_TIMEOUT=5    # seconds for it to exit after SIGINT (it promises 2)
STEP_TIMEOUT=30   # hard bound on each client
MAX_SEEDS=30      # fault seeds tried for retransmission.pcap
BYTES=20000       # the download that loses a segment: about 14 segments
LOSS=0.05         # outbound loss probability for it
MAX_SIZE=$((200 * 1024))
ALL=(handshake retransmission websocket)
WANT=()

usage() {
    cat <<EOF
Usage: sudo $PROG [--bin PATH] [--out DIR] [NAME...]

Regenerate the sample captures (NAME: ${ALL[*]}; default all) in
captures/, each made by 'synack serve --pcap' in a throwaway network namespace
($NS-style name: synack-captures-PID) with the kernel's TCP as the peer:

  handshake.pcap       curl http://$STACK_IP/: handshake, one GET /, the page, close
  retransmission.pcap  curl of /bytes/$BYTES with --faults-out loss=$LOSS,seed=S: the first
                       seed S (from 1, at most $MAX_SEEDS) with exactly one packet lost, a
                       data segment that synack retransmits, and the download complete
  websocket.pcap       Python websockets: upgrade on /ws, three text messages
                       echoed, close 1000

Each capture is checked with tshark (no error-level expert entries, checksums
verified) before it replaces the old one.

  --bin PATH   use this synack binary instead of building one (cargo build --release)
  --out DIR    write the captures here (default: captures/)
  -h, --help   show this help

Needs root (network namespaces), curl, tshark and Python's websockets
(scripts/install-deps.sh installs them; websockets in a virtual environment
under target/).
EOF
}

ORIG_ARGS=("$@")
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --bin) [[ $# -ge 2 ]] || die "--bin needs a path (e.g. --bin target/release/synack)"; BIN=$2; shift 2 ;;
        --bin=*) BIN=${1#*=}; shift ;;
        --out) [[ $# -ge 2 ]] || die "--out needs a directory"; OUT=$2; shift 2 ;;
        --out=*) OUT=${1#*=}; shift ;;
        handshake | retransmission | websocket) WANT+=("$1"); shift ;;
        *) die "unknown argument '$1' (see $PROG --help)" ;;
    esac
done
[[ ${#WANT[@]} -gt 0 ]] || WANT=("${ALL[@]}")

[[ $EUID -eq 0 ]] || die "must be run as root (it creates a network namespace and a TUN device): sudo $0 ${ORIG_ARGS[*]}"
for tool in ip curl tshark python3 timeout; do
    command -v "$tool" >/dev/null || die "'$tool' is missing: run scripts/install-deps.sh"
done
# Python's websockets (>= 15) lives in the test clients' virtual environment.
PY=${CARGO_TARGET_DIR:-$REPO/target}/python/bin/python
bash "$REPO/scripts/install-deps.sh" --python || die "no Python websockets (see above)"

OWNER=
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    OWNER=$SUDO_USER
fi

# ---- build ----
if [[ -z $BIN ]]; then
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/synack
    if [[ -n $OWNER ]] && command -v runuser >/dev/null; then
        # As the user, so target/ stays theirs.
        home=$(getent passwd "$OWNER" | cut -d: -f6)
        runuser -u "$OWNER" -- env "HOME=$home" "PATH=$home/.cargo/bin:$PATH" cargo build --release ||
            die "the build failed (see above)"
    else
        command -v cargo >/dev/null || die "cargo not found: install Rust, or pass --bin PATH"
        cargo build --release || die "the build failed (see above)"
    fi
fi
[[ -x $BIN ]] || die "no synack binary at $BIN"
mkdir -p "$OUT"

# ---- clean up on every exit ----
SERVER_PID=
NS_MADE=0
TMP=$(mktemp -d /tmp/synack-captures.XXXXXX)
# A copy, so a rebuild in another shell cannot swap the binary between two captures.
cp "$BIN" "$TMP/synack"
BIN=$TMP/synack

# stop_server: SIGINT, wait up to STOP_TIMEOUT, then SIGKILL. Fails when it had to kill.
stop_server() {
    local i rc=0
    [[ -n $SERVER_PID ]] || return 0
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        server_alive || break
        sleep 0.1
    done
    if server_alive; then
        say "warning: synack did not exit within $STOP_TIMEOUT s of SIGINT; killing it"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        rc=1
    fi
    wait "$SERVER_PID" 2>/dev/null || rc=1
    SERVER_PID=
    return "$rc"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [[ -n $SERVER_PID ]] && stop_server
    if ((NS_MADE)); then
        bash scripts/teardown.sh --netns "$NS" --force >/dev/null
        [[ -e /run/netns/$NS ]] && ip netns del "$NS"
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

NS_MADE=1
bash scripts/setup.sh --netns "$NS" --name "$DEV" --addr "$KERNEL_ADDR" >"$TMP/setup.out" ||
    { cat "$TMP/setup.out"; die "setup.sh failed (see above)"; }
say "namespace $NS: the kernel is ${KERNEL_ADDR%/*} on $DEV, synack will be $STACK_IP"

in_ns() { ip netns exec "$NS" timeout "$STEP_TIMEOUT" "$@"; }

# A background job of a script starts with SIGINT ignored; give synack its Ctrl-C back.
DEFAULT_INT=()
env --default-signal=INT true 2>/dev/null && DEFAULT_INT=(env --default-signal=INT)

# start_server PCAP [ARGS...]: synack serve --pcap PCAP ARGS in the namespace, until it says
# it is serving. No ping to check it: the capture should hold only the story it tells.
start_server() {
    local pcap=$1 i
    shift
    rm -f "$pcap"
    ip netns exec "$NS" ${DEFAULT_INT[@]+"${DEFAULT_INT[@]}"} \
        "$BIN" serve --tun "$DEV" --ip "$STACK_IP" --pcap "$pcap" "$@" >"$TMP/serve.log" 2>&1 </dev/null &
    SERVER_PID=$!
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        server_alive || { cat "$TMP/serve.log"; die "synack exited while starting"; }
        grep -q 'serving as' "$TMP/serve.log" && return 0
        sleep 0.1
    done
    cat "$TMP/serve.log"
    die "synack did not start within $START_TIMEOUT s"
}

# tshark_q ARGS...: tshark without its warning about running as root.
tshark_q() { tshark "$@" 2> >(grep -v '^Running as user' >&2); }

# check_capture FILE: readable, small, no error-level expert entry (checksums verified).
check_capture() {
    local f=$1 size errors
    size=$(wc -c <"$f")
    ((size > 24)) || { say "$f is empty"; return 1; }
    ((size < MAX_SIZE)) || { say "$f is $size bytes, more than $MAX_SIZE"; return 1; }
    errors=$(tshark_q -r "$f" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -q -z expert,error) ||
        { say "tshark could not read $f"; return 1; }
    if grep -q '^Errors' <<<"$errors"; then
        say "tshark reports errors in $f:"
        echo "$errors"
        return 1
    fi
}

# install NAME: move the checked capture into place.
install_capture() {
    local name=$1
    mv -f "$TMP/$name.pcap" "$OUT/$name.pcap"
    give_back "$OUT/$name.pcap"
    say "wrote $OUT/$name.pcap ($(wc -c <"$OUT/$name.pcap") bytes, $(tshark_q -r "$OUT/$name.pcap" | wc -l) frames)"
}

make_handshake() {
    local pcap=$TMP/handshake.pcap
    start_server "$pcap"
    in_ns curl -sS --max-time 10 -o "$TMP/page.html" "http://$STACK_IP/" || die "handshake: curl failed"
    sleep 0.3 # the last ACK of the close
    stop_server || die "handshake: synack did not stop cleanly"
    grep -q '</html>' "$TMP/page.html" || die "handshake: the page arrived incomplete"
    check_capture "$pcap" || die "handshake: the capture did not pass"
    install_capture handshake
}

# try_retransmission SEED: one attempt; succeeds when the fault injector dropped exactly one
# of synack's packets, that was a data segment synack then retransmitted where tshark sees it
# (a fast retransmission after duplicate ACKs, or after a timeout with later data already
# sent), and curl got every byte.
try_retransmission() {
    local seed=$1 pcap=$TMP/retransmission.pcap got want rtx dropped
    start_server "$pcap" --faults-out "loss=$LOSS,seed=$seed"
    got=$(in_ns curl -sS --max-time 20 "http://$STACK_IP/bytes/$BYTES" | sha256sum) || got=failed
    sleep 0.3 # the close
    stop_server || return 1
    want=$(python3 -c "import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range($BYTES)))" | sha256sum)
    [[ $got == "$want" ]] || { say "seed $seed: the download was incomplete"; return 1; }
    dropped=$(sed -n 's/.*; out [0-9]* packets, \([0-9]*\) dropped.*/\1/p' "$TMP/serve.log")
    [[ $dropped == 1 ]] || { say "seed $seed: ${dropped:-?} packets lost, not 1"; return 1; }
    rtx=$(tshark_q -r "$pcap" -Y "tcp.analysis.retransmission && ip.src == $STACK_IP && tcp.len > 0" \
        -T fields -e frame.number | wc -l)
    ((rtx >= 1)) || { say "seed $seed: the lost packet was not a data segment tshark sees resent"; return 1; }
    check_capture "$pcap" || return 1
    say "seed $seed: one segment lost, retransmitted by synack (frame(s) $(tshark_q -r "$pcap" \
        -Y "tcp.analysis.retransmission && ip.src == $STACK_IP" -T fields -e frame.number | paste -sd,)), download complete"
}

make_retransmission() {
    local seed
    for ((seed = 1; seed <= MAX_SEEDS; seed++)); do
        if try_retransmission "$seed"; then
            install_capture retransmission
            return 0
        fi
    done
    die "retransmission: no seed from 1 to $MAX_SEEDS gave a recovered loss"
}

make_websocket() {
    local pcap=$TMP/websocket.pcap
    start_server "$pcap"
    in_ns "$PY" - "ws://$STACK_IP/ws" <<'EOF' || die "websocket: the client failed"
import sys
from websockets.sync.client import connect

# No compression, so every payload byte is visible in the frames.
with connect(sys.argv[1], compression=None, proxy=None, open_timeout=10, close_timeout=10,
             ping_interval=None) as ws:
    for text in ["hello, synack", "a second message", "bye"]:
        ws.send(text)
        echo = ws.recv(timeout=10)
        assert echo == text, (echo, text)
    ws.close(code=1000, reason="done")
print("websocket: 3 messages echoed, closed with 1000")
EOF
    sleep 0.3
    stop_server || die "websocket: synack did not stop cleanly"
    check_capture "$pcap" || die "websocket: the capture did not pass"
    install_capture websocket
}

for name in "${WANT[@]}"; do
    say "making $name.pcap"
    "make_$name"
done
say "done; check them with: cargo test --test captures_golden (SYNACK_BLESS=1 regenerates the expected text)"
