#!/usr/bin/env bash
# Installs what hb_beamr needs on a Debian machine, when it is missing:
# Erlang/OTP and rebar3 (the library and its tests), Elixir (mix: the
# integration tests), wabt (test fixtures),
# cmake, clang and pkg-config (native builds), LLVM 19 (the AOT compiler;
# the runtime builds and runs without it), wasi-libc, wasm32 compiler-rt and
# lld (the C test programs in test/fixtures/wasi, built for wasm32-wasi), qemu-user
# (make cpu-check runs AOT code on emulated CPUs).
# Rust comes with the machine (rustup); this script only checks for it.
# Safe to run again: it installs nothing that is already there.
set -euo pipefail
quiet=${1:-}
say() { [ "$quiet" = "--quiet" ] || echo "setup: $*"; }

packages=()
need() { command -v "$1" >/dev/null 2>&1 || packages+=("${@:2}"); }
need erl erlang-nox erlang-eunit erlang-dialyzer erlang-edoc erlang-tools
need rebar3 rebar3
need mix elixir
need git git   # the integration tests' git dependency
need python3 python3   # reference-tests.sh; the integration tests' shell session
need wat2wasm wabt
need cmake cmake
need clang clang
need gcc gcc   # also brings libasan (scripts/asan.sh)
need pkg-config pkg-config
need llvm-config-19 llvm-19-dev
need wasm-ld lld
need qemu-x86_64 qemu-user
# Files, not commands: the C library and compiler runtime for wasm32-wasi.
[ -f /usr/lib/wasm32-wasi/libc.a ] || packages+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 \
    || packages+=(libclang-rt-dev-wasm32)
# An Erlang installed without Debian's eunit or dialyzer packages.
if command -v erl >/dev/null 2>&1; then
    erl -noshell -eval 'case code:which(dialyzer) of non_existing -> halt(1); _ -> halt(0) end.' \
        || packages+=(erlang-dialyzer)
    erl -noshell -eval 'case code:which(eunit) of non_existing -> halt(1); _ -> halt(0) end.' \
        || packages+=(erlang-eunit)
fi

if [ ${#packages[@]} -gt 0 ]; then
    say "installing ${packages[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo (Rust) is not installed; install Rust with rustup first" >&2
    exit 1
fi
say "ready: $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().'), $(rebar3 version | cut -d' ' -f1-2), $(cargo --version)"
