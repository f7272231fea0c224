#!/usr/bin/env bash
# demo.sh: watch synack work.   sudo scripts/demo.sh
#
# Builds synack, makes a throwaway network namespace with a TUN device in it, starts
# `synack serve --trace --pcap captures/demo.pcap` there, talks to it with curl, nc and ping
# (the kernel's own TCP is the other side), showing after each step what synack traced for
# it, stops it, shows the capture, and removes the namespace again, also when interrupted or
# when something fails.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

DEV=synack0
KERNEL_ADDR=10.7.0.1/24
STACK_IP=10.7.0.2
PCAP_REL=captures/demo.pcap
LOG_REL=captures/demo-trace.log
PCAP=$REPO/$PCAP_REL
LOG=$REPO/$LOG_REL
NS=synack-demo-$$
START_TIMEOUT=10  # seconds for the server to come up
STOP_TIMEOUT=5    # seconds for it to exit after SIGINT (it promises 2)
STEP_TIMEOUT=60   # hard bound on each demo command
TRACE_ALL=30      # a step's trace up to this many lines is shown whole; a longer one as
TRACE_HEAD=14     # its first lines (the handshake, the first data),
TRACE_TAIL=6      # its last (the close) and the command that prints the rest
BIN=

usage() {
    cat <<EOF
Usage: sudo $PROG [--bin PATH]

Build synack, run it with a TUN device in a throwaway network namespace
(synack-demo-PID), and talk to it with curl, nc and ping while it traces every
segment; after each step it shows what synack traced for it. It leaves the
capture in $PCAP_REL (open it with Wireshark) and the whole trace in
$LOG_REL, and removes the namespace. Nothing is changed in the machine's own network namespace.

  --bin PATH   use this synack binary instead of building one (cargo build --release)
  -h, --help   show this help

Needs root (network namespaces); tools it lacks (curl, nc, ping, tshark, ...) are
installed with scripts/install-deps.sh.
EOF
}

banner() {
    echo
    echo "=============================================================================="
    echo "== $*"
    echo "=============================================================================="
}

ORIG_ARGS=("$@")
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --bin) [[ $# -ge 2 ]] || die "--bin needs a path (e.g. --bin target/release/synack)"; BIN=$2; shift 2 ;;
        --bin=*) BIN=${1#*=}; shift ;;
        *) die "unknown argument '$1' (see $PROG --help)" ;;
    esac
done

[[ $EUID -eq 0 ]] || die "must be run as root (it creates a network namespace and a TUN device): run with sudo: sudo $0 ${ORIG_ARGS[*]}"

# The user who ran sudo gets the build and the files the demo leaves behind.
OWNER=
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    OWNER=$SUDO_USER
fi
# as_owner CMD...: run CMD as the invoking user, with their home and their cargo on PATH.
as_owner() {
    local home
    home=$(getent passwd "$OWNER" | cut -d: -f6)
    if command -v runuser >/dev/null; then
        runuser -u "$OWNER" -- env "HOME=$home" "PATH=$home/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$@"
    else
        sudo -u "$OWNER" -H env "PATH=$home/.cargo/bin:$PATH" "$@"
    fi
}

# ---- tools ----
banner "checking tools"
bash scripts/install-deps.sh --no-python || die "some tools are missing (see above); install them, then run this again"
NC=nc
command -v nc.openbsd >/dev/null && NC=nc.openbsd
HAVE_TSHARK=0
command -v tshark >/dev/null && HAVE_TSHARK=1

# ---- build ----
if [[ -z $BIN ]]; then
    banner "building: cargo build --release"
    BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/synack
    built=0
    if [[ -n $OWNER ]]; then
        # Build as the user, so target/ stays theirs (a root build there breaks their next build).
        if as_owner sh -c 'command -v cargo' >/dev/null 2>&1; then
            as_owner cargo build --release ||
                die "the build failed (see above). If it says 'Permission denied' under target/, an earlier root build left files there: sudo chown -R $OWNER: target"
            built=1
        else
            say "$OWNER has no cargo on PATH; building as root"
        fi
    fi
    if ((!built)); then
        command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs), or pass --bin PATH"
        rc=0
        cargo build --release || rc=$?
        if [[ -n $OWNER && -d target ]]; then give_back -R target; fi
        ((rc == 0)) || die "the build failed (see above)"
    fi
