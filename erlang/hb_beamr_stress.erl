#!/usr/bin/env escript
%%! -noshell +A 4
%%% @doc hb_beamr's stress run: bad and strange modules, random arguments,
%%% concurrency, and leaks, each reported as cases tried, crashes, hangs and
%%% failures. `make stress' runs the fast profile (CI); `make stress-long'
%%% the long one. A crash of the VM ends the run itself (and `make' fails).
%%%
%%%   hb_beamr_stress.erl FUZZ_DIR fast|long
-module(hb_beamr_stress).
-mode(compile).
-export([main/1]).

-record(tally, {cases = 0, crashes = 0, hangs = 0, failures = 0, notes = []}).

main([FuzzDir, Profile]) ->
    P = profile(list_to_atom(Profile)),
    io:format("hb_beamr stress run (~s profile)~n", [Profile]),
    Sections = [
        {"fuzz: generated modules (wasm)", fun() -> fuzz(FuzzDir, wasm, P) end},
        {"fuzz: generated modules (aot)", fun() -> fuzz(FuzzDir, aot, P) end},
        {"fuzz: random arguments", fun() -> random_args(P) end},
        {"concurrency: processes x calls, one instance", fun() -> one_instance(P) end},
        {"concurrency: instances in parallel", fun() -> many_instances(P) end},
        {"kills: callers, pids mid-call/import (wasm)", fun() -> kills(wasm, P) end},
        {"kills: callers, pids mid-call/import (aot)", fun() -> kills(aot, P) end},
        {"cache: swapped and damaged cache files", fun() -> cache_swaps(P) end},
        {"leaks: start/call/stop cycles", fun() -> cycles(P) end},
        {"wasi: iovec amplification, fs budget (wasm)", fun() -> wasi_limits(wasm, P) end},
        {"wasi: iovec amplification, fs budget (aot)", fun() -> wasi_limits(aot, P) end},
        {"cluster: operations on a stalled remote node", fun() -> stalled_node(P) end}
    ],
    Results = [{Name, timed(Fun)} || {Name, Fun} <- Sections],
    io:format("~n~-46s ~8s ~8s ~6s ~9s ~8s~n", ["section", "cases", "crashes", "hangs", "failures", "seconds"]),
    lists:foreach(
        fun({Name, {Secs, T}}) ->
            io:format("~-46s ~8w ~8w ~6w ~9w ~8.1f~n",
                [Name, T#tally.cases, T#tally.crashes, T#tally.hangs, T#tally.failures, Secs]),
            [io:format("    ~s~n", [Note]) || Note <- lists:reverse(T#tally.notes)]
        end,
        Results
    ),
    Bad = lists:sum([T#tally.crashes + T#tally.hangs + T#tally.failures || {_, {_, T}} <- Results]),
    Cases = lists:sum([T#tally.cases || {_, {_, T}} <- Results]),
    io:format("stress: ~w passed, ~w failed~n", [Cases - Bad, Bad]),
    halt(case Bad of 0 -> 0; _ -> 1 end);
main(_) ->
    io:format(standard_error, "usage: hb_beamr_stress.erl FUZZ_DIR fast|long~n", []),
    halt(2).

profile(fast) ->
    #{fuzz_modules => 400, aot_every => 8, arg_calls => 2000, procs => 100, calls => 1000,
      instances => 1000, instance_calls => 20, cycles => 2000, kill_rounds => 300,
      cache_rounds => 60, stall_rounds => 4};
profile(long) ->
    #{fuzz_modules => 4000, aot_every => 2, arg_calls => 50000, procs => 100, calls => 1000,
      instances => 1000, instance_calls => 200, cycles => 10000, kill_rounds => 3000,
      cache_rounds => 600, stall_rounds => 20}.

timed(Fun) ->
    {Micros, Tally} = timer:tc(Fun),
    {Micros / 1000000, Tally}.

note(T, Format, Args) ->
    T#tally{notes = [io_lib:format(Format, Args) | T#tally.notes]}.

%%% Fuzz: every generated module is started; every exported function of
%%% those that start is called with random arguments, imports answered with
%%% random values of the right types, under a timeout. In aot mode the
%%% modules with bounded loops are compiled first.

fuzz(Dir, Mode, #{fuzz_modules := Max, aot_every := Every}) ->
    Files = lists:sublist(lists:sort(filelib:wildcard(filename:join(Dir, "*.wasm"))), Max),
    Chosen =
        case Mode of
            wasm -> Files;
            aot -> [F || {I, F} <- lists:enumerate(Files), I rem Every =:= 0,
                         lists:prefix("smith-", filename:basename(F))]
        end,
    {T, Counts} = lists:foldl(fun(F, Acc) -> fuzz_one(F, Mode, Acc) end, {#tally{}, #{}}, Chosen),
    note(T, "~p", [Counts]).

bump(Key, Counts) ->
    maps:update_with(Key, fun(N) -> N + 1 end, 1, Counts).

fuzz_one(File, Mode, {T, Counts}) ->
    % HB_BEAMR_STRESS_TRACE=1 names each module first, to find a crash.
    os:getenv("HB_BEAMR_STRESS_TRACE") =:= "1" andalso io:format(standard_error, "~s ~s~n", [Mode, File]),
    {ok, Bytes} = file:read_file(File),
    Loaded =
        case Mode of
            wasm -> {ok, Bytes};
            aot -> hb_beamr:compile(Bytes)
        end,
    case Loaded of
        {ok, Module} ->
            case guarded(fun() -> hb_beamr:start(Module, Mode) end, 10000) of
                {ok, {ok, WASM, _Imports, Exports}} ->
                    {T1, C1} = call_exports(WASM, Exports, T#tally{cases = T#tally.cases + 1},
                                            bump(started, Counts)),
                    ok = hb_beamr:stop(WASM),
                    {T1, C1};
                {ok, {error, _}} ->
                    {T#tally{cases = T#tally.cases + 1}, bump(refused, Counts)};
                hang ->
                    {note(T#tally{cases = T#tally.cases + 1, hangs = T#tally.hangs + 1},
                          "start hung: ~s", [File]), Counts}
            end;
        {error, _} ->
            {T#tally{cases = T#tally.cases + 1}, bump(not_compiled, Counts)}
    end.

call_exports(WASM, Exports, T, Counts) ->
    Funcs = [{Name, Sig} || {func, Name, Sig} <- Exports, Sig =/= <<>>],
    lists:foldl(
        fun({Name, Sig}, {TAcc, CAcc}) ->
            {Params, _} = parse_sig(Sig),
            Args = [random_value(K) || K <- Params],
            Call = fun() ->
                hb_beamr:call(WASM, Name, Args, fun random_import/3, 0, #{timeout => 200})
            end,
            case guarded(Call, 5000) of
                {ok, {ok, _, _}} -> {TAcc#tally{cases = TAcc#tally.cases + 1}, bump(ok, CAcc)};
                {ok, {error, timeout}} -> {TAcc#tally{cases = TAcc#tally.cases + 1}, bump(timeout, CAcc)};
                {ok, {error, {wasm_trap, _}}} -> {TAcc#tally{cases = TAcc#tally.cases + 1}, bump(trap, CAcc)};
                {ok, {error, Reason}} when is_tuple(Reason); is_atom(Reason) ->
                    {TAcc#tally{cases = TAcc#tally.cases + 1}, bump(element(1, erlang:append_element({}, Reason)), CAcc)};
                {ok, Other} ->
                    {note(TAcc#tally{cases = TAcc#tally.cases + 1, failures = TAcc#tally.failures + 1},
                          "unexpected: ~P", [Other, 8]), CAcc};
                hang ->
                    {note(TAcc#tally{cases = TAcc#tally.cases + 1, hangs = TAcc#tally.hangs + 1},
                          "call hung: ~s", [Name]), CAcc}
            end
        end,
        {T, Counts},
        Funcs
    ).

random_import(N, #{func_sig := Sig}, _Opts) ->
    {_, Results} = parse_sig(Sig),
    {ok, [random_value(K) || K <- Results], N + 1}.

parse_sig(Sig) ->
    [Params, Results] = binary:split(Sig, <<")">>),
    {[C || <<C>> <= binary:part(Params, 1, byte_size(Params) - 1)], [C || <<C>> <= Results]}.

random_value($i) -> rand:uniform(1 bsl 32) - 1 - (1 bsl 31);
random_value($I) -> rand:uniform(1 bsl 64) - 1 - (1 bsl 63);
random_value($f) -> (rand:uniform() - 0.5) * 1.0e6;
random_value($F) -> pick([0.0, -0.0, 1.0e308, -1.0e-308, infinity, neg_infinity, nan, rand:uniform() * 100]).

pick(List) ->
    lists:nth(rand:uniform(length(List)), List).

%% Runs Fun in a process; `hang' if it has not answered within Ms.
guarded(Fun, Ms) ->
    Self = self(),
    Ref = make_ref(),
    Pid = spawn(fun() -> Self ! {Ref, Fun()} end),
    receive
        {Ref, Result} -> {ok, Result}
    after Ms ->
        exit(Pid, kill),
        hang
    end.

%%% Random arguments of random Erlang types against the fixtures.

random_args(#{arg_calls := N}) ->
    {ok, Bytes} = file:read_file("test/fixtures/values.wasm"),
    {ok, WASM, _, Exports} = hb_beamr:start(Bytes),
    Names = [Name || {func, Name, _} <- Exports],
    T = lists:foldl(
        fun(_, Acc) ->
            Args = [random_term() || _ <- lists:seq(1, rand:uniform(5) - 1)],
            case guarded(fun() -> hb_beamr:call(WASM, pick(Names), Args) end, 5000) of
                {ok, {ok, _}} -> Acc#tally{cases = Acc#tally.cases + 1};
                {ok, {error, _}} -> Acc#tally{cases = Acc#tally.cases + 1};
                {ok, Other} ->
                    note(Acc#tally{cases = Acc#tally.cases + 1, failures = Acc#tally.failures + 1},
                         "unexpected: ~P", [Other, 8]);
                hang -> Acc#tally{cases = Acc#tally.cases + 1, hangs = Acc#tally.hangs + 1}
            end
        end,
        #tally{},
        lists:seq(1, N)
    ),
    ok = hb_beamr:stop(WASM),
    T.

random_term() ->
    pick([
        rand:uniform(1 bsl 70) - (1 bsl 69),
        rand:uniform(100),
        -rand:uniform(1 bsl 31),
        rand:uniform() * 1.0e10,
        nan,
        infinity,
        atom,
        <<"bin">>,
        [1, 2],
        {tuple},
        self()
    ]).

%%% Concurrency: every reply correct, none lost, none duplicated.

one_instance(#{procs := Procs, calls := Calls}) ->
    {ok, Bytes} = file:read_file("test/fixtures/values.wasm"),
    {ok, WASM, _, _} = hb_beamr:start(Bytes),
    Self = self(),
    [spawn(fun() ->
        Bad = length([I || I <- lists:seq(1, Calls),
                           hb_beamr:call(WASM, "id_i64", [P * 1000000 + I]) =/= {ok, [P * 1000000 + I]}]),
        Self ! {done, P, Bad}
     end) || P <- lists:seq(1, Procs)],
    T = collect(Procs, #tally{cases = Procs * Calls}, 120000),
    ok = hb_beamr:stop(WASM),
    T.

many_instances(#{instances := N, instance_calls := Calls}) ->
    {ok, Bytes} = file:read_file("test/fixtures/values.wasm"),
    Self = self(),
    [spawn(fun() ->
        case hb_beamr:start(Bytes) of
            {ok, W, _, _} ->
                Bad = length([I || I <- lists:seq(1, Calls),
                                   hb_beamr:call(W, "id_i32", [P + I]) =/= {ok, [P + I]}]),
                ok = hb_beamr:stop(W),
                Self ! {done, P, Bad};
            Error ->
                Self ! {done, P, {start_failed, Error}}
        end
     end) || P <- lists:seq(1, N)],
    collect(N, #tally{cases = N * Calls}, 300000).

collect(0, T, _) ->
    T;
collect(N, T, Timeout) ->
    receive
        {done, _, 0} -> collect(N - 1, T, Timeout);
        {done, P, Bad} when is_integer(Bad) ->
            collect(N - 1, note(T#tally{failures = T#tally.failures + Bad}, "process ~w: ~w wrong replies", [P, Bad]), Timeout);
        {done, P, Other} ->
            collect(N - 1, note(T#tally{failures = T#tally.failures + 1}, "process ~w: ~p", [P, Other]), Timeout)
    after Timeout ->
        note(T#tally{hangs = T#tally.hangs + N}, "~w processes never answered", [N])
    end.

%%% Kills: callers, raw callers and instance pids killed at random moments,
%%% mid-call and mid-import, with other callers queued. Every survivor must
%%% get its own correct reply, a probe call must then be answered, and at the
%%% end no instance or thread may be left. A wait past 2 s is a hang.

kills(Mode, #{kill_rounds := N}) ->
    Imports = module_bytes("test/fixtures/imports.wasm", Mode),
    Spin = module_bytes("test/fixtures/spin.wasm", Mode),
    settle(),
    {_, Threads0} = proc_status(),
    T = lists:foldl(
        fun(Round, Acc) -> kill_round(Round rem 5, Imports, Spin, Mode, Acc) end,
        #tally{},
        lists:seq(1, N)
    ),
    settle(),
    {_, Threads1} = threads_back_to(Threads0, 100),
    Live = hb_beamr_nif:live_instances(),
    Leaked = case Threads1 > Threads0 orelse Live > 0 of true -> 1; false -> 0 end,
    note(T#tally{failures = T#tally.failures + Leaked},
         "threads ~w -> ~w, live instances ~w", [Threads0, Threads1, Live]).

module_bytes(File, wasm) ->
    {ok, Bytes} = file:read_file(File),
    Bytes;
module_bytes(File, aot) ->
    {ok, Aot} = hb_beamr:compile(module_bytes(File, wasm)),
    Aot.

%% A slow import: answers `I * 10' after up to 2 ms.
slow_import(S, #{args := [I]}, _) ->
    timer:sleep(rand:uniform(3) - 1),
    {ok, [I * 10], S}.

%% Runs `Fun' in a process; returns the process, whose result comes as
%% `{result, Pid, Result}'.
caller(Fun) ->
    Self = self(),
    spawn(fun() -> Self ! {result, self(), Fun()} end).

result_of(Pid) ->
    receive {result, Pid, R} -> R after 2000 -> hang end.

kill_soon(Pid) ->
    timer:sleep(rand:uniform(3) - 1),
    exit(Pid, kill).

tally_case(T, ok) -> T#tally{cases = T#tally.cases + 1};
tally_case(T, {hang, What}) ->
    note(T#tally{cases = T#tally.cases + 1, hangs = T#tally.hangs + 1}, "hang: ~p", [What]);
tally_case(T, {failure, What}) ->
    note(T#tally{cases = T#tally.cases + 1, failures = T#tally.failures + 1}, "failure: ~p", [What]).

%% The instance answers a probe call (nothing is wedged).
probe(WASM) ->
    case result_of(caller(fun() -> hb_beamr:call(WASM, "inc", [1]) end)) of
        {ok, [2]} -> ok;
        hang -> {hang, probe};
        Other -> {failure, {probe, Other}}
    end.

kill_round(Kind, Imports, Spin, Mode, T) ->
    Outcome =
        try
            kill_case(Kind, Imports, Spin, Mode)
        catch
            Class:Reason -> {failure, {Kind, Class, Reason}}
        end,
    tally_case(T, Outcome).

%% 0: a caller killed mid-import, others queued behind it.
kill_case(0, Imports, _Spin, Mode) ->
    {ok, W, _, _} = hb_beamr:start(Imports, Mode),
    Victim = caller(fun() -> hb_beamr:call(W, "count", [3], fun slow_import/3) end),
    Others = [caller(fun() -> hb_beamr:call(W, "count", [2], fun slow_import/3) end) || _ <- [1, 2]],
    kill_soon(Victim),
    Results = [result_of(P) || P <- Others],
    Outcome = case [R || R <- Results, R =/= {ok, [10], #{}}] of
        [] -> probe(W);
        [hang | _] -> {hang, queued_caller};
        Bad -> {failure, {queued_callers, Bad}}
    end,
    ok = hb_beamr:stop(W),
    Outcome;
%% 1: queued callers killed while another is mid-import.
kill_case(1, Imports, _Spin, Mode) ->
    {ok, W, _, _} = hb_beamr:start(Imports, Mode),
    First = caller(fun() -> hb_beamr:call(W, "count", [3], fun slow_import/3) end),
    Queued = [caller(fun() -> hb_beamr:call(W, "count", [2], fun slow_import/3) end) || _ <- [1, 2, 3]],
    [kill_soon(Q) || Q <- Queued],
    Outcome = case result_of(First) of
        {ok, [20], #{}} -> probe(W);
        hang -> {hang, first_caller};
        Other -> {failure, {first_caller, Other}}
    end,
    ok = hb_beamr:stop(W),
    Outcome;
%% 2: a raw caller killed mid-import.
kill_case(2, Imports, _Spin, Mode) ->
    {ok, W, _, _} = hb_beamr:start(Imports, Mode),
    Raw = spawn(fun() ->
        hb_beamr:wasm_send(W, {command, term_to_binary({call, "count", [3]})}),
        receive after infinity -> ok end
    end),
    kill_soon(Raw),
    Outcome = probe(W),
    ok = hb_beamr:stop(W),
    Outcome;
%% 3: the instance pid killed mid-import.
kill_case(3, Imports, _Spin, Mode) ->
    {ok, W, _, _} = hb_beamr:start(Imports, Mode),
    Callers = [caller(fun() -> hb_beamr:call(W, "count", [3], fun slow_import/3) end) || _ <- [1, 2]],
    kill_soon(W),
    Results = [result_of(P) || P <- Callers],
    case [R || R <- Results, R =/= {ok, [20], #{}}, R =/= {error, stopped}] of
        [] -> ok;
        [hang | _] -> {hang, caller_of_killed_instance};
        Bad -> {failure, {callers_of_killed_instance, Bad}}
    end;
%% 4: the instance pid killed while WebAssembly loops forever.
kill_case(4, _Imports, Spin, Mode) ->
    {ok, W, _, _} = hb_beamr:start(Spin, Mode),
    Caller = caller(fun() -> hb_beamr:call(W, "forever", []) end),
    kill_soon(W),
    case result_of(Caller) of
        {error, stopped} -> ok;
        hang -> {hang, endless_call_of_killed_instance};
        Other -> {failure, {endless_call_of_killed_instance, Other}}
    end.

%%% WASI: test/fixtures/wasi/amplify.wasm names 512 MiB per fd_write from two
%%% pages, then writes a byte at 2^30 - 1 of two files. With random limits,
%%% the host must keep to them: stdout of max_output bytes, nospc (51) from
%%% the file system, and the node's memory growing by about max_output.

wasi_limits(Mode, P) ->
    {ok, Wasm} = file:read_file("test/fixtures/wasi/amplify.wasm"),
    Bytes = case Mode of
        wasm -> Wasm;
        aot -> {ok, Aot} = hb_beamr:compile(Wasm), Aot
    end,
    Rounds = maps:get(wasi_rounds, P, 10),
    lists:foldl(fun(_, T) -> tally_case(T, wasi_round(Bytes, Mode)) end, #tally{}, lists:seq(1, Rounds)).

wasi_round(Bytes, Mode) ->
    Io = rand:uniform(4 bsl 20),
    Out = rand:uniform(8 bsl 20) - 1,
    Budget = rand:uniform(32 bsl 20) - 1,
    Opts = #{mode => Mode, max_io => Io, max_output => Out, fs_budget => Budget, timeout => 30000,
             preopens => #{<<"/data">> => #{}}},
    erlang:garbage_collect(),
    Base = erlang:memory(total),
    Self = self(),
    Sampler = spawn_link(fun() -> wasi_sample(Self, Base, 0) end),
    Result = (catch hb_beamr_wasi:run(Bytes, Opts)),
    Sampler ! {stop, Self},
    Peak = receive {peak, Sampler, Max} -> Max end,
    Limits = {Io, Out, Budget},
    % 64 writes at most: stdout is max_output, or all 64 when that is less.
    Expected = min(Out, 64 * Io),
    case Result of
        {ok, #{exit_code := 51, stdout := Stdout}} when byte_size(Stdout) =:= Expected,
                                                      Peak < 3 * Out + (32 bsl 20) ->
            ok;
        {ok, #{exit_code := 51, stdout := Stdout}} when byte_size(Stdout) =:= Expected ->
            {failure, {wasi_memory, Limits, Peak}};
        {error, timeout} ->
            {hang, {wasi_limits, Limits}};
        Other ->
            {failure, {wasi_limits, Limits, wasi_brief(Other)}}
    end.

wasi_brief({ok, R = #{stdout := Stdout}}) -> (maps:remove(files, R))#{stdout := byte_size(Stdout)};
wasi_brief(Other) -> Other.

wasi_sample(Parent, Base, Max) ->
    Peak = max(Max, erlang:memory(total) - Base),
    receive {stop, Parent} -> Parent ! {peak, self(), Peak}
    after 1 -> wasi_sample(Parent, Base, Peak)
    end.

%%% Cache: in a cache directory of its own, another module's cache file
%%% copied over an entry, or the entry flipped, truncated, replaced by a
%%% symlink or by an unbound (old) seal: start(Wasm, aot) must start the
%%% module asked for (its own exports), and every such file must be
%%% refused (hb_beamr_aot_cache's counts), never loaded.

cache_swaps(#{cache_rounds := N}) ->
    Dir = filename:join(["/tmp", "hb_beamr_stress_cache_" ++ os:getpid()]),
    Previous = application:get_env(hb_beamr, cache_dir),
    ok = application:set_env(hb_beamr, cache_dir, Dir),
    ok = hb_beamr_aot_cache:forget(),
    % Every round's refusal is logged: not here.
    ok = logger:set_module_level(hb_beamr_aot_cache, error),
    try
        Names = ["test.wasm", "compute.wasm", "values.wasm", "state.wasm", "indirect.wasm", "alloc.wasm"],
        Modules = [begin
                       {ok, Wasm} = file:read_file(filename:join(["test", "fixtures", Name])),
                       {ok, W, _, Exports} = hb_beamr:start(Wasm, wasm),
                       ok = hb_beamr:stop(W),
                       Before = filelib:wildcard(filename:join([Dir, "aot", "*.aot"])),
                       {ok, W2, _, Exports} = hb_beamr:start(Wasm, aot),
                       ok = hb_beamr:stop(W2),
                       [File] = filelib:wildcard(filename:join([Dir, "aot", "*.aot"])) -- Before,
                       {ok, Own} = file:read_file(File),
                       {Name, Wasm, Exports, File, Own}
                   end || Name <- Names],
        Mods = list_to_tuple(Modules),
        lists:foldl(fun(Round, T) -> cache_round(Round, Mods, T) end, #tally{}, lists:seq(1, N))
    after
        case Previous of
            {ok, D} -> application:set_env(hb_beamr, cache_dir, D);
            undefined -> application:unset_env(hb_beamr, cache_dir)
        end,
        ok = hb_beamr_aot_cache:forget(),
        ok = logger:unset_module_level(hb_beamr_aot_cache),
        _ = file:del_dir_r(Dir)
    end.

cache_round(Round, Mods, T) ->
    Victim = {Name, Wasm, Exports, File, Own} = element(rand:uniform(tuple_size(Mods)), Mods),
    {_, _, _, OtherFile, Other} = pick_other(Victim, Mods),
    Kind = Round rem 5,
    _ = file:delete(File),
    ok = case Kind of
        0 -> file:write_file(File, Other);
        1 -> Bit = rand:uniform(byte_size(Own) * 8) - 1,
             <<Before:(Bit div 8)/binary, B, After/binary>> = Own,
             file:write_file(File, <<Before/binary, (B bxor (1 bsl (Bit rem 8))), After/binary>>);
        2 -> file:write_file(File, binary:part(Own, 0, rand:uniform(byte_size(Own)) - 1));
        3 -> file:make_symlink(OtherFile, File);
        4 -> {ok, Old} = hb_beamr:compile(Wasm), file:write_file(File, Old)
    end,
    ok = hb_beamr_aot_cache:forget(),
    #{refused := R0} = hb_beamr_aot_cache:stats(),
    Result = case hb_beamr:start(Wasm, aot) of
        {ok, W, _, Exports} -> ok = hb_beamr:stop(W), ok;
        {ok, W, _, Wrong} -> ok = hb_beamr:stop(W), {failure, {Name, Kind, wrong_module, Wrong}};
        Error -> {failure, {Name, Kind, Error}}
    end,
    #{refused := R1} = hb_beamr_aot_cache:stats(),
    Refused = lists:sum(maps:values(R1)) - lists:sum(maps:values(R0)),
    Result1 = case {Result, Refused, file:read_file(File)} of
        {ok, 1, {ok, Own}} -> ok;
        {ok, _, _} -> {failure, {Name, Kind, refused, Refused}};
        {Bad, _, _} -> Bad
    end,
    tally_case(T, Result1).

pick_other(Victim, Mods) ->
    case element(rand:uniform(tuple_size(Mods)), Mods) of
        Victim -> pick_other(Victim, Mods);
        Other -> Other
    end.

%%% Cluster: a peer node stopped (SIGSTOP) while operations on its
%%% instances are in flight or about to start. Every operation answers
%%% within its timeout, or the node timeout (set to 500 ms here), with its
%%% result or `{error, timeout}'; after SIGCONT the instance answers again,
%%% and no stray message reaches the callers.

-define(STALL_NODE_TIMEOUT, 500).

stalled_node(#{stall_rounds := N}) ->
    case stall_peer() of
        {ok, Peer, Node, OsPid} ->
            ok = application:set_env(hb_beamr, node_timeout, ?STALL_NODE_TIMEOUT),
            try
                {ok, Bytes} = file:read_file("test/fixtures/test.wasm"),
                lists:foldl(fun(Round, T) -> stall_round(Round, Bytes, Node, OsPid, T) end,
                            #tally{}, lists:seq(1, N))
            after
                _ = os:cmd("kill -CONT " ++ OsPid),
                application:unset_env(hb_beamr, node_timeout),
                peer:stop(Peer)
            end;
        {error, Why} ->
            note(#tally{}, "skipped: no peer node (~p)", [Why])
    end.

stall_peer() ->
    try
        _ = os:cmd("epmd -daemon"),
        timer:sleep(200),
        case node() of
            nonode@nohost ->
                {ok, _} = net_kernel:start([list_to_atom("hb_beamr_stress_" ++ os:getpid()), shortnames]);
            _ ->
                ok
        end,
        Paths = lists:append([["-pa", D] || D <- code:get_path(), string:find(D, "_build") =/= nomatch]),
        {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(), args => Paths}),
        {ok, Peer, Node, erpc:call(Node, os, getpid, [])}
    catch
        Class:Reason -> {error, {Class, Reason}}
    end.

%% One round: a kept instance and one to stop on the peer; each operation
%% runs in a caller of its own, started a little before or after the stop.
stall_round(Round, Bytes, Node, OsPid, T) ->
    {ok, Kept, _, _} = hb_beamr:start(Bytes, wasm, #{node => Node}),
    {ok, Gone, _, _} = hb_beamr:start(Bytes, wasm, #{node => Node}),
    Ops = [
        {start, 100, fun() -> hb_beamr:start(Bytes, wasm, #{node => Node, timeout => 100}) end},
        {call_timeout, 100, fun() -> hb_beamr:call(Kept, "fac", [5.0], fun hb_beamr:stub/3, #{}, #{timeout => 100}) end},
        {call, ?STALL_NODE_TIMEOUT, fun() -> hb_beamr:call(Kept, "fac", [5.0]) end},
        {size, ?STALL_NODE_TIMEOUT, fun() -> hb_beamr_io:size(Kept) end},
        {snapshot, ?STALL_NODE_TIMEOUT, fun() -> hb_beamr:snapshot(Kept) end},
        {stop, ?STALL_NODE_TIMEOUT, fun() -> hb_beamr:stop(Gone) end}
    ],
    Self = self(),
    Callers = [
        {What, Bound, spawn(fun() ->
            timer:sleep(rand:uniform(3) - 1),
            T0 = erlang:monotonic_time(millisecond),
            R = Op(),
            Ms = erlang:monotonic_time(millisecond) - T0,
            % What reached this caller besides its answer: nothing may.
            timer:sleep(2 * ?STALL_NODE_TIMEOUT),
            {messages, Stray} = process_info(self(), messages),
            Self ! {stalled, self(), R, Ms, Stray}
        end)}
     || {What, Bound, Op} <- Ops],
    timer:sleep(rand:uniform(2) - 1),
    [] = os:cmd("kill -STOP " ++ OsPid),
    % A round of a bounded length: the callers answer within it.
    timer:sleep(?STALL_NODE_TIMEOUT + 300),
    [] = os:cmd("kill -CONT " ++ OsPid),
    T1 = lists:foldl(fun({What, Bound, Pid}, Acc) -> tally_case(Acc, stall_outcome(What, Bound, Pid)) end, T, Callers),
    Probe =
        case hb_beamr:call(Kept, "fac", [5.0]) of
            {ok, [120.0]} -> ok;
            Other -> {failure, {round, Round, kept_instance, Other}}
        end,
    _ = hb_beamr:stop(Kept),
    tally_case(T1, Probe).

stall_outcome(What, Bound, Pid) ->
    receive
        {stalled, Pid, R, Ms, Stray} ->
            Answer =
                case {What, R} of
                    {_, {error, timeout}} -> ok;
                    {stop, ok} -> ok;
                    {start, {ok, W, _, _}} -> hb_beamr:stop(W);
                    {call_timeout, {ok, [120.0], _}} -> ok;
                    {call, {ok, [120.0]}} -> ok;
                    {size, {ok, _}} -> ok;
                    {snapshot, {ok, _}} -> ok;
                    _ -> {unexpected, R}
                end,
            if
                Answer =/= ok -> {failure, {What, Answer}};
                Ms > Bound + 500 -> {failure, {What, late, Ms}};
                Stray =/= [] -> {failure, {What, stray, Stray}};
                true -> ok
            end
    after 10000 ->
        {hang, What}
    end.

%%% Leaks: RSS and native threads back to where they started.

cycles(#{cycles := N}) ->
    {ok, Bytes} = file:read_file("test/fixtures/test.wasm"),
    Warm = fun() ->
        {ok, W, _, _} = hb_beamr:start(Bytes),
        {ok, [120.0]} = hb_beamr:call(W, "fac", [5.0]),
        ok = hb_beamr:stop(W)
    end,
    [Warm() || _ <- lists:seq(1, 200)],
    settle(),
    {Rss0, Threads0} = proc_status(),
    Failures = length([x || _ <- lists:seq(1, N), catch Warm() =/= ok]),
    settle(),
    {Rss1, Threads1} = threads_back_to(Threads0, 100),
    GrowthKiB = Rss1 - Rss0,
    % A leak of even 1 KiB per cycle would show as N KiB. Under
    % AddressSanitizer (scripts/asan.sh) freed memory sits in its quarantine,
    % so RSS says nothing there and only threads count.
    RssLeak = os:getenv("HB_BEAMR_STRESS_IGNORE_RSS") =:= false andalso GrowthKiB > max(8192, N div 2),
    Leaked = (Threads1 > Threads0) orelse RssLeak,
    T = #tally{cases = N, failures = Failures + (case Leaked of true -> 1; false -> 0 end)},
    note(T, "RSS ~w KiB -> ~w KiB (~w KiB), threads ~w -> ~w, live instances ~w",
         [Rss0, Rss1, GrowthKiB, Threads0, Threads1, hb_beamr_nif:live_instances()]).

%% Waits for stopped instances' threads to exit.
settle() ->
    settle(200).

settle(0) ->
    ok;
settle(N) ->
    erlang:garbage_collect(),
    case hb_beamr_nif:live_instances() of
        0 -> timer:sleep(50);
        _ -> timer:sleep(50), settle(N - 1)
    end.

%% Threads exit a little after their instance is unregistered.
threads_back_to(Threads0, Tries) ->
    {Rss, Threads} = proc_status(),
    case Threads =< Threads0 orelse Tries =:= 0 of
        true -> {Rss, Threads};
        false -> timer:sleep(50), threads_back_to(Threads0, Tries - 1)
    end.

proc_status() ->
    {ok, Text} = file:read_file("/proc/self/status"),
    Lines = string:split(Text, "\n", all),
    Get = fun(Key) ->
        [Value] = [V || L <- Lines, [K, V] <- [string:split(L, ":")], K =:= Key],
        list_to_integer(hd(string:lexemes(binary_to_list(Value), " \t")))
    end,
    {Get(<<"VmRSS">>), Get(<<"Threads">>)}.
