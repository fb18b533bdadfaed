#!/usr/bin/env escript
%%! -noshell
%%% @doc `make bench': hb_beamr's speed, printed as one table and written to
%%% docs/results/bench.md. Run it through scripts/bench.sh, which builds what it
%%% needs first.
%%%
%%% Every figure is the median of several rounds, and every speed is also
%%% given as a ratio against a baseline measured in the same rounds, taken
%%% turn about with it: the median of the per-round ratios (this machine is
%%% shared and noisy):
%%%
%%%   call       hb_beamr:call/3 round trips, from 1 process and from 8 on 8
%%%              instances, against the bench-only NIF hb_beamr_bench_nif:
%%%              the same Erlang -> Rust thread -> Erlang hand-off, no WASM
%%%   import     WASM calling an Erlang import in a loop, against the same
%%%              NIF asking its caller the same number of times
%%%   compute    kernels of test/fixtures/bench.wat as bytecode and as AOT, against
%%%              native Rust and wasmtime (hb_beamr_bench_native); a float
%%%              loop (test/fixtures/nan.wat) with deterministic floats, against the
%%%              same module without them
%%%   scale      10,000 instances started at once, called, stopped
%%%   start      start+stop of test/fixtures/ao-shape.wasm (the AO module's shape)
%%%              in both modes, RSS per extra live instance of it, RSS per
%%%              live test/test.wasm instance at 10,000: instances sharing
%%%              one loaded module against each loading its own (application
%%%              env module_sharing = false), alternated in the same rounds
%%%   memory     hb_beamr_io:read/write, serialize/deserialize and snapshot/restore, against
%%%              copying an Erlang binary of the same size
%%%   cluster    hb_beamr:call/3 on an instance of another node (a peer on
%%%              this machine), against an erpc:call/4 round trip to it
%%%   wasi       a C program (test/fixtures/wasi/wasi_test.c) writing 1 MiB to stdout
%%%              through hb_beamr_wasi, in 64-byte write(2) calls and through
%%%              stdio's buffer, against the import round trip above
%%%   setjmp     longjmp through exception handling (test/fixtures/setjmp.wat): the
%%%              interpreter against AOT, where compile/1 rewrote it into
%%%              host calls (hb_beamr_eh)
%%%   AO process only when HB_BEAMR_AOS_WASM names an AO module (HyperBEAM's
%%%              test/aos-2-pure-xs.wasm): compile time, first message and
%%%              a Lua loop in both modes (erlang/hb_beamr_aos.erl drives it),
%%%              start(Bytecode, aot) through the compile cache
%%%   AO snapshots and forks  likewise (HB_BEAMR_AOS_WASM): in both modes, a
%%%              delta snapshot after one AO message against a full
%%%              snapshot after one; a fork of the process (start with
%%%              #{snapshot => Image}) against start + deserialize/2 and
%%%              start + restore/2 of its snapshot, and over a plain start;
%%%              image/1; one message in a fresh fork against one in a
%%%              fresh restored copy; RSS per fork that has answered a
%%%              message against per restored copy
%%%
%%%   delta snapshots  a delta with 1 MiB dirty at 64 MiB (1 GiB with
%%%              HB_BEAMR_BENCH_DELTA_GIB=1), kernel tracking and hash pass,
%%%              against a full snapshot; restoring the chain
%%%
%%%   forks      start(Bytes, wasm, #{snapshot => Image}) of a 64 MiB and a
%%%              1 GiB image (HB_BEAMR_BENCH_FORK_GIB=0: 64 MiB only), against
%%%              start + deserialize of the same memory, and its cost over a
%%%              plain start; image/1 and fork/1; the RSS of 100 forks of
%%%              the 1 GiB image that each write 1 MiB
%%%
%%% Environment: HB_BEAMR_BENCH_ONLY (sections to run, e.g. "call,cluster"),
%%% HB_BEAMR_BENCH_ROUNDS (default 7), HB_BEAMR_BENCH_INSTANCES
%%% (default 10000), HB_BEAMR_BENCH_OUT (default docs/results/bench.md).
-module(hb_beamr_bench).
-mode(compile).
-export([main/1]).

-define(SAMPLE_MS, 300).
-define(FAC_ARGS, [5.0]).
-define(MIX_N, 10000000).
-define(FNV_LEN, (1024 * 1024)).
-define(FNV_ROUNDS, 8).
-define(IMPORTS_PER_CALL, 20000).

%% One line of the table.
-record(row, {
    section :: string(),
    what :: string(),
    median :: number(),
    unit :: string(),
    baseline = "" :: string(),
    ratio :: number() | undefined,
    target = "" :: string(),
    met :: boolean() | undefined
}).

main(_) ->
    Root = root(),
    ok = load_baseline_nif(Root),
    Rounds = env_int("HB_BEAMR_BENCH_ROUNDS", 7),
    Instances = env_int("HB_BEAMR_BENCH_INSTANCES", 10000),
    Out = os:getenv("HB_BEAMR_BENCH_OUT", filename:join(Root, "docs/results/bench.md")),
    Started = erlang:monotonic_time(millisecond),
    Rows = lists:append([
        section("call round trip", fun() -> call_rows(Root, Rounds) end),
        section("import round trip", fun() -> import_rows(Root, Rounds) end),
        section("compute", fun() -> compute_rows(Root, Rounds) end),
        section("deterministic floats", fun() -> nan_rows(Root, Rounds) end),
        section("metering", fun() -> metering_rows(Root, Rounds) end),
        section("scale", fun() -> scale_rows(Root, Instances) end),
        section("start", fun() -> start_rows(Root, Rounds, Instances) end),
        section("memory I/O", fun() -> memory_rows(Root, Rounds) end),
        section("delta snapshots", fun() -> delta_rows(Root, Rounds) end),
        section("forks", fun() -> fork_rows(Root, Rounds) end),
        section("WASI stdout", fun() -> wasi_rows(Root, Rounds) end),
        section("cluster", fun() -> cluster_rows(Root, Rounds) end),
        section("setjmp/longjmp", fun() -> setjmp_rows(Root, Rounds) end),
        section("AO process", fun() -> ao_rows(Root, Rounds) end),
        section("AO snapshots and forks", fun() -> ao_fork_rows(Root, Rounds) end)
    ]),
    Seconds = (erlang:monotonic_time(millisecond) - Started) div 1000,
    Table = table(Rows),
    io:format("~n~s", [Table]),
    ok = filelib:ensure_dir(Out),
    ok = file:write_file(Out, results_md(Table, Rounds, Seconds)),
    io:format("~nwritten to ~s (~w s)~n", [Out, Seconds]),
    Missed = [R || R = #row{met = false} <- Rows],
    [io:format("target missed: ~s / ~s~n", [S, W]) || #row{section = S, what = W} <- Missed],
    ok.

%% HB_BEAMR_BENCH_ONLY=call,cluster (words of the section names) runs only
%% those sections.
section(Name, Fun) ->
    case os:getenv("HB_BEAMR_BENCH_ONLY") of
        false -> run_section(Name, Fun);
        Only ->
            case [W || W <- string:lexemes(Only, ","), string:find(Name, W) =/= nomatch] of
                [] -> [];
                _ -> run_section(Name, Fun)
            end
    end.

run_section(Name, Fun) ->
    io:format(standard_error, "bench: ~s...~n", [Name]),
    Fun().

%%% Call round trip

call_rows(Root, Rounds) ->
    Test = read(Root, "test/test.wasm"),
    Bench = read(Root, "test/fixtures/bench.wasm"),
    Fac = fun(W) -> {ok, [120.0]} = hb_beamr:call(W, "fac", ?FAC_ARGS) end,
    Noop = fun(W) -> {ok, []} = hb_beamr:call(W, "noop", []) end,
    Echo = fun(E) -> [5.0] = echo_call(E, ?FAC_ARGS) end,
    Kinds = [
        {baseline, fun hb_beamr_bench_nif:start/0, Echo},
        {fac, fun() -> start(Test) end, Fac},
        {noop, fun() -> start(Bench) end, Noop}
    ],
    Measure = fun(Procs) ->
        [{{Kind, Procs}, call_rate(Start, Call, Procs)} || {Kind, Start, Call} <- Kinds]
    end,
    Samples = rounds(Rounds, fun() -> Measure(1) ++ Measure(8) end),
    lists:append([
        begin
            Base = median(maps:get({baseline, P}, Samples)),
            Label = fun(What) -> io_lib:format("~s, ~w process~s", [What, P, plural(P)]) end,
            Ratio = fun(K) -> paired_ratio(Samples, {K, P}, {baseline, P}) end,
            FacRate = median(maps:get({fac, P}, Samples)),
            [
                #row{section = "call", what = Label("baseline: NIF -> thread -> reply"),
                     median = Base, unit = "calls/s"},
                #row{section = "call", what = Label("hb_beamr:call fac(5.0)"), median = FacRate,
                     unit = "calls/s", baseline = "hand-off NIF", ratio = Ratio(fac),
                     target = target_call(P),
                     met = Ratio(fac) >= 0.7 andalso (P =/= 1 orelse FacRate >= 100000)},
                #row{section = "call", what = Label("hb_beamr:call noop()"),
                     median = median(maps:get({noop, P}, Samples)), unit = "calls/s",
                     baseline = "hand-off NIF", ratio = Ratio(noop), target = ">= 0.7",
                     met = Ratio(noop) >= 0.7}
            ]
        end
     || P <- [1, 8]
    ]).

target_call(1) -> ">= 0.7, >= 100k/s";
target_call(_) -> ">= 0.7".

%% Calls/s of `Call' from `Procs' processes, each on its own instance.
call_rate(Start, Call, Procs) ->
    Parent = self(),
    Go = make_ref(),
    Pids = [
        spawn_link(fun() ->
            Instance = Start(),
            Call(Instance),
            Parent ! {ready, self()},
            receive Go -> ok end,
            N = repeat_for(fun() -> Call(Instance) end, ?SAMPLE_MS),
            stop_instance(Instance),
            Parent ! {done, self(), N}
        end)
     || _ <- lists:seq(1, Procs)
    ],
    [receive {ready, Pid} -> ok end || Pid <- Pids],
    T0 = erlang:monotonic_time(microsecond),
    [Pid ! Go || Pid <- Pids],
    Total = lists:sum([receive {done, Pid, N} -> N end || Pid <- Pids]),
    Total * 1000000 / (erlang:monotonic_time(microsecond) - T0).