fi
[[ -x $BIN ]] || die "no synack binary at $BIN: build it (cargo build --release) or pass --bin PATH"
BIN_REL=${BIN#"$REPO/"} # as a command to type from the repository's root

# ---- leftovers of earlier demos that were killed too hard to clean up ----
while read -r old; do
    [[ $old =~ ^synack-demo-([0-9]+)$ ]] || continue
    kill -0 "${BASH_REMATCH[1]}" 2>/dev/null && continue # that demo is still running
    say "removing namespace $old left over from an earlier demo"
    bash scripts/teardown.sh --netns "$old" --force >/dev/null || true
    ip netns del "$old" 2>/dev/null || true
done < <(ip netns list | awk '{print $1}')

# ---- clean up on every exit ----
SERVER_PID=
NS_MADE=0
TMP=$(mktemp -d /tmp/synack-demo.XXXXXX)

# stop_server SECONDS: SIGINT, wait up to SECONDS, then SIGKILL. Sets SERVER_RC, SERVER_SECS.
stop_server() {
    local limit=$1 i
    SERVER_RC=
    SERVER_SECS=
    [[ -n $SERVER_PID ]] || return 0
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
        server_alive || break
        sleep 0.1
    done
    if server_alive; then
        say "warning: synack did not exit within $limit s of SIGINT (it should within 2 s); killing it"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    else
        SERVER_SECS=$(printf '%d.%d' $((i / 10)) $((i % 10)))
    fi
    SERVER_RC=0
    wait "$SERVER_PID" 2>/dev/null || SERVER_RC=$?
    SERVER_PID=
}

remove_namespace() {
    if ((NS_MADE)); then
        echo
        bash scripts/teardown.sh --netns "$NS" --force
        [[ -e /run/netns/$NS ]] && ip netns del "$NS" && say "deleted namespace $NS"
        NS_MADE=0
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $SERVER_PID ]]; then
        echo
        say "stopping synack (pid $SERVER_PID)"
        stop_server 3
    fi
    remove_namespace
    rm -rf "$TMP"
    give_back "$PCAP" "$LOG"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- namespace and device ----
banner "a throwaway network namespace with a TUN device: scripts/setup.sh --netns $NS"
NS_MADE=1
bash scripts/setup.sh --netns "$NS" --name "$DEV" --addr "$KERNEL_ADDR" >"$TMP/setup.out" ||
    { cat "$TMP/setup.out"; die "setup.sh failed (see above)"; }
sed -n '/^setup.sh: /p' "$TMP/setup.out"
echo "In $NS the kernel is ${KERNEL_ADDR%/*} on $DEV; synack will be $STACK_IP on the other end of it."

# ---- start the server ----
if [[ ! -d $REPO/captures ]]; then
    mkdir "$REPO/captures"
    give_back "$REPO/captures"
fi
rm -f "$PCAP" "$LOG"
SERVER_CMD=("$BIN" serve --tun "$DEV" --ip "$STACK_IP" --trace --pcap "$PCAP")
banner "starting: ip netns exec $NS ${SERVER_CMD[*]#"$REPO/"}"
# A background job of a script starts with SIGINT ignored; give synack its Ctrl-C back.
DEFAULT_INT=()
env --default-signal=INT true 2>/dev/null && DEFAULT_INT=(env --default-signal=INT)
ip netns exec "$NS" ${DEFAULT_INT[@]+"${DEFAULT_INT[@]}"} "${SERVER_CMD[@]}" >"$LOG" 2>&1 </dev/null &
SERVER_PID=$!
say "synack runs as pid $SERVER_PID; its trace goes to $LOG_REL"

# Up means: attached to the TUN (the device gets a carrier) and answering ping.
up=0
for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    server_alive || { cat "$LOG"; die "synack exited while starting (its output is above)"; }
    if ip -n "$NS" link show dev "$DEV" 2>/dev/null | grep -q LOWER_UP; then
        up=1
        break
    fi
    sleep 0.1
done
((up)) || { tail -n 20 "$LOG"; die "synack did not attach to $DEV within $START_TIMEOUT s (its output is above)"; }
pinged=0
for ((i = 0; i < START_TIMEOUT && !pinged; i++)); do
    server_alive || { cat "$LOG"; die "synack exited while starting (its output is above)"; }
    ip netns exec "$NS" ping -c 1 -W 1 "$STACK_IP" >/dev/null 2>&1 && pinged=1
done
if ((pinged)); then
    say "synack is up: attached to $DEV and answering ping. It said:"
else
    say "warning: synack is attached to $DEV but did not answer ping within $START_TIMEOUT s; carrying on. It said:"
