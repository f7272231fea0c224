#!/usr/bin/env bash
# setup.sh: create the persistent TUN device that `synack serve` attaches to.
#
#   sudo scripts/setup.sh                     # synack0, kernel side 10.7.0.1/24
#   sudo scripts/setup.sh --netns lab         # the same, inside network namespace "lab"
#   sudo scripts/setup.sh --rps               # and Receive Packet Steering off CPU0 (see --help)
#
# Idempotent: run it again and it reuses what is already there. Undo with scripts/teardown.sh.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NAME=synack0
ADDR=10.7.0.1/24
NETNS=
# rps_cpus for the device's receive queue: 0 (off) unless --rps or --rps-cpus says otherwise.
RPS=0
# How RPS was asked for: cpu0 (--rps: every CPU but CPU0), mask (--rps-cpus), or not at all.
RPS_ASKED=
ORIG_ARGS=("$@")

usage() {
    cat <<EOF
Usage: sudo $PROG [--name DEV] [--addr CIDR] [--netns NS] [--rps | --rps-cpus MASK]

Create a persistent TUN device for synack, owned by the user who ran sudo
(\$SUDO_USER; the current user when that is unset), so that 'synack serve'
can attach to it without root.

  --name DEV     device name (default: $NAME)
  --addr CIDR    the kernel's address on the device (default: $ADDR);
                 the stack answers as the next address (10.7.0.2 by default)
  --netns NS     put the device in network namespace NS (created if missing,
                 with its loopback brought up) instead of the machine's own
  --rps          turn on Receive Packet Steering for the device, to every CPU
                 but CPU0 (off by default; see below)
  --rps-cpus MASK  the same to the CPUs of a hex MASK in rps_cpus's format
                 (e.g. 2 = CPU1, fe = CPUs 1-7; 0 = off)
  -h, --help     show this help

What it does: ip tuntap add DEV mode tun user USER; disables IPv6 on DEV (the
stack speaks IPv4 only, so this keeps the trace free of router solicitations);
sets txqueuelen 10000 (the default 500 drops bursts silently) and mtu 1500;
makes CIDR the device's only IPv4 address; brings it up.

Running it again is safe: an existing TUN device with the right owner is
reused and the address is not added twice. Undo: sudo scripts/teardown.sh
(with the same --name/--netns).

RPS: every packet the stack writes into a TUN goes through the kernel's whole
receive path (IP, TCP, waking the reading socket) inside that write, on the
stack's own thread: when the stack sends, that is most of its time. With RPS
the write only queues the packet, and a CPU of MASK does the rest, so the
stack's writes return sooner. It helps when the stack runs on a CPU outside the
mask and another CPU has time to spare: --rps leaves CPU0 out, and synack serve,
started after it, runs its event loop on the CPUs outside the mask by itself
(another stack: taskset -c 0 ...); unpinned, a stack may run on the very CPU
the packets are steered to, which adds a queue and gains nothing.
On one CPU there is nowhere to steer to. It is off unless asked for (a run
without --rps/--rps-cpus turns it off); scripts/bench.sh measures synack and
smoltcp with and without it (its "+rps" rows).
EOF
}

