#!/usr/bin/env bash
# bench-tokio.sh: the axum example (examples/axum_on_synack.rs) under load, on synack's TCP
# and on the kernel's with the same app, and the memory of idle async connections.
#
#   sudo scripts/bench-tokio.sh                      # 64 keep-alive clients, 20 s, 1,000 idle
#   sudo scripts/bench-tokio.sh --duration 5 --idle 200 --rounds 1
#
# Load: wrk (-t2, CONNS keep-alive connections, DURATION s, GET /) against
#   synack   axum_on_synack on the TUN device in namespace -s (wrk there, over the TUN)
#   kernel   axum_on_synack --kernel in namespace -k, wrk in namespace -s, over a veth pair
# Interleaved ROUNDS times; requests/s and p99 latency per run.
# Memory: the server's VmRSS before and after IDLE keep-alive connections that each made one
# request and then sit idle, per connection (the kernel's socket memory is not in its RSS).
#
# Everything happens in network namespaces made here and removed on exit, also on failure.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

CONNS=64
DURATION=20
ROUNDS=2
IDLE=1000
BUILD=1
TAG=stok$$

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    echo "Options: --conns N --duration S --rounds N --idle N (0 skips) --no-build"
}
while [[ $# -gt 0 ]]; do
    case $1 in
        --conns) CONNS=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --rounds) ROUNDS=${2:?}; shift 2 ;;
        --idle) IDLE=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 && $CONNS -le 1000 ]] || die "--conns must be 1..1000"
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 120 ]] || die "--duration must be 1..120 seconds"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 10 ]] || die "--rounds must be 1..10"
[[ $IDLE =~ ^[0-9]+$ && $IDLE -le 4000 ]] || die "--idle must be 0..4000"
[[ $EUID -eq 0 ]] || die "needs root (network namespaces and a TUN device): sudo $0"
# The idle clients and the kernel-side server each hold a descriptor per connection.
ulimit -n 16384 2>/dev/null || true
for tool in wrk curl python3 ip; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh installs it)"
done

APP=$REPO/target/release/examples/axum_on_synack
if [[ $BUILD == 1 ]]; then
    echo "building the release example (cargo build --release --features tokio --example axum_on_synack)"
    cargo build --release --quiet --features tokio --example axum_on_synack
fi
[[ -x $APP ]] || die "$APP is missing (drop --no-build)"

SN=$TAG-s
KN=$TAG-k
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bash scripts/teardown.sh --netns "$SN" --force >/dev/null 2>&1 || true
    ip netns del "$SN" 2>/dev/null || true
    ip netns del "$KN" 2>/dev/null || true
}
trap cleanup EXIT

bash scripts/setup.sh --netns "$SN" >/dev/null || die "scripts/setup.sh --netns $SN failed"
ip netns add "$KN"
ip -n "$KN" link set dev lo up
ip -n "$SN" link add kv0 type veth peer name kv1 netns "$KN"
ip -n "$SN" addr add 10.8.0.1/24 dev kv0
ip -n "$KN" addr add 10.8.0.2/24 dev kv1
ip -n "$SN" link set dev kv0 up
ip -n "$KN" link set dev kv1 up

# Both servers stay up for the whole run; each gets the same load in turn.
ip netns exec "$SN" "$APP" synack0 80 >/dev/null 2>&1 &
SYNACK_PID=$!
PIDS+=("$SYNACK_PID")
ip netns exec "$KN" "$APP" --kernel 10.8.0.2:8080 >/dev/null 2>&1 &
KERNEL_PID=$!
PIDS+=("$KERNEL_PID")
for url in http://10.7.0.2/ http://10.8.0.2:8080/; do
    for _ in $(seq 100); do
        ip netns exec "$SN" curl -s -m 1 -o /dev/null "$url" && continue 2
        sleep 0.1
    done
    die "the server at $url did not answer"
done

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# wrk's summary → "req/s p99"; p99 converted to milliseconds.
run_wrk() {
    local url=$1 out
    out=$(timeout $((DURATION + 30)) ip netns exec "$SN" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$url")
    local rps p99
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.2f", v }' <<<"$out")
    local errors
    errors=$(grep -E "Socket errors|Non-2xx" <<<"$out" || true)
    echo "$rps $p99 ${errors:+($errors)}"
}

echo "| server | round | requests/s | p99 latency |"
echo "|---|---|---|---|"
for r in $(seq "$ROUNDS"); do
    read -r rps p99 rest < <(run_wrk http://10.7.0.2/)
    echo "| axum on synack (TUN) | $r | $rps | $p99 ms $rest|"
    read -r rps p99 rest < <(run_wrk http://10.8.0.2:8080/)
    echo "| axum on the kernel (veth) | $r | $rps | $p99 ms $rest|"
done

if [[ $IDLE -gt 0 ]]; then
    # A client holding IDLE keep-alive connections, each after one answered request.
    HOLDER=$(mktemp --suffix=.py)
    cat >"$HOLDER" <<'PY'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for i in range(n):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    got = b""
    while b"</p>\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"connection {i} closed early")
        got += chunk
    held.append(s)
print("ready", flush=True)
time.sleep(60)
PY
    echo
    echo "| server | idle connections | VmRSS before → after | per connection |"
    echo "|---|---|---|---|"
    for side in synack kernel; do
        if [[ $side == synack ]]; then pid=$SYNACK_PID host=10.7.0.2 port=80; else pid=$KERNEL_PID host=10.8.0.2 port=8080; fi
        before=$(rss_kb "$pid")
        fifo=$(mktemp -u)
        mkfifo "$fifo"
        # `ip netns exec` and `timeout` exec: the pid is timeout's, which passes a kill on.
        ip netns exec "$SN" timeout 120 python3 "$HOLDER" "$host" "$port" "$IDLE" >"$fifo" &
        holder=$!
        PIDS+=("$holder")
        read -r -t 110 line <"$fifo" || line=""
        rm -f "$fifo"
        [[ $line == ready ]] || die "$side: the idle connections did not all open"
        sleep 1
        after=$(rss_kb "$pid")
        kill "$holder" 2>/dev/null || true
        wait "$holder" 2>/dev/null || true
        awk -v s="$side" -v a="$before" -v b="$after" -v n="$IDLE" 'BEGIN {
            printf "| axum on %s | %d | %.1f MiB → %.1f MiB | %.1f KiB |\n", s, n, a / 1024, b / 1024, (b - a) / n }'
        sleep 2
    done
    rm -f "$HOLDER"
fi
