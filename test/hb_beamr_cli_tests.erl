%%% @doc The command line (erlang/hb_beamr_cli.erl, as ./hb_beamr runs it)
%%% as a child process: exit status, stdin, and `--dir'. The CLI runs
%%% bytecode either way, so these run in the wasm run only.
%%%
%%% Every run is bounded: `timeout' (coreutils) kills the child's process
%%% group after ?CMD_TIMEOUT s, this side gives up shortly after, and a run
%%% that timed out fails with its command line and what it printed so far.
%%% Each case is a test of its own with an explicit timeout: EUnit's
%%% `{timeout, T, [Tests]}' bounds the group only, and each test in it keeps
%%% the default of 5 s, which six CLI runs under ASan on a busy machine
%%% exceed (issue 27).
-module(hb_beamr_cli_tests).
-include_lib("eunit/include/eunit.hrl").
-include_lib("kernel/include/file.hrl").

%% One run takes about 0.5 s, 1 s with ASan, 5-25 s under ASan on a
%% saturated 2-core machine.
-define(CMD_TIMEOUT, 60).
-define(TEST_TIMEOUT, 200).

cli_test_() ->
    case hb_beamr_test_util:mode() of
        aot -> [];
        wasm -> [{Name, {timeout, ?TEST_TIMEOUT, Fun}} || {Name, Fun} <- cases()]
    end.

cases() ->
    [
        {"exit status of a WASI command", fun() ->
            ?assertMatch({5, <<"exiting with 5\n">>, _}, cli(["run", "test/wasi/wasi_test.wasm", "exit", "5"]))
        end},
        {"a trap is status 134", fun() ->
            ?assertMatch({134, <<"about to abort\n">>, <<"hb_beamr: test/wasi/wasi_test.wasm: wasm trap: unreachable\n">>},
                         cli(["run", "test/wasi/wasi_test.wasm", "abort"]))
        end},
        {"stdin", fun() ->
            ?assertMatch({0, <<"HI THERE\n">>, _},
                         cli(["run", "test/wasi/wasi_test.wasm", "cat"], #{stdin => "test/wasi/cli-stdin.txt"}))
        end},
        {"stdin is /dev/null unless given: a reader sees EOF", fun() ->
            ?assertMatch({0, <<>>, <<"0 bytes\n">>}, cli(["run", "test/wasi/wasi_test.wasm", "cat"]))
        end},
        {"WASI called while the module instantiates", fun() ->
            ?assertEqual({0, <<"ctor\nmain\n">>, <<>>}, cli(["run", "test/wasi/ctor.wasm"])),
            ?assertEqual({4, <<"ctor\n">>, <<>>}, cli(["run", "--env", "A=1", "test/wasi/ctor.wasm"]))
        end},
        {"an export of a module that is no WASI command", fun() ->
            ?assertEqual({0, <<"120.0\n">>, <<>>}, cli(["run", "test/test.wasm", "fac", "5.0"]))
        end},
        {"a run past its timeout fails with its output so far", fun timeout_reported/0},
        {"--dir: written back, never through a symbolic link", fun dir_written_back/0}
    ].

%% The helper itself: a command that outlives its timeout is killed and
%% reported, not waited for.
timeout_reported() ->
    {Us, Result} = timer:tc(fun() ->
        catch run_bounded(["sh", "-c", "echo started; exec sleep 100"], #{timeout => 1})
    end),
    ?assertMatch({'EXIT', {{cli_timeout, _}, _}}, Result),
    {'EXIT', {{cli_timeout, Info}, _}} = Result,
    ?assertEqual(<<"started\n">>, proplists:get_value(stdout, Info)),
    ?assertMatch("sh -c " ++ _, proplists:get_value(command, Info)),
    ?assert(Us < 20000000).

dir_written_back() ->
    with_dirs(["box", "outside"], fun([Dir, Outside]) ->
        ok = file:write_file(filename:join(Dir, "in.txt"), "abcdef"),
        ok = file:write_file(filename:join(Dir, "old.txt"), "x"),
        % "moved" leads outside: the guest does not see it, and the files it
        % puts under its own "moved" are not written through it.
        ok = file:make_symlink(Outside, filename:join(Dir, "moved")),
        {0, _, _} = cli(["run", "--dir", Dir ++ "::/data", "test/wasi/wasi_test.wasm", "files"]),
        ?assertEqual({ok, <<"@__cba!">>}, file:read_file(filename:join(Dir, "out.txt"))),
        {0, Out, _} = cli(["run", "--dir", Dir ++ "::/data", "test/wasi/wasi_test.wasm", "dirs"]),
        ?assertMatch({match, _}, re:run(Out, "/data: in.txt old.txt out.txt sub\n")),
        ?assertEqual({ok, []}, file:list_dir(Outside)),
        ?assertEqual({error, enoent}, file:read_file(filename:join(Dir, "old.txt"))),
        ?assertEqual({ok, Outside}, file:read_link(filename:join(Dir, "moved")))
    end).

%%% Helpers

%% Runs the CLI with Args, each one argument as given (no shell); stdin
%% from /dev/null unless `stdin' names a file. {ExitStatus, Stdout, Stderr}.
cli(Args) ->
    cli(Args, #{}).

cli(Args, Opts) ->
    Lib = filename:dirname(filename:dirname(filename:dirname(code:which(hb_beamr)))),
    run_bounded(["escript", "erlang/hb_beamr_cli.erl" | Args], Opts#{env => [{"ERL_LIBS", Lib} | maps:get(env, Opts, [])]}).

%% Runs Argv under `timeout -k 5 T', in this directory, stdin from
%% `stdin' (default /dev/null: a child that reads to EOF cannot hang),
%% stderr to a file of its own. Fails with {cli_timeout, Info} when the
%% child runs past T seconds (default ?CMD_TIMEOUT).
run_bounded(Argv, Opts) ->
    T = maps:get(timeout, Opts, ?CMD_TIMEOUT),
    Stdin = maps:get(stdin, Opts, "/dev/null"),
    ErrFile = tmp_name("stderr"),
    Script = "in=$1; err=$2; shift 2; exec timeout -k 5 \"$@\" <\"$in\" 2>\"$err\"",
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", Script, "sh", Stdin, ErrFile, integer_to_list(T) | Argv]},
                      {env, maps:get(env, Opts, [])}, exit_status, binary, use_stdio, hide]),
    Deadline = erlang:monotonic_time(millisecond) + (T + 10) * 1000,
    Result = collect(Port, Deadline, []),
    {ok, Err} = case file:read_file(ErrFile) of {error, enoent} -> {ok, <<>>}; Read -> Read end,
    _ = file:delete(ErrFile),
    Command = lists:flatten(lists:join(" ", [printable(A) || A <- Argv])),
    case Result of
        % 124: timeout's own status when it stopped the child (137 after -k).
        {timeout, Out} -> erlang:error({cli_timeout, [{command, Command}, {stdout, Out}, {stderr, Err}, {killed, true}]});
        {Status, Out} when Status =/= 124, Status =/= 137 -> {Status, Out, Err};
        {_, Out} -> erlang:error({cli_timeout, [{command, Command}, {stdout, Out}, {stderr, Err}]})
    end.

