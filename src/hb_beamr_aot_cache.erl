%%% @doc The compile cache behind `start(Bytecode, aot)': bytecode given in
%%% `aot' mode is compiled with {@link hb_beamr:compile/1} once, and the
%%% sealed AOT file is kept in memory (the last 16) and on disk, in
%%% `<cache_dir>/aot/<key>.aot' (application env `cache_dir', default
%%% `filename:basedir(user_cache, "hb_beamr")').
%%%
%%% The key is a SHA-256 of the module, the compile options, the runtime and
%%% compiler version, this CPU (model and features) and this node's sealing
%%% key. Concurrent starts of the same module wait for one compilation. A
%%% file on disk is only used after its seal checks (hb_beamr_aot), so an
%%% altered cache file is refused, not loaded.
-module(hb_beamr_aot_cache).
-behaviour(gen_server).
-export([compiled/1, compiled/2, stats/0, forget/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(SERVER, ?MODULE).
-define(MEMORY_ENTRIES, 16).
%% Changes whenever the compiler's output would (WAMR, hb_beamr_eh, the
%% target tag: 2 records the feature string given to LLVM).
-define(VERSION, <<"hb_beamr aot cache 2; WAMR 2.4.3; hb_beamr_eh 1">>).

-record(state, {
    memory = #{} :: #{binary() => {binary(), integer()}},
    pending = #{} :: #{binary() => [gen_server:from()]},
    compiles = 0 :: non_neg_integer(),
    hits = 0 :: non_neg_integer()
}).

%% @equiv compiled(Wasm, #{})
-spec compiled(binary()) -> {ok, binary()} | {error, term()}.
compiled(Wasm) ->
    compiled(Wasm, #{}).

%% @doc The sealed AOT file for bytecode `Wasm' compiled with
%% `CompileOpts' ({@link hb_beamr:compile/2}), compiled at most once.
-spec compiled(binary(), hb_beamr:compile_opts()) -> {ok, binary()} | {error, term()}.
compiled(Wasm, CompileOpts) ->
    case hb_beamr_seal:key() of
        {ok, SealKey} ->
            Key = key(Wasm, CompileOpts, SealKey),
            try
                gen_server:call(server(), {get, Key, Wasm, CompileOpts}, infinity)
            catch
                exit:Reason -> {error, {compile_failed, {cache, Reason}}}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Compilations run and hits served (memory or disk) so far.
-spec stats() -> #{compiles := non_neg_integer(), hits := non_neg_integer()}.
stats() ->
    gen_server:call(server(), stats).

%% @doc Empties the in-memory cache (the disk cache stays).
-spec forget() -> ok.
forget() ->
    gen_server:call(server(), forget).

server() ->
    case whereis(?SERVER) of
        undefined ->
            case gen_server:start({local, ?SERVER}, ?MODULE, [], []) of
                {ok, Pid} -> Pid;
                {error, {already_started, Pid}} -> Pid
            end;
        Pid ->
            Pid
    end.

key(Wasm, CompileOpts, SealKey) ->
    Options = lists:sort(maps:to_list(CompileOpts)),
    Context = term_to_binary({?VERSION, Options, cpu(), crypto:hash(sha256, SealKey)}),
    binary:encode_hex(crypto:hash(sha256, [crypto:hash(sha256, Wasm), Context])).

%% This CPU: what the compiled code may assume (compile/1 targets the host).
cpu() ->
    case persistent_term:get({?MODULE, cpu}, undefined) of
        undefined ->
            Info = case file:read_file("/proc/cpuinfo") of
                {ok, Text} ->
                    Lines = binary:split(Text, <<"\n">>, [global]),
                    [L || L <- Lines, is_cpu_line(L)];
                {error, _} ->
                    []
            end,
            Cpu = {erlang:system_info(system_architecture), lists:usort(Info)},
            persistent_term:put({?MODULE, cpu}, Cpu),
            Cpu;
        Cpu ->
            Cpu
    end.

is_cpu_line(Line) ->
    lists:any(fun(P) -> binary:longest_common_prefix([Line, P]) =:= byte_size(P) end,
              [<<"model name">>, <<"flags">>, <<"Features">>, <<"CPU part">>]).

path(Key) ->
    filename:join([cache_dir(), "aot", <<Key/binary, ".aot">>]).

cache_dir() ->
    case application:get_env(hb_beamr, cache_dir) of
        {ok, Dir} when is_list(Dir); is_binary(Dir) -> Dir;
        _ -> filename:basedir(user_cache, "hb_beamr")
    end.

%% @private
-spec init([]) -> {ok, #state{}}.
init([]) ->
    {ok, #state{}}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) ->
    {reply, term(), #state{}} | {noreply, #state{}}.
handle_call({get, Key, Wasm, CompileOpts}, From, S = #state{memory = Memory, pending = Pending}) ->
    case Memory of
        #{Key := {Aot, _}} ->
            {reply, {ok, Aot}, S#state{hits = S#state.hits + 1}};
        #{} ->
            case Pending of
                #{Key := Waiters} ->
                    {noreply, S#state{pending = Pending#{Key := [From | Waiters]}}};
                #{} ->
                    Server = self(),
                    Path = path(Key),
                    _ = spawn(fun() -> Server ! {done, Key, safe_fetch(Path, Wasm, CompileOpts)} end),
                    {noreply, S#state{pending = Pending#{Key => [From]}}}
            end
    end;
handle_call(stats, _From, S) ->
    {reply, #{compiles => S#state.compiles, hits => S#state.hits}, S};
handle_call(forget, _From, S) ->
    {reply, ok, S#state{memory = #{}}};
handle_call(_, _From, S) ->
    {reply, {error, badarg}, S}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_, S) ->
    {noreply, S}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({done, Key, {How, Result}}, S = #state{pending = Pending}) ->
    {Waiters, Rest} = maps:take(Key, Pending),
    [gen_server:reply(W, Result) || W <- Waiters],
    S1 = case How of
        compiled -> S#state{compiles = S#state.compiles + 1};
        disk -> S#state{hits = S#state.hits + length(Waiters)}
    end,
    S2 = case Result of
        {ok, Aot} -> remember(Key, Aot, S1);
        {error, _} -> S1
    end,
    {noreply, S2#state{pending = Rest}};
handle_info(_, S) ->
    {noreply, S}.

remember(Key, Aot, S = #state{memory = Memory}) ->
    Memory1 = Memory#{Key => {Aot, erlang:unique_integer([monotonic])}},
    Memory2 = case map_size(Memory1) > ?MEMORY_ENTRIES of
        true ->
            {Oldest, _} = lists:foldl(
                fun({K, {_, Seq}}, {_, Min}) when Seq < Min -> {K, Seq}; (_, Acc) -> Acc end,
                {none, infinity}, maps:to_list(Memory1)),
            maps:remove(Oldest, Memory1);
        false ->
            Memory1
    end,
    S#state{memory = Memory2}.

%% Whatever happens, the waiters get an answer.
safe_fetch(Path, Wasm, CompileOpts) ->
    try
        fetch(Path, Wasm, CompileOpts)
    catch
        Class:Reason -> {compiled, {error, {compile_failed, {Class, Reason}}}}
    end.

%% Runs outside the server: the file on disk if its seal checks, else a
%% compilation (written to disk for next time).
fetch(Path, Wasm, CompileOpts) ->
    case file:read_file(Path) of
        {ok, Sealed} ->
            case hb_beamr_seal:open(Sealed, false) of
                {ok, _} -> {disk, {ok, Sealed}};
                {error, _} -> compile(Path, Wasm, CompileOpts)
            end;
        {error, _} ->
            compile(Path, Wasm, CompileOpts)
    end.

compile(Path, Wasm, CompileOpts) ->
    case hb_beamr_compile:compile(Wasm, CompileOpts) of
        {ok, Sealed} ->
            _ = store(Path, Sealed),
            {compiled, {ok, Sealed}};
        {error, _} = Error ->
            {compiled, Error}
    end.

%% Best effort: a cache that cannot be written still serves from memory.
store(Path, Bin) ->
    Tmp = iolist_to_binary([Path, ".", integer_to_list(erlang:unique_integer([positive])), ".tmp"]),
    case filelib:ensure_dir(Path) of
        ok ->
            case file:write_file(Tmp, Bin) of
                ok -> file:rename(Tmp, Path);
                Error -> _ = file:delete(Tmp), Error
            end;
        Error ->
            Error
    end.
