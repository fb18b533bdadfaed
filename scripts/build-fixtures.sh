#!/usr/bin/env bash
# Rebuilds every test/fixtures/*.wasm and test/fixtures/wasi/*.wasm from its .wat source with
# wabt's wat2wasm, or from its test/fixtures/wasi/*.c source with clang and Debian's
# wasi-libc (WASI command modules, for hb_beamr_wasi).
# The generated files are kept in git so the reference's examples run as-is.
#   scripts/build-fixtures.sh           rebuild them in place
#   scripts/build-fixtures.sh --check   fail if a committed .wasm differs from its source
set -euo pipefail
cd "$(dirname "$0")/../test/fixtures"
command -v wat2wasm >/dev/null || { echo "build-fixtures: wat2wasm (wabt) is not installed" >&2; exit 1; }
[ -f /usr/lib/wasm32-wasi/libc.a ] || { echo "build-fixtures: wasi-libc is not installed (scripts/setup.sh)" >&2; exit 1; }
check=${1:-}
# Fixtures live in test/fixtures/ only: one left in test/ (a branch from
# before the move) would be neither built nor found by fixture/1.
stray=$(cd .. && ls -d -- *.wat *.wasm wasi 2>/dev/null || true)
[ -z "$stray" ] || { echo "build-fixtures: move these into test/fixtures/: $(echo $stray)" >&2; exit 1; }
out=.
if [ "$check" = "--check" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
status=0
mkdir -p "$out/wasi"
build() {
    case "$1" in
        *.wat) wat2wasm --enable-all --disable-simd "$1" -o "$out/$2" ;;
        # -s: no name section, so the bytes do not depend on the build directory.
        *.c) clang --target=wasm32-wasi --sysroot=/usr -O2 -s "$1" -o "$out/$2" ;;
    esac
}
for src in *.wat wasi/*.wat wasi/*.c; do
    wasm="${src%.*}.wasm"
    build "$src" "$wasm"
    if [ "$check" = "--check" ]; then
        if ! cmp -s "$out/$wasm" "$wasm"; then
            echo "build-fixtures: test/fixtures/$wasm is not what test/fixtures/$src builds; run scripts/build-fixtures.sh" >&2
            status=1
        fi
    else
        echo "built test/fixtures/$wasm"
    fi
done
[ "$check" = "--check" ] && [ $status -eq 0 ] && echo "build-fixtures: every test/fixtures/*.wasm and test/fixtures/wasi/*.wasm matches its source"
exit $status
