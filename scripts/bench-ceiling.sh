# shellcheck shell=bash disable=SC2034,SC2154
# (Sourced: LABEL, CLIENT_NS, SERVER, RESULTS, NOTES and the stacks' PIDs are bench.sh's.)
# bench-ceiling.sh: the limit rows of scripts/bench.sh, sourced by it (it uses bench.sh's
# make_ns, offloads_off, run_one, median, cell, ratio, ensure_synack, ensure_smoltcp).
#
# The limit is examples/tun_ceiling.rs: one thread doing only the packet I/O of a TCP stack
# on a TUN (pre-built segments, cumulative ACKs, no TCP logic), pinned to CPU0, the kernel's
# socket on CPU1, on a TUN of its own set up like synack's and smoltcp's (namespace -ce,
# scripts/setup.sh, MTU 1500, offloads off). Results, in bench.sh's results file, for the
# clean transfers of every round:
#   ceiling       down: --mode write; up: --mode read --ack-every batch (synack's ACK policy)
#   ceil256       up: --mode read --ack-every 256k
#   synack_rps    the same transfers against a second 'synack serve' on a TUN of its own
#                 (namespace -sr) with Receive Packet Steering on to every CPU but CPU0 from the
#                 start, so that serve pins its event loop to CPU0 itself (as after setup.sh --rps)
#   smoltcp_rps, ceiling_rps
#                 the same transfers with RPS turned on for the run on their own TUN, smoltcp's
#                 server pinned to CPU0 for it (taskset -a), both undone after it
# Every bulk client of a clean transfer compared with the limit runs on CPU1, as the limit's
# kernel socket does (CLIENT_CPU). And the cache level (tun_ceiling --cache-probe) before a round's clean transfers, between
# down and up, and after them, in LEVELS.

CE=$TAG-ce
# The CPUs of the limit's TUN thread and of its kernel socket's thread (ceiling_setup).
CEIL_CPU=0
CEIL_PEER_CPU=1
CEIL_RPS=1
RPS_MASK=0
LEVELS=$WORK/levels
: >"$LEVELS"
# The limit's runs whose TUN thread was on a CPU less than half the time ("KEY DIR rROUND: BUSY").
CEIL_IDLE_RUNS=()

ceiling_setup() {
    # The first two CPUs this process may run on (CPU0 and CPU1 unless a cpuset says otherwise).
    local cpus=()
    mapfile -t -n 2 cpus < <(usable_cpus)
    CEIL_CPU=${cpus[0]:-0}
    CEIL_PEER_CPU=${cpus[1]:-$CEIL_CPU}
    if ((CEIL_PEER_CPU == CEIL_CPU)); then
        CEIL_RPS=0
        NOTES+=("one CPU: the limit runs both its threads on CPU$CEIL_CPU; no cache levels, no +rps rows")
    fi
    if command -v taskset >/dev/null; then
        # The stacks' clients on the CPU of the limit's kernel socket: the same conditions.
        local key
        # shellcheck disable=SC2004 # CLIENT_CPU is bench.sh's associative array
        for key in kernel synack smoltcp pcap pcapm synack_rps smoltcp_rps; do CLIENT_CPU[$key]=$CEIL_PEER_CPU; done
    else
        CEIL_RPS=0
        NOTES+=("no taskset (util-linux): no +rps rows (they pin smoltcp), and the clients are not pinned to CPU$CEIL_PEER_CPU as the limit's kernel socket is")
    fi
    RPS_MASK=$(rps_mask_except "$CEIL_CPU")
    make_ns "$CE"
    bash scripts/setup.sh --netns "$CE" --name ceil0 --addr 10.7.0.1/24 >"$WORK/setup-ceiling.log" 2>&1 ||
        { cat "$WORK/setup-ceiling.log" >&2; die "scripts/setup.sh failed (the limit's TUN)"; }
    offloads_off "$CE" ceil0
    LABEL[synack_rps]="synack TUN +rps"
    LABEL[smoltcp_rps]="smoltcp TUN +rps"
    CLIENT_NS[synack_rps]=$SR
    CLIENT_NS[smoltcp_rps]=$SM
    SERVER[synack_rps]=$SYNACK_SERVER
    SERVER[smoltcp_rps]=$SMOL_SERVER
    if ((CEIL_RPS)); then
        make_ns "$SR"
        bash scripts/setup.sh --netns "$SR" --name synack0 --addr 10.7.0.1/24 --rps-cpus "$RPS_MASK" \
            >"$WORK/setup-synack-rps.log" 2>&1 ||
            { cat "$WORK/setup-synack-rps.log" >&2; die "scripts/setup.sh --rps-cpus $RPS_MASK failed (synack +rps's TUN)"; }
        offloads_off "$SR" synack0
    fi
}

