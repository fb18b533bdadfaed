%%% @doc Timeouts mean what they say (issue 19, items 10 and 11): a start's
%%% `timeout' bounds the whole start, a compile through the cache included
%%% (the compile goes on and fills the cache), and compiles hold no
%%% scheduler, so that instances start on time while modules compile.
-module(hb_beamr_timeout_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, many_functions/2]).

%% Past the timeout, how late a start may return (a loaded 2-core CI
%% machine; the compile below takes seconds, so a start that waited for it
%% still fails).
-define(MARGIN_MS, 700).

with_cache_dir(Fun) ->
    Dir = filename:join(["/tmp", "hb_beamr_timeout_" ++ integer_to_list(erlang:unique_integer([positive]))]),
    Previous = application:get_env(hb_beamr, cache_dir),
    ok = application:set_env(hb_beamr, cache_dir, Dir),
    ok = hb_beamr_aot_cache:forget(),
    try
        Fun()
    after
        case Previous of
            {ok, D} -> application:set_env(hb_beamr, cache_dir, D);
            undefined -> application:unset_env(hb_beamr, cache_dir)
        end,
        ok = hb_beamr_aot_cache:forget(),
        _ = file:del_dir_r(Dir)
    end.

compiles() ->
    maps:get(compiles, hb_beamr_aot_cache:stats()).

now_ms() ->
    erlang:monotonic_time(millisecond).

%% Item 10: `start(Bytecode, aot, #{timeout => 300})' on a cache miss.
start_timeout_bounds_the_compile_test_() ->
    {timeout, 120, fun() -> with_cache_dir(fun() ->
        Timeout = 300,
        Wasm = many_functions(400, erlang:unique_integer([positive])),
        Before = compiles(),
        T0 = now_ms(),
        ?assertEqual({error, timeout}, hb_beamr:start(Wasm, aot, #{timeout => Timeout})),
        Elapsed = now_ms() - T0,
        ?debugFmt("cache miss, timeout ~b ms: {error, timeout} after ~b ms", [Timeout, Elapsed]),
        ?assertMatch(E when E >= Timeout andalso E =< Timeout + ?MARGIN_MS, Elapsed),
        % The compile went on; it really takes longer than the timeout here.
        ?assert(hb_beamr_test_util:wait_for(fun() -> compiles() =:= Before + 1 end, 60000)),
        CompileMs = now_ms() - T0,
        ?debugFmt("the compile took ~b ms", [CompileMs]),
        ?assertMatch(C when C > Timeout, CompileMs),
        % A later start finds it compiled: a hit, no second compile.
        {ok, WASM, _, _} = hb_beamr:start(Wasm, aot, #{timeout => 10000}),
        ?assertEqual(Before + 1, compiles()),
        {ok, [_]} = hb_beamr:call(WASM, "f", [3]),
        ok = hb_beamr:stop(WASM)
    end) end}.

%% A timeout of 0 on a miss: at once, still compiled in the background.
start_timeout_zero_on_a_miss_test_() ->
    {timeout, 60, fun() -> with_cache_dir(fun() ->
        Wasm = many_functions(20, erlang:unique_integer([positive])),
        Before = compiles(),
        ?assertEqual({error, timeout}, hb_beamr:start(Wasm, aot, #{timeout => 0})),
        ?assert(hb_beamr_test_util:wait_for(fun() -> compiles() =:= Before + 1 end, 30000)),
        {ok, WASM, _, _} = hb_beamr:start(Wasm, aot),
        ok = hb_beamr:stop(WASM)
    end) end}.

%% Item 11: compiles in flight (more than there are dirty CPU schedulers),
%% and meanwhile a start, in the suites' mode, with a 200 ms timeout.
starts_are_not_blocked_by_compiles_test_() ->
    {timeout, 120, fun() ->
        Mode = hb_beamr_test_util:mode(),
        Small = fixture("test.wasm"),
        Bin = case Mode of
            wasm -> Small;
            aot -> {ok, Aot} = hb_beamr:compile(Small), Aot
        end,
        N = erlang:system_info(dirty_cpu_schedulers) + 1,
        Test = self(),
        Compilers = [spawn_link(fun() ->
                         Test ! {compiled, self(), hb_beamr:compile(many_functions(150, erlang:unique_integer([positive])))}
                     end) || _ <- lists:seq(1, N)],
        timer:sleep(100),
        T0 = now_ms(),
        Result = hb_beamr:start(Bin, Mode, #{timeout => 200}),
        Timed = now_ms() - T0,
        T1 = now_ms(),
        Plain = hb_beamr:start(Bin, Mode),
        PlainMs = now_ms() - T1,
        % The compiles were still in flight.
        InFlight = [P || P <- Compilers, not received(P)],
        ?debugFmt("~p mode, ~b compiles queued (~b still in flight): start with a 200 ms timeout "
                  "~b ms, plain start ~b ms", [Mode, N, length(InFlight), Timed, PlainMs]),
        ?assertMatch({ok, _, _, _}, Result),
        ?assertMatch({ok, _, _, _}, Plain),
        ?assertMatch([_ | _], InFlight),
        ?assertMatch(P when P < 500, PlainMs),
        [ok = hb_beamr:stop(W) || {ok, W, _, _} <- [Result, Plain]],
        [receive {compiled, P, R} -> ?assertMatch({ok, _}, R) after 60000 -> error(compile_lost) end
         || P <- Compilers]
    end}.

received(Pid) ->
    receive
        {compiled, Pid, _} = Msg -> self() ! Msg, true
    after 0 ->
        false
    end.

%% A caller that exits while its compile is queued: the compiler thread's
%% reply goes nowhere, and the next compile is answered.
a_caller_that_exits_leaves_the_compiler_serving_test_() ->
    {timeout, 60, fun() ->
        {Pid, Ref} = spawn_monitor(fun() -> hb_beamr:compile(many_functions(30, 1)) end),
        timer:sleep(20),
        exit(Pid, kill),
        receive {'DOWN', Ref, process, Pid, _} -> ok end,
        ?assertMatch({ok, _}, hb_beamr:compile(fixture("test.wasm")))
    end}.
