#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time; fails on any finding (crash,
# failed check, leak, timeout, out-of-memory). Needs nightly and cargo-fuzz:
#   rustup toolchain install nightly && cargo +nightly install cargo-fuzz --locked
# Env: FUZZ_SECONDS (default 60) per target; FUZZ_TARGETS (default: all, space-separated);
# FUZZ_JOBS (default 1) parallel libFuzzer jobs per target.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-1}"
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"

cargo +nightly fuzz build -O

for target in $targets; do
    seeds="corpus/$target"
    # Work on a scratch copy of the checked-in seeds, so a run never changes the repository.
    work="$(mktemp -d)"
    trap 'rm -rf "$work" "$work.log"' EXIT
    cp -r "$seeds/." "$work/" 2>/dev/null || true
    echo "== fuzz $target for ${seconds}s (seeds: $(ls "$seeds" 2>/dev/null | wc -l))"
    log="$work.log"
    parallel=()
    if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
    if ! cargo +nightly fuzz run -O "$target" "$work" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${parallel[@]}" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "FAIL: fuzz target $target found a problem (artifacts in fuzz/artifacts/$target)"
        exit 1
    fi
    grep -E '^(#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" | tail -n 3
    rm -rf "$work" "$log"
    trap - EXIT
done
echo "fuzz smoke: all targets ran ${seconds}s without a finding"
