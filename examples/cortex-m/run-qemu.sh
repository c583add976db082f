#!/usr/bin/env bash
# Builds the firmware (release) in its variants, runs each under qemu's lm3s6965evb (Cortex-M3)
# with semihosting, checks what it printed with check_output.py (prometheus_client's parsers,
# exact readiness bodies), and reports flash and static RAM with arm-none-eabi-size.
# Exits non-zero on any build failure, qemu failure or timeout, or output mismatch.
#
# Needs: rustup target thumbv7m-none-eabi, qemu-system-arm, binutils-arm-none-eabi,
# python3 with prometheus_client, python-snappy and protobuf (the remote write and protobuf checks).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
elf="$CARGO_TARGET_DIR/thumbv7m-none-eabi/release/diag-cortex-m"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

run() { # name, cargo feature flags...
    local name="$1"
    shift
    echo "== firmware ($name): cargo build --release $*"
    cargo build --release "$@"
    local rc=0
    timeout 60 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic \
        -semihosting-config enable=on,target=native -kernel "$elf" \
        </dev/null >"$out/$name.out" 2>"$out/$name.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "qemu exited with $rc (124 = timed out); stdout and stderr follow" >&2
        cat "$out/$name.out" "$out/$name.err" >&2
        exit 1
    fi
    local check=()
    case "$*" in *remote-write*) check+=(--remote-write) ;; esac
    case "$*" in *protobuf*) check+=(--protobuf) ;; esac
    python3 check_output.py "$out/$name.out" "${check[@]}"
    # Flash = .vector_table + .text + .rodata + .data (text + data); static RAM = .data + .bss.
    arm-none-eabi-size "$elf"
    arm-none-eabi-size "$elf" | awk 'NR == 2 {
        printf "%s: flash %d bytes (%.1f KiB), static RAM %d bytes (%.1f KiB)\n", name,
            $1 + $2, ($1 + $2) / 1024, $2 + $3, ($2 + $3) / 1024 }' name="$name"
}

# The metrics-and-readiness build's budget: 32 KiB of flash, 8 KiB of RAM (static RAM plus the
# stack the firmware measured). Fails the run when a change outgrows it.
within_budget() { # name
    local name="$1" stack
    stack="$(sed -n 's/^stack \([0-9]*\) of [0-9]*$/\1/p' "$out/$name.out")"
    arm-none-eabi-size "$elf" | awk 'NR == 2 {
        flash = $1 + $2; ram = $2 + $3 + stack
        printf "%s: budget: flash %d of 32768 bytes, RAM %d of 8192 bytes (static %d + stack %d)\n",
            name, flash, ram, $2 + $3, stack
        if (flash > 32768 || ram > 8192) { print name ": over budget" > "/dev/stderr"; exit 1 } }' \
        name="$name" stack="${stack:?the firmware printed no stack use}"
}

run "http connection handler"
run "http connection handler + protobuf" --features protobuf
run "Service + Body::fill" --no-default-features
within_budget "Service + Body::fill"
run "Service + Body::fill + remote write" --no-default-features --features remote-write