# synack +rps: a 'synack serve' started on a TUN whose RPS mask is set already, so that it pins
# its event loop outside the mask itself (src/main.rs, loop_cpus), as a user's would after
# setup.sh --rps. Started at its first transfer, kept for the run like the plain one.
SR=$TAG-sr
SYNR_PID=
SYNR_STARTS=0
start_synack_rps() {
    local extra=() log
    [[ -n $SYNACK_ARGS ]] && read -r -a extra <<<"$SYNACK_ARGS"
    SYNR_STARTS=$((SYNR_STARTS + 1))
    log=$WORK/synack-rps-$SYNR_STARTS.log
    ip netns exec "$SR" "$SYNACK" serve --tun synack0 --ip "$SYNACK_SERVER" --msl-ms 1000 --cc "$SYNACK_CC" \
        ${extra[@]+"${extra[@]}"} 2>"$log" &
    SYNR_PID=$!
    PIDS+=("$SYNR_PID")
    wait_for "$log" "serving as" "$SYNR_PID" || die "synack serve (+rps) did not start"
    grep -q "event loop on CPUs \[$CEIL_CPU\]" "$log" ||
        NOTES+=("synack +rps did not pin its event loop to CPU$CEIL_CPU alone: $(grep -o 'serving as.*' "$log" | head -c 300)")
}
ensure_synack_rps() {
    if [[ -z $SYNR_PID ]]; then
        start_synack_rps
    elif ! kill -0 "$SYNR_PID" 2>/dev/null; then
        NOTES+=("synack serve (+rps) had exited (log: $(tail -n 3 "$WORK/synack-rps-$SYNR_STARTS.log" | paste -sd ' ')); restarted")
        start_synack_rps
    fi
}
# run_one restarts a server that died before it measures; rps_run has done that already, so
# that it pins the live process.
ensure_smoltcp_rps() { ensure_smoltcp; }

# ceiling_run KEY DIR ROUND: one transfer of the limit (KEY ceiling, ceil256 or ceiling_rps),
# recorded like run_one's.
ceiling_run() {
    local key=$1 dir=$2 round=$3 out rc secs args=(--mode write) extra busy
    if [[ $dir == up ]]; then
        args=(--mode read --ack-every batch)
        [[ $key == ceil256 ]] && args=(--mode read --ack-every 256k)
    fi
    out=$WORK/$key-$dir-$round
    rc=0
    timeout -k 5 "$((TIMEOUT + 15))" ip netns exec "$CE" "$CEIL" --tun ceil0 --ip "$SYNACK_SERVER" "${args[@]}" \
        --bytes "$BYTES" --cpu "$CEIL_CPU" --peer-cpu "$CEIL_PEER_CPU" --timeout "$TIMEOUT" >"$out.out" 2>"$out.err" || rc=$?
    secs=$(sed -n 's/^ceiling .* secs=\([0-9.]*\) .*/\1/p' "$out.out")
    if ((rc == 124 || rc == 137)); then
        secs=timeout
        NOTES+=("$key $dir round $round: timeout after ${TIMEOUT}s")
    elif ((rc != 0)) || [[ -z $secs ]]; then
        secs=fail
        NOTES+=("$key $dir round $round: $(head -c 300 "$out.err")")
    fi
    # Go-back-N resends or out-of-order arrivals: the run lost packets on a clean TUN.
    extra=$(grep -o ' \(retx\|ooo\)=[1-9][0-9]*' "$out.out" || true)
    [[ -z $extra ]] || NOTES+=("$key $dir round $round:$extra (packets lost inside the kernel)")
    # busy: the share of the transfer its TUN thread was on a CPU. Well below 1, it waited for
    # the kernel's side (then that is the limit), or another process held CPU0 (then the run
    # is no limit at all).
    busy=$(sed -n 's/.* busy=\([0-9.]*\) .*/\1/p' "$out.out")
    if [[ -n $busy ]] && awk -v b="$busy" 'BEGIN { exit !(b < 0.5) }'; then
        CEIL_IDLE_RUNS+=("$key $dir r$round: $busy")
    fi
    echo "$key $dir 0 $round $secs" >>"$RESULTS"
    [[ $secs =~ ^[0-9] ]] && secs+=" s ($(sed -n 's/.* level=\([^ ]*\) .*/level \1/p' "$out.out"), busy ${busy:-?})"
    say "round $round  limit ($key)  $dir: $secs"
}

