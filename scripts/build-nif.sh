#!/usr/bin/env bash
# Builds the Rust NIFs (release) into priv/, where hb_beamr loads them from:
#   priv/hb_beamr_nif.so           the runtime (always)
#   priv/hb_beamr_compiler_nif.so  the AOT compiler (only where LLVM 19 is
#                                  installed; hb_beamr:compile/1,2 answers
#                                  {error, compiler_unavailable} without it)
# rebar3 runs this before compiling. HB_BEAMR_NO_COMPILER=1 skips the compiler.
# HB_BEAMR_SANITIZER=address builds the runtime NIF (Rust and WAMR's C) with
# AddressSanitizer instead, for scripts/asan.sh; beam must then be started
# with LD_PRELOAD of gcc's libasan.
set -euo pipefail
# scripts/asan.sh runs rebar3 with libasan preloaded; cargo must not inherit it.
unset LD_PRELOAD
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "build-nif: cargo is not installed" >&2; exit 1; }

install_lib() {
    mkdir -p priv
    install -m 0755 "$2/lib$1.so" "priv/$1.so.tmp"
    mv -f "priv/$1.so.tmp" "priv/$1.so"
}

if [ "${HB_BEAMR_SANITIZER:-}" = "address" ]; then
    . scripts/asan-env.sh
    asan_cargo build --release -p hb_beamr_nif
    install_lib hb_beamr_nif "target/asan/$asan_host/release"
    exit 0
fi

cargo build --release --locked -p hb_beamr_nif
install_lib hb_beamr_nif target/release

if [ "${HB_BEAMR_NO_COMPILER:-}" != "1" ] && { command -v "${LLVM_CONFIG:-llvm-config-19}" >/dev/null || command -v llvm-config >/dev/null; }; then
    cargo build --release --locked -p hb_beamr_compiler
    install_lib hb_beamr_compiler_nif target/release
else
    echo "build-nif: no llvm-config (LLVM 19): building without the AOT compiler" >&2
    rm -f priv/hb_beamr_compiler_nif.so
fi
