#!/usr/bin/env bash
# Differential fuzz run of deterministic floats: float-heavy wasm-smith
# modules with NaN payloads (native/tools/hb_beamr_nan_fuzz), canonicalized, run
# in wasm mode, AOT for the host CPU and AOT generic; results and memory
# compared bit for bit (erlang/hb_beamr_nan_fuzz.erl). Fails on any divergence.
#   scripts/nan-fuzz.sh fast            (CI, part of make stress: 500 modules)
#   scripts/nan-fuzz.sh long            (by hand: 10,000 modules)
#   scripts/nan-fuzz.sh long wasmtime   (also against wasmtime with Cranelift's
#                                        NaN canonicalization; builds wasmtime)
# HB_BEAMR_NAN_FUZZ_SEED picks another set of modules (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-fast}
case "$profile" in
    fast) modules=500 ;;
    long) modules=10000 ;;
    *) echo "usage: scripts/nan-fuzz.sh fast|long [wasmtime]" >&2; exit 2 ;;
esac
seed=${HB_BEAMR_NAN_FUZZ_SEED:-1}
dir=_build/nan-fuzz/$profile-$seed
features=()
[ "${2:-}" = "wasmtime" ] && features=(--features wasmtime)
rebar3 compile >/dev/null
cargo build --release --locked -p hb_beamr_nan_fuzz "${features[@]}"
rm -rf "$dir"
target/release/hb_beamr_nan_fuzz generate "$dir" "$modules" "$seed"
ERL_LIBS="$PWD/_build/default/lib" escript erlang/hb_beamr_nan_fuzz.erl "$dir"
if [ "${2:-}" = "wasmtime" ]; then
    target/release/hb_beamr_nan_fuzz wasmtime "$dir"
fi
