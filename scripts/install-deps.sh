#!/usr/bin/env bash
# install-deps.sh: install the tools the tests and the demo drive synack with, if any is missing,
# and the Python clients of the WebSocket and Socket.IO tests in a virtual environment under
# target/ (Debian's python3-websockets is 10.4 on bookworm, without the websockets.sync
# client the tests use; pip into the system Python is refused there, rightly).
# Used by scripts/test.sh and scripts/demo.sh; fast (no apt-get, no pip) when nothing is missing.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# gcc make bison flex: scripts/packetdrill.sh builds packetdrill from source.
PACKAGES=(iproute2 tshark tcpdump curl netcat-openbsd nftables python3 python3-venv iputils-ping chromium nodejs npm
    gcc make bison flex nmap apache2-utils wrk nginx-light ethtool hping3 slowhttptest)
# The test clients' Python: tests/common and scripts/captures.sh look for it here.
VENV=${CARGO_TARGET_DIR:-$REPO/target}/python
PY_PACKAGES=(websockets "python-socketio[client]" websocket-client)
PY_IMPORTS="import websockets.sync.client, socketio, websocket"

usage() {
    cat <<EOF
Usage: sudo $PROG [--check] [--python | --no-python]

Install, with apt-get, what synack's tests and demo need when any of it is missing:
  ${PACKAGES[*]}
and, with pip, in a virtual environment at ${VENV#"$REPO/"}, the Python clients
of the WebSocket and Socket.IO tests: ${PY_PACKAGES[*]}.
Nothing is installed (and neither apt-get nor pip runs) when all of it is present.

  --check       only list what is missing; exit 1 if anything is
  --python      only the Python clients (no root needed)
  --no-python   only the apt packages (what the demo needs)
  -h, --help    show this help
EOF
}

CHECK=0
APT=1
PYTHON=1
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --check) CHECK=1; shift ;;
        --python) APT=0; shift ;;
        --no-python) PYTHON=0; shift ;;
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
        python3-venv) python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ;;
        iputils-ping) command -v ping >/dev/null ;;
        gcc | make | bison | flex) command -v "$1" >/dev/null ;;
        # The attack tools of tests/tun_attack.rs (a SYN flood, slowloris).
        hping3) command -v hping3 >/dev/null ;;
        slowhttptest) command -v slowhttptest >/dev/null ;;
        # The headless browser the demo page's test drives; either Debian package will do.
        chromium) command -v chromium >/dev/null || command -v chromium-headless-shell >/dev/null ;;
        # The official Socket.IO client and protocol suites (npm packages go to temp dirs).
        nodejs) command -v node >/dev/null ;;
        npm) command -v npm >/dev/null ;;
        # The outside tools: nmap scans, ab and wrk load, nginx is the bench's yardstick,
        # ethtool turns a veth's offloads off for it.
        nmap) command -v nmap >/dev/null ;;
        apache2-utils) command -v ab >/dev/null ;;
        wrk) command -v wrk >/dev/null ;;
        nginx-light) command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] ;;
        ethtool) command -v ethtool >/dev/null || [[ -x /usr/sbin/ethtool ]] ;;
        *) return 1 ;;
    esac
}

# The Python clients, in their own virtual environment: pip's output goes to a log that is
# shown only when it fails.
has_clients() { [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c "$PY_IMPORTS" >/dev/null 2>&1; }
ensure_clients() {
    ((PYTHON)) || return 0
    command -v python3 >/dev/null || return 0 # reported with the packages
    has_clients && return 0
    if ((CHECK)); then
        echo "$PROG: missing: the Python test clients in ${VENV#"$REPO/"} (${PY_PACKAGES[*]})"
        return 1
    fi
    echo "$PROG: pip install ${PY_PACKAGES[*]} into ${VENV#"$REPO/"} (a virtual environment)"
    local log
    log=$(mktemp /tmp/synack-pip.XXXXXX)
    if ! { python3 -m venv "$VENV" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "${PY_PACKAGES[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "could not make the Python test clients (see above); to retry: rm -rf ${VENV#"$REPO/"}; $0 --python"
    fi
    rm -f "$log"
    has_clients || die "the Python test clients do not import after pip install (${PY_IMPORTS})"
    # Under sudo, leave target/ to the user who will build there.
    if [[ $EUID -eq 0 && -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        chown -R "$SUDO_USER": "$VENV" 2>/dev/null || true
    fi
}

if ((!APT)); then
    ensure_clients
    exit
fi

missing=()
for p in "${PACKAGES[@]}"; do
    present "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "$PROG: all present: ${PACKAGES[*]}"
    ensure_clients
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
# Only what is missing: asking apt for a package whose tool is already here from elsewhere can
# conflict (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
echo "$PROG: apt-get install ${missing[*]}"
apt-get install -y --no-install-recommends "${missing[@]}" ||
    die "apt-get install failed; install '${missing[*]}' by hand"

still=()
for p in "${PACKAGES[@]}"; do
    present "$p" || still+=("$p")
done
[[ ${#still[@]} -eq 0 ]] || die "still missing after apt-get install: ${still[*]}"
echo "$PROG: installed ${missing[*]}"
ensure_clients
