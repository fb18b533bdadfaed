%%% @doc Instances of the same bytes share one loaded module (issue 26):
%%% siblings stay independent (memory, globals, tables, dropped data
%%% segments, traps), start, run, snapshot and stop concurrently, 100 first
%%% starts at once load once, the module goes when its last instance does
%%% (without an idle budget), and a flood past the bound is refused. Runs in
%%% both modes (HB_BEAMR_TEST_MODE=aot) on test/fixtures/ao-shape.wasm, a fixture with
%%% the AO module's shape. Every test starts its own copy of the fixture (a
%%% custom section names the test), so the registry's counters it reads are
%%% its own.
-module(hb_beamr_shared_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, mode/0, wait_until/1]).

%% The fixture with a custom section `hb_beamr_shared_tests' holding `Tag':
%% other bytes, so another module. In aot mode, compiled once.
module(Tag) ->
    Wasm = unique(fixture("ao-shape.wasm"), Tag),
    case mode() of
        wasm ->
            Wasm;
        aot ->
            {ok, Aot} = hb_beamr:compile(Wasm),
            Aot
    end.

unique(Wasm, Tag) ->
    Name = <<"hb_beamr_shared_tests">>,
    Payload = <<(byte_size(Name)), Name/binary, (term_to_binary(Tag))/binary>>,
    true = byte_size(Payload) < 128,
    <<Wasm/binary, 0, (byte_size(Payload)), Payload/binary>>.

start(Bytes) ->
    {ok, WASM, _Imports, _Exports} = hb_beamr:start(Bytes, mode()),
    WASM.

stats() ->
    hb_beamr:module_stats().

delta(Key, Before) ->
    maps:get(Key, stats()) - maps:get(Key, Before).

call(WASM, Name, Args) ->
    hb_beamr:call(WASM, Name, Args).

