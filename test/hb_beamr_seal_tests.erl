%%% @doc Sealed AOT files (hb_beamr_aot): compile/1,2 seals, start(_, aot)
%%% loads only files sealed by this node unless `trust_aot'; a fuzz run
%%% flips every bit of compiled files and truncates them: every variant is
%%% refused before WAMR sees it.
-module(hb_beamr_seal_tests).
-include_lib("eunit/include/eunit.hrl").
-include_lib("kernel/include/file.hrl").

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

%% Runs `Fun(Dir, KeyPath)' with a fresh cache directory.
with_key_dir(Fun) ->
    Dir = filename:join(["/tmp", "hb_beamr_seal_" ++ integer_to_list(erlang:unique_integer([positive]))]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Previous = application:get_env(hb_beamr, cache_dir),
    try
        ok = application:set_env(hb_beamr, cache_dir, Dir),
        Fun(Dir, filename:join(Dir, "aot.key"))
    after
        case Previous of
            {ok, D} -> application:set_env(hb_beamr, cache_dir, D);
            undefined -> application:unset_env(hb_beamr, cache_dir)
        end,
        _ = file:del_dir_r(Dir)
    end.

%% A key file written by someone else, with the given mode.
planted_key(Path, Bytes, Mode) ->
    ok = file:write_file(Path, Bytes),
    ok = file:change_mode(Path, Mode).

%% A key file that group or others can read or write is refused: anyone who
%% can read it forges seals, anyone who can write it chooses the key. So is
%% one of the wrong size, and a symlink or a directory in its place. Nothing
%% is compiled or started with such a key.
insecure_key_files_are_refused_test_() ->
    Modes = [8#666, 8#644, 8#640, 8#604, 8#620, 8#602, 8#660, 8#700],
    [{lists:flatten(io_lib:format("mode ~.8B", [Mode])), fun() -> with_key_dir(fun(_Dir, Path) ->
         planted_key(Path, crypto:strong_rand_bytes(32), Mode),
         Expected = {error, {insecure_key_file, Path, {mode, Mode}}},
         case Mode band 8#077 of
             0 -> ?assertMatch({ok, <<_:32/binary>>}, hb_beamr_seal:key());
             _ -> ?assertEqual(Expected, hb_beamr_seal:key()),
                  ?assertEqual(Expected, hb_beamr:compile(fixture("test.wasm"))),
                  ?assertEqual(Expected, hb_beamr:start(fixture("test.wasm"), aot)),
                  % The file is left as it was, for its owner to look at.
                  {ok, #file_info{mode = M}} = file:read_file_info(Path),
                  ?assertEqual(Mode, M band 8#777)
         end
     end) end} || Mode <- Modes] ++
    [{"mode 0600 and 0400 are used", fun() ->
         [with_key_dir(fun(_Dir, Path) ->
              Key = crypto:strong_rand_bytes(32),
              planted_key(Path, Key, Mode),
              ?assertEqual({ok, Key}, hb_beamr_seal:key()),
              ?assertEqual({ok, [120.0]}, starts(compiled("test.wasm"), #{}))
          end) || Mode <- [8#600, 8#400]]
     end},
     {"wrong sizes", fun() ->
         [with_key_dir(fun(_Dir, Path) ->
              planted_key(Path, binary:copy(<<"k">>, Size), 8#600),
              ?assertEqual({error, {insecure_key_file, Path, {size, Size}}}, hb_beamr_seal:key())
          end) || Size <- [0, 16, 31, 33, 64]]
     end},
     {"a symlink to a good key file", fun() -> with_key_dir(fun(Dir, Path) ->
         Target = filename:join(Dir, "elsewhere.key"),
         planted_key(Target, crypto:strong_rand_bytes(32), 8#600),
         ok = file:make_symlink(Target, Path),
         ?assertEqual({error, {insecure_key_file, Path, symlink}}, hb_beamr_seal:key()),
         % A dangling one is not followed to create a key where it points.
         ok = file:delete(Target),
         ?assertEqual({error, {insecure_key_file, Path, symlink}}, hb_beamr_seal:key()),
         ?assertEqual({error, enoent}, file:read_file_info(Target))
     end) end},
     {"a directory", fun() -> with_key_dir(fun(_Dir, Path) ->
         ok = file:make_dir(Path),
         ?assertEqual({error, {insecure_key_file, Path, {type, directory}}}, hb_beamr_seal:key())
     end) end},
     {"another user's file", fun() -> with_key_dir(fun(_Dir, Path) ->
         planted_key(Path, crypto:strong_rand_bytes(32), 8#600),
         case file:change_owner(Path, 65534) of
             ok ->
                 ?assertEqual({error, {insecure_key_file, Path, {owner, 65534}}}, hb_beamr_seal:key());
             {error, eperm} ->
                 % Not root: a file of another user cannot be made here.
                 ok
         end
     end) end}].

%% Nodes creating the key at once all get the same one; the file is 0600
%% and nothing else is left in the directory.
concurrent_key_creation_test() ->
    with_key_dir(fun(Dir, Path) ->
        Test = self(),
        Pids = [spawn(fun() -> Test ! {self(), hb_beamr_seal:key()} end) || _ <- lists:seq(1, 20)],
        Keys = [receive {P, K} -> K after 10000 -> error(timeout) end || P <- Pids],
        [{ok, Key}] = lists:usort(Keys),
        ?assertEqual(32, byte_size(Key)),
        ?assertEqual({ok, Key}, file:read_file(Path)),
        {ok, #file_info{mode = Mode, type = regular}} = file:read_link_info(Path),
        ?assertEqual(8#600, Mode band 8#7777),
        ?assertEqual({ok, ["aot.key"]}, file:list_dir(Dir))
    end).

%% A seal that binds what the file is (the compile cache's): the binding
%% comes back only from an intact file sealed with this key.
bound_seals_test() ->
    Sealed1 = compiled("test.wasm"),
    {ok, Aot} = hb_beamr_seal:open(Sealed1, false),
    ?assertMatch({ok, Aot, unbound}, hb_beamr_seal:verify(Sealed1)),
    Binding = #{source => crypto:hash(sha256, fixture("test.wasm")), options => []},
    {ok, Sealed2} = hb_beamr_seal:seal(Aot, Binding),
    ?assertEqual({ok, Aot, Binding}, hb_beamr_seal:verify(Sealed2)),
    ?assertEqual({ok, Aot}, hb_beamr_seal:open(Sealed2, false)),
    ?assertEqual({ok, Aot}, hb_beamr_seal:open(Sealed2, true)),
    ?assertEqual({ok, [120.0]}, starts(Sealed2, #{})),
    % Another binding under the same MAC, or the v2 file passed off as v1.
    Size = byte_size(Sealed2) - 16,
    <<Body:Size/binary, _:16/binary>> = Sealed2,
    ?assertMatch({error, {invalid_aot, _}}, hb_beamr_seal:verify(<<Body/binary, "hb_beamr:sealed1">>)),
    {ok, Other} = hb_beamr_seal:seal(Aot, Binding#{options => [{opt_level, 0}]}),
    % (the other binding and its size, this file's MAC and marker)
    OtherBinding = binary:part(Other, 0, byte_size(Other) - 48),
    MacAndMarker = binary:part(Sealed2, byte_size(Sealed2) - 48, 48),
    Forged = <<OtherBinding/binary, MacAndMarker/binary>>,
    ?assertMatch({error, {invalid_aot, _}}, hb_beamr_seal:verify(Forged)),
    % Every bit flip and truncation of a bound file is refused too.
    Bits = byte_size(Sealed2) * 8,
    ?assertEqual([], [I || I <- lists:seq(0, Bits - 1), not refused(flip(Sealed2, I))]),
    ?assertEqual([], [L || L <- lists:seq(0, byte_size(Sealed2) - 1), not refused(binary:part(Sealed2, 0, L))]).

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
