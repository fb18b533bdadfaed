# Sourced by scripts/build-nif.sh and scripts/asan.sh: `asan_cargo ARGS...`
# runs cargo with Rust (-Zsanitizer=address) and the C code of build scripts
# (-fsanitize=address) instrumented, into target/asan/$asan_host.
# -Zsanitizer is unstable; RUSTC_BOOTSTRAP lets the stable toolchain take it.
# The explicit --target keeps it off build scripts and proc macros.
asan_host=$(rustc -vV | sed -n 's/^host: //p')
asan_cargo() {
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" \
        CFLAGS="-fsanitize=address -fno-omit-frame-pointer" \
        cargo "$@" --locked --target "$asan_host" --target-dir target/asan
}
