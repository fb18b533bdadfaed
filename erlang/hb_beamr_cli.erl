#!/usr/bin/env escript
%%! -noinput
%%% @doc hb_beamr's command line: run an export of a WebAssembly module, or
%%% list what a module imports and exports. Run it through ./hb_beamr, which
%%% builds what it needs first.
%%%
%%%   hb_beamr run [--dir HOST[::GUEST]]... [--env NAME[=VALUE]]... FILE [ARG...]
%%%                                     run a WASI command (a module importing
%%%                                     wasi_snapshot_preview1 and exporting
%%%                                     _start) with this terminal's stdin,
%%%                                     stdout, stderr and its exit status
%%%   hb_beamr run FILE FUNC [ARG...]   call FUNC with numeric ARGs (any
%%%                                     other module)
%%%   hb_beamr info FILE                list imports and exports
%%%   hb_beamr compile IN.wasm OUT.aot [host|generic|CPU]
%%%                                     compile to a WAMR AOT file
%%%   hb_beamr compare FILE.wasm FUNC [ARG...]
%%%                                     time FUNC as bytecode and as AOT
%%%                                     (compiled in the run), alternating
%%%   hb_beamr bench FILE FUNC [ARG...] calls/s of FUNC from one process, with
%%%                                     a process ping-pong baseline measured
%%%                                     in the same run (HB_BEAMR_BENCH_ROUNDS)
%%%
%%% ARGs are Erlang numbers: `5' is an integer, `5.0' a float. Imports the
%%% module calls are printed to stderr and answered with zeros.
%%%
%%% A WASI command sees each `--dir' as a preopened directory, loaded into
%%% hb_beamr_wasi's in-memory file system before the run (regular files and
%%% directories whose names are UTF-8; symbolic links, FIFOs, sockets and
%%% devices are left out) and written back after it: files it removed are
%%% deleted, then files it created or changed are written (with their
%%% directories). Write-back touches only regular files: a created file
%%% never replaces anything on the host, a changed or removed one must still
%%% be a regular file, nothing is written through a symbolic link, and what
%%% is left alone is reported on stderr. Directories it creates empty or
%%% removes are not mirrored. Two `--dir's on one guest directory, or one
%%% inside another, and host directories given twice or nested are refused
%%% before anything runs. Names are bytes both ways (UTF-8 in the guest),
%%% whatever the VM's file name encoding.
-module(hb_beamr_cli).
-mode(compile).
-export([main/1]).

-include_lib("kernel/include/file.hrl").

