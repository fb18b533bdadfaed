%%% @doc Delta snapshots (snapshot/2 with a base) and chains restored
%%% (restore/2 with `[Full, Delta, ...]'): random writes, growth and globals,
%%% restored bit for bit as full snapshots taken at the same points, in the
%%% suites' mode and across modes; bad bases and chains refused with nothing
%%% applied.
-module(hb_beamr_delta_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, mode/0]).

-define(PAGE, 65536).

bytes(wasm) -> fixture("state.wasm");
bytes(aot) -> {ok, Aot} = hb_beamr:compile(fixture("state.wasm")), Aot.

start(Mode) ->
    {ok, WASM, _, _} = hb_beamr:start(bytes(Mode), Mode, #{}),
    WASM.

other_mode() ->
    case mode() of
        wasm -> aot;
        aot -> wasm
    end.

info(Snap, Key) ->
    {ok, Info} = hb_beamr:snapshot_info(Snap),
    maps:get(Key, Info).

%% Random changes: stores (from WebAssembly) and writes (from Erlang) at
%% random places, growth now and then, new globals.
step(WASM) ->
    {ok, [Pages]} = hb_beamr:call(WASM, "pages", []),
    case rand:uniform(4) =:= 1 andalso Pages < 8 of
        true -> {ok, [Pages]} = hb_beamr:call(WASM, "grow", [1]);
        false -> ok
    end,
    {ok, [Now]} = hb_beamr:call(WASM, "pages", []),
    Size = Now * ?PAGE,
    [{ok, []} = hb_beamr:call(WASM, "store", [rand:uniform(Size div 4) * 4 - 4, rand:uniform(1 bsl 30)])
     || _ <- lists:seq(1, rand:uniform(6))],
    [ok = hb_beamr_io:write(WASM, rand:uniform(Size - 5000), crypto:strong_rand_bytes(rand:uniform(4096)))
     || _ <- lists:seq(1, rand:uniform(3))],
    {ok, []} = hb_beamr:call(WASM, "set_all", [rand:uniform(1000), -rand:uniform(1000), 1.5, rand:uniform()]),
    ok.

random_chains_restore_bit_for_bit_test_() ->
    {timeout, 120, fun() ->
        rand:seed(exsss, {23, 1, 7}),
        A = start(mode()),
        {ok, Full0} = hb_beamr:snapshot(A),
        ?assertEqual(full, info(Full0, kind)),
        %% Each step: a delta on the last snapshot (a delta or, as deltas and
        %% full snapshots of a state have the same id, the full one), and
        %% the full snapshot of the same state to compare with.
        Steps = lists:foldl(
            fun(I, [{Last, _} | _] = Acc) ->
                ok = step(A),
                Method = lists:nth(1 + I rem 2, [auto, hash]),
                {ok, Delta} = hb_beamr:snapshot(A, #{base => Last, method => Method}),
                {ok, Full} = hb_beamr:snapshot(A),
                ?assertEqual(delta, info(Delta, kind)),
                ?assertEqual(info(Full, id), info(Delta, id)),
                % A full snapshot taken before any delta carries no id (it
                % would cost a hash of all of memory); used as a base, its
                % id is worked out.
                case info(Last, id) of
                    none -> ?assertEqual(Full0, Last);
                    LastId -> ?assertEqual(LastId, info(Delta, base))
                end,
                Ran = info(Delta, method),
                case {info(Last, id), Method} of
                    % An untracked base is compared with memory.
                    {none, _} -> ?assertEqual(compare, Ran);
                    {_, hash} -> ?assertEqual(hash, Ran);
                    {_, auto} -> ?assert(lists:member(Ran, [kernel, hash]))
                end,
                ?assert(byte_size(Delta) < byte_size(Full) orelse info(Full, memory_size) =< ?PAGE),
                %% Alternately base the next delta on the delta or the full.
                Next = case I rem 3 of 0 -> Full; _ -> Delta end,
                [{Next, {Delta, Full}} | Acc]
            end,
            [{Full0, none}],
            lists:seq(1, 12)),
        Pairs = [P || {_, P} <- lists:reverse(Steps), P =/= none],
        Deltas = [D || {D, _} <- Pairs],
        %% Where the kernel tracks, it does so for every delta not forced to
        %% hash, growth included (memory grows in place); elsewhere none.
        Auto = [info(D, method) || {I, D} <- lists:enumerate(Deltas), I rem 2 =:= 0],
        ?assertMatch([_], lists:usort(Auto)),
        io:format(user, "~ndelta methods (auto): ~p~n", [Auto]),
        lists:foreach(
            fun(N) ->
                {_, Full} = lists:nth(N, Pairs),
                Chain = [Full0 | lists:sublist(Deltas, N)],
                [begin
                     B = start(Mode),
                     ?assertEqual(ok, hb_beamr:restore(B, Chain)),
                     ?assertEqual({ok, Full}, hb_beamr:snapshot(B)),
                     hb_beamr:stop(B)
                 end || Mode <- [mode(), other_mode()]]
            end,
            [1, 5, 12]),
        hb_beamr:stop(A)
    end}.

a_delta_continues_from_a_restored_chain_test() ->
    A = start(mode()),
    {ok, Full0} = hb_beamr:snapshot(A),
    ok = step(A),
    {ok, D1} = hb_beamr:snapshot(A, #{base => Full0}),
    B = start(mode()),
    ok = hb_beamr:restore(B, [Full0, D1]),
    %% Nothing changed since the restore: an empty delta, from the kernel's
    %% record (or the hashes).
    {ok, D2} = hb_beamr:snapshot(B, #{base => D1}),
    ?assertEqual(0, info(D2, units)),
    {ok, []} = hb_beamr:call(B, "store", [8, 5]),
    {ok, D3} = hb_beamr:snapshot(B, #{base => D2}),
    ?assertEqual(1, info(D3, units)),
    {ok, FullB} = hb_beamr:snapshot(B),
    C = start(other_mode()),
    ok = hb_beamr:restore(C, [Full0, D1, D2, D3]),
    ?assertEqual({ok, FullB}, hb_beamr:snapshot(C)),
    [hb_beamr:stop(W) || W <- [A, B, C]].

an_older_full_base_is_compared_test() ->
    A = start(mode()),
    {ok, Full0} = hb_beamr:snapshot(A),
    ok = step(A),
    {ok, _} = hb_beamr:snapshot(A),
    ok = step(A),
    {ok, D} = hb_beamr:snapshot(A, #{base => Full0}),
    ?assertEqual(compare, info(D, method)),
    {ok, Full} = hb_beamr:snapshot(A),
    B = start(mode()),
    ok = hb_beamr:restore(B, [Full0, D]),
    ?assertEqual({ok, Full}, hb_beamr:snapshot(B)),
    [hb_beamr:stop(W) || W <- [A, B]].

bad_bases_and_chains_are_refused_and_nothing_applied_test() ->
    A = start(mode()),
    {ok, Full0} = hb_beamr:snapshot(A),
    ok = step(A),
    {ok, D1} = hb_beamr:snapshot(A, #{base => Full0}),
    ok = step(A),
    {ok, D2} = hb_beamr:snapshot(A, #{base => D1}),
    ok = step(A),
    {ok, _} = hb_beamr:snapshot(A),
    %% A delta that is not the last snapshot is no base.
    ?assertMatch({error, {snapshot_mismatch, _}}, hb_beamr:snapshot(A, #{base => D1})),
    %% Another module's snapshot is no base.
    {ok, Other, _, _} = hb_beamr:start(fixture("test.wasm")),
    {ok, OtherFull} = hb_beamr:snapshot(Other),
    ?assertMatch({error, {snapshot_mismatch, _}}, hb_beamr:snapshot(A, #{base => OtherFull})),
    ?assertMatch({error, {invalid_snapshot, _}}, hb_beamr:snapshot(A, #{base => <<"junk">>})),
    ?assertEqual({error, badarg}, hb_beamr:snapshot(A, #{base => Full0, method => soft_dirty})),
    %% A fresh instance, in a state of its own: nothing of a refused chain
    %% is applied.
    B = start(mode()),
    {ok, []} = hb_beamr:call(B, "store", [64, 9]),
    {ok, Before} = hb_beamr:snapshot(B),
    Corrupt = flip_last_byte(D2),
    Refused = [
        {snapshot_mismatch, [Full0, D2, D1]},
        {snapshot_mismatch, [Full0, D2]},
        {snapshot_mismatch, [D1, D2]},
        {snapshot_mismatch, D1},
        {snapshot_mismatch, [Full0, Full0]},
        {snapshot_mismatch, [OtherFull]},
        {invalid_snapshot, [Full0, D1, Corrupt]},
        {invalid_snapshot, [Full0, <<"junk">>]}
    ],
    lists:foreach(
        fun({Why, Chain}) ->
            ?assertMatch({error, {Why, _}}, hb_beamr:restore(B, Chain)),
            ?assertEqual({ok, Before}, hb_beamr:snapshot(B))
        end,
        Refused),
    ?assertEqual({error, badarg}, hb_beamr:restore(B, [Full0, not_a_binary])),
    ?assertEqual({error, badarg}, hb_beamr:restore(B, [])),
    ?assertEqual(ok, hb_beamr:restore(B, [Full0, D1, D2])),
    [hb_beamr:stop(W) || W <- [A, B, Other]].

flip_last_byte(Bin) ->
    Size = byte_size(Bin) - 1,
    <<Head:Size/binary, Last>> = Bin,
    <<Head/binary, (Last bxor 1)>>.

%% Before any delta, snapshot/1 and restore/2 of one snapshot cost a copy:
%% no id, nothing hashed.
untracked_snapshots_test() ->
    {ok, A, _, _} = hb_beamr:start(fixture("state.wasm")),
    {ok, S} = hb_beamr:snapshot(A),
    ?assertEqual(none, info(S, id)),
    ?assertEqual(ok, hb_beamr:restore(A, S)),
    {ok, S2} = hb_beamr:snapshot(A),
    ?assertEqual(none, info(S2, id)),
    ?assertEqual(S, S2),
    hb_beamr:stop(A).

snapshot_info_test() ->
    ?assertMatch({error, {invalid_snapshot, _}}, hb_beamr:snapshot_info(<<"nope">>)),
    ?assertEqual({error, badarg}, hb_beamr:snapshot_info(nope)).

%% A module without memory: deltas carry the globals alone.
a_module_without_memory_test() ->
    {ok, A, _, _} = hb_beamr:start(fixture("test.wasm")),
    {ok, Full} = hb_beamr:snapshot(A),
    ?assertEqual(0, info(Full, memory_size)),
    {ok, D} = hb_beamr:snapshot(A, #{base => Full}),
    ?assertEqual(0, info(D, units)),
    {ok, B, _, _} = hb_beamr:start(fixture("test.wasm")),
    ?assertEqual(ok, hb_beamr:restore(B, [Full, D])),
    % Both track the same state now: their snapshots are the same bytes.
    {ok, FullA} = hb_beamr:snapshot(A),
    ?assertNotEqual(none, info(FullA, id)),
    ?assertEqual({ok, FullA}, hb_beamr:snapshot(B)),
    [hb_beamr:stop(W) || W <- [A, B]].

%% A large host write while the kernel tracks (a write of 256 KiB or more, a
%% deserialize, a restore) lifts the write protection of its pages in one
%% call instead of taking a fault per page: what it wrote, unaligned ends
%% included, is in the next delta, and only what changed.
large_writes_are_in_the_next_delta_test() ->
    A = start(mode()),
    {ok, [1]} = hb_beamr:call(A, "grow", [7]),
    {ok, Full0} = hb_beamr:snapshot(A),
    {ok, D1} = hb_beamr:snapshot(A, #{base => Full0}),
    % 300 KiB from byte 100 of page 3: pages 3..78, none of them zero.
    Big = << <<(1 + I rem 255)>> || I <- lists:seq(1, 300 * 1024) >>,
    ok = hb_beamr_io:write(A, 3 * 4096 + 100, Big),
    {ok, D2} = hb_beamr:snapshot(A, #{base => D1}),
    ?assertEqual(76, info(D2, units)),
    ?assert(lists:member(info(D2, method), [kernel, hash])),
    % A deserialize of memory with one more page changed: that page only.
    {ok, Mem} = hb_beamr:serialize(A),
    <<Before:(100 * 4096)/binary, _:4096/binary, After/binary>> = Mem,
    ok = hb_beamr:deserialize(A, <<Before/binary, (binary:copy(<<7>>, 4096))/binary, After/binary>>),
    {ok, D3} = hb_beamr:snapshot(A, #{base => D2}),
    ?assertEqual(1, info(D3, units)),
    {ok, Full} = hb_beamr:snapshot(A),
    B = start(mode()),
    ok = hb_beamr:restore(B, [Full0, D1, D2, D3]),
    ?assertEqual({ok, Full}, hb_beamr:snapshot(B)),
    % A restore's writes are no change since the state it restores.
    ok = hb_beamr:restore(A, [Full0, D1, D2, D3]),
    {ok, D4} = hb_beamr:snapshot(A, #{base => D3}),
    ?assertEqual(0, info(D4, units)),
    [hb_beamr:stop(W) || W <- [A, B]].
