#!/usr/bin/env bash
# bench.sh: synack next to the kernel's own TCP and smoltcp, in one run: bulk throughput
# (clean and under loss) beside the limit of a one-thread stack on a TUN, with and without
# RPS, connection rate, memory per idle connection, the cost of --pcap, and bulk with
# --offload next to the kernel with its offloads on.
#
#   sudo scripts/bench.sh            # 3 interleaved rounds of 100 MB, clean and 1% / 5% loss
#   sudo scripts/bench.sh --quick    # 1 round of 20 MB, 0% and 5% loss, short timeouts
#
# Everything happens in network namespaces made here and removed on exit (also on Ctrl-C or
# failure); nothing is added to the machine's own namespace.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

ROUNDS=3
SIZE_MB=100
# The loss target is stated for 30 MB each way.
LOSS_MB=30
TIMEOUT=120
LOSSES="0,1,5"
BUILD=1
SYNACK_ARGS=""
# The kernel's own default here is BBR; synack's counterpart is --cc bbr.
SYNACK_CC=bbr
LOSS_AT=receiver
CONNS=5000
CONN_PARALLEL=16
IDLE=10000
PCAP=1
OFFLOAD=1
KEEPALIVE=1
CEILING=1
TAG=sbench$$

usage() {
    cat <<EOF
Usage: sudo $PROG [--quick] [--rounds N] [--size MB] [--loss LIST] [--timeout S]
                  [--conns N] [--idle N] [--no-pcap] [--no-offload] [--no-keepalive]
                  [--no-ceiling] [--synack-cc ALG]
                  [--synack-args ARGS]
                  [--no-build]

Build release binaries, then measure, with client programs on the kernel's TCP, three servers:
  kernel   the kernel's TCP in another namespace over a veth pair, serving with
           examples/kernel_peer.rs (the same HTTP code synack serves with, over std::net)
  synack   'synack serve --cc ALG' on a TUN device (--synack-cc, default bbr)
  smoltcp  examples/smoltcp_peer.rs: smoltcp (crates.io) on a TUN device, 4 MiB buffers,
           CUBIC, Nagle off, serving the same /bytes/N, discard and echo
Bulk (examples/bulk_client.rs), SIZE megabytes (10^6 bytes) both directions: down = GET
/bytes/N from the server (the server sends, check every byte), up = N bytes to the server's
discard port, then wait for its FIN. Each at every loss rate in LIST, P% of the packets
dropped at random both ways.
The limit (examples/tun_ceiling.rs), beside the clean bulk rows: one thread that does only
the packet I/O a stack on a TUN must do (pre-built segments, cumulative ACKs, no TCP logic),
pinned to CPU0 with the kernel's socket on CPU1, on a TUN of its own set up like the stacks'.
down: it writes 1448-byte segments as the kernel's window allows; up: it reads the kernel's
and acknowledges as synack does (and, a second limit, once per 256 KiB). Every stack is also
given as a fraction of it, per round, with the rounds' cache level (tun_ceiling --cache-probe
before, between and after the clean transfers: F, the two CPUs share a cache; S, they do not).
In the clean transfers every bulk client (kernel, synack, smoltcp, --pcap, +rps) is pinned to
CPU1, the CPU of the limit's kernel socket, and every server (all its threads) to CPU0, the
CPU of the limit's TUN thread, for the transfer: left to the scheduler, a server sometimes
shares CPU1 with its client and runs at half speed, which no ratio then means.
+rps: the clean transfers again with Receive Packet Steering on the TUN's receive queue to every
CPU but CPU0: for synack a second 'synack serve' on a TUN of its own, started with RPS on
(scripts/setup.sh --rps-cpus), so that it pins its event loop to CPU0 itself; for smoltcp and
the limit RPS on their own TUN for the run, smoltcp's server pinned to CPU0 with taskset.
Connection rate (examples/conn_rate.rs, one client thread, no loss), one connection at a time
(the rate is one over a connection's latency: the chain of wake-ups on both sides) and then
K in flight from the same thread (non-blocking sockets, one poll; what the server sustains):
  echo  connect, 1 byte to echo :7 and back, client closes first (TIME-WAIT on the client)
  http  connect, GET /bytes/1 with Connection: close, server closes first (TIME-WAIT in the
        server's stack)
Memory (examples/idle_conns.rs): synack's VmRSS before and after opening N idle connections
to its echo port, per connection.
--pcap cost: the clean bulk transfers again against 'synack serve --pcap FILE', FILE on the disk
under /tmp and in a tmpfs (/dev/shm): receiving outruns a disk, and a capture keeps every packet.
Bulk with --offload (scripts/bench-offload.sh): clean transfers of at least 500 MB, MTU 1500,
offloads ON: 'synack serve --offload' on a TUN vs the kernel on a veth with TSO/GSO/GRO on.
Keep-alive HTTP (scripts/bench-keepalive.sh): ab -k (one connection; 100) and wrk -c400 on a
small body and on the page, synack next to nginx-light on the kernel's TCP serving the same bytes.
Rounds are interleaved; the tables show medians and ratios.

Where the loss happens (--loss-at):
  receiver  (default) where packets arrive: an nft 'numgen random mod 100 < P drop' rule at
            the ingress hook of the receiving kernel device (both veth ends; the TUN for what
            synack sends), and synack's own --faults-in loss=P/100 for what synack receives.
  client    the nft rule at the egress and ingress hooks of the client's device (veth end or
            TUN), the same for every stack. Beware: the kernel's TCP builds GSO super-packets
            that are split only after the egress hook, and a drop there is reported back to
            the sending socket (NET_XMIT_DROP), which sends the data again at once: egress
            drops of the kernel's own data are no loss at all, so 'up' rows are nearly clean.

  --quick           1 round of 20 MB at 0% and 5% loss, timeout 20 s, 2000 connections,
                    5000 idle ones (--rounds 1 --size 20 --loss 0,5 --timeout 20 --conns 2000
                    --idle 5000)
  --rounds N        rounds (default $ROUNDS)
  --size MB         transfer size in MB for the clean transfers (default $SIZE_MB)
  --loss-size MB    transfer size in MB under loss (default $LOSS_MB)
  --loss LIST       comma-separated loss percentages (default $LOSSES)
  --timeout S       bound on each transfer in seconds (default $TIMEOUT); a transfer
                    that takes longer counts as "timeout"
  --loss-at WHERE   receiver (default) or client, see above
  --conns N         connections per connection-rate run (default $CONNS; 0 skips them); each
                    run is also bounded by --timeout
  --conn-parallel K connections in flight for the second pair of connection-rate rows
                    (default $CONN_PARALLEL; 1 skips those rows)
  --idle N          idle connections for the memory measure (default $IDLE; 0 skips it);
                    opening them is bounded by the larger of --timeout and 60 s
  --no-pcap         skip the --pcap on/off comparison
  --no-offload      skip the bulk-with---offload rows
  --no-keepalive    skip the keep-alive rows (ab, wrk; synack vs nginx)
  --no-ceiling      skip the limit, the cache levels and the +rps rows
  --synack-cc ALG   synack's congestion control, bbr (default; the kernel's here too) or
                    newreno
  --synack-args A   extra arguments for 'synack serve' (e.g. "--pcap /tmp/b.pcap")
  --no-build        use the binaries already in target/release
  -h, --help        show this help

