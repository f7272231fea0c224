# shellcheck shell=bash
# lib.sh: what the scripts share, sourced right after `set -euo pipefail`:
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sets PROG (the script's name, for messages) and REPO (the repository's root), puts the
# user's cargo first on PATH, and defines the helpers below. Not a script of its own.

PROG=${0##*/}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

# die MESSAGE: print it as an error and exit 1.
die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

# say MESSAGE: progress, on stdout. (The benchmarks, whose stdout is their report, say on
# stderr instead: they define their own.)
say() { echo "$PROG: $*"; }

# give_back PATH...: make files written as root the invoking user's (OWNER; none: nothing).
give_back() {
    if [[ -n ${OWNER:-} ]]; then chown "$OWNER": "$@" 2>/dev/null || true; fi
}

# server_alive: the server started in the background (SERVER_PID) still runs.
server_alive() { [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; }

# wait_for FILE TEXT PID: wait up to 10 s for TEXT in FILE, written by process PID; when PID
# exits first, or the time is up, print FILE on stderr and fail.
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

# stop_pids_and_namespaces: end every process in PIDS (TERM, then KILL after 5 s) and delete
# every namespace in NAMESPACES. For a cleanup trap: never fails.
stop_pids_and_namespaces() {
    local pid ns
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
    return 0
}

# rps_mask_except CPU: the CPUs online except CPU, as a hex mask in the format rps_cpus takes
# (comma-separated 32-bit groups, highest first); 0 when CPU is the only one.
rps_mask_except() {
    local skip=$1 n g i bits out=""
    n=$(getconf _NPROCESSORS_ONLN)
    for ((g = (n - 1) / 32; g >= 0; g--)); do
        bits=0
        for ((i = 0; i < 32 && g * 32 + i < n; i++)); do
            ((g * 32 + i == skip)) || bits=$((bits | (1 << i)))
        done
        if [[ -z $out ]]; then out=$(printf '%x' "$bits"); else out+=$(printf ',%08x' "$bits"); fi
    done
    echo "$out"
}

# set_rps NS DEV MASK: Receive Packet Steering for DEV's receive queue (for a TUN: every packet
# written into it) to the CPUs in MASK, 0 for none (off). NS empty: the machine's namespace;
# otherwise the write happens inside NS, where 'ip netns exec' mounts a /sys of its own.
set_rps() {
    local ns=$1 dev=$2 mask=$3
    local file=/sys/class/net/$dev/queues/rx-0/rps_cpus
    if [[ -n $ns ]]; then
        # shellcheck disable=SC2016 # $1 and $2 are the inner shell's
        ip netns exec "$ns" sh -c 'echo "$1" > "$2"' sh "$mask" "$file"
    else
        echo "$mask" >"$file"
    fi
}
