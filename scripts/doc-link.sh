#!/usr/bin/env bash
# Run by rebar3 after `rebar3 edoc` (rebar.config's post_hooks), in the app's
# directory. edoc's chunks doclet writes the doc chunks to doc/chunks/; this
# links doc/ into the app's build directories too (_build/PROFILE/lib/hb_beamr,
# each profile built so far: `rebar3 edoc' builds in the docs profile), so
# that ebin/../doc/chunks holds them. erl's h/2 finds them either way
# (through the modules' source path); Elixir's (IEx's h, Code.fetch_docs) only
# next to ebin/.
set -euo pipefail
[ -d doc/chunks ] || exit 0
here=$(pwd -P)
build=${REBAR_BUILD_DIR:-_build/docs}
for out in "${build%/*}"/*/lib/hb_beamr; do
    [ -d "$out/ebin" ] || continue
    [ "$(cd "$out" && pwd -P)" = "$here" ] && continue   # built in place (a git dependency)
    ln -sfn "$here/doc" "$out/doc"
done
