%%% @doc Sealed AOT files. An AOT file is native code that WAMR's loader
%%% trusts, so {@link hb_beamr:compile/2} seals what it produces and
%%% {@link hb_beamr:start/3} in `aot' mode checks the seal before WAMR sees a
%%% byte: anything unsealed or altered is `{error, {invalid_aot, Why}}'.
%%%
%%% A sealed file is the AOT file followed by an HMAC-SHA256 of the whole
%%% file under this node's key, and a 16-byte marker. A seal may also bind
%%% what the file is ({@link seal/2}): the compile cache binds the source
%%% module and the compile options, so a cache file sealed for another
%%% module is not taken for this one. The key is the
%%% application environment's `aot_key' (a binary of at least 16 bytes), else
%%% a random 32-byte key created on first use in the cache directory
%%% (application env `cache_dir', default
%%% `filename:basedir(user_cache, "hb_beamr")'), file `aot.key', mode 0600
%%% from its first byte. An existing key file that is not the node user's
%%% own private regular file of 32 bytes is refused (see {@link key/0}).
%%%
%%% `start(Aot, aot, #{trust_aot => true})' is the explicit way to load a
%%% file from elsewhere (unsealed, or sealed by another node).
-module(hb_beamr_seal).
-export([seal/1, seal/2, open/2, verify/1, key/0]).

-include_lib("kernel/include/file.hrl").

-define(MARKER, <<"hb_beamr:sealed1">>).
-define(MARKER2, <<"hb_beamr:sealed2">>).
-define(MAC_SIZE, 32).
-define(KEY_FILE, "aot.key").
-define(KEY_SIZE, 32).

-type binding() :: #{atom() => term()}.
%% What a sealed file says it is, under the seal: the compile cache binds
%% the source module's SHA-256, the compile options and its cache key.
-export_type([binding/0]).

%% @doc Seals an AOT file with this node's key (a seal that binds nothing
%% but the file: {@link verify/1} reports it `unbound').
-spec seal(binary()) -> {ok, binary()} | {error, term()}.
seal(Aot) when is_binary(Aot) ->
    case key() of
        {ok, Key} -> {ok, <<Aot/binary, (mac(Key, Aot))/binary, (?MARKER)/binary>>};
        {error, _} = Error -> Error
    end.

%% @doc Seals an AOT file together with `Binding' (what the file is: see
%% {@link binding()}); {@link verify/1} gives the binding back only if
%% neither the file nor the binding was altered. The sealed file is
%% `Aot, Binding, BindingSize:32, Mac:32 bytes, "hb_beamr:sealed2"', the
%% HMAC-SHA256 over the marker, the AOT file's size, the file and the
%% binding.
-spec seal(binary(), binding()) -> {ok, binary()} | {error, term()}.
seal(Aot, Binding) when is_binary(Aot), is_map(Binding) ->
    case key() of
        {ok, Key} ->
            B = term_to_binary(Binding, [deterministic]),
            {ok, <<Aot/binary, B/binary, (byte_size(B)):32, (mac2(Key, Aot, B))/binary,
                   (?MARKER2)/binary>>};
        {error, _} = Error ->
            Error
    end.

%% @doc The AOT file inside `Sealed', if its seal is this node's. With
%% `Trust', any file is accepted (a seal, whoever made it, is removed).
-spec open(binary(), boolean()) -> {ok, binary()} | {error, {invalid_aot, binary()}}.
open(Bin, true) ->
    case split(Bin) of
        {v1, Aot, _Mac} -> {ok, Aot};
        {v2, Aot, _Binding, _Mac} -> {ok, Aot};
        unsealed -> {ok, Bin}
    end;
open(Bin, false) ->
    case verify(Bin) of
        {ok, Aot, _Binding} -> {ok, Aot};
        {error, _} = Error -> Error
    end.

%% @doc The AOT file inside `Sealed' and what its seal binds (`unbound'
%% for a seal made by {@link seal/1}, or before seals had bindings), if the
%% seal is this node's.
-spec verify(binary()) -> {ok, binary(), binding() | unbound} | {error, {invalid_aot, binary()}}.
verify(Bin) ->
    case split(Bin) of
        unsealed ->
            {error, {invalid_aot, <<"the file is not sealed by hb_beamr:compile/1,2 on this node; "
                                    "start/3 with #{trust_aot => true} loads it">>}};
        Split ->
            case key() of
                {ok, Key} -> remembered(Bin, Key, fun() -> verify(Split, Key) end);
                {error, Why} ->
                    {error, {invalid_aot, iolist_to_binary(io_lib:format("no AOT key: ~p", [Why]))}}
            end
    end.

verify({v1, Aot, Mac}, Key) ->
    case crypto:hash_equals(mac(Key, Aot), Mac) of
        true -> {ok, Aot, unbound};
        false -> mismatch()
    end;
