%%% @doc Memory of hb_beamr instances: size, read, write, strings, and
%%% allocation through the module's own exported `malloc' and `free'.
%%%
%%% Every access is bounds-checked against the memory's current size (it can
%%% grow during calls, never shrink); offsets are 64-bit, for memory64
%%% modules. These functions may be used from inside an import function,
%%% while the instance is in a call.
-module(hb_beamr_io).
-compile({no_auto_import, [size/1]}).

-export([size/1, read/3, write/3]).
-export([read_string/2, read_string/3, write_string/2]).
-export([malloc/2, free/2]).

%% Offsets and lengths are unsigned 64-bit numbers.
-define(IS_U64(X), (is_integer(X) andalso X >= 0 andalso X =< 16#FFFFFFFFFFFFFFFF)).
%% read_string/2 reads this many bytes at a time, doubling up to the cap.
-define(STRING_CHUNK, 64).
-define(STRING_CHUNK_MAX, 65536).

%% @doc The size of the instance's linear memory, in bytes.
-spec size(hb_beamr:wasm()) -> {ok, non_neg_integer()} | {error, hb_beamr:error_reason()}.
size(WASM) when is_pid(WASM) ->
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, size, []));
size(_) ->
    {error, badarg}.

%% @doc Reads `Length' bytes at `Offset'. Out of bounds is
%% `{error, {out_of_bounds, #{offset, length, memory_size}}}'.
-spec read(hb_beamr:wasm(), non_neg_integer(), non_neg_integer()) ->
    {ok, binary()} | {error, hb_beamr:error_reason()}.
read(WASM, Offset, Length) when is_pid(WASM), ?IS_U64(Offset), ?IS_U64(Length) ->
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, read, [Offset, Length]));
read(_, _, _) ->
    {error, badarg}.

%% @doc Writes `Data' at `Offset'.
-spec write(hb_beamr:wasm(), non_neg_integer(), binary()) -> ok | {error, hb_beamr:error_reason()}.
write(WASM, Offset, Data) when is_pid(WASM), ?IS_U64(Offset), is_binary(Data) ->
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, write, [Offset, Data]));
write(_, _, _) ->
    {error, badarg}.

%% @doc Reads the NUL-terminated string at `Offset' (without the NUL).
-spec read_string(hb_beamr:wasm(), non_neg_integer()) ->
    {ok, binary()} | {error, hb_beamr:error_reason()}.
read_string(WASM, Offset) ->
    read_string(WASM, Offset, ?STRING_CHUNK).

%% @doc Reads the NUL-terminated string at `Offset', `ChunkSize' bytes at a
%% time at first. A string that runs to the end of memory without a NUL is
%% `{error, {unterminated_string, Offset}}'.
-spec read_string(hb_beamr:wasm(), non_neg_integer(), pos_integer()) ->
    {ok, binary()} | {error, hb_beamr:error_reason() | {unterminated_string, non_neg_integer()}}.
read_string(WASM, Offset, ChunkSize) when
    is_pid(WASM), ?IS_U64(Offset), is_integer(ChunkSize), ChunkSize > 0
->
    case size(WASM) of
        {ok, MemSize} -> read_string(WASM, Offset, Offset, ChunkSize, MemSize, []);
        Error -> Error
    end;
read_string(_, _, _) ->
    {error, badarg}.

read_string(_WASM, Start, At, _Chunk, MemSize, _Acc) when At >= MemSize ->
    case Start >= MemSize of
        true -> {error, {out_of_bounds, #{offset => Start, length => 1, memory_size => MemSize}}};
        false -> {error, {unterminated_string, Start}}
    end;
read_string(WASM, Start, At, Chunk, MemSize, Acc) ->
    Length = min(Chunk, MemSize - At),
    case read(WASM, At, Length) of
        {ok, Bytes} ->
            case binary:split(Bytes, <<0>>) of
                [Final, _] ->
                    {ok, iolist_to_binary(lists:reverse(Acc, [Final]))};
                [Part] ->
                    Next = min(Chunk * 2, ?STRING_CHUNK_MAX),
                    read_string(WASM, Start, At + Length, Next, MemSize, [Part | Acc])
            end;
        Error ->
            Error
    end.

%% @doc Allocates room for `Data' plus a NUL with the module's `malloc',
%% writes them, and returns the pointer.
-spec write_string(hb_beamr:wasm(), iodata()) ->
    {ok, non_neg_integer()} | {error, hb_beamr:error_reason() | malloc_failed}.
write_string(WASM, Data) when is_pid(WASM), (is_binary(Data) orelse is_list(Data)) ->
    try iolist_to_binary(Data) of
        Bytes -> write_new_string(WASM, <<Bytes/binary, 0>>)
    catch
        error:badarg -> {error, badarg}
    end;
write_string(_, _) ->
    {error, badarg}.

write_new_string(WASM, String) ->
    case malloc(WASM, byte_size(String)) of
        {ok, Ptr} ->
            case write(WASM, Ptr, String) of
                ok -> {ok, Ptr};
                Error -> Error
            end;
        Error ->
            Error
    end.

%% @doc Allocates `Size' bytes with the module's exported `malloc'. A null
%% pointer is `{error, malloc_failed}'.
-spec malloc(hb_beamr:wasm(), non_neg_integer()) ->
    {ok, non_neg_integer()} | {error, hb_beamr:error_reason() | malloc_failed}.
malloc(WASM, Size) when is_pid(WASM), is_integer(Size), Size >= 0 ->
    case hb_beamr:call(WASM, "malloc", [Size]) of
        {ok, [0]} -> {error, malloc_failed};
        {ok, [Ptr]} when is_integer(Ptr), Ptr < 0 -> {ok, Ptr band 16#FFFFFFFF};
        {ok, [Ptr]} when is_integer(Ptr) -> {ok, Ptr};
        {ok, Other} -> {error, {invalid_import_response, Other}};
        {error, Reason} -> {error, Reason};
        Error -> Error
    end;
malloc(_, _) ->
    {error, badarg}.

%% @doc Frees a pointer with the module's exported `free'.
-spec free(hb_beamr:wasm(), non_neg_integer()) -> ok | {error, hb_beamr:error_reason()}.
free(WASM, Ptr) when is_pid(WASM), is_integer(Ptr) ->
    case hb_beamr:call(WASM, "free", [Ptr]) of
        {ok, _} -> ok;
        {error, Reason} -> {error, Reason};
        Error -> Error
    end;
free(_, _) ->
    {error, badarg}.

