%%% @doc hb_beamr as an OTP application (issue 20, item 4): it starts and
%%% stops cleanly, its supervisor restarts the compile cache after a crash,
%%% the library works without it, and every bad option of every API is
%%% refused in one shape, `{error, {invalid_option, {Name, Value}}}'.
-module(hb_beamr_app_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1]).

%% A logger handler that sends every event to the test process.
-export([log/2]).

%% Runs `Fun' with the application started, then stops it.
with_app(Fun) ->
    {ok, _} = application:ensure_all_started(hb_beamr),
    try
        Fun()
    after
        ok = application:stop(hb_beamr)
    end.

supervised_cache() ->
    [Pid] = [P || {hb_beamr_aot_cache, P, worker, _} <- supervisor:which_children(hb_beamr_sup)],
    Pid.

start_and_call() ->
    {ok, W, _, _} = hb_beamr:start(fixture("test.wasm")),
    Result = hb_beamr:call(W, "fac", [5.0]),
    ok = hb_beamr:stop(W),
    Result.

app_starts_and_stops_cleanly_test() ->
    Started = with_app(fun() ->
        Sup = whereis(hb_beamr_sup),
        ?assert(is_pid(Sup)),
        ?assertEqual(whereis(hb_beamr_aot_cache), supervised_cache()),
        ?assertMatch(#{compiles := _}, hb_beamr_aot_cache:stats()),
        ?assertEqual({ok, [120.0]}, start_and_call()),
        {Sup, supervised_cache()}
    end),
    {Sup, Cache} = Started,
    ?assertNot(is_process_alive(Sup)),
    ?assertNot(is_process_alive(Cache)),
    ?assertEqual(undefined, whereis(hb_beamr_sup)),
    ?assertEqual(undefined, whereis(hb_beamr_aot_cache)),
    % Again, to show nothing was left behind.
    with_app(fun() -> ?assert(is_pid(whereis(hb_beamr_sup))) end).

%% Without the application (escripts, a bare code path), the cache starts
%% on first use; starting the application takes it over.
works_without_the_app_test() ->
    ?assertEqual(undefined, whereis(hb_beamr_sup)),
    ?assertEqual({ok, [120.0]}, start_and_call()),
    ?assertMatch(#{compiles := _}, hb_beamr_aot_cache:stats()),
    Standalone = whereis(hb_beamr_aot_cache),
    ?assert(is_pid(Standalone)),
    with_app(fun() ->
        ?assertNot(is_process_alive(Standalone)),
        ?assertEqual(whereis(hb_beamr_aot_cache), supervised_cache())
    end),
    % And back to on-demand after the application stopped.
    ?assertMatch(#{compiles := _}, hb_beamr_aot_cache:stats()).

cache_survives_a_crash_test_() ->
    {timeout, 60, fun() -> with_app(fun() ->
        Wasm = fixture("test.wasm"),
        {ok, W0, _, _} = hb_beamr:start(Wasm, aot),
        ok = hb_beamr:stop(W0),
        Before = supervised_cache(),
        Ref = erlang:monitor(process, Before),
        exit(Before, kill),
        receive {'DOWN', Ref, process, Before, killed} -> ok end,
        % Asked at once: the restart is waited for, never a crash.
        ?assertMatch(#{compiles := _}, hb_beamr_aot_cache:stats()),
        After = supervised_cache(),
        ?assertNotEqual(Before, After),
        ?assertEqual(After, whereis(hb_beamr_aot_cache)),
        % The restarted cache serves starts (its disk entries survived).
        {ok, W1, _, _} = hb_beamr:start(Wasm, aot),
        ?assertEqual({ok, [120.0]}, hb_beamr:call(W1, "fac", [5.0])),
        ok = hb_beamr:stop(W1),
        ?assertEqual(0, maps:get(compiles, hb_beamr_aot_cache:stats()))
    end) end}.

%% Every option of start/3, compile/2 and call/6, and every application env
%% key of the cache: a bad value (and an unknown name) is
%% {error, {invalid_option, {Name, Value}}}.
bad_options_have_one_shape_test_() ->
    Wasm = fixture("test.wasm"),
    BadStart = [{max_memory, -1}, {wasm_stack, 10}, {native_stack, 1}, {import_fun, fun() -> ok end},
                {timeout, -1}, {timeout, soon}, {deterministic, 1}, {node, "n@h"}, {trust_aot, yes},
                {colour, blue}],
    BadCompile = [{opt_level, 4}, {size_level, -1}, {bounds_checks, false}, {target_cpu, 42},
                  {target_cpu, ""}, {target_cpu, "no-such-cpu"}, {deterministic, maybe}, {colour, blue}],
    BadCall = [{timeout, -5}, {timeout, later}],
    BadWasi = [{args, [foo]}, {env, #{<<"K">> => 1}}, {stdout, file}, {tty, yes}, {clock, later},
               {random, {seed, x}}, {max_io, 0}, {fs_budget, lots}, {mode, jit}, {max_memory, -1},
               {import_fun, fun() -> ok end}, {argv, []}],
    {setup, fun() -> hb_beamr:start(Wasm) end,
     fun({ok, W, _, _}) -> hb_beamr:stop(W) end,
     fun({ok, W, _, _}) ->
         [?_assertEqual({error, {invalid_option, {K, V}}}, hb_beamr:start(Wasm, Mode, #{K => V}))
          || {K, V} <- BadStart, Mode <- [wasm, aot]] ++
         [?_assertEqual({error, {invalid_option, {K, V}}}, hb_beamr:compile(Wasm, #{K => V}))
          || {K, V} <- BadCompile] ++
         [?_assertEqual({error, {invalid_option, {K, V}}},
                        hb_beamr:call(W, "fac", [5.0], fun hb_beamr:stub/3, #{}, #{K => V}))
          || {K, V} <- BadCall] ++
         [?_assertEqual({error, {invalid_option, {K, V}}}, hb_beamr_wasi:run(Wasm, #{K => V}))
          || {K, V} <- BadWasi] ++
         [?_assertEqual({error, {invalid_option, {K, V}}}, hb_beamr_wasi:new_state(#{K => V}))
          || {K, V} <- BadWasi] ++
         % The call's other keys are the import function's.
         [?_assertMatch({ok, [120.0], _}, hb_beamr:call(W, "fac", [5.0], fun hb_beamr:stub/3, #{}, #{mine => 1}))]
     end}.

bad_cache_env_has_one_shape_test_() ->
    Wasm = fixture("test.wasm"),
    Bad = [{cache_dir, ""}, {cache_dir, 42}, {cache_dir, [foo]}, {aot_cache_max_bytes, -1},
           {aot_cache_max_bytes, lots}, {aot_key, <<"short">>}, {aot_key, 42}],
    [{lists:flatten(io_lib:format("~p", [KV])), fun() -> with_env(KV, fun() ->
         ?assertEqual({error, {invalid_option, KV}}, hb_beamr:start(Wasm, aot)),
         ?assertEqual({error, {invalid_option, KV}}, hb_beamr_aot_cache:compiled(Wasm))
     end) end} || KV <- Bad].

with_env({Key, Value}, Fun) ->
    Previous = application:get_env(hb_beamr, Key),
    ok = application:set_env(hb_beamr, Key, Value),
    try
        Fun()
    after
        case Previous of
            {ok, V} -> application:set_env(hb_beamr, Key, V);
            undefined -> application:unset_env(hb_beamr, Key)
        end
    end.

%% An instance's process is an OTP process (proc_lib), and a message it does
%% not expect is logged, not silently dropped; the instance still works.
instance_process_is_otp_and_logs_the_unexpected_test() ->
    {ok, W, _, _} = hb_beamr:start(fixture("test.wasm")),
    ok = logger:add_handler(hb_beamr_app_tests, ?MODULE, #{config => self(), level => warning}),
    try
        {dictionary, Dict} = process_info(W, dictionary),
        ?assertEqual({hb_beamr_start, starting, 2}, proplists:get_value('$initial_call', Dict)),
        W ! {surprise, 42},
        receive
            {logged, #{msg := {Format, Args}}} ->
                ?assertNotEqual(nomatch, string:find(Format, "unexpected message")),
                ?assertEqual({surprise, 42}, lists:nth(2, Args))
        after 5000 ->
            error(no_log_event)
        end,
        ?assertEqual({ok, [120.0]}, hb_beamr:call(W, "fac", [5.0]))
    after
        ok = logger:remove_handler(hb_beamr_app_tests),
        hb_beamr:stop(W)
    end.

%% @private
log(#{meta := #{domain := [hb_beamr]}} = Event, #{config := Test}) ->
    Test ! {logged, Event};
log(_Event, _Config) ->
    ok.
