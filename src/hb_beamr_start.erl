%%% @private
%%% @doc Starting instances: options, the process that names an instance
%%% (and keeps what it was started from, for migrate), starts on other
%%% nodes, and stopping.
-module(hb_beamr_start).

-export([options/1, start_here/5, start_remote/4, start_for/4, origin/1, stop/1]).
%% The instance process: spawned by proc_lib, woken by proc_lib:hibernate/3.
-export([starting/2, worker/1]).

-include("include/hb.hrl").

-define(KIB, 1024).
-define(MIB, (1024 * 1024)).

%% @doc Starts an instance on this node, watched by `Watcher' until its
%% start has returned (see {@link hb_beamr:start/3}).
-spec start_here(binary(), hb_beamr:mode(), map(), tuple(), pid()) -> term().
start_here(WasmBinary, Mode, Opts, {{Limits, Rewrites, Snapshot}, Serve, Timeout}, Watcher) ->
    % A fork's image: given, or made here of a snapshot (one copy of its
    % memory, into the memfd forks map).
    case image(Snapshot) of
        {ok, Image} ->
            start_with_image(WasmBinary, Mode, Opts, {{Limits, Rewrites, Image}, Serve, Timeout}, Watcher);
        {error, _} = Error ->
            Error
    end.

image(none) -> {ok, none};
image(Image) when is_reference(Image) -> {ok, Image};
image(Snapshot) -> hb_beamr_nif:guarded(fun() -> hb_beamr_nif:image(Snapshot) end).

%% The start, its image (if any) made.
start_with_image(WasmBinary, Mode, Opts, {Limits, Serve, Timeout}, Watcher) ->
    % The timeout bounds the whole start: a compile (bytecode in `aot'
    % mode) spends from it, and instantiation gets what is left.
    Deadline = deadline(Timeout),
    % What the instance was started from, for migrate/2 and fork/1 (a
    % fork's own state is not where it starts from).
    Origin = {WasmBinary, Mode, maps:without([import_fun, state, timeout, snapshot], Opts)},
    % (with `fuel', migrate/2 starts the new instance metered; the restore
    % then brings the counter over.)
    % AOT: the seal checked, or bytecode compiled (hb_beamr_aot).
    case hb_beamr_aot:prepare(WasmBinary, Mode, Opts, remaining(Deadline)) of
        {ok, Loadable, _} ->
            hb_beamr_call:with_timeout(
                fun(Report) -> start_instance(Loadable, Mode, Limits, Serve, {Watcher, Origin}, Report) end,
                remaining(Deadline),
                fun(WASM) -> stop(WASM) end
            );
        {error, _} = Error ->
            Error
    end.

deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

%% Starts the instance on `Node' (the module's bytes travel once); the
%% instance there watches this process until its start has returned here.
-spec start_remote(node(), binary(), hb_beamr:mode(), map()) -> term().
start_remote(Node, WasmBinary, Mode, Opts) ->
    try
        erpc:call(Node, ?MODULE, start_for, [WasmBinary, Mode, Opts, self()])
    catch
        error:{erpc, noconnection} -> {error, {nodedown, Node}};
        error:{exception, undef, _} -> {error, {hb_beamr_not_loaded, Node}};
        error:{erpc, Reason} -> {error, {erpc, Reason}}
    end.

%% @private Starts an instance on this node for `Watcher' (another node's
%% process: see {@link start/3}'s `node' option).
-spec start_for(binary(), hb_beamr:mode(), hb_beamr:start_opts(), pid()) -> term().
start_for(WasmBinary, Mode, Opts, Watcher) ->
    case options(Opts) of
        {ok, Limits, Serve, Timeout, _} -> start_here(WasmBinary, Mode, Opts, {Limits, Serve, Timeout}, Watcher);
        {error, _} = Error -> Error
    end.

%% Starts the instance from the calling process. The instance's pid is
%% reported at once (`Report'), so that a timeout can stop it; the worker
%% process watches `Watcher' until the start has returned to it, so that a
%% starter killed meanwhile leaves nothing behind.
start_instance(WasmBinary, Mode, {Limits, Rewrites, Image}, Serve, {Watcher, Origin}, Report) ->
    WASM = proc_lib:spawn(?MODULE, starting, [Watcher, Origin]),
    Report(WASM),
    Id = hb_beamr_nif:guarded(fun() ->
        hb_beamr_nif:start(WASM, WasmBinary, Mode, module_bounds(Limits), Serve =/= none, Rewrites,
                           Image)
    end),
    case is_integer(Id) of
        true ->
            {ImportFun, State} =
                case Serve of
                    none -> {zeros, #{}};
                    _ -> Serve
                end,
            started(WASM, Serve, Watcher, hb_beamr_call:await_start(WASM, Id, ImportFun, State));
        false ->
            ok = stop(WASM),
            Id
    end.

%% The instance's limits with the bounds of the shared-module registry and
%% whether to share at all (application env `module_sharing', default true;
%% read at every start, so a change applies to the next).
module_bounds({MaxMemory, WasmStack, NativeStack}) ->
    Max = bound(module_cache_max_bytes, 1024 * ?MIB),
    Idle = bound(module_cache_idle_bytes, 64 * ?MIB),
    Share = application:get_env(hb_beamr, module_sharing, true) =/= false,
    {MaxMemory, WasmStack, NativeStack, {Max, Idle, Share}}.

bound(Key, Default) ->
    case application:get_env(hb_beamr, Key, Default) of
        N when is_integer(N), N >= 0 -> N;
        infinity -> 1 bsl 63;
        _ -> Default
    end.

started(WASM, Serve, Watcher, {started, Imports, Exports, State}) ->
    ?event({wasm_init_success, WASM}),
    WASM ! {hb_beamr_started, Watcher},
    case Serve of
        none -> {ok, WASM, Imports, Exports};
        _ -> {ok, WASM, Imports, Exports, State}
    end;
started(WASM, _Serve, _Watcher, Error) ->
    ok = stop(WASM),
    Error.

%% @doc start/3's options (checked by {@link hb_beamr_opts:start/1}):
%% `{ok, {Limits, Deterministic}, Serve, Timeout, Node}' or
%% `{error, {invalid_option, {Name, Value}}}'.
-spec options(map()) -> {ok, term(), none | {hb_beamr:import_fun(), term()}, timeout(), node()} | {error, term()}.
options(Opts) ->
    case hb_beamr_opts:start(Opts) of
        {ok, #{max_memory := MaxMemory, wasm_stack := WasmStack, native_stack := NativeStack,
               import_fun := ImportFun, state := State, timeout := Timeout,
               deterministic := Deterministic, node := Node, fuel := Fuel,
               snapshot := Snapshot}} ->
            % The rewrites: NaNs, and metering with the start fuel (-1: none).
            Metering = case Fuel of
                none -> -1;
                _ -> Fuel
            end,
            Limits = {{MaxMemory, WasmStack, NativeStack}, {Deterministic, Metering}, Snapshot},
            Serve = case ImportFun of
                none -> none;
                _ -> {ImportFun, State}
            end,
            {ok, Limits, Serve, Timeout, Node};
        {error, _} = Error ->
            Error
    end.

%% @doc The process that names an instance (started with proc_lib, so a
%% crash is reported as OTP's are). The instance lives in the NIF,
%% which watches this process and stops the instance when it exits; the
%% process only keeps what the instance was started from (the module's
%% binary is shared, not copied), for migrate/2. Until its start has
%% returned, it watches the starter: a starter killed meanwhile takes the
%% instance with it.
-spec starting(pid(), {binary(), hb_beamr:mode(), map()}) -> ok.
starting(Watcher, Origin) ->
    Ref = erlang:monitor(process, Watcher),
    receive
        {hb_beamr_started, Watcher} ->
            erlang:demonitor(Ref, [flush]),
            % It only waits now, mostly for years: hibernating leaves it the
            % smallest heap (RSS per instance, issue 26).
            proc_lib:hibernate(?MODULE, worker, [Origin]);
        {'DOWN', Ref, process, Watcher, _} ->
            ok;
        stop ->
            ok
    end.

%% @doc The instance process once started: answers {@link origin/1}, ends
%% on `stop', and logs (then drops) anything else: nothing else is sent to
%% an instance's pid, so such a message is a caller's mistake.
-spec worker({binary(), hb_beamr:mode(), map()}) -> ok.
worker(Origin) ->
    receive
        stop ->
            ok;
        {hb_beamr_origin, From, Ref} ->
            From ! {Ref, Origin},
            worker(Origin);
        Other ->
            logger:warning("hb_beamr: instance ~p dropped an unexpected message: ~0P", [self(), Other, 20],
                           #{domain => [hb_beamr]}),
            worker(Origin)
    end.

%% @doc Stops the instance named `WASM' (see {@link hb_beamr:stop/1}).
-spec stop(hb_beamr:wasm()) -> ok.
stop(WASM) ->
    _ = hb_beamr_node:request(WASM, stop, []),
    WASM ! stop,
    ok.

%% @doc What an instance was started from (module, mode, options), asked of
%% its process, wherever it is.
-spec origin(hb_beamr:wasm()) -> {ok, {binary(), hb_beamr:mode(), map()}} | {error, term()}.
origin(WASM) ->
    Ref = erlang:monitor(process, WASM),
    WASM ! {hb_beamr_origin, self(), Ref},
    receive
        {Ref, Origin} ->
            erlang:demonitor(Ref, [flush]),
            {ok, Origin};
        {'DOWN', Ref, process, WASM, noconnection} ->
            {error, {nodedown, node(WASM)}};
        {'DOWN', Ref, process, WASM, _} ->
            {error, stopped}
    end.

