%%% @doc Per-instance limits (start/3): maximum linear memory, WebAssembly
%%% stack and native stack. Exceeding one is a clean error. Runs in both
%%% modes (HB_BEAMR_TEST_MODE=aot).
-module(hb_beamr_limits_tests).
-include_lib("eunit/include/eunit.hrl").
-include("include/hb.hrl").

-import(hb_beamr_test_util, [fixture/1, mode/0]).

-define(PAGE, 65536).

%% The fixture's bytes in the suite's mode.
bytes(Name) ->
    case mode() of
        wasm ->
            fixture(Name);
        aot ->
            {ok, Aot} = hb_beamr:compile(fixture(Name)),
            Aot
    end.

start(Name, Opts) ->
    hb_beamr:start(bytes(Name), mode(), Opts).

max_memory_caps_growth_test() ->
    {ok, W, _, _} = start("alloc.wasm", #{max_memory => 2 * ?PAGE}),
    {ok, _} = hb_beamr_io:malloc(W, ?PAGE div 2),
    % Growing past two pages fails inside the module: malloc returns null.
    ?assertEqual({error, malloc_failed}, hb_beamr_io:malloc(W, 2 * ?PAGE)),
    {ok, Size} = hb_beamr_io:size(W),
    ?assert(Size =< 2 * ?PAGE),
    hb_beamr:stop(W).

without_max_memory_the_module_decides_test() ->
    {ok, W, _, _} = start("alloc.wasm", #{}),
    {ok, _} = hb_beamr_io:malloc(W, 2 * ?PAGE),
    % 1 KiB + 128 KiB needs three pages, within the module's four.
    ?assertEqual({ok, 3 * ?PAGE}, hb_beamr_io:size(W)),
    hb_beamr:stop(W).

max_memory_below_the_initial_memory_test() ->
    Before = hb_beamr_nif:live_instances(),
    {error, {instantiation_failed, Why}} = start("test-print.wasm", #{max_memory => 1000}),
    ?assertNotEqual(nomatch, binary:match(Why, <<"max_memory">>)),
    ?assertEqual(Before, hb_beamr_nif:live_instances()).

small_stacks_overflow_cleanly_test() ->
    {ok, W, _, _} = start("traps.wasm", #{wasm_stack => 16 * 1024, native_stack => 256 * 1024}),
    {error, {wasm_trap, Why}} = hb_beamr:call(W, "recurse", [0]),
    ?assertNotEqual(nomatch, binary:match(Why, <<"stack overflow">>)),
    ?assertEqual({ok, [42]}, hb_beamr:call(W, "add_one", [41])),
    hb_beamr:stop(W).

a_bigger_wasm_stack_goes_deeper_test() ->
    Depth = fun(Opts) ->
        {ok, W, _, _} = start("test.wasm", Opts),
        R = hb_beamr:call(W, "fac", [20000.0]),
        hb_beamr:stop(W),
        R
    end,
    case mode() of
        wasm ->
            ?assertMatch({error, {wasm_trap, _}}, Depth(#{wasm_stack => 16 * 1024})),
            ?assertMatch({ok, [_]}, Depth(#{wasm_stack => 8 * 1024 * 1024}));
        aot ->
            % AOT frames live on the native stack.
            ?assertMatch({error, {wasm_trap, _}}, Depth(#{native_stack => 256 * 1024})),
            ?assertMatch({ok, [_]}, Depth(#{native_stack => 64 * 1024 * 1024}))
    end.

bad_limits_are_refused_test_() ->
    Wasm = fixture("test.wasm"),
    [
        ?_assertEqual({error, {invalid_option, {max_memory, -1}}}, hb_beamr:start(Wasm, wasm, #{max_memory => -1})),
        ?_assertEqual({error, {invalid_option, {wasm_stack, 10}}}, hb_beamr:start(Wasm, wasm, #{wasm_stack => 10})),
        ?_assertEqual({error, {invalid_option, {native_stack, 1}}}, hb_beamr:start(Wasm, wasm, #{native_stack => 1})),
        ?_assertEqual({error, {invalid_option, {colour, blue}}}, hb_beamr:start(Wasm, wasm, #{colour => blue})),
        ?_assertEqual({error, badarg}, hb_beamr:start(Wasm, wasm, not_a_map))
    ].
