#!/usr/bin/env bash
# `make integration`: hb_beamr as another project's dependency, set up as the
# README's "From another rebar3 project" and "Elixir" sections say, in a
# temporary directory beside a link `hb_beamr` to this checkout:
#   rebar3  `rebar3 new lib my_app`, examples/rebar3_dep on top, this checkout
#           in _checkouts/; `rebar3 eunit` (fac(5.0) = 120.0); the README's
#           Erlang example typed into `rebar3 shell`, here and in hb_beamr.
#   mix     `mix new my_app`, examples/mix_dep on top (a path dependency,
#           manager: :rebar3, the system's rebar3 through `mix local.rebar`);
#           `mix test`, then the README's `iex -S mix` session.
#   quiet   `erl -noshell` and `mix run` print nothing when an instance
#           starts; with log_events on, erl prints the event.
#   git     a rebar3 project with hb_beamr as a git dependency (a snapshot of
#           this checkout's files) built with CARGO_TARGET_DIR set; the NIF
#           must come from there.
# The first two build hb_beamr in this checkout, so they reuse its cargo
# build. The git one builds the dependency's copy into
# <cargo target dir>/integration (kept between runs), without the AOT
# compiler (HB_BEAMR_NO_COMPILER=1), to stay fast.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/cargo-env.sh"
target_dir="$(cd "$root" && cargo_target_dir)/integration"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$root" "$tmp/hb_beamr"
# A mix home of its own: no Hex here; mix runs the system's rebar3.
export MIX_HOME="$tmp/mix-home"

say() { echo "integration: $*"; }
fail() { echo "integration: FAIL: $*" >&2; exit 1; }
# expect_quiet WHAT OUTPUT: OUTPUT must be empty.
expect_quiet() { [ -z "$2" ] || fail "$1 printed:"$'\n'"$2"; }
# no_log_lines WHAT OUTPUT: OUTPUT has no log line ([debug] ..., event: ...).
no_log_lines() {
    ! grep -Eq '\[(debug|info|notice|warning|error)\]|event' <<<"$2" \
        || fail "$1 logged:"$'\n'"$2"
}

# The README's Erlang example, as one erl -eval; any failure is exit 1.
erl_call='{ok, Wasm} = file:read_file("test/test.wasm"),
    {ok, WASM, _, _} = hb_beamr:start(Wasm),
    {ok, [120.0]} = hb_beamr:call(WASM, "fac", [5.0]),
    ok = hb_beamr:stop(WASM)'
# The switch for events in erl (docs/api.md, "Logging").
erl_events_on='_ = application:load(hb_beamr),
    application:set_env(hb_beamr, log_events, true),
    logger:set_application_level(hb_beamr, debug),
    ok = logger:add_handler_filter(default, hb_beamr,
        {fun logger_filters:domain/2, {log, sub, [hb_beamr]}})'
