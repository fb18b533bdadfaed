%%% @doc BEAMR: WebAssembly in the BEAM, on WAMR.
%%%
%%% Each WebAssembly instance runs on a native thread of its own, owned by a
%%% Rust NIF; the BEAM's schedulers never run WebAssembly. An instance is
%%% named by the pid that {@link start/2} returns: pass it to any process,
%%% which can then call the instance. Calls from several processes are
%%% served one at a time, in arrival order. The instance lives until
%%% {@link stop/1} (or until its pid is killed).
%%%
%%% ```
%%% {ok, Wasm} = file:read_file("test/test.wasm"),
%%% {ok, WASM, _Imports, _Exports} = hb_beamr:start(Wasm),
%%% {ok, [120.0]} = hb_beamr:call(WASM, "fac", [5.0]),
%%% ok = hb_beamr:stop(WASM).
%%% '''
%%%
%%% == Imports ==
%%% A call made with an import function serves the module's imports in the
%%% calling process: for every import the WebAssembly code calls, the import
%%% function gets `(State, #{instance, module, func, args, func_sig}, Opts)'
%%% and answers `{ok, Results, NewState}'; the state threads through every
%%% import of the call and comes back with its result. While it runs, the
%%% import function may read and write the instance's memory
%%% ({@link hb_beamr_io}) and call the instance again (nested calls). If it
%%% raises, the WebAssembly call is unwound and the call returns
%%% `{error, Class, Reason, Stacktrace, State}'. emscripten's `invoke_*'
%%% trampolines are served natively, without a round trip.
%%%
%%% == Errors ==
%%% Nothing given to this module crashes the caller or the VM: bad input, a
%%% module that does not load, a trap, a stopped instance all return
%%% `{error, Reason}' (see {@link error_reason()}).
-module(hb_beamr).

%%% Control API:
-export([start/1, start/2, start/3, call/3, call/4, call/5, call/6, stop/1, wasm_send/2]).
%%% Utility API:
-export([serialize/1, deserialize/2, snapshot/1, restore/2, stub/3]).
%%% Clusters:
-export([migrate/2]).
-export([start_for/4]).
%%% AOT compilation:
-export([compile/1, compile/2]).

-include("include/hb.hrl").

-export_type([
    wasm/0,
    mode/0,
    extern_kind/0,
    import_spec/0,
    export_spec/0,
    wasm_value/0,
    func_ref/0,
    import_request/0,
    import_fun/0,
    error_reason/0,
    compile_opts/0,
    start_opts/0
]).

-type wasm() :: pid().
%% An instance, named by its worker process.
-type mode() :: wasm | aot.
%% What the module bytes are: WebAssembly bytecode, or a WAMR AOT file.
-type extern_kind() :: func | memory | table | global.
-type import_spec() :: {extern_kind(), Module :: binary(), Name :: binary(), Signature :: binary()}.
%% An import of the module. Signatures are written `(<params>)<results>',
%% one character per type: `i' i32, `I' i64, `f' f32, `F' f64.
-type export_spec() :: {extern_kind(), Name :: binary(), Signature :: binary()}.
-type wasm_value() :: integer() | float() | infinity | neg_infinity | nan.
%% i32 and i64 results are signed; arguments may be given signed or
%% unsigned. Floats that Erlang cannot hold travel as atoms.
-type func_ref() :: string() | binary() | non_neg_integer().
%% An export name, or an index into the module's exported function table.
-type import_request() :: #{
    instance := wasm(),
    module := binary(),
    func := binary(),
    args := [wasm_value()],
    func_sig := binary()
}.
-type import_fun() :: fun((State :: term(), import_request(), Opts :: map()) ->
    {ok, [wasm_value()], NewState :: term()}).
