%%% Metering an AO process (docs/metering.md): HyperBEAM's AO module
%%% (emscripten-compiled Lua, `aos-2-pure-xs.wasm'), driven by
%%% erlang/hb_beamr_aos.erl. The module is not in this repository: the tests
%%% run when HB_BEAMR_AOS_WASM names it, and are no tests otherwise.
%%%
%%%   HB_BEAMR_AOS_WASM=/path/to/aos-2-pure-xs.wasm rebar3 eunit --module=hb_beamr_aos_fuel_tests
%%%
%%% The same Lua messages use exactly the same fuel as bytecode and as AOT
%%% code (compiled metered through the compile cache); a Lua loop that
%%% never ends is paused by on_fuel_exhausted, fed, then stopped from
%%% Erlang, and the process answers the next message. The pause test runs
%%% in the suites' mode (HB_BEAMR_TEST_MODE=aot for AOT).
-module(hb_beamr_aos_fuel_tests).

-include_lib("eunit/include/eunit.hrl").

-define(PLENTY, (1 bsl 50)).
-define(LOOP, <<"local t = 0; for i = 1, 100000 do t = t + i end; return t">>).

aos_fuel_test_() ->
    case os:getenv("HB_BEAMR_AOS_WASM") of
        false ->
            io:format(user, "hb_beamr_aos_fuel_tests: HB_BEAMR_AOS_WASM unset: no tests~n", []),
            [];
        Path ->
            {setup, fun() -> hb_beamr_test_util:aos_module(Path) end, fun(_) -> ok end,
             fun(Wasm) ->
                 [{timeout, 900, ?_test(same_fuel_in_both_modes(Wasm))},
                  {timeout, 900, ?_test(pause_feed_and_stop(Wasm))}]
             end}
    end.

used(W) ->
    {ok, #{used := Used}} = hb_beamr:fuel(W),
    Used.

remaining(W) ->
    {ok, #{remaining := Remaining}} = hb_beamr:fuel(W),
    Remaining.

%% Each message's output and fuel (what used/1 grew by: the message's
%% writes through malloc and the `handle' call) on a fresh metered process.
run(Wasm, Mode, Programs) ->
    {ok, W} = hb_beamr_aos:start(Wasm, Mode, #{fuel => ?PLENTY}),
    try
        Start = used(W),
        Runs = [begin
                    U0 = used(W),
                    Out = hb_beamr_aos:eval(W, Code),
                    {Code, Out, used(W) - U0}
                end || Code <- Programs],
        {Start, Runs}
    after
        hb_beamr:stop(W)
    end.

programs() ->
    [<<"return 1">>, ?LOOP, <<"return string.format('%5.2f|%d', 3.14159, 42)">>,
     <<"local ok, e = pcall(error, {code = 42}) return ok, e.code">>,
     <<"Counter = (Counter or 0) + 1 return Counter">>, ?LOOP].

same_fuel_in_both_modes(Wasm) ->
    {StartW, RunsW} = run(Wasm, wasm, programs()),
    {StartA, RunsA} = run(Wasm, aot, programs()),
    ?assertEqual(StartW, StartA),
    [?assertEqual(W, A) || {W, A} <- lists:zip(RunsW, RunsA)],
    [?assert(Fuel > 0) || {_, _, Fuel} <- RunsW],
    [?assertEqual(nomatch, binary:match(Out, <<"error">>)) || {_, Out, _} <- RunsW],
    {_, LoopOut, LoopFuel} = lists:nth(2, RunsW),
    ?assertMatch({match, _}, re:run(LoopOut, <<"\"data\":\"5000050000\"">>)),
    % The loop uses more than `return 1' (the first message, which also
    % sets Lua up, is not compared: it does more).
    {_, _, Small} = lists:nth(3, RunsW),
    ?assert(LoopFuel > Small),
    {_, _, LoopFuel2} = lists:last(RunsW),
    ?assert(LoopFuel2 > Small),
    ?debugFmt("AO fuel, the same in wasm and aot: start ~w; ~p",
              [StartW, [{C, F} || {C, _, F} <- RunsW]]).

pause_feed_and_stop(Wasm) ->
    Mode = hb_beamr_test_util:mode(),
    {ok, W} = hb_beamr_aos:start(Wasm, Mode, #{fuel => ?PLENTY}),
    try
        _ = hb_beamr_aos:eval(W, <<"return 1">>),
        % Every run below starts from this state (the Lua heap included,
        % so the garbage collector runs at the same points).
        {ok, Before} = hb_beamr:snapshot(W),
        % Plenty: the loop's output and fuel.
        U0 = used(W),
        {ok, Out, none} = hb_beamr_aos:handle(W, ?LOOP, none, #{}),
        Plenty = used(W) - U0,
        ?assertMatch({match, _}, re:run(Out, <<"\"data\":\"5000050000\"">>)),
        % Fed 20,000 at a time from a call budget of 1,000: paused at
        % many blocks, the same output, the same fuel.
        ok = hb_beamr:restore(W, Before),
        Feed = fun(N, #{instance := I, needed := Needed}, _) when I =:= W, Needed > 0 ->
            {ok, 20000, N + 1}
        end,
        U1 = used(W),
        {ok, Fed, Pauses} = hb_beamr_aos:handle(W, ?LOOP, 0,
                                                #{fuel => 1000, on_fuel_exhausted => Feed}),
        ?assertEqual(Out, Fed),
        ?assertEqual(Plenty, used(W) - U1),
        ?assert(Pauses >= Plenty div 20000),
        % A loop that never ends: 5 pauses fed 100,000 each, then stopped.
        ok = hb_beamr:restore(W, Before),
        Asked = counters:new(1, []),
        Stop = fun(N, #{needed := Needed}, _) when Needed > 0 ->
            counters:add(Asked, 1, 1),
            case N < 5 of
                true -> {ok, 100000, N + 1};
                false -> {stop, N}
            end
        end,
        U2 = used(W),
        {error, {out_of_fuel, Used}} =
            hb_beamr_aos:handle(W, <<"while true do end">>, 0,
                                #{fuel => 100000, on_fuel_exhausted => Stop}),
        ?assertEqual(6, counters:get(Asked, 1)),
        % The call used all it had (100,000 and 5 x 100,000) but what is
        % left, less than the next block costs; the message's writes
        % (malloc) before it used some more.
        Left = remaining(W),
        ?assert(Left >= 0 andalso Left < 1000),
        ?assertEqual(600000 - Left, Used),
        ?assert(used(W) - U2 > Used),
        % The process goes on once given more: it answers messages.
        ok = hb_beamr:add_fuel(W, ?PLENTY),
        ?assertMatch({match, _}, re:run(hb_beamr_aos:eval(W, <<"return 6 * 7">>),
                                        <<"\"data\":\"?42\"?">>)),
        {ok, Again, none} = hb_beamr_aos:handle(W, ?LOOP, none, #{}),
        ?assertMatch({match, _}, re:run(Again, <<"\"data\":\"5000050000\"">>)),
        ?debugFmt("AO pause (~w): loop fuel ~w, ~w pauses fed 20,000; endless loop stopped "
                  "after ~w fuel", [Mode, Plenty, Pauses, Used])
    after
        hb_beamr:stop(W)
    end.
