# shellcheck shell=bash disable=SC2034,SC2154
# (Sourced: LABEL, CLIENT_NS and SERVER are bench.sh's tables, read there.)
# bench-offload.sh: the "bulk with --offload" part of scripts/bench.sh, sourced by it (it uses
# bench.sh's make_ns, offload_state, run_one, cell, median, ratio, NAMESPACES, PIDS).
#
# Two more servers, both with offloads ON and MTU 1500, for the clean transfers only:
#   koff     the kernel's TCP over a veth pair with TSO, GSO, GRO, scatter-gather and checksum
#            offload on (namespaces -oa / -ob, 10.10.0.1 → 10.10.0.2)
#   offload  'synack serve --offload' on a TUN whose offloads synack turns on itself
#            (namespace -ot, 10.7.0.1 → 10.7.0.2; offloads_off is not called on it)

# offloads_on NS DEV: every offload the veth has, on; MTU 1500.
offloads_on() {
    local ns=$1 dev=$2 f
    ip -n "$ns" link set dev "$dev" mtu 1500
    command -v ethtool >/dev/null || return 0
    for f in tso gso gro sg tx rx; do
        ip netns exec "$ns" ethtool -K "$dev" "$f" on >/dev/null 2>&1 || true
    done
}

OA=$TAG-oa
OB=$TAG-ob
OT=$TAG-ot
KOFF_SERVER=10.10.0.2
OFFLOAD_STARTS=0
# At least 500 MB a transfer: at gigabytes a second, 100 MB takes 50 ms and times mostly the
# handshake and slow start.
OFFLOAD_BYTES=$((BYTES > 500000000 ? BYTES : 500000000))

offload_setup() {
    make_ns "$OA"
    make_ns "$OB"
    ip -n "$OA" link add ko0 type veth peer name ko1 netns "$OB"
    ip -n "$OA" addr add 10.10.0.1/24 dev ko0
    ip -n "$OB" addr add "$KOFF_SERVER/24" dev ko1
    offloads_on "$OA" ko0
    offloads_on "$OB" ko1
    ip -n "$OA" link set dev ko0 up
    ip -n "$OB" link set dev ko1 up
    start_koff
    make_ns "$OT"
    bash scripts/setup.sh --netns "$OT" --name synack0 --addr 10.7.0.1/24 >"$WORK/setup-offload.log" 2>&1 ||
        { cat "$WORK/setup-offload.log" >&2; die "scripts/setup.sh failed (offload TUN)"; }
    start_offload
    LABEL[koff]="kernel veth, offloads on"
    LABEL[offload]="synack TUN --offload"
    CLIENT_NS[koff]=$OA
    CLIENT_NS[offload]=$OT
    SERVER[koff]=$KOFF_SERVER
    SERVER[offload]=$SYNACK_SERVER
}

start_koff() {
    ip netns exec "$OB" "$PEER" "$KOFF_SERVER" 2>"$WORK/koff_peer.log" &
    KOFF_PID=$!
    PIDS+=("$KOFF_PID")
    wait_for "$WORK/koff_peer.log" "ready" "$KOFF_PID" || die "kernel_peer (offloads on) did not start"
}

start_offload() {
    local extra=()
    [[ -n $SYNACK_ARGS ]] && read -r -a extra <<<"$SYNACK_ARGS"
    OFFLOAD_STARTS=$((OFFLOAD_STARTS + 1))
    ip netns exec "$OT" "$SYNACK" serve --offload --tun synack0 --ip "$SYNACK_SERVER" --msl-ms 1000 --cc "$SYNACK_CC" \
        ${extra[@]+"${extra[@]}"} 2>"$WORK/offload-$OFFLOAD_STARTS.log" &
    OFFLOAD_PID=$!
    PIDS+=("$OFFLOAD_PID")
    wait_for "$WORK/offload-$OFFLOAD_STARTS.log" "serving as" "$OFFLOAD_PID" || die "synack serve --offload did not start"
}

# Its exit line counts the super-packets; stopping it (SIGINT) prints it.
stop_offload() {
    kill -INT "$OFFLOAD_PID" 2>/dev/null || return 0
    for _ in {1..50}; do
        kill -0 "$OFFLOAD_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$OFFLOAD_PID" 2>/dev/null || true
    wait "$OFFLOAD_PID" 2>/dev/null || true
}

ensure_koff() { kill -0 "$KOFF_PID" 2>/dev/null || { NOTES+=("kernel_peer (offloads on) had exited; restarted"); start_koff; }; }
ensure_offload() {
    if ! kill -0 "$OFFLOAD_PID" 2>/dev/null; then
        NOTES+=("synack serve --offload had exited (log: $(tail -n 3 "$WORK/offload-$OFFLOAD_STARTS.log" | paste -sd ' ')); restarted")
        start_offload
    fi
}

# One round's clean transfers, kernel first on odd rounds.
offload_round() { # offload_round DIR ROUND
    local BYTES=$OFFLOAD_BYTES # run_one sees it (bash scopes dynamically)
    if (($2 % 2)); then
        run_one koff "$1" 0 "$2"
        run_one offload "$1" 0 "$2"
    else
        run_one offload "$1" 0 "$2"
        run_one koff "$1" 0 "$2"
    fi
}

offload_report() {
    local dir s0 ok0 n0 s1 ok1 n1 s2 ok2 n2 r tun_state counts
    local -A plain=()
    tun_state=$(offload_state "$OT" synack0)
    stop_offload
    for dir in down up; do
        read -r s2 ok2 n2 < <(median synack "$dir" 0)
        plain[$dir]=$(cell "$s2" "$ok2" "$n2") # at the main table's size
    done
    local BYTES=$OFFLOAD_BYTES # cell sees it
    echo
    echo "Bulk with --offload: clean transfers of $((OFFLOAD_BYTES / 1000000)) MB, MTU 1500, offloads on for both (a fresh connection each)."
    echo "devices: kernel veth ko0: $(offload_state "$OA" ko0); TUN under synack --offload: $tun_state"
    echo "| transfer | ${LABEL[koff]} | ${LABEL[offload]} | synack TUN, no offload ($SIZE_MB MB, above) | --offload / kernel (offloads on) |"
    echo "|---|---|---|---|---|"
    for dir in down up; do
        read -r s0 ok0 n0 < <(median koff "$dir" 0)
        read -r s1 ok1 n1 < <(median offload "$dir" 0)
        r="–"
        [[ $s0 =~ ^[0-9] && $s1 =~ ^[0-9] ]] && r=$(ratio "$s0" "$s1")
        echo "| bulk with --offload, ${DIR_TEXT[$dir]} | $(cell "$s0" "$ok0" "$n0") | $(cell "$s1" "$ok1" "$n1") | ${plain[$dir]} | $r |"
    done
    counts=$(grep -h "offload:" "$WORK"/offload-*.log 2>/dev/null | tail -n 1 | sed 's/^synack: //')
    echo "synack --offload's own count (last process): ${counts:-none printed}"
}