-type error_reason() ::
    driver_load_failed
    | badarg
    | {invalid_wasm, binary()}
    | {invalid_aot, binary()}
    | {instantiation_failed, binary()}
    | function_not_found
    | {invalid_args, list()}
    | {unsupported_signature, binary()}
    | {wasm_trap, binary()}
    | no_function_table
    | {invalid_import_response, binary()}
    | {out_of_bounds, map()}
    | caller_exited
    | not_call_owner
    | no_pending_import
    | {invalid_snapshot, binary()}
    | {snapshot_mismatch, binary()}
    | {snapshot_too_large, #{size := non_neg_integer(), max := non_neg_integer()}}
    | {snapshot_unsupported, binary()}
    | {nodedown, node()}
    | {out_of_memory, non_neg_integer()}
    | timeout
    | {invalid_option, term()}
    | stopped.
%% `{wasm_trap, Message}' carries WAMR's words, e.g.
%% `<<"integer divide by zero">>'; `stopped' means the instance was stopped
%% before or during the request.

-type start_opts() :: #{
    max_memory => non_neg_integer(),
    wasm_stack => pos_integer(),
    native_stack => pos_integer(),
    timeout => timeout(),
    import_fun => import_fun(),
    state => term(),
    deterministic => boolean(),
    node => node(),
    trust_aot => boolean()
}.
%% Limits of one instance, in bytes: `max_memory' caps linear memory
%% (memory.grow fails past it; a module whose initial memory is larger does
%% not start); `wasm_stack' is the interpreter's operand stack (default
%% 64 KiB, as HyperBEAM's driver; WAMR zeroes it up front, so it is resident
%% memory of every instance; deeper recursion is a `wasm operand stack
%% overflow' trap);
%% `native_stack' is the instance thread's stack (default 4 MiB; AOT code and
%% nested imports run on it; overflowing it is a `native stack overflow'
%% trap). `timeout' (milliseconds) bounds instantiation: past it the start
%% returns `{error, timeout}' and the instance is stopped. `import_fun' and
%% `state' serve the imports called during instantiation (see
%% {@link start/3}). `deterministic' (default `false'): every NaN that the
%% module's float arithmetic produces is the positive canonical NaN, in both
%% modes (bytecode is rewritten; an AOT file must come from
%% `compile(Wasm, #{deterministic => true})'). `node': start the instance on
%% that (connected) node; every function works on it from any node.
%% `trust_aot => true' loads an AOT file that this node did not seal (see
%% hb_beamr_aot): only for files from a trusted source.

-type compile_opts() :: #{
    opt_level => 0..3,
    size_level => 0..3,
    bounds_checks => true,
    target_cpu => host | generic | string(),
    deterministic => boolean(),
    node => node()
}.
%% `opt_level' (default 3) and `size_level' (default 3) are LLVM's;
%% `target_cpu' is `host' (default: the fastest code, for this machine's CPU),
%% `generic' (runs on any CPU of the architecture) or an LLVM CPU name.
%% Memory bounds checks cannot be turned off: hb_beamr's runtime has no
%% guard pages, so unchecked code could crash the node.
%% `deterministic' (default false) canonicalizes every NaN the module's float
%% arithmetic produces before compiling, and marks the file so that
%% `start(Aot, aot, #{deterministic => true})' accepts it.

%% One call in progress, as its caller's loop sees it.
-record(call, {
    wasm :: wasm(),
    id = 0 :: hb_beamr_node:request_id(),
    watch = make_ref() :: hb_beamr_node:watch(),
    args :: list(),
    import_fun :: import_fun(),
    opts :: map(),
    deadline = infinity :: integer() | infinity
}).

%% How long to wait for the acknowledgement of an aborted import.
-define(ABORT_ACK_TIMEOUT, 5000).
%% How long a caller polls for a reply before it blocks (see poll/2).
-define(POLL_US, 20).

%% @doc Loads and instantiates a WebAssembly module (bytecode).
%% @equiv start(WasmBinary, wasm)
-spec start(binary()) ->
    {ok, wasm(), [import_spec()], [export_spec()]} | {error, error_reason()}.
start(WasmBinary) ->
    start(WasmBinary, wasm).

%% @doc Loads and instantiates a module, as bytecode (`wasm') or as a WAMR
%% AOT file (`aot'). Returns the instance with the module's imports and
%% exports. An AOT file must be sealed by this node (hb_beamr_aot); one
%% built for another WAMR version or another CPU is refused. Bytecode given
%% as `aot' is compiled through the compile cache (hb_beamr_aot_cache).
%% @equiv start(WasmBinary, Mode, #{})
-spec start(binary(), mode()) ->
    {ok, wasm(), [import_spec()], [export_spec()]} | {error, error_reason()}.
start(WasmBinary, Mode) ->
    start(WasmBinary, Mode, #{}).

%% @doc Like {@link start/2}, with options (see {@link start_opts()}):
%% limits for the instance, a `timeout' for instantiation, and an
%% `import_fun' (with its initial `state') that serves the imports a start
%% function or constructor calls during instantiation, exactly as a call
%% serves them. With `import_fun' the result carries the final state:
%% `{ok, WASM, Imports, Exports, State}'.
-spec start(binary(), mode(), start_opts()) ->
    {ok, wasm(), [import_spec()], [export_spec()]}
    | {ok, wasm(), [import_spec()], [export_spec()], term()}
    | {error, error_reason()}
    | {error, atom(), term(), list(), term()}.
start(WasmBinary, Mode, Opts) when
    is_binary(WasmBinary), (Mode =:= wasm orelse Mode =:= aot), is_map(Opts)
->
    case start_options(Opts) of
        {ok, _Limits, _Serve, _Timeout, Node} when Node =/= node() ->
            start_remote(Node, WasmBinary, Mode, maps:remove(node, Opts));
        {ok, Limits, Serve, Timeout, _Node} ->
            start_here(WasmBinary, Mode, Opts, {Limits, Serve, Timeout}, self());
        {error, _} = Error ->
            Error
    end;
start(_WasmBinary, _Mode, _Opts) ->
    {error, badarg}.

start_here(WasmBinary, Mode, Opts, {Limits, Serve, Timeout}, Watcher) ->
    % What the instance was started from, for migrate/2.
    Origin = {WasmBinary, Mode, maps:without([import_fun, state, timeout], Opts)},
    % AOT: the seal checked, or bytecode compiled (hb_beamr_aot).
    case hb_beamr_aot:prepare(WasmBinary, Mode, Opts) of
        {ok, Loadable, _} ->
            with_timeout(
                fun(Report) -> start_instance(Loadable, Mode, Limits, Serve, {Watcher, Origin}, Report) end,
                Timeout,
                fun(WASM) -> stop(WASM) end
            );
        {error, _} = Error ->
            Error
    end.

%% Starts the instance on `Node' (the module's bytes travel once); the
%% instance there watches this process until its start has returned here.
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
-spec start_for(binary(), mode(), start_opts(), pid()) -> term().
start_for(WasmBinary, Mode, Opts, Watcher) ->
    case start_options(Opts) of
        {ok, Limits, Serve, Timeout, _} -> start_here(WasmBinary, Mode, Opts, {Limits, Serve, Timeout}, Watcher);
        {error, _} = Error -> Error
    end.

%% Starts the instance from the calling process. The instance's pid is
%% reported at once (`Report'), so that a timeout can stop it; the worker
%% process watches `Watcher' until the start has returned to it, so that a
%% starter killed meanwhile leaves nothing behind.
start_instance(WasmBinary, Mode, {Limits, Deterministic}, Serve, {Watcher, Origin}, Report) ->
    WASM = spawn(fun() -> starting(Watcher, Origin) end),
    Report(WASM),
    Id = hb_beamr_nif:guarded(fun() ->
        hb_beamr_nif:start(WASM, WasmBinary, Mode, Limits, Serve =/= none, Deterministic)
    end),
    case is_integer(Id) of
        true ->
            {ImportFun, State} =
                case Serve of
                    none -> {fun ?MODULE:stub/3, #{}};
                    _ -> Serve
                end,
            Call = #call{wasm = WASM, id = Id, args = [], import_fun = ImportFun,
                         opts = #{}, deadline = infinity},
            started(WASM, Serve, Watcher, await_call(Call, State));
        false ->
            ok = stop(WASM),
            Id
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

-define(KIB, 1024).
-define(MIB, (1024 * 1024)).

start_options(Opts) ->
    Known = [max_memory, wasm_stack, native_stack, import_fun, state, timeout, deterministic, node,
             trust_aot],
    case maps:keys(maps:without(Known, Opts)) of
        [] ->
            MaxMemory = maps:get(max_memory, Opts, 0),
            WasmStack = maps:get(wasm_stack, Opts, 64 * ?KIB),
            NativeStack = maps:get(native_stack, Opts, 4 * ?MIB),
            ImportFun = maps:get(import_fun, Opts, none),
            Timeout = maps:get(timeout, Opts, infinity),
            Deterministic = maps:get(deterministic, Opts, false),
            Node = maps:get(node, Opts, node()),
            Limits = {{MaxMemory, WasmStack, NativeStack}, Deterministic},
            if
                not (is_integer(MaxMemory) andalso MaxMemory >= 0 andalso MaxMemory < 1 bsl 48) ->
                    {error, {invalid_option, {max_memory, MaxMemory}}};
                not (is_integer(WasmStack) andalso WasmStack >= 4 * ?KIB andalso WasmStack =< 256 * ?MIB) ->
                    {error, {invalid_option, {wasm_stack, WasmStack}}};
                not (is_integer(NativeStack) andalso NativeStack >= 256 * ?KIB andalso NativeStack =< 1024 * ?MIB) ->
                    {error, {invalid_option, {native_stack, NativeStack}}};
                not (ImportFun =:= none orelse is_function(ImportFun, 3)) ->
                    {error, {invalid_option, {import_fun, ImportFun}}};
                not (Timeout =:= infinity orelse (is_integer(Timeout) andalso Timeout >= 0)) ->
                    {error, {invalid_option, {timeout, Timeout}}};
                not is_boolean(Deterministic) ->
                    {error, {invalid_option, {deterministic, Deterministic}}};
                not is_atom(Node) ->
                    {error, {invalid_option, {node, Node}}};
                ImportFun =:= none ->
                    {ok, Limits, none, Timeout, Node};
                true ->
                    State = maps:get(state, Opts, #{}),
                    {ok, Limits, {ImportFun, State}, Timeout, Node}
            end;
        [Unknown | _] ->
            {error, {invalid_option, Unknown}}
    end.

%% The process that names an instance. The instance lives in the NIF,
%% which watches this process and stops the instance when it exits; the
%% process only keeps what the instance was started from (the module's
%% binary is shared, not copied), for migrate/2. Until its start has
%% returned, it watches the starter: a starter killed meanwhile takes the
%% instance with it.
starting(Watcher, Origin) ->
    Ref = erlang:monitor(process, Watcher),
    receive
        {hb_beamr_started, Watcher} ->
            erlang:demonitor(Ref, [flush]),
            worker(Origin);
        {'DOWN', Ref, process, Watcher, _} ->
            ok;
        stop ->
            ok
    end.

worker(Origin) ->
    receive
        stop ->
            ok;
        {hb_beamr_origin, From, Ref} ->
            From ! {Ref, Origin},
            worker(Origin);
        _ ->
            worker(Origin)
    end.

%% Runs `Fun' within `Timeout' milliseconds. With a timeout, `Fun' runs in a
%% linked helper process, so that the caller returns on time even while an
%% import function it called never returns: past the deadline the helper is
%% killed (the instance sees its caller die and unwinds the call), `OnTimeout'
%% gets what the helper reported (the call id, or the instance) and the
%% result is `{error, timeout}'.
with_timeout(Fun, infinity, _OnTimeout) ->
    Fun(fun(_) -> ok end);
with_timeout(Fun, Timeout, OnTimeout) ->
    Caller = self(),
    Ref = make_ref(),
    Helper = spawn_link(fun() ->
        Report = fun(What) -> Caller ! {Ref, report, What}, ok end,
        Caller ! {Ref, done, Fun(Report)}
    end),
    receive
        {Ref, done, Result} ->
            unlink_flush(Helper),
            flush_reports(Ref, fun(_) -> ok end),
            Result
    after Timeout ->
        unlink_flush(Helper),
        MRef = erlang:monitor(process, Helper),
        exit(Helper, kill),
        receive {'DOWN', MRef, process, Helper, _} -> ok end,
        % Everything the helper sent before it died is here now.
        receive
            {Ref, done, Result} ->
                flush_reports(Ref, fun(_) -> ok end),
                Result
        after 0 ->
            flush_reports(Ref, OnTimeout),
            {error, timeout}
        end
    end.

unlink_flush(Pid) ->
    unlink(Pid),
    receive {'EXIT', Pid, _} -> ok after 0 -> ok end.

flush_reports(Ref, Fun) ->
    receive
        {Ref, report, What} ->
            _ = Fun(What),
            flush_reports(Ref, Fun)
    after 0 ->
        ok
    end.

%% @doc Calls an exported function; imports, if any are called, answer
%% zeros ({@link stub/3}).
-spec call(wasm(), func_ref(), [wasm_value()]) ->
    {ok, [wasm_value()]} | {error, error_reason()} | {error, atom(), term(), list(), term()}.
call(WASM, FuncRef, Args) ->
    case call(WASM, FuncRef, Args, fun ?MODULE:stub/3) of
        {ok, Results, _State} -> {ok, Results};
        Error -> Error
    end.

%% @doc Calls a function, serving its imports with `ImportFun' from the
%% state `#{}'.
%% @equiv call(WASM, FuncRef, Args, ImportFun, #{}, #{})
-spec call(wasm(), func_ref(), [wasm_value()], import_fun()) ->
    {ok, [wasm_value()], term()} | {error, error_reason()} | {error, atom(), term(), list(), term()}.
call(WASM, FuncRef, Args, ImportFun) ->
    call(WASM, FuncRef, Args, ImportFun, #{}).

%% @doc Calls a function, serving its imports with `ImportFun' from `State'.
%% @equiv call(WASM, FuncRef, Args, ImportFun, State, #{})
-spec call(wasm(), func_ref(), [wasm_value()], import_fun(), term()) ->
    {ok, [wasm_value()], term()} | {error, error_reason()} | {error, atom(), term(), list(), term()}.
call(WASM, FuncRef, Args, ImportFun, State) ->
    call(WASM, FuncRef, Args, ImportFun, State, #{}).

%% @doc Calls a function by name (string or binary) or by index into the
%% module's exported function table (an indirect call). Every import the
%% call makes goes to `ImportFun(State, Request, Opts)', which returns
%% `{ok, Results, NewState}'; the last state comes back as
%% `{ok, Results, FinalState}'. If the import function raises, the call
%% returns `{error, Class, Reason, Stacktrace, State}', with the state as it
%% was before that import.
%%
%% `Opts' is passed to the import function; hb_beamr reads one key of it:
%% `timeout' (milliseconds, or `infinity', the default). A call still running
%% then is stopped inside WebAssembly and returns `{error, timeout}'; the
%% instance answers the next call.
-spec call(wasm(), func_ref(), [wasm_value()], import_fun(), term(), map()) ->
    {ok, [wasm_value()], term()} | {error, error_reason()} | {error, atom(), term(), list(), term()}.
call(WASM, FuncRef, Args, ImportFun, State, Opts) when
    is_pid(WASM), is_function(ImportFun, 3), is_map(Opts)
->
    case {is_func_ref(FuncRef), is_valid_arg_list(Args), timeout_option(Opts)} of
        {false, _, _} ->
            {error, function_not_found};
        {true, false, _} ->
            {error, {invalid_args, Args}};
        {true, true, error} ->
            {error, {invalid_option, {timeout, maps:get(timeout, Opts)}}};
        {true, true, {ok, Timeout}} ->
            Call = #call{wasm = WASM, args = Args, import_fun = ImportFun, opts = Opts},
            case Timeout =:= infinity orelse serving_import(WASM) of
                true ->
                    % Inline: no deadline, or a nested call from inside an
                    % import function (which must come from the call's owner;
                    % the outer call's deadline covers it).
                    run_call(Call#call{deadline = deadline(Timeout)}, FuncRef, State,
                             fun(_) -> ok end);
                false ->
                    with_timeout(
                        fun(Report) -> run_call(Call, FuncRef, State, Report) end,
                        Timeout,
                        fun(Id) -> hb_beamr_node:request(WASM, timeout, [Id]) end
                    )
            end
    end;
call(_WASM, _FuncRef, _Args, _ImportFun, _State, _Opts) ->
    {error, badarg}.

run_call(Call = #call{wasm = WASM, args = Args, import_fun = ImportFun}, FuncRef, State, Report) ->
    Stub = ImportFun =:= fun ?MODULE:stub/3,
    Id = hb_beamr_node:send(WASM, call, [FuncRef, Args, Stub]),
    case hb_beamr_node:is_request_id(Id) of
        true ->
            Report(Id),
            await_call(Call#call{id = Id, watch = hb_beamr_node:watch(WASM)}, State);
        false ->
            refused(Id, Args)
    end.

refused(Error, Args) ->
    case Error of
        {error, invalid_args} ->
            {error, {invalid_args, Args}};
        {error, Reason} ->
            {error, Reason}
    end.

%% Whether this process is running an import function of `WASM' now.
serving_import(WASM) ->
    get({hb_beamr_serving, WASM}) =:= true.

await_call(Call = #call{id = Id}, State) ->
    case poll(Id, erlang:monotonic_time(microsecond) + ?POLL_US) of
        {hb_beamr, Id, Message} -> handle_reply(Call, State, Message);
        none -> await_reply(Call, State)
    end.

%% A short call answers within microseconds, sooner than a sleeping
%% scheduler wakes up for its reply: yield and look again for a bounded
%% time before blocking in `receive'.
poll(Id, Until) ->
    receive
        {hb_beamr, Id, _} = Reply -> Reply
    after 0 ->
        case erlang:monotonic_time(microsecond) < Until of
            true ->
                erlang:yield(),
                poll(Id, Until);
            false ->
                none
        end
    end.

%% What the instance said of the call: its result, an import to serve, or
%% why it failed.
handle_reply(Call = #call{args = Args}, State, Message) ->
    case Message of
        {execution_result, Results} ->
            {ok, Results, State};
        {execution_result, Imports, Exports} ->
            {started, Imports, Exports, State};
        {import, Module, Func, ImportArgs, Signature} ->
            serve_or_interrupt(Call, State, Module, Func, ImportArgs, Signature);
        {error, invalid_args} ->
            {error, {invalid_args, Args}};
        {error, Reason} ->
            {error, Reason}
    end.

await_reply(Call = #call{id = Id, watch = Watch}, State) ->
    receive
        {hb_beamr, Id, Message} -> handle_reply(Call, State, Message);
        {'DOWN', Watch, process, _, _} -> {error, {nodedown, node(Call#call.wasm)}}
    after remaining(Call#call.deadline) ->
        interrupt(Call, State)
    end.

serve_or_interrupt(Call = #call{wasm = WASM, id = Id}, State, Module, Func, ImportArgs, Signature) ->
    case remaining(Call#call.deadline) of
        0 ->
            % Out of time (import functions used it up): no more imports.
            interrupt(Call, State);
        _ ->
            Request = #{
                instance => WASM,
                module => Module,
                func => Func,
                args => ImportArgs,
                func_sig => Signature
            },
            #call{import_fun = ImportFun, opts = Opts} = Call,
            try serving(WASM, fun() -> serve_import(WASM, Id, ImportFun, State, Request, Opts) end) of
                NewState ->
                    await_call(Call, NewState)
            catch
                Class:Reason:Stack ->
                    ?event({import_error, Class, Reason}),
                    _ = hb_beamr_node:request(WASM, abort_import, [Id]),
                    receive
                        {hb_beamr, Id, _Aborted} -> ok
                    after ?ABORT_ACK_TIMEOUT -> ok
                    end,
                    {error, Class, Reason, Stack, State}
            end
    end.

interrupt(Call = #call{wasm = WASM, id = Id}, State) ->
    _ = hb_beamr_node:request(WASM, timeout, [Id]),
    await_interrupted(Call, State).

%% After a timeout: the call is being stopped inside WebAssembly; its last
%% word is normally `{error, timeout}', or its result if it won the race.
await_interrupted(Call = #call{id = Id}, State) ->
    receive
        {hb_beamr, Id, {execution_result, Results}} -> {ok, Results, State};
        {hb_beamr, Id, {import, _, _, _, _}} -> await_interrupted(Call, State);
        {hb_beamr, Id, {error, Reason}} -> {error, Reason}
    after ?ABORT_ACK_TIMEOUT ->
        {error, timeout}
    end.

timeout_option(#{timeout := infinity}) ->
    {ok, infinity};
timeout_option(#{timeout := Ms}) when is_integer(Ms), Ms >= 0 ->
    {ok, Ms};
timeout_option(#{timeout := _}) ->
    error;
timeout_option(_) ->
    {ok, infinity}.

deadline(infinity) ->
    infinity;
deadline(Ms) ->
    erlang:monotonic_time(millisecond) + Ms.

remaining(infinity) ->
    infinity;
remaining(Deadline) ->
    max(0, Deadline - erlang:monotonic_time(millisecond)).

%% Runs `Fun' marked as serving an import of `WASM' (see serving_import/1).
serving(WASM, Fun) ->
    Key = {hb_beamr_serving, WASM},
    Previous = put(Key, true),
    try
        Fun()
    after
        case Previous of
            undefined -> erase(Key);
            _ -> put(Key, Previous)
        end
    end.

%% Runs the import function and hands its results to the instance. Raises
%% (like HyperBEAM) when the function does not answer `{ok, List, State}'
%% with a list of numbers.
serve_import(WASM, Id, ImportFun, State, Request, Opts) ->
    {ok, Response, NewState} = ImportFun(State, Request, Opts),
    case is_valid_arg_list(Response) of
        true -> ok;
        false -> throw({error, {invalid_response, Response}})
    end,
    case hb_beamr_node:send(WASM, import_response, [Id, Response]) of
        % Stopped meanwhile: the call's own reply says so.
        {error, stopped} -> NewState;
        {error, Reason} -> throw({error, Reason});
        % `ok', or (remote) on its way.
        _Sent -> NewState
    end.

%% @doc Stops an instance and frees its thread, module and memory. Stopping
%% a stopped instance is fine. A call in progress on it returns
%% `{error, stopped}' once the WebAssembly code returns to an import or ends.
-spec stop(wasm()) -> ok | {error, badarg}.
stop(WASM) when is_pid(WASM) ->
    _ = hb_beamr_node:request(WASM, stop, []),
    WASM ! stop,
    ok;
stop(_) ->
    {error, badarg}.

%% @doc Sends a raw command of the original driver's protocol:
%% `{command, term_to_binary(Cmd)}' with `Cmd' one of `{call, Name, Args}',
%% `{indirect_call, Index, Args}', `{import_response, Results}', `{size}',
%% `{read, Offset, Length}', `{write, Offset, Binary}'. The replies come to
%% the calling process untagged: `{execution_result, Result}',
%% `{import, Module, Func, Args, Signature}', `ok' (a write) or
%% `{error, Reason}' (also for a command that is not understood).
-spec wasm_send(wasm(), {command, binary()}) -> ok.
wasm_send(WASM, {command, Command}) when is_pid(WASM), is_binary(Command) ->
    case hb_beamr_node:request(WASM, send_raw, [Command]) of
        ok -> ok;
        {error, Reason} -> self() ! {error, Reason}, ok
    end;
wasm_send(_WASM, Message) ->
    self() ! {error, {invalid_command, Message}},
    ok.

%% @doc The instance's whole linear memory (the reference's raw snapshot;
%% see {@link snapshot/1} for one that also holds the globals).
-spec serialize(wasm()) -> {ok, binary()} | {error, error_reason()}.
serialize(WASM) when is_pid(WASM) ->
    case hb_beamr_io:size(WASM) of
        {ok, Size} -> hb_beamr_io:read(WASM, 0, Size);
        Error -> Error
    end;
serialize(_) ->
    {error, badarg}.

%% @doc Restores memory taken by {@link serialize/1} (of this instance or
%% another of the same module): memory is first grown to the snapshot's size
%% (a process that has grown restores into a fresh instance), then the bytes
%% are written from offset 0. Past the module's declared maximum or the
%% instance's `max_memory' it is
%% `{error, {snapshot_too_large, #{size, max}}}'. A smaller snapshot (memory
%% has grown since) restores its prefix.
-spec deserialize(wasm(), binary()) -> ok | {error, error_reason()}.
deserialize(WASM, Memory) when is_pid(WASM), is_binary(Memory) ->
    written(hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, deserialize, [Memory])));
deserialize(_, _) ->
    {error, badarg}.

%% @doc The instance's whole state: its linear memory, every mutable global
%% (exported or not: C code keeps its stack pointer in one), and the
%% fingerprint of its module (SHA-256 of its bytecode), in a versioned binary
%% format (see the README). Take it between calls (or from an import
%% function, to capture the state at that import).
-spec snapshot(wasm()) -> {ok, binary()} | {error, error_reason()}.
snapshot(WASM) when is_pid(WASM) ->
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, snapshot, []));
snapshot(_) ->
    {error, badarg}.

%% @doc Restores a {@link snapshot/1} into an instance of the same module,
%% in either mode (an AOT instance compiled from the same bytecode restores a
%% bytecode instance's snapshot, and back). Memory is grown to the snapshot's
%% size first. A snapshot of another module is
%% `{error, {snapshot_mismatch, Why}}', as is an instance whose memory has
%% already grown past the snapshot's (memory cannot shrink: restore into a
%% fresh instance); bytes that are not a snapshot are
%% `{error, {invalid_snapshot, Why}}'. Nothing is changed on an error, except
%% that memory may have grown.
-spec restore(wasm(), binary()) -> ok | {error, error_reason()}.
restore(WASM, Snapshot) when is_pid(WASM), is_binary(Snapshot) ->
    written(hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, restore, [Snapshot])));
restore(_, _) ->
    {error, badarg}.

%% @doc Moves an instance to `Node' (any connected node, or this one):
%% starts its module there with the same mode and options, then, in turn
%% after the calls already made to it, takes a snapshot of the old instance
%% (memory and every mutable global), restores it into the new one and stops
%% the old one. Calls made to the old instance after that point are refused
%% with `{error, stopped}': none is lost silently, and none changes state
%% that the new instance would not have. Returns the new instance. If the
%% new node fails after the snapshot, the state is restored into a fresh
%% instance on the old instance's node instead:
%% `{error, {migration_failed, Reason, Recovered}}'.
-spec migrate(wasm(), node()) -> {ok, wasm()} | {error, term()}.
migrate(WASM, Node) when is_pid(WASM), is_atom(Node) ->
    case origin(WASM) of
        {ok, {Bytes, Mode, Opts}} ->
            case start(Bytes, Mode, Opts#{node => Node}) of
                {ok, New, _, _} -> move_state(WASM, New, {Bytes, Mode, Opts});
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end;
migrate(_, _) ->
    {error, badarg}.

move_state(Old, New, {Bytes, Mode, Opts}) ->
    case hb_beamr_node:await(Old, hb_beamr_node:request(Old, retire, [])) of
        {ok, Snapshot} ->
            ok = stop(Old),
            case restore(New, Snapshot) of
                ok ->
                    {ok, New};
                {error, Reason} ->
                    ok = stop(New),
                    {error, {migration_failed, Reason, recover(Bytes, Mode, Opts#{node => node(Old)}, Snapshot)}}
            end;
        {error, _} = Error ->
            ok = stop(New),
            Error
    end.

recover(Bytes, Mode, Opts, Snapshot) ->
    case start(Bytes, Mode, Opts) of
        {ok, WASM, _, _} ->
            case restore(WASM, Snapshot) of
                ok -> WASM;
                {error, Reason} -> ok = stop(WASM), {not_recovered, Reason, Snapshot}
            end;
        {error, Reason} ->
            {not_recovered, Reason, Snapshot}
    end.

%% What an instance was started from, asked of its process (wherever it is).
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

written({ok, written}) -> ok;
written({error, _} = Error) -> Error.

%% @doc Compiles WebAssembly to a WAMR AOT file for `start(Aot, aot)', with
%% the default options.
%% @equiv compile(WasmBinary, #{})
-spec compile(binary()) -> {ok, binary()} | {error, term()}.
compile(WasmBinary) ->
    compile(WasmBinary, #{}).

%% @doc Compiles WebAssembly to a WAMR AOT file (see {@link compile_opts()}).
%% Runs on a dirty CPU scheduler; compilations run one at a time. Errors:
%% `{invalid_wasm, Why}', `{compile_failed, Why}' (for instance a module that
%% uses exception handling hb_beamr_eh cannot rewrite into host calls; the
%% output is sealed, see hb_beamr_aot),
%% `{invalid_option, Option}', and `compiler_unavailable' where hb_beamr was
%% built without LLVM. The output is the same for the same input and options.
-spec compile(binary(), compile_opts()) -> {ok, binary()} | {error, term()}.
compile(WasmBinary, Opts) when is_binary(WasmBinary), is_map(Opts) ->
    case compile_args(Opts) of
        {ok, {Opt, Size, Checks, Cpu}} ->
            Deterministic = maps:get(deterministic, Opts, false),
            try hb_beamr_compiler_nif:compile(WasmBinary, Opt, Size, Checks, Cpu, Deterministic) of
                {ok, Aot} -> hb_beamr_aot:seal(Aot);
                Error -> Error
            catch
                error:nif_not_loaded -> {error, compiler_unavailable}
            end;
        {error, _} = Error ->
            Error
    end;
compile(_WasmBinary, _Opts) ->
    {error, badarg}.

compile_args(Opts) ->
    Known = [opt_level, size_level, bounds_checks, target_cpu, deterministic],
    case maps:keys(maps:without(Known, Opts)) of
        [] ->
            Opt = maps:get(opt_level, Opts, 3),
            Size = maps:get(size_level, Opts, 3),
            Checks = maps:get(bounds_checks, Opts, true),
            Cpu = maps:get(target_cpu, Opts, host),
            Deterministic = maps:get(deterministic, Opts, false),
            if
                not (is_integer(Opt) andalso Opt >= 0 andalso Opt =< 3) ->
                    {error, {invalid_option, {opt_level, Opt}}};
                not (is_integer(Size) andalso Size >= 0 andalso Size =< 3) ->
                    {error, {invalid_option, {size_level, Size}}};
                Checks =/= true ->
                    {error, {invalid_option, {bounds_checks, Checks}}};
                not is_boolean(Deterministic) ->
                    {error, {invalid_option, {deterministic, Deterministic}}};
                not (Cpu =:= host orelse Cpu =:= generic orelse is_list(Cpu)) ->
                    {error, {invalid_option, {target_cpu, Cpu}}};
                is_list(Cpu) ->
                    case unicode:characters_to_binary(Cpu) of
                        Name when is_binary(Name) -> {ok, {Opt, Size, Checks, Name}};
                        _ -> {error, {invalid_option, {target_cpu, Cpu}}}
                    end;
                true ->
                    {ok, {Opt, Size, Checks, Cpu}}
            end;
        Unknown ->
            {error, {invalid_option, hd(Unknown)}}
    end.

%% @doc The default import function: answers `[0]' and keeps the state.
-spec stub(State, import_request() | map(), map()) -> {ok, [0], State}.
stub(State, _Request, _Opts) ->
    {ok, [0], State}.

is_func_ref(Name) when is_binary(Name) -> true;
is_func_ref(Index) when is_integer(Index), Index >= 0 -> true;
is_func_ref(Name) when is_list(Name) -> is_char_list(Name);
is_func_ref(_) -> false.

%% Proper lists only: an improper list is bad input, not a crash.
is_char_list([]) -> true;
is_char_list([C | Rest]) when is_integer(C), C >= 0, C =< 16#10FFFF -> is_char_list(Rest);
is_char_list(_) -> false.

is_valid_arg_list([]) -> true;
is_valid_arg_list([Value | Rest]) -> is_wasm_value(Value) andalso is_valid_arg_list(Rest);
is_valid_arg_list(_) -> false.

is_wasm_value(V) when is_integer(V); is_float(V) -> true;
is_wasm_value(infinity) -> true;
is_wasm_value(neg_infinity) -> true;
is_wasm_value(nan) -> true;
is_wasm_value(_) -> false.
