%%% @doc Starting and stopping instances, and what start refuses.
-module(hb_beamr_lifecycle_tests).
-include_lib("eunit/include/eunit.hrl").
-include("include/hb.hrl").

-import(hb_beamr_test_util, [fixture/1, start/1, wait_until/1]).

nif_is_loaded_test() ->
    ?assert(hb_beamr_nif:loaded()).

start_reports_exports_and_imports_test() ->
    {ok, WASM, Imports, Exports} = hb_beamr:start(fixture("pow_calculator.wasm")),
    ?assert(is_pid(WASM)),
    ?assertEqual([{func, <<"my_lib">>, <<"mul">>, <<"(ii)i">>}], Imports),
    ?assertEqual([{func, <<"pow">>, <<"(ii)i">>}], Exports),
    ok = hb_beamr:stop(WASM).

start_reports_every_extern_kind_test() ->
    {ok, WASM, Imports, Exports} = hb_beamr:start(fixture("imports.wasm")),
    ?assert(lists:member({func, <<"unused">>, <<"never_called">>, <<"(iii)I">>}, Imports)),
    ?assert(lists:member({func, <<"env">>, <<"f64_op">>, <<"(FF)F">>}, Imports)),
    ?assert(lists:member({memory, <<"memory">>, <<>>}, Exports)),
    ?assert(lists:member({global, <<"answer">>, <<"i">>}, Exports)),
    ?assert(lists:member({table, <<"__indirect_function_table">>, <<>>}, Exports)),
    ?assert(lists:member({func, <<"narrow">>, <<"(f)f">>}, Exports)),
    ok = hb_beamr:stop(WASM).

start_with_explicit_wasm_mode_test() ->
    {ok, WASM, [], [{func, <<"fac">>, <<"(F)F">>}]} = hb_beamr:start(fixture("test.wasm"), wasm),
    ?assert(is_process_alive(WASM)),
    hb_beamr:stop(WASM).

start_refuses_bytes_that_are_not_a_module_test_() ->
    [
        ?_assertMatch({error, {invalid_wasm, _}}, hb_beamr:start(<<"not a valid wasm file">>)),
        ?_assertMatch({error, {invalid_wasm, _}}, hb_beamr:start(<<>>)),
        % The right magic and version, then garbage.
        ?_assertMatch({error, {invalid_wasm, _}}, hb_beamr:start(<<0, "asm", 1:32/little, 255, 255, 255>>)),
        % A truncated module.
        ?_assertMatch(
            {error, {invalid_wasm, _}},
            hb_beamr:start(binary:part(fixture("traps.wasm"), 0, 40))
        )
    ].

start_refuses_bad_arguments_test_() ->
    [
        ?_assertEqual({error, badarg}, hb_beamr:start(not_a_binary)),
        ?_assertEqual({error, badarg}, hb_beamr:start(fixture("test.wasm"), jit))
    ].

start_checks_the_mode_against_the_bytes_test_() ->
    [
        % Bytecode in aot mode is compiled (hb_beamr_aot_cache).
        ?_assertMatch({ok, _, _, _}, hb_beamr:start(fixture("test.wasm"), aot)),
        ?_assertMatch({error, {invalid_aot, _}}, hb_beamr:start(<<"garbage">>, aot)),
        % An AOT header with a version this runtime does not have.
        ?_assertMatch(
            {error, {invalid_aot, _}},
            hb_beamr:start(<<0, "aot", 999:32/little, 0:800>>, aot)
        ),
        ?_assertMatch(
            {error, {invalid_wasm, _}},
            hb_beamr:start(<<0, "aot", 999:32/little, 0:800>>, wasm)
        )
    ].

%% Imported globals link only to WAMR's built-in modules (as in HyperBEAM's
%% build, which has no libc-builtin): anything else is a clear error.
imported_global_is_an_instantiation_error_test() ->
    ?assertMatch(
        {error, {instantiation_failed, <<"failed to link import global (host, g)">>}},
        hb_beamr:start(fixture("import-global.wasm"))
    ).

start_function_calling_an_import_is_an_instantiation_error_test() ->
    {error, {instantiation_failed, Why}} = hb_beamr:start(fixture("start-import.wasm")),
    ?assertNotEqual(nomatch, binary:match(Why, <<"import env.hello called outside a call">>)).

failed_start_leaves_no_instance_behind_test() ->
    Before = hb_beamr_nif:live_instances(),
    {error, _} = hb_beamr:start(<<"junk">>),
    ?assertEqual(Before, hb_beamr_nif:live_instances()).

stop_ends_the_worker_test() ->
    WASM = start("test.wasm"),
    ?assert(is_process_alive(WASM)),
    ok = hb_beamr:stop(WASM),
    ?assert(wait_until(fun() -> not is_process_alive(WASM) end)).

stop_twice_is_fine_test() ->
    WASM = start("test.wasm"),
    ?assertEqual(ok, hb_beamr:stop(WASM)),
    ?assertEqual(ok, hb_beamr:stop(WASM)).

stop_of_a_non_instance_test() ->
    ?assertEqual({error, badarg}, hb_beamr:stop(not_a_pid)),
    % A pid that never was an instance: nothing to stop.
    ?assertEqual(ok, hb_beamr:stop(spawn(fun() -> ok end))).

requests_after_stop_are_errors_test() ->
    WASM = start("test-print.wasm"),
    ok = hb_beamr:stop(WASM),
    ?assertEqual({error, stopped}, hb_beamr:call(WASM, "hello", [])),
    ?assertEqual({error, stopped}, hb_beamr_io:size(WASM)),
    ?assertEqual({error, stopped}, hb_beamr_io:read(WASM, 0, 1)),
    ?assertEqual({error, stopped}, hb_beamr_io:write(WASM, 0, <<1>>)),
    ?assertEqual({error, stopped}, hb_beamr:serialize(WASM)).

instance_outlives_the_process_that_started_it_test() ->
    Self = self(),
    spawn(fun() -> Self ! {wasm, start("test.wasm")} end),
    WASM = receive {wasm, W} -> W end,
    % The starter has exited; another process calls the instance.
    spawn(fun() -> Self ! {result, hb_beamr:call(WASM, "fac", [5.0])} end),
    ?assertEqual({ok, [120.0]}, receive {result, R} -> R end),
    hb_beamr:stop(WASM).

killing_the_worker_frees_the_instance_test() ->
    Before = hb_beamr_nif:live_instances(),
    WASM = start("test.wasm"),
    ?assertEqual(Before + 1, hb_beamr_nif:live_instances()),
    exit(WASM, kill),
    ?assert(wait_until(fun() -> hb_beamr_nif:live_instances() =:= Before end)),
    ?assertEqual({error, stopped}, hb_beamr:call(WASM, "fac", [1.0])).

many_instances_start_call_and_stop_test() ->
    Before = hb_beamr_nif:live_instances(),
    Bytes = fixture("test.wasm"),
    Instances = [begin {ok, W, _, _} = hb_beamr:start(Bytes), W end || _ <- lists:seq(1, 200)],
    ?assertEqual(Before + 200, hb_beamr_nif:live_instances()),
    Results = [hb_beamr:call(W, "fac", [3.0]) || W <- Instances],
    ?assert(lists:all(fun(R) -> R =:= {ok, [6.0]} end, Results)),
    [ok = hb_beamr:stop(W) || W <- Instances],
    ?assertEqual(Before, hb_beamr_nif:live_instances()).
