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
-export([serialize/1, deserialize/2, snapshot/1, snapshot/2, snapshot_info/1, restore/2, stub/3]).
%%% Forks (copy-on-write instances of a snapshot):
-export([image/1, fork/1, fork/2]).
%%% Fuel (metered instances, docs/metering.md):
-export([fuel/1, add_fuel/2]).
%%% Clusters:
-export([migrate/2]).
%%% AOT compilation:
-export([compile/1, compile/2, clear_aot_cache/0]).
%%% Shared modules:
-export([module_stats/0, purge_modules/0]).

-include("include/hb.hrl").

-export_type([
    wasm/0,
    image/0,
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
-type image() :: reference().
%% A snapshot's state prepared for forks ({@link image/1}): its memory in a
%% sealed memfd that forks map copy-on-write. Opaque; freed by the garbage
%% collector when no term refers to it (forks made from it keep their
%% pages). Local to its node.
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
    | import_aborted
    | not_call_owner
    | no_pending_import
    | {invalid_snapshot, binary()}
    | {snapshot_mismatch, binary()}
    | {snapshot_too_large, #{size := non_neg_integer(), max := non_neg_integer()}}
    | {snapshot_unsupported, binary()}
    | {nodedown, node()}
    | {out_of_memory, non_neg_integer()}
    | timeout
    | {invalid_option, {Name :: term(), Value :: term()}}
    | {runtime_init_failed, binary()}
    | {thread_spawn_failed, binary()}
    | {hb_beamr_not_loaded, node()}
    | {start_failed, term()}
    | {compile_failed, term()}
    | {out_of_fuel, non_neg_integer()}
    | not_metered
    | {module_limit, #{loaded := non_neg_integer(), size := non_neg_integer(),
                       max := non_neg_integer()}}
    | stopped.
%% `{module_limit, #{loaded, size, max}}': the loaded modules (bytes) and
%% this one's size would pass `module_cache_max_bytes' even with every idle
%% module evicted.
%% `{wasm_trap, Message}' carries WAMR's words, e.g.
%% `<<"integer divide by zero">>'; `stopped' means the instance was stopped
%% before or during the request. `import_aborted': an import function's call
%% was abandoned (its caller timed out or exited) and the instance unwound
%% it. `{runtime_init_failed, Why}' and `{thread_spawn_failed, Why}': WAMR
%% could not be set up, or the instance's thread could not be created.
%% `{invalid_option, {Name, Value}}' is the one shape of every refused
%% option (an unknown one too). `{hb_beamr_not_loaded, Node}' and
%% `{start_failed, Reason}': a start on another node (`node') that could
%% not be made; `{compile_failed, Why}': bytecode started in `aot' mode that did
%% not compile.

-type start_opts() :: #{
    max_memory => non_neg_integer(),
    wasm_stack => pos_integer(),
    native_stack => pos_integer(),
    timeout => timeout(),
    import_fun => import_fun(),
    state => term(),
    deterministic => boolean(),
    node => node(),
    trust_aot => boolean(),
    fuel => non_neg_integer(),
    snapshot => binary() | [binary(), ...] | image()
}.
%% Limits of one instance, in bytes: `max_memory' caps linear memory
%% (memory.grow fails past it; a module whose initial memory is larger does
%% not start); `wasm_stack' is the interpreter's operand stack (default
%% 64 KiB, as HyperBEAM's driver; WAMR zeroes it up front, so it is resident
%% memory of every instance; deeper recursion is a `wasm operand stack
%% overflow' trap);
%% `native_stack' is the instance thread's stack (default 4 MiB; AOT code and
%% nested imports run on it; overflowing it is a `native stack overflow'
%% trap). `timeout' (milliseconds) bounds the whole start, compiling
%% included (bytecode started in `aot' mode on a cache miss): past it the
%% start returns `{error, timeout}' and the instance, if any, is stopped; a
%% compilation goes on in the background and fills the cache, so that a
%% later start finds it compiled. `import_fun' and
%% `state' serve the imports called during instantiation (see
%% {@link start/3}). `deterministic' (default `false'): every NaN that the
%% module's float arithmetic produces is the positive canonical NaN, in both
%% modes (bytecode is rewritten; an AOT file must come from
%% `compile(Wasm, #{deterministic => true})'). `node': start the instance on
%% that (connected) node; every function works on it from any node.
%% `trust_aot => true' loads an AOT file that this node did not seal (see
%% hb_beamr_aot): only for files from a trusted source. `fuel => N' meters
%% the instance, starting with `N' fuel (docs/metering.md): bytecode is
%% rewritten to count its work (after the exception-handling and NaN
%% rewrites), the same fuel in both modes; an AOT file must come from
%% `compile(Wasm, #{metered => true})' (bytecode started as `aot' is
%% compiled so by the cache). The counter's import and export are not in
%% the start's Imports and Exports. See {@link fuel/1}, {@link add_fuel/2}
%% and call/6's `fuel' and `on_fuel_exhausted'. `snapshot' makes the
%% instance a fork of that state (see {@link fork/2}): a snapshot, a chain
%% `[Full, Delta, ...]' or an {@link image/1}; the start then equals
%% `start' + `restore(Snapshot)' bit for bit, with restore's errors, and a
%% fork that fails leaves no instance.

-type compile_opts() :: #{
    opt_level => 0..3,
    size_level => 0..3,
    bounds_checks => true,
    target_cpu => host | generic | string(),
    deterministic => boolean(),
    metered => boolean()
}.
%% `opt_level' (default 3) and `size_level' (default 3) are LLVM's;
%% `target_cpu' is `host' (default: the fastest code, for this machine's CPU),
%% `generic' (runs on any CPU of the architecture) or an LLVM CPU name.
%% Memory bounds checks cannot be turned off: hb_beamr's runtime has no
%% guard pages, so unchecked code could crash the node.
%% `deterministic' (default false) canonicalizes every NaN the module's float
%% arithmetic produces before compiling, and marks the file so that
%% `start(Aot, aot, #{deterministic => true})' accepts it. `metered'
%% (default false) meters the module (hb_beamr_meter, after the other
%% rewrites) and marks the file so that `start(Aot, aot, #{fuel => N})'
%% accepts it (and a start without `fuel' refuses it).

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
%% limits for the instance, a `timeout' for the whole start, and an
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
    case hb_beamr_start:options(Opts) of
        {ok, _Limits, _Serve, _Timeout, Node} when Node =/= node() ->
            case maps:get(snapshot, Opts, none) of
                % An image is local to its node: give the snapshot instead.
                Image when is_reference(Image) -> {error, {invalid_option, {snapshot, Image}}};
                _ -> hb_beamr_node:start(Node, WasmBinary, Mode, maps:remove(node, Opts))
            end;
        {ok, Limits, Serve, Timeout, _Node} ->
            hb_beamr_start:start_here(WasmBinary, Mode, Opts, {Limits, Serve, Timeout}, self());
        {error, _} = Error ->
            Error
    end;
start(_WasmBinary, _Mode, _Opts) ->
    {error, badarg}.

%% @doc Calls an exported function; imports, if any are called, answer
%% zeros ({@link stub/3}).
-spec call(wasm(), func_ref(), [wasm_value()]) ->
    {ok, [wasm_value()]} | {error, error_reason()} | {error, atom(), term(), list(), term()}.
call(WASM, FuncRef, Args) when is_pid(WASM) ->
    case checked_call(WASM, FuncRef, Args, zeros, #{}, #{}) of
        {ok, Results, _State} -> {ok, Results};
        Error -> Error
    end;
call(_WASM, _FuncRef, _Args) ->
    {error, badarg}.

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
%%
%% On a metered instance (`start/3''s `fuel'): `fuel => N' sets its fuel to
%% `N' for this call (what is left stays after it); a call that runs out of
%% fuel returns `{error, {out_of_fuel, Used}}' (the fuel it used), with the
%% instance's counter as it was (a later {@link add_fuel/2} lets calls run
%% again). With `on_fuel_exhausted => Fun', running out is asked of
%% `Fun(State, #{instance, needed}, Opts)' in the caller, as an import:
%% `{ok, MoreFuel, NewState}' adds fuel and the call goes on where it
%% paused, `{stop, NewState}' ends it with the out_of_fuel error.
-spec call(wasm(), func_ref(), [wasm_value()], import_fun(), term(), map()) ->
    {ok, [wasm_value()], term()} | {error, error_reason()} | {error, atom(), term(), list(), term()}.
call(WASM, FuncRef, Args, ImportFun, State, Opts) when
    is_pid(WASM), is_function(ImportFun, 3), is_map(Opts)
->
    checked_call(WASM, FuncRef, Args, ImportFun, State, Opts);
call(_WASM, _FuncRef, _Args, _ImportFun, _State, _Opts) ->
    {error, badarg}.

%% The one argument check of every call.
checked_call(WASM, FuncRef, Args, ImportFun, State, Opts) ->
    case {is_func_ref(FuncRef), hb_beamr_call:is_valid_arg_list(Args), hb_beamr_opts:call(Opts)} of
        {false, _, _} ->
            {error, function_not_found};
        {true, false, _} ->
            {error, {invalid_args, Args}};
        {true, true, {error, _} = Error} ->
            Error;
        {true, true, {ok, Timeout}} ->
            hb_beamr_call:call(WASM, FuncRef, Args, {ImportFun, State, Opts}, Timeout)
    end.

%% @doc A metered instance's fuel: what is `remaining' in its counter and
%% what it has `used' (all the fuel it was given, minus what remains).
%% `{error, not_metered}' for an instance started without `fuel'.
-spec fuel(wasm()) ->
    {ok, #{remaining := integer(), used := non_neg_integer()}} | {error, error_reason()}.
fuel(WASM) when is_pid(WASM) ->
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, fuel, []));
fuel(_) ->
    {error, badarg}.

%% @doc Adds `N' fuel to a metered instance (between calls, or from an
%% import function or `on_fuel_exhausted' function of its call).
-spec add_fuel(wasm(), non_neg_integer()) -> ok | {error, error_reason()}.
add_fuel(WASM, N) when is_pid(WASM), is_integer(N) ->
    case hb_beamr_opts:fuel(N) of
        ok -> hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, add_fuel, [N]));
        {error, _} = Error -> Error
    end;