%% Sets application env for the length of `Fun'.
with_env(Pairs, Fun) ->
    Old = [{K, application:get_env(hb_beamr, K)} || {K, _} <- Pairs],
    [application:set_env(hb_beamr, K, V) || {K, V} <- Pairs],
    try
        Fun()
    after
        [
            case V of
                undefined -> application:unset_env(hb_beamr, K);
                {ok, Value} -> application:set_env(hb_beamr, K, Value)
            end
         || {K, V} <- Old
        ]
    end.

siblings_share_one_loaded_module_test() ->
    Bytes = module(share),
    Before = stats(),
    Siblings = [start(Bytes) || _ <- lists:seq(1, 5)],
    ?assertEqual(1, delta(loads, Before)),
    ?assertEqual(4, delta(hits, Before)),
    ?assert(delta(instances, Before) >= 5),
    [?assertEqual({ok, [100]}, call(W, "get_counter", [])) || W <- Siblings],
    [ok = hb_beamr:stop(W) || W <- Siblings].

siblings_are_independent_test() ->
    Bytes = module(independent),
    [A, B, C] = [start(Bytes) || _ <- lists:seq(1, 3)],
    % Memory: A's store is A's; the start function ran in each.
    ?assertEqual({ok, []}, call(A, "store", [4096, 12345])),
    ?assertEqual({ok, [12345]}, call(A, "load", [4096])),
    ?assertEqual({ok, [0]}, call(B, "load", [4096])),
    ?assertEqual({ok, [7]}, call(B, "load", [8])),
    ?assertEqual(ok, hb_beamr_io:write(B, 16, <<"only B">>)),
    ?assertEqual({ok, <<0:48>>}, hb_beamr_io:read(A, 16, 6)),
    % The data segment is each one's.
    ?assertEqual({ok, []}, call(A, "store", [65536, 0])),
    ?assertEqual({ok, [$a]}, call(B, "data_at", [65536])),
    % Globals.
    ?assertEqual({ok, [105]}, call(A, "add_counter", [5])),
    ?assertEqual({ok, [100]}, call(B, "get_counter", [])),
    % Tables.
    ?assertEqual({ok, []}, call(A, "swap", [])),
    ?assertEqual({ok, [2]}, call(A, "slot", [0])),
    ?assertEqual({ok, [1]}, call(B, "slot", [0])),
    % Dropped data segments (WAMR keeps them per instance).
    ?assertMatch({ok, [_]}, call(A, "init_passive", [])),
    ?assertMatch({error, {wasm_trap, _}}, call(A, "init_passive", [])),
    ?assertEqual({ok, [16#2165766973736170]}, call(B, "init_passive", [])),
    % Growing memory.
    ?assertEqual({ok, [192]}, call(A, "grow", [2])),
    ?assertEqual({ok, [192]}, call(B, "grow", [0])),
    ?assertEqual({ok, [194]}, call(A, "grow", [0])),
    % A trap in one leaves the others (and itself) going.
    ?assertMatch({error, {wasm_trap, _}}, call(C, "trap", [])),
    ?assertEqual({ok, [100]}, call(C, "get_counter", [])),
    ?assertEqual({ok, [105]}, call(A, "get_counter", [])),
    % Exception handling: each one's longjmp, each one's memory.
    ?assertEqual({ok, [42]}, call(B, "protected", [3, 42])),
    ?assertEqual({ok, [0]}, call(C, "protected", [2, 9])),
    ?assertEqual({ok, [9]}, call(C, "load", [2056])),
    ?assertEqual({ok, [0]}, call(B, "load", [2056])),
    [ok = hb_beamr:stop(W) || W <- [A, B, C]].

snapshots_restore_across_siblings_test() ->
    Bytes = module(snapshots),
    [A, B] = [start(Bytes) || _ <- lists:seq(1, 2)],
    {ok, _} = call(A, "add_counter", [11]),
    {ok, []} = call(A, "store", [4096, 99]),
    {ok, Snapshot} = hb_beamr:snapshot(A),
    ?assertEqual(ok, hb_beamr:restore(B, Snapshot)),
    ?assertEqual({ok, [111]}, call(B, "get_counter", [])),
    ?assertEqual({ok, [99]}, call(B, "load", [4096])),
    {ok, Memory} = hb_beamr:serialize(A),
    C = start(Bytes),
    ?assertEqual(ok, hb_beamr:deserialize(C, Memory)),
    ?assertEqual({ok, [99]}, call(C, "load", [4096])),
    ?assertEqual({ok, [100]}, call(C, "get_counter", [])),
    [ok = hb_beamr:stop(W) || W <- [A, B, C]].

%% 100 processes start the same new module at once: it is loaded once.
concurrent_first_starts_load_once_test_() ->
    {timeout, 120, fun() ->
        Bytes = module(first_starts),
        Before = stats(),
        Self = self(),
        Pids = [
            spawn(fun() ->
                receive go -> ok end,
                Result = hb_beamr:start(Bytes, mode()),
                Self ! {self(), Result},
                receive stop -> ok end
            end)
         || _ <- lists:seq(1, 100)
        ],
        [P ! go || P <- Pids],
        Results = [receive {P, R} -> R after 60000 -> timeout end || P <- Pids],
        Instances = [W || {ok, W, _, _} <- Results],
        ?assertEqual(100, length(Instances)),
        ?assertEqual(1, delta(loads, Before)),
        ?assertEqual(99, delta(hits, Before)),
        [?assertEqual({ok, [100]}, call(W, "get_counter", [])) || W <- Instances],
        [ok = hb_beamr:stop(W) || W <- Instances],
        [P ! stop || P <- Pids]
    end}.

%% Siblings start, call, snapshot and stop from many processes while others
%% are stopped under them; one instance keeps the module loaded throughout.
stop_one_while_others_start_and_run_test_() ->
    {timeout, 120, fun() ->
        Bytes = module(churn),
        Keeper = start(Bytes),
        Before = stats(),
        Self = self(),
        Workers = [
            spawn_link(fun() ->
                [
                    begin
                        W = start(Bytes),
                        {ok, [N1]} = call(W, "add_counter", [N]),
                        N1 = 100 + N,
                        {ok, []} = call(W, "store", [4096, N]),
                        {ok, Snap} = hb_beamr:snapshot(W),
                        ok = hb_beamr:restore(W, Snap),
                        {ok, [N]} = call(W, "load", [4096]),
                        ok = hb_beamr:stop(W)
                    end
                 || N <- lists:seq(1, 10)
                ],
                Self ! {done, self()}
            end)
         || _ <- lists:seq(1, 10)
        ],
        % Stopped while they run: others' instances mid-call.
        Victims = [start(Bytes) || _ <- lists:seq(1, 10)],
        [
            spawn(fun() -> call(V, "add_counter", [1]) end)
         || V <- Victims
        ],
        [ok = hb_beamr:stop(V) || V <- Victims],
        [receive {done, W} -> ok after 60000 -> error(timeout) end || W <- Workers],
        ?assertEqual(0, delta(loads, Before)),
        ?assertEqual({ok, [100]}, call(Keeper, "get_counter", [])),
        ok = hb_beamr:stop(Keeper)
    end}.

%% Without an idle budget, the module goes with its last instance, and the
%% next start loads it again.
freed_with_its_last_instance_test() ->
    with_env([{module_cache_idle_bytes, 0}], fun() ->
        Bytes = module(freed),
        Before = stats(),
        A = start(Bytes),
        B = start(Bytes),
        ok = hb_beamr:stop(A),
        ?assertEqual({ok, [100]}, call(B, "get_counter", [])),
        ok = hb_beamr:stop(B),
        ?assert(wait_until(fun() -> delta(instances, Before) =< 0 end)),
        ?assertEqual(0, maps:get(idle_modules, stats())),
        C = start(Bytes),
        ?assertEqual(2, delta(loads, Before)),
        ok = hb_beamr:stop(C)
    end).

%% An extra live sibling costs what it writes, not its memory's size: the
%% fixture has the AO module's 12 MiB memory, and its start writes the data
%% segment (128 KiB) and a few words. Linear memory is never backed by huge
%% pages (hb_wamr_build's patch.rs), which made each sibling cost 2 MiB.
extra_sibling_costs_what_it_writes_test_() ->
    {timeout, 60, fun() ->
        Bytes = module(rss),
        Stats = stats(),
        First = start(Bytes),
        Warm = [start(Bytes) || _ <- lists:seq(1, 5)],
        Count = 40,
        Before = rss(),
        Extra = [start(Bytes) || _ <- lists:seq(1, Count)],
        PerInstance = (rss() - Before) div Count,
        [?assertEqual({ok, [100]}, call(W, "get_counter", [])) || W <- Extra],
        [ok = hb_beamr:stop(W) || W <- [First | Warm ++ Extra]],
        % Gone before the next test counts instances (stops finish on
        % the instances' threads).
        ?assert(hb_beamr_test_util:wait_for(fun() -> delta(instances, Stats) =< 0 end, 30000)),
        % Under AddressSanitizer (scripts/asan.sh) every allocation carries
        % shadow memory: RSS says nothing there.
        case os:getenv("HB_BEAMR_ASAN") of
            false -> ?assertMatch(N when N < 512 * 1024, PerInstance);
            _ -> ok
        end
    end}.

%% The node's resident memory in bytes.
rss() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s+(\\d+)", [{capture, all_but_first, binary}]),
    binary_to_integer(Kb) * 1024.

%% With an idle budget, a stopped module stays loaded for the next start.
idle_module_is_kept_test() ->
    Bytes = module(idle),
    Before = stats(),
    ok = hb_beamr:stop(start(Bytes)),
    ?assert(wait_until(fun() -> delta(instances, Before) =< 0 end)),
    ok = hb_beamr:stop(start(Bytes)),
    ?assertEqual(1, delta(loads, Before)),
    ?assert(wait_until(fun() -> delta(instances, Before) =< 0 end)),
    ?assert(hb_beamr:purge_modules() >= 1).

%% Loaded modules are bounded: past the bound a start is refused with a
%% clear error, and works again once the live ones stop.
a_flood_past_the_bound_is_refused_test() ->
    % Other suites' instances may still be live: the bound is set above
    % what is loaded now.
    hb_beamr:purge_modules(),
    Before = stats(),
    Loaded = maps:get(bytes, Before),
    First = module(flood_1),
    Bound = Loaded + byte_size(First) + byte_size(First) div 2,
    with_env([{module_cache_max_bytes, Bound}], fun() ->
        A = start(First),
        Second = module(flood_2),
        ?assertMatch(
            {error, {module_limit, #{loaded := _, size := _, max := Bound}}},
            hb_beamr:start(Second, mode())
        ),
        % Siblings of a loaded module still start.
        B = start(First),
        ok = hb_beamr:stop(A),
        ok = hb_beamr:stop(B),
        ?assert(wait_until(fun() -> delta(instances, Before) =< 0 end)),
        % The idle one is evicted to make room.
        C = start(Second),
        ok = hb_beamr:stop(C)
    end).

%% The mode and the rewrite flags are part of the key: deterministic floats
%% load their own (rewritten) module.
flags_are_part_of_the_key_test() ->
    case mode() of
        aot ->
            ok;
        wasm ->
            Bytes = module(flags),
            Before = stats(),
            {ok, A, _, _} = hb_beamr:start(Bytes, wasm),
            {ok, B, _, _} = hb_beamr:start(Bytes, wasm, #{deterministic => true}),
            {ok, C, _, _} = hb_beamr:start(Bytes, wasm, #{deterministic => true}),
            ?assertEqual(2, delta(loads, Before)),
            % Snapshots still restore across them (same fingerprint).
            {ok, Snap} = hb_beamr:snapshot(A),
            ?assertEqual(ok, hb_beamr:restore(B, Snap)),
            [ok = hb_beamr:stop(W) || W <- [A, B, C]]
    end.
