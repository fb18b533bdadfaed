%%% @doc Forks (`start/3' with `snapshot', `fork/1,2', `image/1'): a fork
%%% equals start + restore of the snapshot bit for bit (a 32-bit memory and
%%% a 64-bit one that forks map copy-on-write, a 64-bit one without a
%%% maximum that they copy; in the suites' mode and across modes); forks are
%%% independent of each other and of their parent; memory grows after a
%%% fork; snapshots, deltas, restores and deserializes of a fork are right
%%% (the kernel's dirty-page record included); forks of one image share its
%%% unwritten pages; a fork of a stopped instance, of another module's
%%% snapshot or of one too large fails and leaves no instance.
-module(hb_beamr_fork_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, mode/0]).

-define(PAGE, 65536).

%% The fixtures: 32-bit memory (max 8 pages: mapped), memory64 with a
%% maximum (mapped), memory64 without one (grown with mremap: copied).
fixtures() -> ["state.wasm", "fork64.wasm", "test-64.wasm"].

bytes(Name, wasm) -> fixture(Name);
bytes(Name, aot) ->
    Key = {?MODULE, aot, Name},
    case persistent_term:get(Key, undefined) of
        undefined ->
            {ok, Aot} = hb_beamr:compile(fixture(Name)),
            persistent_term:put(Key, Aot),
            Aot;
        Aot ->
            Aot
    end.

other_mode() ->
    case mode() of
        wasm -> aot;
        aot -> wasm
    end.

start(Name) -> start(Name, mode(), #{}).

start(Name, Mode, Opts) ->
    {ok, WASM, _, _} = hb_beamr:start(bytes(Name, Mode), Mode, Opts),
    WASM.

store(W, "test-64.wasm", At, V) -> {ok, []} = hb_beamr:call(W, "store8", [At, V band 255]), ok;
store(W, _, At, V) -> {ok, []} = hb_beamr:call(W, "store", [At, V]), ok.

load(W, "test-64.wasm", At) -> {ok, [V]} = hb_beamr:call(W, "load8", [At]), V;
load(W, _, At) -> {ok, [V]} = hb_beamr:call(W, "load", [At]), V.

grow(W, N) -> {ok, [Old]} = hb_beamr:call(W, "grow", [N]), Old.

set_globals(W, "state.wasm", N) -> {ok, []} = hb_beamr:call(W, "set_all", [N, -N, 1.5, 2.5]), ok;
set_globals(W, "fork64.wasm", N) -> {ok, []} = hb_beamr:call(W, "set_g", [N]), ok;
set_globals(_, _, _) -> ok.

%% A state worth forking: grown, written from WebAssembly and from Erlang
%% (in several pages), globals set.
prepare(W, Name) ->
    1 = grow(W, 2),
    ok = store(W, Name, 100, 41),
    ok = store(W, Name, 2 * ?PAGE + 8, 77),
    ok = hb_beamr_io:write(W, ?PAGE + 4096, binary:copy(<<"fork">>, 1024)),
    ok = set_globals(W, Name, 7).

snap(W) ->
    {ok, S} = hb_beamr:snapshot(W),
    S.

live() -> hb_beamr_nif:live_instances().

%% Every fixture: a fork of a snapshot, of a chain, of an image and of the
%% live instance is the snapshot's state, as start + restore makes it, and
%% across modes too.
a_fork_equals_start_and_restore_test_() ->
    {timeout, 120, fun() -> lists:foreach(fun fork_equals_restore/1, fixtures()) end}.

fork_equals_restore(Name) ->
    A = start(Name),
    Full0 = snap(A),
    ok = prepare(A, Name),
    {ok, D1} = hb_beamr:snapshot(A, #{base => Full0}),
    Snap = snap(A),
    {ok, Image} = hb_beamr:image(Snap),
    ?assertEqual({3 * ?PAGE, maps:get(module, element(2, hb_beamr:snapshot_info(Snap)))},
                 hb_beamr_nif:image_info(Image)),
    %% What start + restore gives, of the snapshot and of the chain (whose
    %% restore knows the state's id: its snapshots carry it).
    Restored = start(Name),
    ok = hb_beamr:restore(Restored, Snap),
    Expected = snap(Restored),
    ?assertEqual(state(Snap), state(Expected)),
    RestoredChain = start(Name),
    ok = hb_beamr:restore(RestoredChain, [Full0, D1]),
    ExpectedChain = snap(RestoredChain),
    ?assertEqual(state(Snap), state(ExpectedChain)),
    lists:foreach(
        fun(Mode) ->
            Forks = [{Expected, start(Name, Mode, #{snapshot => Snap})},
                     {ExpectedChain, start(Name, Mode, #{snapshot => [Full0, D1]})},
                     {Expected, start(Name, Mode, #{snapshot => Image})}],
            [?assertEqual({Name, Mode, E}, {Name, Mode, snap(F)}) || {E, F} <- Forks],
            [hb_beamr:stop(F) || {_, F} <- Forks]
        end,
        [mode(), other_mode()]),
    {ok, F, _, _} = hb_beamr:fork(A),
    ?assertEqual(Expected, snap(F)),
    ?assertEqual(41, load(F, Name, 100)),
    [hb_beamr:stop(W) || W <- [A, F, Restored, RestoredChain]].

%% A full snapshot's state: all but its id (a snapshot carries one once a
%% delta was asked of its instance).
state(<<Head:48/binary, _Id:32/binary, Rest/binary>>) -> {Head, Rest}.

%% Writes in a fork, in another fork of the same image and in the parent are
%% seen in none of the others, from WebAssembly or from Erlang.
forks_are_independent_test() ->
    lists:foreach(
        fun(Name) ->
            A = start(Name),
            ok = prepare(A, Name),
            {ok, Image} = hb_beamr:image(A),
            F1 = start(Name, mode(), #{snapshot => Image}),
            F2 = start(Name, mode(), #{snapshot => Image}),
            ok = store(F1, Name, 100, 1),
            ok = hb_beamr_io:write(F2, 200, <<9>>),
            ok = store(A, Name, 2 * ?PAGE + 8, 3),
            ?assertEqual({1, 41, 41}, {load(F1, Name, 100), load(F2, Name, 100), load(A, Name, 100)}),
            ?assertEqual({ok, <<0>>}, hb_beamr_io:read(F1, 200, 1)),
            ?assertEqual({ok, <<9>>}, hb_beamr_io:read(F2, 200, 1)),
            ?assertEqual({ok, <<0>>}, hb_beamr_io:read(A, 200, 1)),
            ?assertEqual({77, 77, 3}, {load(F1, Name, 2 * ?PAGE + 8), load(F2, Name, 2 * ?PAGE + 8),
                                       load(A, Name, 2 * ?PAGE + 8)}),
            %% A fork made now is the image's state, not the others'.
            F3 = start(Name, mode(), #{snapshot => Image}),
            ?assertEqual({41, {ok, <<0>>}}, {load(F3, Name, 100), hb_beamr_io:read(F3, 200, 1)}),
            %% A stopped fork takes nothing of the others with it.
            hb_beamr:stop(F1),
            ?assertEqual(41, load(F2, Name, 100)),
            [hb_beamr:stop(W) || W <- [A, F2, F3]]
        end,
        fixtures()).

%% memory.grow after a fork: in place past the mapped pages (32-bit and
%% memory64 with a maximum), with mremap (memory64 without one); the old
%% bytes stay, the new pages are zero and writable, the state is what
%% start + restore + the same growth gives.
grow_after_a_fork_test() ->
    lists:foreach(
        fun(Name) ->
            A = start(Name),
            ok = prepare(A, Name),
            Snap = snap(A),
            F = start(Name, mode(), #{snapshot => Snap}),
            R = start(Name),
            ok = hb_beamr:restore(R, Snap),
            [begin
                 ?assertEqual(3, grow(W, 4)),
                 ?assertEqual(0, load(W, Name, 6 * ?PAGE + 4)),
                 ok = store(W, Name, 6 * ?PAGE + 4, 5),
                 ?assertEqual(5, load(W, Name, 6 * ?PAGE + 4)),
                 ?assertEqual(41, load(W, Name, 100))
             end || W <- [F, R]],
            ?assertEqual(snap(R), snap(F)),
            ?assertEqual({ok, 7 * ?PAGE}, hb_beamr_io:size(F)),
            %% The parent did not grow.
            ?assertEqual({ok, 3 * ?PAGE}, hb_beamr_io:size(A)),
            %% Bounds checks are unchanged: past the memory is a trap.
            ?assertMatch({error, {wasm_trap, _}}, hb_beamr:call(F, load_name(Name), [7 * ?PAGE])),
            [hb_beamr:stop(W) || W <- [A, F, R]]
        end,
        fixtures()).

load_name("test-64.wasm") -> "load8";
load_name(_) -> "load".

%% Snapshots of a fork: full, a delta against the snapshot it was forked
%% from (compared), then deltas on the last one (the kernel's record where
%% there is one: a fork's pages are written when it writes them, never
%% when it reads them); the chain restores, in both modes, what the fork
%% is. deserialize and restore into a fork work as into any instance.
snapshots_and_deltas_of_a_fork_test() ->
    lists:foreach(
        fun(Name) ->
            A = start(Name),
            ok = prepare(A, Name),
            Snap = snap(A),
            F = start(Name, mode(), #{snapshot => Snap}),
            ?assertEqual(Snap, snap(F)),
            ok = store(F, Name, 4096 * 3, 1),
            {ok, D1} = hb_beamr:snapshot(F, #{base => Snap}),
            ?assertEqual(1, info(D1, units)),
            %% Reads are no writes; two pages written.
            {ok, _} = hb_beamr_io:read(F, 0, 3 * ?PAGE),
            ok = store(F, Name, 4096 * 5, 2),
            ok = hb_beamr_io:write(F, 4096 * 40, <<1>>),
            {ok, D2} = hb_beamr:snapshot(F, #{base => D1}),
            ?assertEqual(2, info(D2, units)),
            ?assert(lists:member(info(D2, method), [kernel, hash])),
            %% The kernel tracks a fork as it tracks a restored instance.
            R = start(Name),
            ok = hb_beamr:restore(R, Snap),
            ok = store(R, Name, 4096 * 3, 1),
            {ok, RD1} = hb_beamr:snapshot(R, #{base => Snap}),
            ok = store(R, Name, 4096 * 5, 2),
            ok = hb_beamr_io:write(R, 4096 * 40, <<1>>),
            {ok, RD2} = hb_beamr:snapshot(R, #{base => RD1}),
            ?assertEqual({RD1, RD2}, {D1, D2}),
            hb_beamr:stop(R),
            3 = grow(F, 1),
            ok = store(F, Name, 3 * ?PAGE + 4, 9),
            {ok, D3} = hb_beamr:snapshot(F, #{base => D2}),
            ?assertEqual(1, info(D3, units)),
            Full = snap(F),
            [begin
                 B = start(Name, Mode, #{}),
                 ok = hb_beamr:restore(B, [Snap, D1, D2, D3]),
                 ?assertEqual(Full, snap(B)),
                 %% A fork of the chain is the same state.
                 C = start(Name, Mode, #{snapshot => [Snap, D1, D2, D3]}),
                 ?assertEqual(Full, snap(C)),
                 [hb_beamr:stop(W) || W <- [B, C]]
             end || Mode <- [mode(), other_mode()]],
            %% Restoring and deserializing into a fork.
            G = start(Name, mode(), #{snapshot => Snap}),
            ok = hb_beamr:restore(G, Full),
            ?assertEqual(state(Full), state(snap(G))),
            {ok, Memory} = hb_beamr:serialize(A),
            H = start(Name, mode(), #{snapshot => Snap}),
            ok = store(H, Name, 100, 5),
            ok = hb_beamr:deserialize(H, Memory),
            ?assertEqual(41, load(H, Name, 100)),
            [hb_beamr:stop(W) || W <- [A, F, G, H]]
        end,
        fixtures()).

info(Snap, Key) ->
    {ok, Info} = hb_beamr:snapshot_info(Snap),
    maps:get(Key, Info).

%% A fork of a stopped instance is `{error, stopped}', and starts nothing.
a_fork_of_a_stopped_instance_test() ->
    A = start("state.wasm"),
    hb_beamr:stop(A),
    Live = live(),
    ?assertEqual({error, stopped}, hb_beamr:fork(A)),
    ?assertEqual({error, stopped}, hb_beamr:image(A)),
    ?assertEqual(Live, live()).

%% Bad input: another module's snapshot, one too large for the module's
%% maximum (or max_memory), a memory that cannot shrink to the snapshot's,
%% bytes that are not a snapshot, bad option values; each fails with
%% restore's error and leaves no instance behind.
bad_forks_fail_and_leave_nothing_test() ->
    {ok, Other, _, _} = hb_beamr:start(fixture("test-64.wasm")),
    OtherSnap = snap(Other),
    A = start("state.wasm"),
    1 = grow(A, 7),
    ok = store(A, "state.wasm", 8 * ?PAGE - 4, 1),
    Big = snap(A),
    Live = live(),
    Instances = maps:get(instances, hb_beamr:module_stats()),
    Refused = [
        {snapshot_mismatch, "state.wasm", #{snapshot => OtherSnap}},
        {snapshot_mismatch, "fork64.wasm", #{snapshot => Big}},
        {snapshot_too_large, "state.wasm", #{snapshot => Big, max_memory => 4 * ?PAGE}},
        {invalid_snapshot, "state.wasm", #{snapshot => <<"junk">>}},
        {invalid_snapshot, "state.wasm", #{snapshot => [Big, <<"junk">>]}},
        {snapshot_mismatch, "state.wasm", #{snapshot => [Big, Big]}}
    ],
    lists:foreach(
        fun({Why, Name, Opts}) ->
            ?assertMatch({Why, {error, {Why, _}}},
                         {Why, hb_beamr:start(bytes(Name, mode()), mode(), Opts)}),
            {ok, Image} = case maps:get(snapshot, Opts) of
                              S when is_binary(S), Why =/= invalid_snapshot -> hb_beamr:image(S);
                              _ -> {ok, none}
                          end,
            case Image of
                none -> ok;
                _ -> ?assertMatch({error, {Why, _}},
                                  hb_beamr:start(bytes(Name, mode()), mode(), Opts#{snapshot => Image}))
            end
        end,
        Refused),
    ?assertMatch({error, {invalid_option, {snapshot, _}}},
                 hb_beamr:start(bytes("state.wasm", mode()), mode(), #{snapshot => 42})),
    ?assertMatch({error, {invalid_option, {snapshot, _}}},
                 hb_beamr:start(bytes("state.wasm", mode()), mode(), #{snapshot => []})),
    ?assertEqual({error, badarg}, hb_beamr:image(42)),
    ?assertEqual({error, badarg}, hb_beamr:fork(not_a_pid)),
    ?assertMatch({error, {invalid_snapshot, _}}, hb_beamr:image(<<"junk">>)),
    ?assertEqual(Live, live()),
    hb_beamr_test_util:wait_until(fun() ->
        maps:get(instances, hb_beamr:module_stats()) =:= Instances
    end),
    %% Zeros past the maximum are no state, as in restore: the fork grows to
    %% its maximum.
    B = start("state.wasm"),
    1 = grow(B, 3),
    Zeros = snap(B),
    C = start("state.wasm", mode(), #{snapshot => Zeros, max_memory => 2 * ?PAGE}),
    ?assertEqual({ok, 2 * ?PAGE}, hb_beamr_io:size(C)),
    [hb_beamr:stop(W) || W <- [A, B, C, Other]].

%% A module without memory forks too (its globals only); an image is no
%% option for a start on another node (it is local: give the snapshot).
a_module_without_memory_test() ->
    {ok, A, _, _} = hb_beamr:start(fixture("test.wasm")),
    Snap = snap(A),
    {ok, F, _, _} = hb_beamr:fork(A),
    ?assertEqual(Snap, snap(F)),
    ?assertEqual({ok, [120.0]}, hb_beamr:call(F, "fac", [5.0])),
    {ok, Image} = hb_beamr:image(Snap),
    ?assertEqual({error, {invalid_option, {snapshot, Image}}},
                 hb_beamr:start(fixture("test.wasm"), wasm, #{snapshot => Image, node => 'elsewhere@nowhere'})),
    [hb_beamr:stop(W) || W <- [A, F]].

%% fork/2's options go over the parent's: a start function that imports
%% is served again; a metered parent's fork is metered, with the parent's
%% counter.
fork_options_test() ->
    A = start("state.wasm", mode(), #{max_memory => 4 * ?PAGE}),
    ok = prepare(A, "state.wasm"),
    {ok, F, _, _} = hb_beamr:fork(A, #{max_memory => 3 * ?PAGE}),
    ?assertEqual(-1, grow(F, 1)),
    ?assertEqual({error, {snapshot_too_large, #{size => 3 * ?PAGE, max => 2 * ?PAGE}}},
                 hb_beamr:fork(A, #{max_memory => 2 * ?PAGE})),
    [hb_beamr:stop(W) || W <- [A, F]].

%% Forks of one image share its pages: 20 forks of a 64 MiB image, each
%% writing 4 KiB, add far less than one copy of the memory to the node's
%% resident memory (copies would add 20 x 64 MiB).
forks_share_unwritten_pages_test_() ->
    {timeout, 120, fun() ->
        Big = loadable(fixture("grow.wasm")),
        A = start_bytes(Big, #{}),
        Size = 64 * 1024 * 1024,
        {ok, [1]} = hb_beamr:call(A, "grow", [Size div ?PAGE - 1]),
        ok = hb_beamr_io:write(A, 0, binary:copy(<<"0123456789abcdef">>, Size div 16)),
        {ok, Image} = hb_beamr:image(A),
        hb_beamr:stop(A),
        erlang:garbage_collect(),
        Before = rss(),
        Forks = [start_bytes(Big, #{snapshot => Image}) || _ <- lists:seq(1, 20)],
        [ok = hb_beamr_io:write(F, I * 4096, <<I>>) || {I, F} <- lists:enumerate(Forks)],
        [?assertEqual({ok, <<"0123">>}, hb_beamr_io:read(F, Size - 16, 4)) || F <- Forks],
        Grown = rss() - Before,
        [hb_beamr:stop(F) || F <- Forks],
        % Under AddressSanitizer (scripts/asan.sh) every allocation carries
        % shadow memory: RSS says nothing there.
        case os:getenv("HB_BEAMR_ASAN") of
            false -> ?assert(Grown < 48 * 1024 * 1024);
            _ -> ok
        end
    end}.

loadable(Bytes) ->
    case mode() of
        wasm -> Bytes;
        aot -> {ok, Aot} = hb_beamr:compile(Bytes), Aot
    end.

start_bytes(Loadable, Opts) ->
    {ok, W, _, _} = hb_beamr:start(Loadable, mode(), Opts),
    W.

%% The node's resident memory, in bytes.
rss() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    [Kb] = [binary_to_integer(string:trim(hd(string:split(Rest, <<"kB">>))))
            || <<"VmRSS:", Rest/binary>> <- binary:split(Status, <<"\n">>, [global])],
    Kb * 1024.
