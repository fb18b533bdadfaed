#!/usr/bin/env bash
# Builds the Rust NIFs (release) into priv/, where hb_beamr loads them from:
#   priv/hb_beamr_nif.so           the runtime (always)
#   priv/hb_beamr_compiler_nif.so  the AOT compiler (only where LLVM 19 is
#                                  installed; hb_beamr:compile/1,2 answers
#                                  {error, compiler_unavailable} without it)
# rebar3 runs this before compiling. HB_BEAMR_NO_COMPILER=1 skips the compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "build-nif: cargo is not installed" >&2; exit 1; }

install_lib() {
    mkdir -p priv
    install -m 0755 "target/release/lib$1.so" "priv/$1.so.tmp"
    mv -f "priv/$1.so.tmp" "priv/$1.so"
}

cargo build --release --locked -p hb_beamr_nif
install_lib hb_beamr_nif

if [ "${HB_BEAMR_NO_COMPILER:-}" != "1" ] && { command -v "${LLVM_CONFIG:-llvm-config-19}" >/dev/null || command -v llvm-config >/dev/null; }; then
    cargo build --release --locked -p hb_beamr_compiler
    install_lib hb_beamr_compiler_nif
else
    echo "build-nif: no llvm-config (LLVM 19): building without the AOT compiler" >&2
    rm -f priv/hb_beamr_compiler_nif.so
fi
