#!/usr/bin/env bash
# packetdrill.sh: run packetdrill scripts against synack's own TCP (no root, no TUN).
#
# packetdrill (GPLv2, ../shared/packetdrill/src) is built once into target/ as a separate
# program; the adapter crate (packetdrill/) is the shared object it loads. See docs/packetdrill.md.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SHARED=${SYNACK_SHARED:-$REPO/../shared}
PD_SRC=$SHARED/packetdrill/src
PORT=$SHARED/packetdrill/port_freebsd.py
FREEBSD_SUITE=$SHARED/packetdrill/freebsd-tcp-testsuite/state-event-engine
OWN=$REPO/tests/packetdrill
EXPECTED=$OWN/freebsd-expected-failures.txt
BUILD=$REPO/target/packetdrill
PD=$BUILD/src/packetdrill
SO=$REPO/target/debug/libsynack_packetdrill.so
PER_SCRIPT_TIMEOUT=60

usage() {
    cat <<EOF
Usage: $PROG [--freebsd] [PATH...]

Run packetdrill scripts against synack. Each PATH is a .pkt file or a folder (every .pkt
under it). Prints one line per script, 'ok PATH' or 'FAIL PATH: <first error line>', then
'N passed, M failed'.

  --freebsd   port each script with $PORT first
              (scripts of the FreeBSD tcp-testsuite)
  -h, --help  show this help

With no PATH: our own scripts (tests/packetdrill/) and the FreeBSD state-event suite
($FREEBSD_SUITE), IPv4 scripts: -secure-, -insecure- and neutral.
Scripts with -insecure- in their name run with the adapter's 'insecure' flag (RFC 793's RST
and SYN handling). FreeBSD failures listed in tests/packetdrill/freebsd-expected-failures.txt
(each with the RFC section that allows synack's choice) are expected; the run fails on any
other failure, and on a listed script that passes.

Needs gcc, make, bison, flex, python3 (scripts/install-deps.sh) and ../shared (set
SYNACK_SHARED to use another folder). Without ../shared it skips, saying why; under CI=true
it fails instead.
EOF
}

FREEBSD=0
PATHS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --freebsd) FREEBSD=1; shift ;;
        -*) echo "$PROG: error: unknown option '$1' (see $PROG --help)" >&2; exit 2 ;;
        *) PATHS+=("$1"); shift ;;
    esac
done

if [[ ! -d $PD_SRC ]]; then
    msg="$PROG: packetdrill's source is not at $PD_SRC (the reference folder ../shared beside the repository, or SYNACK_SHARED)"
    if [[ ${CI:-} == true ]]; then
        echo "$msg: FAILING under CI=true" >&2
        exit 1
    fi
    echo "$msg: SKIPPED"
    exit 0
fi
for tool in gcc make bison flex python3; do
    command -v "$tool" >/dev/null ||
        { echo "$PROG: error: '$tool' is missing; install it (sudo scripts/install-deps.sh)" >&2; exit 1; }
done

# packetdrill, built once from a copy (the shared folder is read-only).
if [[ ! -x $PD ]]; then
    echo "$PROG: building packetdrill into $BUILD (once)"
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    cp -r --no-preserve=mode "$PD_SRC" "$BUILD/src"
    chmod +x "$BUILD/src/configure"
    if ! (cd "$BUILD/src" && ./configure >"$BUILD/build.log" 2>&1 && make -j2 >>"$BUILD/build.log" 2>&1); then
        tail -20 "$BUILD/build.log" >&2
        echo "$PROG: error: building packetdrill failed (log: $BUILD/build.log)" >&2
        rm -f "$PD"
        exit 1
    fi
fi
(cd "$REPO" && cargo build --quiet -p synack-packetdrill) ||
    { echo "$PROG: error: building the adapter (cargo build -p synack-packetdrill) failed" >&2; exit 1; }
[[ -f $SO ]] || { echo "$PROG: error: $SO was not built" >&2; exit 1; }

