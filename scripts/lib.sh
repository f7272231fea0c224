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
