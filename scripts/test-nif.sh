#!/usr/bin/env bash
# Builds the test-only NIF (native/tools/hb_beamr_test_nif) and prints its
# path without the `.so', for test/hb_beamr_test_nif.erl. Not part of the
# shipping build (scripts/build-nif.sh): it never lands in priv/.
set -euo pipefail
# scripts/asan.sh runs the suites with libasan preloaded; cargo must not inherit it.
unset LD_PRELOAD
cd "$(dirname "$0")/.."
. scripts/cargo-env.sh
lib=$(cargo_artifact libhb_beamr_test_nif.so cargo build --release --locked -q -p hb_beamr_test_nif)
printf '%s\n' "${lib%.so}"
