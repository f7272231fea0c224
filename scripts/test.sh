#!/usr/bin/env bash
# test.sh: the one command that runs every test.   sudo scripts/test.sh
#
# Root is needed for the real-TUN tests (each makes its own network namespace); without root
# they are skipped, and with CI=true they fail instead. CI runs this through .ci/run.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

usage() {
    cat <<EOF
Usage: sudo $PROG [--no-install] [-- CARGO_TEST_ARGS...]

Run every check and test of synack, from the repository root:
  1. install missing test tools (root only):    scripts/install-deps.sh
  2. formatting:                                cargo fmt --all --check
  3. lints:                                     cargo clippy --all-targets [--no-default-features] -- -D warnings
  4. release build (what the demo runs):        cargo build --release
     examples (the protocol suites' server):   cargo build --examples --all-features
  5. unit, scripted-peer and real-TUN tests:    cargo test --all-targets --all-features --no-fail-fast [ARGS]
     (its output is kept in target/test-output.log; the summary names each failed test)
  6. doc tests (when there is a library):       cargo test --doc
  7. packetdrill (ours + FreeBSD's suite):      scripts/packetdrill.sh
  8. the benchmark's quick run (as root):       scripts/bench.sh --quick
Every step runs even when an earlier one fails; the exit status is nonzero if any failed.

  --no-install   do not install missing tools
  -h, --help     show this help

Run as root (sudo) so the real-TUN tests run. Without root they are skipped, except
under CI=true, where they fail. CI (now: ${CI:-unset}) is passed to the tests as it is.
Arguments after -- go to 'cargo test', e.g.  sudo $PROG -- handshake
EOF
}

INSTALL=1
TEST_ARGS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --no-install) INSTALL=0; shift ;;
        --) shift; TEST_ARGS=("$@"); break ;;
        *) echo "$PROG: error: unknown argument '$1' (see $PROG --help)" >&2; exit 2 ;;
    esac
done

export CI="${CI:-}"
IS_ROOT=0
[[ $EUID -eq 0 ]] && IS_ROOT=1

header() {
    echo
    echo "=============================================================================="
    echo "== $*"
    echo "=============================================================================="
}

