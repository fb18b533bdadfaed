%%% @doc Helpers shared by hb_beamr's EUnit suites.
-module(hb_beamr_test_util).

-define(REFERENCE_FIXTURES, ["test.wasm", "test.wat", "pow_calculator.wasm", "pow_calculator.wat",
                             "test-print.wasm", "test-print.wat"]).
-export([fixture/1, aos_module/1, mode/0, start/1, start/2, with_instance/2, wait_until/1,
         wait_for/2, many_functions/2]).

%% @doc The bytes of a fixture in test/fixtures/ (`Name' is relative to it,
%% e.g. "test.wasm" or "wasi/ctor.wasm").
-spec fixture(string()) -> binary().
fixture(Name) ->
    {ok, Bytes} = file:read_file(fixture_path(Name)),
    Bytes.

%% @doc HyperBEAM's AO module read from `Path' (what HB_BEAMR_AOS_WASM
%% names; it is not in this repository), with erlang/hb_beamr_aos.erl, which
%% drives it, compiled and loaded.
-spec aos_module(file:filename()) -> binary().
aos_module(Path) ->
    Source = filename:join("erlang", "hb_beamr_aos.erl"),
    {ok, Module, Beam} = compile:file(Source, [binary, return_errors]),
    {module, Module} = code:load_binary(Module, Source, Beam),
    {ok, Wasm} = file:read_file(Path),
    Wasm.

%% The reference's three fixtures stay where HyperBEAM's tests read them
%% (test/test.wasm, test/pow_calculator.wasm, test/test-print.wasm); every
%% other one is in test/fixtures/.
fixture_path(Name) ->
    Top = filename:join("test", Name),
    case lists:member(Name, ?REFERENCE_FIXTURES) of
        true -> Top;
        false -> filename:join(["test", "fixtures", Name])
    end.

%% @doc The mode the suites run fixtures in: `wasm', or `aot' when
%% HB_BEAMR_TEST_MODE=aot (`make test' runs the suites in both).
-spec mode() -> hb_beamr:mode().
mode() ->
    case os:getenv("HB_BEAMR_TEST_MODE") of
        "aot" -> aot;
        _ -> wasm
    end.

%% @doc Starts an instance of a fixture in the suites' mode, crashing the
%% test if it does not start.
-spec start(string()) -> pid().
start(Name) ->
    start(Name, mode()).

%% @doc Starts an instance of a fixture (file name or bytes): in `aot' mode
%% the bytes are compiled with hb_beamr:compile/1 first.
-spec start(string() | binary(), hb_beamr:mode()) -> pid().
start(Bytes, wasm) when is_binary(Bytes) ->
    {ok, WASM, _Imports, _Exports} = hb_beamr:start(Bytes, wasm),
    WASM;
start(Bytes, aot) when is_binary(Bytes) ->
    {ok, Aot} = hb_beamr:compile(Bytes),
    {ok, WASM, _Imports, _Exports} = hb_beamr:start(Aot, aot),
    WASM;
start(Name, Mode) ->
    start(fixture(Name), Mode).

%% @doc Runs `Fun(WASM)' on a fresh instance of a fixture, then stops it.
-spec with_instance(string(), fun((pid()) -> term())) -> term().
with_instance(Name, Fun) ->
    WASM = start(Name),
    try
        Fun(WASM)
    after
        hb_beamr:stop(WASM)
    end.

%% @doc Polls `Fun' until it returns true (at most 5 s); returns its last value.
-spec wait_until(fun(() -> boolean())) -> boolean().
wait_until(Fun) ->
    wait_until(Fun, 500).

%% @doc Polls `Fun' every 10 ms until it returns true, at most `Ms'
%% milliseconds; returns its last value.
-spec wait_for(fun(() -> boolean()), pos_integer()) -> boolean().
wait_for(Fun, Ms) when Ms >= 10 ->
    wait_until(Fun, Ms div 10).

%% @doc A valid module of `Funcs' functions `(i32) -> i32' (each a chain of
%% arithmetic that calls the previous one; `f' is exported), slow to
%% compile to AOT: about 6 ms a function with LLVM at opt level 3 on a
%% 2-core VM. `Salt' goes into the constants: another salt, another module
%% (and another cache key).
-spec many_functions(pos_integer(), integer()) -> binary().
many_functions(Funcs, Salt) ->
    Type = section(1, vec([<<16#60, 1, 16#7f, 1, 16#7f>>])),
    Functions = section(3, vec([<<0>> || _ <- lists:seq(1, Funcs)])),
    Export = section(7, vec([<<1, "f", 0, 0>>])),
    Code = section(10, vec([body(I, Salt) || I <- lists:seq(0, Funcs - 1)])),
    <<0, "asm", 1, 0, 0, 0, Type/binary, Functions/binary, Export/binary, Code/binary>>.

%% `x' through ten rounds of `(x + c) * d ^ x', plus `f(i - 1)(x)'.
body(I, Salt) ->
    Rounds = [[16#41, sleb(I * 7 + K + Salt), 16#6a, 16#41, sleb(K * 3 + 1), 16#6c, 16#20, 0, 16#73]
              || K <- lists:seq(1, 10)],
    Last = case I of
        0 -> [16#20, 0, 16#6a];
        _ -> [16#20, 0, 16#10, uleb(I - 1), 16#6a]
    end,
    Expr = iolist_to_binary([0, 16#20, 0, Rounds, Last, 16#0b]),
    <<(uleb(byte_size(Expr)))/binary, Expr/binary>>.

section(Id, Bin) -> <<Id, (uleb(byte_size(Bin)))/binary, Bin/binary>>.

vec(Items) -> iolist_to_binary([uleb(length(Items)) | Items]).

uleb(N) when N < 128 -> <<N>>;
uleb(N) -> <<(N band 127 bor 128), (uleb(N bsr 7))/binary>>.

sleb(N) when N >= -64, N < 64 -> <<(N band 127)>>;
sleb(N) -> <<(N band 127 bor 128), (sleb(N bsr 7))/binary>>.

wait_until(Fun, 0) ->
    Fun();
wait_until(Fun, N) ->
    case Fun() of
        true ->
            true;
        false ->
            timer:sleep(10),
            wait_until(Fun, N - 1)
    end.