fi
head -n 1 "$LOG"

# ---- the demo ----
STEP=0
FAILED=()
TRACE_SHOWN=0 # lines of $LOG shown so far

# show_trace: what synack traced since the last call: all of it when short, else its first
# and last lines and the command that prints all of it.
show_trace() {
    local total first n
    sleep 0.3 # the last ACKs of a close
    total=$(wc -l <"$LOG")
    first=$((TRACE_SHOWN + 1))
    n=$((total - TRACE_SHOWN))
    TRACE_SHOWN=$total
    echo
    if ((n <= 0)); then
        echo "--- synack traced nothing for this step"
        return
    fi
    echo "--- what synack traced (lines $first-$total of $LOG_REL; seconds since it started):"
    if ((n <= TRACE_ALL)); then
        sed -n "${first},${total}p" "$LOG"
    else
        sed -n "${first},$((first + TRACE_HEAD - 1))p" "$LOG"
        echo "    ... $((n - TRACE_HEAD - TRACE_TAIL)) lines more; all of this step: sed -n '${first},${total}p' $LOG_REL"
        sed -n "$((total - TRACE_TAIL + 1)),${total}p" "$LOG"
    fi
}

# demo_step TITLE EXPLANATION COMMAND [CHECK]: explain, show and run COMMAND in the namespace.
# CHECK names a function that judges $rc (exit status) and $out (stdout); default: rc is 0.
demo_step() {
    local title=$1 text=$2 cmd=$3 check=${4:-check_ok} rc=0 out
    STEP=$((STEP + 1))
    banner "$STEP. $title"
    echo "$text"
    echo
    echo "\$ $cmd"
    (cd "$TMP" && ip netns exec "$NS" timeout --foreground "$STEP_TIMEOUT" bash -o pipefail -c "$cmd") |
        tee "$TMP/out" || rc=$?
    out=$(<"$TMP/out")
    if ! "$check"; then
        echo "!! this step did not do what it should (exit status $rc)"
        FAILED+=("$STEP. $title")
    fi
    show_trace
    server_alive || {
        echo "!! synack is no longer running; the last lines of its output:"
        tail -n 20 "$LOG"
        FAILED+=("synack exited during step $STEP")
        SERVER_PID=
        return 1
    }
}

check_ok() { ((rc == 0)); }
# The page itself is long: its first lines are enough to see what came back.
check_page() {
    ((rc == 0)) && [[ -s $TMP/page.html ]] || return 1
    echo "(page.html: $(wc -c <"$TMP/page.html") bytes, $(wc -l <"$TMP/page.html") lines; the first 8:)"
    head -n 8 "$TMP/page.html"
}
check_hello() { ((rc == 0)) && [[ $out == hello ]]; }
check_refused() { [[ $out == *refused* ]]; }
check_100000() {
    local n
    n=$(wc -c <"$TMP/bytes.out")
    echo "(received $n bytes; expected 100000)"
    ((rc == 0 && n == 100000))
}

# The demo commands run in $TMP, so the files they name are short.
seq 1 4000 >"$TMP/numbers.txt" # 18 893 bytes, ~13 full segments

run_demo() {
    demo_step "HTTP: curl -v http://$STACK_IP/" \
"One request on a fresh connection. curl -v narrates its side (lines with * > <);
synack's trace below shows the same connection from the other end: the three-way
handshake (SYN, SYN-ACK carrying our MSS, ACK) and LISTEN → SYN-RECEIVED → ESTABLISHED,
the request coming in, the page going out, and the close (FIN each way)." \
        "curl -sv --max-time 10 -o page.html http://$STACK_IP/" \
        check_page || return 0

    demo_step "a bulk download: 100 000 bytes" \
"About 69 full-size segments go out back to back, as far as the kernel's receive
window allows; watch its ACKs come back and the window slide. Byte i of /bytes/N
depends only on i, so this hash is the same on every run." \
        "curl -s --max-time 30 http://$STACK_IP/bytes/100000 | tee bytes.out | sha256sum" \
        check_100000 || return 0

    demo_step "echo (RFC 862) on port 7, with a half-close" \
"nc sends 'hello', then (-N) shuts down its sending side: a FIN while it still reads.
The stack echoes the bytes, sees the FIN (ESTABLISHED → CLOSE-WAIT), and closes its
side too (LAST-ACK → CLOSED), which ends nc." \
        "echo hello | $NC -N -w 5 $STACK_IP 7" \
        check_hello || return 0

    demo_step "discard (RFC 863) on port 9: a file in, nothing back" \
"numbers.txt ($(wc -c <"$TMP/numbers.txt") bytes) goes out in about 13 segments; the stack only
ACKs them (its window opening again as the discard server reads), then closes when nc does." \
        "$NC -N -w 5 $STACK_IP 9 < numbers.txt" || return 0

    demo_step "a closed port: nobody listens on 81" \
"The SYN gets a RST back at once (RFC 9293's answer to a segment for no connection),
so nc reports 'Connection refused' instead of waiting for a timeout." \
        "$NC -zv -w 2 $STACK_IP 81 2>&1" \
        check_refused || return 0

    demo_step "ping: ICMP echo" \
"Not TCP at all: the stack answers ICMP echo requests too." \
        "ping -c 2 -W 2 $STACK_IP" || return 0
}
TRACE_SHOWN=$(wc -l <"$LOG") # each step shows its own trace from here on
run_demo

