%%% @doc Runaway code: call timeouts and stop/1 on an instance that never
%%% returns. Runs in both modes (HB_BEAMR_TEST_MODE=aot).
-module(hb_beamr_runaway_tests).
-include_lib("eunit/include/eunit.hrl").
-include("include/hb.hrl").

-import(hb_beamr_test_util, [start/1, mode/0, wait_until/1]).

timeout_opts(Ms) ->
    #{timeout => Ms}.

%% Endless code, which both modes can interrupt: the interpreter checks at
%% every branch; hb_beamr's AOT compiler emits WAMR's suspend-flag check at
%% every loop back-edge and call (a build-time patch: WAMR emits it only for
%% shared memories).
endless_functions() ->
    ["forever", "count_forever"].

a_call_past_its_timeout_is_stopped_test_() ->
    [
        {Func, fun() ->
            W = start("spin.wasm"),
            {Micros, Result} = timer:tc(fun() ->
                hb_beamr:call(W, Func, [], fun hb_beamr:stub/3, #{}, timeout_opts(100))
            end),
            ?assertEqual({error, timeout}, Result),
            ?assert(Micros < 2000000),
            % The instance answers the next call, and a call within its time.
            ?assertEqual({ok, [7]}, hb_beamr:call(W, "quick", [])),
            ?assertEqual(
                {ok, [7], #{}},
                hb_beamr:call(W, "quick", [], fun hb_beamr:stub/3, #{}, timeout_opts(5000))
            ),
            hb_beamr:stop(W)
        end}
     || Func <- endless_functions()
    ].

the_timeout_stops_the_call_not_the_next_one_test() ->
    W = start("spin.wasm"),
    {error, timeout} = hb_beamr:call(W, "count_forever", [], fun hb_beamr:stub/3, #{}, timeout_opts(50)),
    {ok, [Count1]} = hb_beamr:call(W, "count", []),
    timer:sleep(100),
    % Nothing is still running: the counter no longer moves.
    ?assertEqual({ok, [Count1]}, hb_beamr:call(W, "count", [])),
    ?assert(Count1 > 0),
    hb_beamr:stop(W).

timeout_zero_and_bad_timeouts_test() ->
    W = start("spin.wasm"),
    ?assertEqual({error, timeout}, hb_beamr:call(W, "count_forever", [], fun hb_beamr:stub/3, #{}, timeout_opts(0))),
    ?assertEqual(
        {error, {invalid_option, {timeout, -1}}},
        hb_beamr:call(W, "quick", [], fun hb_beamr:stub/3, #{}, timeout_opts(-1))
    ),
    ?assertEqual(
        {ok, [7], #{}},
        hb_beamr:call(W, "quick", [], fun hb_beamr:stub/3, #{}, #{timeout => infinity})
    ),
    hb_beamr:stop(W).

timeout_during_a_slow_import_test() ->
    W = start("pow_calculator.wasm"),
    Slow = fun(S, #{args := [A, B]}, _) ->
        timer:sleep(30),
        {ok, [A * B], S}
    end,
    ?assertEqual({error, timeout}, hb_beamr:call(W, "pow", [1, 100], Slow, #{}, timeout_opts(100))),
    Mul = fun(S, #{args := [A, B]}, _) -> {ok, [A * B], S} end,
    ?assertEqual({ok, [8], #{}}, hb_beamr:call(W, "pow", [2, 3], Mul)),
    hb_beamr:stop(W).

stop_ends_an_endless_call_test_() ->
    [
        {Func, fun() ->
            Before = hb_beamr_nif:live_instances(),
            W = start("spin.wasm"),
            Self = self(),
            spawn(fun() -> Self ! {result, hb_beamr:call(W, Func, [])} end),
            timer:sleep(50),
            {Micros, ok} = timer:tc(fun() -> hb_beamr:stop(W) end),
            ?assert(Micros < 1000000),
            ?assertEqual({error, stopped}, receive {result, R} -> R after 5000 -> hung end),
            ?assert(wait_until(fun() -> hb_beamr_nif:live_instances() =:= Before end))
        end}
     || Func <- endless_functions()
    ].

%% Endless recursion overflows the stack, in AOT too (LLVM must not turn a
%% wasm call into a loop), and the instance answers the next call.
endless_recursion_is_a_stack_overflow_test_() ->
    {setup, fun() -> start("recursion.wasm") end, fun hb_beamr:stop/1, fun(W) ->
        Call = fun(F, Args) ->
            hb_beamr:call(W, F, Args, fun hb_beamr:stub/3, #{}, timeout_opts(10000))
        end,
        [
            {F, ?_assertMatch({error, {wasm_trap, <<_/binary>>}}, Call(F, Args))}
         || {F, Args} <- [{"self", []}, {"with_arg", [0]}, {"even", [0]}]
        ] ++
            [
                {F, ?_assert(is_stack_overflow(Call(F, Args)))}
             || {F, Args} <- [{"self", []}, {"with_arg", [0]}, {"even", [0]}]
            ] ++
            [
                ?_assertEqual({ok, [100], #{}}, Call("depth", [100])),
                % return_call is a jump: a million need no stack.
                ?_assertEqual({ok, [0], #{}}, Call("count", [1000000]))
            ]
    end}.

is_stack_overflow({error, {wasm_trap, Why}}) ->
    binary:match(Why, <<"stack overflow">>) =/= nomatch;
is_stack_overflow(_) ->
    false.
