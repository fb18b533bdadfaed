%%% @doc Calling exports: values of every type, indirect calls, traps,
%%% argument checks, concurrency, and the raw wasm_send/2 protocol.
-module(hb_beamr_call_tests).
-include_lib("eunit/include/eunit.hrl").
-include("include/hb.hrl").

-import(hb_beamr_test_util, [fixture/1, start/1, start/2, with_instance/2]).

fac_by_string_and_binary_name_test() ->
    with_instance("test.wasm", fun(W) ->
        ?assertEqual({ok, [120.0]}, hb_beamr:call(W, "fac", [5.0])),
        ?assertEqual({ok, [24.0]}, hb_beamr:call(W, <<"fac">>, [4.0])),
        % Integers widen to float parameters.
        ?assertEqual({ok, [6.0]}, hb_beamr:call(W, "fac", [3]))
    end).

call_4_and_call_5_return_the_state_test() ->
    with_instance("test.wasm", fun(W) ->
        Fun = fun hb_beamr:stub/3,
        ?assertEqual({ok, [2.0], #{}}, hb_beamr:call(W, "fac", [2.0], Fun)),
        ?assertEqual({ok, [2.0], my_state}, hb_beamr:call(W, "fac", [2.0], Fun, my_state)),
        ?assertEqual({ok, [1.0], s}, hb_beamr:call(W, "fac", [0.0], Fun, s, #{opt => 1}))
    end).

integers_keep_their_full_range_test_() ->
    instance_tests("values.wasm", fun(W) ->
        Id = fun(F, V) -> hb_beamr:call(W, F, [V]) end,
        [
            ?_assertEqual({ok, [-1]}, Id("id_i32", -1)),
            ?_assertEqual({ok, [-1]}, Id("id_i32", 16#FFFFFFFF)),
            ?_assertEqual({ok, [-2147483648]}, Id("id_i32", -2147483648)),
            ?_assertEqual({ok, [2147483647]}, Id("id_i32", 2147483647)),
            ?_assertEqual({ok, [-9223372036854775808]}, Id("id_i64", -9223372036854775808)),
            ?_assertEqual({ok, [9223372036854775807]}, Id("id_i64", 9223372036854775807)),
            ?_assertEqual({ok, [-1]}, Id("id_i64", 16#FFFFFFFFFFFFFFFF)),
            ?_assertEqual({ok, [5000000000]}, Id("id_i64", 5000000000)),
            ?_assertMatch({error, {invalid_args, _}}, Id("id_i32", 16#100000000)),
            ?_assertMatch({error, {invalid_args, _}}, Id("id_i64", 16#10000000000000000)),
            ?_assertMatch({error, {invalid_args, _}}, Id("id_i32", 1.5))
        ]
    end).

floats_round_trip_test_() ->
    instance_tests("values.wasm", fun(W) ->
        [
            ?_assertEqual({ok, [1.5]}, hb_beamr:call(W, "id_f32", [1.5])),
            ?_assertEqual({ok, [-0.25]}, hb_beamr:call(W, "id_f32", [-0.25])),
            ?_assertEqual({ok, [1.0e300]}, hb_beamr:call(W, "id_f64", [1.0e300])),
            ?_assertEqual({ok, [-2.5e-300]}, hb_beamr:call(W, "id_f64", [-2.5e-300])),
            ?_assertEqual({ok, [infinity]}, hb_beamr:call(W, "inf", [])),
            ?_assertEqual({ok, [nan]}, hb_beamr:call(W, "nan", [])),
            ?_assertEqual({ok, [neg_infinity]}, hb_beamr:call(W, "id_f64", [neg_infinity]))
        ]
    end).

multi_value_results_test_() ->
    instance_tests("values.wasm", fun(W) ->
        [
            ?_assertEqual({ok, [-7, 3]}, hb_beamr:call(W, "swap", [3, -7])),
            ?_assertEqual({ok, [-1, -9223372036854775808, 1.5, -2.25]}, hb_beamr:call(W, "four", [])),
            ?_assertEqual({ok, [10.5]}, hb_beamr:call(W, "mix", [1, 2, 3.5, 4.0])),
            ?_assertEqual({ok, []}, hb_beamr:call(W, "nothing", []))
        ]
    end).

argument_checks_test_() ->
    instance_tests("test.wasm", fun(W) ->
        [
            ?_assertEqual(
                {error, {invalid_args, [<<"invalid">>]}},
                hb_beamr:call(W, "fac", [<<"invalid">>], fun hb_beamr:stub/3, #{}, #{})
            ),
            ?_assertEqual({error, {invalid_args, []}}, hb_beamr:call(W, "fac", [])),
            ?_assertEqual({error, {invalid_args, [1.0, 2.0]}}, hb_beamr:call(W, "fac", [1.0, 2.0])),
            ?_assertEqual({error, {invalid_args, not_a_list}}, hb_beamr:call(W, "fac", not_a_list)),
            ?_assertEqual({error, function_not_found}, hb_beamr:call(W, "no_such_export", [])),
            ?_assertEqual({error, function_not_found}, hb_beamr:call(W, {weird}, [])),
            ?_assertEqual({error, badarg}, hb_beamr:call(not_a_pid, "fac", [1.0])),
            % An instance without a function table cannot make indirect calls.
            ?_assertEqual({error, no_function_table}, hb_beamr:call(W, 0, []))
        ]
    end).

indirect_calls_by_table_index_test_() ->
    instance_tests("indirect.wasm", fun(W) ->
        [
            ?_assertEqual({ok, [42]}, hb_beamr:call(W, 1, [21])),
            ?_assertEqual({ok, [6000000000]}, hb_beamr:call(W, 2, [1000000000, 2000000000, 3000000000])),
            ?_assertEqual({ok, [3.14159]}, hb_beamr:call(W, 3, [])),
            ?_assertMatch({error, {wasm_trap, _}}, hb_beamr:call(W, 0, [])),
            ?_assertMatch({error, {wasm_trap, _}}, hb_beamr:call(W, 99, [])),
            ?_assertMatch({error, {invalid_args, _}}, hb_beamr:call(W, 1, []))
        ]
    end).

traps_are_errors_and_the_instance_goes_on_test_() ->
    instance_tests("traps.wasm", fun(W) ->
        Trap = fun(F, Args) -> hb_beamr:call(W, F, Args) end,
        [
            ?_assertEqual({error, {wasm_trap, <<"unreachable">>}}, Trap("unreachable", [])),
            ?_assertEqual({error, {wasm_trap, <<"integer divide by zero">>}}, Trap("div", [1, 0])),
            ?_assertEqual({error, {wasm_trap, <<"integer overflow">>}}, Trap("div", [-2147483648, -1])),
            ?_assertEqual({error, {wasm_trap, <<"out of bounds memory access">>}}, Trap("oob_load", [])),
            % The interpreter runs out of operand stack, AOT code of native stack.
        ?_assertMatch({error, {wasm_trap, <<_/binary>>}}, Trap("recurse", [0])),
        ?_assert(is_stack_overflow(Trap("recurse", [0]))),
            ?_assertMatch({error, {wasm_trap, _}}, Trap("bad_indirect", [])),
            ?_assertEqual(
                {error, {wasm_trap, <<"indirect call type mismatch">>}},
                Trap("wrong_type_indirect", [])
            ),
            ?_assertEqual({ok, [42]}, Trap("add_one", [41]))
        ]
    end).

calls_from_many_processes_are_all_served_test() ->
    with_instance("values.wasm", fun(W) ->
        Self = self(),
        N = 50,
        PerProcess = 40,
        [
            spawn(fun() ->
                Results = [hb_beamr:call(W, "id_i64", [P * 1000 + I]) || I <- lists:seq(1, PerProcess)],
                Self ! {done, P, Results}
            end)
         || P <- lists:seq(1, N)
        ],
        All = [receive {done, P, R} -> {P, R} end || P <- lists:seq(1, N)],
        [
            ?assertEqual([{ok, [P * 1000 + I]} || I <- lists:seq(1, PerProcess)], R)
         || {P, R} <- All
        ]
    end).

raw_protocol_call_test() ->
    with_instance("test.wasm", fun(W) ->
        ok = hb_beamr:wasm_send(W, {command, term_to_binary({call, "fac", [5.0]})}),
        ?assertEqual({execution_result, [120.0]}, receive M -> M after 5000 -> timeout end)
    end).

raw_protocol_memory_and_imports_test() ->
    with_instance("test-print.wasm", fun(W) ->
        Send = fun(Cmd) -> ok = hb_beamr:wasm_send(W, {command, term_to_binary(Cmd)}) end,
        Next = fun() -> receive M -> M after 5000 -> timeout end end,
        Send({size}),
        ?assertEqual({execution_result, 65536}, Next()),
        Send({write, 0, <<"raw">>}),
        ?assertEqual(ok, Next()),
        Send({read, 0, 3}),
        ?assertEqual({execution_result, <<"raw">>}, Next()),
        Send({call, <<"hello">>, []}),
        ?assertEqual({import, <<"env">>, <<"print">>, [66, 13], <<"(ii)">>}, Next()),
        Send({import_response, []}),
        ?assertEqual({execution_result, [13]}, Next()),
        Send({read, 70000, 1}),
        ?assertMatch({error, {out_of_bounds, _}}, Next()),
        Send({no_such_command}),
        ?assertMatch({error, _}, Next()),
        ok = hb_beamr:wasm_send(W, not_a_command),
        ?assertMatch({error, {invalid_command, not_a_command}}, Next())
    end).

raw_protocol_indirect_call_test() ->
    with_instance("indirect.wasm", fun(W) ->
        ok = hb_beamr:wasm_send(W, {command, term_to_binary({indirect_call, 1, [5]})}),
        ?assertEqual({execution_result, [10]}, receive M -> M after 5000 -> timeout end)
    end).

is_stack_overflow({error, {wasm_trap, Why}}) ->
    binary:match(Why, <<"stack overflow">>) =/= nomatch;
is_stack_overflow(_) ->
    false.

%% Exception handling: the interpreter runs it; compile/1 rewrites it for AOT.
exception_handling_test_() ->
    {setup, fun() -> start("exceptions.wasm") end, fun hb_beamr:stop/1, fun(W) ->
        [
            {"thrown and caught", ?_assertEqual({ok, [1007]}, hb_beamr:call(W, "catch", [7]))},
            {"uncaught is a trap", ?_assertMatch({error, {wasm_trap, _}}, hb_beamr:call(W, "uncaught", [7]))},
            {"the instance goes on", ?_assertEqual({ok, [1001]}, hb_beamr:call(W, "catch", [1]))}
        ]
    end}.

%% Tests that share one instance of a fixture, stopped after them.
instance_tests(Fixture, Tests) ->
    {setup, fun() -> start(Fixture) end, fun hb_beamr:stop/1, Tests}.

enabled_proposals_work_test_() ->
    instance_tests("features.wasm", fun(W) ->
        [
            {"tail calls do not grow the stack", ?_assertEqual({ok, [42]}, hb_beamr:call(W, "countdown", [1000000]))},
            {"bulk memory", fun() ->
                {ok, []} = hb_beamr:call(W, "fill", [100, 16#61, 5]),
                ?assertEqual({ok, <<"aaaaa">>}, hb_beamr_io:read(W, 100, 5))
            end},
            {"reference types", ?_assertEqual({ok, [1]}, hb_beamr:call(W, "null_ref", []))}
        ]
    end).

%% Issue 19.15: names that are not exports are not remembered, so asking
%% for many of them costs no memory (20,000 distinct 10 KB names grew the
%% node by 190 MiB until stop/1 when misses were cached).
missing_export_names_are_not_kept_test_() ->
    {timeout, 120, fun() ->
        with_instance("test.wasm", fun(W) ->
            Pad = binary:copy(<<"x">>, 10240),
            Miss = fun(N) ->
                {error, function_not_found} =
                    hb_beamr:call(W, <<(integer_to_binary(N))/binary, Pad/binary>>, [])
            end,
            % Warm up allocators, so that only growth from the misses counts.
            lists:foreach(Miss, lists:seq(1, 2000)),
            Before = rss(),
            lists:foreach(Miss, lists:seq(2001, 22000)),
            Grown = rss() - Before,
            % Under AddressSanitizer (scripts/asan.sh) freed memory stays in
            % its quarantine: RSS says nothing there.
            case os:getenv("HB_BEAMR_ASAN") of
                false -> ?assert(Grown < 64 * 1024 * 1024);
                _ -> ok
            end,
            ?assertEqual({ok, [120.0]}, hb_beamr:call(W, "fac", [5.0]))
        end)
    end}.

%% The node's resident memory in bytes.
rss() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s+(\\d+)", [{capture, all_but_first, binary}]),
    binary_to_integer(Kb) * 1024.
