%%% @doc The call protocol under an unlucky or hostile user: callers that
%%% die while queued or mid-import, answers from strangers, killed instance
%%% pids and starters, import functions and start functions that never end,
%%% bad terms. Each test bounds its waits, so a regression fails instead of
%%% hanging the suite.
-module(hb_beamr_protocol_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [start/1, with_instance/2, wait_until/1, mode/0, fixture/1]).

%% Runs `Fun' in another process; its result, or `hang' after `Ms'.
within(Ms, Fun) ->
    Self = self(),
    Ref = make_ref(),
    Pid = spawn(fun() -> Self ! {Ref, Fun()} end),
    receive
        {Ref, Result} -> Result
    after Ms ->
        exit(Pid, kill),
        hang
    end.

%% An import function that tells `Test' it was called, then waits to be
%% released with the value to answer.
blocking_import(Test) ->
    fun(State, _Request, _Opts) ->
        Test ! {in_import, self()},
        receive
            {release, Value} -> {ok, [Value], State}
        end
    end.

threads() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [N]} = re:run(Status, "Threads:\\s+(\\d+)", [{capture, all_but_first, binary}]),
    binary_to_integer(N).

%% 1. A caller that dies while its call is queued blocks nobody.
a_caller_dying_in_the_queue_blocks_nobody_test() ->
    with_instance("imports.wasm", fun(WASM) ->
        Test = self(),
        A = spawn(fun() ->
            Test ! {a_done, hb_beamr:call(WASM, "count", [1], blocking_import(Test))}
        end),
        Server = receive {in_import, S} -> S after 2000 -> error(no_import) end,
        % B's call would need B for an import, once it runs.
        B = spawn(fun() -> hb_beamr:call(WASM, "count", [1], fun(S, _, _) -> {ok, [1], S} end) end),
        timer:sleep(20),
        exit(B, kill),
        Server ! {release, 5},
        receive {a_done, ADone} -> ?assertMatch({ok, [5], _}, ADone) after 2000 -> error(a_hangs) end,
        ?assertEqual({ok, [6]}, within(2000, fun() -> hb_beamr:call(WASM, "inc", [5]) end)),
        ?assertEqual(
            {ok, [8], #{}},
            within(2000, fun() ->
                hb_beamr:call(WASM, "count", [1], fun(S, _, _) -> {ok, [8], S} end)
            end)
        ),
        _ = A
    end).

%% 2. A raw caller that dies mid-import frees the instance.
a_raw_caller_dying_mid_import_frees_the_instance_test() ->
    with_instance("imports.wasm", fun(WASM) ->
        Test = self(),
        Raw = spawn(fun() ->
            hb_beamr:wasm_send(WASM, {command, term_to_binary({call, "count", [1]})}),
            receive
                {import, _, _, _, _} -> Test ! raw_in_import
            end
        end),
        receive raw_in_import -> ok after 2000 -> error(no_import) end,
        exit(Raw, kill),
        ?assertEqual({ok, [6]}, within(2000, fun() -> hb_beamr:call(WASM, "inc", [5]) end))
    end).

%% 3. Only the owner of a call answers its imports.
a_stranger_cannot_answer_an_import_test() ->
    with_instance("imports.wasm", fun(WASM) ->
        Test = self(),
        spawn(fun() ->
            Test ! {done, hb_beamr:call(WASM, "count", [1], blocking_import(Test))}
        end),
        Server = receive {in_import, S} -> S after 2000 -> error(no_import) end,
        ok = hb_beamr:wasm_send(WASM, {command, term_to_binary({import_response, [999]})}),
        receive
            {error, Why} -> ?assertEqual(not_call_owner, Why)
        after 2000 -> error(no_rejection)
        end,
        Server ! {release, 5},
        receive {done, Done} -> ?assertMatch({ok, [5], _}, Done) after 2000 -> error(hangs) end
    end).

%% 4. Killing the instance pid mid-call is stop/1: the caller gets
%% `{error, stopped}' and the thread ends.
killing_the_instance_pid_mid_call_stops_it_test() ->
    Before = threads(),
    WASM = start("spin.wasm"),
    Test = self(),
    spawn(fun() -> Test ! {done, hb_beamr:call(WASM, "forever", [])} end),
    timer:sleep(50),
    exit(WASM, kill),
    receive {done, Done} -> ?assertEqual({error, stopped}, Done) after 2000 -> error(hangs) end,
    ?assert(wait_until(fun() -> threads() =< Before end)).

%% 5. A starter killed during start leaves no instance behind (its start
%% function never ends, so every starter dies mid-start).
a_killed_starter_leaves_nothing_behind_test() ->
    Bytes = bytes_in_mode("start-loop.wasm"),
    Live = hb_beamr_nif:live_instances(),
    Before = threads(),
    Starters = [spawn(fun() -> hb_beamr:start(Bytes, mode()) end) || _ <- lists:seq(1, 20)],
    timer:sleep(5),
    [exit(S, kill) || S <- Starters],
    ?assert(wait_until(fun() -> hb_beamr_nif:live_instances() =< Live end)),
    ?assert(wait_until(fun() -> threads() =< Before end)).

