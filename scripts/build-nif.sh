#!/usr/bin/env bash
# Builds the Rust NIF (release) and puts it where hb_beamr_nif loads it from:
# priv/hb_beamr_nif.so. rebar3 runs this before compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "build-nif: cargo is not installed" >&2; exit 1; }
cargo build --release --locked -p hb_beamr_nif
mkdir -p priv
install -m 0755 target/release/libhb_beamr_nif.so priv/hb_beamr_nif.so.tmp
mv -f priv/hb_beamr_nif.so.tmp priv/hb_beamr_nif.so