# Which scripts, each with whether it is a FreeBSD one (ported first).
LIST=()
add_path() { # add_path PATH FREEBSD
    local p=$1 fb=$2
    if [[ -d $p ]]; then
        while IFS= read -r f; do LIST+=("$fb $f"); done < <(find "$p" -name '*.pkt' | sort)
    elif [[ -f $p ]]; then
        LIST+=("$fb $p")
    else
        echo "$PROG: error: no such file or folder: $p" >&2
        exit 2
    fi
}
if [[ ${#PATHS[@]} -eq 0 ]]; then
    add_path "$OWN" 0
    while IFS= read -r f; do LIST+=("1 $f"); done < <(find "$FREEBSD_SUITE" -name '*-ipv4.pkt' | sort)
else
    for p in "${PATHS[@]}"; do add_path "$p" "$FREEBSD"; done
fi

# Expected FreeBSD failures: script name (without .pkt) at the start of a line, then the reason.
declare -A LISTED=()
if [[ -f $EXPECTED ]]; then
    while IFS= read -r line; do
        line=${line%%#*}
        name=${line%% *}
        [[ -n $name ]] && LISTED[$name]=1
    done <"$EXPECTED"
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The first line of packetdrill's output that says what went wrong.
first_error() {
    grep -m1 -E 'error|Error|assert|FAIL|expected|synack-packetdrill|panicked|Timed out' "$1" ||
        grep -m1 -v '^\s*$' "$1" || echo "no output (exit $2)"
}

passed=0 failed=0 unexpected=0
declare -A CAT_PASS=() CAT_FAIL=() CAT_LISTED=()
for entry in "${LIST[@]}"; do
    fb=${entry%% *}
    script=${entry#* }
    name=$(basename "$script" .pkt)
    run=$script
    if ((fb)); then
        run=$WORK/$name.pkt
        python3 "$PORT" "$script" >"$run"
    fi
    # packetdrill's command line overrides a script's own --so_flags line: pass both.
    flags=$(sed -n 's/^--so_flags="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$run" | head -1)
    [[ $name == *-insecure-* ]] && flags="insecure $flags"
    # FreeBSD's net.inet.tcp.drop_synfin=0 (the scripts set it): SYN+FIN is taken as a SYN.
    [[ $name == *-dropping-disabled-* ]] && flags+=" keep_syn_fin"
    rel=${script#"$REPO/"}
    rc=0
    LD_PRELOAD=$SO timeout "$PER_SCRIPT_TIMEOUT" "$PD" --local_ip=192.168.0.1 --so_filename="$SO" --so_flags="$flags" \
        --code_command="env -u LD_PRELOAD python3 $REPO/scripts/packetdrill_code.py" "$run" >"$WORK/out" 2>&1 || rc=$?
    cat=own
    if ((fb)); then
        case $name in
            *-insecure-*) cat=insecure ;;
            *-secure-*) cat=secure ;;
            *) cat=neutral ;;
        esac
    fi
    listed=0
    ((fb)) && [[ -n ${LISTED[$name]:-} ]] && listed=1
    if ((rc == 0)); then
        passed=$((passed + 1))
        CAT_PASS[$cat]=$((${CAT_PASS[$cat]:-0} + 1))
        if ((listed)); then
            echo "ok $rel (but it is listed in tests/packetdrill/freebsd-expected-failures.txt: remove it there)"
            unexpected=$((unexpected + 1))
        else
            echo "ok $rel"
        fi
    else
        failed=$((failed + 1))
        CAT_FAIL[$cat]=$((${CAT_FAIL[$cat]:-0} + 1))
        err=$(first_error "$WORK/out" "$rc")
        ((rc == 124)) && err="timed out after ${PER_SCRIPT_TIMEOUT}s; $err"
        if ((listed)); then
            CAT_LISTED[$cat]=$((${CAT_LISTED[$cat]:-0} + 1))
            echo "FAIL $rel: $err (expected: listed)"
        else
            echo "FAIL $rel: $err"
            unexpected=$((unexpected + 1))
        fi
    fi
done

for cat in own secure insecure neutral; do
    p=${CAT_PASS[$cat]:-0} f=${CAT_FAIL[$cat]:-0} l=${CAT_LISTED[$cat]:-0}
    ((p + f == 0)) && continue
    case $cat in
        own) echo "our own scripts: $p passed, $f failed" ;;
        neutral) echo "freebsd neutral: $p passed, $f failed ($l of them listed as expected)" ;;
        *) echo "freebsd -$cat-: $p passed, $f failed ($l of them listed as expected)" ;;
    esac
done
echo "$passed passed, $failed failed"
if ((unexpected > 0)); then
    echo "$PROG: $unexpected script(s) did not do what was expected (unlisted failures, or listed scripts that pass)" >&2
    exit 1
fi
