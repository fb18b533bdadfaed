%%% Metered instances (start/3's `fuel', docs/metering.md): fuel/1,
%%% add_fuel/2, call/6's `fuel' and `on_fuel_exhausted', snapshots. The
%%% modules are assembled here. Runs in the suites' mode
%%% (HB_BEAMR_TEST_MODE=aot: bytecode started as `aot' goes through the
%%% compile cache, metered); the cross-mode tests run both modes anyway.
-module(hb_beamr_fuel_tests).

-include_lib("eunit/include/eunit.hrl").

mode() -> hb_beamr_test_util:mode().

%% (module (memory (export "memory") 1)
%%   (func (export "loop") (param $n i32) (result i32) (local $i i32) (local $acc i32)
%%     (block $done (loop $top
%%       (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
%%       (local.set $acc (i32.add (local.get $acc) (local.get $i)))
%%       (local.set $i (i32.add (local.get $i) (i32.const 1)))
%%       (br $top)))
%%     (local.get $acc))
%%   (func (export "mix") (param $n i32) (result i32)
%%     (call $loop (call $tick (local.get $n))))
%%   (import "env" "tick" (func $tick (param i32) (result i32))))
%% `mix' calls an import (served by the import function) then `loop'.
loop_module() ->
    Type = section(1, vec([<<16#60, 1, 16#7f, 1, 16#7f>>])),
    Import = section(2, vec([<<(name(<<"env">>))/binary, (name(<<"tick">>))/binary, 0, 0>>])),
    Funcs = section(3, vec([<<0>>, <<0>>])),
    Memory = section(5, vec([<<0, 1>>])),
    Export = section(7, vec([<<(name(<<"loop">>))/binary, 0, 1>>,
                             <<(name(<<"mix">>))/binary, 0, 2>>,
                             <<(name(<<"memory">>))/binary, 2, 0>>])),
    Loop = body(<<1, 2, 16#7f>>,
                <<16#02, 16#40, 16#03, 16#40,
                  16#20, 1, 16#20, 0, 16#4f, 16#0d, 1,
                  16#20, 2, 16#20, 1, 16#6a, 16#21, 2,
                  16#20, 1, 16#41, 1, 16#6a, 16#21, 1,
                  16#0c, 0, 16#0b, 16#0b,
                  16#20, 2, 16#0b>>),
    Mix = body(<<0>>, <<16#20, 0, 16#10, 0, 16#10, 1, 16#0b>>),
    Code = section(10, vec([Loop, Mix])),
    <<0, "asm", 1, 0, 0, 0, Type/binary, Import/binary, Funcs/binary, Memory/binary,
      Export/binary, Code/binary>>.

%% (module (global $g (mut i32) (i32.const 0))
%%   (func $s (global.set $g (i32.const 7))) (start $s)
%%   (func (export "g") (result i32) (global.get $g)))
start_module() ->
    Types = section(1, vec([<<16#60, 0, 0>>, <<16#60, 0, 1, 16#7f>>])),
    Funcs = section(3, vec([<<0>>, <<1>>])),
    Global = section(6, vec([<<16#7f, 1, 16#41, 0, 16#0b>>])),
    Export = section(7, vec([<<(name(<<"g">>))/binary, 0, 1>>])),
    Start = section(8, <<0>>),
    Code = section(10, vec([body(<<0>>, <<16#41, 7, 16#24, 0, 16#0b>>),
                            body(<<0>>, <<16#23, 0, 16#0b>>)])),
    <<0, "asm", 1, 0, 0, 0, Types/binary, Funcs/binary, Global/binary, Export/binary,
      Start/binary, Code/binary>>.

body(Locals, Code) ->
    Bin = <<Locals/binary, Code/binary>>,
    <<(uleb(byte_size(Bin)))/binary, Bin/binary>>.
section(Id, Bin) -> <<Id, (uleb(byte_size(Bin)))/binary, Bin/binary>>.
vec(Items) -> iolist_to_binary([uleb(length(Items)) | Items]).
name(Bin) -> <<(uleb(byte_size(Bin)))/binary, Bin/binary>>.
uleb(N) when N < 128 -> <<N>>;
uleb(N) -> <<(N band 127 bor 128), (uleb(N bsr 7))/binary>>.

start(Fuel) -> start(mode(), Fuel).

start(Mode, Fuel) ->
    {ok, WASM, _, _} = hb_beamr:start(loop_module(), Mode, #{fuel => Fuel}),
    WASM.

tick(State, #{module := <<"env">>, func := <<"tick">>, args := [N]}, _Opts) ->
    {ok, [N], State}.

used(WASM) ->
    {ok, #{used := Used}} = hb_beamr:fuel(WASM),
    Used.

remaining(WASM) ->
    {ok, #{remaining := Remaining}} = hb_beamr:fuel(WASM),
    Remaining.

%% One metered call in `Mode' on a fresh instance: result and fuel used.
run(Mode, Func, N) ->
    run(Mode, Func, N, #{}).

run(Mode, Func, N, Opts) ->
    {ok, WASM, _, _} = hb_beamr:start(loop_module(), Mode, Opts#{fuel => 1 bsl 40}),
    try
        Result = hb_beamr:call(WASM, Func, [N], fun tick/3, #{}, #{}),
        {Result, used(WASM), remaining(WASM)}
    after
        hb_beamr:stop(WASM)
    end.

hidden_import_and_export_test() ->
    {ok, WASM, Imports, Exports} = hb_beamr:start(loop_module(), mode(), #{fuel => 10}),
    hb_beamr:stop(WASM),
    ?assertEqual([{func, <<"env">>, <<"tick">>, <<"(i)i">>}], Imports),
    ?assertEqual([<<"loop">>, <<"memory">>, <<"mix">>], lists:sort([N || {_, N, _} <- Exports])).

%% The same calls use exactly the same fuel as bytecode and as AOT code
%% (compiled from the metered bytecode by the cache).
same_fuel_in_both_modes_test_() ->
    {timeout, 120, fun() ->
        Calls = [{"loop", 0}, {"loop", 1}, {"loop", 10}, {"loop", 1000}, {"mix", 7}, {"mix", 500}],
        Runs = [{Call, run(wasm, F, N), run(aot, F, N)} || {F, N} = Call <- Calls],
        [?assertEqual({Call, Wasm}, {Call, Aot}) || {Call, Wasm, Aot} <- Runs],
        [?assert(Used > 0) || {_, {{ok, _, _}, Used, _}, _} <- Runs],
        % With deterministic floats too (no floats here: the same fuel).
        Det = #{deterministic => true},
        [?assertEqual({Call, Wasm}, {Call, run(wasm, F, N, Det)}) || {{F, N} = Call, Wasm, _} <- Runs],
        [?assertEqual({Call, Wasm}, {Call, run(aot, F, N, Det)}) || {{F, N} = Call, Wasm, _} <- Runs],
        % 10 iterations use more than 1, and fuel grows with the work.
        [{_, {_, U0, _}, _}, {_, {_, U1, _}, _}, {_, {_, U10, _}, _} | _] = Runs,
        ?assert(U0 < U1 andalso U1 < U10),
        ?debugFmt("fuel used (same in wasm and aot): ~p",
                  [[{F, N, U} || {{F, N}, {_, U, _}, _} <- Runs]])
    end}.

%% Fuel is per instance: the start fuel, what calls use, what is left.
fuel_and_add_fuel_test() ->
    WASM = start(100000),
    try
        ?assertEqual({ok, #{remaining => 100000, used => 0}}, hb_beamr:fuel(WASM)),
        ?assertEqual({ok, [45]}, hb_beamr:call(WASM, "loop", [10])),
        Used = used(WASM),
        ?assertEqual(100000 - Used, remaining(WASM)),
        ?assertEqual(ok, hb_beamr:add_fuel(WASM, 5)),
        ?assertEqual({ok, #{remaining => 100005 - Used, used => Used}}, hb_beamr:fuel(WASM)),
        % The same call again uses the same fuel.
        ?assertEqual({ok, [45]}, hb_beamr:call(WASM, "loop", [10])),
        ?assertEqual(2 * Used, used(WASM))
    after
        hb_beamr:stop(WASM)
    end.

%% Out of fuel without a fun: an error with the fuel the call used; the
%% counter stays as it was (less than the next block costs) and the
%% instance is usable; add_fuel lets calls run again.
out_of_fuel_without_a_fun_test() ->
    WASM = start(200),
    try
        {error, {out_of_fuel, Used}} = hb_beamr:call(WASM, "loop", [1000]),
        Left = remaining(WASM),
        ?assert(Left >= 0 andalso Left < 200),
        ?assertEqual(200 - Left, Used),
        ?assertEqual(Used, used(WASM)),
        % Still out: the next call fails at once, having used nothing.
        ?assertMatch({error, {out_of_fuel, 0}}, hb_beamr:call(WASM, "loop", [1000])),
        ?assertEqual(Left, remaining(WASM)),
        ok = hb_beamr:add_fuel(WASM, 1000000),
        ?assertEqual({ok, [45]}, hb_beamr:call(WASM, "loop", [10])),
        ?assertMatch({ok, [_], #{}}, hb_beamr:call(WASM, "mix", [3], fun tick/3, #{}, #{}))
    after
        hb_beamr:stop(WASM)
    end.

%% With on_fuel_exhausted: the call pauses at each block it cannot pay
%% for, the fun gives more in the caller with the state threaded through
%% (imports too), and the result is an unmetered run's.
on_fuel_exhausted_resumes_test() ->
    {ok, Plain, _, _} = hb_beamr:start(loop_module(), mode()),
    {ok, Expected, _} = hb_beamr:call(Plain, "mix", [300], fun tick/3, #{}, #{}),
    hb_beamr:stop(Plain),
    WASM = start(0),
    try
        OnFuel = fun(#{asked := N} = State, #{instance := I, needed := Needed}, _Opts) ->
            ?assertEqual(WASM, I),
            ?assert(Needed > 0),
            {ok, 50, State#{asked := N + 1}}
        end,
        Result = hb_beamr:call(WASM, "mix", [300], fun tick/3, #{asked => 0},
                               #{on_fuel_exhausted => OnFuel}),
        ?assertMatch({ok, Expected, #{asked := _}}, Result),
        {ok, _, #{asked := Asked}} = Result,
        Used = used(WASM),
        ?assertEqual(Asked * 50, Used + remaining(WASM)),
        ?assert(Asked > 10),
        % A one-by-one feed (exactly what is missing) gives the same result
        % and the same fuel.
        Exact = fun(S, #{needed := Needed}, _) -> {ok, Needed, S} end,
        ?assertMatch({ok, Expected, #{}},
                     hb_beamr:call(WASM, "mix", [300], fun tick/3, #{}, #{on_fuel_exhausted => Exact,
                                                                        fuel => 0})),
        ?assertEqual(2 * Used, used(WASM)),
        % ... and the same as with plenty.
        {_, Plenty, _} = run(mode(), "mix", 300),
        ?assertEqual(Plenty, Used)
    after
        hb_beamr:stop(WASM)
    end.

%% {stop, State} ends the call with the out_of_fuel error; the instance
%% goes on.
on_fuel_exhausted_stop_test() ->
    WASM = start(0),
    try
        Stop = fun(N, _, _) when N < 3 -> {ok, 20, N + 1};
                  (N, _, _) -> {stop, N}
               end,
        {error, {out_of_fuel, Used}} =
            hb_beamr:call(WASM, "loop", [1000], fun tick/3, 0, #{on_fuel_exhausted => Stop}),
        % Given 3 x 20: used what is not left.
        ?assertEqual(Used, used(WASM)),
        ?assertEqual(60, Used + remaining(WASM)),
        % Another answer than {ok, N, S} or {stop, S} is the fun's error.
        Bad = fun(S, _, _) -> {ok, -1, S} end,
        ?assertMatch({error, error, _, _, x},
                     hb_beamr:call(WASM, "loop", [1000], fun tick/3, x, #{on_fuel_exhausted => Bad})),
        ok = hb_beamr:add_fuel(WASM, 100000),
        ?assertEqual({ok, [45]}, hb_beamr:call(WASM, "loop", [10]))
    after
        hb_beamr:stop(WASM)
    end.

%% call/6's fuel: the budget of one call.
call_budget_test() ->
    WASM = start(0),
    try
        ?assertMatch({error, {out_of_fuel, 0}}, hb_beamr:call(WASM, "loop", [10])),
        ?assertMatch({ok, [45], #{}},
                     hb_beamr:call(WASM, "loop", [10], fun tick/3, #{}, #{fuel => 100000})),
        Used = used(WASM),
        ?assertEqual(100000 - Used, remaining(WASM)),
        {error, {out_of_fuel, U}} = hb_beamr:call(WASM, "loop", [10], fun tick/3, #{}, #{fuel => 10}),
        ?assertEqual(10 - remaining(WASM), U)
    after
        hb_beamr:stop(WASM)
    end.

not_metered_test() ->
    {ok, WASM, _, _} = hb_beamr:start(loop_module(), mode()),
    try
        ?assertEqual({error, not_metered}, hb_beamr:fuel(WASM)),
        ?assertEqual({error, not_metered}, hb_beamr:add_fuel(WASM, 1)),
        ?assertEqual({error, not_metered},
                     hb_beamr:call(WASM, "loop", [1], fun tick/3, #{}, #{fuel => 10})),
        ?assertEqual({ok, [45]}, hb_beamr:call(WASM, "loop", [10]))
    after
        hb_beamr:stop(WASM)
    end.

%% The start function runs on the start fuel.
start_function_test() ->
    ?assertMatch({error, {out_of_fuel, 0}}, hb_beamr:start(start_module(), mode(), #{fuel => 0})),
    {ok, WASM, [], _} = hb_beamr:start(start_module(), mode(), #{fuel => 1000}),
    try
        StartUsed = used(WASM),
        ?assert(StartUsed > 0),
        ?assertEqual({ok, [7]}, hb_beamr:call(WASM, "g", [])),
        ?assertEqual(1000 - used(WASM), remaining(WASM))
    after
        hb_beamr:stop(WASM)
    end.

%% The counter is a global: snapshots carry it, memory alone does not.
snapshot_keeps_remaining_fuel_test() ->
    WASM = start(100000),
    Fresh = start(0),
    try
        {ok, [45]} = hb_beamr:call(WASM, "loop", [10]),
        Left = remaining(WASM),
        {ok, Snapshot} = hb_beamr:snapshot(WASM),
        {ok, _} = hb_beamr:call(WASM, "loop", [100]),
        ?assert(remaining(WASM) < Left),
        ok = hb_beamr:restore(WASM, Snapshot),
        ?assertEqual(Left, remaining(WASM)),
        % Restored into another instance: it goes on with the same fuel.
        ok = hb_beamr:restore(Fresh, Snapshot),
        ?assertEqual(Left, remaining(Fresh)),
        {ok, R1} = hb_beamr:call(WASM, "loop", [100]),
        {ok, R2} = hb_beamr:call(Fresh, "loop", [100]),
        ?assertEqual(R1, R2),
        ?assertEqual(remaining(WASM), remaining(Fresh)),
        % serialize/deserialize is memory only: the fuel stays.
        {ok, Memory} = hb_beamr:serialize(WASM),
        Before = remaining(Fresh),
        ok = hb_beamr:deserialize(Fresh, Memory),
        ?assertEqual(Before, remaining(Fresh))
    after
        hb_beamr:stop(WASM),
        hb_beamr:stop(Fresh)
    end.

%% A metered start takes only an AOT file compiled metered, and an
%% unmetered start refuses one.
aot_files_test_() ->
    {timeout, 120, fun() ->
        {ok, Plain} = hb_beamr:compile(loop_module()),
        {ok, Metered} = hb_beamr:compile(loop_module(), #{metered => true}),
        ?assertMatch({error, {invalid_aot, _}}, hb_beamr:start(Plain, aot, #{fuel => 10})),
        ?assertMatch({error, {invalid_aot, _}}, hb_beamr:start(Metered, aot)),
        {ok, WASM, _, _} = hb_beamr:start(Metered, aot, #{fuel => 1 bsl 40}),
        {ok, [R]} = hb_beamr:call(WASM, "loop", [1000]),
        Used = used(WASM),
        hb_beamr:stop(WASM),
        ?assertEqual({{ok, [R], #{}}, Used, (1 bsl 40) - Used}, run(wasm, "loop", 1000))
    end}.

bad_options_test_() ->
    Wasm = loop_module(),
    [
        ?_assertEqual({error, {invalid_option, {fuel, -1}}}, hb_beamr:start(Wasm, wasm, #{fuel => -1})),
        ?_assertEqual({error, {invalid_option, {fuel, lots}}}, hb_beamr:start(Wasm, wasm, #{fuel => lots})),
        ?_assertEqual({error, {invalid_option, {fuel, 1 bsl 63}}},
                      hb_beamr:start(Wasm, wasm, #{fuel => 1 bsl 63})),
        ?_assertEqual({error, {invalid_option, {metered, yes}}}, hb_beamr:compile(Wasm, #{metered => yes})),
        fun() ->
            WASM = start(wasm, 10),
            try
                ?assertEqual({error, {invalid_option, {fuel, -5}}},
                             hb_beamr:call(WASM, "loop", [1], fun tick/3, #{}, #{fuel => -5})),
                ?assertEqual({error, {invalid_option, {on_fuel_exhausted, nope}}},
                             hb_beamr:call(WASM, "loop", [1], fun tick/3, #{},
                                           #{on_fuel_exhausted => nope})),
                ?assertEqual({error, {invalid_option, {fuel, -1}}}, hb_beamr:add_fuel(WASM, -1))
            after
                hb_beamr:stop(WASM)
            end
        end
    ].

%% Exception handling is rewritten before metering in both modes, so a
%% throw and its catch use the same fuel as bytecode and as AOT code.
exceptions_use_the_same_fuel_in_both_modes_test_() ->
    {timeout, 120, fun() ->
        Wasm = hb_beamr_test_util:fixture("exceptions.wasm"),
        Run = fun(Mode, Func) ->
            {ok, WASM, _, _} = hb_beamr:start(Wasm, Mode, #{fuel => 100000}),
            try
                {hb_beamr:call(WASM, Func, [5]), used(WASM)}
            after
                hb_beamr:stop(WASM)
            end
        end,
        {{ok, [1005]}, Used} = Run(wasm, "catch"),
        ?assert(Used > 0),
        ?assertEqual({{ok, [1005]}, Used}, Run(aot, "catch")),
        {{error, {wasm_trap, _}}, Uncaught} = Run(wasm, "uncaught"),
        ?assertMatch({{error, {wasm_trap, _}}, Uncaught}, Run(aot, "uncaught"))
    end}.

%% While the call waits for fuel, its owner may use the instance (as from
%% an import function): add_fuel from the fun, then give nothing more.
add_fuel_from_the_fun_test() ->
    WASM = start(0),
    try
        OnFuel = fun(N, _, _) ->
            ok = hb_beamr:add_fuel(WASM, 40),
            {ok, #{remaining := R}} = hb_beamr:fuel(WASM),
            ?assert(R >= 40),
            {ok, 0, N + 1}
        end,
        ?assertMatch({ok, [4950], N} when N > 1,
                     hb_beamr:call(WASM, "loop", [100], fun tick/3, 0, #{on_fuel_exhausted => OnFuel}))
    after
        hb_beamr:stop(WASM)
    end.

%% A fun that takes too long: the call times out, the instance goes on.
timeout_while_waiting_for_fuel_test() ->
    WASM = start(0),
    try
        Slow = fun(S, _, _) -> timer:sleep(300), {ok, 1000, S} end,
        ?assertEqual({error, timeout},
                     hb_beamr:call(WASM, "loop", [100000], fun tick/3, #{},
                                   #{on_fuel_exhausted => Slow, timeout => 100})),
        ok = hb_beamr:add_fuel(WASM, 100000),
        ?assertEqual({ok, [45]}, hb_beamr:call(WASM, "loop", [10]))
    after
        hb_beamr:stop(WASM)
    end.

%% A delta snapshot carries the counter too (globals are whole in deltas).
delta_snapshot_keeps_remaining_fuel_test() ->
    WASM = start(100000),
    Fresh = start(0),
    try
        {ok, Full} = hb_beamr:snapshot(WASM),
        {ok, _} = hb_beamr:call(WASM, "loop", [50]),
        Left = remaining(WASM),
        {ok, Delta} = hb_beamr:snapshot(WASM, #{base => Full}),
        ok = hb_beamr:restore(Fresh, [Full, Delta]),
        ?assertEqual(Left, remaining(Fresh)),
        ?assertEqual(hb_beamr:call(WASM, "loop", [10]), hb_beamr:call(Fresh, "loop", [10])),
        ?assertEqual(remaining(WASM), remaining(Fresh))
    after
        hb_beamr:stop(WASM),
        hb_beamr:stop(Fresh)
    end.
