#!/usr/bin/env bash
# Rebuilds every test/*.wasm from its test/*.wat source with wabt's wat2wasm.
# The generated files are kept in git so the reference's examples run as-is.
#   scripts/build-fixtures.sh           rebuild them in place
#   scripts/build-fixtures.sh --check   fail if a committed .wasm differs from its source
set -euo pipefail
cd "$(dirname "$0")/../test"
command -v wat2wasm >/dev/null || { echo "build-fixtures: wat2wasm (wabt) is not installed" >&2; exit 1; }
check=${1:-}
out=.
if [ "$check" = "--check" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
status=0
for wat in *.wat; do
    wasm="${wat%.wat}.wasm"
    wat2wasm --enable-all --disable-simd "$wat" -o "$out/$wasm"
    if [ "$check" = "--check" ]; then
        if ! cmp -s "$out/$wasm" "$wasm"; then
            echo "build-fixtures: test/$wasm is not what test/$wat builds; run scripts/build-fixtures.sh" >&2
            status=1
        fi
    else
        echo "built test/$wasm"
    fi
done
[ "$check" = "--check" ] && [ $status -eq 0 ] && echo "build-fixtures: every test/*.wasm matches its source"
exit $status