%% 5b. A starter killed while it serves an import of the start function.
a_starter_killed_mid_start_import_leaves_nothing_behind_test() ->
    Live = hb_beamr_nif:live_instances(),
    Test = self(),
    Starter = spawn(fun() ->
        hb_beamr:start(fixture("ctors-import.wasm"), wasm, #{import_fun => blocking_import(Test)})
    end),
    receive {in_import, _} -> ok after 2000 -> error(no_import) end,
    exit(Starter, kill),
    ?assert(wait_until(fun() -> hb_beamr_nif:live_instances() =< Live end)).

%% 6. An import function that never returns: the call still times out on
%% time, and the instance serves the next call.
a_stuck_import_fun_times_out_on_time_test() ->
    with_instance("imports.wasm", fun(WASM) ->
        Stuck = fun(_, _, _) -> receive never -> ok end end,
        T0 = erlang:monotonic_time(millisecond),
        Result = within(3000, fun() ->
            hb_beamr:call(WASM, "count", [1], Stuck, #{}, #{timeout => 200})
        end),
        Elapsed = erlang:monotonic_time(millisecond) - T0,
        ?assertEqual({error, timeout}, Result),
        ?assert(Elapsed < 1000),
        ?assertEqual({ok, [6]}, within(2000, fun() -> hb_beamr:call(WASM, "inc", [5]) end))
    end).

%% 6b. Calls with a timeout keep everything else: imports, state, nested
%% calls from inside the import function.
a_call_with_a_timeout_serves_imports_and_nested_calls_test() ->
    with_instance("imports.wasm", fun(WASM) ->
        Import = fun(N, #{args := [I]}, _) ->
            {ok, [Inc]} = hb_beamr:call(WASM, "inc", [I]),
            {ok, [Inc], N + 1}
        end,
        ?assertEqual({ok, [3], 3}, hb_beamr:call(WASM, "count", [3], Import, 0, #{timeout => 5000}))
    end).

%% 7. A start function that never ends: start/3 returns on time, and the
%% start is stopped inside WebAssembly, its thread freed.
a_start_function_that_never_ends_times_out_test() ->
    Bytes = bytes_in_mode("start-loop.wasm"),
    Live = hb_beamr_nif:live_instances(),
    Before = threads(),
    T0 = erlang:monotonic_time(millisecond),
    Result = within(3000, fun() -> hb_beamr:start(Bytes, mode(), #{timeout => 200}) end),
    ?assertEqual({error, timeout}, Result),
    ?assert(erlang:monotonic_time(millisecond) - T0 < 1000),
    ?assert(wait_until(fun() -> hb_beamr_nif:live_instances() =< Live end)),
    ?assert(wait_until(fun() -> threads() =< Before end)).

%% 7b. stop/1 of an instance whose start function never ends, from another
%% process, ends the start.
stopping_a_starting_instance_ends_its_start_test() ->
    Bytes = bytes_in_mode("start-loop.wasm"),
    Before = threads(),
    Test = self(),
    %% The starter watches for its instance's pid to appear.
    Starter = spawn(fun() -> Test ! {started, hb_beamr:start(Bytes, mode())} end),
    ?assert(wait_until(fun() -> threads() > Before end)),
    [WASM] = [P || {P, _} <- starting_instances(Starter)],
    ok = hb_beamr:stop(WASM),
    receive {started, Result} -> ?assertEqual({error, stopped}, Result) after 2000 -> error(hangs) end,
    ?assert(wait_until(fun() -> threads() =< Before end)).

%% The worker processes `Starter' has spawned that are still starting.
starting_instances(Starter) ->
    [{P, I} || P <- processes(),
               {current_function, {hb_beamr_start, starting, 2}} =:= (I = erlang:process_info(P, current_function)),
               {dictionary, D} <- [erlang:process_info(P, dictionary)],
               is_list(D),
               Starter =/= P].

bytes_in_mode(Name) ->
    case mode() of
        wasm -> fixture(Name);
        aot -> {ok, Aot} = hb_beamr:compile(fixture(Name)), Aot
    end.

%% 8. Bad terms are errors, never exceptions.
bad_terms_are_errors_test() ->
    with_instance("imports.wasm", fun(WASM) ->
        ?assertMatch({error, {invalid_args, _}}, hb_beamr:call(WASM, "inc", [1 | 2])),
        ?assertEqual({error, function_not_found}, hb_beamr:call(WASM, [$i | $n], [1])),
        ?assertEqual({error, badarg}, hb_beamr_io:write_string(WASM, [300])),
        ?assertEqual({error, badarg}, hb_beamr_io:write_string(WASM, [<<"a">> | foo])),
        ?assertEqual({error, badarg}, hb_beamr_io:read(WASM, -1, 4)),
        ?assertEqual({error, badarg}, hb_beamr_io:write(WASM, 0, [1 | 2])),
        ?assertEqual({error, badarg}, hb_beamr:deserialize(WASM, [1 | 2])),
        ?assertEqual({error, badarg}, hb_beamr:call(WASM, "inc", [1], not_a_fun)),
        ?assertMatch({error, {invalid_option, _}}, hb_beamr:start(fixture("test.wasm"), wasm, #{import_fun => 1})),
        ?assertMatch({error, {invalid_option, _}}, hb_beamr:start(fixture("test.wasm"), wasm, #{timeout => -1})),
        Improper = fun(S, _, _) -> {ok, [1 | 2], S} end,
        ?assertMatch({error, _, _, _, _}, hb_beamr:call(WASM, "count", [1], Improper)),
        % The instance still works.
        ?assertEqual({ok, [2]}, hb_beamr:call(WASM, "inc", [1]))
    end).

%% Imports called during instantiation (emscripten constructors) are served
%% by start/3's import function, with hb_beamr_io on the instance.
imports_during_instantiation_are_served_test() ->
    Bytes = case mode() of
        wasm -> fixture("ctors-import.wasm");
        aot -> {ok, Aot} = hb_beamr:compile(fixture("ctors-import.wasm")), Aot
    end,
    Import = fun(Calls, #{instance := W, func := <<"environ_size">>}, _) ->
        ok = hb_beamr_io:write(W, 16, <<42>>),
        {ok, [123], [environ_size | Calls]}
    end,
    {ok, WASM, _, _, State} = hb_beamr:start(Bytes, mode(), #{import_fun => Import, state => []}),
    try
        ?assertEqual([environ_size], State),
        ?assertEqual({ok, [123]}, hb_beamr:call(WASM, "size", [])),
        ?assertEqual({ok, [42]}, hb_beamr:call(WASM, "first", []))
    after
        hb_beamr:stop(WASM)
    end,
    % Without an import function such a module does not start.
    ?assertMatch({error, {instantiation_failed, _}}, hb_beamr:start(Bytes, mode())).

%% An import function that raises during instantiation: the start fails
%% with the exception, and nothing is left behind.
a_raising_start_import_fails_the_start_test() ->
    Live = hb_beamr_nif:live_instances(),
    Raise = fun(_, _, _) -> error(boom) end,
    ?assertMatch(
        {error, error, boom, _, _},
        hb_beamr:start(fixture("ctors-import.wasm"), wasm, #{import_fun => Raise})
    ),
    ?assert(wait_until(fun() -> hb_beamr_nif:live_instances() =< Live end)).

%% Issue 19.14: while a call waits in an import, another process's state
%% operations (restore, deserialize, writes) wait for it, as its calls do;
%% they are applied once the call has returned. The call sees its own state.
a_strangers_state_operations_wait_for_the_running_call_test_() ->
    Ops = [
        {restore, fun(W, Snap, _Mem) -> hb_beamr:restore(W, Snap) end, 6},
        {deserialize, fun(W, _Snap, Mem) -> hb_beamr:deserialize(W, Mem) end, 3 + 41},
        {write, fun(W, _Snap, _Mem) -> hb_beamr_io:write(W, 0, <<3:32/little>>) end, 3 + 41}
    ],
    [{atom_to_list(Name), fun() -> a_stranger_waits(Op, After) end} || {Name, Op, After} <- Ops].

a_stranger_waits(Op, After) ->
    with_instance("import-state.wasm", fun(WASM) ->
        Test = self(),
        {ok, []} = hb_beamr:call(WASM, "store", [3]),
        {ok, Snap} = hb_beamr:snapshot(WASM),
        {ok, Mem} = hb_beamr:serialize(WASM),
        spawn(fun() ->
            Test ! {a_done, hb_beamr:call(WASM, "store_wait_load", [41], blocking_import(Test))}
        end),
        Server = receive {in_import, S} -> S after 2000 -> error(no_import) end,
        spawn(fun() -> Test ! {b_done, Op(WASM, Snap, Mem)} end),
        receive {b_done, Early} -> error({applied_during_the_call, Early}) after 100 -> ok end,
        Server ! {release, 0},
        receive {a_done, ADone} -> ?assertMatch({ok, [82], _}, ADone) after 2000 -> error(a_hangs) end,
        receive {b_done, BDone} -> ?assertEqual(ok, BDone) after 2000 -> error(b_hangs) end,
        ?assertEqual({ok, [After]}, hb_beamr:call(WASM, "load", []))
    end).

%% The owner's own state operations, from inside its import function, are
%% applied at once.
the_owners_state_operations_run_inside_its_call_test() ->
    with_instance("import-state.wasm", fun(WASM) ->
        {ok, []} = hb_beamr:call(WASM, "store", [3]),
        {ok, Snap} = hb_beamr:snapshot(WASM),
        Restore = fun(State, _, _) -> ok = hb_beamr:restore(WASM, Snap), {ok, [0], State} end,
        ?assertMatch({ok, [6], _}, hb_beamr:call(WASM, "store_wait_load", [41], Restore)),
        WithTimeout = hb_beamr:call(WASM, "store_wait_load", [41], Restore, #{}, #{timeout => 5000}),
        ?assertMatch({ok, [6], _}, WithTimeout)
    end).
