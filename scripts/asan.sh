#!/usr/bin/env bash
# Runs the Rust unit tests, then the NIF test suite (EUnit in wasm and aot modes) and the fast stress run
# against a runtime NIF built with AddressSanitizer (Rust and WAMR's C code).
# Any ASan report aborts the VM, which fails the run. The normal release NIF is
# put back afterwards, whatever the outcome.
#   scripts/asan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
libasan=$(gcc -print-file-name=libasan.so)
[ -f "$libasan" ] || { echo "asan: gcc's libasan.so is missing" >&2; exit 1; }

. scripts/asan-env.sh
echo "asan: cargo test (hb_beamr_core, hb_wamr_sys)"
asan_cargo test -p hb_beamr_core -p hb_wamr_sys

restore() { env -u HB_BEAMR_SANITIZER bash scripts/build-nif.sh >/dev/null; }
trap restore EXIT

export HB_BEAMR_SANITIZER=address
bash scripts/build-nif.sh
[ "$(nm -D priv/hb_beamr_nif.so | grep -c __asan_init)" -gt 0 ] \
    || { echo "asan: priv/hb_beamr_nif.so is not instrumented" >&2; exit 1; }

# beam.smp itself is not instrumented: only the NIF's memory accesses are
# checked. Leak checking is off because the VM exits without freeing its own
# heap; native leaks are measured by the stress run's /proc figures instead.
# Tests that measure RSS skip that check: ASan's quarantine holds freed memory.
export HB_BEAMR_ASAN=1
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0
run() { echo "asan: $*"; env LD_PRELOAD="$libasan" "$@"; }

run rebar3 eunit
run env HB_BEAMR_TEST_MODE=aot rebar3 eunit
# ASan's quarantine holds freed memory, so RSS is no leak measure here.
run env HB_BEAMR_STRESS_IGNORE_RSS=1 bash scripts/stress.sh fast
echo "asan: clean (Rust unit tests, EUnit wasm + aot, fast stress)"
