%%% @doc State that restores: raw memory into a fresh instance after growth
%%% (deserialize/2), and full snapshots with every mutable global, across
%%% instances and between wasm and AOT (snapshot/1, restore/2).
-module(hb_beamr_state_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, mode/0]).

-define(PAGE, 65536).

%% Starts test/fixtures/state.wasm in `Mode' (the suites' mode by default).
start_state() ->
    start_state(mode(), #{}).

start_state(Mode, Opts) ->
    Bytes =
        case Mode of
            wasm -> fixture("state.wasm");
            aot -> {ok, Aot} = hb_beamr:compile(fixture("state.wasm")), Aot
        end,
    {ok, WASM, _, _} = hb_beamr:start(Bytes, Mode, Opts),
    WASM.

other_mode() ->
    case mode() of
        wasm -> aot;
        aot -> wasm
    end.

%% A process that has grown, and set its (unexported) globals.
busy_instance(Mode) ->
    WASM = start_state(Mode, #{}),
    {ok, [1]} = hb_beamr:call(WASM, "grow", [3]),
    {ok, []} = hb_beamr:call(WASM, "store", [3 * ?PAGE + 8, 77]),
    {ok, []} = hb_beamr:call(WASM, "set_all", [1234, -5, 1.5, -2.25]),
    WASM.

a_grown_memory_deserializes_into_a_fresh_instance_test() ->
    A = busy_instance(mode()),
    {ok, Memory} = hb_beamr:serialize(A),
    ?assertEqual(4 * ?PAGE, byte_size(Memory)),
    B = start_state(),
    ?assertEqual(ok, hb_beamr:deserialize(B, Memory)),
    ?assertEqual({ok, [4]}, hb_beamr:call(B, "pages", [])),
    ?assertEqual({ok, [77]}, hb_beamr:call(B, "load", [3 * ?PAGE + 8])),
    [hb_beamr:stop(W) || W <- [A, B]].

a_snapshot_one_page_larger_restores_test() ->
    A = start_state(),
    {ok, [1]} = hb_beamr:call(A, "grow", [1]),
    {ok, Memory} = hb_beamr:serialize(A),
    B = start_state(),
    ?assertEqual(ok, hb_beamr:deserialize(B, Memory)),
    ?assertEqual({ok, [2]}, hb_beamr:call(B, "pages", [])),
    [hb_beamr:stop(W) || W <- [A, B]].

a_memory_larger_than_allowed_is_refused_test() ->
    A = busy_instance(mode()),
    {ok, Memory} = hb_beamr:serialize(A),
    % max_memory: two pages.
    B = start_state(mode(), #{max_memory => 2 * ?PAGE}),
    ?assertEqual(
        {error, {snapshot_too_large, #{size => 4 * ?PAGE, max => 2 * ?PAGE}}},
        hb_beamr:deserialize(B, Memory)
    ),
    ?assertMatch({error, {snapshot_too_large, _}}, hb_beamr:restore(B, element(2, hb_beamr:snapshot(A)))),
    % The module's own maximum: eight pages.
    C = start_state(),
    ?assertEqual(
        {error, {snapshot_too_large, #{size => 9 * ?PAGE, max => 8 * ?PAGE}}},
        hb_beamr:deserialize(C, <<0:(9 * ?PAGE - 1)/unit:8, 1>>)
    ),
    [hb_beamr:stop(W) || W <- [A, B, C]].

%% The whole state: memory and the unexported globals, into a fresh
%% instance of the same mode and of the other mode.
a_snapshot_restores_memory_and_every_global_test_() ->
    [{atom_to_list(To), fun() -> snapshot_into(To) end} || To <- [mode(), other_mode()]].

snapshot_into(To) ->
    A = busy_instance(mode()),
    {ok, Snapshot} = hb_beamr:snapshot(A),
    B = start_state(To, #{}),
    ?assertEqual({ok, [65536]}, hb_beamr:call(B, "sp", [])),
    ?assertEqual(ok, hb_beamr:restore(B, Snapshot)),
    ?assertEqual({ok, [1234]}, hb_beamr:call(B, "sp", [])),
    ?assertEqual({ok, [-5]}, hb_beamr:call(B, "wide", [])),
    ?assertEqual({ok, [1.5]}, hb_beamr:call(B, "f", [])),
    ?assertEqual({ok, [-2.25]}, hb_beamr:call(B, "d", [])),
    ?assertEqual({ok, [4]}, hb_beamr:call(B, "pages", [])),
    ?assertEqual({ok, [77]}, hb_beamr:call(B, "load", [3 * ?PAGE + 8])),
    % The restored instance's snapshot is the same state.
    ?assertEqual({ok, Snapshot}, hb_beamr:snapshot(B)),
    [hb_beamr:stop(W) || W <- [A, B]].

a_snapshot_of_another_module_is_refused_test() ->
    {ok, Other, _, _} = hb_beamr:start(fixture("test.wasm")),
    {ok, Foreign} = hb_beamr:snapshot(Other),
    B = start_state(),
    ?assertMatch({error, {snapshot_mismatch, _}}, hb_beamr:restore(B, Foreign)),
    ?assertMatch({error, {invalid_snapshot, _}}, hb_beamr:restore(B, <<"not a snapshot">>)),
    {ok, Good} = hb_beamr:snapshot(B),
    Truncated = binary:part(Good, 0, byte_size(Good) - 1),
    ?assertMatch({error, {invalid_snapshot, _}}, hb_beamr:restore(B, Truncated)),
    ?assertEqual({error, badarg}, hb_beamr:restore(B, not_a_binary)),
    % Memory cannot shrink: a grown instance does not take a smaller snapshot.
    {ok, [1]} = hb_beamr:call(B, "grow", [2]),
    ?assertMatch({error, {snapshot_mismatch, _}}, hb_beamr:restore(B, Good)),
    [hb_beamr:stop(W) || W <- [Other, B]].

a_snapshot_is_deterministic_test() ->
    A = busy_instance(mode()),
    B = busy_instance(mode()),
    ?assertEqual(hb_beamr:snapshot(A), hb_beamr:snapshot(B)),
    [hb_beamr:stop(W) || W <- [A, B]].
