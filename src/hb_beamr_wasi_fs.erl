%%% @private
%%% @doc The in-memory file system behind {@link hb_beamr_wasi}: plain
%%% Erlang data (every directory and file by full guest path), and the path
%%% rules that keep every guest path inside its preopened directory.
%%%
%%% A guest path is resolved against a directory (a preopen root plus the
%%% components below it): `.' and empty components are dropped, `..' goes up
%%% one level, and a path that would go above the root, or that is absolute,
%%% is refused with `notcapable'. There are no symbolic links, so nothing
%%% else can lead outside.
%%%
%%% The guest cannot make the host hold more than its budget: a file is
%%% kept in 64 KiB blocks, holes (never written, or past a block's bytes)
%%% are not stored and read as zeros, and a file cannot grow past 1 GiB
%%% (`fbig'). The whole file system has a byte budget (`nospc' past it) on
%%% top of what it started with: file sizes count with their holes (files/1
%%% and lookup/2 hand a file back whole), and each file and directory costs
%%% its path plus 64 bytes.
-module(hb_beamr_wasi_fs).

-export([new/1, new/2, root/1, resolve/3, full/2, lookup/2, stat/2, files/1, list/2, usage/1]).
-export([read/4, write/4, room/4, set_size/3, create/2, truncate/2, mkdir/2, rmdir/2, unlink/2, rename/3]).

-export_type([fs/0, rel/0, errno/0, budget/0]).

-define(MAX_FILE_SIZE, (1 bsl 30)).
-define(BLOCK, 65536).
%% What a file or directory costs the budget besides its bytes: its path
%% and about what its map entry takes.
-define(ENTRY_COST(Full), (byte_size(Full) + 64)).