# ---- stop ----
if [[ -n $SERVER_PID ]]; then
    banner "stopping synack with SIGINT (Ctrl-C), as you would"
    stop_server "$STOP_TIMEOUT"
    if [[ -n $SERVER_SECS ]]; then
        say "synack exited with status $SERVER_RC after ${SERVER_SECS} s"
    else
        FAILED+=("synack did not stop within $STOP_TIMEOUT s of SIGINT")
    fi
    [[ $SERVER_RC == 0 ]] || FAILED+=("synack exited with status $SERVER_RC")
fi
give_back "$PCAP" "$LOG"
# What synack printed as it stopped: the last closes and its exit summary.
total=$(wc -l <"$LOG")
if ((total > TRACE_SHOWN)); then
    echo
    echo "--- synack's last lines (lines $((TRACE_SHOWN + 1))-$total of $LOG_REL):"
    tail -n "+$((TRACE_SHOWN + 1))" "$LOG" | tail -n "$TRACE_ALL"
fi
echo
say "the whole trace, every step: $LOG_REL ($total lines)"

banner "the capture: $PCAP_REL"
if [[ -s $PCAP ]]; then
    echo "Every packet both ways as it crossed $DEV ($(wc -c <"$PCAP") bytes). Open it with:"
    echo "  wireshark $PCAP_REL"
    echo "  tshark -r $PCAP_REL"
    if ((HAVE_TSHARK)); then
        echo
        echo "\$ tshark -r $PCAP_REL -c 8"
        # tshark warns when run as root; run it as the user when there is one.
        if [[ -n $OWNER ]]; then
            as_owner tshark -r "$PCAP" -c 8 || FAILED+=("tshark could not read $PCAP_REL")
        else
            tshark -r "$PCAP" -c 8 2>&1 | grep -v '^Running as user' || FAILED+=("tshark could not read $PCAP_REL")
        fi
    fi
    echo
    echo "The first connection (curl's GET /) as a ladder diagram, drawn by synack from the capture:"
    echo "\$ $BIN_REL ladder --conn 1 $PCAP_REL"
    "$BIN" ladder --conn 1 "$PCAP" || FAILED+=("synack ladder could not read $PCAP_REL")
    echo
    echo "And its SYN,ACK layer by layer:"
    echo "\$ $BIN_REL explain --packet 4 $PCAP_REL | head -n 45   (frame numbers as Wireshark counts them)"
    "$BIN" explain --packet 4 "$PCAP" | head -n 45 || FAILED+=("synack explain could not read $PCAP_REL")
else
    echo "!! no capture was written to $PCAP_REL"
    FAILED+=("no capture in $PCAP_REL")
fi

echo
if [[ ${#FAILED[@]} -gt 0 ]]; then
    say "something went wrong:"
    printf '  - %s\n' "${FAILED[@]}"
    exit 1
fi
remove_namespace
say "done; the trace and the capture stay in captures/."
cat <<EOF

Try it from your own shell (from $REPO), in a namespace of your own, so nothing
changes in this machine's network:
  sudo scripts/setup.sh --netns lab
  sudo ip netns exec lab $BIN_REL serve --trace
and from another terminal:
  sudo ip netns exec lab curl http://$STACK_IP/
  sudo ip netns exec lab nc $STACK_IP 7
Ctrl-C stops synack; then: sudo scripts/teardown.sh --netns lab
Read the capture again at any time:
  $BIN_REL ladder $PCAP_REL | less
EOF
