%%% @private
%%% @doc The test-only NIF (native/tools/hb_beamr_test_nif): the rewrites
%%% `start/3' and `compile/2' apply, on their own, so that suites can run a
%%% rewritten module as plain bytecode. Built and loaded on first use by
%%% scripts/test-nif.sh; it is not part of the shipping NIFs.
-module(hb_beamr_test_nif).

-export([canonicalize_nans/1, rewrite_eh/1]).

-nifs([canonicalize_nans/1, rewrite_eh/1]).
-on_load(init/0).

init() ->
    Root = filename:dirname(filename:dirname(code:which(hb_beamr))),
    Script = filename:join(project_root(Root), "scripts/test-nif.sh"),
    Out = string:trim(os:cmd("bash " ++ Script ++ " 2>&1")),
    Path = lists:last(string:split(Out, "\n", all)),
    erlang:load_nif(Path, 0).

%% The checkout the suites run in (rebar3 runs them from its root; the
%% beam files are under _build/, the script is not).
project_root(EbinParent) ->
    case filelib:is_file(filename:join(EbinParent, "scripts/test-nif.sh")) of
        true -> EbinParent;
        false -> element(2, file:get_cwd())
    end.

%% @doc The module rewritten as `deterministic => true' rewrites it.
-spec canonicalize_nans(binary()) -> {ok, binary()} | {error, {invalid_wasm, binary()}}.
canonicalize_nans(_Wasm) -> erlang:nif_error(nif_not_loaded).

%% @doc The exception-handling rewrite `compile/2' applies.
-spec rewrite_eh(binary()) -> {ok, binary()} | unchanged | {error, {compile_failed, binary()}}.
rewrite_eh(_Wasm) -> erlang:nif_error(nif_not_loaded).