collect(Port, Deadline, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, Deadline, [Acc, Data]);
        {Port, {exit_status, Status}} -> {Status, iolist_to_binary(Acc)}
    after max(0, Deadline - erlang:monotonic_time(millisecond)) ->
        % timeout(1) did not end it: kill its process group (it leads one).
        case erlang:port_info(Port, os_pid) of
            {os_pid, Pid} -> os:cmd("kill -KILL -" ++ integer_to_list(Pid) ++ " " ++ integer_to_list(Pid));
            undefined -> ok
        end,
        catch port_close(Port),
        {timeout, iolist_to_binary(Acc)}
    end.

printable(A) when is_binary(A) -> binary_to_list(A);
printable(A) -> A.

tmp_name(What) ->
    filename:join(os:getenv("TMPDIR", "/tmp"),
                  "hb_beamr_cli_" ++ What ++ "_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive]))).

%% Runs Fun on fresh directories, one per name; removes them afterwards.
with_dirs(Names, Fun) ->
    Base = tmp_name("dirs"),
    Dirs = [filename:join(Base, N) || N <- Names],
    [ok = filelib:ensure_dir(filename:join(D, "x")) || D <- Dirs],
    try
        Fun(Dirs)
    after
        _ = os:cmd("chmod -R u+rwx '" ++ Base ++ "' 2>/dev/null; rm -rf '" ++ Base ++ "'")
    end.
