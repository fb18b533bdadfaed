%%% @doc Imports served by Erlang: the ImportFun protocol, state threading,
%%% failures inside import functions, nested calls, and natively served
%%% emscripten invoke_* trampolines.
-module(hb_beamr_import_tests).
-include_lib("eunit/include/eunit.hrl").
-include("include/hb.hrl").

-import(hb_beamr_test_util, [fixture/1, start/1, with_instance/2, wait_until/1]).

pow_multiplies_through_the_import_test() ->
    with_instance("pow_calculator.wasm", fun(W) ->
        Mul = fun(State, #{args := [A, B]}, _Opts) -> {ok, [A * B], State} end,
        ?assertEqual({ok, [32], #{}}, hb_beamr:call(W, <<"pow">>, [2, 5], Mul)),
        ?assertEqual({ok, [1], #{}}, hb_beamr:call(W, "pow", [7, 0], Mul))
    end).

import_request_carries_everything_test() ->
    with_instance("pow_calculator.wasm", fun(W) ->
        Self = self(),
        Fun = fun(State, Request, Opts) ->
            Self ! {request, Request, Opts},
            {ok, [6], State}
        end,
        {ok, [6], done} = hb_beamr:call(W, "pow", [3, 1], Fun, done, #{my => opt}),
        receive
            {request, Request, Opts} ->
                ?assertEqual(
                    #{instance => W, module => <<"my_lib">>, func => <<"mul">>, args => [1, 3], func_sig => <<"(ii)i">>},
                    Request
                ),
                ?assertEqual(#{my => opt}, Opts)
        end
    end).

state_threads_through_every_import_test() ->
    with_instance("imports.wasm", fun(W) ->
        Count = fun(#{seen := Seen} = S, #{func := <<"counter">>, args := [I]}, _) ->
            {ok, [I * 10], S#{seen := [I | Seen]}}
        end,
        {ok, [40], Final} = hb_beamr:call(W, "count", [5], Count, #{seen => []}, #{}),
        ?assertEqual([4, 3, 2, 1, 0], maps:get(seen, Final))
    end).

a_call_without_imports_keeps_the_state_test() ->
    with_instance("test.wasm", fun(W) ->
        Counting = fun(S = #{counter := C}, _, _) -> {ok, [0], S#{counter => C + 1}} end,
        ?assertEqual(
            {ok, [6.0], #{counter => 0}},
            hb_beamr:call(W, "fac", [3.0], Counting, #{counter => 0}, #{})
        )
    end).

imports_of_every_number_type_test() ->
    with_instance("imports.wasm", fun(W) ->
        Fun = fun
            (S, #{func := <<"f64_op">>, args := [A, B], func_sig := <<"(FF)F">>}, _) -> {ok, [A / B], S};
            (S, #{func := <<"i64_op">>, args := [A], func_sig := <<"(I)I">>}, _) -> {ok, [A * -2], S};
            (S, #{func := <<"f32_op">>, args := [A], func_sig := <<"(f)f">>}, _) -> {ok, [A + 0.5], S}
        end,
        ?assertEqual({ok, [2.5], #{}}, hb_beamr:call(W, "floats", [5.0, 2.0], Fun)),
        ?assertEqual({ok, [-10000000000], #{}}, hb_beamr:call(W, "wide", [5000000000], Fun)),
        ?assertEqual({ok, [2.0], #{}}, hb_beamr:call(W, "narrow", [1.5], Fun))
    end).

void_imports_accept_any_answer_test() ->
    with_instance("imports.wasm", fun(W) ->
        Fun = fun(Seen, #{func := <<"notify">>, args := [X], func_sig := <<"(i)">>}, _) ->
            {ok, [0], [X | Seen]}
        end,
        ?assertEqual({ok, [7], [4, 3]}, hb_beamr:call(W, "notify_twice", [3], Fun, []))
    end).

call_3_answers_imports_with_zeros_test() ->
    with_instance("pow_calculator.wasm", fun(W) ->
        ?assertEqual({ok, [0]}, hb_beamr:call(W, "pow", [2, 3]))
    end).

import_fun_that_throws_test() ->
    with_instance("pow_calculator.wasm", fun(W) ->
        Fun = fun(_, _, _) -> throw({my_error, reason}) end,
        ?assertMatch(
            {error, throw, {my_error, reason}, [_ | _], start_state},
            hb_beamr:call(W, "pow", [2, 2], Fun, start_state, #{})
        ),
        % The instance is not left waiting: it answers the next call.
        Mul = fun(S, #{args := [A, B]}, _) -> {ok, [A * B], S} end,
        ?assertEqual({ok, [9], #{}}, hb_beamr:call(W, "pow", [3, 2], Mul)),
        ?assertEqual([], flush())
    end).

import_fun_that_errors_or_exits_test() ->
    with_instance("pow_calculator.wasm", fun(W) ->
        Error = fun(_, _, _) -> error(boom) end,
        Exit = fun(_, _, _) -> exit(gone) end,
        ?assertMatch({error, error, boom, _, s}, hb_beamr:call(W, "pow", [2, 2], Error, s)),
        ?assertMatch({error, exit, gone, _, s}, hb_beamr:call(W, "pow", [2, 2], Exit, s))
    end).

state_before_the_failing_import_is_returned_test() ->
    with_instance("imports.wasm", fun(W) ->
        Fun = fun
            (N, #{args := [2]}, _) -> error({failed_after, N});
            (N, _, _) -> {ok, [0], N + 1}
        end,
        ?assertMatch({error, error, {failed_after, 2}, _, 2}, hb_beamr:call(W, "count", [5], Fun, 0))
    end).

bad_import_answers_test() ->
    with_instance("pow_calculator.wasm", fun(W) ->
        NotOk = fun(S, _, _) -> {not_ok, S} end,
        NotList = fun(S, _, _) -> {ok, 5, S} end,
        NotNumbers = fun(S, _, _) -> {ok, [<<"x">>], S} end,
        WrongType = fun(S, _, _) -> {ok, [1.5], S} end,
        WrongCount = fun(S, _, _) -> {ok, [], S} end,
        ?assertMatch({error, error, {badmatch, {not_ok, s}}, _, s}, hb_beamr:call(W, "pow", [2, 2], NotOk, s)),
        ?assertMatch({error, throw, {error, {invalid_response, 5}}, _, s}, hb_beamr:call(W, "pow", [2, 2], NotList, s)),
        ?assertMatch({error, throw, {error, {invalid_response, _}}, _, s}, hb_beamr:call(W, "pow", [2, 2], NotNumbers, s)),
        ?assertMatch({error, {invalid_import_response, _}}, hb_beamr:call(W, "pow", [2, 2], WrongType, s)),
        ?assertMatch({error, {invalid_import_response, _}}, hb_beamr:call(W, "pow", [2, 2], WrongCount, s)),
        ?assertEqual({ok, [0]}, hb_beamr:call(W, "pow", [2, 2]))
    end).

import_fun_reads_memory_during_the_call_test() ->
    with_instance("test-print.wasm", fun(W) ->
        Print = fun(Printed, #{func := <<"print">>, args := [Ptr, Len]}, _) ->
            {ok, Text} = hb_beamr_io:read(W, Ptr, Len),
            {ok, SameText} = hb_beamr_io:read_string(W, Ptr),
            ok = hb_beamr_io:write(W, 0, <<"written from an import">>),
            {ok, [], [{Text, SameText} | Printed]}
        end,
        ?assertEqual(
            {ok, [13], [{<<"Hello, World!">>, <<"Hello, World!">>}]},
            hb_beamr:call(W, "hello", [], Print, [])
        ),
        ?assertEqual({ok, <<"written from an import">>}, hb_beamr_io:read(W, 0, 22))
    end).

import_fun_calls_back_into_the_instance_test() ->
    with_instance("imports.wasm", fun(W) ->
        Reenter = fun(S, #{func := <<"reenter">>, args := [X]}, _) ->
            {ok, [Inc]} = hb_beamr:call(W, "inc", [X]),
            {ok, [Inc * 2], S}
        end,
        ?assertEqual({ok, [22], #{}}, hb_beamr:call(W, "reenter", [10], Reenter)),
        % A nested call that traps fails alone; the outer call goes on.
        Trapping = fun(S, #{func := <<"reenter">>}, _) ->
            {error, _} = hb_beamr:call(W, "inc", [not_a_number]),
            {error, function_not_found} = hb_beamr:call(W, "missing", []),
            {ok, [1], S}
        end,
        ?assertEqual({ok, [1], #{}}, hb_beamr:call(W, "reenter", [10], Trapping))
    end).

another_process_waits_while_an_import_is_served_test() ->
    with_instance("imports.wasm", fun(W) ->
        Self = self(),
        Slow = fun(S, #{func := <<"reenter">>, args := [X]}, _) ->
            spawn(fun() -> Self ! {other, hb_beamr:call(W, "inc", [100])} end),
            timer:sleep(50),
            % The other process's call has not run: it waits for this one.
            receive {other, _} -> error(not_serialised) after 0 -> ok end,
            {ok, [X], S}
        end,
        ?assertEqual({ok, [5], #{}}, hb_beamr:call(W, "reenter", [5], Slow)),
        ?assertEqual({ok, [101]}, receive {other, R} -> R after 5000 -> timeout end)
    end).

caller_that_dies_during_an_import_does_not_block_the_instance_test() ->
    with_instance("pow_calculator.wasm", fun(W) ->
        Self = self(),
        Caller = spawn(fun() ->
            hb_beamr:call(W, "pow", [2, 2], fun(_, _, _) ->
                Self ! in_import,
                receive never -> ok end
            end)
        end),
        receive in_import -> ok end,
        exit(Caller, kill),
        Mul = fun(S, #{args := [A, B]}, _) -> {ok, [A * B], S} end,
        ?assertEqual({ok, [8], #{}}, hb_beamr:call(W, "pow", [2, 3], Mul))
    end).

stop_during_an_import_ends_the_call_test() ->
    W = start("pow_calculator.wasm"),
    Fun = fun(S, _, _) ->
        hb_beamr:stop(W),
        {ok, [1], S}
    end,
    ?assertEqual({error, stopped}, hb_beamr:call(W, "pow", [2, 2], Fun)),
    ?assert(wait_until(fun() -> not is_process_alive(W) end)).

emscripten_invoke_trampolines_are_served_natively_test() ->
    with_instance("imports.wasm", fun(W) ->
        NoErlang = fun(_, Request, _) -> error({unexpected_import, Request}) end,
        ?assertEqual({ok, [21], #{}}, hb_beamr:call(W, "via_invoke", [7], NoErlang)),
        ?assertEqual({ok, [99], #{}}, hb_beamr:call(W, "via_invoke_void", [99], NoErlang)),
        ?assertEqual(
            {ok, [-1], #{}},
            hb_beamr:call(W, "via_invoke_i64", [9223372036854775807, -9223372036854775808], NoErlang)
        ),
        % A table entry of the wrong type is a trap, not a crash.
        ?assertMatch({error, {wasm_trap, _}}, hb_beamr:call(W, "via_invoke_bad", [], NoErlang))
    end).

flush() ->
    receive M -> [M | flush()] after 0 -> [] end.

tail_calls_to_imports_test() ->
    with_instance("tail-call-import.wasm", fun(W) ->
        Answer = fun(N, #{func := <<"answer">>}, _) -> {ok, [42], N + 1} end,
        % One call deeper than the host's entry, a tail call to an import works.
        ?assertEqual({ok, [43], 1}, hb_beamr:call(W, "nested", [], Answer, 0)),
        case hb_beamr_test_util:mode() of
            wasm ->
                % An exported import is served like any import.
                ?assertEqual({ok, [42], 1}, hb_beamr:call(W, "reexported", [], Answer, 0)),
                % The interpreter cannot return from it: a trap, not a crash.
                ?assertMatch({error, {wasm_trap, <<"unsupported: tail call", _/binary>>}},
                             hb_beamr:call(W, "tail", [], Answer, 0));
            aot ->
                ?assertEqual({ok, [42], 1}, hb_beamr:call(W, "tail", [], Answer, 0)),
                % WAMR's AOT runtime would call an exported import through a
                % null pointer: hb_beamr refuses the call.
                ?assertMatch({error, {wasm_trap, _}}, hb_beamr:call(W, "reexported", [], Answer, 0))
        end,
        ?assertEqual({ok, [43], 1}, hb_beamr:call(W, "nested", [], Answer, 0))
    end).

%% Issue 19.13: an answer out of its type's range, however large, is one
%% error, `{invalid_import_response, Why}' (integers past 128 bits were
%% `{error, throw, {error, invalid_args}, _, _}').
out_of_range_answers_are_invalid_import_responses_test() ->
    with_instance("imports.wasm", fun(W) ->
        Answer = fun(Value) -> fun(S, _, _) -> {ok, [Value], S} end end,
        Call = fun(F, Args, Value) -> hb_beamr:call(W, F, Args, Answer(Value)) end,
        [
            ?assertMatch({error, {invalid_import_response, _}}, Call(F, Args, Value))
         || {F, Args, Value} <- [
                {"count", [1], 1 bsl 1000},
                {"count", [1], -(1 bsl 1000)},
                {"count", [1], 1 bsl 32},
                {"wide", [1], 1 bsl 200},
                {"wide", [1], 1 bsl 64},
                {"narrow", [1.0], 1 bsl 200},
                {"floats", [1.0, 2.0], 1 bsl 2000}
            ]
        ],
        % The instance serves the next call.
        ?assertEqual({ok, [7], #{}}, Call("count", [1], 7))
    end).

%% An import no answer can carry (an externref parameter, two results) fails its call
%% with `{unsupported_signature, Why}', however imports are served (the
%% protocol decides it, before any import fun is asked); the instance
%% serves on.
unsupported_import_signature_test() ->
    with_instance("import-unservable.wasm", fun(W) ->
        Asked = fun(_, _, _) -> error(asked) end,
        ?assertMatch({error, {unsupported_signature, <<"import env.take", _/binary>>}},
                     hb_beamr:call(W, "calls_it", [], Asked, s)),
        ?assertMatch({error, {unsupported_signature, _}}, hb_beamr:call(W, "calls_it", [])),
        ?assertMatch({error, {unsupported_signature, _}},
                     hb_beamr:call(W, "calls_it", [], fun hb_beamr:stub/3, s)),
        ?assertMatch({error, {unsupported_signature, <<"import env.pair returns several", _/binary>>}},
                     hb_beamr:call(W, "calls_pair", [], Asked, s)),
        ?assertEqual({ok, [7]}, hb_beamr:call(W, "plain", []))
    end).
