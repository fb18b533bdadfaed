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
# cargo says where it put each library (scripts/cargo-env.sh), so
# CARGO_TARGET_DIR is honoured. Works from any directory: rebar3 runs it in
# hb_beamr's own directory, also when hb_beamr is another project's
# dependency (README: "From another rebar3 project", "Elixir").
set -euo pipefail
# scripts/asan.sh runs rebar3 with libasan preloaded; cargo must not inherit it.
unset LD_PRELOAD
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "build-nif: cargo is not installed" >&2; exit 1; }

. scripts/cargo-env.sh

# install_lib NAME CARGO_BUILD_ARGS...: builds lib NAME and installs it as
# priv/NAME.so.
install_lib() {
    local name=$1 lib
    shift
    lib=$(cargo_artifact "lib$name.so" "$@")
    mkdir -p priv
    install -m 0755 "$lib" "priv/$name.so.tmp"
    mv -f "priv/$name.so.tmp" "priv/$name.so"
}

if [ "${HB_BEAMR_SANITIZER:-}" = "address" ]; then
    . scripts/asan-env.sh
    install_lib hb_beamr_nif asan_cargo build --release -p hb_beamr_nif
    exit 0
fi

install_lib hb_beamr_nif cargo build --release --locked -p hb_beamr_nif

if [ "${HB_BEAMR_NO_COMPILER:-}" = "1" ]; then
    rm -f priv/hb_beamr_compiler_nif.so
elif command -v "${LLVM_CONFIG:-llvm-config-19}" >/dev/null || command -v llvm-config >/dev/null; then
    install_lib hb_beamr_compiler_nif cargo build --release --locked -p hb_beamr_compiler
else
    echo "build-nif: no llvm-config (LLVM 19): building without the AOT compiler" >&2
    rm -f priv/hb_beamr_compiler_nif.so
fi
