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

# cpu_list_expand LIST: the CPUs of a kernel CPU list ("0-3,6"), one per line; nothing for
# what is not such a list.
cpu_list_expand() {
    local part parts c
    IFS=, read -r -a parts <<<"$1"
    for part in ${parts[@]+"${parts[@]}"}; do
        [[ $part =~ ^([0-9]+)(-([0-9]+))?$ ]] || continue
        for ((c = BASH_REMATCH[1]; c <= ${BASH_REMATCH[3]:-${BASH_REMATCH[1]}}; c++)); do echo "$c"; done
    done
}

# usable_cpus: the CPUs online that this process may run on (a cpuset or taskset may allow
# fewer, and not from 0), one per line, in order.
usable_cpus() {
    local online allowed
    online=$(cat /sys/devices/system/cpu/online 2>/dev/null) || online=0-$(($(getconf _NPROCESSORS_ONLN) - 1))
    allowed=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
    if [[ -z $allowed ]]; then
        cpu_list_expand "$online"
    else
        # Lines in both lists (comm wants them sorted as text; sort -n puts them back).
        comm -12 <(cpu_list_expand "$online" | sort) <(cpu_list_expand "$allowed" | sort) | sort -n
    fi
}

# rps_mask_except CPU: the usable CPUs (usable_cpus) except CPU, as a hex mask in the format
# rps_cpus takes (comma-separated 32-bit groups, highest first); 0 when none is left.
rps_mask_except() {
    local skip=$1 cpu top=0 g out="" cpus=()
    while read -r cpu; do
        ((cpu == skip)) || cpus+=("$cpu")
    done < <(usable_cpus)
    ((${#cpus[@]})) || { echo 0; return; }
    for cpu in "${cpus[@]}"; do ((cpu > top)) && top=$cpu; done
    local -a groups
    for ((g = 0; g <= top / 32; g++)); do groups[g]=0; done
    for cpu in "${cpus[@]}"; do
        groups[cpu / 32]=$((groups[cpu / 32] | (1 << (cpu % 32))))
    done
    for ((g = top / 32; g >= 0; g--)); do
        if [[ -z $out ]]; then out=$(printf '%x' "${groups[g]}"); else out+=$(printf ',%08x' "${groups[g]}"); fi
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
