#!/usr/bin/env bash
# bench-keepalive.sh: keep-alive HTTP, synack next to nginx on the kernel's TCP, with the
# clients a user would load a web server with (ApacheBench, wrk). Run by scripts/bench.sh;
# runs on its own too:
#
#   sudo scripts/bench-keepalive.sh                      # target/release/synack, built if missing
#   sudo scripts/bench-keepalive.sh --synack PATH        # another build (e.g. an older one)
#
# Everything happens in network namespaces made here and removed on exit (also on Ctrl-C or
# failure); nothing is added to the machine's own namespace.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

SYNACK=
DURATION=10
AB_N=50000
SMALL=2000
TAG=skab$$

usage() {
    cat <<EOF
Usage: sudo $PROG [--synack PATH] [--duration S] [--ab-n N]

Keep-alive HTTP/1.1 against two servers serving the same bytes:
  synack  'synack serve' on a TUN device (namespace -st, 10.7.0.1 → 10.7.0.2)
  nginx   Debian's nginx-light on the kernel's TCP, 2 workers, over a veth pair with
          offloads off and MTU 1500 (namespaces -na / -nb, 10.11.0.1 → 10.11.0.2); its files
          are synack's own answers, fetched first: the index page (/) and /bytes/$SMALL
Rows (one run each, clients in the client's namespace, each bounded by 'timeout'):
  ab -k -n 200 -c 1 /          one request at a time: the latency of a request on a
                               warm connection (a 40 ms delayed-ACK stall shows as < 25/s)
  ab -k -n N -c 100 /          100 connections, N requests (--ab-n, default $AB_N)
  wrk -t2 -c400 -dS /bytes/$SMALL   400 connections for S seconds (--duration, default $DURATION),
                               a small body (two segments)
  wrk -t2 -c400 -dS /          the same on the page, whose last segment is small

  --synack PATH   the synack binary (default target/release/synack, built if missing)
  --duration S    wrk's run time in seconds (default $DURATION)
  --ab-n N        requests for the 100-connection ab run (default $AB_N)
  -h, --help      show this help
EOF
}

say() { echo "$PROG: $*" >&2; } # stdout is the report

ORIG_ARGS=("$@")
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --synack) [[ $# -ge 2 ]] || die "--synack needs a path"; SYNACK=$2; shift 2 ;;
        --synack=*) SYNACK=${1#*=}; shift ;;
        --duration) [[ $# -ge 2 ]] || die "--duration needs seconds"; DURATION=$2; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --ab-n) [[ $# -ge 2 ]] || die "--ab-n needs a number"; AB_N=$2; shift 2 ;;
        --ab-n=*) AB_N=${1#*=}; shift ;;
        *) die "unknown argument '$1' (see $PROG --help)" ;;
    esac
done
[[ $DURATION =~ ^[1-9][0-9]{0,2}$ ]] || die "--duration must be 1..999 seconds, not '$DURATION'"
[[ $AB_N =~ ^[1-9][0-9]{2,6}$ ]] || die "--ab-n must be 100..9999999, not '$AB_N'"

[[ $EUID -eq 0 ]] || die "must be run as root (network namespaces, TUN): sudo $0 ${ORIG_ARGS[*]}"
for tool in ip ab wrk nginx curl timeout awk; do
    command -v "$tool" >/dev/null ||
        die "'$tool' is missing (scripts/install-deps.sh installs apache2-utils, wrk, nginx-light, curl)"
done
if [[ -z $SYNACK ]]; then
    SYNACK=$REPO/target/release/synack
    [[ -x $SYNACK ]] || cargo build --release --quiet --bin synack || die "cargo build failed"
fi
[[ -x $SYNACK ]] || die "$SYNACK is not an executable synack binary"

WORK=$(mktemp -d /tmp/synack-keepalive.XXXXXX)
chmod 755 "$WORK"
NAMESPACES=()
PIDS=()
cleanup() {
    set +e
    stop_pids_and_namespaces
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_ns() {
    ip netns add "$1" || die "could not create namespace $1"
    NAMESPACES+=("$1")
    ip -n "$1" link set dev lo up
}
offloads_off() {
    local ns=$1 dev=$2 f
    ip -n "$ns" link set dev "$dev" mtu 1500
    command -v ethtool >/dev/null || { say "warning: no ethtool: offloads stay at their defaults"; return 0; }
    for f in tso gso gro sg tx rx; do
        ip netns exec "$ns" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true
    done
}
# synack on its TUN.
ST=$TAG-st
make_ns "$ST"
bash scripts/setup.sh --netns "$ST" --name synack0 --addr 10.7.0.1/24 >"$WORK/setup.log" 2>&1 ||
    { cat "$WORK/setup.log" >&2; die "scripts/setup.sh failed"; }
offloads_off "$ST" synack0
ip netns exec "$ST" "$SYNACK" serve --tun synack0 --ip 10.7.0.2 2>"$WORK/synack.log" &
SYNACK_PID=$!
PIDS+=("$SYNACK_PID")
wait_for "$WORK/synack.log" "serving as" "$SYNACK_PID" || die "synack serve did not start"

# The bytes nginx serves: synack's own answers.
mkdir -p "$WORK/www/bytes"
ip netns exec "$ST" curl -sf --max-time 5 -o "$WORK/www/index.html" http://10.7.0.2/ ||
    die "could not fetch synack's page"
ip netns exec "$ST" curl -sf --max-time 5 -o "$WORK/www/bytes/$SMALL" "http://10.7.0.2/bytes/$SMALL" ||
    die "could not fetch /bytes/$SMALL from synack"
chmod -R a+rX "$WORK/www"

# nginx on the kernel's TCP, in its own namespace, across a veth pair.
NA=$TAG-na
NB=$TAG-nb
make_ns "$NA"
make_ns "$NB"
ip -n "$NA" link add nv0 type veth peer name nv1 netns "$NB"
ip -n "$NA" addr add 10.11.0.1/24 dev nv0
ip -n "$NB" addr add 10.11.0.2/24 dev nv1
offloads_off "$NA" nv0
offloads_off "$NB" nv1
ip -n "$NA" link set dev nv0 up
ip -n "$NB" link set dev nv1 up
cat >"$WORK/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 2048; }
http {
    access_log off;
    default_type text/html;
    keepalive_requests 1000000;
    server {
        listen 10.11.0.2:80;
        root $WORK/www;
        location / { index index.html; }
        location /bytes/ { default_type application/octet-stream; }
    }
}
EOF
ip netns exec "$NB" nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" 2>"$WORK/nginx.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for _ in {1..100}; do
    ip netns exec "$NA" curl -sf --max-time 1 -o /dev/null http://10.11.0.2/ && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx.log" "$WORK/nginx-error.log" >&2; die "nginx did not start"; }
    sleep 0.1
done
cmp -s <(ip netns exec "$NA" curl -sf --max-time 5 http://10.11.0.2/) "$WORK/www/index.html" ||
    die "nginx does not serve synack's page"

# ab_row NS URL N C: "REQ/S P50 P90 P99 MAX FAILED" from ab's summary (ms), or "fail".
ab_row() {
    local ns=$1 url=$2 n=$3 c=$4 out
    out=$(timeout 120 ip netns exec "$ns" ab -k -q -n "$n" -c "$c" "$url" 2>&1) || { echo fail; return; }
    awk '/^Requests per second:/ { rps = $4 }
         /^Failed requests:/ { failed = $3 }
         /^  50%/ { p50 = $2 } /^  90%/ { p90 = $2 } /^  99%/ { p99 = $2 } /^ 100%/ { max = $2 }
         END { if (rps == "") print "fail"; else printf "%.0f %s %s %s %s %s\n", rps, p50, p90, p99, max, failed }' <<<"$out"
}
# wrk_row NS URL: "REQ/S P50 P90 P99 ERRORS" (ms), or "fail".
wrk_row() {
    local ns=$1 url=$2 out
    out=$(timeout $((DURATION + 30)) ip netns exec "$ns" wrk -t2 -c400 -d"${DURATION}s" --latency "$url" 2>&1) ||
        { echo fail; return; }
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         /^Requests\/sec:/ { rps = $2 }
         /^ +50%/ { p50 = ms($2) } /^ +90%/ { p90 = ms($2) } /^ +99%/ { p99 = ms($2) }
         /Socket errors|Non-2xx/ { err = err $0 }
         END { if (rps == "") print "fail"; else printf "%.0f %.1f %.1f %.1f %s\n", rps, p50, p90, p99, (err == "" ? "0" : "errors") }' <<<"$out"
}

declare -A ROW
run() { # run KEY TOOL PATH ARGS...
    local key=$1 tool=$2 path=$3
    shift 3
    say "$tool $path ($key)"
    ROW[$key.synack]=$("${tool}_row" "$ST" "http://10.7.0.2$path" "$@")
    ROW[$key.nginx]=$("${tool}_row" "$NA" "http://10.11.0.2$path" "$@")
}
run ab1 ab / 200 1
run ab100 ab / "$AB_N" 100
run wrksmall wrk "/bytes/$SMALL"
run wrkpage wrk /

page_bytes=$(stat -c %s "$WORK/www/index.html")
echo
echo "Keep-alive HTTP: synack TUN ($(basename "$SYNACK")) vs nginx-light (2 workers) on the kernel's TCP over a veth, offloads off, MTU 1500; the page is $page_bytes bytes."
echo "| keep-alive run | synack TUN | nginx veth | synack/nginx |"
echo "|---|---|---|---|"
cell() { # cell KIND FIELDS...
    local kind=$1
    shift
    [[ $1 == fail ]] && { echo "fail"; return; }
    if [[ $kind == ab ]]; then
        echo "$1 req/s, p50 $2 ms, p90 $3 ms, p99 $4 ms, max $5 ms$([[ $6 != 0 ]] && echo ", $6 failed")"
    else
        echo "$1 req/s, p50 $2 ms, p90 $3 ms, p99 $4 ms$([[ $5 != 0 ]] && echo ", socket errors")"
    fi
}
declare -A TEXT=([ab1]="ab -k -n 200 -c 1 /" [ab100]="ab -k -n $AB_N -c 100 /"
    [wrksmall]="wrk -t2 -c400 -d${DURATION}s /bytes/$SMALL" [wrkpage]="wrk -t2 -c400 -d${DURATION}s / (page)")
for key in ab1 ab100 wrksmall wrkpage; do
    kind=wrk
    [[ $key == ab* ]] && kind=ab
    read -r -a s <<<"${ROW[$key.synack]}"
    read -r -a n <<<"${ROW[$key.nginx]}"
    ratio="–"
    if [[ ${s[0]} =~ ^[0-9] && ${n[0]} =~ ^[0-9] ]]; then
        ratio=$(awk -v a="${s[0]}" -v b="${n[0]}" 'BEGIN { printf "%.2f×", a / b }')
    fi
    echo "| ${TEXT[$key]} | $(cell "$kind" "${s[@]}") | $(cell "$kind" "${n[@]}") | $ratio |"
done
echo "A 40 ms wait per response (Nagle holding a small tail for the client's delayed ACK) caps the first row below 25 req/s."
if [[ ${ROW[ab1.synack]} == fail || ${ROW[wrkpage.synack]} == fail ]]; then
    say "synack failed a keep-alive run; its log: $(tail -n 5 "$WORK/synack.log" | paste -sd ' ')"
    exit 1
fi
