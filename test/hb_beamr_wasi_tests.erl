%%% @doc hb_beamr_wasi: the C program test/fixtures/wasi/wasi_test.c run as a WASI
%%% command (output, files and exit codes, in the suites' mode), the import
%%% fun composed with the caller's own imports (test/fixtures/wasi/compose.wat),
%%% errno results of single functions, and the in-memory file system's path
%%% sandbox. The command line is tested in hb_beamr_cli_tests.
-module(hb_beamr_wasi_tests).
-include_lib("eunit/include/eunit.hrl").

-define(WASI, <<"wasi_snapshot_preview1">>).

%%% The C program, in the suites' mode

%% The program's bytes in the suites' mode (an AOT file compiled once).
program() ->
    Key = {?MODULE, program, hb_beamr_test_util:mode()},
    case persistent_term:get(Key, undefined) of
        undefined ->
            Wasm = hb_beamr_test_util:fixture("wasi/wasi_test.wasm"),
            Bytes = case hb_beamr_test_util:mode() of
                wasm -> Wasm;
                aot -> {ok, Aot} = hb_beamr:compile(Wasm), Aot
            end,
            persistent_term:put(Key, Bytes),
            Bytes;
        Bytes ->
            Bytes
    end.

run(Args) ->
    run(Args, #{}).

run(Args, Opts) ->
    {ok, Result} = hb_beamr_wasi:run(program(), Opts#{mode => hb_beamr_test_util:mode(),
                                                      args => [<<"wasi_test">> | Args]}),
    Result.

program_test_() ->
    % The first test compiles the program in aot mode (seconds on a busy machine).
    [{Name, {timeout, 120, Fun}} || {Name, Fun} <- [
        {"args", fun args/0},
        {"env", fun env/0},
        {"stdin to stdout and stderr", fun stdin/0},
        {"files in a preopen", fun files/0},
        {"directories", fun dirs/0},
        {"fixed clock and seeded random", fun deterministic/0},
        {"exit code", fun exit_code/0},
        {"abort() traps: exit code 134", fun abort/0},
        {"usage: exit code 2 from main", fun usage/0},
        {"many small writes to stdout", fun many_writes/0},
        {"timeout", fun timeout/0}
    ]].

args() ->
    ?assertEqual(#{exit_code => 0, stdout => <<"argc=3\nargv[0]=wasi_test\nargv[1]=args\nargv[2]=two words\n">>,
                   stderr => <<>>, files => #{}},
                 run([<<"args">>, "two words"])).

env() ->
    #{exit_code := 0, stdout := Out} = run([<<"env">>], #{env => #{<<"HOME">> => <<"/home/me">>, "A" => "1"}}),
    ?assertEqual(<<"A=1\nHOME=/home/me\nHOME is /home/me\n">>, Out),
    ?assertMatch(#{stdout := <<"HOME is unset\n">>}, run([<<"env">>])).

stdin() ->
    In = binary:copy(<<"hello, world\n">>, 100),
    #{exit_code := 0, stdout := Out, stderr := Err} = run([<<"cat">>], #{stdin => In}),
    ?assertEqual(<< <<(case C of C when C >= $a, C =< $z -> C - 32; _ -> C end)>> || <<C>> <= In >>, Out),
    ?assertEqual(<<"1300 bytes\n">>, Err).

files() ->
    #{exit_code := 0, stdout := Out, files := Files} =
        run([<<"files">>], #{preopens => #{<<"/data">> => #{<<"in.txt">> => <<"abcdef">>}}}),
    ?assertEqual(<<"in.txt: abcdef\npread: @_\nsize: 7\n"
                   "missing: No such file or directory\n"
                   "outside: Capabilities insufficient\n"
                   "escape: Capabilities insufficient\n">>, Out),
    ?assertEqual(#{<<"/data/in.txt">> => <<"abcdef">>, <<"/data/out.txt">> => <<"@__cba!">>}, Files).

dirs() ->
    #{exit_code := 0, stdout := Out, files := Files} =
        run([<<"dirs">>], #{preopens => #{"/data/" => #{"old.txt" => "x", "keep/k.txt" => "k"}}}),
    ?assertEqual(<<"mkdir again: File exists\n"
                   "/data: keep old.txt sub\n"
                   "/data/sub: b.txt deeper\n"
                   "rmdir sub: Directory not empty\n"
                   "unlink again: No such file or directory\n"
                   "/data: keep moved sub\n"
                   "/data/moved: a.txt c.txt\n"
                   "moved is a directory: 1\n"
                   "a.txt size: 5\n">>, Out),
    ?assertEqual(#{<<"/data/keep/k.txt">> => <<"k">>, <<"/data/moved/a.txt">> => <<"alpha">>,
                   <<"/data/moved/c.txt">> => <<"beta">>}, Files).

deterministic() ->
    Opts = #{clock => {fixed, 1000000000}, random => {seed, 42}},
    #{exit_code := 0, stdout := Out} = run([<<"clock">>], Opts),
    ?assertMatch([<<"realtime: 1.000000000">>, <<"after sleep: 1.002000000">>, <<"random: ", _/binary>>, <<>>],
                 binary:split(Out, <<"\n">>, [global])),
    ?assertEqual(Out, maps:get(stdout, run([<<"clock">>], Opts))),
    ?assertNotEqual(Out, maps:get(stdout, run([<<"clock">>], Opts#{random => {seed, 43}}))),
    % The real clock: after 2001 (seconds since 1970), and sleeping takes time.
    #{stdout := <<"realtime: ", Secs:10/binary, _/binary>>} = run([<<"clock">>]),
    ?assert(binary_to_integer(Secs) > 978307200).

exit_code() ->
    ?assertEqual(#{exit_code => 7, stdout => <<"exiting with 7\n">>, stderr => <<>>, files => #{}},
                 run([<<"exit">>, <<"7">>])),
    ?assertMatch(#{exit_code := 0, stdout := <<"exiting with 0\n">>}, run([<<"exit">>, <<"0">>])).

abort() ->
    ?assertEqual(#{exit_code => 134, trap => <<"unreachable">>, stdout => <<"about to abort\n">>,
                   stderr => <<>>, files => #{}},
                 run([<<"abort">>])).

usage() ->
    #{exit_code := 2, stdout := <<>>, stderr := <<"usage: ", _/binary>>} = run([]).

many_writes() ->
    #{exit_code := 0, stdout := Raw} = run([<<"write">>, <<"2000">>, <<"50">>]),
    #{exit_code := 0, stdout := Buffered} = run([<<"printf">>, <<"2000">>, <<"50">>]),
    Line = <<"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvw\n">>,
    ?assertEqual(binary:copy(Line, 2000), Raw),
    ?assertEqual(Raw, Buffered).

timeout() ->
    Run = fun(Args, Ms) ->
        hb_beamr_wasi:run(program(), #{mode => hb_beamr_test_util:mode(), timeout => Ms, args => [<<"p">> | Args]})
    end,
    % A run stopped by its timeout: an error, not a hang; also while the
    % program sleeps (poll_oneoff sleeps no longer than the timeout).
    ?assertEqual({error, timeout}, Run([<<"write">>, <<"100000000">>, <<"10">>], 1)),
    {Us, Slept} = timer:tc(fun() -> Run([<<"sleep">>, <<"100">>], 300) end),
    ?assertEqual({error, timeout}, Slept),
    ?assert(Us < 5000000),
    % A fixed clock does not sleep at all.
    ?assertMatch({ok, #{exit_code := 0, stdout := <<"slept\n">>}},
                 hb_beamr_wasi:run(program(), #{mode => hb_beamr_test_util:mode(), clock => {fixed, 0},
                                                args => [<<"p">>, <<"sleep">>, <<"1000">>]})).

%% WASI called while the module instantiates (a start function, as
%% emscripten's constructors), then from `_start'.
start_function_test_() ->
    {timeout, 60, fun() ->
        Mode = hb_beamr_test_util:mode(),
        Wasm = hb_beamr_test_util:fixture("wasi/ctor.wasm"),
        ?assertMatch({ok, #{exit_code := 0, stdout := <<"ctor\nmain\n">>}}, hb_beamr_wasi:run(Wasm, #{mode => Mode})),
        ?assertMatch({ok, #{exit_code := 4, stdout := <<"ctor\n">>}},
                     hb_beamr_wasi:run(Wasm, #{mode => Mode, env => #{<<"A">> => <<"1">>}}))
    end}.

%% (`{timeout, T, [A, B]}' would bound the group and leave each test 5 s.)
run_errors_test_() ->
    [{timeout, 60, T} || T <- [
        ?_assertEqual({error, no_start_function}, hb_beamr_wasi:run(hb_beamr_test_util:fixture("test.wasm"), #{})),
        ?_assertMatch({error, {invalid_wasm, _}}, hb_beamr_wasi:run(<<"not wasm">>, #{})),
        ?_assertEqual({error, {invalid_option, {clock, later}}}, hb_beamr_wasi:run(program(), #{clock => later})),
        ?_assertEqual({error, {invalid_option, {argv, []}}}, hb_beamr_wasi:run(program(), #{argv => []})),
        ?_assertEqual({error, {invalid_option, {mode, jit}}}, hb_beamr_wasi:run(program(), #{mode => jit})),
        ?_assertEqual({error, badarg}, hb_beamr_wasi:run(not_a_binary, #{})),
        ?_assertEqual({error, {invalid_option, {preopens, <<"../x">>}}},
                      hb_beamr_wasi:run(program(), #{preopens => #{<<"/d">> => #{<<"../x">> => <<>>}}})),
        ?_assertEqual({error, {invalid_option, {max_memory, -1}}},
                      hb_beamr_wasi:run(program(), #{mode => hb_beamr_test_util:mode(), max_memory => -1}))
    ]].

%% run/2 compiles bytecode given with mode aot (once, in the aot run only).
run_compiles_bytecode_for_aot_test_() ->
    case hb_beamr_test_util:mode() of
        wasm -> [];
        aot ->
            {timeout, 60, fun() ->
                Wasm = hb_beamr_test_util:fixture("wasi/wasi_test.wasm"),
                ?assertMatch({ok, #{exit_code := 3, stdout := <<"exiting with 3\n">>}},
                             hb_beamr_wasi:run(Wasm, #{mode => aot, args => [<<"p">>, <<"exit">>, <<"3">>]}))
            end}
    end.

%%% Composing with the caller's own imports

double(State, #{module := <<"env">>, func := <<"double">>, args := [X]}, _Opts) ->
    {ok, [2 * X], State#{doubled => maps:get(doubled, State, 0) + 1}}.

compose_test() ->
    hb_beamr_test_util:with_instance("wasi/compose.wasm", fun(W) ->
        {ok, S0} = hb_beamr_wasi:new_state(#{}),
        Fun = hb_beamr_wasi:import_fun(fun double/3),
        {ok, [42], S1} = hb_beamr:call(W, "go", [21], Fun, S0),
        {ok, [10], S2} = hb_beamr:call(W, "go", [5], Fun, S1),
        ?assertEqual(<<"hellohello">>, hb_beamr_wasi:stdout(S2)),
        ?assertEqual(2, maps:get(doubled, S2)),
        ?assertEqual({ok, [52], S2}, hb_beamr:call(W, "advise", [], Fun, S2)),
        % proc_exit ends the call; the state before it holds the output.
        ?assertMatch({error, throw, {hb_beamr_wasi_exit, 9}, _, _}, hb_beamr:call(W, "quit", [9], Fun, S2)),
        {error, throw, _, _, S3} = hb_beamr:call(W, "quit", [9], Fun, S2),
        ?assertEqual(<<"hellohellohello">>, hb_beamr_wasi:stdout(S3))
    end).

compose_under_key_test() ->
    hb_beamr_test_util:with_instance("wasi/compose.wasm", fun(W) ->
        {ok, Wasi} = hb_beamr_wasi:new_state(#{}),
        Fallback = fun(S = #{n := N}, #{args := [X]}, _) -> {ok, [X + 1], S#{n := N + 1}} end,
        Fun = hb_beamr_wasi:import_fun(Fallback, wasi),
        {ok, [8], #{n := 1, wasi := Wasi1}} = hb_beamr:call(W, "go", [7], Fun, #{n => 0, wasi => Wasi}),
        ?assertEqual(<<"hello">>, hb_beamr_wasi:stdout(Wasi1))
    end).

%%% Single functions and their errno results

%% Calls WASI function `Func' on an instance of compose.wasm; the errno and
%% the new state.
with_wasi(Fun) ->
    hb_beamr_test_util:with_instance("wasi/compose.wasm", fun(W) ->
        {ok, S} = hb_beamr_wasi:new_state(#{preopens => #{<<"/d">> => #{<<"f.txt">> => <<"data">>}}}),
        Fun(W, S)
    end).

call(W, S, Func, Args) ->
    {[Errno], S1} = hb_beamr_wasi:handle(Func, Args, W, S),
    {Errno, S1}.

%% Writes a path at 2048 and returns its pointer and length.
path(W, Path) ->
    ok = hb_beamr_io:write(W, 2048, Path),
    [2048, byte_size(Path)].

open(W, S, Path, OFlags) ->
    call(W, S, <<"path_open">>, [3, 0] ++ path(W, Path) ++ [OFlags, 16#FFFFFFF, 16#FFFFFFF, 0, 1024]).

errno_test_() ->
    E = fun hb_beamr_wasi:errno/1,
    Cases = [
        {"an absolute path is notcapable", fun(W, S) -> open(W, S, <<"/etc/passwd">>, 0) end, E(notcapable)},
        {"climbing out is notcapable", fun(W, S) -> open(W, S, <<"a/../../x">>, 0) end, E(notcapable)},
        {"a missing file is noent", fun(W, S) -> open(W, S, <<"nope">>, 0) end, E(noent)},
        {"creat|excl on a file is exist", fun(W, S) -> open(W, S, <<"f.txt">>, 1 bor 4) end, E(exist)},
        {"directory on a file is notdir", fun(W, S) -> open(W, S, <<"f.txt">>, 2) end, E(notdir)},
        {"a file under a file is notdir",
         fun(W, S) -> call(W, S, <<"path_create_directory">>, [3 | path(W, <<"f.txt/x">>)]) end, E(notdir)},
        {"a NUL in a path is inval", fun(W, S) -> open(W, S, <<"f", 0, "x">>, 0) end, E(inval)},
        {"an unknown fd is badf", fun(W, S) -> call(W, S, <<"fd_write">>, [42, 0, 1, 8]) end, E(badf)},
        {"a path on a non-directory fd is notdir", fun(W, S) -> call(W, S, <<"path_unlink_file">>, [1 | path(W, <<"f.txt">>)]) end, E(notdir)},
        {"seeking stdout is spipe", fun(W, S) -> call(W, S, <<"fd_seek">>, [1, 0, 0, 1024]) end, E(spipe)},
        {"reading a directory is isdir", fun(W, S) -> call(W, S, <<"fd_read">>, [3, 0, 1, 8]) end, E(isdir)},
        {"unlinking a directory is isdir", fun(W, S) -> call(W, S, <<"path_unlink_file">>, [3 | path(W, <<".">>)]) end, E(isdir)},
        {"stdin is no preopen: badf", fun(W, S) -> call(W, S, <<"fd_prestat_get">>, [0, 1024]) end, E(badf)},
        {"an unknown clock is inval", fun(W, S) -> call(W, S, <<"clock_time_get">>, [9, 0, 1024]) end, E(inval)},
        {"polling nothing is inval", fun(W, S) -> call(W, S, <<"poll_oneoff">>, [0, 512, 0, 1024]) end, E(inval)},
        {"a pointer past memory is fault", fun(W, S) -> call(W, S, <<"fd_write">>, [1, 70000, 1, 8]) end, E(fault)},
        {"a file past 1 GiB is fbig", fun(W, S) -> {0, S1} = open(W, S, <<"f.txt">>, 0),
                                                  call(W, S1, <<"fd_pwrite">>, [4, 0, 1, 1 bsl 40, 8]) end, E(fbig)},
        {"random bytes past memory are fault", fun(W, S) -> call(W, S, <<"random_get">>, [0, -1]) end, E(fault)},
        {"an unserved function is nosys", fun(W, S) -> call(W, S, <<"sock_accept">>, [0, 0, 0]) end, E(nosys)},
        {"a bad whence is inval", fun(W, S) -> {0, S1} = open(W, S, <<"f.txt">>, 0),
                                               call(W, S1, <<"fd_seek">>, [4, 0, 7, 1024]) end, E(inval)}
    ],
    [{Name, {timeout, 60, fun() -> with_wasi(fun(W, S) -> ?assertMatch({Errno, _}, Fun(W, S)) end) end}}
     || {Name, Fun, Errno} <- Cases].

errno_values_test() ->
    % WASI preview 1's numbering (wasi/api.h: __WASI_ERRNO_*).
    ?assertEqual([0, 1, 8, 20, 28, 44, 52, 54, 70, 76],
                 [hb_beamr_wasi:errno(N) || N <- [success, '2big', badf, exist, inval, noent, nosys, notdir, spipe, notcapable]]).

open_read_stat_test() ->
    with_wasi(fun(W, S) ->
        {0, S1} = open(W, S, <<"sub/../f.txt">>, 0),
        {ok, <<4:32/little>>} = hb_beamr_io:read(W, 1024, 4),
        % fd_read into two iovecs: 3 bytes at 3000, 10 at 3100.
        ok = hb_beamr_io:write(W, 512, <<3000:32/little, 3:32/little, 3100:32/little, 10:32/little>>),
        {0, S2} = call(W, S1, <<"fd_read">>, [4, 512, 2, 1024]),
        ?assertEqual({ok, <<4:32/little>>}, hb_beamr_io:read(W, 1024, 4)),
        ?assertEqual({ok, <<"dat">>}, hb_beamr_io:read(W, 3000, 3)),
        ?assertEqual({ok, <<"a">>}, hb_beamr_io:read(W, 3100, 1)),
        {0, S2} = call(W, S2, <<"fd_tell">>, [4, 1024]),
        ?assertEqual({ok, <<4:64/little>>}, hb_beamr_io:read(W, 1024, 8)),
        {0, S2} = call(W, S2, <<"fd_filestat_get">>, [4, 1024]),
        {ok, <<_:16/binary, 4, _:15/binary, 4:64/little, _/binary>>} = hb_beamr_io:read(W, 1024, 64),
        {0, S2} = call(W, S2, <<"fd_prestat_get">>, [3, 1024]),
        ?assertEqual({ok, <<0, 0, 0, 0, 2:32/little>>}, hb_beamr_io:read(W, 1024, 8)),
        {0, S2} = call(W, S2, <<"fd_prestat_dir_name">>, [3, 1024, 2]),
        ?assertEqual({ok, <<"/d">>}, hb_beamr_io:read(W, 1024, 2)),
        {0, S3} = call(W, S2, <<"fd_close">>, [4]),
        ?assertMatch({8, _}, call(W, S3, <<"fd_close">>, [4]))
    end).

readdir_test() ->
    with_wasi(fun(W, S) ->
        {0, S1} = call(W, S, <<"path_create_directory">>, [3 | path(W, <<"sub">>)]),
        {0, S1} = call(W, S1, <<"fd_readdir">>, [3, 4096, 1000, 0, 1024]),
        {ok, <<Used:32/little>>} = hb_beamr_io:read(W, 1024, 4),
        {ok, Buf} = hb_beamr_io:read(W, 4096, Used),
        ?assertEqual([{1, <<".">>, 3}, {2, <<"..">>, 3}, {3, <<"f.txt">>, 4}, {4, <<"sub">>, 3}], dirents(Buf)),
        % From cookie 2 (f.txt, 29 bytes, then sub), into 30 bytes: the
        % last entry cut short, so the buffer is full.
        {0, S1} = call(W, S1, <<"fd_readdir">>, [3, 4096, 30, 2, 1024]),
        ?assertEqual({ok, <<30:32/little>>}, hb_beamr_io:read(W, 1024, 4))
    end).

dirents(<<Next:64/little, _Ino:64/little, Len:32/little, Type, _:3/binary, Name:Len/binary, Rest/binary>>) ->
    [{Next, Name, Type} | dirents(Rest)];
dirents(<<>>) ->
    [].

poll_fixed_clock_test() ->
    hb_beamr_test_util:with_instance("wasi/compose.wasm", fun(W) ->
        {ok, S} = hb_beamr_wasi:new_state(#{clock => {fixed, 100}}),
        % One relative clock subscription of 50 ns, userdata 7.
        Sub = <<7:64/little, 0, 0:56, 1:32/little, 0:32, 50:64/little, 0:64, 0:16, 0:48>>,
        ok = hb_beamr_io:write(W, 512, Sub),
        {0, S1} = call(W, S, <<"poll_oneoff">>, [512, 1024, 1, 2000]),
        ?assertEqual({ok, <<1:32/little>>}, hb_beamr_io:read(W, 2000, 4)),
        ?assertMatch({ok, <<7:64/little, 0:16, 0, _/binary>>}, hb_beamr_io:read(W, 1024, 32)),
        {0, _} = call(W, S1, <<"clock_time_get">>, [1, 0, 2000]),
        ?assertEqual({ok, <<150:64/little>>}, hb_beamr_io:read(W, 2000, 8))
    end).

poll_fd_subscription_test() ->
    hb_beamr_test_util:with_instance("wasi/compose.wasm", fun(W) ->
        {ok, S} = hb_beamr_wasi:new_state(#{}),
        % fd_read on stdin (tag 1), userdata 9: answered at once with notsup.
        ok = hb_beamr_io:write(W, 512, <<9:64/little, 1, 0:56, 0:32/little, 0:(36 * 8)>>),
        {0, _} = call(W, S, <<"poll_oneoff">>, [512, 1024, 1, 2000]),
        ?assertEqual({ok, <<1:32/little>>}, hb_beamr_io:read(W, 2000, 4)),
        ?assertMatch({ok, <<9:64/little, 58:16/little, 1, _/binary>>}, hb_beamr_io:read(W, 1024, 32))
    end).

%% wasi-libc's isatty: a character device without seek and tell rights.
tty_test() ->
    hb_beamr_test_util:with_instance("wasi/compose.wasm", fun(W) ->
        Rights = fun(Opts) ->
            {ok, S} = hb_beamr_wasi:new_state(Opts),
            {0, _} = call(W, S, <<"fd_fdstat_get">>, [1, 1024]),
            {ok, <<2, _:7/binary, R:64/little, _/binary>>} = hb_beamr_io:read(W, 1024, 24),
            R band (4 bor 32)
        end,
        ?assertEqual(0, Rights(#{tty => true})),
        ?assertEqual(4 bor 32, Rights(#{}))
    end).

%%% The file system and its sandbox (no instance)

resolve_test_() ->
    R = fun(Base, Path) -> hb_beamr_wasi_fs:resolve(<<"/d">>, Base, Path) end,
    [
        ?_assertEqual({ok, [<<"a">>, <<"c">>]}, R([], <<"a/./b/../c">>)),
        ?_assertEqual({ok, [<<"a">>]}, R([], <<"a//">>)),
        ?_assertEqual({ok, []}, R([<<"sub">>], <<"..">>)),
        ?_assertEqual({ok, []}, R([], <<".">>)),
        ?_assertEqual({error, notcapable}, R([], <<"..">>)),
        ?_assertEqual({error, notcapable}, R([<<"sub">>], <<"../..">>)),
        ?_assertEqual({error, notcapable}, R([], <<"a/../../d/x">>)),
        ?_assertEqual({error, notcapable}, R([], <<"/d/x">>)),
        ?_assertEqual({error, notcapable}, R([], <<"/">>)),
        ?_assertEqual({error, noent}, R([], <<>>)),
        ?_assertEqual({error, inval}, R([], <<"a", 0, "b">>)),
        ?_assertEqual(<<"/d/a/c">>, hb_beamr_wasi_fs:full(<<"/d">>, [<<"a">>, <<"c">>])),
        ?_assertEqual(<<"/x">>, hb_beamr_wasi_fs:full(<<"/">>, [<<"x">>])),
        ?_assertEqual([<<"/d">>, <<"/">>, <<".">>, <<"a/b">>],
                      [hb_beamr_wasi_fs:root(D) || D <- [<<"/d/">>, <<"//">>, <<"./">>, "a/./b"]])
    ].

fs_test() ->
    {ok, FS0, [<<"/d">>]} = hb_beamr_wasi_fs:new(#{<<"/d">> => #{<<"a/b.txt">> => <<"hello">>, "c" => ["x", <<"y">>]}}),
    ?assertEqual(#{<<"/d/a/b.txt">> => <<"hello">>, <<"/d/c">> => <<"xy">>}, hb_beamr_wasi_fs:files(FS0)),
    ?assertEqual([{<<"a">>, dir}, {<<"c">>, file}], hb_beamr_wasi_fs:list(FS0, <<"/d">>)),
    % Writing: past the end zero-fills, in the middle overwrites.
    {ok, FS1, 8} = hb_beamr_wasi_fs:write(FS0, <<"/d/c">>, 6, <<"zz">>),
    ?assertEqual(<<"xy", 0, 0, 0, 0, "zz">>, hb_beamr_wasi_fs:lookup(FS1, <<"/d/c">>)),
    {ok, FS2, 3} = hb_beamr_wasi_fs:write(FS1, <<"/d/c">>, 1, <<"QQ">>),
    ?assertEqual(<<"xQQ", 0, 0, 0, "zz">>, hb_beamr_wasi_fs:lookup(FS2, <<"/d/c">>)),
    {ok, FS3, 10} = hb_beamr_wasi_fs:write(FS2, <<"/d/c">>, eof, <<"!!">>),
    ?assertEqual({ok, <<"zz!">>}, hb_beamr_wasi_fs:read(FS3, <<"/d/c">>, 6, 3)),
    ?assertEqual({ok, <<>>}, hb_beamr_wasi_fs:read(FS3, <<"/d/c">>, 99, 3)),
    % Directories.
    ?assertEqual({error, noent}, hb_beamr_wasi_fs:mkdir(FS0, <<"/d/x/y">>)),
    ?assertEqual({error, notdir}, hb_beamr_wasi_fs:mkdir(FS0, <<"/d/c/y">>)),
    ?assertEqual({error, exist}, hb_beamr_wasi_fs:mkdir(FS0, <<"/d/a">>)),
    ?assertEqual({error, notempty}, hb_beamr_wasi_fs:rmdir(FS0, <<"/d/a">>)),
    ?assertEqual({error, notdir}, hb_beamr_wasi_fs:rmdir(FS0, <<"/d/c">>)),
    ?assertEqual({error, isdir}, hb_beamr_wasi_fs:unlink(FS0, <<"/d/a">>)),
    ?assertEqual({error, noent}, hb_beamr_wasi_fs:unlink(FS0, <<"/d/zz">>)),
    % Renames: a directory moves with what it holds; not into itself.
    {ok, FS4} = hb_beamr_wasi_fs:rename(FS0, <<"/d/a">>, <<"/d/e">>),
    ?assertEqual(#{<<"/d/e/b.txt">> => <<"hello">>, <<"/d/c">> => <<"xy">>}, hb_beamr_wasi_fs:files(FS4)),
    ?assertEqual(dir, hb_beamr_wasi_fs:lookup(FS4, <<"/d/e">>)),
    ?assertEqual(undefined, hb_beamr_wasi_fs:lookup(FS4, <<"/d/a">>)),
    ?assertEqual({error, inval}, hb_beamr_wasi_fs:rename(FS0, <<"/d/a">>, <<"/d/a/x">>)),
    ?assertEqual({error, isdir}, hb_beamr_wasi_fs:rename(FS0, <<"/d/c">>, <<"/d/a">>)),
    ?assertEqual({error, notdir}, hb_beamr_wasi_fs:rename(FS0, <<"/d/a">>, <<"/d/c">>)),
    ?assertEqual({error, noent}, hb_beamr_wasi_fs:rename(FS0, <<"/d/q">>, <<"/d/r">>)),
    {ok, FS5} = hb_beamr_wasi_fs:rename(FS0, <<"/d/c">>, <<"/d/a/b.txt">>),
    ?assertEqual(#{<<"/d/a/b.txt">> => <<"xy">>}, hb_beamr_wasi_fs:files(FS5)),
    % `dir' makes an empty directory.
    {ok, FS6, [<<"/d">>]} = hb_beamr_wasi_fs:new(#{<<"/d">> => #{<<"e/f">> => dir}}),
    ?assertEqual([{<<"f">>, dir}], hb_beamr_wasi_fs:list(FS6, <<"/d/e">>)),
    % Preopen contents may not leave their directory.
    ?assertEqual({error, {invalid_option, {preopens, <<"../x">>}}},
                 hb_beamr_wasi_fs:new(#{<<"/d">> => #{<<"../x">> => <<>>}})),
    ?assertEqual({error, {invalid_option, {preopens, <<"/x">>}}},
                 hb_beamr_wasi_fs:new(#{<<"/d">> => #{<<"/x">> => <<>>}})).
