%%% @doc Binaries known by identity (hb_beamr_nif:memo_get/2, native
%%% identity.rs): what a start works out about a module's bytes (its key's
%%% SHA-256, a good seal) is kept for the very same binary only. Equal-sized
%%% or equal binaries that are other terms are checked anew; another key
%%% checks anew; small (heap) binaries are never known; the memo is bounded.
-module(hb_beamr_identity_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1]).

sealed() ->
    {ok, Aot} = hb_beamr:compile(fixture("test.wasm")),
    Aot.

start_stop(Bin) ->
    case hb_beamr:start(Bin, aot) of
        {ok, W, _, _} ->
            {ok, [120.0]} = hb_beamr:call(W, "fac", [5.0]),
            hb_beamr:stop(W);
        Error ->
            Error
    end.

tag(Key) -> <<"seal/", (crypto:hash(sha256, Key))/binary>>.

key() ->
    {ok, Key} = hb_beamr_seal:key(),
    Key.

%% A good seal is remembered for the binary that was checked, and the next
%% start of it finds it.
a_checked_seal_is_remembered_test() ->
    Aot = sealed(),
    ?assertEqual(none, hb_beamr_nif:memo_get(Aot, tag(key()))),
    ?assertEqual(ok, start_stop(Aot)),
    ?assertMatch({ok, {ok, _, _}}, hb_beamr_nif:memo_get(Aot, tag(key()))),
    ?assertEqual(ok, start_stop(Aot)).

%% A copy with one byte changed (same size, another binary) is refused,
%% though the original was found good: identity is not equality of size.
an_altered_copy_is_checked_anew_test() ->
    Aot = sealed(),
    ?assertEqual(ok, start_stop(Aot)),
    At = byte_size(Aot) div 2,
    <<Head:At/binary, Byte, Tail/binary>> = Aot,
    Altered = <<Head/binary, (Byte bxor 1), Tail/binary>>,
    ?assertEqual(byte_size(Aot), byte_size(Altered)),
    ?assertMatch({error, {invalid_aot, _}}, start_stop(Altered)),
    % An equal copy (another binary) is checked on its own, and starts.
    Copy = binary:copy(Aot),
    ?assertEqual(none, hb_beamr_nif:memo_get(Copy, tag(key()))),
    ?assertEqual(ok, start_stop(Copy)).

%% A seal remembered under one key is not taken under another.
another_key_checks_anew_test() ->
    Aot = sealed(),
    ?assertEqual(ok, start_stop(Aot)),
    Old = application:get_env(hb_beamr, aot_key),
    application:set_env(hb_beamr, aot_key, crypto:strong_rand_bytes(32)),
    try
        ?assertMatch({error, {invalid_aot, _}}, start_stop(Aot))
    after
        case Old of
            undefined -> application:unset_env(hb_beamr, aot_key);
            {ok, V} -> application:set_env(hb_beamr, aot_key, V)
        end
    end,
    ?assertEqual(ok, start_stop(Aot)).

%% A heap binary (64 bytes or less) moves with its process's heap: never
%% known by identity.
small_binaries_are_never_known_test() ->
    Small = <<"a binary on the process heap">>,
    ?assertNot(hb_beamr_nif:memo_put(Small, <<"t">>, value)),
    ?assertEqual(none, hb_beamr_nif:memo_get(Small, <<"t">>)).

%% Values are kept per tag, and the memo is bounded in binaries.
bounded_test() ->
    Big = fun(N) -> binary:copy(<<N:32>>, 1024) end,
    First = Big(0),
    ?assert(hb_beamr_nif:memo_put(First, <<"a">>, 1)),
    ?assert(hb_beamr_nif:memo_put(First, <<"b">>, 2)),
    ?assertEqual({ok, 1}, hb_beamr_nif:memo_get(First, <<"a">>)),
    ?assertEqual({ok, 2}, hb_beamr_nif:memo_get(First, <<"b">>)),
    ?assertEqual(none, hb_beamr_nif:memo_get(First, <<"c">>)),
    Others = [Big(N) || N <- lists:seq(1, 100)],
    [?assert(hb_beamr_nif:memo_put(B, <<"a">>, N)) || {N, B} <- lists:zip(lists:seq(1, 100), Others)],
    {Count, Pinned} = hb_beamr_nif:memo_stats(),
    ?assert(Count =< 64),
    ?assert(Pinned =< 256 * 1024 * 1024),
    % The least recently used went first; the latest are kept.
    ?assertEqual(none, hb_beamr_nif:memo_get(First, <<"a">>)),
    ?assertEqual({ok, 100}, hb_beamr_nif:memo_get(lists:last(Others), <<"a">>)).

%% Bytecode started in aot mode: the compile cache's sealed file is
%% remembered for the binary, so the next start does not ask the cache;
%% under another seal key it is compiled anew (not refused).
bytecode_through_the_cache_test_() ->
    {timeout, 120, fun() ->
        Wasm = binary:copy(fixture("test.wasm")),
        ?assertEqual(ok, start_stop_bytecode(Wasm)),
        Asked = asked(),
        ?assertEqual(ok, start_stop_bytecode(Wasm)),
        ?assertEqual(Asked, asked()),
        Old = application:get_env(hb_beamr, aot_key),
        application:set_env(hb_beamr, aot_key, crypto:strong_rand_bytes(32)),
        try
            ?assertEqual(ok, start_stop_bytecode(Wasm)),
            ?assert(asked() > Asked)
        after
            case Old of
                undefined -> application:unset_env(hb_beamr, aot_key);
                {ok, V} -> application:set_env(hb_beamr, aot_key, V)
            end
        end
    end}.

start_stop_bytecode(Wasm) ->
    {ok, W, _, _} = hb_beamr:start(Wasm, aot),
    {ok, [120.0]} = hb_beamr:call(W, "fac", [5.0]),
    hb_beamr:stop(W).

%% How often the compile cache gave a file (hits and compilations).
asked() ->
    Stats = hb_beamr_aot_cache:stats(),
    maps:get(hits, Stats) + maps:get(compiles, Stats).
