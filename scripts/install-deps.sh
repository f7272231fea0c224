#!/usr/bin/env bash
# install-deps.sh: install the tools the tests and the demo drive synack with, if any is missing
# (and Python's `websockets` package, with pip, for the WebSocket tests).
# Used by scripts/test.sh and scripts/demo.sh; fast (no apt-get at all) when nothing is missing.
set -euo pipefail

PROG=${0##*/}
PACKAGES=(iproute2 tshark tcpdump curl netcat-openbsd nftables python3 iputils-ping chromium)

usage() {
    cat <<EOF
Usage: sudo $PROG [--check]

Install, with apt-get, what synack's tests and demo need when any of it is missing:
  ${PACKAGES[*]}
and, with pip, Python's websockets package (the client of the WebSocket tests).
Nothing is installed (and apt-get is not run) when all of it is present.

  --check      only list what is missing; exit 1 if anything is
  -h, --help   show this help
EOF
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

CHECK=0
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --check) CHECK=1; shift ;;
        *) die "unknown argument '$1' (see $PROG --help)" ;;
    esac
done

# Is the package's tool here? netcat must be the OpenBSD one (-N, -w, -z as the tests use them).
present() {
    case $1 in
        iproute2) command -v ip >/dev/null ;;
        tshark) command -v tshark >/dev/null ;;
        tcpdump) command -v tcpdump >/dev/null ;;
        curl) command -v curl >/dev/null ;;
        netcat-openbsd) command -v nc.openbsd >/dev/null || { command -v nc >/dev/null && nc -h 2>&1 | grep -q OpenBSD; } ;;
        nftables) command -v nft >/dev/null ;;
        python3) command -v python3 >/dev/null ;;
        iputils-ping) command -v ping >/dev/null ;;
        # The headless browser the demo page's test drives; either Debian package will do.
        chromium) command -v chromium >/dev/null || command -v chromium-headless-shell >/dev/null ;;
        *) return 1 ;;
    esac
}

# Python's websockets (its sync client), for tests/clients/ws_client.py. Not a Debian package
# at a usable version on bookworm, so pip, into whatever python3 is first on PATH.
has_websockets() { python3 -c 'import websockets.sync.client' >/dev/null 2>&1; }
ensure_websockets() {
    command -v python3 >/dev/null || return 0 # reported with the packages
    has_websockets && return 0
    if ((CHECK)); then
        echo "$PROG: missing: Python package websockets"
        return 1
    fi
    echo "$PROG: pip install websockets"
    python3 -m pip install --quiet --disable-pip-version-check websockets ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages websockets ||
        die "pip could not install websockets; install it by hand: python3 -m pip install websockets"
    has_websockets || die "websockets still not importable after pip install"
}

missing=()
for p in "${PACKAGES[@]}"; do
    present "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "$PROG: all present: ${PACKAGES[*]}"
    ensure_websockets
    exit
fi
echo "$PROG: missing: ${missing[*]}"
((CHECK)) && exit 1

[[ $EUID -eq 0 ]] || die "installing needs root: run with sudo (sudo $0)"
command -v apt-get >/dev/null ||
    die "no apt-get on this system: install the equivalents of '${missing[*]}' with your package manager"

export DEBIAN_FRONTEND=noninteractive
echo "$PROG: apt-get update"
apt-get update || die "apt-get update failed (network or mirror problem?); fix it, or install '${missing[*]}' by hand"
echo "$PROG: apt-get install ${PACKAGES[*]}"
apt-get install -y --no-install-recommends "${PACKAGES[@]}" ||
    die "apt-get install failed; install '${missing[*]}' by hand"

still=()
for p in "${PACKAGES[@]}"; do
    present "$p" || still+=("$p")
done
[[ ${#still[@]} -eq 0 ]] || die "still missing after apt-get install: ${still[*]}"
echo "$PROG: installed ${missing[*]}"
ensure_websockets
