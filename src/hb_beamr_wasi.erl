%%% @doc WASI preview 1 (`wasi_snapshot_preview1') for hb_beamr, over an
%%% in-memory file system ({@link hb_beamr_wasi_fs}). The state is plain
%%% Erlang data: arguments, environment, file descriptors, files, captured
%%% stdout and stderr, the clock and the random generator.
%%%
%%% Run a command module (one exporting `_start') in one go:
%%% ```
%%% {ok, #{exit_code := 0, stdout := Out, files := Files}} =
%%%     hb_beamr_wasi:run(Wasm, #{args => [<<"prog">>, <<"x">>],
%%%                               preopens => #{<<"/data">> => #{<<"in.txt">> => <<"hi">>}}}).
%%% '''
%%% or serve WASI next to imports of your own, with {@link new_state/1} and
%%% {@link import_fun/1}.
%%%
%%% Functions served: `args_*', `environ_*', `clock_res_get',
%%% `clock_time_get', `random_get', `fd_read', `fd_write', `fd_pread',
%%% `fd_pwrite', `fd_seek', `fd_tell', `fd_close', `fd_fdstat_get',
%%% `fd_fdstat_set_flags', `fd_filestat_get', `fd_prestat_get',
%%% `fd_prestat_dir_name', `fd_readdir', `path_open', `path_filestat_get',
%%% `path_create_directory', `path_remove_directory', `path_unlink_file',
%%% `path_rename', `proc_exit', `sched_yield', `poll_oneoff' (clock
%%% subscriptions; fd subscriptions answer `notsup'). Every other WASI
%%% function returns `ENOSYS'. Errors are the WASI preview 1 errno values
%%% ({@link errno/1}).
%%%
%%% A guest is an attacker: what it can make the host hold is bounded by
%%% the limits of {@link limits()} (`max_io', `max_output', `fs_budget'),
%%% options of {@link run/2} and {@link new_state/1}.
-module(hb_beamr_wasi).

-export([run/2, new_state/1, import_fun/1, import_fun/2, handle/4]).
-export([stdout/1, stderr/1, files/1, errno/1, default_limits/0]).

-export_type([state/0, run_opts/0, state_opts/0, result/0, limits/0]).

-define(MODULE_NAME, <<"wasi_snapshot_preview1">>).
-define(EXIT, hb_beamr_wasi_exit).
-define(TRAP_EXIT_CODE, 134).

-type stream() :: binary() | {host, file:io_device() | port()}.
%% Captured bytes, or where the bytes go to (or come from) at once: output
%% with file:write/2 (an I/O device in `latin1' for bytes as they are);
%% input from a port or an I/O device (see hb_beamr_wasi_calls).
-type fd() :: #{
    type := stdin | stdout | stderr | dir | file,
    root => binary(),
    rel => hb_beamr_wasi_fs:rel(),
    pos => non_neg_integer(),
    flags => non_neg_integer(),
    rights => non_neg_integer(),
    preopen => boolean()
}.
-type state() :: #{
    args := [binary()],
    env := [binary()],
    fs := hb_beamr_wasi_fs:fs(),
    fds := #{non_neg_integer() => fd()},
    stdin := stream() | {host, file:io_device() | port(), binary() | eof},
    stdout := stream(),
    stderr := stream(),
    clock := real | {fixed, non_neg_integer()},
    random := os | {seeded, term()},
    tty := boolean(),
    limits := #{max_io := pos_integer(), max_output := non_neg_integer()},
    atom() => term()
}.
%% Plain data, except for `{host, Device}' streams. A fallback import
%% function may keep keys of its own in it. `deadline' (optional, in
%% erlang:monotonic_time(millisecond)) caps how long `poll_oneoff' sleeps,
%% so that a call's timeout is kept (run/2 sets it from `timeout').
-type state_opts() :: #{
    args => [binary() | string()],
    env => #{binary() | string() => binary() | string()},
    stdin => stream(),
    stdout => {host, file:io_device()},
    stderr => {host, file:io_device()},
    preopens => #{binary() | string() => #{binary() | string() => iodata() | dir}},
    clock => real | {fixed, non_neg_integer()},
    random => os | {seed, integer()},
    tty => boolean(),
    max_io => pos_integer(),
    max_output => non_neg_integer(),
    fs_budget => non_neg_integer() | infinity
}.
%% `clock': the real clocks, or every clock fixed at `Ns' nanoseconds (and
%% `poll_oneoff' advances it instead of sleeping). `random': the OS's
%% strong random bytes, or a generator seeded with an integer. `tty': report
%% stdin/stdout/stderr as terminals (wasi-libc then line-buffers stdout).
%% `max_io', `max_output', `fs_budget': see limits().
-type limits() :: #{max_io => pos_integer(), max_output => non_neg_integer(),
                    fs_budget => non_neg_integer() | infinity}.
%% What a guest may make the host hold; a guest is an attacker, so none of
%% these grows with the bytes its iovecs name or the offsets it writes at.
%% <ul>
%% <li>`max_io' (16 MiB): the most bytes one `fd_read', `fd_write',
%%     `fd_pread' or `fd_pwrite' moves; past it the call is a short read or
%%     write (the count so far, as POSIX allows). The bytes go through the
%%     host 64 KiB at a time, and only the first 1,024 iovecs (IOV_MAX) are
%%     looked at.</li>
%% <li>`max_output' (64 MiB): the most bytes kept of stdout, and of stderr,
%%     when captured (not `{host, Device}'); a write is cut short at it,
%%     then answers `nospc'.</li>
%% <li>`fs_budget' (256 MiB, or `infinity'): the most bytes the guest may
%%     add to the in-memory file system on top of the preopened files:
%%     file sizes (holes count, as the result hands files back whole; they
%%     are not stored while the program runs) plus each new file's and
%%     directory's path and 64 bytes. Past it writes are cut short, then
%%     answer `nospc', as do growing `fd_filestat_set_size', `path_open'
%%     with `O_CREAT' and `path_create_directory'. One file cannot grow
%%     past 1 GiB (`fbig').</li>
%% </ul>
-type run_opts() :: #{
    mode => hb_beamr:mode(),
    args => [binary() | string()],
    env => #{binary() | string() => binary() | string()},
    stdin => stream(),
    stdout => {host, file:io_device()},
    stderr => {host, file:io_device()},
    tty => boolean(),
    preopens => #{binary() | string() => #{binary() | string() => iodata() | dir}},
    clock => real | {fixed, non_neg_integer()},
    random => os | {seed, integer()},
    max_io => pos_integer(),
    max_output => non_neg_integer(),
    fs_budget => non_neg_integer() | infinity,
    max_memory => pos_integer(),
    wasm_stack => pos_integer(),
    native_stack => pos_integer(),
    timeout => timeout(),
    import_fun => hb_beamr:import_fun()
}.
-type result() :: #{
    exit_code := integer(),
    stdout := binary(),
    stderr := binary(),
    files := #{binary() => binary()},
    trap => binary()
}.
%% `trap' is there when the program trapped (`abort()' is a trap); its
%% exit code is then 134, as wasmtime's. `stdout' and `stderr' are empty
%% when they went to a host file (`{host, Device}' in the options).

