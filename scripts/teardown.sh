#!/usr/bin/env bash
# teardown.sh: undo scripts/setup.sh. Idempotent: running it again says there is nothing to do.
#
#   sudo scripts/teardown.sh                  # delete synack0
#   sudo scripts/teardown.sh --netns lab      # delete synack0 in "lab", then "lab" if now empty
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NAME=synack0
NETNS=
KEEP_NETNS=0
FORCE=0
ORIG_ARGS=("$@")

usage() {
    cat <<EOF
Usage: sudo $PROG [--name DEV] [--netns NS] [--keep-netns] [--force]

Delete the TUN device made by scripts/setup.sh.

  --name DEV     device name (default: $NAME)
  --netns NS     the device is in network namespace NS. After deleting the device the
                 namespace is deleted too, but only if nothing else is left in it: no
                 network device besides lo and no process running inside. Otherwise
                 it is kept and the reason printed.
  --keep-netns   never delete the namespace
  --force        delete the device even while a process (synack serve) has it open;
                 without it, a device in use is left alone
  -h, --help     show this help

Only TUN/TAP devices are deleted; any other device of that name is left alone.
Running it again is safe: it says there is nothing to do.
EOF
}

while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --name) [[ $# -ge 2 ]] || die "--name needs a value (e.g. --name synack0)"; NAME=$2; shift 2 ;;
        --name=*) NAME=${1#*=}; shift ;;
        --netns) [[ $# -ge 2 ]] || die "--netns needs a value (e.g. --netns lab)"; NETNS=$2; shift 2 ;;
        --netns=*) NETNS=${1#*=}; shift ;;
        --keep-netns) KEEP_NETNS=1; shift ;;
        --force) FORCE=1; shift ;;
        *) die "unknown argument '$1' (see $PROG --help)" ;;
    esac
done

[[ $NAME =~ ^[A-Za-z0-9_.-]{1,15}$ ]] ||
    die "bad device name '$NAME': use 1-15 letters, digits, '_', '.', '-'"
if [[ -n $NETNS ]]; then
    [[ $NETNS =~ ^[A-Za-z0-9_.-]+$ && $NETNS != . && $NETNS != .. ]] ||
        die "bad namespace name '$NETNS': use letters, digits, '_', '.', '-'"
fi
[[ $EUID -eq 0 ]] || die "must be run as root (it deletes a network device): run with sudo: sudo $0 ${ORIG_ARGS[*]}"
command -v ip >/dev/null || die "the 'ip' command is missing: install iproute2 (apt-get install iproute2)"

in_ns() {
    if [[ -n $NETNS ]]; then ip netns exec "$NETNS" "$@"; else "$@"; fi
}
WHERE=${NETNS:+ in namespace $NETNS}

if [[ -n $NETNS && ! -e /run/netns/$NETNS ]]; then
    say "nothing to do: namespace $NETNS does not exist (so neither does $NAME in it)"
    exit 0
fi

# ---- device ----
SYS=/sys/class/net/$NAME
if ! in_ns test -e "$SYS"; then
    say "nothing to do: $NAME does not exist$WHERE"
else
    flags=$(in_ns cat "$SYS/tun_flags" 2>/dev/null) ||
        die "$NAME$WHERE is not a TUN/TAP device, so setup.sh did not make it; not touching it (delete it yourself with: ip${NETNS:+ -n $NETNS} link del $NAME)"
    if ((flags & 0x0001)); then mode=tun; else mode=tap; fi
    # 'ip tuntap del' attaches to the device to clear its persist flag, so it fails with EBUSY
    # while another process (synack serve) has it open. That is our in-use test.
    if err=$(in_ns ip tuntap del dev "$NAME" mode "$mode" 2>&1); then
        say "deleted $mode device $NAME$WHERE"
    elif [[ $err == *"busy"* ]]; then
        if ((FORCE)); then
            in_ns ip link del dev "$NAME"
            say "deleted $mode device $NAME$WHERE although a process had it open (--force)"
        else
            die "$NAME$WHERE is in use: a process has it open (is 'synack serve' still running? stop it with Ctrl-C), or pass --force to delete it anyway"
        fi
    else
        die "could not delete $NAME$WHERE: $err"
    fi
fi

# ---- namespace ----
[[ -n $NETNS ]] || exit 0
if ((KEEP_NETNS)); then
    say "kept namespace $NETNS (--keep-netns)"
    exit 0
fi
others=$(ip -n "$NETNS" -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep -vx lo | paste -sd ' ' || true)
pids=$(ip netns pids "$NETNS" | paste -sd ' ' || true)
if [[ -n $others ]]; then
    say "kept namespace $NETNS: it still has other devices ($others); delete it with: sudo ip netns del $NETNS"
elif [[ -n $pids ]]; then
    say "kept namespace $NETNS: processes still run in it (pids $pids); delete it after they exit with: sudo ip netns del $NETNS"
else
    ip netns del "$NETNS"
    say "deleted namespace $NETNS (nothing else was in it)"
fi
