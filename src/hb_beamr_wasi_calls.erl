%%% @private
%%% @doc The WASI preview 1 functions behind {@link hb_beamr_wasi}: each
%%% takes the import's arguments, the instance (for its memory, through
%%% {@link hb_beamr_wasi_mem}) and the state, and returns `{ok, NewState}'
%%% (errno 0) or `nosys', or throws `{wasi_errno, Name}'.
-module(hb_beamr_wasi_calls).

-export([call/4, errno/1]).

-import(hb_beamr_wasi_mem, [read/3, write/3, put_u32/3, put_u64/3, in_memory/3, iovecs/3, total/1, take/2,
                           check/2, fold/4, scatter/3]).

-define(U32(X), ((X) band 16#FFFFFFFF)).
-define(U64(X), ((X) band 16#FFFFFFFFFFFFFFFF)).
-define(ALL_RIGHTS, ((1 bsl 30) - 1)).
-define(RIGHT_FD_READ, (1 bsl 1)).
-define(RIGHT_FD_SEEK, (1 bsl 2)).
-define(RIGHT_FD_TELL, (1 bsl 5)).
-define(RIGHT_FD_WRITE, (1 bsl 6)).
-define(FT_CHAR, 2).
-define(FT_DIR, 3).
-define(FT_FILE, 4).
-define(FDFLAG_APPEND, 1).
-define(O_CREAT, 1).
-define(O_DIRECTORY, 2).
-define(O_EXCL, 4).
-define(O_TRUNC, 8).
%% Host input is read at most this much a call (a short read, like a pipe's).
-define(HOST_READ, 65536).

%% @doc Runs WASI function `Func' (any but `proc_exit'): `{ok, NewState}',
%% `nosys' for a function not served (or called with the wrong arity), or
%% a throw of `{wasi_errno, Name}'.
-spec call(binary(), [integer()], hb_beamr:wasm(), hb_beamr_wasi:state()) ->
    {ok, hb_beamr_wasi:state()} | nosys.
call(<<"fd_write">>, [Fd, Iovs, N, Ptr], W, S) ->
    {Count, S1} = write_fd(Fd, W, iovecs(W, Iovs, N), S),
    put_u32(W, Ptr, Count),
    {ok, S1};
call(<<"fd_read">>, [Fd, Iovs, N, Ptr], W, S) ->
    {Count, S1} = read_fd(Fd, W, iovecs(W, Iovs, N), S),
    put_u32(W, Ptr, Count),
    {ok, S1};
call(<<"fd_pwrite">>, [Fd, Iovs, N, Offset, Ptr], W, S) ->
    #{root := Root, rel := Rel} = F = file_fd(Fd, S),
    need_right(F, ?RIGHT_FD_WRITE),
    {Count, FS, _End} = write_file(W, iovecs(W, Iovs, N), hb_beamr_wasi_fs:full(Root, Rel), ?U64(Offset), S),
    put_u32(W, Ptr, Count),
    {ok, S#{fs := FS}};
call(<<"fd_pread">>, [Fd, Iovs, N, Offset, Ptr], W, S) ->
    #{root := Root, rel := Rel} = F = file_fd(Fd, S),
    need_right(F, ?RIGHT_FD_READ),
    Count = read_file(W, iovecs(W, Iovs, N), hb_beamr_wasi_fs:full(Root, Rel), ?U64(Offset), S),
    put_u32(W, Ptr, Count),
    {ok, S};
call(<<"fd_filestat_set_size">>, [Fd, Size], _W, S) ->
    #{root := Root, rel := Rel} = F = file_fd(Fd, S),
    need_right(F, ?RIGHT_FD_WRITE),
    fs_op(fun(FS, Full) -> hb_beamr_wasi_fs:set_size(FS, Full, ?U64(Size)) end,
          hb_beamr_wasi_fs:full(Root, Rel), S);
call(<<"fd_seek">>, [Fd, Offset, Whence, Ptr], W, S) ->
    F = #{pos := Pos} = file_fd(Fd, S),
    Base = case Whence of
        0 -> 0;
        1 -> Pos;
        2 -> file_size(F, S);
        _ -> throw({wasi_errno, inval})
    end,
    New = Base + Offset,
    New >= 0 orelse throw({wasi_errno, inval}),
    put_u64(W, Ptr, New),
    {ok, set_fd(Fd, F#{pos := New}, S)};
call(<<"fd_tell">>, [Fd, Ptr], W, S) ->
    #{pos := Pos} = file_fd(Fd, S),
    put_u64(W, Ptr, Pos),
    {ok, S};
call(<<"fd_close">>, [Fd], _W, S = #{fds := Fds}) ->
    _ = fd(Fd, S),
    {ok, S#{fds := maps:remove(Fd, Fds)}};
call(<<"fd_fdstat_get">>, [Fd, Ptr], W, S) ->
    F = fd(Fd, S),
    {Type, Rights} = case F of
        #{type := file, rights := R} -> {?FT_FILE, R};
        #{type := dir} -> {?FT_DIR, ?ALL_RIGHTS};
        #{type := _Stdio} -> {?FT_CHAR, stdio_rights(S)}
    end,
    Flags = maps:get(flags, F, 0),
    write(W, Ptr, <<Type:8, 0:8, Flags:16/little, 0:32, Rights:64/little, ?ALL_RIGHTS:64/little>>),
    {ok, S};
call(<<"fd_fdstat_set_flags">>, [Fd, Flags], _W, S) ->
    case fd(Fd, S) of
        F = #{type := file} -> {ok, set_fd(Fd, F#{flags := Flags band 16#FFFF}, S)};
        _ -> {ok, S}
    end;
call(<<"fd_filestat_get">>, [Fd, Ptr], W, S) ->
    case fd(Fd, S) of
        #{type := T, root := Root, rel := Rel} when T =:= file; T =:= dir ->
            put_filestat(W, Ptr, hb_beamr_wasi_fs:full(Root, Rel), S);
        _Stdio ->
            write(W, Ptr, filestat(0, ?FT_CHAR, 0))
    end,
    {ok, S};
call(<<"fd_prestat_get">>, [Fd, Ptr], W, S) ->
    #{root := Root} = preopen(Fd, S),
    write(W, Ptr, <<0:8, 0:24, (byte_size(Root)):32/little>>),
    {ok, S};
call(<<"fd_prestat_dir_name">>, [Fd, Ptr, Len], W, S) ->
    #{root := Root} = preopen(Fd, S),
    ?U32(Len) >= byte_size(Root) orelse throw({wasi_errno, nametoolong}),
    write(W, Ptr, Root),
    {ok, S};
call(<<"fd_readdir">>, [Fd, Buf, Len, Cookie, Ptr], W, S) ->
    Full = dir_path(Fd, S),
    Entries = [{<<".">>, dir}, {<<"..">>, dir} | hb_beamr_wasi_fs:list(maps:get(fs, S), Full)],
    From = ?U64(Cookie),
    Bytes = iolist_to_binary([
        dirent(I + 1, hb_beamr_wasi_fs:full(Full, [Name]), Name, Kind)
     || {I, {Name, Kind}} <- lists:zip(lists:seq(0, length(Entries) - 1), Entries), I >= From
    ]),
    Used = min(byte_size(Bytes), ?U32(Len)),
    write(W, Buf, binary:part(Bytes, 0, Used)),
    put_u32(W, Ptr, Used),
    {ok, S};
call(<<"path_open">>, [DirFd, _LookupFlags, P, PLen, OFlags, RightsBase, _Inherit, FdFlags, Ptr], W, S) ->
    {Root, Rel} = path(W, DirFd, P, PLen, S),
    Full = hb_beamr_wasi_fs:full(Root, Rel),
    FS0 = maps:get(fs, S),
    Has = fun(Flag) -> OFlags band Flag =/= 0 end,
    {ok, FS1} = case hb_beamr_wasi_fs:stat(FS0, Full) of
        undefined ->
            case {Has(?O_CREAT), Has(?O_DIRECTORY)} of
                {false, _} -> throw({wasi_errno, noent});
                {true, true} -> throw({wasi_errno, inval});
                {true, false} -> ok(hb_beamr_wasi_fs:create(FS0, Full))
            end;
        Existing ->
            Has(?O_CREAT) andalso Has(?O_EXCL) andalso throw({wasi_errno, exist}),
            case Existing of
                dir when (?RIGHT_FD_WRITE band RightsBase) =/= 0 -> throw({wasi_errno, isdir});
                dir -> Has(?O_TRUNC) andalso throw({wasi_errno, isdir}), {ok, FS0};
                _File ->
                    Has(?O_DIRECTORY) andalso throw({wasi_errno, notdir}),
                    case Has(?O_TRUNC) of
                        true -> ok(hb_beamr_wasi_fs:truncate(FS0, Full));
                        false -> {ok, FS0}
                    end
            end
    end,
    Entry = case hb_beamr_wasi_fs:stat(FS1, Full) of
        dir -> #{type => dir, root => Root, rel => Rel, preopen => false};
        _ -> #{type => file, root => Root, rel => Rel, pos => 0, flags => FdFlags band 16#FFFF,
               rights => ?U64(RightsBase) band ?ALL_RIGHTS}
    end,
    NewFd = free_fd(maps:get(fds, S), 3),
    put_u32(W, Ptr, NewFd),
    {ok, set_fd(NewFd, Entry, S#{fs := FS1})};
call(<<"path_filestat_get">>, [DirFd, _Flags, P, PLen, Ptr], W, S) ->
    {Root, Rel} = path(W, DirFd, P, PLen, S),
    put_filestat(W, Ptr, hb_beamr_wasi_fs:full(Root, Rel), S),
    {ok, S};
call(<<"path_create_directory">>, [DirFd, P, PLen], W, S) ->
    fs_op(fun hb_beamr_wasi_fs:mkdir/2, path_full(W, DirFd, P, PLen, S), S);
call(<<"path_remove_directory">>, [DirFd, P, PLen], W, S) ->
    fs_op(fun hb_beamr_wasi_fs:rmdir/2, path_full(W, DirFd, P, PLen, S), S);
call(<<"path_unlink_file">>, [DirFd, P, PLen], W, S) ->
    fs_op(fun hb_beamr_wasi_fs:unlink/2, path_full(W, DirFd, P, PLen, S), S);
call(<<"path_rename">>, [Fd1, P1, L1, Fd2, P2, L2], W, S) ->
    From = path_full(W, Fd1, P1, L1, S),
    To = path_full(W, Fd2, P2, L2, S),
    fs_op(fun(FS, F) -> hb_beamr_wasi_fs:rename(FS, F, To) end, From, S);
call(<<"args_sizes_get">>, [CountPtr, SizePtr], W, S = #{args := Args}) ->
    sizes(W, CountPtr, SizePtr, Args),
    {ok, S};
call(<<"args_get">>, [Argv, Buf], W, S = #{args := Args}) ->
    strings(W, Argv, Buf, Args),
    {ok, S};
call(<<"environ_sizes_get">>, [CountPtr, SizePtr], W, S = #{env := Env}) ->
    sizes(W, CountPtr, SizePtr, Env),
    {ok, S};
call(<<"environ_get">>, [Environ, Buf], W, S = #{env := Env}) ->
    strings(W, Environ, Buf, Env),
    {ok, S};
call(<<"clock_res_get">>, [Id, Ptr], W, S) ->
    valid_clock(Id),
    put_u64(W, Ptr, case S of #{clock := real} -> 1000; _ -> 1 end),
    {ok, S};
call(<<"clock_time_get">>, [Id, _Precision, Ptr], W, S) ->
    put_u64(W, Ptr, now_ns(Id, S)),
    {ok, S};
call(<<"random_get">>, [Buf, Len], W, S) ->
    in_memory(W, ?U32(Buf), ?U32(Len)),
    {Bytes, S1} = random_bytes(?U32(Len), S),
    write(W, Buf, Bytes),
    {ok, S1};
call(<<"sched_yield">>, [], _W, S) ->
    {ok, S};
call(<<"poll_oneoff">>, [In, Out, N, Ptr], W, S) ->
    poll_oneoff(W, ?U32(In), ?U32(Out), ?U32(N), Ptr, S);
call(_Func, _Args, _W, _S) ->
    nosys.

%%% File descriptors

fd(Fd, #{fds := Fds}) ->
    case maps:get(Fd, Fds, undefined) of
        undefined -> throw({wasi_errno, badf});
        F -> F
    end.

set_fd(Fd, F, S = #{fds := Fds}) ->
    S#{fds := Fds#{Fd => F}}.

file_fd(Fd, S) ->
    case fd(Fd, S) of
        F = #{type := file} -> F;
        #{type := dir} -> throw({wasi_errno, badf});
        _Stdio -> throw({wasi_errno, spipe})
    end.

preopen(Fd, S) ->
    case fd(Fd, S) of
        F = #{preopen := true} -> F;
        _ -> throw({wasi_errno, badf})
    end.

dir_path(Fd, S) ->
    case fd(Fd, S) of
        #{type := dir, root := Root, rel := Rel} -> hb_beamr_wasi_fs:full(Root, Rel);
        _ -> throw({wasi_errno, notdir})
    end.

free_fd(Fds, N) ->
    case maps:is_key(N, Fds) of
        true -> free_fd(Fds, N + 1);
        false -> N
    end.

need_right(#{rights := Rights}, Right) when Rights band Right =/= 0 -> ok;
need_right(_, _) -> throw({wasi_errno, badf}).

file_size(#{root := Root, rel := Rel}, #{fs := FS}) ->
    case hb_beamr_wasi_fs:stat(FS, hb_beamr_wasi_fs:full(Root, Rel)) of
        {file, Size} -> Size;
        _ -> throw({wasi_errno, badf})
    end.

%% A terminal is a character device without seek and tell rights
%% (wasi-libc's isatty).
stdio_rights(#{tty := true}) -> ?RIGHT_FD_READ bor ?RIGHT_FD_WRITE;
stdio_rights(_) -> ?RIGHT_FD_READ bor ?RIGHT_FD_WRITE bor ?RIGHT_FD_SEEK bor ?RIGHT_FD_TELL.

%% How much a guest may make the host hold (hb_beamr_wasi's limits).
limit(Key, S) ->
    maps:get(Key, maps:get(limits, S, #{}), maps:get(Key, hb_beamr_wasi:default_limits())).

%% Writes and reads move at most `max_io' bytes a call (a short count past
%% it), streamed through 64 KiB chunks: what the host holds does not grow
%% with the bytes the iovecs name, however they overlap. A buffer outside
%% memory throws `fault' mid-way, which drops the new state; only host
%% devices, whose bytes cannot be taken back, are checked first.
write_fd(Fd, W, Bufs, S) ->
    case fd(Fd, S) of
        #{type := T} when T =:= stdout; T =:= stderr ->
            Want = min(total(Bufs), limit(max_io, S)),
            {Count, Out} = emit(W, Bufs, Want, maps:get(T, S), limit(max_output, S)),
            {Count, S#{T := Out}};
        F = #{type := file, root := Root, rel := Rel, pos := Pos, flags := Flags} ->
            need_right(F, ?RIGHT_FD_WRITE),
            At = case Flags band ?FDFLAG_APPEND of 0 -> Pos; _ -> file_size(F, S) end,
            {Count, FS, End} = write_file(W, Bufs, hb_beamr_wasi_fs:full(Root, Rel), At, S),
            {Count, set_fd(Fd, F#{pos := End}, S#{fs := FS})};
        _ ->
            throw({wasi_errno, badf})
    end.

%% Captured output keeps at most `max_output' bytes: a short write up to
%% it, then `nospc' (a full device).
emit(W, Bufs, Want, Buffer, Max) when is_binary(Buffer) ->
    Count = min(Want, Max - byte_size(Buffer)),
    Want > 0 andalso Count =< 0 andalso throw({wasi_errno, nospc}),
    {max(Count, 0), fold(W, take(Bufs, Count), fun(Chunk, Acc) -> <<Acc/binary, Chunk/binary>> end, Buffer)};
emit(W, Bufs, Want, {host, Device} = Host, _Max) ->
    check(W, Bufs),
    fold(W, take(Bufs, Want), fun(Chunk, ok) -> _ = file:write(Device, Chunk), ok end, ok),
    {Want, Host}.

%% As much as the file system takes (a short write; `fbig' or `nospc' when
%% nothing fits), a chunk at a time.
write_file(W, Bufs, Full, At, S = #{fs := FS0}) ->
    Want = min(total(Bufs), limit(max_io, S)),
    {ok, Count} = ok(hb_beamr_wasi_fs:room(FS0, Full, At, Want)),
    Put = fun(Chunk, {FS, Pos}) ->
        {ok, FS1, End} = ok(hb_beamr_wasi_fs:write(FS, Full, Pos, Chunk)),
        {FS1, End}
    end,
    {FS, End} = fold(W, take(Bufs, Count), Put, {FS0, At}),
    {Count, FS, End}.

%% Reads into the buffers a chunk at a time; the bytes read.
read_file(W, Bufs, Full, At, S = #{fs := FS}) ->
    read_chunks(W, Bufs, FS, Full, At, min(total(Bufs), limit(max_io, S)), 0).

read_chunks(_W, _Bufs, _FS, _Full, _At, 0, Done) ->
    Done;
read_chunks(W, Bufs, FS, Full, At, Want, Done) ->
    Len = min(Want, ?HOST_READ),
    {ok, Data} = ok(hb_beamr_wasi_fs:read(FS, Full, At, Len)),
    Rest = scatter(W, Bufs, Data),
    case byte_size(Data) of
        Len -> read_chunks(W, Rest, FS, Full, At + Len, Want - Len, Done + Len);
        Short -> Done + Short
    end.

read_fd(Fd, W, Bufs, S) ->
    case fd(Fd, S) of
        #{type := stdin} ->
            Want = min(total(Bufs), limit(max_io, S)),
            {Data, S1} = case maps:get(stdin, S) of
                In when is_binary(In) ->
                    Take = min(Want, byte_size(In)),
                    <<Part:Take/binary, Rest/binary>> = In,
                    {Part, S#{stdin := Rest}};
                {host, Device} ->
                    check(W, Bufs),
                    read_host(Device, <<>>, min(Want, ?HOST_READ), S);
                {host, Device, Pending} ->
                    check(W, Bufs),
                    read_host(Device, Pending, min(Want, ?HOST_READ), S)
            end,
            _ = scatter(W, Bufs, Data),
            {byte_size(Data), S1};
        F = #{type := file, root := Root, rel := Rel, pos := Pos} ->
            need_right(F, ?RIGHT_FD_READ),
            Count = read_file(W, Bufs, hb_beamr_wasi_fs:full(Root, Rel), Pos, S),
            {Count, set_fd(Fd, F#{pos := Pos + Count}, S)};
        #{type := dir} ->
            throw({wasi_errno, isdir});
        _ ->
            throw({wasi_errno, badf})
    end.

%% Standard input from the host: a port (`open_port({fd, 0, 1}, [in,
%% binary, eof])' in the process that makes the call) gives the bytes as they
%% arrive, a line at a time from a terminal; an I/O device is read with
%% file:read/2. What does not fit waits in the state for the next read.
read_host(_Device, _Pending, 0, S) ->
    {<<>>, S};
read_host(_Device, eof, _Max, S) ->
    {<<>>, S};
read_host(Port, <<>>, Max, S) when is_port(Port) ->
    receive
        {Port, {data, Data}} -> read_host(Port, Data, Max, S);
        {Port, eof} -> {<<>>, S#{stdin := {host, Port, eof}}}
    end;
read_host(Device, <<>>, Max, S) ->
    case file:read(Device, Max) of
        {ok, Data} -> {iolist_to_binary(Data), S};
        _Eof -> {<<>>, S#{stdin := {host, Device, eof}}}
    end;
read_host(Device, Pending, Max, S) ->
    Take = min(Max, byte_size(Pending)),
    <<Data:Take/binary, Rest/binary>> = Pending,
    {Data, S#{stdin := {host, Device, Rest}}}.

%%% Paths

path(W, DirFd, P, PLen, S) ->
    case fd(DirFd, S) of
        #{type := dir, root := Root, rel := Base} ->
            Path = read(W, P, PLen),
            {ok, Rel} = ok(hb_beamr_wasi_fs:resolve(Root, Base, Path)),
            {Root, Rel};
        _ ->
            throw({wasi_errno, notdir})
    end.

path_full(W, DirFd, P, PLen, S) ->
    {Root, Rel} = path(W, DirFd, P, PLen, S),
    hb_beamr_wasi_fs:full(Root, Rel).

fs_op(Op, Full, S = #{fs := FS}) ->
    {ok, FS1} = ok(Op(FS, Full)),
    {ok, S#{fs := FS1}}.

put_filestat(W, Ptr, Full, #{fs := FS}) ->
    Stat = case hb_beamr_wasi_fs:stat(FS, Full) of
        undefined -> throw({wasi_errno, noent});
        dir -> filestat(ino(Full), ?FT_DIR, 0);
        {file, Size} -> filestat(ino(Full), ?FT_FILE, Size)
    end,
    write(W, Ptr, Stat).

filestat(Ino, Type, Size) ->
    <<0:64, Ino:64/little, Type:8, 0:56, 1:64/little, Size:64/little, 0:64, 0:64, 0:64>>.

dirent(Next, Full, Name, Kind) ->
    Type = case Kind of dir -> ?FT_DIR; file -> ?FT_FILE end,
    [<<Next:64/little, (ino(Full)):64/little, (byte_size(Name)):32/little, Type:8, 0:24>>, Name].

ino(Full) -> erlang:phash2(Full, 1 bsl 32) + 1.

ok({ok, _} = Ok) -> Ok;
ok({ok, _, _} = Ok) -> Ok;
ok({error, Errno}) -> throw({wasi_errno, Errno}).

%%% Args and environ

sizes(W, CountPtr, SizePtr, Strings) ->
    put_u32(W, CountPtr, length(Strings)),
    put_u32(W, SizePtr, lists:sum([byte_size(B) + 1 || B <- Strings])).

strings(W, Ptrs, Buf, Strings) ->
    Base = ?U32(Buf),
    {Offsets, _} = lists:mapfoldl(fun(B, At) -> {At, At + byte_size(B) + 1} end, Base, Strings),
    write(W, Ptrs, << <<O:32/little>> || O <- Offsets >>),
    write(W, Buf, iolist_to_binary([[B, 0] || B <- Strings])).

%%% Clocks, random, poll

valid_clock(Id) when Id >= 0, Id =< 3 -> ok;
valid_clock(_) -> throw({wasi_errno, inval}).

now_ns(Id, #{clock := Clock}) ->
    valid_clock(Id),
    case {Clock, Id} of
        {{fixed, Ns}, _} -> Ns;
        {real, 0} -> os:system_time(nanosecond);
        {real, _} ->
            erlang:monotonic_time(nanosecond) -
                erlang:convert_time_unit(erlang:system_info(start_time), native, nanosecond)
    end.

random_bytes(Len, S = #{random := os}) ->
    {crypto:strong_rand_bytes(Len), S};
random_bytes(Len, S = #{random := {seeded, Exported}}) ->
    {Bytes, Next} = rand:bytes_s(Len, rand:seed_s(Exported)),
    {Bytes, S#{random := {seeded, rand:export_seed_s(Next)}}}.

%% Clock subscriptions wait (the real clock sleeps, a fixed clock moves on);
%% fd subscriptions are answered at once with `notsup'.
poll_oneoff(_W, _In, _Out, 0, _Ptr, _S) ->
    throw({wasi_errno, inval});
poll_oneoff(W, In, Out, N, Ptr, S) ->
    Subs = [Sub || <<Sub:48/binary>> <= read(W, In, N * 48)],
    Parsed = [parse_sub(Sub, S) || Sub <- Subs],
    FdEvents = [{U, T} || {fd, U, T} <- Parsed],
    Clocks = [{U, D} || {clock, U, D} <- Parsed],
    {Events, S1} = case {FdEvents, Clocks} of
        {[_ | _], _} ->
            {[event(U, errno(notsup), T) || {U, T} <- FdEvents], S};
        {[], _} ->
            Wait = lists:min([D || {_, D} <- Clocks]),
            {[event(U, 0, 0) || {U, D} <- Clocks, D =< Wait], wait(Wait, S)}
    end,
    write(W, Out, iolist_to_binary(Events)),
    put_u32(W, Ptr, length(Events)),
    {ok, S1}.

parse_sub(<<U:64/little, 0:8, _:7/binary, Id:32/little, _:4/binary, Timeout:64/little, _:8/binary,
            Flags:16/little, _/binary>>, S) ->
    Delay = case Flags band 1 of
        0 -> Timeout;
        1 -> Timeout - now_ns(Id, S)
    end,
    {clock, U, max(0, Delay)};
parse_sub(<<U:64/little, Tag:8, _/binary>>, _S) when Tag =:= 1; Tag =:= 2 ->
    {fd, U, Tag};
parse_sub(_, _S) ->
    throw({wasi_errno, inval}).

event(U, Error, Type) ->
    <<U:64/little, Error:16/little, Type:8, 0:40, 0:128>>.

wait(Ns, S = #{clock := {fixed, T}}) ->
    S#{clock := {fixed, T + Ns}};
wait(Ns, S) ->
    Ms = (Ns + 999999) div 1000000,
    timer:sleep(case maps:get(deadline, S, infinity) of
        infinity -> Ms;
        Deadline -> max(0, min(Ms, Deadline - erlang:monotonic_time(millisecond)))
    end),
    S.

%%% Errno

%% @doc The WASI preview 1 errno value of an error name (`noent' is 44),
%% as wasi/api.h numbers them.
-spec errno(atom()) -> 0..76.
errno(success) -> 0; errno('2big') -> 1; errno(acces) -> 2; errno(addrinuse) -> 3;
errno(addrnotavail) -> 4; errno(afnosupport) -> 5; errno(again) -> 6; errno(already) -> 7;
errno(badf) -> 8; errno(badmsg) -> 9; errno(busy) -> 10; errno(canceled) -> 11; errno(child) -> 12;
errno(connaborted) -> 13; errno(connrefused) -> 14; errno(connreset) -> 15; errno(deadlk) -> 16;
errno(destaddrreq) -> 17; errno(dom) -> 18; errno(dquot) -> 19; errno(exist) -> 20;
errno(fault) -> 21; errno(fbig) -> 22; errno(hostunreach) -> 23; errno(idrm) -> 24;
errno(ilseq) -> 25; errno(inprogress) -> 26; errno(intr) -> 27; errno(inval) -> 28; errno(io) -> 29;
errno(isconn) -> 30; errno(isdir) -> 31; errno(loop) -> 32; errno(mfile) -> 33; errno(mlink) -> 34;
errno(msgsize) -> 35; errno(multihop) -> 36; errno(nametoolong) -> 37; errno(netdown) -> 38;
errno(netreset) -> 39; errno(netunreach) -> 40; errno(nfile) -> 41; errno(nobufs) -> 42;
errno(nodev) -> 43; errno(noent) -> 44; errno(noexec) -> 45; errno(nolck) -> 46; errno(nolink) -> 47;
errno(nomem) -> 48; errno(nomsg) -> 49; errno(noprotoopt) -> 50; errno(nospc) -> 51;
errno(nosys) -> 52; errno(notconn) -> 53; errno(notdir) -> 54; errno(notempty) -> 55;
errno(notrecoverable) -> 56; errno(notsock) -> 57; errno(notsup) -> 58; errno(notty) -> 59;
errno(nxio) -> 60; errno(overflow) -> 61; errno(ownerdead) -> 62; errno(perm) -> 63;
errno(pipe) -> 64; errno(proto) -> 65; errno(protonosupport) -> 66; errno(prototype) -> 67;
errno(range) -> 68; errno(rofs) -> 69; errno(spipe) -> 70; errno(srch) -> 71; errno(stale) -> 72;
errno(timedout) -> 73; errno(txtbsy) -> 74; errno(xdev) -> 75; errno(notcapable) -> 76.
