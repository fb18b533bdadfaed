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
%%% directories; symbolic links are left out) and written back after it:
%%% files it created or changed are written (with their directories),
%%% files it removed are deleted, and nothing is written through a symbolic
%%% link. Directories it creates empty or removes are not mirrored.
-module(hb_beamr_cli).
-mode(compile).
-export([main/1]).

-include_lib("kernel/include/file.hrl").

main(["run" | Rest]) ->
    case run_options(Rest, #{dirs => [], env => #{}}) of
        {Options, [File | Args]} ->
            {ok, Bytes} = read(File),
            case {is_command(File, Bytes), Args} of
                {true, _} -> run_command(File, Bytes, Args, Options);
                {false, [Func | Values]} when Options =:= #{dirs => [], env => #{}} ->
                    call_export(File, Func, Values);
                {false, _} -> fail("~s is not a WASI command (it must import wasi_snapshot_preview1 and export _start)", [File])
            end;
        {_, []} ->
            main([])
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
            fail("cannot compile ~s: ~p", [In, Reason])
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
    hb_beamr:stop(W),
    hb_beamr:stop(A);
main(["info", File]) ->
    {ok, Bytes} = read(File),
    {ok, WASM, Imports, Exports} = start(File, Bytes),
    [io:format("import ~s ~s.~s ~s~n", [K, M, N, S]) || {K, M, N, S} <- Imports],
    [io:format("export ~s ~s ~s~n", [K, N, S]) || {K, N, S} <- Exports],
    hb_beamr:stop(WASM);
main(_) ->
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
            {error, Bad} -> fail("not a number: ~s", [Bad])
        end
    end).

%%% WASI commands

