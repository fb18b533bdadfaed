# Sourced by scripts/build-nif.sh and scripts/asan.sh: `asan_cargo ARGS...`
# runs cargo with Rust (-Zsanitizer=address) and the C code of build scripts
# (-fsanitize=address) instrumented, into asan/$asan_host under cargo's
# target directory (target/, or CARGO_TARGET_DIR).
# -Zsanitizer is unstable; RUSTC_BOOTSTRAP lets the stable toolchain take it.
# The explicit --target keeps it off build scripts and proc macros.
. "$(dirname "${BASH_SOURCE[0]}")/cargo-env.sh"
asan_host=$(rustc -vV | sed -n 's/^host: //p')
asan_target_dir="$(cargo_target_dir)/asan"
asan_cargo() {
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" \
        CFLAGS="-fsanitize=address -fno-omit-frame-pointer" \
        cargo "$@" --locked --target "$asan_host" --target-dir "$asan_target_dir"
}