# rps_run STACK DIR ROUND: STACK's clean transfer with RPS on its TUN and its server on CPU0.
# synack's +rps server has RPS on all along and pins its own loop (start_synack_rps).
rps_run() {
    local stack=$1 dir=$2 round=$3 ns dev pid="" orig=""
    if [[ $stack == synack ]]; then
        run_one synack_rps "$dir" 0 "$round"
        return
    fi
    case $stack in
        smoltcp) ns=$SM dev=smol0 ;;
        ceiling) ns=$CE dev=ceil0 ;;
    esac
    if [[ $stack == smoltcp ]]; then
        ensure_smoltcp
        pid=$SMOL_PID
        orig=$(taskset -p -c "$pid" 2>/dev/null | sed 's/.*: //')
        taskset -a -p -c "$CEIL_CPU" "$pid" >/dev/null 2>&1 || NOTES+=("could not pin $stack to CPU$CEIL_CPU for +rps")
    fi
    if ! set_rps "$ns" "$dev" "$RPS_MASK"; then
        NOTES+=("could not turn RPS on for $dev (rps_cpus)")
    elif [[ $stack == ceiling ]]; then
        ceiling_run ceiling_rps "$dir" "$round"
    else
        run_one "${stack}_rps" "$dir" 0 "$round"
    fi
    set_rps "$ns" "$dev" 0 || true
    if [[ -n $orig ]]; then
        taskset -a -p -c "$orig" "$pid" >/dev/null 2>&1 || true
    fi
}

