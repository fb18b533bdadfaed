#!/usr/bin/env bash
# hb_beamr's stress run: generates modules (wasm-smith, random and mutated
# bytes) and runs erlang/hb_beamr_stress.erl over them, printing cases,
# crashes, hangs and failures per section.
#   scripts/stress.sh fast   (CI: about 400 modules, 2,000 leak cycles)
#   scripts/stress.sh long   (by hand: 4,000 modules, 10,000 leak cycles)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-fast}
case "$profile" in
    fast) modules=400 ;;
    long) modules=4000 ;;
    *) echo "usage: scripts/stress.sh fast|long" >&2; exit 2 ;;
esac
seed=${HB_BEAMR_STRESS_SEED:-1}
dir=_build/stress/fuzz-$profile-$seed
. scripts/cargo-env.sh
rebar3 compile >/dev/null
fuzzgen=$(cargo_artifact hb_beamr_fuzzgen cargo build --release --locked -p hb_beamr_fuzzgen)
rm -rf "$dir"
"$fuzzgen" "$dir" "$modules" "$seed" test/fixtures/*.wasm
ERL_LIBS="$PWD/_build/default/lib" escript erlang/hb_beamr_stress.erl "$dir" "$profile"
