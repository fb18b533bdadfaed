%%% @doc Helpers shared by hb_beamr's EUnit suites.
-module(hb_beamr_test_util).
-export([fixture/1, mode/0, start/1, start/2, with_instance/2, wait_until/1]).

%% @doc The bytes of a fixture in test/.
-spec fixture(string()) -> binary().
fixture(Name) ->
    {ok, Bytes} = file:read_file(filename:join("test", Name)),
    Bytes.

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