-type fs() :: #{entries := #{binary() => entry()}, used := non_neg_integer(), limit := budget()}.
%% Every directory and file by full guest path (`<<"/sandbox/a/b.txt">>'),
%% the bytes charged to the budget, and the most they may reach.
-type entry() :: dir | {file, Size :: non_neg_integer(), Blocks :: #{non_neg_integer() => binary()}}.
%% A file's block `I' holds bytes from `I * 64 KiB'; a missing block, and
%% whatever lies between a block's bytes and the next block, is zeros.
-type budget() :: non_neg_integer() | infinity.
-type rel() :: [binary()].
%% A path below a preopen root, one component an element, never `..'.
-type errno() :: noent | exist | notdir | isdir | notempty | inval | notcapable | fbig | nospc.
%% The WASI error names these functions return (see hb_beamr_wasi:errno/1).

%% @doc {@link new/2} with the default budget of {@link hb_beamr_wasi}.
-spec new(#{binary() | string() => #{binary() | string() => iodata() | dir}}) ->
    {ok, fs(), [binary()]} | {error, {invalid_option, term()}}.
new(Preopens) ->
    new(Preopens, maps:get(fs_budget, hb_beamr_wasi:default_limits())).

%% @doc An in-memory file system holding each preopened directory
%% (`#{GuestDir => #{RelativePath => Contents | dir}}'), with the
%% directories the relative paths need (`dir' makes an empty one). Returns
%% the file system and the normalised roots, in order. A relative path that
%% leaves its directory is refused. The guest may add `Budget' bytes to
%% what the preopens hold (see the module's doc for what counts).
-spec new(#{binary() | string() => #{binary() | string() => iodata() | dir}}, budget()) ->
    {ok, fs(), [binary()]} | {error, {invalid_option, term()}}.
new(Preopens, Budget) when is_map(Preopens) ->
    try
        Roots = [{root(Dir), Files} || {Dir, Files} <- lists:sort(maps:to_list(Preopens))],
        Entries = lists:foldl(fun({Root, Files}, Acc) -> add_files(Root, Files, ensure_dirs(Root, Acc)) end,
                              #{}, Roots),
        Used = maps:fold(fun(Full, E, Acc) -> Acc + cost(Full, E) end, 0, Entries),
        Limit = case Budget of infinity -> infinity; _ -> Used + Budget end,
        {ok, #{entries => Entries, used => Used, limit => Limit}, [Root || {Root, _} <- Roots]}
    catch
        throw:{bad_preopen, What} -> {error, {invalid_option, {preopens, What}}}
    end;
new(Other, _Budget) ->
    {error, {invalid_option, {preopens, Other}}}.

add_files(Root, Files, Entries) when is_map(Files) ->
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
                        _ -> (ensure_dirs(Parent, Acc))#{Full => from_binary(iolist_to_binary(Contents))}
                    end;
                _ ->
                    throw({bad_preopen, Path})
            end
        end,
        Entries, Files);
add_files(Root, Files, _Entries) ->
    throw({bad_preopen, {Root, Files}}).

%% Creates `Full' and every directory above it.
ensure_dirs(Full, Entries) ->
    case maps:get(Full, Entries, undefined) of
        dir ->
            Entries;
        undefined ->
            Parent = parent(Full),
            Entries1 = case Parent =:= Full of
                true -> Entries;
                false -> ensure_dirs(Parent, Entries)
            end,
            Entries1#{Full => dir};
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

%% @doc What is at a full path: `dir', a file's bytes (all of them, holes
%% as zeros: for small files and tests; the WASI calls use stat/2 and
%% read/4), or `undefined'.
-spec lookup(fs(), binary()) -> dir | binary() | undefined.
lookup(#{entries := Entries}, Full) ->
    case maps:get(Full, Entries, undefined) of
        {file, _, _} = File -> to_binary(File);
        Other -> Other
    end.

%% @doc What is at a full path: `dir', `{file, Size}' or `undefined'.
-spec stat(fs(), binary()) -> dir | {file, non_neg_integer()} | undefined.
stat(#{entries := Entries}, Full) ->
    case maps:get(Full, Entries, undefined) of
        {file, Size, _} -> {file, Size};
        Other -> Other
    end.

%% @doc Every file, by full guest path.
-spec files(fs()) -> #{binary() => binary()}.
files(#{entries := Entries}) ->
    maps:fold(fun(Full, {file, _, _} = F, Acc) -> Acc#{Full => to_binary(F)};
                 (_, dir, Acc) -> Acc
              end, #{}, Entries).

%% @doc The bytes charged to the budget and the most they may reach.
-spec usage(fs()) -> {non_neg_integer(), budget()}.
usage(#{used := Used, limit := Limit}) ->
    {Used, Limit}.

%% @doc A directory's entries, sorted by name: `{Name, dir | file}'.
-spec list(fs(), binary()) -> [{binary(), dir | file}].
list(#{entries := Entries}, Dir) ->
    Prefix = prefix(Dir),
    N = byte_size(Prefix),
    lists:sort([
        {Name, kind(V)}
     || {K, V} <- maps:to_list(Entries),
        byte_size(K) > N,
        binary:part(K, 0, N) =:= Prefix,
        Name <- [binary:part(K, N, byte_size(K) - N)],
        binary:match(Name, <<"/">>) =:= nomatch
    ]).

prefix(<<"/">>) -> <<"/">>;
prefix(Dir) -> <<Dir/binary, "/">>.

kind(dir) -> dir;
kind(_) -> file.

%% @doc Up to `Len' bytes of a file from `Pos' (holes read as zeros). The
%% result is at most `Len' bytes: callers bound it.
-spec read(fs(), binary(), non_neg_integer(), non_neg_integer()) -> {ok, binary()} | {error, errno()}.
read(#{entries := Entries}, Full, Pos, Len) ->
    case maps:get(Full, Entries, undefined) of
        {file, Size, _} when Pos >= Size -> {ok, <<>>};
        {file, Size, Blocks} -> {ok, iolist_to_binary(read_blocks(Blocks, Pos, min(Len, Size - Pos)))};
        dir -> {error, isdir};
        undefined -> {error, noent}
    end.

read_blocks(_Blocks, _Pos, 0) ->
    [];
read_blocks(Blocks, Pos, Len) ->
    Off = Pos rem ?BLOCK,
    N = min(Len, ?BLOCK - Off),
    Block = maps:get(Pos div ?BLOCK, Blocks, <<>>),
    Have = max(0, min(N, byte_size(Block) - Off)),
    [binary:part(Block, min(Off, byte_size(Block)), Have), zeros(N - Have) | read_blocks(Blocks, Pos + N, Len - N)].

zeros(N) -> <<0:(N * 8)>>.

%% @doc How many of `Want' bytes may be written into a file at `Pos': at
%% least one when `Want' is not 0, or `fbig' (1 GiB per file) or `nospc'
%% (the budget). A write from past 1 GiB is `fbig' even of nothing.
-spec room(fs(), binary(), non_neg_integer(), non_neg_integer()) ->
    {ok, non_neg_integer()} | {error, errno()}.
room(#{entries := Entries, used := Used, limit := Limit}, Full, Pos, Want) ->
    case maps:get(Full, Entries, undefined) of
        {file, Size, _} ->
            FileRoom = ?MAX_FILE_SIZE - Pos,
            % Overwriting costs nothing: only growth past the end counts.
            BudgetRoom = case Limit of infinity -> FileRoom; _ -> Limit - Used + Size - Pos end,
            if
                FileRoom < 0; Want > 0, FileRoom =:= 0 -> {error, fbig};
                Want > 0, BudgetRoom =< 0 -> {error, nospc};
                true -> {ok, min(Want, min(FileRoom, BudgetRoom))}
            end;
        dir -> {error, isdir};
        undefined -> {error, noent}
    end.

%% @doc Writes `Bytes' into a file at `Pos' (`eof' appends); a gap before
%% `Pos' is a hole (zeros, not stored). All or nothing: `fbig' past 1 GiB,
%% `nospc' past the budget.
-spec write(fs(), binary(), non_neg_integer() | eof, binary()) ->
    {ok, fs(), End :: non_neg_integer()} | {error, errno()}.
write(FS = #{entries := Entries}, Full, Pos, Bytes) ->
    case maps:get(Full, Entries, undefined) of
        {file, Size, Blocks} ->
            At = case Pos of eof -> Size; _ -> Pos end,
            End = At + byte_size(Bytes),
            case End =< ?MAX_FILE_SIZE of
                false ->
                    {error, fbig};
                true ->
                    NewSize = max(Size, End),
                    case charge(FS, NewSize - Size) of
                        {ok, FS1} ->
                            File = {file, NewSize, write_blocks(Blocks, At, Bytes)},
                            {ok, FS1#{entries := Entries#{Full := File}}, End};
                        {error, _} = Error ->
                            Error
                    end
            end;
        dir -> {error, isdir};
        undefined -> {error, noent}
    end.

write_blocks(Blocks, _Pos, <<>>) ->
    Blocks;
write_blocks(Blocks, Pos, Bytes) ->
    I = Pos div ?BLOCK,
    Off = Pos rem ?BLOCK,
    N = min(byte_size(Bytes), ?BLOCK - Off),
    <<Piece:N/binary, Rest/binary>> = Bytes,
    write_blocks(Blocks#{I => splice(maps:get(I, Blocks, <<>>), Off, Piece)}, Pos + N, Rest).

%% Appending extends the block in place (the runtime's binary append);
%% anything else builds it anew, at most one block.
splice(Old, Off, Piece) when Off =:= byte_size(Old) ->
    <<Old/binary, Piece/binary>>;
splice(Old, Off, Piece) when Off > byte_size(Old) ->
    iolist_to_binary([Old, zeros(Off - byte_size(Old)), Piece]);
splice(Old, Off, Piece) ->
    End = Off + byte_size(Piece),
    Tail = case End < byte_size(Old) of
        true -> binary:part(Old, End, byte_size(Old) - End);
        false -> <<>>
    end,
    iolist_to_binary([binary:part(Old, 0, Off), Piece, Tail]).

%% @doc Sets a file's size (POSIX's ftruncate): shrinking drops the bytes
%% past it, growing adds a hole. `fbig' past 1 GiB, `nospc' past the budget.
-spec set_size(fs(), binary(), non_neg_integer()) -> {ok, fs()} | {error, errno()}.
set_size(FS = #{entries := Entries}, Full, NewSize) ->
    case maps:get(Full, Entries, undefined) of
        {file, _, _} when NewSize > ?MAX_FILE_SIZE ->
            {error, fbig};
        {file, Size, Blocks} ->
            case charge(FS, NewSize - Size) of
                {ok, FS1} -> {ok, FS1#{entries := Entries#{Full := {file, NewSize, cut(Blocks, NewSize)}}}};
                {error, _} = Error -> Error
            end;
        dir -> {error, isdir};
        undefined -> {error, noent}
    end.

%% Drops what lies at or past `Size', so that growing again reads zeros.
cut(Blocks, Size) ->
    Last = Size div ?BLOCK,
    Keep = Size rem ?BLOCK,
    maps:fold(
        fun(I, _, Acc) when I > Last -> Acc;
           (I, B, Acc) when I =:= Last, byte_size(B) > Keep ->
                case Keep of
                    0 -> Acc;
                    _ -> Acc#{I => binary:copy(binary:part(B, 0, Keep))}
                end;
           (I, B, Acc) -> Acc#{I => B}
        end, #{}, Blocks).

%% @doc Creates an empty file (its directory must exist).
-spec create(fs(), binary()) -> {ok, fs()} | {error, errno()}.
create(FS, Full) ->
    add_entry(FS, Full, {file, 0, #{}}).

%% @doc Empties a file.
-spec truncate(fs(), binary()) -> {ok, fs()} | {error, errno()}.
truncate(FS, Full) ->
    set_size(FS, Full, 0).

%% @doc Creates a directory (its parent must exist).
-spec mkdir(fs(), binary()) -> {ok, fs()} | {error, errno()}.
mkdir(FS, Full) ->
    add_entry(FS, Full, dir).

add_entry(FS = #{entries := Entries}, Full, Entry) ->
    case {maps:get(Full, Entries, undefined), maps:get(parent(Full), Entries, undefined)} of
        {undefined, dir} ->
            case charge(FS, cost(Full, Entry)) of
                {ok, FS1} -> {ok, FS1#{entries := Entries#{Full => Entry}}};
                {error, _} = Error -> Error
            end;
        {undefined, undefined} -> {error, noent};
        {undefined, _File} -> {error, notdir};
        {_, _} -> {error, exist}
    end.

%% @doc Removes an empty directory.
-spec rmdir(fs(), binary()) -> {ok, fs()} | {error, errno()}.
rmdir(FS = #{entries := Entries}, Full) ->
    case maps:get(Full, Entries, undefined) of
        dir ->
            case list(FS, Full) of
                [] -> remove(FS, Full);
                _ -> {error, notempty}
            end;
        undefined -> {error, noent};
        _File -> {error, notdir}
    end.

%% @doc Removes a file.
-spec unlink(fs(), binary()) -> {ok, fs()} | {error, errno()}.
unlink(FS = #{entries := Entries}, Full) ->
    case maps:get(Full, Entries, undefined) of
        dir -> {error, isdir};
        undefined -> {error, noent};
        _File -> remove(FS, Full)
    end.

remove(FS = #{entries := Entries, used := Used}, Full) ->
    {ok, FS#{entries := maps:remove(Full, Entries), used := Used - cost(Full, maps:get(Full, Entries))}}.

%% @doc Renames a file or a directory (with everything under it), with
%% POSIX's rules for an existing target: a file replaces a file, a directory
%% replaces an empty directory. Longer paths cost the budget (`nospc').
-spec rename(fs(), binary(), binary()) -> {ok, fs()} | {error, errno()}.
rename(FS = #{entries := Entries}, From, From) ->
    case maps:is_key(From, Entries) of
        false -> {error, noent};
        true -> {ok, FS}
    end;
rename(FS = #{entries := Entries}, From, To) ->
    Inside = binary:longest_common_prefix([prefix(From), To]) =:= byte_size(prefix(From)),
    Get = fun(P) -> kind_of(maps:get(P, Entries, undefined)) end,
    case {Get(From), Get(To), Get(parent(To))} of
        {undefined, _, _} -> {error, noent};
        {_, _, undefined} -> {error, noent};
        {_, _, Parent} when Parent =/= dir -> {error, notdir};
        {dir, _, _} when Inside -> {error, inval};
        {dir, file, _} -> {error, notdir};
        {file, dir, _} -> {error, isdir};
        {dir, dir, _} ->
            case list(FS, To) of
                [] -> move(element(2, remove(FS, To)), From, To);
                _ -> {error, notempty}
            end;
        {dir, undefined, _} -> move(FS, From, To);
        {file, undefined, _} -> move(FS, From, To);
        {file, file, _} -> move(element(2, remove(FS, To)), From, To)
    end.

kind_of(undefined) -> undefined;
kind_of(dir) -> dir;
kind_of({file, _, _}) -> file.

%% Moves `From' and everything under it to `To', charging the longer paths.
move(FS = #{entries := Entries}, From, To) ->
    Prefix = prefix(From),
    N = byte_size(Prefix),
    {Moved, Delta} = maps:fold(
        fun(K, V, {Acc, D}) when K =:= From ->
                {Acc#{To => V}, D + byte_size(To) - byte_size(From)};
           (K, V, {Acc, D}) ->
                case K of
                    <<Prefix:N/binary, Rest/binary>> ->
                        {Acc#{<<To/binary, "/", Rest/binary>> => V}, D + byte_size(To) - byte_size(From)};
                    _ ->
                        {Acc#{K => V}, D}
                end
        end,
        {#{}, 0}, Entries),
    case charge(FS, Delta) of
        {ok, FS1} -> {ok, FS1#{entries := Moved}};
        {error, _} = Error -> Error
    end.

%%% Budget

cost(Full, dir) -> ?ENTRY_COST(Full);
cost(Full, {file, Size, _}) -> ?ENTRY_COST(Full) + Size.

%% Adds `Delta' bytes to what is used: `nospc' when growing past the limit.
charge(FS = #{used := Used}, Delta) when Delta =< 0 ->
    {ok, FS#{used := Used + Delta}};
charge(FS = #{used := Used, limit := Limit}, Delta) ->
    case Limit =:= infinity orelse Used + Delta =< Limit of
        true -> {ok, FS#{used := Used + Delta}};
        false -> {error, nospc}
    end.

from_binary(Bin) ->
    {file, byte_size(Bin), maps:from_list(split(Bin, 0))}.

split(<<>>, _I) -> [];
split(<<Block:?BLOCK/binary, Rest/binary>>, I) -> [{I, Block} | split(Rest, I + 1)];
split(Last, I) -> [{I, Last}].

to_binary({file, Size, Blocks}) ->
    iolist_to_binary(read_blocks(Blocks, 0, Size)).

to_bin(B) when is_binary(B) -> B;
to_bin(L) when is_list(L) -> unicode:characters_to_binary(L);
to_bin(Other) -> throw({bad_preopen, Other}).