# Under sudo, root usually has no Rust toolchain of its own: use the invoking user's.
if ((IS_ROOT)) && [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [[ -n $user_home ]] && ! command -v cargo >/dev/null && [[ -x $user_home/.cargo/bin/cargo ]]; then
        export PATH="$PATH:$user_home/.cargo/bin"
        if [[ -z ${RUSTUP_HOME:-} && ! -d $HOME/.rustup && -d $user_home/.rustup ]]; then
            export RUSTUP_HOME="$user_home/.rustup"
        fi
    fi
    # Files cargo writes as root under target/ would stop the user's own builds later: hand
    # them back on exit.
    if [[ $(stat -c %U "$REPO") == "$SUDO_USER" ]]; then
        trap 'chown -R --from=0 "$SUDO_USER": "$REPO/target" 2>/dev/null || true' EXIT
    fi
fi

RESULTS=()
FAILED=0
# step NAME COMMAND...: run one step with a header, remember whether it passed.
step() {
    local name=$1 rc=0
    shift
    header "$name: $*"
    "$@" || rc=$?
    if ((rc == 0)); then
        RESULTS+=("PASS  $name")
    else
        RESULTS+=("FAIL  $name (exit $rc)")
        FAILED=1
    fi
}

# cargo test's output is also kept here, so the summary can name the tests that failed.
TEST_LOG=${CARGO_TARGET_DIR:-$REPO/target}/test-output.log
run_tests() {
    mkdir -p "$(dirname "$TEST_LOG")"
    cargo test "$@" 2>&1 | tee "$TEST_LOG"
}

# failed_tests LOG: one line per failing test, as TARGET::NAME (lib, bin, doc, or the file
# under tests/), from cargo test's "failures:" lists; a target that failed without such a
# list (it crashed, or was killed) is named alone.
failed_tests() {
    awk '
        function label(t) {
            if (t ~ /^--lib$/ || t ~ /src\/lib\.rs/) return "lib"
            if (t ~ /^--bin/ || t ~ /src\/main\.rs/) return "bin"
            if (t ~ /^--doc$/ || t ~ /^Doc-tests/) return "doc"
            sub(/^-p [^ ]+ /, "", t); sub(/^--test /, "", t); sub(/^tests\//, "", t); sub(/\.rs$/, "", t)
            return t
        }
        /^ *Running / { target = label($2 == "unittests" ? $3 : $2); inlist = 0; next }
        /^ *Doc-tests / { target = "doc"; inlist = 0; next }
        /^failures:$/ { inlist = 1; next }
        inlist && /^    [^ ]+$/ { sub(/^    /, ""); print target "::" $0; named[target] = 1; next }
        { inlist = 0 }
        match($0, /to rerun pass `[^`]+`/) { failed[label(substr($0, RSTART + 15, RLENGTH - 16))] = 1 }
        /^    `[^`]+`$/ { t = $0; gsub(/^ *`|`$/, "", t); failed[label(t)] = 1 }
        END { for (t in failed) if (!(t in named)) print t " (no test named: it crashed or was killed; see the log)" }
    ' "$1"
}

netns_names() { { ip netns list 2>/dev/null || true; } | awk '{print $1}' | sort; }

header "environment"
echo "repository: $REPO"
echo "user:       $(id -un) (uid $EUID)${SUDO_USER:+, via sudo from $SUDO_USER}"
echo "CI:         ${CI:-<unset>}"
if command -v cargo >/dev/null; then
    echo "toolchain:  $(cargo --version), $(rustc --version 2>/dev/null || echo 'rustc ?')"
else
    echo "$PROG: error: cargo not found on PATH ($PATH)." >&2
    echo "$PROG: install Rust (https://rustup.rs) or put it on PATH, e.g. export PATH=\"\$HOME/.cargo/bin:\$PATH\"" >&2
    exit 1
fi
if ((IS_ROOT)); then
    echo "root:       yes, the real-TUN tests will run"
elif [[ $CI == true ]]; then
    echo "root:       NO, and CI=true: the real-TUN tests will FAIL. Run as root: sudo $0"
else
    echo "root:       no: the real-TUN tests will be SKIPPED (each says so). For all tests: sudo $0"
fi

if ((IS_ROOT && INSTALL)); then
    step "install test tools" bash scripts/install-deps.sh
elif ((INSTALL)); then
    header "test tools"
    echo "not root: not installing anything; checking only"
    bash scripts/install-deps.sh --check || echo "(tests that need the missing tools will say so)"
fi

NETNS_BEFORE=$(netns_names)

step "format" cargo fmt --all --check
step "clippy" cargo clippy --all-targets -- -D warnings
step "clippy (without the default async API)" cargo clippy --all-targets --no-default-features -- -D warnings
step "release build" cargo build --release
# The protocol-suite tests run an example server (cargo test compiles examples, but under
# hashed names only).
step "examples" cargo build --examples --all-features
step "tests" run_tests --all-targets --all-features --no-fail-fast ${TEST_ARGS[@]+"${TEST_ARGS[@]}"}
if [[ ${RESULTS[-1]} == FAIL* ]]; then
    failures=$(failed_tests "$TEST_LOG" | sed 's/^/        /')
    RESULTS[-1]+=", output in ${TEST_LOG#"$REPO/"}${failures:+; failed:
$failures}"
fi
step "fuzz (30 s per target)" bash scripts/fuzz.sh 30
if [[ -f src/lib.rs ]] || grep -q '^\[lib\]' Cargo.toml; then
    step "doc tests" cargo test --doc --all-features
fi
# Conformance from outside: packetdrill scripts against the sans-I/O host (no root, no TUN).
# Without ../shared it says why it skipped, and fails under CI=true.
step "packetdrill" bash scripts/packetdrill.sh
# The benchmark is not a test of speed here (its numbers are not judged): the quick run keeps
# it building and working, and fails when synack itself fails a transfer.
if ((IS_ROOT)); then
    step "benchmark (scripts/bench.sh --quick)" bash scripts/bench.sh --quick
elif [[ $CI == true ]]; then
    RESULTS+=("FAIL  benchmark: needs root (TUN devices and namespaces)")
    FAILED=1
else
    echo "benchmark: SKIPPED, it needs root (TUN devices and namespaces): sudo $0"
fi

# Every real-TUN test must remove its namespace, even when it fails (a namespace left behind changes the machine's network).
if ((IS_ROOT)); then
    leaked=$(comm -13 <(echo "$NETNS_BEFORE") <(netns_names) | paste -sd ' ' || true)
    if [[ -n $leaked ]]; then
        header "leftover network namespaces"
        echo "these namespaces appeared during the tests and are still there: $leaked"
        echo "a test did not clean up after itself; remove them with: sudo ip netns del NAME"
        RESULTS+=("FAIL  namespaces cleaned up (left: $leaked)")
        FAILED=1
    fi
fi

header "summary"
printf '%s\n' "${RESULTS[@]}"
if ((FAILED)); then
    echo "$PROG: FAILED (see the sections above)"
    exit 1
fi
if ((!IS_ROOT)); then
    echo "$PROG: passed, but the real-TUN tests were skipped (not root); run: sudo $0"
else
    echo "$PROG: all passed"
fi