add_fuel(_, N) when is_integer(N) ->
    {error, {invalid_option, {fuel, N}}};
add_fuel(_, _) ->
    {error, badarg}.

%% @doc Stops an instance and frees its thread, module and memory. Stopping
%% a stopped instance is fine. A call in progress on it returns
%% `{error, stopped}' once the WebAssembly code returns to an import or ends.
-spec stop(wasm()) -> ok | {error, badarg}.
stop(WASM) when is_pid(WASM) ->
    hb_beamr_start:stop(WASM);
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
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, deserialize, [Memory]));
deserialize(_, _) ->
    {error, badarg}.

%% @doc The instance's whole state: its linear memory, every mutable global
%% (exported or not: C code keeps its stack pointer in one), and the
%% fingerprint of its module (SHA-256 of its bytecode), in a versioned binary
%% format (see docs/api.md). Take it between calls (or from an import
%% function, to capture the state at that import).
-spec snapshot(wasm()) -> {ok, binary()} | {error, error_reason()}.
snapshot(WASM) when is_pid(WASM) ->
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, snapshot, []));
snapshot(_) ->
    {error, badarg}.

%% @doc `snapshot(WASM, #{base => Base})': a delta snapshot, holding only the
%% 4 KiB units of memory that differ from `Base' (plus every mutable global,
%% the module's fingerprint and `Base''s state id). `Base' is this instance's
%% last snapshot (full or delta) or last restored one, whose changed units the
%% kernel's dirty-page tracking finds without reading memory (or, where it
%% cannot, a hash of every unit); or any full snapshot of this module,
%% compared unit by unit. It restores as the chain `[Full, ..., Base, Delta]'.
%% Another module's base, or a delta that is not the last snapshot, is
%% `{error, {snapshot_mismatch, Why}}'. `#{}' is {@link snapshot/1}.
%% `method => hash' hashes every unit even where the kernel tracks pages
%% (the default, `auto', uses the kernel where it can);
%% {@link snapshot_info/1} says which method ran.
-spec snapshot(wasm(), #{base => binary(), method => auto | hash}) ->
    {ok, binary()} | {error, error_reason()}.
snapshot(WASM, #{base := Base} = Opts) when is_pid(WASM), is_binary(Base) ->
    case maps:get(method, Opts, auto) of
        Method when Method =:= auto; Method =:= hash ->
            Args = [Base, Method =:= hash],
            hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, snapshot_delta, Args));
        _ ->
            {error, badarg}
    end;