verify({v2, Aot, B, Mac}, Key) ->
    case crypto:hash_equals(mac2(Key, Aot, B), Mac) of
        true ->
            % Written by seal/2 on a node with this key: still, nothing is
            % assumed about what it decodes to.
            try binary_to_term(B, [safe]) of
                Binding when is_map(Binding) -> {ok, Aot, Binding};
                _ -> {error, {invalid_aot, <<"the seal's binding is not a map">>}}
            catch
                error:badarg -> {error, {invalid_aot, <<"the seal's binding does not decode">>}}
            end;
        false ->
            mismatch()
    end.

%% A seal found good is remembered for this very binary, by identity (see
%% hb_beamr_nif:memo_get/2): the next start of the same binary checks no
%% byte of it again. The tag names the key, so another key checks anew.
remembered(Bin, Key, Check) ->
    Tag = <<"seal/", (crypto:hash(sha256, Key))/binary>>,
    case memo(fun() -> hb_beamr_nif:memo_get(Bin, Tag) end, none) of
        {ok, {ok, _, _} = Known} ->
            Known;
        none ->
            case Check() of
                {ok, _, _} = Good ->
                    _ = memo(fun() -> hb_beamr_nif:memo_put(Bin, Tag, Good) end, false),
                    Good;
                Error ->
                    Error
            end
    end.

%% Without the NIF nothing is remembered.
memo(Fun, Otherwise) ->
    try Fun() catch error:_ -> Otherwise end.

mismatch() ->
    {error, {invalid_aot, <<"the seal does not match: the file was altered, or sealed with another key">>}}.

split(Bin) when byte_size(Bin) >= ?MAC_SIZE + byte_size(?MARKER) ->
    Size = byte_size(Bin) - ?MAC_SIZE - byte_size(?MARKER),
    case Bin of
        <<Aot:Size/binary, Mac:?MAC_SIZE/binary, Marker/binary>> when Marker =:= ?MARKER ->
            {v1, Aot, Mac};
        <<Rest:(Size - 4)/binary, BSize:32, Mac:?MAC_SIZE/binary, Marker/binary>>
          when Marker =:= ?MARKER2, Size >= 4, BSize =< Size - 4 ->
            ASize = Size - 4 - BSize,
            <<Aot:ASize/binary, B:BSize/binary>> = Rest,
            {v2, Aot, B, Mac};
        _ ->
            unsealed
    end;
split(_) ->
    unsealed.

mac(Key, Aot) ->
    crypto:mac(hmac, sha256, Key, Aot).

%% The marker first: no v2 MAC is over bytes a v1 seal could cover (an AOT
%% file starts with "\0aot"); the size makes the file/binding split unique.
mac2(Key, Aot, B) ->
    crypto:mac(hmac, sha256, Key, [?MARKER2, <<(byte_size(Aot)):64>>, Aot, B]).

%% @doc This node's sealing key: application env `aot_key', else the key
%% file `aot.key' in the cache directory (created on first use). An existing
%% key file is used only if it is a regular file (not a symlink), owned by
%% the node's user, neither readable nor writable by group or others, and
%% exactly 32 bytes; else `{error, {insecure_key_file, Path, Why}}' with
%% `Why' one of `symlink', `{type, Type}', `{owner, Uid}', `{mode, Mode}',
%% `{size, Size}' or `replaced' (the file changed while it was read). A new
%% key file is never readable by anyone else, not even while it is written.
-spec key() -> {ok, binary()} | {error, term()}.
key() ->
    case hb_beamr_opts:aot_key() of
        {ok, undefined} ->
            case hb_beamr_opts:cache_dir() of
                {ok, Dir} -> file_key(filename:join(Dir, ?KEY_FILE));
                {error, _} = Error -> Error
            end;
        {ok, Key} ->
            {ok, Key};
        {error, _} = Error ->
            Error
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
    case file:read_link_info(Path) of
        {ok, _} -> read_key(Path);
        {error, enoent} -> create(Path);
        {error, Why} -> {error, {key_file, Path, Why}}
    end.

%% The key in an existing file, if the file passes check/3: checked before
%% it is opened (without following a symlink), then again on the open file
%% (the same file, still safe).
read_key(Path) ->
    case file:read_link_info(Path) of
        {ok, Before} ->
            case check(Path, Before, node_uid(filename:dirname(Path))) of
                ok -> read_checked(Path, Before);
                {error, _} = Error -> Error
            end;
        {error, Why} ->
            {error, {key_file, Path, Why}}
    end.