%% @doc Runs the command line `Args' (see the module doc); halts the VM
%% with the exit status, 1 after an error, 2 for usage.
-spec main([string()]) -> ok | no_return().
main(["run" | Rest]) ->
    case run_options(Rest, #{dirs => [], env => #{}}) of
        {Options, [File | Args]} ->
            {ok, Bytes} = read(File),
            case {is_command(File, Bytes), Args} of
                {true, _} -> run_command(File, Bytes, Args, Options);
                {false, [Func | Values]} when Options =:= #{dirs => [], env => #{}} ->
                    call_export(File, Func, Values);
                {false, _} -> fail("~ts is not a WASI command (it must import wasi_snapshot_preview1 and export _start)", [File])
            end;
        {_, []} ->
            usage()
    end;
main(["bench", File, Func | Args]) ->
    Rounds = list_to_integer(os:getenv("HB_BEAMR_BENCH_ROUNDS", "7")),
    with_module(File, fun(WASM) ->
        {ok, Values} = parse_args(Args),
        {ok, _} = hb_beamr:call(WASM, Func, Values),
        Echo = spawn_link(fun echo/0),
        Ping = fun() -> Echo ! {self(), ping}, receive pong -> ok end end,
        Call = fun() -> {ok, _} = hb_beamr:call(WASM, Func, Values) end,
        % Alternate the two, one second each, so both see the same machine.
        Pairs = [{rate(Ping, 1), rate(Call, 1)} || _ <- lists:seq(1, Rounds)],
        {Pings, Calls} = lists:unzip(Pairs),
        io:format("~-34s ~12s ~12s ~12s ~7s~n", ["what (" ++ integer_to_list(Rounds) ++ " rounds of 1 s)", "median/s", "min/s", "max/s", "ratio"]),
        row("process ping-pong (baseline)", Pings, median(Pings)),
        row(io_lib:format("hb_beamr:call ~s(~s)", [Func, join(Values)]), Calls, median(Pings))
    end);
main(["compile", In, Out | Cpu]) ->
    {ok, Wasm} = read(In),
    Opts =
        case Cpu of
            [] -> #{};
            ["host"] -> #{target_cpu => host};
            ["generic"] -> #{target_cpu => generic};
            [Name] -> #{target_cpu => Name}
        end,
    case hb_beamr:compile(Wasm, Opts) of
        {ok, Aot} ->
            ok = file:write_file(Out, Aot),
            io:format("~s: ~w bytes~n", [Out, byte_size(Aot)]);
        {error, Reason} ->
            fail("cannot compile ~ts: ~p", [In, Reason])
    end;
main(["compare", File, Func | Args]) ->
    Rounds = list_to_integer(os:getenv("HB_BEAMR_BENCH_ROUNDS", "5")),
    {ok, Wasm} = read(File),
    {ok, Values} = parse_args(Args),
    {ok, Aot} = hb_beamr:compile(Wasm),
    {ok, W, _, _} = hb_beamr:start(Wasm, wasm),
    {ok, A, _, _} = hb_beamr:start(Aot, aot),
    {ok, Same} = hb_beamr:call(W, Func, Values),
    {ok, Same} = hb_beamr:call(A, Func, Values),
    Time = fun(I) ->
        {Us, {ok, _}} = timer:tc(fun() -> hb_beamr:call(I, Func, Values) end),
        Us / 1000
    end,
    Pairs = [{Time(W), Time(A)} || _ <- lists:seq(1, Rounds)],
    {Interp, Compiled} = lists:unzip(Pairs),
    io:format("~-44s ~12s ~8s~n", [io_lib:format("~s(~s), ~w alternating rounds", [Func, join(Values), Rounds]), "median ms", "speed-up"]),
    io:format("~-44s ~12.1f ~8.2f~n", ["bytecode (classic interpreter, baseline)", median(Interp), 1.0]),
    io:format("~-44s ~12.1f ~8.2f~n", ["AOT (hb_beamr:compile/1, host CPU)", median(Compiled), median(Interp) / median(Compiled)]),
    ok = hb_beamr:stop(W),
    ok = hb_beamr:stop(A);
main(["info", File]) ->
    {ok, Bytes} = read(File),
    {ok, WASM, Imports, Exports} = start(File, Bytes),
    [io:format("import ~s ~s.~s ~s~n", [K, M, N, S]) || {K, M, N, S} <- Imports],
    [io:format("export ~s ~s ~s~n", [K, N, S]) || {K, N, S} <- Exports],
    hb_beamr:stop(WASM);
main(_) ->
    usage().

-spec usage() -> no_return().
usage() ->
    io:format(standard_error,
        "usage: hb_beamr run [--dir HOST[::GUEST]]... [--env NAME[=VALUE]]... FILE [ARG...]~n"
        "       hb_beamr run FILE FUNC [ARG...]~n"
        "       hb_beamr info FILE~n"
        "       hb_beamr bench FILE FUNC [ARG...]~n"
        "       hb_beamr compile IN.wasm OUT.aot [host|generic|CPU]~n"
        "       hb_beamr compare FILE.wasm FUNC [ARG...]~n", []),
    halt(2).

call_export(File, Func, Args) ->
    with_module(File, fun(WASM) ->
        case parse_args(Args) of
            {ok, Values} -> report(hb_beamr:call(WASM, Func, Values, fun print_import/3, 0, #{}));
            {error, Bad} -> fail("not a number: ~ts", [Bad])
        end
    end).

%%% WASI commands

run_options(["--dir", Spec | Rest], Acc = #{dirs := Dirs}) ->
    {Host, Guest} =
        case binary:split(bytes(Spec), <<"::">>) of
            [H, G] -> {H, G};
            [H] -> {H, H}
        end,
    filelib:is_dir(Host) orelse fail("--dir ~ts: not a directory", [shown(Host)]),
    is_utf8(Guest) orelse fail("--dir ~ts: the guest name is not UTF-8", [shown(Guest)]),
    run_options(Rest, Acc#{dirs := Dirs ++ [{Host, Guest}]});
run_options(["--env", Spec | Rest], Acc = #{env := Env}) ->
    {Name, Value} =
        case binary:split(bytes(Spec), <<"=">>) of
            [N, V] -> {N, V};
            [N] when is_list(Spec) -> {N, bytes(os:getenv(Spec, ""))};
            [N] -> fail("--env ~ts: not a variable name", [shown(N)])
        end,
    run_options(Rest, Acc#{env := Env#{Name => Value}});
run_options(["--" ++ _ = Option | _], _Acc) ->
    fail("unknown option ~ts", [Option]);
run_options(Rest, Acc = #{dirs := Dirs}) ->
    check_dirs(Dirs),
    {Acc, Rest}.

%% Fails, before anything runs, on two preopens of one guest directory or
%% one inside another (write-back would mix their files up), and on one host
%% directory given twice or inside another (one view's write-back would
%% undo the other's).
check_dirs(Dirs) ->
    Pairs = [{A, B} || {I, A} <- lists:enumerate(Dirs), {J, B} <- lists:enumerate(Dirs), I < J],
    lists:foreach(
        fun({{HostA, GuestA}, {HostB, GuestB}}) ->
            nested(guest_parts(GuestA), guest_parts(GuestB)) andalso
                fail("--dir ~ts and --dir ~ts: guest directories ~ts and ~ts overlap (one preopen per directory, none inside another)",
                     [shown(HostA), shown(HostB), shown(GuestA), shown(GuestB)]),
            nested(host_parts(HostA), host_parts(HostB)) andalso
                fail("--dir ~ts and --dir ~ts: the host directories overlap", [shown(HostA), shown(HostB)])
        end, Pairs).

%% Whether one path (absolute or not, components) is the other or inside it.
nested({Abs, A}, {Abs, B}) -> lists:prefix(A, B) orelse lists:prefix(B, A);
nested(_, _) -> false.

guest_parts(Guest) ->
    Root = try hb_beamr_wasi_fs:root(Guest) catch throw:_ -> fail("--dir: bad guest directory ~ts", [shown(Guest)]) end,
    {binary:part(Root, 0, min(1, byte_size(Root))) =:= <<"/">>, [P || P <- binary:split(Root, <<"/">>, [global]), P =/= <<>>, P =/= <<".">>]}.

%% Lexically normalised (symbolic links are not resolved).
host_parts(Host) ->
    Parts = lists:foldl(fun(<<".">>, Acc) -> Acc;
                           (<<"..">>, [_ | Acc]) -> Acc;
                           (<<"..">>, []) -> [];
                           (P, Acc) -> [P | Acc]
                        end, [], tl(filename:split(filename:absname(Host)))),
    {true, lists:reverse(Parts)}.

%% A WASI command imports from wasi_snapshot_preview1 and exports _start.
%% The module is started once to see its imports and exports, with WASI
%% served from a throwaway state (a start function may call it; one that
%% exits there is a WASI command too).
is_command(File, Bytes) ->
    {ok, Probe} = hb_beamr_wasi:new_state(#{}),
    Serve = hb_beamr_wasi:import_fun(fun hb_beamr:stub/3),
    case hb_beamr:start(Bytes, mode(File), #{import_fun => Serve, state => Probe}) of
        {ok, WASM, Imports, Exports, _} ->
            ok = hb_beamr:stop(WASM),
            lists:keymember(<<"wasi_snapshot_preview1">>, 2, Imports)
                andalso lists:member({func, <<"_start">>, <<"()">>}, Exports);
        {error, throw, {hb_beamr_wasi_exit, _}, _, _} ->
            true;
        {error, Reason} ->
            fail("cannot start ~ts: ~p", [File, Reason]);
        {error, Class, Reason, _, _} ->
            fail("cannot start ~ts: ~p:~p", [File, Class, Reason])
    end.

-spec run_command(string(), binary(), [string()], map()) -> no_return().
run_command(File, Bytes, Args, #{dirs := Dirs, env := Env}) ->
    Loaded = [{Host, Guest, load_dir(Host)} || {Host, Guest} <- Dirs],
    Preopens = maps:from_list([{Guest, Files} || {_, Guest, Files} <- Loaded]),
    % Input from file descriptor 0 as it arrives (-noinput leaves it to us);
    % output through the standard I/O servers, as bytes.
    Stdin = open_port({fd, 0, 1}, [in, binary, eof]),
    ok = io:setopts(standard_io, [binary, {encoding, latin1}]),
    Opts = #{mode => mode(File), args => [bytes(A) || A <- [File | Args]], env => Env, preopens => Preopens,
             % Pids, not the names: the option takes file:io_device().
             stdin => {host, Stdin}, stdout => {host, group_leader()}, stderr => {host, whereis(standard_error)},
             tty => is_tty(1)},
    case hb_beamr_wasi:run(Bytes, Opts) of
        {ok, Result = #{exit_code := Code, files := After}} ->
            [write_back(Host, hb_beamr_wasi_fs:root(Guest), Before, After) || {Host, Guest, Before} <- Loaded],
            case Result of
                #{trap := Why} -> say("~ts: wasm trap: ~s", [File, Why]);
                _ -> ok
            end,
            halt(Code band 255);
        {error, Reason} ->
            fail("~ts: ~p", [File, Reason])
    end.

%% Whether this process's file descriptor Fd is a terminal.
is_tty(Fd) ->
    case file:read_link("/proc/self/fd/" ++ integer_to_list(Fd)) of
        {ok, "/dev/pts/" ++ _} -> true;
        {ok, "/dev/tty" ++ _} -> true;
        _ -> false
    end.

%% Every directory and regular file under Dir, by path relative to it (a
%% binary of the host's bytes, which the guest sees as UTF-8); symbolic
%% links, FIFOs, sockets, devices and names that are not UTF-8 are left out.
load_dir(Dir) ->
    maps:from_list(load_dir(Dir, <<>>)).

load_dir(Dir, Rel) ->
    Names = case file:list_dir_all(host_path(Dir, Rel)) of
        {ok, List} -> lists:sort([name_bytes(N) || N <- List]);
        {error, Why} -> fail("--dir ~ts: cannot list ~ts: ~s", [shown(Dir), shown(host_path(Dir, Rel)), file:format_error(Why)])
    end,
    lists:append([load_entry(Dir, join_rel(Rel, Name)) || Name <- Names]).

load_entry(Dir, Path) ->
    Full = host_path(Dir, Path),
    case is_utf8(Path) andalso file:read_link_info(Full) of
        false ->
            note(Dir, Path, "its name is not UTF-8"),
            [];
        {ok, #file_info{type = directory}} ->
            [{Path, dir} | load_dir(Dir, Path)];
        {ok, #file_info{type = regular}} ->
            case file:read_file(Full) of
                {ok, Data} -> [{Path, Data}];
                {error, Why} -> fail("--dir ~ts: cannot read ~ts: ~s", [shown(Dir), shown(Full), file:format_error(Why)])
            end;
        _ ->
            []
    end.

%% Writes the files under guest directory Root back to Host: those the
%% guest removed are deleted, then those it created or changed written.
%% Only regular files are touched, and only where they were loaded from:
%% a new file never replaces anything on the host (a file, a FIFO, a link,
%% a name left out), a changed or removed one must still be a regular file,
%% and no path is followed through a symbolic link.
write_back(Host, Root, Before, After) ->
    Prefix = case Root of <<"/">> -> Root; _ -> <<Root/binary, "/">> end,
    N = byte_size(Prefix),
    Now = maps:from_list([{Rel, Data} || {<<P:N/binary, Rel/binary>>, Data} <- maps:to_list(After), P =:= Prefix]),
    Removed = [Rel || {Rel, Data} <- lists:sort(maps:to_list(Before)), is_binary(Data), not maps:is_key(Rel, Now)],
    Written = [{Rel, Data, is_binary(maps:get(Rel, Before, dir))}
               || {Rel, Data} <- lists:sort(maps:to_list(Now)), maps:get(Rel, Before, none) =/= Data],
    [on_host(Host, Rel, delete) || Rel <- Removed],
    [on_host(Host, Rel, {write, Data, Loaded}) || {Rel, Data, Loaded} <- Written],
    ok.

on_host(Host, Rel, Action) ->
    Parts = binary:split(Rel, <<"/">>, [global]),
    Path = host_path(Host, Rel),
    case {safe_dirs(Host, lists:droplast(Parts), Action =/= delete), file:read_link_info(Path), Action} of
        {{error, Why}, _, _} ->
            note(Host, Rel, Why);
        {ok, {ok, #file_info{type = regular}}, delete} ->
            _ = file:delete(Path), ok;
        {ok, {ok, #file_info{type = regular}}, {write, Data, true}} ->
            written(Host, Rel, file:write_file(Path, Data));
        {ok, {error, enoent}, {write, Data, _}} ->
            % exclusive: whatever appeared there meanwhile stays.
            written(Host, Rel, file:write_file(Path, Data, [exclusive]));
        {ok, {error, enoent}, delete} ->
            ok;
        {ok, {ok, #file_info{type = regular}}, {write, _, false}} ->
            note(Host, Rel, "a file the program did not see is there");
        {ok, {ok, #file_info{type = Type}}, _} ->
            note(Host, Rel, io_lib:format("it is a ~s on the host, not a regular file", [type_name(Type)]));
        {ok, {error, Why}, _} ->
            note(Host, Rel, file:format_error(Why))
    end.

written(_Host, _Rel, ok) -> ok;
written(Host, Rel, {error, Why}) -> note(Host, Rel, file:format_error(Why)).

type_name(symlink) -> "symbolic link";
type_name(other) -> "FIFO, socket or device";
type_name(Type) -> atom_to_list(Type).

%% Checks (and with Create, creates) the directories Parts under Dir;
%% an error at a symbolic link or anything else that is no directory.
safe_dirs(_Dir, [], _Create) ->
    ok;
safe_dirs(Dir, [Part | Rest], Create) ->
    Path = filename:join(Dir, Part),
    case file:read_link_info(Path) of
        {ok, #file_info{type = directory}} -> safe_dirs(Path, Rest, Create);
        {ok, #file_info{type = symlink}} -> {error, "a symbolic link is in the way"};
        {ok, _} -> {error, "a non-directory is in the way"};
        {error, enoent} when Create ->
            case file:make_dir(Path) of
                ok -> safe_dirs(Path, Rest, Create);
                {error, Why} -> {error, file:format_error(Why)}
            end;
        {error, enoent} -> ok;
        {error, Why} -> {error, file:format_error(Why)}
    end.

note(Host, Rel, Why) ->
    say("--dir ~ts: leaving ~ts alone: ~ts", [shown(Host), shown(Rel), Why]).

host_path(Dir, <<>>) -> Dir;
host_path(Dir, Rel) -> <<Dir/binary, "/", Rel/binary>>.

join_rel(<<>>, Name) -> Name;
join_rel(Rel, Name) -> <<Rel/binary, "/", Name/binary>>.

%% A file name from list_dir_all as the host's bytes (binaries are names
%% not valid in the native encoding, already raw).
name_bytes(Name) when is_binary(Name) -> Name;
name_bytes(Name) -> bytes(Name).

%% A command-line string as the bytes it came as: the VM decodes argv (and
%% file names) by the native file name encoding, utf8 or latin1 (+fnu,
%% +fnl, the locale). Binary file names are passed to the OS as they are.
bytes(Arg) ->
    try unicode:characters_to_binary(Arg, unicode, file:native_name_encoding()) of
        Bin when is_binary(Bin) -> Bin;
        _ -> fail("not valid in this locale's encoding: ~w", [Arg])
    catch
        % An argument that is not valid UTF-8 comes as {error, Decoded, RawRest}.
        error:badarg when tuple_size(Arg) =:= 3, is_binary(element(3, Arg)) ->
            <<(bytes(element(2, Arg)))/binary, (element(3, Arg))/binary>>
    end.

is_utf8(Bin) ->
    is_binary(unicode:characters_to_binary(Bin, utf8, utf8)).

%% Bytes for a message: as they are when UTF-8, escaped otherwise.
shown(Bin) ->
    case unicode:characters_to_list(Bin, utf8) of
        Chars when is_list(Chars) -> Chars;
        _ -> io_lib:format("~w", [Bin])
    end.

with_module(File, Fun) ->
    {ok, Bytes} = read(File),
    {ok, WASM, _Imports, _Exports} = start(File, Bytes),
    try Fun(WASM) after hb_beamr:stop(WASM) end.

%% Starts a module, or fails. Imports a start function calls are printed
%% and answered with zeros, as during a call.
start(File, Bytes) ->
    case hb_beamr:start(Bytes, mode(File), #{import_fun => fun print_import/3, state => 0}) of
        {ok, WASM, Imports, Exports, _} ->
            {ok, WASM, Imports, Exports};
        {error, Reason} ->
            fail("cannot start ~ts: ~p", [File, Reason]);
        {error, Class, Reason, _, _} ->
            fail("cannot start ~ts: ~p:~p", [File, Class, Reason])
    end.

read(File) ->
    case file:read_file(File) of
        {ok, Bytes} -> {ok, Bytes};
        {error, Reason} -> fail("cannot read ~ts: ~s", [File, file:format_error(Reason)])
    end.

mode(File) ->
    case filename:extension(File) of
        ".aot" -> aot;
        _ -> wasm
    end.

%% Runs Fun repeatedly for about Seconds; the rate per second.
rate(Fun, Seconds) ->
    Until = erlang:monotonic_time(millisecond) + Seconds * 1000,
    Start = erlang:monotonic_time(microsecond),
    N = repeat(Fun, Until, 0),
    N * 1000000 / max(1, erlang:monotonic_time(microsecond) - Start).

repeat(Fun, Until, N) ->
    _ = [Fun() || _ <- lists:seq(1, 1000)],
    case erlang:monotonic_time(millisecond) >= Until of
        true -> N + 1000;
        false -> repeat(Fun, Until, N + 1000)
    end.

row(What, Rates, Baseline) ->
    io:format("~-34s ~12w ~12w ~12w ~7.2f~n", [
        What, round(median(Rates)), round(lists:min(Rates)), round(lists:max(Rates)), median(Rates) / Baseline
    ]).

median(Values) ->
    lists:nth((length(Values) + 1) div 2, lists:sort(Values)).

echo() ->
    receive
        {From, ping} -> From ! pong, echo()
    end.

parse_args(Args) ->
    parse_args(Args, []).

parse_args([], Acc) ->
    {ok, lists:reverse(Acc)};
parse_args([Arg | Rest], Acc) ->
    case number(Arg) of
        {ok, N} -> parse_args(Rest, [N | Acc]);
        error -> {error, Arg}
    end.

number(Text) ->
    try
        {ok, list_to_integer(Text)}
    catch
        error:badarg ->
            try {ok, list_to_float(Text)} catch error:badarg -> error end
    end.

print_import(Count, #{module := M, func := F, args := Args}, _Opts) ->
    io:format(standard_error, "import ~s.~s(~s) -> 0~n", [M, F, join(Args)]),
    {ok, [0], Count + 1}.

report({ok, Results, _Imports}) ->
    io:format("~s~n", [join(Results)]);
report({error, Reason}) ->
    fail("~p", [Reason]);
report({error, Class, Reason, _Stack, _State}) ->
    fail("import failed: ~p:~p", [Class, Reason]).

join(Values) ->
    lists:join(" ", [io_lib:format("~p", [V]) || V <- Values]).

-spec fail(string(), [term()]) -> no_return().
fail(Format, Args) ->
    say(Format, Args),
    halt(1).

%% A message on stderr as UTF-8 bytes (file:write/2: the device stays
%% latin1, for the guest's stderr bytes).
say(Format, Args) ->
    ok = file:write(standard_error, unicode:characters_to_binary(io_lib:format("hb_beamr: " ++ Format ++ "~n", Args))).