stop_instance(Pid) when is_pid(Pid) -> hb_beamr:stop(Pid);
stop_instance(_Echo) -> ok.

echo_call(Echo, Args) ->
    Id = hb_beamr_bench_nif:call(Echo, Args),
    {execution_result, Results} = await(Id),
    Results.

%% Waits for reply Id as hb_beamr:call/6 does: polls for 20 µs, then blocks.
await(Id) ->
    await(Id, erlang:monotonic_time(microsecond) + 20).

await(Id, Until) ->
    receive
        {hb_beamr, Id, Message} -> Message
    after 0 ->
        case erlang:monotonic_time(microsecond) < Until of
            true -> erlang:yield(), await(Id, Until);
            false -> receive {hb_beamr, Id, Message} -> Message end
        end
    end.

%%% Import round trip

import_rows(Root, Rounds) ->
    Bench = read(Root, "test/fixtures/bench.wasm"),
    N = ?IMPORTS_PER_CALL,
    Expected = N * (N + 1) div 2,
    Tick = fun(S, #{args := [X]}, _Opts) -> {ok, [X], S} end,
    Wasm = start(Bench),
    Echo = hb_beamr_bench_nif:start(),
    Samples = rounds(Rounds, fun() ->
        [
            {baseline, N / seconds(fun() -> Expected = echo_imports(Echo, N) end)},
            {import, N / seconds(fun() ->
                {ok, [Expected], _} = hb_beamr:call(Wasm, "import_loop", [N], Tick, ok)
            end)}
        ]
    end),
    hb_beamr:stop(Wasm),
    Base = median(maps:get(baseline, Samples)),
    Rate = median(maps:get(import, Samples)),
    Ratio = paired_ratio(Samples, import, baseline),
    [
        #row{section = "import", what = "baseline: thread -> process -> NIF -> thread",
             median = Base, unit = "imports/s"},
        #row{section = "import", what = "WASM -> Erlang import fun -> WASM", median = Rate,
             unit = "imports/s", baseline = "hand-off NIF", ratio = Ratio,
             target = ">= 0.7", met = Ratio >= 0.7}
    ].

echo_imports(Echo, N) ->
    Id = hb_beamr_bench_nif:imports(Echo, N),
    serve_echo(Echo, Id).

serve_echo(Echo, Id) ->
    case await(Id) of
        {import, _Module, _Func, [X], _Sig} ->
            ok = hb_beamr_bench_nif:respond(Echo, [X]),
            serve_echo(Echo, Id);
        {execution_result, [Sum]} ->
            Sum
    end.

%%% Compute

compute_rows(Root, Rounds) ->
    Bench = read(Root, "test/fixtures/bench.wasm"),
    {ok, Aot} = hb_beamr:compile(Bench),
    Wasm = start(Bench, wasm),
    Compiled = start(Aot, aot),
    Fill = << <<((I * 31) band 255)>> || I <- lists:seq(0, ?FNV_LEN - 1) >>,
    [begin
         {ok, [_]} = hb_beamr:call(I, "grow", [?FNV_LEN div 65536]),
         ok = hb_beamr_io:write(I, 0, Fill)
     end || I <- [Wasm, Compiled]],
    Kernels = [
        {"mix(10,000,000): xorshift64*, no memory", "mix", [?MIX_N],
         ["mix", integer_to_list(?MIX_N)]},
        {"fnv1a(1 MiB) x 8: byte loads", "fnv1a", [?FNV_LEN, ?FNV_ROUNDS],
         ["fnv1a", integer_to_list(?FNV_LEN), integer_to_list(?FNV_ROUNDS)]}
    ],
    Rows = lists:append([compute_kernel(Root, Rounds, Wasm, Compiled, K) || K <- Kernels]),
    hb_beamr:stop(Wasm),
    hb_beamr:stop(Compiled),
    Rows.

