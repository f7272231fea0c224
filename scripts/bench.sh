#!/usr/bin/env bash
# bench.sh: bulk TCP throughput of synack next to the kernel's own TCP, in one run.
#
#   sudo scripts/bench.sh            # 3 interleaved rounds of 100 MB, clean and 1% / 5% loss
#   sudo scripts/bench.sh --quick    # 1 round of 20 MB
#
# Everything happens in network namespaces made here and removed on exit (also on Ctrl-C or
# failure); nothing is added to the machine's own namespace.
set -euo pipefail

PROG=${0##*/}
export PATH="$HOME/.cargo/bin:$PATH"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

ROUNDS=3
SIZE_MB=100
TIMEOUT=120
LOSSES="0,1,5"
BUILD=1
SYNACK_ARGS=""
LOSS_AT=receiver
TAG=sbench$$

usage() {
    cat <<EOF
Usage: sudo $PROG [--quick] [--rounds N] [--size MB] [--loss LIST] [--timeout S]
                  [--synack-args ARGS] [--no-build]

Build release binaries, then measure bulk TCP transfers of SIZE megabytes (10^6 bytes)
with one client program (examples/bulk_client.rs, the kernel's TCP) against:
  kernel   the kernel's TCP in another namespace over a veth pair, serving with
           examples/kernel_peer.rs (the same HTTP code synack serves with, over std::net)
  synack   'synack serve' on a TUN device
Both directions: down = GET /bytes/N from the server (the server sends, check every byte),
up = N bytes to the server's discard port, then wait for its FIN. Each at every loss rate in
LIST, P% of the packets dropped at random both ways. Rounds are interleaved; the table shows
medians and the ratio to the kernel.

Where the loss happens (--loss-at):
  receiver  (default) where packets arrive: an nft 'numgen random mod 100 < P drop' rule at
            the ingress hook of the receiving kernel device (both veth ends; the TUN for what
            synack sends), and synack's own --faults-in loss=P/100 for what synack receives.
  client    the nft rule at the egress and ingress hooks of the client's device (veth end or
            TUN), the same for every stack. Beware: the kernel's TCP builds GSO super-packets
            that are split only after the egress hook, and a drop there is reported back to
            the sending socket (NET_XMIT_DROP), which sends the data again at once: egress
            drops of the kernel's own data are no loss at all, so 'up' rows are nearly clean.

  --quick           1 round of 20 MB (same as --rounds 1 --size 20)
  --rounds N        rounds (default $ROUNDS)
  --size MB         transfer size in MB (default $SIZE_MB)
  --loss LIST       comma-separated loss percentages (default $LOSSES)
  --timeout S       bound on each transfer in seconds (default $TIMEOUT); a transfer
                    that takes longer counts as "timeout"
  --loss-at WHERE   receiver (default) or client, see above
  --synack-args A   extra arguments for 'synack serve' (e.g. "--pcap /tmp/b.pcap")
  --no-build        use the binaries already in target/release
  -h, --help        show this help

Both clients' devices have MTU 1500 and offloads off (TSO, GSO, GRO, scatter-gather,
checksum; set with ethtool, installed if missing), so neither side gets super-packets.
EOF
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}
say() { echo "$PROG: $*" >&2; }

