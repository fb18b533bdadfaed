%%% @doc The compile cache behind `start(Bytecode, aot)': bytecode given in
%%% `aot' mode is compiled with {@link hb_beamr:compile/1} once, and the
%%% sealed AOT file is kept in memory (the last 16) and on disk, in
%%% `<cache_dir>/aot/<key>.aot' (application env `cache_dir', default
%%% `filename:basedir(user_cache, "hb_beamr")').
%%%
%%% The key is a SHA-256 of the module, the compile options, the runtime and
%%% compiler version, this CPU (model and features) and this node's sealing
%%% key. Concurrent starts of the same module wait for one compilation.
%%%
%%% Files on disk are attacker's input. A cache file's seal binds the
%%% source module's SHA-256, the compile options and the key
%%% ({@link hb_beamr_seal:seal/2}); a file is used only if its seal checks
%%% and binds exactly what was looked up. Anything else at `<key>.aot' (an
%%% altered file, another module's file copied over it, a file sealed
%%% before seals had bindings, a symlink, a file larger than the budget) is
%%% compiled again and replaced, never loaded; each such refusal is logged
%%% (a warning, a notice for old unbound files) and counted in
%%% {@link stats/0}.
%%%
%%% The disk cache has a size budget, application env
%%% `aot_cache_max_bytes' (bytes, default 1 GiB; `infinity'; `0' keeps
%%% nothing on disk): after a file is written, the least recently used
%%% entries (by mtime, which a hit renews) are deleted until the entries fit.
%%% Only regular files named `<64 hex digits>.aot' directly in
%%% `<cache_dir>/aot' are entries: nothing else is counted or deleted,
%%% symlinks are never followed, and a `<cache_dir>/aot' that is itself a
%%% symlink is not evicted from. {@link clear/0} deletes every entry.
%%%
%%% The cache is a process registered as `hb_beamr_aot_cache': a child of
%%% hb_beamr_sup when the hb_beamr application is started (restarted if it
%%% crashes), else started on first use, unsupervised, so that the library
%%% works without the application (see hb_beamr_app).
-module(hb_beamr_aot_cache).
-behaviour(gen_server).
-export([compiled/1, compiled/2, compiled/3, stats/0, forget/0, clear/0, max_bytes/0, start_link/0]).
-export([generation/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-include_lib("kernel/include/file.hrl").

-define(SERVER, ?MODULE).
-define(MEMORY_ENTRIES, 16).
%% Refusals are logged whatever `log_events' says, under hb_beamr's domain.
-define(LOG_META, #{domain => [hb_beamr, aot_cache]}).
%% Changes whenever the compiler's output would (WAMR, hb_beamr_eh, the
%% target tag: 2 records the feature string given to LLVM; 3: a metered
%% module's fuel counter is kept in a register, hb_wamr_build's
%% patch/fuel_register.rs).
-define(VERSION, <<"hb_beamr aot cache 3; WAMR 2.4.3; hb_beamr_eh 1">>).

-type refusal() :: altered | mismatched | unbound | not_regular | too_large.
%% Why a file at an entry's path was not used: its seal does not check
%% (`altered'), it is sealed for another module or options (`mismatched'),
%% its seal binds nothing (`unbound', made before seals had bindings), it
%% is not a regular file (`not_regular') or is larger than the budget
%% (`too_large').
-type stats() :: #{compiles := non_neg_integer(),
                   hits := non_neg_integer(),
                   refused := #{refusal() => pos_integer()},
                   evicted := non_neg_integer()}.
-export_type([refusal/0, stats/0]).

-record(state, {
    memory = #{} :: #{binary() => {binary(), integer()}},
    pending = #{} :: #{binary() => [gen_server:from()]},
    compiles = 0 :: non_neg_integer(),
    hits = 0 :: non_neg_integer(),
    refused = #{} :: #{refusal() => pos_integer()},
    evicted = 0 :: non_neg_integer()
}).

%% What a worker needs to fetch or compile one entry.
-type job() :: #{key := binary(), wasm := binary(), opts := hb_beamr:compile_opts(),
                 dir := file:filename_all(), max := non_neg_integer() | infinity,
                 binding := hb_beamr_seal:binding()}.

%% @equiv compiled(Wasm, #{})
-spec compiled(binary()) -> {ok, binary()} | {error, term()}.
compiled(Wasm) ->
    compiled(Wasm, #{}).

%% @equiv compiled(Wasm, CompileOpts, infinity)
-spec compiled(binary(), hb_beamr:compile_opts()) -> {ok, binary()} | {error, term()}.
compiled(Wasm, CompileOpts) ->
    compiled(Wasm, CompileOpts, infinity).

%% @doc The sealed AOT file for bytecode `Wasm' compiled with
%% `CompileOpts' ({@link hb_beamr:compile/2}), compiled at most once,
%% waited for at most `Timeout' milliseconds (key and all). Past the
%% timeout it is `{error, timeout}': the compilation is not cancelled, it
%% goes on in the background and fills the cache for the next lookup.
%% Errors: the compiler's, `timeout', `{invalid_option, {Name, Value}}' for
%% a bad `cache_dir', `aot_key' or `aot_cache_max_bytes', the sealing
%% key's ({@link hb_beamr_seal:key/0}).
-spec compiled(binary(), hb_beamr:compile_opts(), timeout()) -> {ok, binary()} | {error, term()}.
compiled(Wasm, CompileOpts, infinity) when is_binary(Wasm), is_map(CompileOpts) ->
    lookup(Wasm, CompileOpts);
compiled(Wasm, CompileOpts, Timeout) when
    is_binary(Wasm), is_map(CompileOpts), is_integer(Timeout), Timeout >= 0
->
    % The whole lookup (the key too: hashing the module, reading the key
    % file, loading crypto on first use) runs in a helper, so that the
    % caller returns on time. A helper still waiting at the deadline goes
    % on (the compilation is queued and fills the cache); its answer then
    % goes to an alias that is no more, and is dropped.
    Alias = alias([reply]),
    % Unlinked on purpose: past the deadline it goes on to fill the cache
    % (proc_lib: a crash would be logged).
    _ = proc_lib:spawn(fun() ->
        Result = try lookup(Wasm, CompileOpts)
                 catch Class:Reason -> {error, {compile_failed, {cache, {Class, Reason}}}}
                 end,
        Alias ! {Alias, Result}
    end),
    receive
        {Alias, Result} -> Result
    after Timeout ->
        _ = unalias(Alias),
        receive
            {Alias, Result} -> Result
        after 0 ->
            {error, timeout}
        end
    end;
compiled(_, _, _) ->
    {error, badarg}.

lookup(Wasm, CompileOpts) ->
    case config() of
        {ok, SealKey, Dir, Max} ->
            Key = key(Wasm, CompileOpts, SealKey),
            Job = #{key => Key, wasm => Wasm, opts => CompileOpts, dir => Dir, max => Max,
                    binding => binding(Key, Wasm, CompileOpts)},
            try
                call({get, Job}, infinity)
            catch
                exit:Reason -> {error, {compile_failed, {cache, Reason}}}
            end;
        {error, _} = Error ->
            Error
    end.

%% A call to the cache process; once more if it was gone when asked (it
%% had just crashed: server/0 waits for its restart).
call(Request, Timeout) ->
    try
        gen_server:call(server(), Request, Timeout)
    catch
        exit:{noproc, _} -> gen_server:call(server(), Request, Timeout)
    end.

%% @doc Compilations run, hits served (memory or disk), files on disk
%% refused (by reason, see {@link refusal()}) and entries evicted so far.
-spec stats() -> stats().
stats() ->
    call(stats, infinity).

%% @doc Empties the in-memory cache (the disk cache stays).
-spec forget() -> ok.
forget() ->
    new_generation(),
    call(forget, infinity).

%% @doc Empties the cache, in memory and on disk: deletes every entry of
%% `<cache_dir>/aot' (and the temporary files of entries being written),
%% nothing else. A compilation under way when it runs may still write its
%% entry afterwards.
-spec clear() -> ok | {error, term()}.
clear() ->
    new_generation(),
    call(clear, infinity).

%% @doc Changes with every forget/0 and clear/0: what was remembered of an
%% earlier generation's files (hb_beamr_aot's memo of the file a binary
%% got) is asked for again.
-spec generation() -> non_neg_integer().
generation() ->
    persistent_term:get({?MODULE, generation}, 0).

new_generation() ->
    persistent_term:put({?MODULE, generation}, generation() + 1).

%% @doc The disk cache's budget in bytes: application env
%% `aot_cache_max_bytes', a non-negative integer or `infinity', default
%% 1 GiB (1073741824). 0 keeps nothing on disk.
-spec max_bytes() -> {ok, non_neg_integer() | infinity}
                   | {error, {invalid_option, {aot_cache_max_bytes, term()}}}.
max_bytes() ->
    hb_beamr_opts:max_bytes().

config() ->
    case hb_beamr_opts:cache() of
        {ok, #{cache_dir := Dir, aot_cache_max_bytes := Max}} ->
            case hb_beamr_seal:key() of
                {ok, SealKey} -> {ok, SealKey, Dir, Max};
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Starts the cache under hb_beamr_sup (the hb_beamr application). A
%% cache started on demand before the application (unsupervised, by its
%% first use) is stopped first, and this one takes its name; its
%% callers waiting for a compilation get an error.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    case gen_server:start_link({local, ?SERVER}, ?MODULE, [], []) of
        {error, {already_started, Standalone}} ->
            try gen_server:stop(Standalone, normal, 5000) catch exit:_ -> ok end,
            gen_server:start_link({local, ?SERVER}, ?MODULE, [], []);
        Started ->
            Started
    end.

%% The cache process. With the application started, it is hb_beamr_sup's
%% child: if it is not there, the supervisor is restarting it, and a call to
%% the supervisor returns once that is done. Without the application (an
%% escript, a node with only hb_beamr's code path), the first use starts it
%% unsupervised, linked to nothing; starting the application takes over.
server() ->
    case whereis(?SERVER) of
        undefined ->
            case whereis(hb_beamr_sup) of
                undefined ->
                    standalone();
                Sup ->
                    _ = try supervisor:count_children(Sup) catch exit:_ -> [] end,
                    case whereis(?SERVER) of
                        undefined -> standalone();
                        Pid -> Pid
                    end
            end;
        Pid ->
            Pid
    end.

standalone() ->
    case gen_server:start({local, ?SERVER}, ?MODULE, [], []) of
        {ok, Pid} -> Pid;
        {error, {already_started, Pid}} -> Pid
    end.

key(Wasm, CompileOpts, SealKey) ->
    % A metered module's code depends on the cost table too.
    Options = case CompileOpts of
        #{metered := true} -> [{meter_version, hb_beamr_nif:meter_version()}];
        _ -> []
    end ++ lists:sort(maps:to_list(CompileOpts)),
    Context = term_to_binary({?VERSION, Options, cpu(), crypto:hash(sha256, SealKey)}),
    binary:encode_hex(crypto:hash(sha256, [crypto:hash(sha256, Wasm), Context])).

%% What a cache file's seal says it is: checked against the lookup before
%% the file is used.
binding(Key, Wasm, CompileOpts) ->
    #{cache => ?VERSION, key => Key, source => crypto:hash(sha256, Wasm),
      options => lists:sort(maps:to_list(CompileOpts))}.

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

aot_dir(Dir) ->
    filename:join(Dir, "aot").

path(#{dir := Dir, key := Key}) ->
    filename:join(aot_dir(Dir), <<Key/binary, ".aot">>).

%% @private
-spec init([]) -> {ok, #state{}}.
init([]) ->
    {ok, #state{}}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) ->
    {reply, term(), #state{}} | {noreply, #state{}}.
handle_call({get, Job = #{key := Key}}, From, S = #state{memory = Memory, pending = Pending}) ->
    case Memory of
        #{Key := {Aot, _}} ->
            {reply, {ok, Aot}, S#state{hits = S#state.hits + 1}};
        #{} ->
            case Pending of
                #{Key := Waiters} ->
                    {noreply, S#state{pending = Pending#{Key := [From | Waiters]}}};
                #{} ->
                    Server = self(),
                    % Not linked: safe_fetch/1 turns every failure into an
                    % answer, and the server never dies of a fetch.
                    _ = proc_lib:spawn(fun() -> Server ! {done, Key, safe_fetch(Job)} end),
                    {noreply, S#state{pending = Pending#{Key => [From]}}}
            end
    end;
handle_call(stats, _From, S) ->
    {reply, #{compiles => S#state.compiles, hits => S#state.hits,
              refused => S#state.refused, evicted => S#state.evicted}, S};
handle_call(forget, _From, S) ->
    {reply, ok, S#state{memory = #{}}};
handle_call(clear, _From, S) ->
    Reply = case hb_beamr_opts:cache_dir() of
        {ok, Dir} -> delete_all(aot_dir(Dir));
        {error, _} = Error -> Error
    end,
    {reply, Reply, S#state{memory = #{}}};
handle_call(_, _From, S) ->
    {reply, {error, badarg}, S}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_, S) ->
    {noreply, S}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({done, Key, {How, Result, Events}}, S = #state{pending = Pending}) ->
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
    S3 = case Events of
        #{refused := Why} -> S2#state{refused = maps:update_with(Why, fun(N) -> N + 1 end, 1, S2#state.refused)};
        #{} -> S2
    end,
    {noreply, S3#state{pending = Rest, evicted = S3#state.evicted + maps:get(evicted, Events, 0)}};
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
safe_fetch(Job) ->
    try
        fetch(Job)
    catch
        Class:Reason -> {compiled, {error, {compile_failed, {Class, Reason}}}, #{}}
    end.

%% Runs outside the server: the file on disk if its seal checks and binds
%% this lookup, else a compilation (written to disk for next time).
-spec fetch(job()) -> {disk | compiled, {ok, binary()} | {error, term()}, map()}.
fetch(#{max := 0} = Job) ->
    compile(Job, #{});
fetch(Job = #{binding := Binding}) ->
    Path = path(Job),
    case read_entry(Path, Job) of
        none ->
            compile(Job, #{});
        {refuse, Why} ->
            refused(Path, Why, Job);
        {ok, Sealed} ->
            case hb_beamr_seal:verify(Sealed) of
                {ok, _, Binding} ->
                    touch(Path),
                    {disk, {ok, Sealed}, #{}};
                {ok, _, unbound} ->
                    refused(Path, unbound, Job);
                {ok, _, Other} ->
                    refused(Path, {mismatched, Other}, Job);
                {error, {invalid_aot, _}} ->
                    refused(Path, altered, Job)
            end
    end.

read_entry(Path, #{max := Max}) ->
    case file:read_link_info(Path) of
        {ok, #file_info{type = regular, size = Size}} when Max =:= infinity; Size =< Max ->
            read_at_most(Path, Size);
        {ok, #file_info{type = regular}} ->
            {refuse, too_large};
        {ok, #file_info{}} ->
            {refuse, not_regular};
        {error, _} ->
            none
    end.

%% No more than the size checked (the file may have grown since).
read_at_most(Path, Size) ->
    case file:open(Path, [read, raw, binary]) of
        {ok, Fd} ->
            try file:read(Fd, Size + 1) of
                {ok, Sealed} when byte_size(Sealed) =:= Size -> {ok, Sealed};
                {ok, _} -> {refuse, altered};
                eof -> {refuse, altered};
                {error, _} -> none
            after
                _ = file:close(Fd)
            end;
        {error, _} ->
            none
    end.

refused(Path, {mismatched, Other}, Job) ->
    logger:warning("hb_beamr: AOT cache file ~ts is sealed for another module or options "
                   "(source ~ts, options ~p): not loaded, compiling again",
                   [Path, hex(maps:get(source, Other, <<>>)), maps:get(options, Other, unknown)],
                   ?LOG_META),
    compile(Job, #{refused => mismatched});
refused(Path, unbound, Job) ->
    logger:notice("hb_beamr: AOT cache file ~ts has an old seal (no binding): compiling again", [Path],
                  ?LOG_META),
    compile(Job, #{refused => unbound});
refused(Path, Why, Job) ->
    logger:warning("hb_beamr: AOT cache file ~ts refused (~p): not loaded, compiling again", [Path, Why],
                   ?LOG_META),
    compile(Job, #{refused => Why}).

hex(Bin) when is_binary(Bin) -> binary:encode_hex(Bin);
hex(_) -> <<"?">>.

%% A hit makes the entry the most recently used.
touch(Path) ->
    Now = os:system_time(second),
    _ = file:write_file_info(Path, #file_info{mtime = Now, atime = Now}, [{time, posix}]),
    ok.

%% Compiles and seals with the binding (hb_beamr_compile's seal binds
%% nothing: it is checked, then replaced).
compile(Job = #{wasm := Wasm, opts := CompileOpts, binding := Binding}, Events) ->
    Result =
        case hb_beamr_compile:compile(Wasm, CompileOpts) of
            {ok, Sealed1} ->
                case hb_beamr_seal:open(Sealed1, false) of
                    {ok, Aot} -> hb_beamr_seal:seal(Aot, Binding);
                    {error, _} = Error -> Error
                end;
            {error, _} = Error ->
                Error
        end,
    case Result of
        {ok, Sealed} -> {compiled, Result, Events#{evicted => store(Job, Sealed)}};
        {error, _} -> {compiled, Result, Events}
    end.

%% Best effort: a cache that cannot be written still serves from memory.
%% Then the least recently used entries go until the cache fits its budget;
%% the number deleted.
store(#{max := Max}, Bin) when Max =/= infinity, byte_size(Bin) > Max ->
    0;
store(Job = #{dir := Dir, max := Max}, Bin) ->
    Path = path(Job),
    Tmp = iolist_to_binary([Path, ".", integer_to_list(erlang:unique_integer([positive])), ".tmp"]),
    case filelib:ensure_dir(Path) of
        ok ->
            case file:write_file(Tmp, Bin, [exclusive]) of
                ok ->
                    case file:rename(Tmp, Path) of
                        ok -> evict(aot_dir(Dir), Max, filename:basename(Path));
                        {error, _} -> _ = file:delete(Tmp), 0
                    end;
                {error, _} ->
                    _ = file:delete(Tmp),
                    0
            end;
        {error, _} ->
            0
    end.

evict(_AotDir, infinity, _Keep) ->
    0;
evict(AotDir, Max, Keep) ->
    Entries = entries(AotDir),
    Total = lists:sum([Size || {_, _, Size} <- Entries]),
    Oldest = lists:sort([{Mtime, Name, Size} || {Mtime, Name, Size} <- Entries, Name =/= Keep]),
    evict(AotDir, Oldest, Total, Max, 0).

evict(_AotDir, _, Total, Max, Deleted) when Total =< Max ->
    Deleted;
evict(_AotDir, [], _Total, _Max, Deleted) ->
    Deleted;
evict(AotDir, [{_, Name, Size} | Rest], Total, Max, Deleted) ->
    case file:delete(filename:join(AotDir, Name)) of
        ok -> evict(AotDir, Rest, Total - Size, Max, Deleted + 1);
        {error, _} -> evict(AotDir, Rest, Total - Size, Max, Deleted)
    end.

%% The cache entries in `AotDir' as `{Mtime, Name, Size}': regular files
%% (lstat: symlinks are not entries, nor followed) named `<key>.aot'; none
%% if `AotDir' itself is not a directory (a symlink to one included).
entries(AotDir) ->
    [{Mtime, Name, Size} || {entry, Name} <- names(AotDir),
                            {ok, #file_info{type = regular, mtime = Mtime, size = Size}}
                                <- [file:read_link_info(filename:join(AotDir, Name), [{time, posix}])]].

%% The names in `AotDir' that are entries' or their temporary files'.
names(AotDir) ->
    case file:read_link_info(AotDir) of
        {ok, #file_info{type = directory}} ->
            case file:list_dir_all(AotDir) of
                {ok, Names} -> [{kind(name_binary(N)), name_binary(N)} || N <- Names];
                {error, _} -> []
            end;
        _ ->
            []
    end.

name_binary(Name) when is_binary(Name) -> Name;
name_binary(Name) ->
    case unicode:characters_to_binary(Name) of
        Bin when is_binary(Bin) -> Bin;
        _ -> <<>>
    end.

%% `<64 hex digits>.aot' is an entry, `<64 hex digits>.aot.<digits>.tmp'
%% one being written; nothing else is the cache's.
kind(<<Key:64/binary, ".aot">>) ->
    case is_hex(Key) of true -> entry; false -> other end;
kind(<<Key:64/binary, ".aot.", Rest/binary>>) ->
    case {is_hex(Key), binary:split(Rest, <<".">>)} of
        {true, [Digits, <<"tmp">>]} when Digits =/= <<>> ->
            case lists:all(fun(C) -> C >= $0 andalso C =< $9 end, binary_to_list(Digits)) of
                true -> tmp;
                false -> other
            end;
        _ ->
            other
    end;
kind(_) ->
    other.

is_hex(Bin) ->
    lists:all(fun(C) -> (C >= $0 andalso C =< $9) orelse (C >= $A andalso C =< $F) end,
              binary_to_list(Bin)).

%% clear/0: every entry and temporary file (regular files only).
delete_all(AotDir) ->
    _ = [file:delete(filename:join(AotDir, Name))
         || {Kind, Name} <- names(AotDir), Kind =/= other,
            {ok, #file_info{type = regular}} <- [file:read_link_info(filename:join(AotDir, Name))]],
    ok.
