%%% @doc Sealed AOT files. An AOT file is native code that WAMR's loader
%%% trusts, so {@link hb_beamr:compile/2} seals what it produces and
%%% {@link hb_beamr:start/3} in `aot' mode checks the seal before WAMR sees a
%%% byte: anything unsealed or altered is `{error, {invalid_aot, Why}}'.
%%%
%%% A sealed file is the AOT file followed by an HMAC-SHA256 of the whole
%%% file under this node's key, and a 16-byte marker. The key is the
%%% application environment's `aot_key' (a binary of at least 16 bytes), else
%%% a random 32-byte key created on first use in the cache directory
%%% (application env `cache_dir', default
%%% `filename:basedir(user_cache, "hb_beamr")'), file `aot.key', mode 0600.
%%%
%%% `start(Aot, aot, #{trust_aot => true})' is the explicit way to load a
%%% file from elsewhere (unsealed, or sealed by another node).
-module(hb_beamr_seal).
-export([seal/1, open/2, key/0]).

-define(MARKER, <<"hb_beamr:sealed1">>).
-define(MAC_SIZE, 32).
-define(KEY_FILE, "aot.key").

%% @doc Seals an AOT file with this node's key.
-spec seal(binary()) -> {ok, binary()} | {error, term()}.
seal(Aot) when is_binary(Aot) ->
    case key() of
        {ok, Key} -> {ok, <<Aot/binary, (mac(Key, Aot))/binary, (?MARKER)/binary>>};
        {error, _} = Error -> Error
    end.

%% @doc The AOT file inside `Sealed', if its seal is this node's. With
%% `Trust', any file is accepted (a seal, whoever made it, is removed).
-spec open(binary(), boolean()) -> {ok, binary()} | {error, {invalid_aot, binary()}}.
open(Bin, Trust) ->
    case {split(Bin), Trust} of
        {{Aot, _Mac}, true} ->
            {ok, Aot};
        {unsealed, true} ->
            {ok, Bin};
        {unsealed, false} ->
            {error, {invalid_aot, <<"the file is not sealed by hb_beamr:compile/1,2 on this node; "
                                    "start/3 with #{trust_aot => true} loads it">>}};
        {{Aot, Mac}, false} ->
            case key() of
                {ok, Key} ->
                    case crypto:hash_equals(mac(Key, Aot), Mac) of
                        true -> {ok, Aot};
                        false -> {error, {invalid_aot, <<"the seal does not match: the file was "
                                                         "altered, or sealed with another key">>}}
                    end;
                {error, Why} ->
                    {error, {invalid_aot, iolist_to_binary(io_lib:format("no AOT key: ~p", [Why]))}}
            end
    end.

split(Bin) when byte_size(Bin) >= ?MAC_SIZE + byte_size(?MARKER) ->
    Size = byte_size(Bin) - ?MAC_SIZE - byte_size(?MARKER),
    case Bin of
        <<Aot:Size/binary, Mac:?MAC_SIZE/binary, Marker/binary>> when Marker =:= ?MARKER ->
            {Aot, Mac};
        _ ->
            unsealed
    end;
split(_) ->
    unsealed.

mac(Key, Aot) ->
    crypto:mac(hmac, sha256, Key, Aot).

%% @doc This node's sealing key: application env `aot_key', else the key
%% file in the cache directory (created on first use).
-spec key() -> {ok, binary()} | {error, term()}.
key() ->
    case application:get_env(hb_beamr, aot_key) of
        {ok, Key} when is_binary(Key), byte_size(Key) >= 16 ->
            {ok, Key};
        {ok, Bad} ->
            {error, {invalid_option, {aot_key, Bad}}};
        undefined ->
            file_key(filename:join(cache_dir(), ?KEY_FILE))
    end.

cache_dir() ->
    case application:get_env(hb_beamr, cache_dir) of
        {ok, Dir} when is_list(Dir); is_binary(Dir) -> Dir;
        _ -> filename:basedir(user_cache, "hb_beamr")
    end.

%% The key in `Path', created if missing. Kept in a persistent term per path
%% once read.
file_key(Path) ->
    case persistent_term:get({?MODULE, Path}, undefined) of
        undefined ->
            case read_or_create(Path) of
                {ok, Key} = Ok ->
                    persistent_term:put({?MODULE, Path}, Key),
                    Ok;
                Error ->
                    Error
            end;
        Key ->
            {ok, Key}
    end.

read_or_create(Path) ->
    case file:read_file(Path) of
        {ok, Key} when byte_size(Key) =:= 32 ->
            {ok, Key};
        {ok, _} ->
            {error, {bad_key_file, Path}};
        {error, enoent} ->
            create(Path);
        {error, Why} ->
            {error, {key_file, Path, Why}}
    end.

%% Writes a fresh key to a temporary file and renames it into place without
%% replacing a key another node wrote meanwhile (link fails if it exists);
%% then reads whichever key is there.
create(Path) ->
    Tmp = iolist_to_binary([Path, ".", integer_to_list(erlang:unique_integer([positive])), ".tmp"]),
    Result =
        maybe_ok([
            fun() -> filelib:ensure_dir(Path) end,
            fun() -> file:write_file(Tmp, crypto:strong_rand_bytes(32), [exclusive]) end,
            fun() -> file:change_mode(Tmp, 8#600) end,
            fun() ->
                case file:make_link(Tmp, Path) of
                    {error, eexist} -> ok;
                    Other -> Other
                end
            end
        ]),
    _ = file:delete(Tmp),
    case Result of
        ok -> read_or_create_existing(Path);
        {error, Why} -> {error, {key_file, Path, Why}}
    end.

read_or_create_existing(Path) ->
    case file:read_file(Path) of
        {ok, Key} when byte_size(Key) =:= 32 -> {ok, Key};
        {ok, _} -> {error, {bad_key_file, Path}};
        {error, Why} -> {error, {key_file, Path, Why}}
    end.

maybe_ok([]) ->
    ok;
maybe_ok([Step | Rest]) ->
    case Step() of
        ok -> maybe_ok(Rest);
        {error, _} = Error -> Error
    end.