ORIG_ARGS=("$@")
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --quick) ROUNDS=1; SIZE_MB=20; shift ;;
        --rounds) [[ $# -ge 2 ]] || die "--rounds needs a value"; ROUNDS=$2; shift 2 ;;
        --rounds=*) ROUNDS=${1#*=}; shift ;;
        --size) [[ $# -ge 2 ]] || die "--size needs a value (MB)"; SIZE_MB=$2; shift 2 ;;
        --size=*) SIZE_MB=${1#*=}; shift ;;
        --loss) [[ $# -ge 2 ]] || die "--loss needs a list (e.g. 0,1,5)"; LOSSES=$2; shift 2 ;;
        --loss=*) LOSSES=${1#*=}; shift ;;
        --timeout) [[ $# -ge 2 ]] || die "--timeout needs seconds"; TIMEOUT=$2; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        --synack-args) [[ $# -ge 2 ]] || die "--synack-args needs a value"; SYNACK_ARGS=$2; shift 2 ;;
        --synack-args=*) SYNACK_ARGS=${1#*=}; shift ;;
        --loss-at) [[ $# -ge 2 ]] || die "--loss-at needs receiver or client"; LOSS_AT=$2; shift 2 ;;
        --loss-at=*) LOSS_AT=${1#*=}; shift ;;
        --no-build) BUILD=0; shift ;;
        *) die "unknown argument '$1' (see $PROG --help)" ;;
    esac
done

[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "--rounds must be 1..99, not '$ROUNDS'"
[[ $SIZE_MB =~ ^[1-9][0-9]{0,2}$ ]] || die "--size must be 1..999 MB, not '$SIZE_MB'"
[[ $TIMEOUT =~ ^[1-9][0-9]{0,3}$ ]] || die "--timeout must be 1..9999 seconds, not '$TIMEOUT'"
[[ $LOSSES =~ ^[0-9]{1,2}(,[0-9]{1,2})*$ ]] || die "--loss must be percentages like 0,1,5, not '$LOSSES'"
[[ $LOSS_AT == receiver || $LOSS_AT == client ]] || die "--loss-at must be receiver or client, not '$LOSS_AT'"
IFS=, read -r -a LOSS_LIST <<<"$LOSSES"
BYTES=$((SIZE_MB * 1000000))

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

cleanup() {
    local pid ns
    set +e
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        kill "$pid" 2>/dev/null
    done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        for _ in {1..50}; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ns in ${NAMESPACES[@]+"${NAMESPACES[@]}"}; do
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$WORK"
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
    say "building release binaries (synack, examples bulk_client and kernel_peer)"
    cargo build --release --quiet --bin synack --example bulk_client --example kernel_peer ||
        die "cargo build failed"
fi
SYNACK=$REPO/target/release/synack
CLIENT=$REPO/target/release/examples/bulk_client
PEER=$REPO/target/release/examples/kernel_peer
for bin in "$SYNACK" "$CLIENT" "$PEER"; do
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
}

# wait_for FILE TEXT PID: until FILE holds TEXT (10 s at most) while PID lives.
wait_for() {
    local file=$1 text=$2 pid=$3
    for _ in {1..200}; do
        grep -q "$text" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; return 1; }
        sleep 0.05
    done
    cat "$file" >&2
    return 1
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

SYNACK_STARTS=0
SYNACK_LOSS=0
start_synack() {
    local extra=()
    [[ -n $SYNACK_ARGS ]] && read -r -a extra <<<"$SYNACK_ARGS"
    if [[ $LOSS_AT == receiver ]] && ((SYNACK_LOSS > 0)); then
        extra+=(--faults-in "loss=$(awk -v p="$SYNACK_LOSS" 'BEGIN { print p / 100 }'),seed=$((SYNACK_STARTS + 1))")
    fi
    SYNACK_STARTS=$((SYNACK_STARTS + 1))
    ip netns exec "$ST" "$SYNACK" serve --tun synack0 --ip "$SYNACK_SERVER" --msl-ms 1000 \
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

# ---------------------------------------------------------------------------------------------
# The stacks. Each says where its client runs and where its server is, and has two functions:
# ensure_<stack> restarts a server that died, loss_<stack> PCT sets its loss. Another stack
# (smoltcp, say) needs one more entry in STACKS and these.
STACKS=(kernel synack)
declare -A LABEL=([kernel]="kernel veth" [synack]="synack TUN")
declare -A CLIENT_NS=([kernel]=$KA [synack]=$ST)
declare -A SERVER=([kernel]=$KERNEL_SERVER [synack]=$SYNACK_SERVER)

ensure_kernel() { kill -0 "$KERNEL_PID" 2>/dev/null || { NOTES+=("kernel_peer had exited; restarted"); start_kernel_peer; }; }
ensure_synack() {
    if ! kill -0 "$SYNACK_PID" 2>/dev/null; then
        NOTES+=("synack serve had exited (log: $(tail -n 3 "$WORK/synack-$SYNACK_STARTS.log" | paste -sd ' ')); restarted")
        start_synack
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

# ---------------------------------------------------------------------------------------------
# Measure. results: "stack dir loss round secs" with secs "timeout" or "fail" when it did not
# complete.
NOTES=()
RESULTS=$WORK/results
: >"$RESULTS"

run_one() { # run_one STACK DIR LOSS ROUND
    local stack=$1 dir=$2 loss=$3 round=$4 port out rc secs
    "ensure_$stack"
    port=80
    [[ $dir == up ]] && port=9
    out=$WORK/$stack-$dir-$loss-$round
    rc=0
    timeout -k 5 "$TIMEOUT" ip netns exec "${CLIENT_NS[$stack]}" \
        "$CLIENT" "$dir" "${SERVER[$stack]}:$port" "$BYTES" >"$out.out" 2>"$out.err" || rc=$?
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
        for dir in down up; do
            # Alternate which stack goes first, so neither always runs on a warmer machine.
            order=("${STACKS[@]}")
            if ((round % 2 == 0)); then
                order=()
                for ((i = ${#STACKS[@]} - 1; i >= 0; i--)); do order+=("${STACKS[i]}"); done
            fi
            for stack in "${order[@]}"; do
                run_one "$stack" "$dir" "$loss" "$round"
            done
        done
    done
done
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
        text=$(awk -v b="$BYTES" -v t="$secs" 'BEGIN { printf "%.0f MB/s (%.2f s)", b / t / 1e6, t }')
    else
        text=$secs
    fi
    ((ok < n)) && text+=" [$ok/$n done]"
    echo "$text"
}

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo
echo "synack bulk-transfer benchmark, $(date -u +%Y-%m-%d)"
echo "machine: $(nproc) CPUs, ${CPU:-unknown CPU}, Linux $(uname -r), $(awk '/MemTotal/ { printf "%.1f GB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "run:     $ROUNDS round(s), $SIZE_MB MB each way (10^6 bytes), medians; timeout ${TIMEOUT}s; load avg ${LOAD_BEFORE} before, ${LOAD_AFTER} after; took $((SECONDS - BEGIN)) s"
if [[ $LOSS_AT == receiver ]]; then
    echo "loss:    random, both ways, where packets arrive: nft ingress drop on both veth ends / on the TUN (synack → kernel); synack --faults-in (kernel → synack)"
else
    echo "loss:    nft egress+ingress drop on the client's device (veth end / TUN), same rule for every stack; egress drops of kernel-sent data are re-sent at once (no real loss)"
fi
echo "devices: MTU 1500; kernel veth kv0: $(offload_state "$KA" kv0); TUN synack0: $(offload_state "$ST" synack0)"
echo "down = client GETs /bytes/N (server sends); up = client sends to discard :9 and waits for FIN"
echo

header="| transfer | loss |"
rule="|---|---|"
for stack in "${STACKS[@]}"; do
    header+=" ${LABEL[$stack]} |"
    rule+="---|"
done
for stack in "${STACKS[@]:1}"; do
    header+=" $stack/kernel |"
    rule+="---|"
done
echo "$header"
echo "$rule"
declare -A DIR_TEXT=([down]="stack → kernel (down)" [up]="kernel → stack (up)")
for dir in down up; do
    for loss in "${LOSS_LIST[@]}"; do
        row="| ${DIR_TEXT[$dir]} | $loss% |"
        declare -A MED=()
        for stack in "${STACKS[@]}"; do
            read -r secs ok n < <(median "$stack" "$dir" "$loss")
            MED[$stack]=$secs
            row+=" $(cell "$secs" "$ok" "$n") |"
        done
        for stack in "${STACKS[@]:1}"; do
            if [[ ${MED[$stack]} =~ ^[0-9] && ${MED[kernel]} =~ ^[0-9] ]]; then
                row+=" $(awk -v k="${MED[kernel]}" -v s="${MED[$stack]}" 'BEGIN { r = k / s; printf (r < 0.1 ? "%.3f×" : "%.2f×"), r }') |"
            else
                row+=" – |"
            fi
        done
        echo "$row"
        unset MED
    done
done
echo
echo "ratio = stack's throughput / kernel's (= kernel time / stack time); 'kernel → stack' means"
echo "the kernel's TCP sends and the stack receives (for the kernel row, kernel → kernel)."

if ((${#NOTES[@]})); then
    echo
    echo "notes:"
    printf '  %s\n' "${NOTES[@]}"
fi