while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --name) [[ $# -ge 2 ]] || die "--name needs a value (e.g. --name synack0)"; NAME=$2; shift 2 ;;
        --name=*) NAME=${1#*=}; shift ;;
        --addr) [[ $# -ge 2 ]] || die "--addr needs a value (e.g. --addr 10.7.0.1/24)"; ADDR=$2; shift 2 ;;
        --addr=*) ADDR=${1#*=}; shift ;;
        --netns) [[ $# -ge 2 ]] || die "--netns needs a value (e.g. --netns lab)"; NETNS=$2; shift 2 ;;
        --netns=*) NETNS=${1#*=}; shift ;;
        --rps) RPS=except-cpu0; RPS_ASKED=cpu0; shift ;;
        --rps-cpus) [[ $# -ge 2 ]] || die "--rps-cpus needs a hex mask (e.g. --rps-cpus 2)"; RPS=$2; RPS_ASKED=mask; shift 2 ;;
        --rps-cpus=*) RPS=${1#*=}; RPS_ASKED=mask; shift ;;
        *) die "unknown argument '$1' (see $PROG --help)" ;;
    esac
done

# ---- validate arguments (before asking for root, so typos are reported first) ----
[[ $NAME =~ ^[A-Za-z0-9_.-]{1,15}$ ]] ||
    die "bad device name '$NAME': use 1-15 letters, digits, '_', '.', '-'"
if [[ -n $NETNS ]]; then
    [[ $NETNS =~ ^[A-Za-z0-9_.-]+$ && $NETNS != . && $NETNS != .. ]] ||
        die "bad namespace name '$NETNS': use letters, digits, '_', '.', '-'"
fi

if [[ $RPS == except-cpu0 ]]; then
    RPS=$(rps_mask_except 0)
    [[ $RPS != 0 ]] || die "--rps: this machine has one CPU, so there is no other CPU to steer packets to; leave --rps out"
fi
[[ $RPS =~ ^[0-9a-fA-F]{1,8}(,[0-9a-fA-F]{1,8})*$ ]] ||
    die "bad --rps-cpus '$RPS': a hex CPU mask like 2 (CPU1) or fe (CPUs 1-7), 0 for off"

ip_to_int() {
    local IFS=. a b c d
    read -r a b c d <<<"$1"
    echo $(((a << 24) | (b << 16) | (c << 8) | d))
}
int_to_ip() {
    echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"
}

[[ $ADDR =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] ||
    die "bad --addr '$ADDR': expected IPv4 CIDR like 10.7.0.1/24"
for octet in "${BASH_REMATCH[@]:1:4}"; do
    ((10#$octet <= 255)) || die "bad --addr '$ADDR': $octet is not an octet (0-255)"
done
PREFIX=$((10#${BASH_REMATCH[5]}))
((PREFIX >= 1 && PREFIX <= 30)) ||
    die "bad --addr '$ADDR': prefix must be /1../30 so the subnet has room for the stack's address"
KERNEL_IP=${ADDR%/*}
KERNEL_IP=$(int_to_ip "$(ip_to_int "$KERNEL_IP")") # normalise e.g. 010.7.0.1
ADDR=$KERNEL_IP/$PREFIX
ip_int=$(ip_to_int "$KERNEL_IP")
mask=$(((0xFFFFFFFF << (32 - PREFIX)) & 0xFFFFFFFF))
network=$((ip_int & mask))
broadcast=$((network | (~mask & 0xFFFFFFFF)))
((ip_int != network && ip_int != broadcast)) ||
    die "bad --addr '$ADDR': that is the subnet's network or broadcast address; use a host address like 10.7.0.1/24"
# The stack takes the next host address (10.7.0.1 -> 10.7.0.2), or the previous one at the top.
if ((ip_int + 1 < broadcast)); then
    STACK_IP=$(int_to_ip $((ip_int + 1)))
else
    STACK_IP=$(int_to_ip $((ip_int - 1)))
fi

# ---- environment checks ----
[[ $EUID -eq 0 ]] || die "must be run as root (it creates a network device): run with sudo: sudo $0 ${ORIG_ARGS[*]}"
command -v ip >/dev/null || die "the 'ip' command is missing: install iproute2 (apt-get install iproute2)"
if [[ ! -c /dev/net/tun ]]; then
    modprobe tun 2>/dev/null || true
    [[ -c /dev/net/tun ]] || die "/dev/net/tun is missing: load the tun module (sudo modprobe tun)"
fi

OWNER=${SUDO_USER:-$(id -un)}
OWNER_UID=$(id -u "$OWNER" 2>/dev/null) || die "unknown user '$OWNER' (from \$SUDO_USER)"

# Run a command in the target namespace (or the machine's own one without --netns).
in_ns() {
    if [[ -n $NETNS ]]; then ip netns exec "$NETNS" "$@"; else "$@"; fi
}
WHERE=${NETNS:+ in namespace $NETNS}
TEARDOWN="scripts/teardown.sh"
[[ $NAME != synack0 ]] && TEARDOWN+=" --name $NAME"
[[ -n $NETNS ]] && TEARDOWN+=" --netns $NETNS"

# ---- namespace ----
if [[ -n $NETNS ]]; then
    if [[ -e /run/netns/$NETNS ]]; then
        say "namespace $NETNS exists; using it"
    else
        ip netns add "$NETNS" || die "could not create namespace $NETNS (see the error above)"
        say "created namespace $NETNS"
    fi
    ip netns exec "$NETNS" ip link set dev lo up
fi

# ---- device ----
SYS=/sys/class/net/$NAME
if in_ns test -e "$SYS"; then
    # tun_flags exists only for TUN/TAP devices; bit 0x0001 is IFF_TUN, 0x0100 IFF_MULTI_QUEUE.
    flags=$(in_ns cat "$SYS/tun_flags" 2>/dev/null) ||
        die "$NAME already exists$WHERE and is not a TUN device: pick another --name, or delete it (ip${NETNS:+ -n $NETNS} link del $NAME)"
    ((flags & 0x0001)) ||
        die "$NAME already exists$WHERE but is a TAP device, not TUN: run sudo $TEARDOWN first"
    if ((flags & 0x0100)); then
        die "$NAME already exists$WHERE but is multi-queue: run sudo $TEARDOWN first"
    fi
    cur_uid=$(in_ns cat "$SYS/owner")
    if [[ $cur_uid != "$OWNER_UID" ]]; then
        cur_name=$(id -un "$cur_uid" 2>/dev/null || echo "uid $cur_uid")
        [[ $cur_uid == -1 ]] && cur_name="nobody in particular (no owner set)"
        die "$NAME already exists$WHERE but is owned by $cur_name, not $OWNER: run sudo $TEARDOWN first, then this again"
    fi
    say "TUN device $NAME exists$WHERE, owned by $OWNER; reusing it"
else
    # Inside a namespace, create it there directly: the device lands in the namespace of the
    # process that opens /dev/net/tun.
    in_ns ip tuntap add dev "$NAME" mode tun user "$OWNER_UID" ||
        die "could not create TUN device $NAME$WHERE (see the error above)"
    say "created TUN device $NAME$WHERE, owned by $OWNER (uid $OWNER_UID)"
fi

# IPv4 only: without this the kernel sends IPv6 router solicitations and MLD reports into the
# TUN as soon as it is up, which the stack would drop and count.
v6conf=/proc/sys/net/ipv6/conf/$NAME/disable_ipv6
if in_ns test -w "$v6conf"; then
    echo 1 | in_ns tee "$v6conf" >/dev/null
fi

in_ns ip link set dev "$NAME" txqueuelen 10000 mtu 1500
say "set txqueuelen 10000, mtu 1500"

have=$(in_ns ip -4 -o addr show dev "$NAME" | awk '{print $4}')
if grep -qxF "$ADDR" <<<"$have"; then
    say "address $ADDR already on $NAME"
else
    in_ns ip addr add "$ADDR" dev "$NAME"
    say "added address $ADDR to $NAME"
fi
while read -r other; do
    [[ -z $other || $other == "$ADDR" ]] && continue
    in_ns ip addr del "$other" dev "$NAME"
    say "removed old address $other from $NAME (asked for $ADDR)"
done <<<"$have"

rps_file=/sys/class/net/$NAME/queues/rx-0/rps_cpus
if [[ $RPS =~ ^[0,]+$ ]]; then
    # Off: write only to turn it off, so that a kernel without CONFIG_RPS (no such file) or a
    # read-only /sys is no reason to fail.
    cur=$(in_ns cat "$rps_file" 2>/dev/null) || cur=0
    if [[ ! $cur =~ ^[0,]+$ ]]; then
        set_rps "$NETNS" "$NAME" 0 2>/dev/null || die "could not turn RPS off: write 0 to $rps_file$WHERE (it is $cur)"
    fi
    say "RPS off"
else
    set_rps "$NETNS" "$NAME" "$RPS" 2>/dev/null ||
        die "could not set $rps_file to $RPS$WHERE (a kernel without CONFIG_RPS has no such file; a mask may name only CPUs that exist)"
    say "RPS on: rps_cpus=$(in_ns cat "$rps_file")"
fi

in_ns ip link set dev "$NAME" up
say "$NAME is up"

# The owner can attach without root only if it may open /dev/net/tun (normally mode 0666).
if [[ $OWNER_UID != 0 ]] && command -v runuser >/dev/null &&
    ! runuser -u "$OWNER" -- test -r /dev/net/tun -a -w /dev/net/tun 2>/dev/null; then
    say "warning: $OWNER cannot open /dev/net/tun ($(stat -c %A /dev/net/tun)), so 'synack serve' will need root;"
    say "         to let users attach to devices they own: sudo chmod 0666 /dev/net/tun"
fi

# ---- next steps ----
run=${NETNS:+sudo ip netns exec $NETNS }
# With RPS, synack serve (started after this) pins its event loop outside the mask by itself;
# another stack gains from RPS only when it is pinned there by hand.
rps_note=
if [[ ! $RPS =~ ^[0,]+$ ]]; then
    free=0 which=""
    [[ $RPS_ASKED == mask ]] && free=CPU which=" (CPU: one outside mask $RPS)"
    rps_note="
synack serve runs its event loop outside the RPS mask by itself; pin another stack there:
  ${run}taskset -c $free ...$which"
fi
cat <<EOF

Ready: the kernel is $KERNEL_IP on $NAME$WHERE; the stack will answer as $STACK_IP.
Next:
  ${run}target/release/synack serve --tun $NAME --ip $STACK_IP --trace${rps_note}
and from another terminal:
  ${run}curl http://$STACK_IP/
  ${run}nc $STACK_IP 7          # echo
  ${run}ping -c 2 $STACK_IP
Undo with: sudo $TEARDOWN
EOF
