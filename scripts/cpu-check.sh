#!/usr/bin/env bash
# `make cpu-check`: AOT code must only use instructions the CPU it runs on
# has, also where the CPU's *name* implies more (a cloud VM hiding AVX-512
# from a CPU LLVM names `znver4` or `skylake-avx512`).
#
# Runs hb_beamr's compiler (hb_beamr_aotc, the code hb_beamr:compile/2
# runs) and the engine's spec runner under qemu-user, whose emulated CPUs
# have no AVX-512 at all. For each CPU model below it checks the trap is
# real (LLVM names the CPU one that implies AVX-512, the CPU has none),
# compiles the float- and memory-heavy spec suites with `target_cpu =>
# host`, and runs them: one AVX-512 instruction would end the run with
# SIGILL. With the compiler leaving features to the CPU name (as before
# this check existed), it does.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --quiet
command -v qemu-x86_64 >/dev/null || { echo "cpu-check: qemu-x86_64 (qemu-user) is missing" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "cpu-check: x86_64 only; skipped"; exit 0; }
cargo build --release --locked -p hb_beamr_aotc -p hb_beamr_spec
export HB_BEAMR_SPEC_ONLY=f32.wast,f64.wast,f32_cmp.wast,f64_cmp.wast,f32_bitwise.wast,f64_bitwise.wast,conversions.wast,float_exprs.wast,float_misc.wast,float_memory.wast,select.wast,i64.wast,int_exprs.wast,memory_fill.wast,memory_copy.wast
# QEMU models LLVM names after CPUs with AVX-512; TCG emulates none of it.
cpus=${HB_BEAMR_CPU_CHECK_MODELS:-Skylake-Server-v1 Icelake-Server-v6}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
emulated() { qemu-x86_64 -cpu "$cpu" "$@" 2> >(grep -v '^qemu-x86_64: warning' >&2); }
status=0
for cpu in $cpus; do
    emulated target/release/hb_beamr_aotc target host > "$out/host.txt"
    name=$(sed -n 's/^cpu=//p' "$out/host.txt")
    implied=$(target/release/hb_beamr_aotc target "$name" | sed -n 's/^features=//p')
    case ",$implied," in *,+avx512f,*) ;; *)
        echo "cpu-check: $cpu: LLVM names it $name, which implies no AVX-512: nothing to check" >&2
        status=1; continue ;;
    esac
    case "$(sed -n 's/^features=//p' "$out/host.txt")," in *+avx512f,*)
        echo "cpu-check: $cpu: the emulated CPU has AVX-512: nothing to check" >&2
        status=1; continue ;;
    esac
    rm -rf "$out/suite"
    target/release/hb_beamr_spec extract "$out/suite" >/dev/null 2>&1
    emulated target/release/hb_beamr_aotc compile-dir "$out/suite" >/dev/null 2>&1
    if emulated target/release/hb_beamr_spec run "$out/suite" "$out/report.md" aot > "$out/run.txt"; then
        echo "cpu-check: $cpu (LLVM: $name, no AVX-512): $(grep -o '\*\*[0-9]* / [0-9]* / [0-9]*\*\*' "$out/run.txt" | tr -d '*') passed / failed / skipped"
    else
        code=$?
        echo "cpu-check: $cpu (LLVM: $name, no AVX-512): the AOT run failed (exit $code$([ $code -eq 132 ] && echo ': SIGILL, an instruction this CPU lacks'))" >&2
        tail -20 "$out/run.txt" >&2
        status=1
    fi
done
exit $status
