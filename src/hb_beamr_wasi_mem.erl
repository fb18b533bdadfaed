%%% @private
%%% @doc Linear memory access for {@link hb_beamr_wasi_calls}, through
%%% {@link hb_beamr_io} on the instance: wasm32 pointers (given signed or
%%% unsigned), little-endian integers, iovec arrays. A range outside the
%%% memory throws `{wasi_errno, fault}'.
-module(hb_beamr_wasi_mem).

-export([read/3, write/3, put_u32/3, put_u64/3, in_memory/3]).
-export([iovecs/3, total/1, take/2, check/2, fold/4, scatter/3]).

-define(U32(X), ((X) band 16#FFFFFFFF)).
-define(IOV_MAX, 1024).
%% The most bytes of guest memory read or written at once.
-define(CHUNK, 65536).


%% @doc Throws `fault' unless [Ptr, Ptr + Len) is inside the memory.
-spec in_memory(hb_beamr:wasm(), non_neg_integer(), non_neg_integer()) -> ok.
in_memory(W, Ptr, Len) ->
    case hb_beamr_io:size(W) of
        {ok, Size} when Ptr + Len =< Size -> ok;
        _ -> throw({wasi_errno, fault})
    end.

%% @doc `Len' bytes at `Ptr'.
-spec read(hb_beamr:wasm(), integer(), integer()) -> binary().
read(W, Ptr, Len) ->
    case hb_beamr_io:read(W, ?U32(Ptr), ?U32(Len)) of
        {ok, Bin} -> Bin;
        {error, _} -> throw({wasi_errno, fault})
    end.

%% @doc Writes `Bin' at `Ptr'.
-spec write(hb_beamr:wasm(), integer(), binary()) -> ok.
write(_W, _Ptr, <<>>) ->
    ok;
write(W, Ptr, Bin) ->
    case hb_beamr_io:write(W, ?U32(Ptr), Bin) of
        ok -> ok;
        {error, _} -> throw({wasi_errno, fault})
    end.

%% @doc Writes a little-endian u32 at `Ptr'.
-spec put_u32(hb_beamr:wasm(), integer(), non_neg_integer()) -> ok.
put_u32(W, Ptr, V) -> write(W, Ptr, <<V:32/little>>).

%% @doc Writes a little-endian u64 at `Ptr'.
-spec put_u64(hb_beamr:wasm(), integer(), integer()) -> ok.
put_u64(W, Ptr, V) -> write(W, Ptr, <<V:64/little>>).

%% @doc The non-empty buffers `{Ptr, Len}' of an array of `N' iovecs. Only
%% the first 1,024 (POSIX's IOV_MAX) are looked at: the rest are left out,
%% a short read or write, so the array costs the host at most 8 KiB to read.
-spec iovecs(hb_beamr:wasm(), integer(), integer()) -> [{non_neg_integer(), pos_integer()}].
iovecs(W, Iovs, N) ->
    [{B, L} || <<B:32/little, L:32/little>> <= read(W, Iovs, min(?U32(N), ?IOV_MAX) * 8), L > 0].

%% @doc The bytes the buffers add up to.
-spec total([{non_neg_integer(), non_neg_integer()}]) -> non_neg_integer().
total(Bufs) ->
    lists:sum([L || {_, L} <- Bufs]).

%% @doc The first `Max' bytes of the buffers.
-spec take([{non_neg_integer(), non_neg_integer()}], non_neg_integer()) ->
    [{non_neg_integer(), non_neg_integer()}].
take([], _Max) -> [];
take(_Bufs, 0) -> [];
take([{B, L} | Rest], Max) when L =< Max -> [{B, L} | take(Rest, Max - L)];
take([{B, _L} | _], Max) -> [{B, Max}].

%% @doc Throws `fault' unless every buffer is inside the memory (for a
%% call to check before it does what cannot be undone).
-spec check(hb_beamr:wasm(), [{non_neg_integer(), non_neg_integer()}]) -> ok.
check(_W, []) ->
    ok;
check(W, Bufs) ->
    in_memory(W, 0, lists:max([B + L || {B, L} <- Bufs])).

%% @doc Folds `Fun(Chunk, Acc)' over the bytes of the buffers, in order, in
%% chunks of at most 64 KiB: the host never holds more of them at once,
%% however many the buffers name. Buffers close together (wasi-libc's stdio
%% passes its buffer and the caller's) are read in one go.
-spec fold(hb_beamr:wasm(), [{non_neg_integer(), non_neg_integer()}], fun((binary(), Acc) -> Acc), Acc) -> Acc.
fold(_W, [], _Fun, Acc) ->
    Acc;
fold(W, [_, _ | _] = Bufs, Fun, Acc) ->
    Lo = lists:min([B || {B, _} <- Bufs]),
    Hi = lists:max([B + L || {B, L} <- Bufs]),
    Total = total(Bufs),
    case Total =< ?CHUNK andalso Hi - Lo =< 2 * Total + 4096 of
        true ->
            Span = read(W, Lo, Hi - Lo),
            Fun(iolist_to_binary([binary:part(Span, B - Lo, L) || {B, L} <- Bufs]), Acc);
        false ->
            lists:foldl(fun(Buf, A) -> fold_buf(W, Buf, Fun, A) end, Acc, Bufs)
    end;
fold(W, [Buf], Fun, Acc) ->
    fold_buf(W, Buf, Fun, Acc).

fold_buf(_W, {_B, 0}, _Fun, Acc) ->
    Acc;
fold_buf(W, {B, L}, Fun, Acc) ->
    N = min(L, ?CHUNK),
    fold_buf(W, {B + N, L - N}, Fun, Fun(read(W, B, N), Acc)).

%% @doc Writes `Data' across the buffers, in order, as far as it goes; the
%% buffers (or what is left of them) still to fill.
-spec scatter(hb_beamr:wasm(), [{non_neg_integer(), non_neg_integer()}], binary()) ->
    [{non_neg_integer(), non_neg_integer()}].
scatter(_W, Bufs, <<>>) ->
    Bufs;
scatter(_W, [], _Data) ->
    [];
scatter(W, [{B, L} | Rest], Data) ->
    Take = min(L, byte_size(Data)),
    <<Chunk:Take/binary, More/binary>> = Data,
    write(W, B, Chunk),
    case Take < L of
        true -> [{B + Take, L - Take} | Rest];
        false -> scatter(W, Rest, More)
    end.