read_checked(Path, Before) ->
    case file:open(Path, [read, raw, binary]) of
        {ok, Fd} ->
            try
                case file:read_file_info(Fd) of
                    {ok, Open} when Open#file_info.inode =:= Before#file_info.inode,
                                    Open#file_info.major_device =:= Before#file_info.major_device ->
                        case check(Path, Open, {ok, Before#file_info.uid}) of
                            ok -> read_exactly(Path, Fd);
                            {error, _} = Error -> Error
                        end;
                    {ok, _} ->
                        {error, {insecure_key_file, Path, replaced}};
                    {error, Why} ->
                        {error, {key_file, Path, Why}}
                end
            after
                _ = file:close(Fd)
            end;
        {error, Why} ->
            {error, {key_file, Path, Why}}
    end.

read_exactly(Path, Fd) ->
    case file:read(Fd, ?KEY_SIZE + 1) of
        {ok, Key} when byte_size(Key) =:= ?KEY_SIZE -> {ok, Key};
        {ok, Other} -> {error, {insecure_key_file, Path, {size, byte_size(Other)}}};
        eof -> {error, {insecure_key_file, Path, {size, 0}}};
        {error, Why} -> {error, {key_file, Path, Why}}
    end.

%% A key file anyone else could have read or written is not a secret.
check(Path, #file_info{type = Type, uid = Uid, mode = Mode, size = Size}, NodeUid) ->
    case NodeUid of
        {error, Why} -> {error, {key_file, Path, {owner_unknown, Why}}};
        {ok, _} when Type =:= symlink -> {error, {insecure_key_file, Path, symlink}};
        {ok, _} when Type =/= regular -> {error, {insecure_key_file, Path, {type, Type}}};
        {ok, Me} when Uid =/= Me -> {error, {insecure_key_file, Path, {owner, Uid}}};
        {ok, _} when Mode band 8#077 =/= 0 -> {error, {insecure_key_file, Path, {mode, Mode band 8#7777}}};
        {ok, _} when Size =/= ?KEY_SIZE -> {error, {insecure_key_file, Path, {size, Size}}};
        {ok, _} -> ok
    end.

%% The node's user: the owner of a file it creates (kept once known).
node_uid(Dir) ->
    case persistent_term:get({?MODULE, uid}, undefined) of
        undefined ->
            Probe = filename:join(Dir, ".aot.uid." ++ unique() ++ ".tmp"),
            case file:open(Probe, [write, exclusive, raw]) of
                {ok, Fd} ->
                    Info = file:read_file_info(Fd),
                    _ = file:close(Fd),
                    _ = file:delete(Probe),
                    case Info of
                        {ok, #file_info{uid = Uid}} -> persistent_term:put({?MODULE, uid}, Uid), {ok, Uid};
                        {error, _} = Error -> Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        Uid ->
            {ok, Uid}
    end.

%% Writes a fresh key into a private directory (mode 0700 before anything
%% is put in it, so no one else can open the file at any moment, whatever
%% the umask), then links it into place without replacing a key another
%% node wrote meanwhile (link fails if it exists); then reads whichever key
%% is there, with read_key/1's checks.
create(Path) ->
    Private = filename:join(filename:dirname(Path), ".aot.key." ++ unique() ++ ".tmp"),
    Tmp = filename:join(Private, "key"),
    Result =
        case filelib:ensure_dir(Path) of
            ok ->
                try
                    write_private(Private, Tmp, Path)
                after
                    _ = file:delete(Tmp),
                    _ = file:del_dir(Private)
                end;
            {error, _} = Error ->
                Error
        end,
    case Result of
        ok -> read_key(Path);
        {error, {insecure_key_file, _, _}} = Insecure -> Insecure;
        {error, Why} -> {error, {key_file, Path, Why}}
    end.

write_private(Private, Tmp, Path) ->
    maybe_ok([
        fun() -> file:make_dir(Private) end,
        fun() -> file:change_mode(Private, 8#700) end,
        fun() ->
            case file:read_link_info(Private) of
                {ok, #file_info{type = directory, mode = Mode}} when Mode band 8#777 =:= 8#700 -> ok;
                {ok, _} -> {error, {insecure_key_file, Path, {private_dir, Private}}};
                {error, _} = Error -> Error
            end
        end,
        fun() ->
            case file:open(Tmp, [write, exclusive, raw, binary]) of
                {ok, Fd} ->
                    try
                        maybe_ok([
                            fun() -> file:change_mode(Tmp, 8#600) end,
                            fun() ->
                                case file:read_file_info(Fd) of
                                    {ok, #file_info{uid = Uid}} ->
                                        persistent_term:put({?MODULE, uid}, Uid);
                                    {error, _} = Error ->
                                        Error
                                end
                            end,
                            fun() -> file:write(Fd, crypto:strong_rand_bytes(?KEY_SIZE)) end,
                            fun() -> file:sync(Fd) end
                        ])
                    after
                        _ = file:close(Fd)
                    end;
                {error, _} = Error ->
                    Error
            end
        end,
        fun() ->
            case file:make_link(Tmp, Path) of
                {error, eexist} -> ok;
                Other -> Other
            end
        end
    ]).

unique() ->
    integer_to_list(erlang:unique_integer([positive])) ++ "." ++ os:getpid().

maybe_ok([]) ->
    ok;
maybe_ok([Step | Rest]) ->
    case Step() of
        ok -> maybe_ok(Rest);
        {error, _} = Error -> Error
    end.