compute_kernel(Root, Rounds, Wasm, Compiled, {What, Func, Args, NativeArgs}) ->
    Native = built(Root, "HB_BEAMR_BENCH_NATIVE", "hb_beamr_bench_native"),
    Cmd = lists:join(" ", [Native, filename:join(Root, "test/fixtures/bench.wasm"), hd(NativeArgs), "3"
                           | tl(NativeArgs)]),
    Time = fun(I) ->
        {Us, {ok, [Result]}} = timer:tc(fun() -> hb_beamr:call(I, Func, Args) end),
        {Us / 1000, unsigned(Result)}
    end,
    Samples = rounds(Rounds, fun() ->
        {WasmMs, R} = Time(Wasm),
        {AotMs, R} = Time(Compiled),
        #{native := {NativeMs, R}, wasmtime := {WasmtimeMs, R}} = run_native(lists:flatten(Cmd)),
        [{wasm, WasmMs}, {aot, AotMs}, {native, NativeMs}, {wasmtime, WasmtimeMs}]
    end),
    [Nat, Int, Aot, Wt] = [median(maps:get(K, Samples)) || K <- [native, wasm, aot, wasmtime]],
    Vs = fun(K, Base) -> paired_ratio(Samples, K, Base) end,
    Row = fun(Engine, Ms, Extra) ->
        (Extra)#row{section = "compute", what = What ++ ", " ++ Engine, median = Ms, unit = "ms"}
    end,
    [
        Row("native Rust", Nat, #row{}),
        Row("wasmtime 48 (cranelift)", Wt, #row{baseline = "native", ratio = Vs(wasmtime, native)}),
        Row("hb_beamr wasm (interpreter)", Int, #row{baseline = "native", ratio = Vs(wasm, native)}),
        Row("hb_beamr aot", Aot, #row{baseline = "native", ratio = Vs(aot, native),
                                      target = "<= 1.5", met = Vs(aot, native) =< 1.5}),
        Row("hb_beamr aot", Aot, #row{baseline = "wasmtime", ratio = Vs(aot, wasmtime),
                                      target = "< 1.0", met = Vs(aot, wasmtime) < 1.0})
    ].

%%% Metering (docs/metering.md)

%% The compute kernels metered (start/3 #{fuel => 2^62}: the counter never
%% runs short, so this is the charges' fast path) against the same bytes
%% unmetered (aot: compiled with and without `metered => true'), called
%% turn about in the same rounds; the results must be equal, and the fuel
%% of a call the same in both modes.
metering_rows(Root, Rounds) ->
    Bench = read(Root, "test/fixtures/bench.wasm"),
    Nan = read(Root, "test/fixtures/nan.wasm"),
    Fill = << <<((I * 31) band 255)>> || I <- lists:seq(0, ?FNV_LEN - 1) >>,
    Kernels = [
        {"mix(10,000,000)", Bench, "mix", [?MIX_N]},
        {"fnv1a(1 MiB) x 8", Bench, "fnv1a", [?FNV_LEN, ?FNV_ROUNDS]},
        {"float_loop(2,000,000)", Nan, "float_loop", [2000000]}
    ],
    lists:append([metering_kernel(Rounds, Fill, K) || K <- Kernels]) ++ metering_ao(Root, Rounds).

%% The AO process's Lua loop (HB_BEAMR_AOS_WASM) metered against unmetered,
%% both modes (aot: the bytecode through the compile cache, compiled with
%% and without metering), turn about; the answers must be equal.
metering_ao(Root, Rounds) ->
    case os:getenv("HB_BEAMR_AOS_WASM") of
        false ->
            [];
        Path ->
            Wasm = load_aos(Root, Path),
            Loop = <<"local t = 0; for i = 1, 1000000 do t = t + i end; return t">>,
            Start = fun(Mode, Opts) ->
                {ok, W, _, _} = hb_beamr:start(Wasm, Mode, Opts),
                W
            end,
            Instances = [{{Mode, Way}, Start(Mode, Opts)}
                         || Mode <- [wasm, aot],
                            {Way, Opts} <- [{plain, #{}}, {metered, #{fuel => 1 bsl 50}}]],
            Eval = fun(Key) ->
                {Us, Out} = timer:tc(fun() -> hb_beamr_aos:eval(proplists:get_value(Key, Instances), Loop) end),
                {Us / 1000, Out}
            end,
            Samples = rounds(Rounds, fun() ->
                lists:append([begin
                    {PlainMs, Out} = Eval({Mode, plain}),
                    {MeteredMs, Out} = Eval({Mode, metered}),
                    [{{Mode, plain}, PlainMs}, {{Mode, metered}, MeteredMs}]
                end || Mode <- [wasm, aot]])
            end),
            [hb_beamr:stop(W) || {_, W} <- Instances],
            Text = fun(Mode, Way) ->
                lists:flatten(io_lib:format("AO process: Lua loop of 1,000,000 additions, ~s, ~s",
                                            [Mode, Way]))
            end,
            metered_rows(Text, Samples)
    end.

metering_kernel(Rounds, Fill, {What, Bytes, Func, Args}) ->
    {ok, Aot} = hb_beamr:compile(Bytes),
    {ok, MeteredAot} = hb_beamr:compile(Bytes, #{metered => true}),
    Start = fun(Bin, Mode, Opts) ->
        {ok, W, _, _} = hb_beamr:start(Bin, Mode, Opts),
        case Func of
            "fnv1a" ->
                {ok, [_]} = hb_beamr:call(W, "grow", [?FNV_LEN div 65536]),
                ok = hb_beamr_io:write(W, 0, Fill);
            _ -> ok
        end,
        W
    end,
    Fuel = #{fuel => 1 bsl 62},
    Instances = [{{wasm, plain}, Start(Bytes, wasm, #{})},
                 {{wasm, metered}, Start(Bytes, wasm, Fuel)},
                 {{aot, plain}, Start(Aot, aot, #{})},
                 {{aot, metered}, Start(MeteredAot, aot, Fuel)}],
    Call = fun(W) ->
        {Us, {ok, [R]}} = timer:tc(fun() -> hb_beamr:call(W, Func, Args) end),
        {Us / 1000, R}
    end,
    Used = fun(W) ->
        {ok, #{remaining := Before}} = hb_beamr:fuel(W),
        {_, _} = Call(W),
        {ok, #{remaining := After}} = hb_beamr:fuel(W),
        Before - After
    end,
    FuelWasm = Used(proplists:get_value({wasm, metered}, Instances)),
    FuelAot = Used(proplists:get_value({aot, metered}, Instances)),
    FuelWasm = FuelAot,
    Samples = rounds(Rounds, fun() ->
        lists:append([begin
            {PlainMs, R} = Call(proplists:get_value({Mode, plain}, Instances)),
            {MeteredMs, R} = Call(proplists:get_value({Mode, metered}, Instances)),
            [{{Mode, plain}, PlainMs}, {{Mode, metered}, MeteredMs}]
        end || Mode <- [wasm, aot]])
    end),
    [hb_beamr:stop(W) || {_, W} <- Instances],
    Text = fun(Mode, Way) ->
        lists:flatten(io_lib:format("~s (~w fuel a call, both modes), ~s, ~s",
                                    [What, FuelWasm, Mode, Way]))
    end,
    metered_rows(Text, Samples).

%% Each mode's unmetered and metered rows of paired `Samples' (keys
%% `{Mode, plain | metered}'), named by `Text(Mode, Way)', against the
%% targets (1.35 in the interpreter, 1.15 in AOT code).
metered_rows(Text, Samples) ->
    lists:append([begin
        Ratio = paired_ratio(Samples, {Mode, metered}, {Mode, plain}),
        Target = case Mode of wasm -> 1.35; aot -> 1.15 end,
        [#row{section = "metering", what = Text(Mode, "unmetered"),
              median = median(maps:get({Mode, plain}, Samples)), unit = "ms"},
         #row{section = "metering", what = Text(Mode, "metered"),
              median = median(maps:get({Mode, metered}, Samples)), unit = "ms",
              baseline = "unmetered", ratio = Ratio,
              target = lists:flatten(io_lib:format("<= ~.2f", [Target])),
              met = Ratio =< Target}]
    end || Mode <- [wasm, aot]]).

%%% setjmp/longjmp and AO processes

-define(SETJMP_CALLS, 20000).
-define(SETJMP_DEPTH, 20).
-define(AO_LOOP, <<"local t = 0; for i = 1, 1000000 do t = t + i end; return t">>).

%% ?SETJMP_CALLS protected calls inside one call, each a longjmp through
%% ?SETJMP_DEPTH + 1 frames.
setjmp_rows(Root, Rounds) ->
    Wasm = read(Root, "test/fixtures/setjmp.wasm"),
    {ok, Aot} = hb_beamr:compile(Wasm),
    Instances = [{wasm, start(Wasm, wasm)}, {aot, start(Aot, aot)}],
    Expected = {ok, [?SETJMP_CALLS * (?SETJMP_DEPTH + 100)]},
    Time = fun(W) ->
        {Us, Expected} = timer:tc(fun() -> hb_beamr:call(W, "longjmps", [?SETJMP_CALLS, ?SETJMP_DEPTH]) end),
        Us / 1000
    end,
    Samples = rounds(Rounds, fun() -> [{Mode, Time(W)} || {Mode, W} <- Instances] end),
    [hb_beamr:stop(W) || {_, W} <- Instances],
    What = io_lib:format("~w protected calls, each a longjmp through ~w frames", [?SETJMP_CALLS, ?SETJMP_DEPTH + 1]),
    [
        #row{section = "setjmp", what = What ++ ", wasm (interpreter)",
             median = median(maps:get(wasm, Samples)), unit = "ms"},
        #row{section = "setjmp", what = What ++ ", aot (rewritten)",
             median = median(maps:get(aot, Samples)), unit = "ms", baseline = "wasm",
             ratio = paired_ratio(Samples, aot, wasm), target = "< 1.0",
             met = paired_ratio(Samples, aot, wasm) < 1.0}
    ].

%% An AO process (HB_BEAMR_AOS_WASM) in both modes.
ao_rows(Root, Rounds) ->
    case os:getenv("HB_BEAMR_AOS_WASM") of
        false ->
            io:format(standard_error, "bench: no HB_BEAMR_AOS_WASM: no AO rows~n", []),
            [];
        Path ->
            Wasm = load_aos(Root, Path),
            {CompileUs, {ok, Aot}} = timer:tc(fun() -> hb_beamr:compile(Wasm) end),
            ao_rows(Wasm, Aot, CompileUs / 1.0e6, Rounds)
    end.

ao_rows(Wasm, Aot, CompileS, Rounds) ->
    Bins = #{wasm => Wasm, aot => Aot},
    %% Start, then the first message: a fresh process each round.
    First = fun(Mode) ->
        {Us, {ok, W}} = timer:tc(fun() ->
            {ok, W} = hb_beamr_aos:start(maps:get(Mode, Bins), Mode),
            _ = hb_beamr_aos:eval(W, <<"return 1">>),
            {ok, W}
        end),
        hb_beamr:stop(W),
        Us / 1000
    end,
    FirstSamples = rounds(min(Rounds, 3), fun() -> [{Mode, First(Mode)} || Mode <- [wasm, aot]] end),
    Procs = [begin {ok, W} = hb_beamr_aos:start(maps:get(Mode, Bins), Mode), {Mode, W} end
             || Mode <- [wasm, aot]],
    [_ = hb_beamr_aos:eval(W, <<"return 1">>) || {_, W} <- Procs],
    Loop = fun(W) ->
        {Us, Out} = timer:tc(fun() -> hb_beamr_aos:eval(W, ?AO_LOOP) end),
        nomatch = binary:match(Out, <<"error">>),
        {match, _} = re:run(Out, <<"\"data\":\"500000500000\"">>),
        Us / 1000
    end,
    Samples = rounds(Rounds, fun() -> [{Mode, Loop(W)} || {Mode, W} <- Procs] end),
    [hb_beamr:stop(W) || {_, W} <- Procs],
    Speedup = paired_ratio(Samples, wasm, aot),
    %% start(Bytecode, aot): the compile cache (a miss compiles, or reads
    %% an earlier run's file), then hits from memory and from disk.
    CacheStart = fun(Forget) ->
        ok = case Forget of
            true -> hb_beamr_aot_cache:forget();
            false -> ok
        end,
        {Us, {ok, W, _, _}} = timer:tc(fun() -> hb_beamr:start(Wasm, aot) end),
        hb_beamr:stop(W),
        Us / 1000
    end,
    _ = CacheStart(false),
    CacheSamples = rounds(Rounds, fun() -> [{memory, CacheStart(false)}, {disk, CacheStart(true)}] end),
    [
        #row{section = "AO process", what = "compile/1 aos-2-pure-xs", median = CompileS, unit = "s"},
        #row{section = "AO process", what = "start + first message, wasm",
             median = median(maps:get(wasm, FirstSamples)), unit = "ms"},
        #row{section = "AO process", what = "start + first message, aot",
             median = median(maps:get(aot, FirstSamples)), unit = "ms", baseline = "wasm",
             ratio = paired_ratio(FirstSamples, aot, wasm)},
        #row{section = "AO process", what = "Lua loop 1..1,000,000, wasm",
             median = median(maps:get(wasm, Samples)), unit = "ms"},
        #row{section = "AO process", what = "Lua loop 1..1,000,000, aot",
             median = median(maps:get(aot, Samples)), unit = "ms", baseline = "wasm",
             ratio = paired_ratio(Samples, aot, wasm)},
        #row{section = "AO process", what = "Lua loop speed-up, aot over wasm",
             median = Speedup, unit = "x", target = ">= 30", met = Speedup >= 30},
        #row{section = "AO process", what = "start(Bytecode, aot), cache hit in memory",
             median = median(maps:get(memory, CacheSamples)), unit = "ms", target = "< 1000",
             met = median(maps:get(memory, CacheSamples)) < 1000},
        #row{section = "AO process", what = "start(Bytecode, aot), cache hit on disk",
             median = median(maps:get(disk, CacheSamples)), unit = "ms", target = "< 1000",
             met = median(maps:get(disk, CacheSamples)) < 1000}
    ].

%% An AO process (HB_BEAMR_AOS_WASM) snapshotted and forked, in both modes.
ao_fork_rows(Root, Rounds) ->
    case os:getenv("HB_BEAMR_AOS_WASM") of
        false ->
            io:format(standard_error, "bench: no HB_BEAMR_AOS_WASM: no AO fork rows~n", []),
            [];
        Path ->
            Wasm = load_aos(Root, Path),
            {ok, Aot} = hb_beamr:compile(Wasm),
            lists:append([ao_fork_rows(Bin, Mode, Rounds) || {Mode, Bin} <- [{wasm, Wasm}, {aot, Aot}]])
    end.

