%%% @doc The bench-only baseline NIF (native/tools/hb_beamr_bench): the bare
%%% Erlang -> Rust thread -> Erlang hand-off hb_beamr's calls and imports
%%% make, without WebAssembly. Loaded by erlang/hb_beamr_bench.erl only.
-module(hb_beamr_bench_nif).
-export([load/1, start/0, call/2, imports/2, respond/2]).

-nifs([start/0, call/2, imports/2, respond/2]).

%% @doc Loads the NIF from `Path' (without the `.so').
-spec load(file:filename()) -> ok | {error, term()}.
load(Path) ->
    erlang:load_nif(Path, 0).

%% @doc Starts an echo thread.
-spec start() -> reference().
start() -> erlang:nif_error(not_loaded).

%% @doc Sends `Args' to the thread, which answers
%% `{hb_beamr, Id, {execution_result, Args}}'; returns `Id'.
-spec call(reference(), [float()]) -> non_neg_integer() | {error, stopped}.
call(_Echo, _Args) -> erlang:nif_error(not_loaded).

%% @doc The thread sends `N' `{hb_beamr, Id, {import, ...}}' messages, each
%% answered with {@link respond/2}, then `{execution_result, [Sum]}'.
-spec imports(reference(), non_neg_integer()) -> non_neg_integer() | {error, stopped}.
imports(_Echo, _N) -> erlang:nif_error(not_loaded).

%% @doc Answers the pending import.
-spec respond(reference(), [integer()]) -> ok.
respond(_Echo, _Results) -> erlang:nif_error(not_loaded).
