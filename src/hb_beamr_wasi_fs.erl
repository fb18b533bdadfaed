%%% @doc The in-memory file system behind {@link hb_beamr_wasi}: plain
%%% Erlang data (a map from full guest path to `dir' or a file's bytes), and
%%% the path rules that keep every guest path inside its preopened directory.
%%%
%%% A guest path is resolved against a directory (a preopen root plus the
%%% components below it): `.' and empty components are dropped, `..' goes up
%%% one level, and a path that would go above the root, or that is absolute,
%%% is refused with `notcapable'. There are no symbolic links, so nothing
%%% else can lead outside.
-module(hb_beamr_wasi_fs).

-export([new/1, root/1, resolve/3, full/2, lookup/2, files/1, list/2]).
-export([read/4, write/4, create/2, truncate/2, mkdir/2, rmdir/2, unlink/2, rename/3]).

-export_type([fs/0, rel/0, errno/0]).

-define(MAX_FILE_SIZE, (1 bsl 30)).

-type fs() :: #{binary() => dir | binary()}.
%% Every directory and file by full guest path (`<<"/sandbox/a/b.txt">>').
-type rel() :: [binary()].
%% A path below a preopen root, one component an element, never `..'.
-type errno() :: noent | exist | notdir | isdir | notempty | inval | notcapable | fbig.
%% The WASI error names these functions return (see hb_beamr_wasi:errno/1).

%% @doc An in-memory file system holding each preopened directory
%% (`#{GuestDir => #{RelativePath => Contents | dir}}'), with the
%% directories the relative paths need (`dir' makes an empty one). Returns
%% the file system and the normalised roots, in order. A relative path that
%% leaves its directory is refused.
-spec new(#{binary() | string() => #{binary() | string() => iodata() | dir}}) ->
    {ok, fs(), [binary()]} | {error, {invalid_option, term()}}.
new(Preopens) when is_map(Preopens) ->
    try
        Roots = [{root(Dir), Files} || {Dir, Files} <- lists:sort(maps:to_list(Preopens))],
        FS = lists:foldl(fun({Root, Files}, Acc) -> add_files(Root, Files, ensure_dirs(Root, Acc)) end,
                         #{}, Roots),
        {ok, FS, [Root || {Root, _} <- Roots]}
    catch
        throw:{bad_preopen, What} -> {error, {invalid_option, {preopens, What}}}
    end;
new(Other) ->
    {error, {invalid_option, {preopens, Other}}}.

add_files(Root, Files, FS) when is_map(Files) ->
    maps:fold(
        fun(Path, Contents, Acc) ->
            case resolve(Root, [], to_bin(Path)) of
                {ok, Rel = [_ | _]} when Contents =:= dir ->
                    ensure_dirs(full(Root, Rel), Acc);
                {ok, Rel = [_ | _]} when is_binary(Contents); is_list(Contents) ->
                    Full = full(Root, Rel),
                    Parent = full(Root, lists:droplast(Rel)),
                    case maps:get(Full, Acc, undefined) of
                        dir -> throw({bad_preopen, Path});
                        _ -> (ensure_dirs(Parent, Acc))#{Full => iolist_to_binary(Contents)}
                    end;
                _ ->
                    throw({bad_preopen, Path})
            end
        end,
        FS, Files);
add_files(Root, Files, _FS) ->
    throw({bad_preopen, {Root, Files}}).

%% Creates `Full' and every directory above it.
ensure_dirs(Full, FS) ->
    case maps:get(Full, FS, undefined) of
        dir ->
            FS;
        undefined ->
            Parent = parent(Full),
            FS1 = case Parent =:= Full of
                true -> FS;
                false -> ensure_dirs(Parent, FS)
            end,
            FS1#{Full => dir};
        _File ->
            throw({bad_preopen, Full})
    end.

parent(Full) ->
    case binary:matches(Full, <<"/">>) of
        [] -> Full;
        [{0, 1}] -> <<"/">>;
        Matches ->
            {Last, 1} = lists:last(Matches),
            binary:part(Full, 0, Last)
    end.

%% @doc A preopened directory's guest name, normalised: no trailing `/'
%% (except `/' itself), no `.' or empty components, no `..'.
-spec root(binary() | string()) -> binary().
root(Dir) ->
    Bin = to_bin(Dir),
    Abs = binary:first(<<Bin/binary, $.>>) =:= $/,
    Parts = [P || P <- binary:split(Bin, <<"/">>, [global]), P =/= <<>>, P =/= <<".">>],
    case {Abs, lists:member(<<"..">>, Parts), Parts} of
        {_, true, _} -> throw({bad_preopen, Dir});
        {true, false, _} -> iolist_to_binary([<<"/">>, lists:join(<<"/">>, Parts)]);
        {false, false, []} -> <<".">>;
        {false, false, _} -> iolist_to_binary(lists:join(<<"/">>, Parts))
    end.

%% @doc Resolves a guest path relative to directory `Base' (components
%% below the preopen root `Root'). Absolute paths and paths that climb above
%% the root are `notcapable'; an empty path is `noent'.
-spec resolve(binary(), rel(), binary()) -> {ok, rel()} | {error, errno()}.
resolve(_Root, _Base, <<>>) ->
    {error, noent};
resolve(_Root, _Base, <<"/", _/binary>>) ->
    {error, notcapable};
resolve(_Root, Base, Path) ->
    case binary:match(Path, <<0>>) of
        nomatch -> walk(binary:split(Path, <<"/">>, [global]), lists:reverse(Base));
        _ -> {error, inval}
    end.

walk([], Stack) -> {ok, lists:reverse(Stack)};
walk([<<>> | Rest], Stack) -> walk(Rest, Stack);
walk([<<".">> | Rest], Stack) -> walk(Rest, Stack);
walk([<<"..">> | _], []) -> {error, notcapable};
walk([<<"..">> | Rest], [_ | Stack]) -> walk(Rest, Stack);
walk([Part | Rest], Stack) -> walk(Rest, [Part | Stack]).

%% @doc The full guest path of `Rel' under `Root'.
-spec full(binary(), rel()) -> binary().
full(Root, []) -> Root;
full(<<"/">>, Rel) -> iolist_to_binary([[<<"/">>, P] || P <- Rel]);
full(Root, Rel) -> iolist_to_binary([Root | [[<<"/">>, P] || P <- Rel]]).

%% @doc What is at a full path: `dir', a file's bytes, or `undefined'.
-spec lookup(fs(), binary()) -> dir | binary() | undefined.
lookup(FS, Full) ->
    maps:get(Full, FS, undefined).

%% @doc Every file, by full guest path.
-spec files(fs()) -> #{binary() => binary()}.
files(FS) ->
    maps:filter(fun(_, V) -> V =/= dir end, FS).

%% @doc A directory's entries, sorted by name: `{Name, dir | file}'.
-spec list(fs(), binary()) -> [{binary(), dir | file}].
list(FS, Dir) ->
    Prefix = prefix(Dir),
    N = byte_size(Prefix),
    lists:sort([
        {Name, kind(V)}
     || {K, V} <- maps:to_list(FS),
        byte_size(K) > N,
        binary:part(K, 0, N) =:= Prefix,
        Name <- [binary:part(K, N, byte_size(K) - N)],
        binary:match(Name, <<"/">>) =:= nomatch
    ]).

prefix(<<"/">>) -> <<"/">>;
prefix(Dir) -> <<Dir/binary, "/">>.

kind(dir) -> dir;
kind(_) -> file.

%% @doc Up to `Len' bytes of a file from `Pos'.
-spec read(fs(), binary(), non_neg_integer(), non_neg_integer()) -> {ok, binary()} | {error, errno()}.
read(FS, Full, Pos, Len) ->
    case lookup(FS, Full) of
        Data when is_binary(Data), Pos >= byte_size(Data) -> {ok, <<>>};
        Data when is_binary(Data) -> {ok, binary:part(Data, Pos, min(Len, byte_size(Data) - Pos))};
        dir -> {error, isdir};
        undefined -> {error, noent}
    end.

%% @doc Writes `Bytes' into a file at `Pos' (`eof' appends), zero-filling
%% any gap. A file cannot grow past 1 GiB (`fbig').
-spec write(fs(), binary(), non_neg_integer() | eof, binary()) ->
    {ok, fs(), End :: non_neg_integer()} | {error, errno()}.
write(FS, Full, Pos, Bytes) ->
    try write_file(FS, Full, Pos, Bytes) catch throw:fbig -> {error, fbig} end.

write_file(FS, Full, Pos, Bytes) ->
    case lookup(FS, Full) of
        Data when is_binary(Data) ->
            Size = byte_size(Data),
            At = case Pos of eof -> Size; _ -> Pos end,
            End = At + byte_size(Bytes),
            End =< ?MAX_FILE_SIZE orelse throw(fbig),
            New =
                if
                    At =:= Size -> <<Data/binary, Bytes/binary>>;
                    At > Size -> <<Data/binary, 0:((At - Size) * 8), Bytes/binary>>;
                    End >= Size -> <<(binary:part(Data, 0, At))/binary, Bytes/binary>>;
                    true -> <<(binary:part(Data, 0, At))/binary, Bytes/binary,
                              (binary:part(Data, End, Size - End))/binary>>
                end,
            {ok, FS#{Full := New}, End};
        dir ->
            {error, isdir};
        undefined ->
            {error, noent}
    end.

%% @doc Creates an empty file (its directory must exist).
-spec create(fs(), binary()) -> {ok, fs()} | {error, errno()}.
create(FS, Full) ->
    case {lookup(FS, Full), lookup(FS, parent(Full))} of
        {undefined, dir} -> {ok, FS#{Full => <<>>}};
        {undefined, undefined} -> {error, noent};
        {undefined, _File} -> {error, notdir};
        {_, _} -> {error, exist}
    end.

%% @doc Empties a file.
-spec truncate(fs(), binary()) -> {ok, fs()} | {error, errno()}.
truncate(FS, Full) ->
    case lookup(FS, Full) of
        Data when is_binary(Data) -> {ok, FS#{Full := <<>>}};
        dir -> {error, isdir};
        undefined -> {error, noent}
    end.

%% @doc Creates a directory (its parent must exist).
-spec mkdir(fs(), binary()) -> {ok, fs()} | {error, errno()}.
mkdir(FS, Full) ->
    case {lookup(FS, Full), lookup(FS, parent(Full))} of
        {undefined, dir} -> {ok, FS#{Full => dir}};
        {undefined, undefined} -> {error, noent};
        {undefined, _File} -> {error, notdir};
        {_, _} -> {error, exist}
    end.

%% @doc Removes an empty directory.
-spec rmdir(fs(), binary()) -> {ok, fs()} | {error, errno()}.
rmdir(FS, Full) ->
    case lookup(FS, Full) of
        dir ->
            case list(FS, Full) of
                [] -> {ok, maps:remove(Full, FS)};
                _ -> {error, notempty}
            end;
        undefined -> {error, noent};
        _File -> {error, notdir}
    end.

%% @doc Removes a file.
-spec unlink(fs(), binary()) -> {ok, fs()} | {error, errno()}.
unlink(FS, Full) ->
    case lookup(FS, Full) of
        dir -> {error, isdir};
        undefined -> {error, noent};
        _File -> {ok, maps:remove(Full, FS)}
    end.

%% @doc Renames a file or a directory (with everything under it), with
%% POSIX's rules for an existing target: a file replaces a file, a directory
%% replaces an empty directory.
-spec rename(fs(), binary(), binary()) -> {ok, fs()} | {error, errno()}.
rename(FS, From, From) ->
    case lookup(FS, From) of
        undefined -> {error, noent};
        _ -> {ok, FS}
    end;
rename(FS, From, To) ->
    Inside = binary:longest_common_prefix([prefix(From), To]) =:= byte_size(prefix(From)),
    case {lookup(FS, From), lookup(FS, To), lookup(FS, parent(To))} of
        {undefined, _, _} -> {error, noent};
        {_, _, undefined} -> {error, noent};
        {_, _, Parent} when Parent =/= dir -> {error, notdir};
        {dir, _, _} when Inside -> {error, inval};
        {dir, To1, _} when is_binary(To1) -> {error, notdir};
        {Data, dir, _} when is_binary(Data) -> {error, isdir};
        {dir, dir, _} ->
            case list(FS, To) of
                [] -> {ok, move_tree(maps:remove(To, FS), From, To)};
                _ -> {error, notempty}
            end;
        {dir, undefined, _} -> {ok, move_tree(FS, From, To)};
        {Data, _, _} -> {ok, (maps:remove(From, FS))#{To => Data}}
    end.

move_tree(FS, From, To) ->
    Prefix = prefix(From),
    N = byte_size(Prefix),
    maps:fold(
        fun(K, V, Acc) when K =:= From ->
                Acc#{To => V};
           (K, V, Acc) ->
                case K of
                    <<Prefix:N/binary, Rest/binary>> -> Acc#{<<To/binary, "/", Rest/binary>> => V};
                    _ -> Acc#{K => V}
                end
        end,
        #{}, FS).

to_bin(B) when is_binary(B) -> B;
to_bin(L) when is_list(L) -> unicode:characters_to_binary(L);
to_bin(Other) -> throw({bad_preopen, Other}).
