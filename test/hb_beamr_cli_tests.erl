%%% @doc The command line (erlang/hb_beamr_cli.erl, as ./hb_beamr runs it)
%%% as a child process: exit status, stdin, and `--dir'. The `--dir' cases
%%% run test/fixtures/wasi/cli_fs.c as bytecode, or in the aot run as an .aot file.
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
%% test/fixtures/wasi/cli_fs.c (ls, put and cat, in order), in the suites' mode.
-define(FS, fs_program()).

cli_test_() ->
    Cases = case hb_beamr_test_util:mode() of
        aot -> dir_cases();
        wasm -> cases() ++ dir_cases()
    end,
    {setup, fun() -> ok end, fun(_) -> forget_fs_program() end,
     [{Name, {timeout, ?TEST_TIMEOUT, Fun}} || {Name, Fun} <- Cases]}.

cases() ->
    [
        {"exit status of a WASI command", fun() ->
            ?assertMatch({5, <<"exiting with 5\n">>, _}, cli(["run", "test/fixtures/wasi/wasi_test.wasm", "exit", "5"]))
        end},
        {"a trap is status 134", fun() ->
            ?assertMatch({134, <<"about to abort\n">>, <<"hb_beamr: test/fixtures/wasi/wasi_test.wasm: wasm trap: unreachable\n">>},
                         cli(["run", "test/fixtures/wasi/wasi_test.wasm", "abort"]))
        end},
        {"stdin", fun() ->
            ?assertMatch({0, <<"HI THERE\n">>, _},
                         cli(["run", "test/fixtures/wasi/wasi_test.wasm", "cat"], #{stdin => "test/fixtures/wasi/cli-stdin.txt"}))
        end},
        {"stdin is /dev/null unless given: a reader sees EOF", fun() ->
            ?assertMatch({0, <<>>, <<"0 bytes\n">>}, cli(["run", "test/fixtures/wasi/wasi_test.wasm", "cat"]))
        end},
        {"WASI called while the module instantiates", fun() ->
            ?assertEqual({0, <<"ctor\nmain\n">>, <<>>}, cli(["run", "test/fixtures/wasi/ctor.wasm"])),
            ?assertEqual({4, <<"ctor\n">>, <<>>}, cli(["run", "--env", "A=1", "test/fixtures/wasi/ctor.wasm"]))
        end},
        {"an export of a module that is no WASI command", fun() ->
            ?assertEqual({0, <<"120.0\n">>, <<>>}, cli(["run", "test/fixtures/test.wasm", "fac", "5.0"]))
        end},
        {"errors are messages and status 1, also for names outside Latin-1", fun() ->
            ?assertEqual({1, <<>>, <<"hb_beamr: cannot read nope-日本.wasm: no such file or directory\n"/utf8>>},
                         cli(["run", <<"nope-日本.wasm"/utf8>>])),
            ?assertMatch({1, <<>>, <<"hb_beamr: --dir nope-日本: not a directory\n"/utf8>>},
                         cli(["run", "--dir", <<"nope-日本"/utf8>>, ?FS]))
        end},
        {"a run past its timeout fails with its output so far", fun timeout_reported/0},
        {"--dir: written back, never through a symbolic link", fun dir_written_back/0}
    ].

dir_cases() ->
    [
        {"--dir: two preopens of one guest directory are refused", fun dir_same_guest/0},
        {"--dir: nested guest directories, overlapping host ones are refused", fun dir_nested/0},
        {"--dir: UTF-8 names both ways (UTF-8 and C locale)", fun dir_utf8/0},
        {"--dir: FIFOs and links are not seen, and never opened or replaced", fun dir_special_files/0}
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
        {0, _, _} = cli(["run", "--dir", Dir ++ "::/data", "test/fixtures/wasi/wasi_test.wasm", "files"]),
        ?assertEqual({ok, <<"@__cba!">>}, file:read_file(filename:join(Dir, "out.txt"))),
        {0, Out, _} = cli(["run", "--dir", Dir ++ "::/data", "test/fixtures/wasi/wasi_test.wasm", "dirs"]),
        ?assertMatch({match, _}, re:run(Out, "/data: in.txt old.txt out.txt sub\n")),
        ?assertEqual({ok, []}, file:list_dir(Outside)),
        ?assertEqual({error, enoent}, file:read_file(filename:join(Dir, "old.txt"))),
        ?assertEqual({ok, Outside}, file:read_link(filename:join(Dir, "moved")))
    end).

%% Issue 19 item 3: the second preopen hid the first, and write-back
%% deleted a's files and copied b's into a.
dir_same_guest() ->
    with_dirs(["a", "b"], fun([A, B]) ->
        ok = file:write_file(filename:join(A, "keep.txt"), "keep"),
        ok = file:write_file(filename:join(B, "other.txt"), "other"),
        [begin
             {Status, Out, Err} = cli(["run", "--dir", A ++ "::" ++ GA, "--dir", B ++ "::" ++ GB, ?FS, "ls", "/d"]),
             ?assertEqual({1, <<>>}, {Status, Out}),
             ?assertMatch({match, _}, re:run(Err, "overlap"))
         end || {GA, GB} <- [{"/d", "/d"}, {"/d/", "//d/."}]],
        ?assertEqual({ok, ["keep.txt"]}, file:list_dir(A)),
        ?assertEqual({ok, <<"keep">>}, file:read_file(filename:join(A, "keep.txt"))),
        ?assertEqual({ok, ["other.txt"]}, file:list_dir(B))
    end).

%% Item 4: b's files landed in a/sub. Host directories given twice (or one
%% inside another) would be written back twice.
dir_nested() ->
    with_dirs(["a", "b"], fun([A, B]) ->
        ok = file:write_file(filename:join(B, "other.txt"), "other"),
        ok = file:make_dir(filename:join(A, "in")),
        Refused = fun(Dirs) ->
            {Status, Out, Err} = cli(["run" | lists:append([["--dir", D] || D <- Dirs])] ++ [?FS, "put", "/d/new.txt", "x"]),
            ?assertEqual({1, <<>>}, {Status, Out}),
            ?assertMatch({match, _}, re:run(Err, "overlap"))
        end,
        Refused([A ++ "::/d", B ++ "::/d/sub"]),
        Refused([B ++ "::/d/sub/deeper", A ++ "::/d"]),
        Refused([A ++ "::/", B ++ "::/d"]),
        Refused([A ++ "::/d", A ++ "::/e"]),
        Refused([A ++ "::/d", A ++ "/in/::/e"]),
        Refused([A ++ "/in/../::/d", A ++ "::/e"]),
        ?assertEqual({ok, ["in"]}, file:list_dir(A)),
        ?assertEqual({ok, ["other.txt"]}, file:list_dir(B)),
        % Side by side is fine.
        {0, <<>>, <<>>} = cli(["run", "--dir", A ++ "::/d", "--dir", B ++ "::/dd", ?FS, "put", "/dd/new.txt", "x"]),
        ?assertEqual({ok, <<"x">>}, file:read_file(filename:join(B, "new.txt"))),
        ?assertEqual({ok, ["in"]}, file:list_dir(A))
    end).

%% Item 5: a host name outside Latin-1 crashed the CLI (exit 127), and a
%% guest's é.txt landed as Ã©.txt. Names are bytes both ways, the guest's
%% UTF-8, whatever the VM's file name encoding (the C locale makes it
%% latin1); names that are not UTF-8 are left out and left alone.
dir_utf8() ->
    [with_dirs(["c"], fun([C]) ->
         ok = file:write_file(filename:join(C, <<"日本.txt"/utf8>>), "jp"),
         Raw = filename:join(C, <<"raw", 16#e9>>),
         ok = file:write_file(Raw, "latin-1 name"),
         Name = <<"é-"/utf8, Locale/binary, ".txt">>,
         ?assertMatch({0, <<"/c: 日本.txt\n/c/日本.txt: jp\n"/utf8>>, _},
                      cli(["run", "--dir", C ++ "::/c", ?FS, "ls", "/c", "cat", <<"/c/日本.txt"/utf8>>,
                           "put", <<"/c/", Name/binary>>, Locale],
                          #{env => [{"LC_ALL", binary_to_list(Locale)}]})),
         ?assertEqual({ok, Locale}, file:read_file(filename:join(C, Name))),
         ?assertEqual({ok, <<"latin-1 name">>}, file:read_file(Raw)),
         {ok, Names} = file:list_dir_all(list_to_binary(C)),
         ?assertEqual(3, length(Names))
     end) || Locale <- [<<"C.UTF-8">>, <<"C">>]].

%% Item 6: a guest file named like a host FIFO hung write-back (opening
%% the FIFO blocks). FIFOs, sockets, devices and symbolic links are left
%% out on load and never opened, written through or replaced.
dir_special_files() ->
    with_dirs(["c", "outside"], fun([C, Outside]) ->
        "" = os:cmd("mkfifo '" ++ filename:join(C, "pipe") ++ "'"),
        Target = filename:join(Outside, "target.txt"),
        ok = file:write_file(Target, "outside"),
        ok = file:make_symlink(Target, filename:join(C, "link")),
        {Status, Out, Err} = cli(["run", "--dir", C ++ "::/c", ?FS, "ls", "/c",
                                  "put", "/c/pipe", "x", "put", "/c/link", "y", "put", "/c/plain", "z"],
                                 #{timeout => 20}),
        ?assertEqual({0, <<"/c:\n">>}, {Status, Out}),
        ?assertMatch({match, _}, re:run(Err, "leaving pipe alone")),
        ?assertMatch({match, _}, re:run(Err, "leaving link alone")),
        ?assertMatch({ok, #file_info{type = other}}, file:read_link_info(filename:join(C, "pipe"))),
        ?assertEqual({ok, Target}, file:read_link(filename:join(C, "link"))),
        ?assertEqual({ok, <<"outside">>}, file:read_file(Target)),
        ?assertEqual({ok, <<"z">>}, file:read_file(filename:join(C, "plain")))
    end).

%%% Helpers

forget_fs_program() ->
    case persistent_term:get({?MODULE, fs_program}, undefined) of
        undefined -> ok;
        File -> _ = file:delete(File), _ = persistent_term:erase({?MODULE, fs_program}), ok
    end.

%% test/fixtures/wasi/cli_fs.wasm, or in the aot run an .aot file of it (the CLI
%% picks the mode by the extension), compiled once.
fs_program() ->
    Wasm = "test/fixtures/wasi/cli_fs.wasm",
    case hb_beamr_test_util:mode() of
        wasm -> Wasm;
        aot ->
            Key = {?MODULE, fs_program},
            case persistent_term:get(Key, undefined) of
                undefined ->
                    {ok, Aot} = hb_beamr:compile(hb_beamr_test_util:fixture("wasi/cli_fs.wasm")),
                    File = tmp_name("cli_fs") ++ ".aot",
                    ok = file:write_file(File, Aot),
                    persistent_term:put(Key, File),
                    File;
                File ->
                    File
            end
    end.

%% Runs the CLI with Args, each one argument as given (no shell); stdin
%% from /dev/null unless `stdin' names a file. {ExitStatus, Stdout, Stderr}.
cli(Args) ->
    cli(Args, #{}).

cli(Args, Opts) ->
    Lib = filename:dirname(filename:dirname(filename:dirname(code:which(hb_beamr)))),
    % HB_BEAMR_CLI: another copy of the CLI to test (an older one, say).
    Cli = os:getenv("HB_BEAMR_CLI", "erlang/hb_beamr_cli.erl"),
    run_bounded(["escript", Cli | Args], Opts#{env => [{"ERL_LIBS", Lib} | maps:get(env, Opts, [])]}).

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