snapshot(WASM, Opts) when is_pid(WASM), Opts =:= #{} ->
    snapshot(WASM);
snapshot(_, _) ->
    {error, badarg}.

%% @doc What a snapshot is: `kind' (`full' or `delta'), `method' (how its
%% units were found: `full', `kernel' (the kernel's dirty-page tracking),
%% `hash' (every unit hashed), `compare' (compared with a full base)),
%% `module' (fingerprint), `id' (its state's id; `none' for a full snapshot
%% taken before any delta was asked of the instance: its id is worked out
%% when it is used as a base), `base' (a delta's base
%% id), `memory_size', `globals' (count), `units' (a delta's count),
%% `version'. Only the header is read.
-spec snapshot_info(binary()) -> {ok, map()} | {error, error_reason()}.
snapshot_info(<<"hbsnap", Version:16/little, Kind, Method, 0:16, 4096:32/little, Module:32/binary,
                Id:32/binary, Base:32/binary, Size:64/little, N:32/little, Rest/binary>>)
  when Version >= 2, Version =< 3, Kind =< 1, Method =< 3, byte_size(Rest) >= 13 * N ->
    % Versions 2 and 3 share a layout (their state ids differ).
    Info = #{version => Version, module => Module, memory_size => Size, globals => N,
             id => case Id of <<0:256>> -> none; _ -> Id end,
             method => element(Method + 1, {full, kernel, hash, compare})},
    case {Kind, Rest} of
        {0, _} ->
            {ok, Info#{kind => full}};
        {1, <<_:(13 * N)/binary, Units:32/little, _/binary>>} ->
            {ok, Info#{kind => delta, base => Base, units => Units}};
        _ ->
            {error, {invalid_snapshot, <<"truncated">>}}
    end;
snapshot_info(<<"hbsnap", 1:16/little, Module:32/binary, Size:64/little, N:32/little, _/binary>>) ->
    {ok, #{version => 1, kind => full, method => full, module => Module, memory_size => Size,
           globals => N}};
snapshot_info(Bin) when is_binary(Bin) ->
    {error, {invalid_snapshot, <<"not an hb_beamr snapshot">>}};
snapshot_info(_) ->
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
%%
%% A chain `[Full, Delta1, Delta2, ...]' restores the state of its last
%% snapshot (see {@link snapshot/2}), the same bit for bit as a full snapshot
%% taken then. The whole chain is checked first: each delta's base must be
%% the snapshot before it (else `snapshot_mismatch': out of order, or
%% another's), each snapshot's id must match its contents (else
%% `invalid_snapshot'). A lone delta is `snapshot_mismatch'.
-spec restore(wasm(), binary() | [binary(), ...]) -> ok | {error, error_reason()}.
restore(WASM, Snapshot) when is_pid(WASM), is_binary(Snapshot) ->
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, restore, [Snapshot]));
restore(WASM, [_ | _] = Chain) when is_pid(WASM) ->
    case lists:all(fun erlang:is_binary/1, Chain) of
        true -> hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, restore, [Chain]));
        false -> {error, badarg}
    end;
