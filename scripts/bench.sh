#!/usr/bin/env bash
# `make bench`: builds the library, the baseline NIF (native/tools/hb_beamr_bench)
# and the native/wasmtime runner (native/tools/hb_beamr_bench_native), then runs
# erlang/hb_beamr_bench.erl, which prints the table and writes
# docs/results/bench.md. See that file for what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --quiet
. scripts/cargo-env.sh
rebar3 compile >/dev/null
build=(cargo build --release --locked -p hb_beamr_bench)
HB_BEAMR_BENCH_NIF=$(cargo_artifact libhb_beamr_bench_nif.so "${build[@]}")
export HB_BEAMR_BENCH_NIF
# The native/wasmtime runner (a wasmtime build) only for the compute rows:
# not when HB_BEAMR_BENCH_ONLY leaves them out (e.g. `metering').
only=${HB_BEAMR_BENCH_ONLY:-}
if [ -z "$only" ] || [[ ",$only," == *,compute,* ]]; then
    build=(cargo build --release --locked -p hb_beamr_bench_native)
    HB_BEAMR_BENCH_NATIVE=$(cargo_artifact hb_beamr_bench_native "${build[@]}")
    export HB_BEAMR_BENCH_NATIVE
fi
ERL_LIBS="$PWD/_build/default/lib${ERL_LIBS:+:$ERL_LIBS}" escript erlang/hb_beamr_bench.erl
