#!/usr/bin/env bash
# Rebuilds every test/*.wasm from its test/*.wat source with wabt's wat2wasm.
# The generated files are kept in git so the reference's examples run as-is.
set -euo pipefail
cd "$(dirname "$0")/../test"
command -v wat2wasm >/dev/null || { echo "build-fixtures: wat2wasm (wabt) is not installed" >&2; exit 1; }
for wat in *.wat; do
    wat2wasm --enable-all --disable-simd "$wat" -o "${wat%.wat}.wasm"
    echo "built test/${wat%.wat}.wasm"
done