-define(AO_MESSAGE, <<"N = (N or 0) + 1 Seen = Seen or {} Seen[#Seen + 1] = 'message ' .. N return N">>).

%% A process after its first message (which sets Lua up). Each round: one
%% message then a delta on the last snapshot (the kernel's record of the
%% pages written), one message then a full snapshot, turn about; image/1
%% of the full one; forks of that image (p50 of `Starts', turn about with
%% plain starts); start + deserialize/2 and start + restore/2 of it; one
%% message in a fresh fork and in a fresh restored copy. Then the RSS of
%% 50 forks that each answered a message, and of 10 restored copies.
ao_fork_rows(Bin, Mode, Rounds) ->
    Start = fun(Opts) -> {ok, W} = hb_beamr_aos:start(Bin, Mode, Opts), W end,
    Message = fun(W) ->
        Out = hb_beamr_aos:eval(W, ?AO_MESSAGE),
        nomatch = binary:match(Out, <<"error">>),
        Out
    end,
    Ms = fun(Fun) -> {Us, Result} = timer:tc(Fun), {Us / 1000, Result} end,
    P = Start(#{}),
    _ = hb_beamr_aos:eval(P, <<"return 1">>),
    {ok, Full0} = hb_beamr:snapshot(P),
    % The first delta is compared with its untracked base; the next ones
    % are the kernel's.
    {ok, D0} = hb_beamr:snapshot(P, #{base => Full0}),
    Starts = 25,
    StartMs = fun(Opts) ->
        {T, W} = Ms(fun() -> Start(Opts) end),
        ok = hb_beamr:stop(W),
        T
    end,
    {Samples, _} = lists:foldl(
        fun(_, {Acc, Last}) ->
            erlang:garbage_collect(),
            _ = Message(P),
            {DeltaMs, {ok, D}} = Ms(fun() -> hb_beamr:snapshot(P, #{base => Last}) end),
            {ok, #{method := Method, units := Units}} = hb_beamr:snapshot_info(D),
            _ = Message(P),
            {FullMs, {ok, Full}} = Ms(fun() -> hb_beamr:snapshot(P) end),
            {ok, Memory} = hb_beamr:serialize(P),
            {ImageMs, {ok, Image}} = Ms(fun() -> hb_beamr:image(Full) end),
            Pairs = [{StartMs(#{}), StartMs(#{snapshot => Image})} || _ <- lists:seq(1, Starts)],
            Plain = median([A || {A, _} <- Pairs]),
            Forked = median([F || {_, F} <- Pairs]),
            {Deser, ok} = Ms(fun() ->
                W = Start(#{}),
                ok = hb_beamr:deserialize(W, Memory),
                hb_beamr:stop(W)
            end),
            {Restore, R} = Ms(fun() ->
                W = Start(#{}),
                ok = hb_beamr:restore(W, Full),
                W
            end),
            F = Start(#{snapshot => Image}),
            {InFork, Out} = Ms(fun() -> Message(F) end),
            {InCopy, Out} = Ms(fun() -> Message(R) end),
            [ok = hb_beamr:stop(W) || W <- [F, R]],
            Row = [{delta, DeltaMs}, {full, FullMs}, {delta_kib, byte_size(D) / 1024},
                   {full_kib, byte_size(Full) / 1024}, {units, Units}, {method, Method},
                   {image, ImageMs}, {plain, Plain}, {forked, Forked}, {cost, Forked - Plain},
                   {deser, Deser}, {restore, Restore}, {in_fork, InFork}, {in_copy, InCopy}],
            {lists:foldl(fun({K, V}, A) -> maps:update_with(K, fun(L) -> [V | L] end, [V], A) end,
                         Acc, Row),
             Full}
        end,
        {#{}, D0}, lists:seq(1, Rounds)),
    {ok, Snap} = hb_beamr:snapshot(P),
    ok = hb_beamr:stop(P),
    {PerFork, PerCopy, ImageKiB} = ao_fork_rss(Start, Message, Snap),
    Label = fun(What) -> lists:flatten(io_lib:format("~s, ~s", [What, Mode])) end,
    Med = fun(K) -> median(maps:get(K, Samples)) end,
    Sec = "AO forks",
    [
        #row{section = Sec, what = Label(io_lib:format("baseline: full snapshot/1 after one message (~w KiB)",
                                                       [round(Med(full_kib))])),
             median = Med(full), unit = "ms"},
        #row{section = Sec, what = Label(io_lib:format("delta after one message, method ~p (~w KiB, ~w units)",
                                                       [lists:usort(maps:get(method, Samples)),
                                                        round(Med(delta_kib)), Med(units)])),
             median = Med(delta), unit = "ms", baseline = "full", ratio = paired_ratio(Samples, delta, full)},
        #row{section = Sec, what = Label("baseline: start + deserialize/2 of its memory"),
             median = Med(deser), unit = "ms"},
        #row{section = Sec, what = Label("baseline: start + restore/2 of its snapshot"),
             median = Med(restore), unit = "ms"},
        #row{section = Sec, what = Label("image/1 of the snapshot (once per snapshot)"),
             median = Med(image), unit = "ms"},
        #row{section = Sec, what = Label("start with #{snapshot => Image}"),
             median = Med(forked), unit = "ms", baseline = "start+deserialize",
             ratio = paired_ratio(Samples, forked, deser)},
        #row{section = Sec, what = Label(io_lib:format("the fork over a plain start (p50 of ~w each)", [Starts])),
             median = Med(cost), unit = "ms"},
        #row{section = Sec, what = Label("baseline: plain start of the AO module"),
             median = Med(plain), unit = "ms"},
        #row{section = Sec, what = Label("baseline: one message in a fresh restored copy"),
             median = Med(in_copy), unit = "ms"},
        #row{section = Sec, what = Label("one message in a fresh fork"),
             median = Med(in_fork), unit = "ms", baseline = "restored copy",
             ratio = paired_ratio(Samples, in_fork, in_copy)},
        #row{section = Sec, what = Label("the image's own pages (the snapshot's non-zero units)"),
             median = ImageKiB, unit = "KiB"},
        #row{section = Sec, what = Label("baseline: RSS per restored copy that answered a message (10)"),
             median = PerCopy, unit = "KiB"},
        #row{section = Sec, what = Label("RSS per fork that answered a message (50)"),
             median = PerFork, unit = "KiB", baseline = "restored copy", ratio = PerFork / PerCopy}
    ].

%% KiB of node RSS per fork of an image of `Snap' that answered one
%% message (50 of them), per copy started and restored from it that did
%% the same (10), and the image's own pages (KiB).
ao_fork_rss(Start, Message, Snap) ->
    {ok, Image} = hb_beamr:image(Snap),
    % What the memfd holds: the snapshot's non-zero units (Shmem in
    % /proc/meminfo is the whole machine's, too noisy at this size).
    {ok, #{globals := Globals}} = hb_beamr:snapshot_info(Snap),
    <<_:(124 + 13 * Globals)/binary, Memory/binary>> = Snap,
    Zero = <<0:(4096 * 8)>>,
    ImageKiB = 4 * length([U || <<U:4096/binary>> <= Memory, U =/= Zero]),
    Measure = fun(N, Make) ->
        Rss0 = settled_rss(),
        Ws = [begin W = Make(), _ = Message(W), W end || _ <- lists:seq(1, N)],
        Added = settled_rss() - Rss0,
        [ok = hb_beamr:stop(W) || W <- Ws],
        Added / 1024 / N
    end,
    PerFork = Measure(50, fun() -> Start(#{snapshot => Image}) end),
    PerCopy = Measure(10, fun() -> W = Start(#{}), ok = hb_beamr:restore(W, Snap), W end),
    {PerFork, PerCopy, ImageKiB}.

%% The native/wasmtime runner's lines: `native Ms Result', `wasmtime Ms Result'.
run_native(Cmd) ->
    Lines = string:lexemes(os:cmd(Cmd), "\n"),
    maps:from_list([
        begin
            [Engine, Ms, Result] = string:lexemes(Line, " "),
            {list_to_atom(Engine), {list_to_float(Ms), list_to_integer(Result)}}
        end
     || Line <- Lines
    ]).

unsigned(N) when N < 0, N >= -(1 bsl 31) -> N + (1 bsl 32);
unsigned(N) when N < 0 -> N + (1 bsl 64);
unsigned(N) -> N.

%% The float loop of test/fixtures/nan.wat with NaNs canonicalized (deterministic
%% floats) against the module as it is, in both modes.
nan_rows(Root, Rounds) ->
    Nan = read(Root, "test/fixtures/nan.wasm"),
    {ok, Aot} = hb_beamr:compile(Nan),
    {ok, DetAot} = hb_beamr:compile(Nan, #{deterministic => true}),
    Instances = [{wasm, start(Nan, wasm)}, {wasm_det, start_deterministic(Nan)},
                 {aot, start(Aot, aot)}, {aot_det, start(DetAot, aot)}],
    N = 2000000,
    Samples = rounds(Rounds, fun() ->
        [begin
             {Us, {ok, [_]}} = timer:tc(fun() -> hb_beamr:call(I, "float_loop", [N]) end),
             {K, Us / 1000}
         end || {K, I} <- Instances]
    end),
    [hb_beamr:stop(I) || {_, I} <- Instances],
    What = "float_loop(2,000,000): sqrt, mul, div chain, hb_beamr ",
    Row = fun(Key, Engine, Extra) ->
        (Extra)#row{section = "compute", what = What ++ Engine,
                    median = median(maps:get(Key, Samples)), unit = "ms"}
    end,
    [
        Row(wasm, "wasm", #row{}),
        Row(wasm_det, "wasm, deterministic", #row{baseline = "wasm",
                                                  ratio = paired_ratio(Samples, wasm_det, wasm)}),
        Row(aot, "aot", #row{}),
        Row(aot_det, "aot, deterministic", #row{baseline = "aot",
                                                ratio = paired_ratio(Samples, aot_det, aot)})
    ].

%%% Scale

scale_rows(Root, Count) ->
    Test = read(Root, "test/test.wasm"),
    erlang:garbage_collect(),
    {Rss0, Threads0} = proc_status(),
    Starters = 100,
    {StartUs, Instances} = timer:tc(fun() -> parallel(Starters, Count, fun(_) -> start(Test) end) end),
    {CallUs, Results} = timer:tc(fun() ->
        parallel_map(Starters, Instances, fun(W) -> hb_beamr:call(W, "fac", ?FAC_ARGS) end)
    end),
    Count = length([ok || {ok, [120.0]} <- Results]),
    Count = hb_beamr_nif:live_instances(),
    {RssPeak, ThreadsPeak} = proc_status(),
    {StopUs, _} = timer:tc(fun() -> parallel_map(Starters, Instances, fun hb_beamr:stop/1) end),
    settle(Threads0, 20000),
    erlang:garbage_collect(),
    {RssEnd, ThreadsEnd} = proc_status(),
    PerInstance = (RssPeak - Rss0) / Count,
    What = fun(Text) -> io_lib:format(Text, [Count]) end,
    [
        #row{section = "scale", what = What("start ~w instances (100 processes)"),
             median = Count * 1000000 / StartUs, unit = "starts/s", target = ">= 2,000",
             met = Count * 1000000 / StartUs >= 2000},
        #row{section = "scale", what = What("call each of ~w live instances once"),
             median = Count * 1000000 / CallUs, unit = "calls/s"},
        #row{section = "scale", what = What("stop ~w instances"),
             median = Count * 1000000 / StopUs, unit = "stops/s"},
        #row{section = "scale", what = "RSS per live instance (no linear memory)",
             median = PerInstance, unit = "KiB", target = "<= 256", met = PerInstance =< 256},
        #row{section = "scale", what = io_lib:format("threads: before, all live, after (~w, ~w, ~w)",
                                                     [Threads0, ThreadsPeak, ThreadsEnd]),
             median = ThreadsEnd - Threads0, unit = "threads left",
             target = "0", met = ThreadsEnd =< Threads0},
        #row{section = "scale", what = io_lib:format("RSS: before, all live, after (~w, ~w, ~w KiB)",
                                                     [Rss0, RssPeak, RssEnd]),
             median = RssEnd - Rss0, unit = "KiB left",
             target = io_lib:format("<= ~w (5% of peak growth)", [(RssPeak - Rss0) div 20]),
             met = RssEnd - Rss0 =< (RssPeak - Rss0) div 20}
    ].

%%% Start: shared modules against loading anew

-define(START_SAMPLES, 25).
-define(EXTRA_INSTANCES, 200).

%% Runs Fun with application env module_sharing set to Share.
sharing(Share, Fun) ->
    application:set_env(hb_beamr, module_sharing, Share),
    try Fun() after application:unset_env(hb_beamr, module_sharing) end.

start_rows(Root, Rounds, Count) ->
    % Our fixture of the AO module's shape always; HyperBEAM's own AO
    % module too when HB_BEAMR_AOS_WASM names it (never in the repo).
    Modules = [{"ao-shape", filename:join(Root, "test/fixtures/ao-shape.wasm")}]
        ++ case os:getenv("HB_BEAMR_AOS_WASM") of
               false -> [];
               Aos -> [{filename:rootname(filename:basename(Aos)), Aos}]
           end,
    Rows = lists:append([module_start_rows(Name, Path, Rounds) || {Name, Path} <- Modules]),
    Test = filename:join(Root, "test/test.wasm"),
    Scale = [{Share, rss_per_instance(Count, Test, wasm, Share)} || Share <- [false, true]],
    Rows ++ [
        #row{section = "start", what = io_lib:format("RSS per live test/test.wasm instance at ~w (fresh VM), loading anew", [Count]),
             median = proplists:get_value(false, Scale), unit = "KiB"},
        #row{section = "start", what = io_lib:format("RSS per live test/test.wasm instance at ~w (fresh VM), shared module", [Count]),
             median = proplists:get_value(true, Scale), unit = "KiB", target = "<= 48",
             met = proplists:get_value(true, Scale) =< 48}
    ].

%% Start+stop p50 and RSS per extra live instance of one module, both
%% modes, shared against loading anew.
module_start_rows(Name, Path, Rounds) ->
    {ok, Wasm} = file:read_file(Path),
    {ok, Aot} = hb_beamr:compile(Wasm),
    Modes = [{wasm, Wasm}, {aot, Aot}],
    % A sibling keeps each shared module loaded, as a running AO process would.
    Anchors = [start(Bytes, Mode) || {Mode, Bytes} <- Modes],
    Loads0 = maps:get(loads, hb_beamr:module_stats()),
    StartStop = fun(Mode, Bytes) ->
        P50 = fun() ->
            median([begin
                        {Us, ok} = timer:tc(fun() -> hb_beamr:stop(start(Bytes, Mode)) end),
                        settle_instances(length(Anchors), 5000),
                        Us / 1000
                    end || _ <- lists:seq(1, ?START_SAMPLES)])
        end,
        [{{Mode, anew}, sharing(false, P50)}, {{Mode, shared}, sharing(true, P50)}]
    end,
    Samples = rounds(Rounds, fun() -> lists:append([StartStop(M, B) || {M, B} <- Modes]) end),
    % The anchors' modules serve every shared start: no load (starts with
    % sharing off load outside the registry and are not counted).
    SharedLoads = maps:get(loads, hb_beamr:module_stats()) - Loads0,
    [hb_beamr:stop(A) || A <- Anchors],
    Extra = [{{Mode, Share}, rss_per_instance(?EXTRA_INSTANCES, Path, Mode, Share)}
             || {Mode, _} <- Modes, Share <- [false, true]],
    lists:append([
        begin
            Anew = median(maps:get({Mode, anew}, Samples)),
            Shared = median(maps:get({Mode, shared}, Samples)),
            Extra1 = proplists:get_value({Mode, true}, Extra),
            What = fun(Fmt, Way) -> lists:flatten(io_lib:format(Fmt, [Name, Mode, Way])) end,
            [#row{section = "start", what = What("start+stop p50, ~s, ~s, ~s", "loading anew"),
                  median = Anew, unit = "ms"},
             #row{section = "start", what = What("start+stop p50, ~s, ~s, ~s", "shared module"),
                  median = Shared, unit = "ms", baseline = "anew",
                  ratio = paired_ratio(Samples, {Mode, shared}, {Mode, anew}),
                  target = "<= 1 ms", met = Shared =< 1.0},
             #row{section = "start",
                  what = What("RSS per extra live ~s instance (" ++ integer_to_list(?EXTRA_INSTANCES)
                              ++ ", fresh VM), ~s, ~s", "loading anew"),
                  median = proplists:get_value({Mode, false}, Extra), unit = "KiB"},
             #row{section = "start",
                  what = What("RSS per extra live ~s instance (" ++ integer_to_list(?EXTRA_INSTANCES)
                              ++ ", fresh VM), ~s, ~s", "shared module"),
                  median = Extra1, unit = "KiB", target = "<= 1024", met = Extra1 =< 1024}]
        end
     || {Mode, _} <- Modes
    ]) ++ [#row{section = "start", what = "modules loaded by the shared start+stop rounds, " ++ Name,
                median = SharedLoads, unit = "loads", target = "0", met = SharedLoads =:= 0}].

%% RSS growth (KiB) per extra live instance of Count (after a first one),
%% started from 100 processes, with module sharing on or off. Measured in a
%% fresh VM each, since memory freed in this one would be reused by the
%% next measure and hide its growth.
rss_per_instance(Count, File, Mode, Share) ->
    Expr = lists:flatten(io_lib:format(
        "application:set_env(hb_beamr, module_sharing, ~w),"
        "{ok, B0} = file:read_file(~0p),"
        "B = case ~w of aot -> {ok, A} = hb_beamr:compile(B0), A; wasm -> B0 end,"
        "{ok, _First, _, _} = hb_beamr:start(B, ~w),"
        "Rss = fun() -> {ok, S} = file:read_file(\"/proc/self/status\"),"
        "  {match, [V]} = re:run(S, \"VmRSS:\\\\s+(\\\\d+)\", [{capture, all_but_first, list}]),"
        "  list_to_integer(V) end,"
        "erlang:garbage_collect(), R0 = Rss(), Self = self(),"
        "Per = ~w div 100,"
        "[spawn(fun() -> [{ok, _, _, _} = hb_beamr:start(B, ~w) || _ <- lists:seq(1, Per)],"
        "  Self ! done, receive never -> ok end end) || _ <- lists:seq(1, 100)],"
        "[receive done -> ok end || _ <- lists:seq(1, 100)],"
        "io:format(\"~~p~~n\", [(Rss() - R0) / (Per * 100)]), halt().",
        [Share, File, Mode, Mode, Count, Mode])),
    Erl = filename:join([code:root_dir(), "bin", "erl"]),
    Out = os:cmd(Erl ++ " -noshell -eval '" ++ Expr ++ "'"),
    case string:lexemes(Out, "\n") of
        [] -> error({rss_child, Out});
        Lines -> list_to_float(lists:last(Lines))
    end.

%% Waits until at most N instances are live (or Ms pass).
settle_instances(N, Ms) ->
    case hb_beamr_nif:live_instances() =< N orelse Ms =< 0 of
        true -> ok;
        false -> timer:sleep(1), settle_instances(N, Ms - 1)
    end.

%% Waits until the native thread count is back to `Threads' (or `Ms' pass).
settle(Threads, Ms) when Ms =< 0 ->
    Threads;
settle(Threads, Ms) ->
    case {hb_beamr_nif:live_instances(), proc_status()} of
        {0, {_, Now}} when Now =< Threads -> Threads;
        _ -> timer:sleep(50), settle(Threads, Ms - 50)
    end.

%% VmRSS (KiB) and Threads of this OS process.
proc_status() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    Field = fun(Name) ->
        {match, [Value]} = re:run(Status, Name ++ ":\\s+(\\d+)", [{capture, all_but_first, list}]),
        list_to_integer(Value)
    end,
    {Field("VmRSS"), Field("Threads")}.

%% Runs Fun(I) for I in 1..Count from `Workers' processes; the results.
parallel(Workers, Count, Fun) ->
    parallel_map(Workers, lists:seq(1, Count), Fun).

parallel_map(Workers, Items, Fun) ->
    Parent = self(),
    Chunks = chunks(Items, max(1, (length(Items) + Workers - 1) div Workers)),
    Pids = [spawn_link(fun() -> Parent ! {chunk, self(), [Fun(I) || I <- Chunk]} end) || Chunk <- Chunks],
    lists:append([receive {chunk, Pid, Results} -> Results end || Pid <- Pids]).

chunks([], _Size) -> [];
chunks(Items, Size) when length(Items) =< Size -> [Items];
chunks(Items, Size) ->
    {Chunk, Rest} = lists:split(Size, Items),
    [Chunk | chunks(Rest, Size)].

%%% Cluster: a remote call against erpc's own round trip to the same node.

cluster_rows(Root, Rounds) ->
    ok = distributed(50),
    Paths = lists:append([["-pa", D] || D <- code:get_path(), string:find(D, "hb_beamr") =/= nomatch]),
    {ok, Peer, Node} = peer:start(#{name => peer:random_name(), args => Paths}),
    {ok, W, _, _} = hb_beamr:start(read(Root, "test/test.wasm"), wasm, #{node => Node}),
    Rate = fun(Fun) ->
        {Us, N} = timer:tc(fun() -> repeat_for(Fun, ?SAMPLE_MS) end),
        N / (max(Us, 1) / 1000000)
    end,
    Remote = fun() -> {ok, [120.0]} = hb_beamr:call(W, "fac", ?FAC_ARGS) end,
    Erpc = fun() -> Node = erpc:call(Node, erlang, node, []) end,
    Samples = rounds(Rounds, fun() -> [{erpc, Rate(Erpc)}, {remote, Rate(Remote)}] end),
    ok = hb_beamr:stop(W),
    peer:stop(Peer),
    Ratio = paired_ratio(Samples, remote, erpc),
    [
        #row{section = "cluster", what = "baseline: erpc:call to a peer node",
             median = median(maps:get(erpc, Samples)), unit = "calls/s"},
        #row{section = "cluster", what = "hb_beamr:call fac(5.0) on the peer's instance",
             median = median(maps:get(remote, Samples)), unit = "calls/s",
             baseline = "erpc:call", ratio = Ratio, target = ">= 0.7", met = Ratio >= 0.7}
    ].

%% Makes this node distributed (epmd may take a moment to listen).
distributed(Tries) ->
    case node() of
        nonode@nohost ->
            _ = os:cmd("epmd -daemon"),
            case net_kernel:start([list_to_atom("hb_beamr_bench_" ++ os:getpid()), shortnames]) of
                {ok, _} -> ok;
                {error, _} when Tries > 0 -> timer:sleep(100), distributed(Tries - 1);
                {error, Reason} -> {error, Reason}
            end;
        _ ->
            ok
    end.

%%% Memory I/O

memory_rows(Root, Rounds) ->
    Bench = read(Root, "test/fixtures/bench.wasm"),
    W = start(Bench),
    Big = 64 * 1024 * 1024,
    {ok, [1]} = hb_beamr:call(W, "grow", [Big div 65536 - 1]),
    {ok, Big} = hb_beamr_io:size(W),
    IoRows = [
        begin
            Data = patterned_bytes(Size),
            copy_rows(Rounds, Label, Data, Reps, [
                {"hb_beamr_io:write " ++ Label, fun() -> ok = hb_beamr_io:write(W, 0, Data) end},
                {"hb_beamr_io:read " ++ Label, fun() -> {ok, _} = hb_beamr_io:read(W, 0, Size) end}
            ])
        end
     || {Label, Size, Reps} <- [{"4 KiB", 4096, 2000}, {"1 MiB", 1024 * 1024, 40}, {"64 MiB", Big, 1}]
    ],
    {ok, Snapshot} = hb_beamr:serialize(W),
    Big = byte_size(Snapshot),
    {ok, Full} = hb_beamr:snapshot(W),
    SnapshotRows = copy_rows(Rounds, "64 MiB", Snapshot, 1, [
        {"hb_beamr:serialize 64 MiB memory", fun() -> {ok, _} = hb_beamr:serialize(W) end},
        {"hb_beamr:deserialize 64 MiB memory", fun() -> ok = hb_beamr:deserialize(W, Snapshot) end},
        {"hb_beamr:snapshot 64 MiB memory + globals", fun() -> {ok, _} = hb_beamr:snapshot(W) end},
        {"hb_beamr:restore 64 MiB memory + globals", fun() -> ok = hb_beamr:restore(W, Full) end}
    ]),
    hb_beamr:stop(W),
    lists:append(IoRows) ++ SnapshotRows.

%% MB/s of each of `Ops' (each moving `Data''s size, `Reps' times a sample),
%% against copying `Data' with binary:copy/1 in the same rounds.
copy_rows(Rounds, Label, Data, Reps, Ops) ->
    MBs = fun(Fun) -> byte_size(Data) * Reps / 1048576 / seconds(fun() -> times(Reps, Fun) end) end,
    Samples = rounds(Rounds, fun() ->
        [{copy, MBs(fun() -> binary:copy(Data) end)} | [{What, MBs(Fun)} || {What, Fun} <- Ops]]
    end),
    [#row{section = "memory", what = "baseline: binary:copy/1 " ++ Label,
          median = median(maps:get(copy, Samples)), unit = "MB/s"}
     | [#row{section = "memory", what = What, median = median(maps:get(What, Samples)), unit = "MB/s",
             baseline = "binary:copy", ratio = paired_ratio(Samples, What, copy)}
        || {What, _} <- Ops]].

%% Bytes that are not all zero (a zero page could be special-cased somewhere).
patterned_bytes(Size) ->
    Block = << <<(I band 255)>> || I <- lists:seq(1, 4096) >>,
    binary:part(binary:copy(Block, (Size + 4095) div 4096), 0, Size).

%%% Delta snapshots

%% At 64 MiB of memory (and 1 GiB with HB_BEAMR_BENCH_DELTA_GIB=1): 1 MiB
%% dirtied (256 units of 4 KiB, one in every 64, written from Erlang; not
%% timed), then a delta on the last snapshot, with the kernel's dirty-page
%% tracking and with the hash pass, against a full snapshot of the same
%% state; and restoring the chain [Full, Delta] into a fresh instance against
%% restoring the full snapshot.
delta_rows(Root, Rounds) ->
    Sizes = [64 | [1024 || os:getenv("HB_BEAMR_BENCH_DELTA_GIB") =:= "1"]],
    lists:append([delta_rows(Root, Rounds, MiB) || MiB <- Sizes]).

delta_rows(Root, Rounds, MiB) ->
    Bench = read(Root, "test/fixtures/grow.wasm"),
    W = start(Bench),
    Size = MiB * 1024 * 1024,
    {ok, [1]} = hb_beamr:call(W, "grow", [Size div 65536 - 1]),
    ok = hb_beamr_io:write(W, 0, patterned_bytes(Size)),
    Label = integer_to_list(MiB) ++ " MiB",
    Units = Size div 4096,
    Dirty = fun(Round) ->
        [ok = hb_beamr_io:write(W, U * 4096, binary:copy(<<Round:32, U:32>>, 512))
         || U <- lists:seq(Round rem 64, Units - 1, Units div 256)]
    end,
    Ms = fun(Fun) -> {Us, Result} = timer:tc(Fun), {Us / 1000, Result} end,
    {ok, First} = hb_beamr:snapshot(W),
    {Samples, _} = lists:foldl(
        fun(Round, {Acc, Last}) ->
            Dirty(Round),
            {Kernel, {ok, D}} = Ms(fun() -> hb_beamr:snapshot(W, #{base => Last}) end),
            Dirty(Round + 100),
            {Hash, {ok, D2}} = Ms(fun() -> hb_beamr:snapshot(W, #{base => D, method => hash}) end),
            {FullMs, {ok, Full}} = Ms(fun() -> hb_beamr:snapshot(W) end),
            Dirty(Round + 200),
            {ok, D3} = hb_beamr:snapshot(W, #{base => Full}),
            Fresh = start(Bench),
            {Chain, ok} = Ms(fun() -> hb_beamr:restore(Fresh, [Full, D3]) end),
            hb_beamr:stop(Fresh),
            Fresh2 = start(Bench),
            {Whole, ok} = Ms(fun() -> hb_beamr:restore(Fresh2, Full) end),
            hb_beamr:stop(Fresh2),
            {ok, Info} = hb_beamr:snapshot_info(D),
            {ok, #{units := HashUnits}} = hb_beamr:snapshot_info(D2),
            256 = HashUnits,
            Row = [{kernel, Kernel}, {hash, Hash}, {full, FullMs}, {chain, Chain}, {whole, Whole},
                   {method, maps:get(method, Info)}, {bytes, byte_size(D)}],
            {lists:foldl(fun({K, V}, A) -> maps:update_with(K, fun(L) -> [V | L] end, [V], A) end,
                         Acc, Row),
             D3}
        end,
        {#{}, First}, lists:seq(1, Rounds)),
    hb_beamr:stop(W),
    Methods = lists:usort(maps:get(method, Samples)),
    Bytes = median(maps:get(bytes, Samples)),
    Sec = "delta",
    [
        #row{section = Sec, what = "baseline: hb_beamr:snapshot/1, " ++ Label,
             median = median(maps:get(full, Samples)), unit = "ms"},
        #row{section = Sec, what = io_lib:format("delta, 1 MiB dirty, ~s, method ~p (~w KiB)",
                                                 [Label, Methods, Bytes div 1024]),
             median = median(maps:get(kernel, Samples)), unit = "ms", baseline = "full",
             ratio = paired_ratio(Samples, kernel, full)},
        #row{section = Sec, what = "delta, 1 MiB dirty, " ++ Label ++ ", method => hash",
             median = median(maps:get(hash, Samples)), unit = "ms", baseline = "full",
             ratio = paired_ratio(Samples, hash, full)},
        #row{section = Sec, what = "baseline: restore/2 of the full snapshot, " ++ Label,
             median = median(maps:get(whole, Samples)), unit = "ms"},
        #row{section = Sec, what = "restore/2 of the chain [Full, Delta 1 MiB], " ++ Label,
             median = median(maps:get(chain, Samples)), unit = "ms", baseline = "full",
             ratio = paired_ratio(Samples, chain, whole)}
    ].

%%% Forks

%% At 64 MiB and 1 GiB of memory (patterned: no zero page): a fork from an
%% image (start with `#{snapshot => Image}') against start + deserialize of
%% the same memory (what a fork cost before), and the fork's cost over a
%% plain start of the same module (the difference of the medians of
%% `Starts' starts of each, taken turn about, per round); building the
%% image (once per snapshot) and fork/1 of a live instance (an image of it,
%% then a fork). Then the memory of 100 forks of the largest image that
%% each write 1 MiB.
fork_rows(Root, Rounds) ->
    Sizes = [64 | [1024 || os:getenv("HB_BEAMR_BENCH_FORK_GIB") =/= "0"]],
    lists:append([fork_rows(Root, Rounds, MiB) || MiB <- Sizes]) ++ fork_rss_rows(Root, lists:last(Sizes)).

fork_rows(Root, Rounds, MiB) ->
    Bench = read(Root, "test/fixtures/grow.wasm"),
    Size = MiB * 1024 * 1024,
    W = start(Bench),
    {ok, [1]} = hb_beamr:call(W, "grow", [Size div 65536 - 1]),
    ok = hb_beamr_io:write(W, 0, patterned_bytes(Size)),
    {ok, Memory} = hb_beamr:serialize(W),
    {ok, Snap} = hb_beamr:snapshot(W),
    Ms = fun(Fun) -> {Us, Result} = timer:tc(Fun), {Us / 1000, Result} end,
    Starts = 25,
    StartMs = fun(Opts) ->
        {T, {ok, F, _, _}} = Ms(fun() -> hb_beamr:start(Bench, wasm, Opts) end),
        hb_beamr:stop(F),
        T
    end,
    {ok, Image0} = hb_beamr:image(Snap),
    Samples = rounds(Rounds, fun() ->
        % The last round's images (1 GiB memfds) are garbage: freed now.
        erlang:garbage_collect(),
        {ImageMs, {ok, Image}} = Ms(fun() -> hb_beamr:image(Snap) end),
        Pairs = [{StartMs(#{}), StartMs(#{snapshot => Image0})} || _ <- lists:seq(1, Starts)],
        Plain = median([P || {P, _} <- Pairs]),
        Forked = median([F || {_, F} <- Pairs]),
        {Deser, ok} = Ms(fun() ->
            {ok, D, _, _} = hb_beamr:start(Bench, wasm),
            ok = hb_beamr:deserialize(D, Memory),
            hb_beamr:stop(D)
        end),
        {ForkMs, {ok, F1, _, _}} = Ms(fun() -> hb_beamr:fork(W) end),
        %% The fork is the snapshot's state.
        {ok, Tail} = hb_beamr_io:read(F1, Size - 4096, 4096),
        Tail = binary:part(Memory, Size - 4096, 4096),
        hb_beamr:stop(F1),
        ok = check_fork(Bench, Image, Memory),
        [{plain, Plain}, {forked, Forked}, {cost, Forked - Plain}, {deser, Deser},
         {image, ImageMs}, {fork, ForkMs}]
    end),
    hb_beamr:stop(W),
    Label = integer_to_list(MiB) ++ " MiB",
    {Target, Limit} = case MiB of
                          64 -> {"< 0.1 ms", 0.1};
                          _ -> {"< 1 ms", 1.0}
                      end,
    Cost = median(maps:get(cost, Samples)),
    Sec = "forks",
    [
        #row{section = Sec, what = "baseline: start + deserialize/2, " ++ Label,
             median = median(maps:get(deser, Samples)), unit = "ms"},
        #row{section = Sec, what = "start with #{snapshot => Image}, " ++ Label,
             median = median(maps:get(forked, Samples)), unit = "ms", baseline = "start+deserialize",
             ratio = paired_ratio(Samples, forked, deser)},
        #row{section = Sec, what = io_lib:format("the fork over a plain start (p50 of ~w each), ", [Starts]) ++ Label,
             median = Cost, unit = "ms", target = Target, met = Cost < Limit},
        #row{section = Sec, what = "baseline: plain start of the same module",
             median = median(maps:get(plain, Samples)), unit = "ms"},
        #row{section = Sec, what = "image/1 of the snapshot (once per snapshot), " ++ Label,
             median = median(maps:get(image, Samples)), unit = "ms"},
        #row{section = Sec, what = "fork/1 of a live instance (image + start), " ++ Label,
             median = median(maps:get(fork, Samples)), unit = "ms"}
    ].

%% A fork of `Image' holds `Memory' (its first and last pages, and one in
%% the middle).
check_fork(Bench, Image, Memory) ->
    {ok, F, _, _} = hb_beamr:start(Bench, wasm, #{snapshot => Image}),
    Size = byte_size(Memory),
    [{ok, Page} = hb_beamr_io:read(F, At, 4096)
     || At <- [0, (Size div 2) band bnot 4095, Size - 4096],
        Page <- [binary:part(Memory, At, 4096)]],
    hb_beamr:stop(F),
    ok.

%% 100 forks of one image of `MiB' MiB, each writing 1 MiB (256 pages
%% spread over its memory): the node's RSS they add, and with the image's
%% own pages (the memfd, counted as Shmem) the memory all of it takes.
fork_rss_rows(Root, MiB) ->
    Bench = read(Root, "test/fixtures/grow.wasm"),
    Size = MiB * 1024 * 1024,
    W = start(Bench),
    {ok, [1]} = hb_beamr:call(W, "grow", [Size div 65536 - 1]),
    ok = hb_beamr_io:write(W, 0, patterned_bytes(Size)),
    Shmem0 = meminfo("Shmem"),
    {ok, Image} = hb_beamr:image(W),
    ImageBytes = meminfo("Shmem") - Shmem0,
    Leases = maps:get(instances, hb_beamr:module_stats()),
    hb_beamr:stop(W),
    % Until its memory is freed (deinstantiated before its lease drops).
    wait_for_instances(Leases - 1),
    Rss0 = settled_rss(),
    Page = binary:copy(<<16#5a>>, 4096),
    Forks = [begin
                 {ok, F, _, _} = hb_beamr:start(Bench, wasm, #{snapshot => Image}),
                 [ok = hb_beamr_io:write(F, U * (Size div 256), Page) || U <- lists:seq(0, 255)],
                 F
             end || _ <- lists:seq(1, 100)],
    Added = rss() - Rss0,
    {ok, <<16#5a>>} = hb_beamr_io:read(lists:last(Forks), Size div 256, 1),
    [hb_beamr:stop(F) || F <- Forks],
    Label = io_lib:format("100 forks of a ~w MiB image, each writing 1 MiB", [MiB]),
    Total = (Added + ImageBytes) / 1048576,
    {Target, Met} = case MiB of
                        1024 -> {"< 1,229 MiB (1.2 GiB)", Total < 1228.8};
                        _ -> {"", undefined}
                    end,
    [
        #row{section = "forks", what = io_lib:format("the image's own pages (memfd), ~w MiB", [MiB]),
             median = ImageBytes / 1048576, unit = "MiB"},
        #row{section = "forks", what = Label ++ ": node RSS added",
             median = Added / 1048576, unit = "MiB"},
        #row{section = "forks", what = Label ++ ": image + forks",
             median = Total, unit = "MiB", target = Target, met = Met}
    ].

%% The node's resident memory once it has stopped falling (the bench's
%% large binaries collected, stopped instances' memory unmapped): two
%% readings 100 ms apart within 1 MiB, for 10 s at most.
settled_rss() -> settled_rss(rss(), 100).

settled_rss(Last, 0) -> Last;
settled_rss(Last, Tries) ->
    [erlang:garbage_collect(P) || P <- processes()],
    timer:sleep(100),
    case rss() of
        Now when abs(Now - Last) < 1048576 -> Now;
        Now -> settled_rss(Now, Tries - 1)
    end.

%% The node's resident memory, in bytes (/proc/self/status).
rss() -> proc_kb("/proc/self/status", "VmRSS") * 1024.

%% A /proc/meminfo figure, in bytes.
meminfo(Key) -> proc_kb("/proc/meminfo", Key) * 1024.

proc_kb(File, Key) ->
    {ok, Text} = file:read_file(File),
    Prefix = list_to_binary(Key ++ ":"),
    [Kb] = [binary_to_integer(hd(string:lexemes(Rest, " \tkB")))
            || Line <- binary:split(Text, <<"\n">>, [global]),
               <<P:(byte_size(Prefix))/binary, Rest/binary>> <- [Line], P =:= Prefix],
    Kb.

%% Until at most `N' instances hold a module (their memory freed), for 5 s
%% at most.
wait_for_instances(N) -> wait_for_instances(N, 500).

wait_for_instances(_N, 0) -> ok;
wait_for_instances(N, Tries) ->
    case maps:get(instances, hb_beamr:module_stats()) =< N of
        true -> ok;
        false -> timer:sleep(10), wait_for_instances(N, Tries - 1)
    end.

%%% WASI stdout

%% 1 MiB to stdout from a WASI program, as 16,384 write(2) calls of 64 bytes
%% (one fd_write import each: the import round trip, then hb_beamr_io reads
%% of the iovec and the bytes and a write of the count) and through stdio
%% (fwrite of 64 bytes, one fd_write per 1 KiB buffer). Baseline: the
%% import round trip alone, on the same number of imports.
wasi_rows(Root, Rounds) ->
    Program = read(Root, "test/fixtures/wasi/wasi_test.wasm"),
    Bench = read(Root, "test/fixtures/bench.wasm"),
    Writes = 16384,
    Size = 64,
    Bytes = Writes * Size,
    Count = integer_to_binary(Writes),
    Run = fun(How) ->
        {ok, #{exit_code := 0, stdout := Out}} =
            hb_beamr_wasi:run(Program, #{args => [<<"wasi_test">>, How, Count, integer_to_binary(Size)]}),
        Bytes = byte_size(Out)
    end,
    Tick = fun(S, #{args := [X]}, _Opts) -> {ok, [X], S} end,
    Wasm = start(Bench),
    Expected = Writes * (Writes + 1) div 2,
    Samples = rounds(Rounds, fun() ->
        [
            {baseline, Writes / seconds(fun() ->
                {ok, [Expected], _} = hb_beamr:call(Wasm, "import_loop", [Writes], Tick, ok)
            end)},
            {write, Writes / seconds(fun() -> Run(<<"write">>) end)},
            {printf, Bytes / 1048576 / seconds(fun() -> Run(<<"printf">>) end)}
        ]
    end),
    WriteMBs = [W * Size / 1048576 || W <- maps:get(write, Samples)],
    hb_beamr:stop(Wasm),
    Base = median(maps:get(baseline, Samples)),
    WriteRate = median(maps:get(write, Samples)),
    [
        #row{section = "wasi", what = "baseline: WASM -> Erlang import fun -> WASM",
             median = Base, unit = "imports/s"},
        #row{section = "wasi", what = "fd_write, 64 B each (1 MiB by write(2), whole run)",
             median = WriteRate, unit = "fd_writes/s", baseline = "import", ratio = paired_ratio(Samples, write, baseline)},
        #row{section = "wasi", what = "the same in MB/s", median = WriteRate * Size / 1048576, unit = "MB/s"},
        #row{section = "wasi", what = "1 MiB by fwrite(64 B) through stdio's 1 KiB buffer, whole run",
             median = median(maps:get(printf, Samples)), unit = "MB/s", baseline = "write(2)",
             ratio = paired_ratio(Samples#{write_mbs => WriteMBs}, printf, write_mbs)}
    ].

%%% Helpers

%% Runs Measure() `Rounds' times; its `[{Key, Value}]' gathered per key.
rounds(Rounds, Measure) ->
    lists:foldl(
        fun(_, Acc) ->
            lists:foldl(fun({K, V}, A) -> maps:update_with(K, fun(L) -> [V | L] end, [V], A) end,
                        Acc, Measure())
        end,
        #{}, lists:seq(1, Rounds)).

%% The median over rounds of Key's figure over BaseKey's in the same round:
%% each pair was measured back to back, so a slow spell of the machine
%% weighs on both.
paired_ratio(Samples, Key, BaseKey) ->
    median([X / B || {X, B} <- lists:zip(maps:get(Key, Samples), maps:get(BaseKey, Samples))]).

repeat_for(Fun, Ms) ->
    Until = erlang:monotonic_time(millisecond) + Ms,
    repeat_until(Fun, Until, 0).

repeat_until(Fun, Until, N) ->
    times(200, Fun),
    case erlang:monotonic_time(millisecond) >= Until of
        true -> N + 200;
        false -> repeat_until(Fun, Until, N + 200)
    end.

times(0, _Fun) -> ok;
times(N, Fun) -> Fun(), times(N - 1, Fun).

seconds(Fun) ->
    {Us, _} = timer:tc(Fun),
    max(Us, 1) / 1000000.

median(Values) ->
    lists:nth((length(Values) + 1) div 2, lists:sort(Values)).

plural(1) -> "";
plural(_) -> "es".

start(Bytes) -> start(Bytes, wasm).

start(Bytes, Mode) ->
    {ok, W, _, _} = hb_beamr:start(Bytes, Mode),
    W.

%% Bytecode with NaNs canonicalized on its instance thread (deterministic floats).
start_deterministic(Bytes) ->
    {ok, W, _, _} = hb_beamr:start(Bytes, wasm, #{deterministic => true}),
    W.

read(Root, File) ->
    {ok, Bytes} = file:read_file(filename:join(Root, File)),
    Bytes.

root() ->
    filename:dirname(filename:dirname(filename:absname(escript:script_name()))).

env_int(Name, Default) ->
    list_to_integer(os:getenv(Name, integer_to_list(Default))).

load_baseline_nif(Root) ->
    load_erlang(Root, "erlang/hb_beamr_bench_nif.erl"),
    Lib = built(Root, "HB_BEAMR_BENCH_NIF", "libhb_beamr_bench_nif.so"),
    hb_beamr_bench_nif:load(filename:rootname(Lib, ".so")).

%% The AO module at Path, with erlang/hb_beamr_aos.erl (which drives it)
%% compiled and loaded.
load_aos(Root, Path) ->
    load_erlang(Root, "erlang/hb_beamr_aos.erl"),
    {ok, Wasm} = file:read_file(Path),
    Wasm.

%% Compiles and loads one of erlang/'s modules (not on the escript's path).
load_erlang(Root, File) ->
    Source = filename:join(Root, File),
    {ok, Module, Beam} = compile:file(Source, [binary, return_errors]),
    {module, Module} = code:load_binary(Module, Source, Beam).

%% Where cargo put File: scripts/bench.sh exports its path in EnvVar (cargo's
%% target directory may be CARGO_TARGET_DIR); target/release/ otherwise.
built(Root, EnvVar, File) ->
    os:getenv(EnvVar, filename:join([Root, "target/release", File])).

%%% Output

table(Rows) ->
    Header = ["section", "what", "median", "unit", "vs", "ratio", "target", "met"],
    Lines = [
        [S, W, fmt(M), U, B, ratio(R), T, met(Met)]
     || #row{section = S, what = W, median = M, unit = U, baseline = B, ratio = R, target = T,
             met = Met} <- Rows
    ],
    Cells = [[lists:flatten(C) || C <- L] || L <- [Header | Lines]],
    Md = fun(L) -> ["| ", lists:join(" | ", L), " |\n"] end,
    Rule = ["|", lists:join("|", [case I of 3 -> "---:"; 6 -> "---:"; _ -> "---" end
                                 || I <- lists:seq(1, length(Header))]), "|\n"],
    [Md(hd(Cells)), Rule | [Md(L) || L <- tl(Cells)]].

fmt(N) when is_integer(N) -> thousands(integer_to_list(N));
fmt(N) when N >= 1000 -> thousands(integer_to_list(round(N)));
fmt(N) when N >= 10 -> io_lib:format("~.1f", [float(N)]);
fmt(N) -> io_lib:format("~.2f", [float(N)]).

thousands([$- | Digits]) -> [$- | thousands(Digits)];
thousands(Digits) when length(Digits) =< 3 -> Digits;
thousands(Digits) ->
    {Head, Tail} = lists:split(length(Digits) - 3, Digits),
    thousands(Head) ++ "," ++ Tail.

ratio(undefined) -> "";
ratio(R) -> io_lib:format("~.2f", [float(R)]).

met(undefined) -> "";
met(true) -> "yes";
met(false) -> "NO".

results_md(Table, Rounds, Seconds) ->
    {ok, Host} = inet:gethostname(),
    [
        "# hb_beamr benchmark results\n\n",
        io_lib:format("`make bench` on ~s: ~w cores, OTP ~s, ~s; ~w rounds per figure (median), ~w s.\n",
                      [Host, erlang:system_info(logical_processors_available), erlang:system_info(otp_release),
                       string:trim(os:cmd("rustc --version")), Rounds, Seconds]),
        "Ratios compare with the baseline named in `vs`, measured in the same rounds.\n\n",
        Table
    ].
