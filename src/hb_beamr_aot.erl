%%% @private
%%% @doc What `start(_, aot)' loads: the AOT file inside a seal checked by
%%% {@link hb_beamr_seal} (or any file with `trust_aot'), or bytecode
%%% compiled through the compile cache ({@link hb_beamr_aot_cache}).
-module(hb_beamr_aot).
-export([prepare/3, prepare/4]).

%% @equiv prepare(Bin, Mode, Opts, infinity)
-spec prepare(binary(), hb_beamr:mode(), map()) ->
    {ok, binary(), map()} | {error, term()}.
prepare(Bin, Mode, Opts) ->
    prepare(Bin, Mode, Opts, infinity).

%% @doc `start/3''s hook: for `aot', the AOT file to load (the seal checked
%% unless `trust_aot'; bytecode compiled through hb_beamr_aot_cache, waited
%% for at most `Timeout' milliseconds: past it `{error, timeout}', and the
%% compilation goes on to fill the cache); the options without `trust_aot'.
%% The options are start/3's, already checked (hb_beamr_opts).
-spec prepare(binary(), hb_beamr:mode(), map(), timeout()) ->
    {ok, binary(), map()} | {error, term()}.
prepare(Bin, Mode, Opts, Timeout) ->
    Trust = maps:get(trust_aot, Opts, false) =:= true,
    Rest = maps:remove(trust_aot, Opts),
    case Mode of
        wasm ->
            {ok, Bin, Rest};
        aot ->
            case aot_file(Bin, Trust, compile_opts(Opts), Timeout) of
                {ok, Aot} -> {ok, Aot, Rest};
                {error, _} = Error -> Error
            end
    end.

%% Bytecode in `aot' mode goes through the compile cache. The sealed file
%% it gave is remembered for this very binary (by identity, see
%% hb_beamr_nif:memo_get/2, under these options and this node's seal key),
%% so that starting it again neither hashes the bytecode nor reads the
%% file; the seal is still checked (itself remembered for the file).
aot_file(<<0, "asm", _/binary>> = Wasm, _Trust, CompileOpts, Timeout) ->
    Tag = memo_tag(CompileOpts),
    case memo(fun() -> hb_beamr_nif:memo_get(Wasm, Tag) end, none) of
        {ok, Known} when is_binary(Known) ->
            hb_beamr_seal:open(Known, false);
        none ->
            case hb_beamr_aot_cache:compiled(Wasm, CompileOpts, Timeout) of
                {ok, Sealed} ->
                    case hb_beamr_seal:open(Sealed, false) of
                        {ok, _} = Opened ->
                            _ = memo(fun() -> hb_beamr_nif:memo_put(Wasm, Tag, Sealed) end, false),
                            Opened;
                        {error, _} = Error ->
                            Error
                    end;
                {error, _} = Error ->
                    Error
            end
    end;
aot_file(Bin, Trust, _CompileOpts, _Timeout) ->
    hb_beamr_seal:open(Bin, Trust).

%% What the file the cache gives depends on besides the bytecode: the
%% options, the seal key, the cache directory and its generation (forget/0
%% and clear/0 start a new one). The cache's own key also names this CPU
%% and the metering version, which a running node does not change.
memo_tag(CompileOpts) ->
    KeyHash = case hb_beamr_seal:key() of
        {ok, Key} -> crypto:hash(sha256, Key);
        {error, _} -> none
    end,
    term_to_binary({aot_cache, lists:sort(maps:to_list(CompileOpts)), KeyHash,
                    hb_beamr_opts:cache_dir(), hb_beamr_aot_cache:generation()}).

%% Without the NIF nothing is remembered.
memo(Fun, Otherwise) ->
    try Fun() catch error:_ -> Otherwise end.

%% What start/3's options ask of the compiled code (a bad value is left to
%% start/3's own check).
compile_opts(Opts) ->
    maps:merge(
        case Opts of #{deterministic := true} -> #{deterministic => true}; _ -> #{} end,
        case Opts of #{fuel := N} when is_integer(N) -> #{metered => true}; _ -> #{} end
    ).

