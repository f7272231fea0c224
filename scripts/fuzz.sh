#!/usr/bin/env bash
# fuzz.sh: run synack's cargo-fuzz targets for a bounded time each.   scripts/fuzz.sh [SECONDS]
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TARGETS=(packet_input segment_sequence)

usage() {
    cat <<EOF
Usage: $PROG [SECONDS] [TARGET...]

Run each cargo-fuzz target in fuzz/ for SECONDS (default 60): ${TARGETS[*]}.
Installs cargo-fuzz from crates.io if it is missing. Works on the stable toolchain:
RUSTC_BOOTSTRAP=1 lets it take the unstable flags cargo-fuzz passes, and '-s none'
builds without a sanitizer (no nightly needed, none can be downloaded in CI).

The corpus grows in fuzz/corpus/TARGET (not committed), seeded from fuzz/seeds/TARGET
and fuzz/regressions/TARGET (committed). A crash stops that target, is saved under
fuzz/artifacts/TARGET/, and makes the exit status nonzero; the other targets still run.
Reproduce one with:  RUSTC_BOOTSTRAP=1 cargo fuzz run -s none TARGET FILE

  -h, --help   show this help
EOF
}

SECONDS_EACH=60
case ${1:-} in
    -h | --help) usage; exit 0 ;;
    '') ;;
    *[!0-9]*) echo "$PROG: error: SECONDS must be a number, not '$1' (see $PROG --help)" >&2; exit 2 ;;
    *) SECONDS_EACH=$1 ;;
esac
shift || true
if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
fi

# Under sudo, root usually has no Rust toolchain of its own: use the invoking user's.
if [[ $EUID -eq 0 && -n ${SUDO_USER:-} && $SUDO_USER != root ]] && ! command -v cargo >/dev/null; then
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    export PATH="$PATH:$user_home/.cargo/bin"
    [[ -z ${RUSTUP_HOME:-} && ! -d $HOME/.rustup && -d $user_home/.rustup ]] && export RUSTUP_HOME="$user_home/.rustup"
fi
command -v cargo >/dev/null || { echo "$PROG: error: cargo not found on PATH" >&2; exit 1; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "$PROG: cargo-fuzz is missing: cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi

cd "$REPO"
export RUSTC_BOOTSTRAP=1
echo "$PROG: $(cargo fuzz --version), $(rustc --version), ${SECONDS_EACH}s per target"
echo "$PROG: building ${TARGETS[*]}"
cargo fuzz build -s none

FAILED=()
SUMMARY=()
for t in "${TARGETS[@]}"; do
    corpus=fuzz/corpus/$t
    mkdir -p "$corpus"
    dirs=("$corpus" "fuzz/seeds/$t")
    [[ -d fuzz/regressions/$t ]] && dirs+=("fuzz/regressions/$t")
    log=$(mktemp)
    echo
    echo "== $t: ${SECONDS_EACH}s, corpus ${dirs[*]}"
    rc=0
    # Bounded twice over: libFuzzer's own clock, and a hard timeout in case it hangs.
    timeout --kill-after=30 $((SECONDS_EACH + 120)) \
        cargo fuzz run -s none "$t" "${dirs[@]}" -- \
        -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    grep -E '^#[0-9]+ +(INITED|DONE)|^Done|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    if ((rc != 0)); then
        echo "---- $t FAILED (exit $rc):"
        grep -m1 -A2 'panicked at' "$log" || true
        echo "---- the end of its log:"
        tail -n 40 "$log"
        FAILED+=("$t")
        SUMMARY+=("FAIL  $t (exit $rc; see fuzz/artifacts/$t/)")
    else
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
        SUMMARY+=("PASS  $t: ${execs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?}")
    fi
    rm -f "$log"
done

if [[ $EUID -eq 0 && -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    chown -R --from=0 "$SUDO_USER": fuzz/target fuzz/corpus fuzz/artifacts 2>/dev/null || true
fi

echo
printf '%s\n' "${SUMMARY[@]}"
if ((${#FAILED[@]})); then
    echo "$PROG: FAILED: ${FAILED[*]}"
    exit 1
fi
echo "$PROG: no crash in ${TARGETS[*]}"
