%%% @doc Sealed AOT files (hb_beamr_aot): compile/1,2 seals, start(_, aot)
%%% loads only files sealed by this node unless `trust_aot'; a fuzz run
%%% flips every bit of compiled files and truncates them: every variant is
%%% refused before WAMR sees it.
-module(hb_beamr_seal_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1]).

compiled(Name) ->
    {ok, Sealed} = hb_beamr:compile(fixture(Name)),
    Sealed.

starts(Bin, Opts) ->
    case hb_beamr:start(Bin, aot, Opts) of
        {ok, W, _, _} ->
            Result = hb_beamr:call(W, "fac", [5.0]),
            hb_beamr:stop(W),
            Result;
        Error ->
            Error
    end.

sealed_files_start_test() ->
    ?assertEqual({ok, [120.0]}, starts(compiled("test.wasm"), #{})).

unsealed_files_need_trust_test_() ->
    {ok, Raw} = hb_beamr_seal:open(compiled("test.wasm"), true),
    [
        ?_assertMatch({error, {invalid_aot, <<"the file is not sealed", _/binary>>}}, starts(Raw, #{})),
        ?_assertEqual({ok, [120.0]}, starts(Raw, #{trust_aot => true})),
        ?_assertEqual({ok, [120.0]}, starts(compiled("test.wasm"), #{trust_aot => true})),
        ?_assertEqual({error, {invalid_option, {trust_aot, yes}}}, hb_beamr:start(Raw, aot, #{trust_aot => yes})),
        % Bytecode ignores the option.
        ?_assertMatch({ok, _, _, _}, hb_beamr:start(fixture("test.wasm"), wasm, #{trust_aot => true}))
    ].

another_key_does_not_open_test() ->
    Sealed = compiled("test.wasm"),
    Previous = application:get_env(hb_beamr, aot_key),
    try
        ok = application:set_env(hb_beamr, aot_key, binary:copy(<<"k">>, 32)),
        ?assertMatch({error, {invalid_aot, <<"the seal does not match", _/binary>>}}, starts(Sealed, #{})),
        Resealed = compiled("test.wasm"),
        ?assertEqual({ok, [120.0]}, starts(Resealed, #{})),
        ok = application:set_env(hb_beamr, aot_key, <<"short">>),
        ?assertMatch({error, {invalid_option, {aot_key, _}}}, hb_beamr:compile(fixture("test.wasm")))
    after
        case Previous of
            {ok, Key} -> application:set_env(hb_beamr, aot_key, Key);
            undefined -> application:unset_env(hb_beamr, aot_key)
        end
    end.

%% The key file: created once, 0600, reused.
key_file_test() ->
    Dir = filename:join(["/tmp", "hb_beamr_seal_" ++ integer_to_list(erlang:unique_integer([positive]))]),
    Previous = application:get_env(hb_beamr, cache_dir),
    try
        ok = application:set_env(hb_beamr, cache_dir, Dir),
        {ok, Key} = hb_beamr_seal:key(),
        {ok, Info} = file:read_file_info(filename:join(Dir, "aot.key")),
        ?assertEqual(8#600, element(8, Info) band 8#777),
        ?assertEqual({ok, Key}, file:read_file(filename:join(Dir, "aot.key"))),
        ?assertEqual({ok, Key}, hb_beamr_seal:key())
    after
        case Previous of
            {ok, D} -> application:set_env(hb_beamr, cache_dir, D);
            undefined -> application:unset_env(hb_beamr, cache_dir)
        end,
        _ = file:del_dir_r(Dir)
    end.

%% Every single-bit flip and every truncation of compiled files is refused.
bit_flips_and_truncations_are_refused_test_() ->
    {timeout, 300, fun() ->
        [begin
             Sealed = compiled(Name),
             Bits = byte_size(Sealed) * 8,
             Refused = length([ok || I <- lists:seq(0, Bits - 1), refused(flip(Sealed, I))]),
             ?assertEqual(Bits, Refused),
             Truncated = length([ok || L <- lists:seq(0, byte_size(Sealed) - 1),
                                       refused(binary:part(Sealed, 0, L))]),
             ?assertEqual(byte_size(Sealed), Truncated)
         end || Name <- ["test.wasm", "setjmp.wasm", "eh-tags.wasm"]],
        % The node is still here, and the files still start.
        ?assertEqual({ok, [120.0]}, starts(compiled("test.wasm"), #{}))
    end}.

flip(Bin, Bit) ->
    Byte = Bit div 8,
    <<Before:Byte/binary, B, After/binary>> = Bin,
    <<Before/binary, (B bxor (1 bsl (Bit rem 8))), After/binary>>.

refused(Bin) ->
    case hb_beamr:start(Bin, aot) of
        {error, {invalid_aot, _}} -> true;
        {ok, W, _, _} -> hb_beamr:stop(W), false;
        _ -> false
    end.
