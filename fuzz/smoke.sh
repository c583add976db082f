#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time; fails on any finding (crash,
# failed check, leak, timeout, out-of-memory). Needs nightly and cargo-fuzz:
#   rustup toolchain install nightly && cargo +nightly install cargo-fuzz --locked
# Env: FUZZ_SECONDS (default 60) per target; FUZZ_TARGETS (default: all, space-separated);
# FUZZ_JOBS (default 1) parallel libFuzzer jobs per target; FUZZ_PARALLEL (default 1) targets
# run at once (each on one core: 2 on a 2-core machine halves the wall time).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-1}"
at_once="${FUZZ_PARALLEL:-1}"
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"

cargo +nightly fuzz build -O

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Runs one target on a scratch copy of its checked-in seeds (a run never changes the
# repository); its log is `$scratch/$target.log`, its status `$scratch/$target.status`.
run() {
    local target="$1" work="$scratch/$1.corpus" log="$scratch/$1.log"
    mkdir -p "$work"
    cp -r "corpus/$target/." "$work/" 2>/dev/null || true
    local parallel=()
    if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
    local status=0
    cargo +nightly fuzz run -O "$target" "$work" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${parallel[@]}" >"$log" 2>&1 || status=$?
    echo "$status" >"$scratch/$target.status"
}

report() {
    local target="$1" log="$scratch/$1.log"
    echo "== fuzz $target for ${seconds}s (seeds: $(ls "corpus/$target" 2>/dev/null | wc -l))"
    if [ "$(cat "$scratch/$target.status")" != 0 ]; then
        tail -n 60 "$log"
        echo "FAIL: fuzz target $target found a problem (artifacts in fuzz/artifacts/$target)"
        return 1
    fi
    grep -E '^(#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" | tail -n 3 || true
}

batch=()
for target in $targets; do
    batch+=("$target")
    if [ "${#batch[@]}" -ge "$at_once" ]; then
        for t in "${batch[@]}"; do run "$t" & done
        wait
        for t in "${batch[@]}"; do report "$t"; done
        batch=()
    fi
done
if [ "${#batch[@]}" -gt 0 ]; then
    for t in "${batch[@]}"; do run "$t" & done
    wait
    for t in "${batch[@]}"; do report "$t"; done
fi
echo "fuzz smoke: all targets ran ${seconds}s without a finding"
