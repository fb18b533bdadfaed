# Sourced by the build scripts: asks cargo where things are, so that builds
# honour CARGO_TARGET_DIR (and build.target-dir in a cargo config) instead of
# assuming target/.
#   cargo_artifact FILE CMD...  runs CMD (a `cargo build` command line, to
#                               which it adds --message-format) and prints the
#                               path cargo reports for the artifact named FILE
#                               (libhb_beamr_nif.so, hb_beamr_fuzzgen, ...)
#   cargo_target_dir            prints the workspace's target directory
cargo_artifact() {
    local file=$1 out path
    shift
    out=$("$@" --message-format=json-render-diagnostics) || return 1
    path=$(printf '%s\n' "$out" | grep '"reason":"compiler-artifact"' \
        | grep -o "\"[^\"]*/$file\"" | tail -n 1 | tr -d '"')
    [ -n "$path" ] || { echo "cargo did not report building $file" >&2; return 1; }
    printf '%s\n' "$path"
}

cargo_target_dir() {
    cargo metadata --format-version 1 --no-deps --locked \
        | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4
}