erl_run() { # erl_run EXPRS: runs EXPRS in `erl -noshell` on my_app's code path
    erl -noshell -pa _build/default/lib/*/ebin _build/default/checkouts/*/ebin -eval "
        try $1, logger_std_h:filesync(default), halt(0)
        catch C:R -> io:format(\"~p:~p~n\", [C, R]), halt(1) end."
}

# new_rebar3_app DIR: `rebar3 new lib my_app` in DIR with examples/rebar3_dep
# copied over, and test/fixtures/test.wasm as test/test.wasm.
new_rebar3_app() {
    mkdir -p "$1"
    (cd "$1" && rebar3 new lib my_app >/dev/null)
    cp -R "$root/examples/rebar3_dep/." "$1/my_app/"
    cp "$root/test/fixtures/test.wasm" "$1/my_app/test/"
}

say "README: shows the examples' files as they are"
readme=$(cat "$root/README.md")
for f in rebar3_dep/rebar.config rebar3_dep/test/my_app_tests.erl; do
    [[ "$readme" == *"$(cat "$root/examples/$f")"* ]] || fail "README.md does not show examples/$f"
done
[[ "$readme" == *'{:hb_beamr, path: "../hb_beamr", manager: :rebar3}'* ]] \
    && grep -qF '{:hb_beamr, path: "../hb_beamr", manager: :rebar3}' "$root/examples/mix_dep/mix.exs" \
    || fail "README.md and examples/mix_dep/mix.exs differ on the dependency"

say "rebar3 project, hb_beamr in _checkouts/"
new_rebar3_app "$tmp/rebar3"
cd "$tmp/rebar3/my_app"
mkdir _checkouts
ln -s "$tmp/hb_beamr" _checkouts/hb_beamr
rebar3 compile || fail "rebar3 compile in the rebar3 project"
rebar3 eunit || fail "rebar3 eunit in the rebar3 project"

say "quiet: an instance started in erl -noshell prints nothing"
expect_quiet "erl -noshell" "$(erl_run "$erl_call" 2>&1)"
say "events: with log_events on, erl prints the event"
out=$(erl_run "$erl_events_on, $erl_call" 2>&1)
grep -q 'event: {wasm_init_success,' <<<"$out" || fail "no event with log_events on:"$'\n'"$out"

# rebar3_shell_session WASM: types the README's Erlang example into
# `rebar3 shell` in the current directory, reading test.wasm from WASM
# (test/test.wasm in my_app, test/fixtures/test.wasm in hb_beamr).
rebar3_shell_session() {
    local out
    out=$(python3 "$root/scripts/shell-session.py" 120 rebar3 shell <<EOF
{ok, Wasm} = file:read_file("$1"),
{ok, WASM, Imports, Exports} = hb_beamr:start(Wasm),
%% Imports = [], Exports = [{func, <<"fac">>, <<"(F)F">>}]
{ok, [120.0]} = hb_beamr:call(WASM, "fac", [5.0]),
ok = hb_beamr:stop(WASM).
{Imports, Exports}.
EOF
    ) || fail "rebar3 shell session in $PWD:"$'\n'"$out"
    grep -q '{\[\],\[{func,<<"fac">>,<<"(F)F">>}\]}' <<<"$out" && ! grep -q exception <<<"$out" \
        || fail "rebar3 shell session in $PWD:"$'\n'"$out"
}
say "rebar3 shell: the README's Erlang example, typed (my_app, then hb_beamr)"
rebar3_shell_session test/test.wasm
(cd "$root" && rebar3_shell_session test/fixtures/test.wasm)

say "mix project, {:hb_beamr, path: \"../hb_beamr\", manager: :rebar3}"
cd "$tmp"
mix local.rebar rebar3 "$(command -v rebar3)" --force
mix new my_app >/dev/null
cp -R "$root/examples/mix_dep/." my_app/
cp "$root/test/fixtures/test.wasm" my_app/test/
cd my_app
mix test || fail "mix test in the mix project"

say "quiet: an instance started in mix run logs nothing"
# mix recompiles a rebar3 path dependency on each run (the build's own lines);
# what must not appear is a log line.
out=$(mix run -e '
    {:ok, wasm, _, _} = :hb_beamr.start(File.read!("test/test.wasm"))
    {:ok, [120.0]} = :hb_beamr.call(wasm, ~c"fac", [5.0])
    :ok = :hb_beamr.stop(wasm)
    IO.puts("mix run: ok")' 2>&1)
grep -qx 'mix run: ok' <<<"$out" || fail "mix run:"$'\n'"$out"
no_log_lines "mix run" "$out"

say "iex -S mix: the README's session"
out=$(iex -S mix 2>&1 <<'EOF'
{:ok, wasm, _imports, _exports} = :hb_beamr.start(File.read!("test/test.wasm"))
:hb_beamr.call(wasm, ~c"fac", [5.0])
:hb_beamr.call(wasm, "fac", [5.0])
:hb_beamr.stop(wasm)
EOF
)
[ "$(grep -c '{:ok, \[120.0\]}' <<<"$out")" -eq 2 ] || fail "iex session:"$'\n'"$out"
no_log_lines "iex -S mix" "$out"

say "rebar3 project, hb_beamr as a git dependency, CARGO_TARGET_DIR=$target_dir"
snapshot="$tmp/hb_beamr-snapshot"
mkdir "$snapshot"
# This checkout's files as they are (committed or not), ignored ones left out.
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -C "$snapshot" -xf -
else
    tar -C "$root" --exclude=./_build --exclude=./target --exclude='./priv/*.so' -cf - . \
        | tar -C "$snapshot" -xf -
fi
git -C "$snapshot" init -q -b main
git -C "$snapshot" add -A
git -C "$snapshot" -c user.name=integration -c user.email=integration@localhost \
    commit -qm snapshot
new_rebar3_app "$tmp/git"
cd "$tmp/git/my_app"
sed -i "s|^{deps, \[hb_beamr\]}\.|{deps, [{hb_beamr, {git, \"file://$snapshot\", {branch, \"main\"}}}]}.|" rebar.config
grep -q "file://$snapshot" rebar.config || fail "could not set the git dependency"
CARGO_TARGET_DIR="$target_dir" HB_BEAMR_NO_COMPILER=1 rebar3 eunit \
    || fail "rebar3 eunit with the git dependency and CARGO_TARGET_DIR"
[ -e "$target_dir/release/libhb_beamr_nif.so" ] || fail "nothing built in $target_dir"
[ ! -e _build/default/lib/hb_beamr/target ] || fail "cargo built into the dependency's target/"
cmp -s "$target_dir/release/libhb_beamr_nif.so" _build/default/lib/hb_beamr/priv/hb_beamr_nif.so \
    || fail "the dependency's priv/hb_beamr_nif.so is not the one built in $target_dir"

say "passed (rebar3 checkout, mix path, quiet erl/mix/iex, events, git + CARGO_TARGET_DIR)"