# ceiling_runs DIR ROUND: the limit's transfers for DIR and the +rps ones, the order reversed
# in even rounds.
ceiling_runs() {
    local dir=$1 round=$2 entries=(ceiling) order=() i
    [[ $dir == up ]] && entries+=(ceil256)
    ((CEIL_RPS)) && entries+=(rps:synack rps:smoltcp rps:ceiling)
    order=("${entries[@]}")
    if ((round % 2 == 0)); then
        order=()
        for ((i = ${#entries[@]} - 1; i >= 0; i--)); do order+=("${entries[i]}"); done
    fi
    for i in "${order[@]}"; do
        case $i in
            rps:*) rps_run "${i#rps:}" "$dir" "$round" ;;
            *) ceiling_run "$i" "$dir" "$round" ;;
        esac
    done
}

# ceiling_probe ROUND POINT: the cache level now (POINT start, mid or end of the round's clean
# transfers), into LEVELS as "ROUND POINT LEVEL NS".
ceiling_probe() {
    local round=$1 point=$2 line
    if ((CEIL_CPU == CEIL_PEER_CPU)); then
        echo "$round $point - -" >>"$LEVELS"
        return
    fi
    if line=$(timeout -k 2 20 "$CEIL" --cache-probe --cpu "$CEIL_CPU" --peer-cpu "$CEIL_PEER_CPU" --timeout 10 2>&1) &&
        [[ $line =~ rtt_ns=([0-9]+)\ level=([FS]) ]]; then
        echo "$round $point ${BASH_REMATCH[2]} ${BASH_REMATCH[1]}" >>"$LEVELS"
        say "round $round  cache level ($point): ${BASH_REMATCH[2]} (${BASH_REMATCH[1]} ns)"
    else
        echo "$round $point ? ?" >>"$LEVELS"
        NOTES+=("cache probe, round $round ($point): $(head -c 200 <<<"$line")")
    fi
}

# ---------------------------------------------------------------------------------------------
# Report.

# ceiling_limit_cell DIR LOSS: the limit's median for a row of the main table ("–" under loss:
# the limit is measured clean).
ceiling_limit_cell() {
    local secs ok n
    if (($2 != 0)); then
        echo "–"
        return
    fi
    read -r secs ok n < <(median ceiling "$1" 0)
    cell "$secs" "$ok" "$n"
}

# of_limit KEY LIMIT DIR [ROUND]: KEY's throughput over LIMIT's in the same round (their time
# ratio), the median over the rounds where both completed, or that ROUND's; empty if none.
of_limit() {
    awk -v s="$1" -v l="$2" -v d="$3" -v only="${4:-}" '
        $2 == d && $3 == 0 && $5 ~ /^[0-9]/ && (only == "" || $4 == only) {
            if ($1 == s) a[$4] = $5
            if ($1 == l) b[$4] = $5
        }
        END {
            for (r in a) if (r in b) v[++n] = b[r] / a[r]
            if (!n) exit
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            printf "%.4f\n", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }' "$RESULTS"
}

times_text() { # times_text RATIO: "0.67×", "–" when empty
    if [[ -z $1 ]]; then echo "–"; else awk -v r="$1" 'BEGIN { printf (r < 0.1 ? "%.3f×" : "%.2f×"), r }'; fi
}

# The rows of the limit tables: "TEXT|DIR|LIMIT|KERNEL SYNACK SMOLTCP" (- for none).
CEIL_ROWS=(
    "stack → kernel (down)|down|ceiling|kernel synack smoltcp"
    "stack → kernel (down), +rps|down|ceiling_rps|- synack_rps smoltcp_rps"
    "kernel → stack (up), synack's ACK policy|up|ceiling|kernel synack smoltcp"
    "kernel → stack (up), synack's ACK policy, +rps|up|ceiling_rps|- synack_rps smoltcp_rps"
    "kernel → stack (up), one ACK per 256 KiB|up|ceil256|kernel synack smoltcp"
)

ceiling_report() {
    local spec text dir limit keys key secs ok n row ratios round level_a level_b mark list
    if ((${#CEIL_IDLE_RUNS[@]})); then
        list=$(printf '%s, ' "${CEIL_IDLE_RUNS[@]}")
        NOTES+=("the limit's TUN thread ran less than half the time (waiting for the kernel's side, or CPU$CEIL_CPU busy with other work) in ${#CEIL_IDLE_RUNS[@]} run(s): ${list%, }")
    fi
    echo
    echo "Against the limit: examples/tun_ceiling.rs, one thread doing only the packet I/O of a stack on a TUN"
    echo "(pre-built segments, cumulative ACKs, no TCP logic) on CPU$CEIL_CPU, the kernel's socket on CPU$CEIL_PEER_CPU; down: it writes"
    echo "segments as the kernel's window allows; up: it reads the kernel's and acknowledges as named. The servers run on"
    echo "CPU$CEIL_CPU and the clients on CPU$CEIL_PEER_CPU too. +rps: RPS on the TUN's receive queue to CPUs $RPS_MASK (hex mask), the server on CPU$CEIL_CPU (synack:"
    echo "a second serve started with RPS on, which pins its loop; smoltcp: taskset), in the same rounds."
    echo "| transfer | limit | kernel veth | synack TUN | smoltcp TUN | kernel of limit | synack of limit | smoltcp of limit |"
    echo "|---|---|---|---|---|---|---|---|"
    for spec in "${CEIL_ROWS[@]}"; do
        IFS='|' read -r text dir limit keys <<<"$spec"
        [[ $limit == *_rps ]] && ((!CEIL_RPS)) && continue
        read -r secs ok n < <(median "$limit" "$dir" 0)
        row="| $text | $(cell "$secs" "$ok" "$n") |"
        ratios=""
        for key in $keys; do
            if [[ $key == - ]]; then
                row+=" – |"
                ratios+=" – |"
                continue
            fi
            read -r secs ok n < <(median "$key" "$dir" 0)
            row+=" $(cell "$secs" "$ok" "$n") |"
            ratios+=" $(times_text "$(of_limit "$key" "$limit" "$dir")") |"
        done
        echo "$row$ratios"
    done
    echo "X of limit = X's throughput / the limit's in the same round, median over rounds (a ratio means something only"
    echo "between runs at the same cache level). The limit pays the kernel's side of every packet as a stack does; what"
    echo "it leaves out is TCP itself: building, checksumming and parsing segments, buffers, timers, the application."

    echo
    echo "Per round. Cache level (tun_ceiling --cache-probe, a cache-line round trip CPU$CEIL_CPU ↔ CPU$CEIL_PEER_CPU): F ≤ 200 ns, the two"
    echo "CPUs share a cache; S, they do not (everything using both CPUs runs 1.6–1.9× slower); before → after each direction."
    echo "| round | transfer | cache level | limit | kernel of limit | synack of limit | smoltcp of limit |"
    echo "|---|---|---|---|---|---|---|"
    for ((round = 1; round <= ROUNDS; round++)); do
        for spec in "${CEIL_ROWS[@]}"; do
            IFS='|' read -r text dir limit keys <<<"$spec"
            [[ $limit == *_rps ]] && ((!CEIL_RPS)) && continue
            if [[ $dir == down ]]; then
                level_a=$(level_at "$round" start)
                level_b=$(level_at "$round" mid)
            else
                level_a=$(level_at "$round" mid)
                level_b=$(level_at "$round" end)
            fi
            mark=""
            [[ ${level_a%% *} != "${level_b%% *}" ]] && mark=" **changed**"
            secs=$(awk -v k="$limit" -v d="$dir" -v r="$round" '$1 == k && $2 == d && $3 == 0 && $4 == r { print ($5 ~ /^[0-9]/ ? sprintf("%.3f", $5) : $5) }' "$RESULTS")
            row="| $round | $text | $level_a → $level_b$mark | $(cell "${secs:-none}" 1 1) |"
            for key in $keys; do
                if [[ $key == - ]]; then row+=" – |"; else row+=" $(times_text "$(of_limit "$key" "$limit" "$dir" "$round")") |"; fi
            done
            echo "$row"
        done
    done
}

level_at() { # level_at ROUND POINT: "F (58 ns)"
    awk -v r="$1" -v p="$2" '$1 == r && $2 == p { print $3 ($4 ~ /^[0-9]/ ? " (" $4 " ns)" : ""); f = 1 } END { if (!f) print "?" }' "$LEVELS"
}

# ceiling_targets: the limit's rows of the targets table (printed right after its other rows).
ceiling_targets() {
    local spec dir key limit r text mb s ok n
    for spec in "down synack ceiling" "down synack_rps ceiling_rps" "up synack ceiling"; do
        read -r dir key limit <<<"$spec"
        [[ $limit == *_rps ]] && ((!CEIL_RPS)) && continue
        text="bulk ${DIR_TEXT[$dir]}, no offloads: synack of the limit"
        [[ $key == *_rps ]] && text+=", with RPS"
        [[ $dir == up ]] && text+=" (its own ACK policy); MB/s"
        r=$(of_limit "$key" "$limit" "$dir")
        if [[ -z $r ]]; then
            target_line "$text" "not measured" "≥ 0.9×" "**MISSED**"
            continue
        fi
        if [[ $dir == up ]]; then
            read -r s ok n < <(median "$key" up 0)
            mb=0
            [[ $s =~ ^[0-9] ]] && mb=$(mbps "$s" "$BYTES")
            target_line "$text" "$(times_text "$r"), $mb MB/s" "≥ 0.9×, ≥ 1500 MB/s" "$(verdict "$r >= 0.9 && $mb >= 1500")"
        else
            target_line "$text" "$(times_text "$r")" "≥ 0.9×" "$(verdict "$r >= 0.9")"
        fi
    done
}