%%% Running a command

%% @doc Runs a WASI command module's `_start' and returns its exit code,
%% what it wrote to stdout and stderr, and every file under the preopened
%% directories by full guest path. `mode' `aot' with bytecode compiles it
%% first ({@link hb_beamr:compile/1}). A trap (`abort()') is exit code 134
%% with `trap' set. WASI is served from the start: a start function or
%% constructors that call it while the module instantiates work too.
%% Imports of other modules go to `import_fun' (by default they fail the
%% run with `{unknown_import, Module, Name}'). The limits ({@link limits()})
%% bound what the program makes the host hold; `files' in the result holds
%% every file whole, holes as zeros.
-spec run(binary(), run_opts()) -> {ok, result()} | {error, term()}.
run(Wasm, Opts) when is_binary(Wasm), is_map(Opts) ->
    case hb_beamr_opts:wasi(Opts) of
        {ok, Checked} ->
            case state(Checked) of
                {ok, State} ->
                    case load(Wasm, maps:get(mode, Checked)) of
                        {ok, {Mode, Bytes}} -> run_module(Bytes, Mode, State, Opts);
                        {error, _} = Error -> Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        {error, _} = Error ->
            Error
    end;
run(_Wasm, _Opts) ->
    {error, badarg}.

load(<<0, "asm", _/binary>> = Wasm, aot) ->
    case hb_beamr:compile(Wasm) of
        {ok, Aot} -> {ok, {aot, Aot}};
        {error, _} = Error -> Error
    end;
load(Bytes, Mode) -> {ok, {Mode, Bytes}}.

%% Starts the module with WASI served (constructors and start functions may
%% call it while the module instantiates), then calls `_start'. The last
%% state is kept in the process dictionary too: a trap returns no state, and
%% the output written before it must still be reported.
run_module(Bytes, Mode, State0, Opts) ->
    Key = {?MODULE, make_ref()},
    Serve = import_fun(maps:get(import_fun, Opts, fun unknown_import/3)),
    Track = fun(S, Request, O) ->
        {ok, Results, S1} = Serve(S, Request, O),
        put(Key, S1),
        {ok, Results, S1}
    end,
    {State, Timeout} = case maps:get(timeout, Opts, infinity) of
        Ms when is_integer(Ms), Ms >= 0 ->
            Deadline = erlang:monotonic_time(millisecond) + Ms,
            {State0#{deadline => Deadline}, fun() -> #{timeout => max(0, Deadline - erlang:monotonic_time(millisecond))} end};
        Other ->
            {State0, fun() -> #{timeout => Other} end}
    end,
    StartOpts = maps:merge(maps:with([max_memory, wasm_stack, native_stack], Opts),
                           (Timeout())#{import_fun => Track, state => State}),
    put(Key, State),
    try hb_beamr:start(Bytes, Mode, StartOpts) of
        {ok, WASM, _Imports, Exports, Started} ->
            try lists:keymember(<<"_start">>, 2, Exports) of
                true -> outcome(hb_beamr:call(WASM, "_start", [], Track, Started, Timeout()), get(Key));
                false -> {error, no_start_function}
            after
                hb_beamr:stop(WASM)
            end;
        Failed ->
            outcome(Failed, get(Key))
    after
        erase(Key)
    end.

outcome({ok, _, Final}, _Last) -> {ok, result(0, Final)};
outcome({error, throw, {?EXIT, Code}, _, Final}, _Last) -> {ok, result(Code, Final)};
outcome({error, throw, {unknown_import, _, _} = Why, _, _}, _Last) -> {error, Why};
outcome({error, Class, Reason, _, _}, _Last) -> {error, {import_failed, Class, Reason}};
outcome({error, {wasm_trap, Why}}, Last) -> {ok, (result(?TRAP_EXIT_CODE, Last))#{trap => Why}};
outcome({error, _} = Error, _Last) -> Error.

-spec unknown_import(state(), hb_beamr:import_request(), map()) -> no_return().
unknown_import(_State, #{module := Module, func := Name}, _Opts) ->
    throw({unknown_import, Module, Name}).

result(Code, State) ->
    #{exit_code => Code, stdout => stdout(State), stderr => stderr(State), files => files(State)}.

%% @doc What the program wrote to stdout (empty when it went to a host file).
-spec stdout(state()) -> binary().
stdout(#{stdout := Out}) when is_binary(Out) -> Out;
stdout(_) -> <<>>.

%% @doc What the program wrote to stderr (empty when it went to a host file).
-spec stderr(state()) -> binary().
stderr(#{stderr := Err}) when is_binary(Err) -> Err;
stderr(_) -> <<>>.

%% @doc Every file of the in-memory file system, by full guest path.
-spec files(state()) -> #{binary() => binary()}.
files(#{fs := FS}) -> hb_beamr_wasi_fs:files(FS).

%%% Composing with other imports

%% @doc A fresh WASI state (see {@link state_opts()}). Preopened
%% directories get file descriptors 3, 4, ... in the order of their sorted
%% names.
-spec new_state(state_opts()) -> {ok, state()} | {error, {invalid_option, term()}}.
new_state(Opts) ->
    case hb_beamr_opts:wasi(Opts) of
        {ok, Checked} -> state(Checked);
        {error, _} = Error -> Error
    end.

%% @doc The limits a state gets when its options name none (see
%% {@link limits()}).
-spec default_limits() -> #{max_io := pos_integer(), max_output := non_neg_integer(),
                            fs_budget := non_neg_integer() | infinity}.
default_limits() ->
    hb_beamr_opts:wasi_limits().

%% A state from options hb_beamr_opts:wasi/1 has checked (and filled in).
state(#{fs_budget := Budget} = Opts) ->
    case hb_beamr_wasi_fs:new(maps:get(preopens, Opts), Budget) of
        {ok, FS, Roots} ->
            Stdio = #{0 => #{type => stdin}, 1 => #{type => stdout}, 2 => #{type => stderr}},
            Fds = maps:from_list(lists:zip(lists:seq(3, length(Roots) + 2),
                                           [#{type => dir, root => R, rel => [], preopen => true} || R <- Roots])),
            {ok, #{
                args => [bin(A) || A <- maps:get(args, Opts)],
                env => [<<(bin(K))/binary, "=", (bin(V))/binary>>
                        || {K, V} <- lists:sort(maps:to_list(maps:get(env, Opts)))],
                fs => FS,
                fds => maps:merge(Stdio, Fds),
                stdin => maps:get(stdin, Opts),
                stdout => maps:get(stdout, Opts),
                stderr => maps:get(stderr, Opts),
                clock => maps:get(clock, Opts),
                random => random(maps:get(random, Opts)),
                tty => maps:get(tty, Opts),
                limits => maps:with([max_io, max_output], Opts)
            }};
        {error, _} = Error ->
            Error
    end.

random(os) -> os;
random({seed, Seed}) -> {seeded, rand:export_seed_s(rand:seed_s(exsss, Seed))}.

bin(B) when is_binary(B) -> B;
bin(L) -> unicode:characters_to_binary(L).

%% @doc An import function for {@link hb_beamr:call/6} whose state is a
%% WASI state ({@link new_state/1}): it serves `wasi_snapshot_preview1' and
%% hands every other import to `Fallback', with the same state.
-spec import_fun(hb_beamr:import_fun()) -> hb_beamr:import_fun().
import_fun(Fallback) when is_function(Fallback, 3) ->
    serve(Fallback, fun(State) -> State end, fun(_State, Wasi) -> Wasi end).

%% @doc Like {@link import_fun/1}, for a caller whose state is a map that
%% holds the WASI state under `Key'.
-spec import_fun(hb_beamr:import_fun(), term()) -> hb_beamr:import_fun().
import_fun(Fallback, Key) when is_function(Fallback, 3) ->
    serve(Fallback, fun(State) -> maps:get(Key, State) end, fun(State, Wasi) -> State#{Key := Wasi} end).

serve(Fallback, Get, Put) ->
    fun(State, Request = #{module := Module}, Opts) ->
        case Module of
            ?MODULE_NAME ->
                #{func := Func, args := Args, instance := WASM} = Request,
                {Results, Wasi} = handle(Func, Args, WASM, Get(State)),
                {ok, Results, Put(State, Wasi)};
            _ ->
                Fallback(State, Request, Opts)
        end
    end.

%% @doc Serves one WASI function: its results and the new state. `proc_exit'
%% raises `throw({hb_beamr_wasi_exit, Code})', which ends the running call
%% (`hb_beamr:call/6' returns `{error, throw, {hb_beamr_wasi_exit, Code},
%% Stack, State}'). Functions not served return `ENOSYS'.
-spec handle(binary(), [integer()], hb_beamr:wasm(), state()) -> {[integer()], state()}.
handle(<<"proc_exit">>, [Code], _WASM, _State) ->
    throw({?EXIT, Code});
handle(Func, Args, WASM, State) ->
    try hb_beamr_wasi_calls:call(Func, Args, WASM, State) of
        {ok, NewState} -> {[0], NewState};
        nosys -> {[errno(nosys)], State}
    catch
        throw:{wasi_errno, Name} -> {[errno(Name)], State}
    end.

%% @doc The WASI preview 1 errno value of an error name (`noent' is 44).
-spec errno(atom()) -> 0..76.
errno(Name) ->
    hb_beamr_wasi_calls:errno(Name).