Apart from the --offload rows, the clients' devices have MTU 1500 and offloads off (TSO, GSO, GRO, scatter-gather,
checksum; set with ethtool, installed if missing), so neither side gets super-packets.
EOF
}

say() { echo "$PROG: $*" >&2; } # stdout is the report

ORIG_ARGS=("$@")
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --quick) ROUNDS=1; SIZE_MB=20; LOSSES=0,5; TIMEOUT=20; CONNS=2000; IDLE=5000; shift ;;
        --rounds) [[ $# -ge 2 ]] || die "--rounds needs a value"; ROUNDS=$2; shift 2 ;;
        --rounds=*) ROUNDS=${1#*=}; shift ;;
        --size) [[ $# -ge 2 ]] || die "--size needs a value (MB)"; SIZE_MB=$2; shift 2 ;;
        --size=*) SIZE_MB=${1#*=}; shift ;;
        --loss-size) [[ $# -ge 2 ]] || die "--loss-size needs a value (MB)"; LOSS_MB=$2; shift 2 ;;
        --loss-size=*) LOSS_MB=${1#*=}; shift ;;
        --loss) [[ $# -ge 2 ]] || die "--loss needs a list (e.g. 0,1,5)"; LOSSES=$2; shift 2 ;;
        --loss=*) LOSSES=${1#*=}; shift ;;
        --timeout) [[ $# -ge 2 ]] || die "--timeout needs seconds"; TIMEOUT=$2; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        --synack-cc) [[ $# -ge 2 ]] || die "--synack-cc needs bbr or newreno"; SYNACK_CC=$2; shift 2 ;;
        --synack-cc=*) SYNACK_CC=${1#*=}; shift ;;
        --synack-args) [[ $# -ge 2 ]] || die "--synack-args needs a value"; SYNACK_ARGS=$2; shift 2 ;;
        --synack-args=*) SYNACK_ARGS=${1#*=}; shift ;;
        --loss-at) [[ $# -ge 2 ]] || die "--loss-at needs receiver or client"; LOSS_AT=$2; shift 2 ;;
        --loss-at=*) LOSS_AT=${1#*=}; shift ;;
        --conns) [[ $# -ge 2 ]] || die "--conns needs a number"; CONNS=$2; shift 2 ;;
        --conns=*) CONNS=${1#*=}; shift ;;
        --conn-parallel) [[ $# -ge 2 ]] || die "--conn-parallel needs a number"; CONN_PARALLEL=$2; shift 2 ;;
        --conn-parallel=*) CONN_PARALLEL=${1#*=}; shift ;;
        --idle) [[ $# -ge 2 ]] || die "--idle needs a number"; IDLE=$2; shift 2 ;;
        --idle=*) IDLE=${1#*=}; shift ;;
        --no-pcap) PCAP=0; shift ;;
        --no-offload) OFFLOAD=0; shift ;;
        --no-keepalive) KEEPALIVE=0; shift ;;
        --no-ceiling) CEILING=0; shift ;;
        --no-build) BUILD=0; shift ;;
        *) die "unknown argument '$1' (see $PROG --help)" ;;
    esac
done

[[ $ROUNDS =~ ^[1-9][0-9]?$ && $ROUNDS -le 60 ]] || die "--rounds must be 1..60, not '$ROUNDS'"
[[ $SIZE_MB =~ ^[1-9][0-9]{0,2}$ ]] || die "--size must be 1..999 MB, not '$SIZE_MB'"
[[ $LOSS_MB =~ ^[1-9][0-9]{0,2}$ ]] || die "--loss-size must be 1..999 MB, not '$LOSS_MB'"
[[ $TIMEOUT =~ ^[1-9][0-9]{0,3}$ ]] || die "--timeout must be 1..9999 seconds, not '$TIMEOUT'"
[[ $LOSSES =~ ^[0-9]{1,2}(,[0-9]{1,2})*$ ]] || die "--loss must be percentages like 0,1,5, not '$LOSSES'"
[[ $CONNS =~ ^[0-9]{1,5}$ && $CONNS -le 22000 ]] || die "--conns must be 0..22000, not '$CONNS'"
[[ $CONN_PARALLEL =~ ^[1-9][0-9]{0,2}$ ]] || die "--conn-parallel must be 1..999, not '$CONN_PARALLEL'"
[[ $IDLE =~ ^[0-9]{1,5}$ && $IDLE -le 15000 ]] || die "--idle must be 0..15000, not '$IDLE'"
[[ $SYNACK_CC == bbr || $SYNACK_CC == newreno ]] || die "--synack-cc must be bbr or newreno, not '$SYNACK_CC'"
[[ $LOSS_AT == receiver || $LOSS_AT == client ]] || die "--loss-at must be receiver or client, not '$LOSS_AT'"
IFS=, read -r -a LOSS_LIST <<<"$LOSSES"
BYTES=$((SIZE_MB * 1000000))
LOSS_BYTES=$((LOSS_MB * 1000000))
# bytes_for LOSS: the transfer size at that loss rate.
bytes_for() { if (($1 > 0)); then echo "$LOSS_BYTES"; else echo "$BYTES"; fi; }

[[ $EUID -eq 0 ]] || die "must be run as root (network namespaces, TUN, nft): sudo $0 ${ORIG_ARGS[*]}"
for tool in ip nft timeout awk; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (scripts/install-deps.sh installs the test tools)"
done
if ! command -v ethtool >/dev/null; then
    say "installing ethtool (to turn offloads off)"
    apt-get install -y -qq ethtool >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq ethtool >/dev/null 2>&1; } ||
        say "warning: could not install ethtool; offloads stay at their defaults"
fi

# Under sudo, root usually has no Rust toolchain of its own: use the invoking user's.
OWNER=
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    OWNER=$SUDO_USER
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [[ -n $user_home ]] && ! command -v cargo >/dev/null && [[ -x $user_home/.cargo/bin/cargo ]]; then
        export PATH="$PATH:$user_home/.cargo/bin"
        if [[ -z ${RUSTUP_HOME:-} && ! -d $HOME/.rustup && -d $user_home/.rustup ]]; then
            export RUSTUP_HOME="$user_home/.rustup"
        fi
    fi
fi

# ---------------------------------------------------------------------------------------------
# Cleanup: every namespace and process made here goes, whatever happens.
WORK=$(mktemp -d /tmp/synack-bench.XXXXXX)
NAMESPACES=()
PIDS=()
# What the report ends with: from the setups on (a setup says why rows are missing).
NOTES=()

cleanup() {
    set +e
    stop_pids_and_namespaces
    rm -rf "$WORK"
    rm -f "/dev/shm/synack-bench-$$.pcap"
    if [[ -n $OWNER && $(stat -c %U "$REPO") == "$OWNER" ]]; then
        chown -R --from=0 "$OWNER": "$REPO/target" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Build.
if ((BUILD)); then
    say "building release binaries (synack; examples bulk_client, conn_rate, idle_conns, kernel_peer, smoltcp_peer, tun_ceiling)"
    cargo build --release --quiet --bin synack --example bulk_client --example kernel_peer \
        --example smoltcp_peer --example conn_rate --example idle_conns --example tun_ceiling ||
        die "cargo build failed"
fi
SYNACK=$REPO/target/release/synack
CLIENT=$REPO/target/release/examples/bulk_client
PEER=$REPO/target/release/examples/kernel_peer
SMOL=$REPO/target/release/examples/smoltcp_peer
CONN_RATE=$REPO/target/release/examples/conn_rate
IDLE_CONNS=$REPO/target/release/examples/idle_conns
CEIL=$REPO/target/release/examples/tun_ceiling
BINS=("$SYNACK" "$CLIENT" "$PEER" "$SMOL" "$CONN_RATE" "$IDLE_CONNS")
((CEILING)) && BINS+=("$CEIL")
for bin in "${BINS[@]}"; do
    [[ -x $bin ]] || die "$bin is missing (run without --no-build)"
done

# ---------------------------------------------------------------------------------------------
# Namespaces and devices.

# offloads_off NS DEV: TSO, GSO, GRO, scatter-gather and checksum offload off, MTU 1500.
offloads_off() {
    local ns=$1 dev=$2 f
    ip -n "$ns" link set dev "$dev" mtu 1500
    command -v ethtool >/dev/null || return 0
    for f in tso gso gro sg tx rx; do
        ip netns exec "$ns" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true
    done
}

# offload_state NS DEV: the offloads that matter, as one line.
offload_state() {
    local ns=$1 dev=$2
    command -v ethtool >/dev/null || { echo "unknown (no ethtool)"; return; }
    ip netns exec "$ns" ethtool -k "$dev" |
        awk -F': ' '/^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|scatter-gather|tx-checksumming|rx-checksumming):/ {
            sub(/ \[fixed\]/, "", $2); n = $1
            sub(/tcp-segmentation-offload/, "tso", n); sub(/generic-segmentation-offload/, "gso", n)
            sub(/generic-receive-offload/, "gro", n); sub(/scatter-gather/, "sg", n)
            sub(/tx-checksumming/, "tx-csum", n); sub(/rx-checksumming/, "rx-csum", n)
            out = out (out ? " " : "") n "=" $2 } END { print out }'
}

make_ns() {
    ip netns add "$1" || die "could not create namespace $1"
    NAMESPACES+=("$1")
    ip -n "$1" link set dev lo up
    # conn_rate binds ports 10000..32767 itself and idle_conns opens up to 15000 connections:
    # give the kernel's ephemeral ports the rest of the range (in this namespace only).
    ip netns exec "$1" sysctl -qw net.ipv4.ip_local_port_range="32768 65000" || true
}

# add_client_addrs NS DEV PREFIX: PREFIX.11 .. PREFIX.(10+4*ROUNDS) as extra addresses of the
# client's device, so that each connection-rate run connects from an address of its own (no
# four-tuple of a run is still in TIME-WAIT from the one before).
add_client_addrs() {
    local ns=$1 dev=$2 prefix=$3 i
    for ((i = 11; i <= 10 + 4 * ROUNDS; i++)); do
        ip -n "$ns" addr add "$prefix.$i/24" dev "$dev" || die "could not add $prefix.$i to $dev"
    done
}

# The kernel pair: client namespace -ka (10.8.0.1 on kv0) and server namespace -kb (10.8.0.2 on kv1).
KA=$TAG-ka
KB=$TAG-kb
KERNEL_SERVER=10.8.0.2
make_ns "$KA"
make_ns "$KB"
# Made inside the namespaces directly: the pair never exists in the machine's own namespace.
ip -n "$KA" link add kv0 type veth peer name kv1 netns "$KB"
ip -n "$KA" addr add 10.8.0.1/24 dev kv0
ip -n "$KB" addr add "$KERNEL_SERVER/24" dev kv1
offloads_off "$KA" kv0
offloads_off "$KB" kv1
ip -n "$KA" link set dev kv0 up
ip -n "$KB" link set dev kv1 up
add_client_addrs "$KA" kv0 10.8.0

start_kernel_peer() {
    ip netns exec "$KB" "$PEER" "$KERNEL_SERVER" 2>"$WORK/kernel_peer.log" &
    KERNEL_PID=$!
    PIDS+=("$KERNEL_PID")
    wait_for "$WORK/kernel_peer.log" "ready" "$KERNEL_PID" || die "kernel_peer did not start"
}
start_kernel_peer

# synack: one namespace with the TUN device (kernel side 10.7.0.1), synack serve and the client.
ST=$TAG-st
SYNACK_SERVER=10.7.0.2
make_ns "$ST"
bash scripts/setup.sh --netns "$ST" --name synack0 --addr 10.7.0.1/24 >"$WORK/setup.log" 2>&1 ||
    { cat "$WORK/setup.log" >&2; die "scripts/setup.sh failed"; }
offloads_off "$ST" synack0
add_client_addrs "$ST" synack0 10.7.0

SYNACK_STARTS=0
SYNACK_LOSS=0
start_synack() {
    local extra=()
    [[ -n $SYNACK_ARGS ]] && read -r -a extra <<<"$SYNACK_ARGS"
    if [[ $LOSS_AT == receiver ]] && ((SYNACK_LOSS > 0)); then
        extra+=(--faults-in "loss=$(awk -v p="$SYNACK_LOSS" 'BEGIN { print p / 100 }'),seed=$((SYNACK_STARTS + 1))")
    fi
    SYNACK_STARTS=$((SYNACK_STARTS + 1))
    ip netns exec "$ST" "$SYNACK" serve --tun synack0 --ip "$SYNACK_SERVER" --msl-ms 1000 --cc "$SYNACK_CC" \
        ${extra[@]+"${extra[@]}"} 2>"$WORK/synack-$SYNACK_STARTS.log" &
    SYNACK_PID=$!
    PIDS+=("$SYNACK_PID")
    wait_for "$WORK/synack-$SYNACK_STARTS.log" "serving as" "$SYNACK_PID" || die "synack serve did not start"
}
stop_synack() {
    kill -INT "$SYNACK_PID" 2>/dev/null || return 0
    for _ in {1..50}; do
        kill -0 "$SYNACK_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SYNACK_PID" 2>/dev/null || true
    wait "$SYNACK_PID" 2>/dev/null || true
}
start_synack

# smoltcp: its own namespace and TUN (kernel side 10.9.0.1), examples/smoltcp_peer and the client.
SM=$TAG-sm
SMOL_SERVER=10.9.0.2
make_ns "$SM"
bash scripts/setup.sh --netns "$SM" --name smol0 --addr 10.9.0.1/24 >"$WORK/setup-smol.log" 2>&1 ||
    { cat "$WORK/setup-smol.log" >&2; die "scripts/setup.sh failed (smoltcp's TUN)"; }
offloads_off "$SM" smol0
add_client_addrs "$SM" smol0 10.9.0
SMOL_STARTS=0
SMOL_LOSS=0
start_smoltcp() {
    local extra=()
    if [[ $LOSS_AT == receiver ]] && ((SMOL_LOSS > 0)); then
        extra+=(--loss "$SMOL_LOSS")
    fi
    SMOL_STARTS=$((SMOL_STARTS + 1))
    # A smoltcp listener becomes the connection: keep as many ready as connections in flight.
    extra+=(--listeners "$((CONN_PARALLEL > 4 ? CONN_PARALLEL : 4))")
    ip netns exec "$SM" "$SMOL" smol0 "$SMOL_SERVER/24" ${extra[@]+"${extra[@]}"} \
        2>"$WORK/smoltcp-$SMOL_STARTS.log" &
    SMOL_PID=$!
    PIDS+=("$SMOL_PID")
    wait_for "$WORK/smoltcp-$SMOL_STARTS.log" "ready" "$SMOL_PID" || die "smoltcp_peer did not start"
}
stop_smoltcp() {
    kill "$SMOL_PID" 2>/dev/null || return 0
    for _ in {1..50}; do
        kill -0 "$SMOL_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SMOL_PID" 2>/dev/null || true
    wait "$SMOL_PID" 2>/dev/null || true
}
start_smoltcp

# synack with --pcap, twice, each in a namespace and TUN like the first, for the clean transfers
# only: "pcap" writes its capture beside the bench's files ($WORK, on disk), "pcapm" into a
# tmpfs (/dev/shm). Receiving runs faster than a disk writes, and a capture keeps every packet
# (synack waits for the writer rather than lose one), so the disk row shows the disk's limit
# and the tmpfs row synack's own cost.
declare -A PCAP_NS=([pcap]=$TAG-pt [pcapm]=$TAG-pm)
declare -A PCAP_FILE=([pcap]=$WORK/bench.pcap [pcapm]=/dev/shm/synack-bench-$$.pcap)
declare -A PCAP_PID=([pcap]="" [pcapm]="")
PCAP_KINDS=()
PCAP_STARTS=0
DISK_MBPS=
if ((PCAP)); then
    PCAP_KINDS=(pcap)
    if [[ -d /dev/shm && -w /dev/shm ]] && [[ $(stat -f -c %T /dev/shm) == tmpfs ]]; then
        PCAP_KINDS+=(pcapm)
    else
        NOTES+=("no writable tmpfs at /dev/shm: the --pcap rows show the disk's cost only")
    fi
    for kind in "${PCAP_KINDS[@]}"; do
        make_ns "${PCAP_NS[$kind]}"
        bash scripts/setup.sh --netns "${PCAP_NS[$kind]}" --name synack0 --addr 10.7.0.1/24 >"$WORK/setup-$kind.log" 2>&1 ||
            { cat "$WORK/setup-$kind.log" >&2; die "scripts/setup.sh failed (--pcap TUN)"; }
        offloads_off "${PCAP_NS[$kind]}" synack0
    done
    # What the disk under $WORK writes with O_DIRECT, as synack's capture writer does.
    if dd if=/dev/zero of="$WORK/dd.test" bs=4M count=128 oflag=direct 2>"$WORK/dd.log"; then
        DISK_MBPS=$(sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p' "$WORK/dd.log" | awk '{ if ($1 > 0) printf "%.0f", 536.870912 / $1 }')
    fi
    rm -f "$WORK/dd.test"
fi
# start_pcap KIND: (re)start it with an empty capture file.
start_pcap() {
    local kind=$1 extra=()
    [[ -n $SYNACK_ARGS ]] && read -r -a extra <<<"$SYNACK_ARGS"
    rm -f "${PCAP_FILE[$kind]}"
    PCAP_STARTS=$((PCAP_STARTS + 1))
    ip netns exec "${PCAP_NS[$kind]}" "$SYNACK" serve --tun synack0 --ip "$SYNACK_SERVER" --msl-ms 1000 --cc "$SYNACK_CC" \
        --pcap "${PCAP_FILE[$kind]}" ${extra[@]+"${extra[@]}"} 2>"$WORK/pcap-$PCAP_STARTS.log" &
    PCAP_PID[$kind]=$!
    PIDS+=("${PCAP_PID[$kind]}")
    wait_for "$WORK/pcap-$PCAP_STARTS.log" "serving as" "${PCAP_PID[$kind]}" || die "synack serve --pcap did not start"
}
# stop_pcaps: end both, and remove their files.
stop_pcaps() {
    local kind pid
    for kind in ${PCAP_KINDS[@]+"${PCAP_KINDS[@]}"}; do
        pid=${PCAP_PID[$kind]}
        [[ -n $pid ]] || continue
        kill -INT "$pid" 2>/dev/null || continue
        for _ in {1..50}; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rm -f "${PCAP_FILE[$kind]}"
    done
}

# ---------------------------------------------------------------------------------------------
# The stacks. Each says where its client runs and where its server is, and has two functions:
# ensure_<stack> restarts a server that died, loss_<stack> PCT sets its loss. Another stack
# needs one more entry in STACKS and these. "pcap" and "pcapm" (synack --pcap to disk, to
# tmpfs) are not in STACKS: they run the clean transfers only, next to synack's, for the cost.
STACKS=(kernel synack smoltcp)
# Ratio columns: "A B" is A's throughput (or rate) over B's.
RATIOS=("synack kernel" "smoltcp kernel" "synack smoltcp")
declare -A LABEL=([kernel]="kernel veth" [synack]="synack TUN" [smoltcp]="smoltcp TUN" [pcap]="synack TUN --pcap (disk)" [pcapm]="synack TUN --pcap (tmpfs)")
declare -A CLIENT_NS=([kernel]=$KA [synack]=$ST [smoltcp]=$SM [pcap]=${PCAP_NS[pcap]} [pcapm]=${PCAP_NS[pcapm]})
declare -A SERVER=([kernel]=$KERNEL_SERVER [synack]=$SYNACK_SERVER [smoltcp]=$SMOL_SERVER [pcap]=$SYNACK_SERVER [pcapm]=$SYNACK_SERVER)
# The CPU a stack's bulk client is pinned to in the clean transfers (none: not pinned); the limit
# sets it to its kernel socket's CPU for every run compared with it (bench-ceiling.sh).
declare -A CLIENT_CPU=()
# The client's /24 (its device's), for conn_rate's source addresses.
declare -A CLIENT_NET=([kernel]=10.8.0 [synack]=10.7.0 [smoltcp]=10.9.0)

ensure_kernel() { kill -0 "$KERNEL_PID" 2>/dev/null || { NOTES+=("kernel_peer had exited; restarted"); start_kernel_peer; }; }
ensure_synack() {
    if ! kill -0 "$SYNACK_PID" 2>/dev/null; then
        NOTES+=("synack serve had exited (log: $(tail -n 3 "$WORK/synack-$SYNACK_STARTS.log" | paste -sd ' ')); restarted")
        start_synack
    fi
}
ensure_smoltcp() {
    if ! kill -0 "$SMOL_PID" 2>/dev/null; then
        NOTES+=("smoltcp_peer had exited (log: $(tail -n 3 "$WORK/smoltcp-$SMOL_STARTS.log" | paste -sd ' ')); restarted")
        start_smoltcp
    fi
}
# The --offload rows: two more servers with offloads on, clean transfers only, like "pcap".
# shellcheck source=scripts/bench-offload.sh disable=SC1091  # checked on its own
source "$REPO/scripts/bench-offload.sh"
if ((OFFLOAD)); then
    offload_setup
fi
# The limit and the +rps rows (scripts/bench-ceiling.sh).
# shellcheck source=scripts/bench-ceiling.sh disable=SC1091  # checked on its own
source "$REPO/scripts/bench-ceiling.sh"
if ((CEILING)); then
    ceiling_setup
fi
# A fresh capture file for every transfer (the restart is not timed).
# One 'synack serve --pcap' for the whole run, long-lived like the plain one: a fresh process
# per transfer paid its warm-up (first touches of fresh 4 MiB buffers) inside the timed part.
# The file grows to the sum of the clean transfers (0.6 GB for the default run, in $WORK).
ensure_pcap() {
    if [[ -z ${PCAP_PID[pcap]} ]] || ! kill -0 "${PCAP_PID[pcap]}" 2>/dev/null; then
        start_pcap pcap
    fi
}
ensure_pcapm() {
    if [[ -z ${PCAP_PID[pcapm]} ]] || ! kill -0 "${PCAP_PID[pcapm]}" 2>/dev/null; then
        start_pcap pcapm
    fi
}

# nft_drop NS DEV PCT HOOK...: drop PCT% of the packets DEV sees at each HOOK (ingress: arriving
# from the wire; egress: leaving), chosen at random; PCT 0 removes the rules.
nft_drop() {
    local ns=$1 dev=$2 pct=$3 hook rules=""
    shift 3
    ip netns exec "$ns" nft delete table netdev bench 2>/dev/null || true
    ((pct > 0)) || return 0
    for hook in "$@"; do
        rules+="    chain $hook { type filter hook $hook device \"$dev\" priority 0; numgen random mod 100 < $pct drop; }"$'\n'
    done
    ip netns exec "$ns" nft -f - <<<"table netdev bench {"$'\n'"$rules}"
}

# Loss where the packets arrive (the default): every drop is a packet lost on the wire.
#   kernel: ingress on both ends of the veth pair.
#   synack: ingress on the TUN (what synack sends) and synack's own --faults-in loss=P (what
#           it receives: the kernel's packets to a TUN leave through egress, where a drop is
#           no loss at all, see --help).
# Loss on the client's device (--loss-at client): egress and ingress on the veth's client end
# and on the TUN, the same nft rule for every stack.
loss_kernel() {
    if [[ $LOSS_AT == receiver ]]; then
        nft_drop "$KA" kv0 "$1" ingress
        nft_drop "$KB" kv1 "$1" ingress
    else
        nft_drop "$KA" kv0 "$1" ingress egress
    fi
}
loss_synack() {
    if [[ $LOSS_AT == receiver ]]; then
        nft_drop "$ST" synack0 "$1" ingress
        if (($1 != SYNACK_LOSS)); then
            SYNACK_LOSS=$1
            stop_synack
            start_synack
        fi
    else
        nft_drop "$ST" synack0 "$1" ingress egress
    fi
}
# smoltcp: its own FaultInjector around the TUN drops P% both ways (what it receives and what
# it sends), like synack's --faults-in plus the nft ingress rule.
loss_smoltcp() {
    if [[ $LOSS_AT == receiver ]]; then
        if (($1 != SMOL_LOSS)); then
            SMOL_LOSS=$1
            stop_smoltcp
            start_smoltcp
        fi
    else
        nft_drop "$SM" smol0 "$1" ingress egress
    fi
}

# ---------------------------------------------------------------------------------------------
# Measure. results: "stack dir loss round secs" with secs "timeout" or "fail" when it did not
# complete.
RESULTS=$WORK/results
: >"$RESULTS"

# server_pid STACK: the process serving STACK's plain rows (none for the +rps ones).
server_pid() {
    case $1 in
        kernel) echo "$KERNEL_PID" ;;
        synack) echo "$SYNACK_PID" ;;
        smoltcp) echo "$SMOL_PID" ;;
        pcap | pcapm) echo "${PCAP_PID[$1]}" ;;
    esac
}

run_one() { # run_one STACK DIR LOSS ROUND
    local stack=$1 dir=$2 loss=$3 round=$4 port out rc secs pin=() spid="" sorig=""
    "ensure_$stack"
    port=80
    [[ $dir == up ]] && port=9
    out=$WORK/$stack-$dir-$loss-$round
    rc=0
    if ((loss == 0)) && [[ -n ${CLIENT_CPU[$stack]:-} ]]; then
        pin=(taskset -c "${CLIENT_CPU[$stack]}")
        # The server on the limit's TUN CPU (the +rps servers are pinned by their own runs).
        spid=$(server_pid "$stack")
        if [[ -n $spid ]]; then
            sorig=$(taskset -p -c "$spid" 2>/dev/null | sed 's/.*: //')
            taskset -a -p -c "$CEIL_CPU" "$spid" >/dev/null 2>&1 || sorig=""
        fi
    fi
    timeout -k 5 "$TIMEOUT" ip netns exec "${CLIENT_NS[$stack]}" ${pin[@]+"${pin[@]}"} \
        "$CLIENT" "$dir" "${SERVER[$stack]}:$port" "${RUN_BYTES:-$(bytes_for "$loss")}" >"$out.out" 2>"$out.err" || rc=$?
    if [[ -n $sorig ]]; then
        taskset -a -p -c "$sorig" "$spid" >/dev/null 2>&1 || true
    fi
    if ((rc == 0)); then
        secs=$(sed -n 's/^result .* secs=\([0-9.]*\) .*/\1/p' "$out.out")
        [[ -n $secs ]] || { secs=fail; NOTES+=("$stack $dir loss $loss% round $round: no result line"); }
    elif ((rc == 124 || rc == 137)); then
        secs=timeout
        NOTES+=("$stack $dir loss $loss% round $round: timeout after ${TIMEOUT}s")
    else
        secs=fail
        NOTES+=("$stack $dir loss $loss% round $round: $(head -c 300 "$out.err")")
    fi
    echo "$stack $dir $loss $round $secs" >>"$RESULTS"
    [[ $secs =~ ^[0-9] ]] && secs+=" s"
    say "round $round  ${LABEL[$stack]}  $dir  loss $loss%: $secs"
}

BEGIN=$SECONDS
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= ROUNDS; round++)); do
    for loss in "${LOSS_LIST[@]}"; do
        for stack in "${STACKS[@]}"; do
            "loss_$stack" "$loss"
        done
        # The limit runs beside the clean transfers: the cache level before, between, after.
        limit=$((CEILING && loss == 0))
        ((limit)) && ceiling_probe "$round" start
        for dir in down up; do
            # Alternate which stack goes first, so neither always runs on a warmer machine.
            order=("${STACKS[@]}")
            if ((round % 2 == 0)); then
                order=()
                for ((i = ${#STACKS[@]} - 1; i >= 0; i--)); do order+=("${STACKS[i]}"); done
            fi
            ((limit && round % 2 == 0)) && ceiling_runs "$dir" "$round"
            for stack in "${order[@]}"; do
                run_one "$stack" "$dir" "$loss" "$round"
            done
            ((limit && round % 2 == 1)) && ceiling_runs "$dir" "$round"
            ((limit)) && ceiling_probe "$round" "$([[ $dir == down ]] && echo mid || echo end)"
            if ((loss == 0)); then
                for kind in ${PCAP_KINDS[@]+"${PCAP_KINDS[@]}"}; do
                    run_one "$kind" "$dir" 0 "$round"
                done
            fi
            if ((OFFLOAD && loss == 0)); then
                offload_round "$dir" "$round"
            fi
        done
    done
done
stop_pcaps

# Connection rate: no loss; each run from its own source address (see add_client_addrs).
CONN_RESULTS=$WORK/conn-results
: >"$CONN_RESULTS"
run_conn() { # run_conn STACK MODE ROUND [K]: K connections in flight (default 1)
    local stack=$1 mode=$2 round=$3 k=${4:-1} port=7 host=11 src out rc cps got key
    "ensure_$stack"
    if [[ $mode == http ]]; then
        port=80
        host=12
    fi
    ((k > 1)) && host=$((host + 2))
    key=$mode
    ((k > 1)) && key=$mode-p$k
    src=${CLIENT_NET[$stack]}.$((host + 4 * (round - 1)))
    out=$WORK/conn-$stack-$key-$round
    rc=0
    timeout -k 5 "$((TIMEOUT + 10))" ip netns exec "${CLIENT_NS[$stack]}" \
        "$CONN_RATE" "$mode" "${SERVER[$stack]}:$port" "$CONNS" "$TIMEOUT" "$src" --parallel "$k" >"$out.out" 2>"$out.err" || rc=$?
    if ((rc == 0)); then
        cps=$(sed -n 's/^result .* cps=\([0-9.]*\).*/\1/p' "$out.out")
        [[ -n $cps ]] || cps=fail
        got=$(sed -n 's/^result .* conns=\([0-9]*\) .*/\1/p' "$out.out")
        [[ $got == "$CONNS" ]] || NOTES+=("$stack conn $key round $round: $got of $CONNS connections within ${TIMEOUT}s")
    else
        cps=fail
        NOTES+=("$stack conn $key round $round: $(head -c 300 "$out.err")")
    fi
    echo "$stack $key $round $cps" >>"$CONN_RESULTS"
    say "round $round  ${LABEL[$stack]}  conn/s $key: $cps"
}
CONN_KS=(1)
((CONN_PARALLEL > 1)) && CONN_KS+=("$CONN_PARALLEL")
if ((CONNS > 0)); then
    for stack in "${STACKS[@]}"; do
        "loss_$stack" 0
    done
    for ((round = 1; round <= ROUNDS; round++)); do
        # Echo first: its runs leave no TIME-WAIT in the server (the client closes first),
        # so no echo run pays for an earlier run's server-side TIME-WAIT (smoltcp scans it).
        for mode in echo http; do
            for k in "${CONN_KS[@]}"; do
                order=("${STACKS[@]}")
                if ((round % 2 == 0)); then
                    order=()
                    for ((i = ${#STACKS[@]} - 1; i >= 0; i--)); do order+=("${STACKS[i]}"); done
                fi
                for stack in "${order[@]}"; do
                    run_conn "$stack" "$mode" "$round" "$k"
                done
            done
        done
    done
fi

# Memory: synack's resident set before and after IDLE idle connections to its echo port, in a
# fresh process (so what earlier runs left in its allocator does not count).
MEM_LINE=""
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
threads_of() { awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
if ((IDLE > 0)); then
    SYNACK_LOSS=0
    nft_drop "$ST" synack0 0
    stop_synack
    start_synack
    sleep 1
    rss0=$(rss_kb "$SYNACK_PID")
    thr0=$(threads_of "$SYNACK_PID")
    idle_wait=$((TIMEOUT > 60 ? TIMEOUT : 60))
    : >"$WORK/idle.out"
    (
        ulimit -n $((IDLE + 1000))
        exec ip netns exec "$ST" "$IDLE_CONNS" "$SYNACK_SERVER:7" "$IDLE" "$((idle_wait + 60))"
    ) >"$WORK/idle.out" 2>"$WORK/idle.err" &
    IDLE_PID=$!
    PIDS+=("$IDLE_PID")
    ready=0
    for ((i = 0; i < idle_wait * 10; i++)); do
        grep -q '^ready' "$WORK/idle.out" 2>/dev/null && { ready=1; break; }
        kill -0 "$IDLE_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ((ready)); then
        sleep 2 # let the last connections' threads settle
        rss1=$(rss_kb "$SYNACK_PID")
        thr1=$(threads_of "$SYNACK_PID")
        open_secs=$(sed -n 's/^ready .* secs=\([0-9.]*\).*/\1/p' "$WORK/idle.out")
        MEM_LINE=$(awk -v a="$rss0" -v b="$rss1" -v n="$IDLE" -v t0="$thr0" -v t1="$thr1" -v s="$open_secs" 'BEGIN {
            printf "| synack TUN, %d idle echo connections | %.1f MiB → %.1f MiB | %.1f KiB (%d B) | %d → %d | %.1f s |", n, a / 1024, b / 1024, (b - a) / n, (b - a) * 1024 / n, t0, t1, s }')
        MEM_PER_CONN=$(((rss1 - rss0) * 1024 / IDLE))
        say "memory: $MEM_LINE"
    else
        NOTES+=("idle connections: not all $IDLE open within ${idle_wait}s: $(head -c 300 "$WORK/idle.err")")
    fi
    kill "$IDLE_PID" 2>/dev/null
    wait "$IDLE_PID" 2>/dev/null || true
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# Report.

# median STACK DIR LOSS: prints "SECS OK N" (SECS the median time, "timeout"/"fail" when
# the median run did not complete; OK of N runs completed).
median() {
    awk -v s="$1" -v d="$2" -v l="$3" '
        $1 == s && $2 == d && $3 == l { n++; if ($5 ~ /^[0-9]/) { ok++; v[n] = $5 } else { v[n] = ($5 == "fail" ? 2e18 : 1e18) } }
        END {
            if (!n) { print "none 0 0"; exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            r = (m >= 2e18) ? "fail" : (m >= 1e18) ? "timeout" : sprintf("%.3f", m)
            print r, ok + 0, n
        }' "$RESULTS"
}

cell() { # cell SECS OK N: "812 MB/s (0.123 s)", or what went wrong
    local secs=$1 ok=$2 n=$3 text
    if [[ $secs =~ ^[0-9] ]]; then
        text=$(awk -v b="${CELL_BYTES:-$BYTES}" -v t="$secs" 'BEGIN { printf "%.0f MB/s (%.2f s)", b / t / 1e6, t }')
    else
        text=$secs
    fi
    ((ok < n)) && text+=" [$ok/$n done]"
    echo "$text"
}

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "synack benchmark, $(date -u +%Y-%m-%d), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "machine: $(nproc) CPUs, ${CPU:-unknown CPU}, Linux $(uname -r), $(awk '/MemTotal/ { printf "%.1f GB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "run:     $ROUNDS round(s), $SIZE_MB MB each way clean, $LOSS_MB MB under loss (10^6 bytes), medians; timeout ${TIMEOUT}s; load avg ${LOAD_BEFORE} before, ${LOAD_AFTER} after; took $((SECONDS - BEGIN)) s"
if [[ $LOSS_AT == receiver ]]; then
    echo "loss:    random, both ways, where packets arrive: nft ingress drop on both veth ends / on the TUN (synack → kernel); synack --faults-in (kernel → synack)"
else
    echo "loss:    nft egress+ingress drop on the client's device (veth end / TUN), same rule for every stack; egress drops of kernel-sent data are re-sent at once (no real loss)"
fi
echo "congestion control: kernel $(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown), synack $SYNACK_CC, smoltcp cubic"
devices="devices: MTU 1500; kernel veth kv0: $(offload_state "$KA" kv0); TUN synack0: $(offload_state "$ST" synack0); TUN smol0: $(offload_state "$SM" smol0)"
((CEILING)) && devices+="; TUN ceil0 (the limit): $(offload_state "$CE" ceil0)"
echo "$devices"
echo "down = client GETs /bytes/N (server sends); up = client sends to discard :9 and waits for FIN"
echo

# ratio X Y: X / Y as "0.51×" (three decimals below 0.1).
ratio() { awk -v x="$1" -v y="$2" 'BEGIN { r = x / y; printf (r < 0.1 ? "%.3f×" : "%.2f×"), r }'; }

header="| transfer | loss |"
rule="|---|---|"
for stack in "${STACKS[@]}"; do
    header+=" ${LABEL[$stack]} |"
    rule+="---|"
done
for pair in "${RATIOS[@]}"; do
    header+=" ${pair% *}/${pair#* } |"
    rule+="---|"
done
if ((CEILING)); then
    header+=" limit |"
    rule+="---|"
fi
echo "$header"
echo "$rule"
declare -A DIR_TEXT=([down]="stack → kernel (down)" [up]="kernel → stack (up)")
for dir in down up; do
    for loss in "${LOSS_LIST[@]}"; do
        row="| ${DIR_TEXT[$dir]} | $loss% |"
        CELL_BYTES=$(bytes_for "$loss")
        declare -A MED=()
        for stack in "${STACKS[@]}"; do
            read -r secs ok n < <(median "$stack" "$dir" "$loss")
            MED[$stack]=$secs
            row+=" $(cell "$secs" "$ok" "$n") |"
        done
        for pair in "${RATIOS[@]}"; do
            a=${pair% *} b=${pair#* }
            if [[ ${MED[$a]} =~ ^[0-9] && ${MED[$b]} =~ ^[0-9] ]]; then
                row+=" $(ratio "${MED[$b]}" "${MED[$a]}") |"
            else
                row+=" – |"
            fi
        done
        ((CEILING)) && row+=" $(ceiling_limit_cell "$dir" "$loss") |"
        echo "$row"
        unset MED
    done
done
unset CELL_BYTES
echo
echo "ratio A/B = A's throughput / B's (= B's time / A's time); 'kernel → stack' means"
echo "the kernel's TCP sends and the stack receives (for the kernel column, kernel → kernel)."
if ((CEILING)); then
    echo "limit: examples/tun_ceiling.rs, the packet I/O alone of a one-thread stack on a TUN (clean only; see below)."
    ceiling_report
fi

if ((CONNS > 0)); then
    # conn_median STACK MODE: "RATE OK N", the median of the runs that completed
    conn_median() {
        awk -v s="$1" -v m="$2" '
            $1 == s && $2 == m { n++; if ($4 ~ /^[0-9]/) { ok++; v[ok] = $4 } }
            END {
                if (!ok) { print "fail", 0, n + 0; exit }
                for (i = 1; i <= ok; i++) for (j = i + 1; j <= ok; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
                r = (ok % 2) ? v[(ok + 1) / 2] : (v[ok / 2] + v[ok / 2 + 1]) / 2
                printf "%.0f %d %d\n", r, ok, n
            }' "$CONN_RESULTS"
    }
    echo
    echo "Connection rate: $CONNS connections a run (or ${TIMEOUT}s), one client thread, no loss; one at a time, then $CONN_PARALLEL in flight."
    header="| connections per second |"
    rule="|---|"
    for stack in "${STACKS[@]}"; do
        header+=" ${LABEL[$stack]} |"
        rule+="---|"
    done
    for pair in "${RATIOS[@]}"; do
        header+=" ${pair% *}/${pair#* } |"
        rule+="---|"
    done
    echo "$header"
    echo "$rule"
    declare -A CONN_TEXT=([echo]="echo 1 byte, client closes first (TIME-WAIT on the client)" [http]="GET /bytes/1, server closes first (TIME-WAIT in the stack)"
        [echo-p$CONN_PARALLEL]="echo 1 byte, client closes first, $CONN_PARALLEL in flight" [http-p$CONN_PARALLEL]="GET /bytes/1, server closes first, $CONN_PARALLEL in flight")
    CONN_ROWS=(echo http)
    ((CONN_PARALLEL > 1)) && CONN_ROWS+=("echo-p$CONN_PARALLEL" "http-p$CONN_PARALLEL")
    for mode in "${CONN_ROWS[@]}"; do
        row="| ${CONN_TEXT[$mode]} |"
        declare -A MED=()
        for stack in "${STACKS[@]}"; do
            read -r rate ok n < <(conn_median "$stack" "$mode")
            MED[$stack]=$rate
            if [[ $rate =~ ^[0-9] ]]; then
                text="$rate/s"
                ((ok < n)) && text+=" [$ok/$n done]"
            else
                text=$rate
            fi
            row+=" $text |"
        done
        for pair in "${RATIOS[@]}"; do
            a=${pair% *} b=${pair#* }
            if [[ ${MED[$a]} =~ ^[0-9] && ${MED[$b]} =~ ^[0-9] ]]; then
                row+=" $(ratio "${MED[$a]}" "${MED[$b]}") |"
            else
                row+=" – |"
            fi
        done
        echo "$row"
        unset MED
    done
    echo "TIME-WAIT lasts 2 s in synack (--msl-ms 1000), 10 s in smoltcp (fixed), 60 s in the kernel."
fi

if ((PCAP)); then
    echo
    echo "--pcap cost: the same clean transfers against 'synack serve --pcap FILE' (one process and one growing file for the whole run),"
    echo "FILE on the disk under $(dirname "$WORK") (O_DIRECT writes: ${DISK_MBPS:-?} MB/s, dd) and in a tmpfs (/dev/shm)."
    echo "| transfer | synack TUN | --pcap to disk | cost | --pcap to tmpfs | cost |"
    echo "|---|---|---|---|---|---|"
    for dir in down up; do
        read -r s0 ok0 n0 < <(median synack "$dir" 0)
        row="| ${DIR_TEXT[$dir]} | $(cell "$s0" "$ok0" "$n0")"
        for kind in pcap pcapm; do
            read -r s1 ok1 n1 < <(median "$kind" "$dir" 0)
            if [[ $s1 == none ]]; then
                row+=" | – | –"
                continue
            fi
            cost="–"
            if [[ $s0 =~ ^[0-9] && $s1 =~ ^[0-9] ]]; then
                cost=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.0f%%", (1 - a / b) * 100 }')
            fi
            row+=" | $(cell "$s1" "$ok1" "$n1") | $cost"
        done
        echo "$row |"
    done
    echo "cost = throughput lost with --pcap (1 - pcap throughput / plain throughput; negative: faster)."
fi

if ((OFFLOAD)); then
    offload_report
fi

if [[ -n $MEM_LINE ]]; then
    echo
    echo "Memory per idle established connection (VmRSS of a fresh 'synack serve', before → after):"
    echo "| connections | VmRSS | per connection | threads | time to open |"
    echo "|---|---|---|---|---|"
    echo "$MEM_LINE"
    echo "synack serves echo on its event loop (no thread per connection): the figure is the TCP connection itself, buffers allocated as data arrives."
fi

if ((KEEPALIVE)); then
    # Its own namespaces and servers, after everything else here has finished.
    bash "$REPO/scripts/bench-keepalive.sh" --synack "$SYNACK" ||
        NOTES+=("the keep-alive rows failed (scripts/bench-keepalive.sh; see its output above)")
fi

# shellcheck source=scripts/bench-targets.sh
source "$REPO/scripts/bench-targets.sh"
targets_report
((CEILING)) && ceiling_targets

if ((${#NOTES[@]})); then
    echo
    echo "notes:"
    printf '  %s\n' "${NOTES[@]}"
fi

# The numbers are not judged here, but synack failing a transfer (not a timeout under loss: a
# wrong byte, a reset, a crash) fails the run, so CI's quick run catches a broken stack.
if awk '($1 == "synack" || $1 == "synack_rps" || $1 == "pcap" || $1 == "pcapm" || $1 == "offload") && $5 == "fail" { bad = 1 } END { exit !bad }' "$RESULTS"; then
    echo "$PROG: synack failed a transfer (see the notes)" >&2
    exit 1
fi