restore(_, _) ->
    {error, badarg}.

%% @doc The image of a snapshot, of a chain `[Full, Delta, ...]', or of a
%% live instance's state now (in turn after the requests before it, as
%% {@link snapshot/1}): the state prepared once for forks, its memory
%% written into a sealed memfd. Give it to `start(Bytes, Mode,
%% #{snapshot => Image})' (or {@link fork/2}) any number of times: each fork
%% maps the memory copy-on-write, so a fork costs the same whatever the
%% memory's size, and forks of one image share the pages none of them
%% wrote. Building it copies the memory once (zero 4 KiB units of a
%% snapshot are not stored). An image of an instance on another node is
%% `{error, badarg}' (an image is local: take a {@link snapshot/1});
%% of a stopped instance, `{error, stopped}'; bytes that are not a
%% snapshot (or a bad chain), as in {@link restore/2}.
-spec image(wasm() | binary() | [binary(), ...]) -> {ok, image()} | {error, error_reason()}.
image(WASM) when is_pid(WASM), node(WASM) =:= node() ->
    hb_beamr_node:await(WASM, hb_beamr_node:request(WASM, image_of, []));
image(Snapshot) when is_binary(Snapshot) ->
    hb_beamr_nif:guarded(fun() -> hb_beamr_nif:image(Snapshot) end);
image([_ | _] = Chain) ->
    case lists:all(fun erlang:is_binary/1, Chain) of
        true -> hb_beamr_nif:guarded(fun() -> hb_beamr_nif:image(Chain) end);
        false -> {error, badarg}
    end;
image(_) ->
    {error, badarg}.

%% @doc A fork of a live instance.
%% @equiv fork(WASM, #{})
-spec fork(wasm()) ->
    {ok, wasm(), [import_spec()], [export_spec()]} | {error, error_reason()}.
fork(WASM) ->
    fork(WASM, #{}).

%% @doc A new instance in the state `WASM' is in now: its module started
%% again with the same mode and options (and `Opts' over them, e.g.
%% `import_fun' for a start function that imports), then its memory and
%% every mutable global taken from an {@link image/1} of `WASM', made in
%% turn after the requests before it. The new instance's memory is a
%% copy-on-write view of that image: no byte is copied until written, and
%% writes in either instance are never seen in the other. The result equals
%% `start' + `restore(Snapshot)' of a snapshot taken at that point, bit for
%% bit. A stopped instance is `{error, stopped}'; a fork that fails leaves
%% no instance. An instance on another node is forked there (the new one
%% lives on that node). To fork many times from one state, make the image
%% once and start with `#{snapshot => Image}'.
-spec fork(wasm(), start_opts()) ->
    {ok, wasm(), [import_spec()], [export_spec()]}
    | {ok, wasm(), [import_spec()], [export_spec()], term()}
    | {error, error_reason()}
    | {error, atom(), term(), list(), term()}.
fork(WASM, Opts) when is_pid(WASM), is_map(Opts), node(WASM) =:= node() ->
    case image(WASM) of
        {ok, Image} ->
            case hb_beamr_node:origin(WASM) of
                {ok, {Bytes, Mode, Origin}} -> start(Bytes, Mode, maps:merge(Origin, Opts#{snapshot => Image}));
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end;
fork(WASM, Opts) when is_pid(WASM), is_map(Opts) ->
    Node = node(WASM),
    try
        erpc:call(Node, ?MODULE, fork, [WASM, Opts])
    catch
        error:{erpc, noconnection} -> {error, {nodedown, Node}};
        error:{exception, undef, _} -> {error, {hb_beamr_not_loaded, Node}};
        error:{erpc, Reason} -> {error, {erpc, Reason}}
    end;
fork(_, _) ->
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
    case hb_beamr_node:origin(WASM) of
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

%% @doc Compiles WebAssembly to a WAMR AOT file for `start(Aot, aot)', with
%% the default options.
%% @equiv compile(WasmBinary, #{})
-spec compile(binary()) -> {ok, binary()} | {error, term()}.
compile(WasmBinary) ->
    compile(WasmBinary, #{}).

%% @doc Compiles WebAssembly to a WAMR AOT file (see {@link compile_opts()}).
%% Runs on a compiler thread of the NIF's own, one compilation at a time:
%% waiting for it holds no scheduler, so instances start and calls run
%% while modules compile. Modules
%% that use exception handling are rewritten into host calls first
%% (hb_beamr_eh). The output is sealed with this node's key (hb_beamr_seal)
%% and is the same for the same input and options. Errors:
%% `{invalid_wasm, Why}', `{compile_failed, Why}' (for instance exception
%% handling the rewrite cannot take), `{invalid_option, {Name, Value}}',
%% `{thread_spawn_failed, Why}' (the compiler thread could not start), and
%% `compiler_unavailable' where hb_beamr was built without LLVM.
-spec compile(binary(), compile_opts()) -> {ok, binary()} | {error, term()}.
compile(WasmBinary, Opts) ->
    hb_beamr_compile:compile(WasmBinary, Opts).

%% @doc Empties the compile cache behind `start(Bytecode, aot)', in memory
%% and on disk (every entry of `<cache_dir>/aot', nothing else; the sealing
%% key stays). See hb_beamr_aot_cache, whose disk budget is application env
%% `aot_cache_max_bytes' (default 1 GiB).
%% @equiv hb_beamr_aot_cache:clear()
-spec clear_aot_cache() -> ok | {error, term()}.
clear_aot_cache() ->
    hb_beamr_aot_cache:clear().

%% @doc The registry of loaded modules that instances of the same bytes
%% share (see docs/architecture.md, "Shared modules"): `loads' (modules loaded),
%% `hits' (starts that found theirs loaded), `evictions', `refused' (starts
%% refused with `{error, {module_limit, _}}'), `live_modules' and
%% `idle_modules' (loaded, with and without a live instance), `instances'
%% (of shared modules, live) and `bytes' (of the loaded modules). Bounded by
%% application env `module_cache_max_bytes' (default 1 GiB, all loaded
%% modules) and `module_cache_idle_bytes' (default 64 MiB, those kept
%% without a live instance, least recently used evicted first).
-spec module_stats() -> #{atom() => non_neg_integer()} | {error, driver_load_failed}.
module_stats() ->
    hb_beamr_nif:guarded(fun hb_beamr_nif:module_stats/0).

%% @doc Frees every loaded module without a live instance; returns how many.
-spec purge_modules() -> non_neg_integer() | {error, driver_load_failed}.
purge_modules() ->
    hb_beamr_nif:guarded(fun hb_beamr_nif:purge_modules/0).

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

