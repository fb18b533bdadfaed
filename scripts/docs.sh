#!/usr/bin/env bash
# `make docs` (CI): builds the API docs with `rebar3 edoc' (EEP 48 doc chunks,
# doc/chunks/*.chunk, git-ignored; rebar.config's edoc_opts) and checks that
# every module has its chunk and that erl's h/2 (code:get_doc/1) and iex's h
# (Code.fetch_docs/1) find hb_beamr:call/3's doc next to the build's ebin/.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "docs: FAIL: $*" >&2; exit 1; }
rebar3 edoc
for src in src/*.erl; do
    chunk="doc/chunks/$(basename "$src" .erl).chunk"
    [ -s "$chunk" ] || fail "no $chunk"
done
ebin=_build/docs/lib/hb_beamr/ebin
[ -s "$ebin/../doc/chunks/hb_beamr.chunk" ] || fail "no doc/chunks next to $ebin"
erl -noshell -pa "$ebin" -eval '
    try
        {ok, {docs_v1, _, erlang, _, _, _, Docs}} = code:get_doc(hb_beamr),
        [_] = [D || {{function, call, 3}, _, _, #{<<"en">> := D}, _} <- Docs],
        halt(0)
    catch C:R -> io:format("~p:~p~n", [C, R]), halt(1)
    end.' || fail "erl: code:get_doc(hb_beamr) has no doc for call/3"
elixir -pa "$ebin" -e '
    {:docs_v1, _, :erlang, _, _, _, docs} = Code.fetch_docs(:hb_beamr)
    [_] = for {{:function, :call, 3}, _, _, %{"en" => d}, _} <- docs, do: d' \
    || fail "elixir: Code.fetch_docs(:hb_beamr) has no doc for call/3"
echo "docs: doc/chunks/ built ($(ls doc/chunks | wc -l) modules); h(hb_beamr, call) and h :hb_beamr.call find them"
