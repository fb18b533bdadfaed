%%% @doc Linear memory access for {@link hb_beamr_wasi_calls}, through
%%% {@link hb_beamr_io} on the instance: wasm32 pointers (given signed or
%%% unsigned), little-endian integers, iovec arrays. A range outside the
%%% memory throws `{wasi_errno, fault}'.
-module(hb_beamr_wasi_mem).

-export([read/3, write/3, put_u32/3, put_u64/3, in_memory/3, iovecs/3, gather/3, scatter/3]).

-define(U32(X), ((X) band 16#FFFFFFFF)).


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

%% @doc The non-empty buffers `{Ptr, Len}' of an array of `N' iovecs.
-spec iovecs(hb_beamr:wasm(), integer(), integer()) -> [{non_neg_integer(), pos_integer()}].
iovecs(W, Iovs, N) ->
    [{B, L} || <<B:32/little, L:32/little>> <= read(W, Iovs, ?U32(N) * 8), L > 0].

%% @doc The bytes of an iovec array. Buffers close together (wasi-libc's stdio
%% passes its buffer and the caller's) are read in one go.
-spec gather(hb_beamr:wasm(), integer(), integer()) -> binary().
gather(W, Iovs, N) ->
    case iovecs(W, Iovs, N) of
        [] ->
            <<>>;
        [{B, L}] ->
            read(W, B, L);
        Bufs ->
            Lo = lists:min([B || {B, _} <- Bufs]),
            Hi = lists:max([B + L || {B, L} <- Bufs]),
            Total = lists:sum([L || {_, L} <- Bufs]),
            case Hi - Lo =< 2 * Total + 4096 of
                true ->
                    Span = read(W, Lo, Hi - Lo),
                    iolist_to_binary([binary:part(Span, B - Lo, L) || {B, L} <- Bufs]);
                false ->
                    iolist_to_binary([read(W, B, L) || {B, L} <- Bufs])
            end
    end.

%% @doc Writes `Data' across the buffers, in order, as far as it goes.
-spec scatter(hb_beamr:wasm(), [{non_neg_integer(), non_neg_integer()}], binary()) -> ok.
scatter(_W, [], _Data) ->
    ok;
scatter(_W, _Bufs, <<>>) ->
    ok;
scatter(W, [{B, L} | Rest], Data) ->
    Take = min(L, byte_size(Data)),
    <<Chunk:Take/binary, More/binary>> = Data,
    write(W, B, Chunk),
    scatter(W, Rest, More).