run_options(["--dir", Spec | Rest], Acc = #{dirs := Dirs}) ->
    {Host, Guest} =
        case string:split(Spec, "::") of
            [H, G] -> {H, G};
            [H] -> {H, H}
        end,
    filelib:is_dir(Host) orelse fail("--dir ~s: not a directory", [Host]),
    run_options(Rest, Acc#{dirs := Dirs ++ [{Host, Guest}]});
run_options(["--env", Spec | Rest], Acc = #{env := Env}) ->
    {Name, Value} =
        case string:split(Spec, "=") of
            [N, V] -> {N, V};
            [N] -> {N, os:getenv(N, "")}
        end,
    run_options(Rest, Acc#{env := Env#{Name => Value}});
run_options(["--" ++ _ = Option | _], _Acc) ->
    fail("unknown option ~s", [Option]);
run_options(Rest, Acc) ->
    {Acc, Rest}.

%% A WASI command imports from wasi_snapshot_preview1 and exports _start.
%% The module is started once to see its imports and exports, with WASI
%% served from a throwaway state (a start function may call it; one that
%% exits there is a WASI command too).
is_command(File, Bytes) ->
    {ok, Probe} = hb_beamr_wasi:new_state(#{}),
    Serve = hb_beamr_wasi:import_fun(fun hb_beamr:stub/3),
    case hb_beamr:start(Bytes, mode(File), #{import_fun => Serve, state => Probe}) of
        {ok, WASM, Imports, Exports, _} ->
            hb_beamr:stop(WASM),
            lists:keymember(<<"wasi_snapshot_preview1">>, 2, Imports)
                andalso lists:member({func, <<"_start">>, <<"()">>}, Exports);
        {error, throw, {hb_beamr_wasi_exit, _}, _, _} ->
            true;
        {error, Reason} ->
            fail("cannot start ~s: ~p", [File, Reason]);
        {error, Class, Reason, _, _} ->
            fail("cannot start ~s: ~p:~p", [File, Class, Reason])
    end.

run_command(File, Bytes, Args, #{dirs := Dirs, env := Env}) ->
    Loaded = [{Host, Guest, load_dir(Host)} || {Host, Guest} <- Dirs],
    Preopens = maps:from_list([{Guest, Files} || {_, Guest, Files} <- Loaded]),
    % Input from file descriptor 0 as it arrives (-noinput leaves it to us);
    % output through the standard I/O servers, as bytes.
    Stdin = open_port({fd, 0, 1}, [in, binary, eof]),
    ok = io:setopts(standard_io, [binary, {encoding, latin1}]),
    Opts = #{mode => mode(File), args => [File | Args], env => Env, preopens => Preopens,
             stdin => {host, Stdin}, stdout => {host, standard_io}, stderr => {host, standard_error},
             tty => is_tty(1)},
    case hb_beamr_wasi:run(Bytes, Opts) of
        {ok, Result = #{exit_code := Code, files := After}} ->
            [write_back(Host, hb_beamr_wasi_fs:root(Guest), Before, After) || {Host, Guest, Before} <- Loaded],
            case Result of
                #{trap := Why} -> io:format(standard_error, "hb_beamr: ~s: wasm trap: ~s~n", [File, Why]);
                _ -> ok
            end,
            halt(Code band 255);
        {error, Reason} ->
            fail("~s: ~p", [File, Reason])
    end.

%% Whether this process's file descriptor Fd is a terminal.
is_tty(Fd) ->
    case file:read_link("/proc/self/fd/" ++ integer_to_list(Fd)) of
        {ok, "/dev/pts/" ++ _} -> true;
        {ok, "/dev/tty" ++ _} -> true;
        _ -> false
    end.

%% Every directory and regular file under Dir, by path relative to it;
%% symbolic links (and what they point to) are left out.
load_dir(Dir) ->
    maps:from_list(load_dir(Dir, "")).

load_dir(Dir, Rel) ->
    {ok, Names} = file:list_dir(filename:join(Dir, Rel)),
    lists:append([
        begin
            Path = case Rel of "" -> Name; _ -> Rel ++ "/" ++ Name end,
            case file:read_link_info(filename:join(Dir, Path)) of
                {ok, #file_info{type = directory}} -> [{list_to_binary(Path), dir} | load_dir(Dir, Path)];
                {ok, #file_info{type = regular}} ->
                    {ok, Data} = file:read_file(filename:join(Dir, Path)),
                    [{list_to_binary(Path), Data}];
                _ -> []
            end
        end
     || Name <- lists:sort(Names)
    ]).

%% Writes the files under guest directory Root back to Host: new and
%% changed files are written, removed ones deleted. A path that meets a
%% symbolic link on the host is skipped.
write_back(Host, Root, Before, After) ->
    Prefix = case Root of <<"/">> -> Root; _ -> <<Root/binary, "/">> end,
    N = byte_size(Prefix),
    Now = maps:from_list([{Rel, Data} || {<<P:N/binary, Rel/binary>>, Data} <- maps:to_list(After), P =:= Prefix]),
    [on_host(Host, Rel, {write, Data}) || {Rel, Data} <- maps:to_list(Now), maps:get(Rel, Before, none) =/= Data],
    [on_host(Host, Rel, delete) || {Rel, Data} <- maps:to_list(Before), Data =/= dir, not maps:is_key(Rel, Now)],
    ok.

on_host(Host, Rel, Action) ->
    Parts = filename:split(binary_to_list(Rel)),
    Path = filename:join([Host | Parts]),
    case safe_dirs(Host, lists:droplast(Parts)) andalso not is_link(Path) of
        true when Action =:= delete -> _ = file:delete(Path), ok;
        true -> {write, Data} = Action, ok = file:write_file(Path, Data);
        false -> io:format(standard_error, "hb_beamr: leaving ~s alone: a symbolic link is in the way~n", [Path])
    end.

%% Creates the directories of Parts under Dir; false at a symbolic link.
safe_dirs(_Dir, []) ->
    true;
safe_dirs(Dir, [Part | Rest]) ->
    Path = filename:join(Dir, Part),
    case file:read_link_info(Path) of
        {ok, #file_info{type = directory}} -> safe_dirs(Path, Rest);
        {ok, _} -> false;
        {error, enoent} -> ok = file:make_dir(Path), safe_dirs(Path, Rest);
        {error, _} -> false
    end.

is_link(Path) ->
    case file:read_link_info(Path) of
        {ok, #file_info{type = symlink}} -> true;
        _ -> false
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
            fail("cannot start ~s: ~p", [File, Reason]);
        {error, Class, Reason, _, _} ->
            fail("cannot start ~s: ~p:~p", [File, Class, Reason])
    end.

read(File) ->
    case file:read_file(File) of
        {ok, Bytes} -> {ok, Bytes};
        {error, Reason} -> fail("cannot read ~s: ~s", [File, file:format_error(Reason)])
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
    [Fun() || _ <- lists:seq(1, 1000)],
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

fail(Format, Args) ->
    io:format(standard_error, "hb_beamr: " ++ Format ++ "~n", Args),
    halt(1).
