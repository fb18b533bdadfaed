%%% @doc start(Bytecode, aot) through the compile cache (hb_beamr_aot_cache):
%%% compiled once for concurrent starts, then served from memory and from
%%% disk; an altered cache file is recompiled, never loaded.
-module(hb_beamr_cache_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1]).

with_cache_dir(Fun) ->
    Dir = filename:join(["/tmp", "hb_beamr_cache_" ++ integer_to_list(erlang:unique_integer([positive]))]),
    Previous = application:get_env(hb_beamr, cache_dir),
    ok = application:set_env(hb_beamr, cache_dir, Dir),
    ok = hb_beamr_aot_cache:forget(),
    try
        Fun(Dir)
    after
        case Previous of
            {ok, D} -> application:set_env(hb_beamr, cache_dir, D);
            undefined -> application:unset_env(hb_beamr, cache_dir)
        end,
        ok = hb_beamr_aot_cache:forget(),
        _ = file:del_dir_r(Dir)
    end.

mix(Bin) ->
    case hb_beamr:start(Bin, aot) of
        {ok, W, _, _} ->
            R = hb_beamr:call(W, "mix", [1000]),
            hb_beamr:stop(W),
            R;
        Error ->
            Error
    end.

compiles() ->
    maps:get(compiles, hb_beamr_aot_cache:stats()).

cache_test_() ->
    {timeout, 120, fun() -> with_cache_dir(fun(Dir) ->
        Wasm = fixture("compute.wasm"),
        {ok, W0, _, _} = hb_beamr:start(Wasm, wasm),
        Expected = hb_beamr:call(W0, "mix", [1000]),
        hb_beamr:stop(W0),
        % Eight concurrent starts, one compilation.
        Before = compiles(),
        Test = self(),
        Pids = [spawn(fun() -> Test ! {self(), mix(Wasm)} end) || _ <- lists:seq(1, 8)],
        [receive {P, R} -> ?assertEqual(Expected, R) after 60000 -> error(timeout) end || P <- Pids],
        ?assertEqual(Before + 1, compiles()),
        [File] = filelib:wildcard(filename:join([Dir, "aot", "*.aot"])),
        % From memory, then from disk.
        ?assertEqual(Expected, mix(Wasm)),
        ok = hb_beamr_aot_cache:forget(),
        ?assertEqual(Expected, mix(Wasm)),
        ?assertEqual(Before + 1, compiles()),
        % An altered file on disk is not loaded: compiled again.
        {ok, Bytes} = file:read_file(File),
        <<Head:100/binary, B, Tail/binary>> = Bytes,
        ok = file:write_file(File, <<Head/binary, (B bxor 1), Tail/binary>>),
        ok = hb_beamr_aot_cache:forget(),
        ?assertEqual(Expected, mix(Wasm)),
        ?assertEqual(Before + 2, compiles()),
        ?assertEqual({ok, Bytes}, file:read_file(File))
    end) end}.

%% start/3's deterministic option reaches the compilation (and the key).
deterministic_start_test() ->
    with_cache_dir(fun(_) ->
        Before = compiles(),
        {ok, W, _, _} = hb_beamr:start(fixture("compute.wasm"), aot, #{deterministic => true}),
        hb_beamr:stop(W),
        {ok, W2, _, _} = hb_beamr:start(fixture("compute.wasm"), aot),
        hb_beamr:stop(W2),
        ?assertEqual(Before + 2, compiles())
    end).

compile_errors_are_start_errors_test() ->
    with_cache_dir(fun(_) ->
        ?assertMatch({error, {compile_failed, _}}, hb_beamr:start(fixture("eh-unsupported.wasm"), aot)),
        ?assertMatch({error, {compile_failed, _}}, hb_beamr:start(<<0, "asm", 1, 0, 0, 0, 99>>, aot))
    end).
