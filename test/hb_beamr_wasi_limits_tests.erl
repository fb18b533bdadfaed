%%% @doc hb_beamr_wasi's limits (issue 19, items 1 and 2): a guest must not
%%% control how much memory the host takes. test/fixtures/wasi/amplify.wat names
%%% 512 MiB in one fd_write from two pages (8,192 iovecs over one 64 KiB
%%% buffer), and writes one byte at 2^30 - 1 of new files; each test bounds
%%% the host's peak memory growth and checks the errno or short count the
%%% guest gets. Runs in the suites' mode (HB_BEAMR_TEST_MODE=aot for AOT).
-module(hb_beamr_wasi_limits_tests).

-include_lib("eunit/include/eunit.hrl").

-define(MiB, (1 bsl 20)).
-define(GiB, (1 bsl 30)).
-define(NOSPC, 51).
-define(FBIG, 22).

%%% Helpers

%% Runs `Fun(Call)' on a fresh amplify.wasm with a WASI state of `Opts' and
%% `/data' preopened (fd 3). `Call(Func, Args)' returns the export's errno
%% and the count it left at 8 (or the new fd, for open); `Call(state)' the
%% WASI state now.
with_guest(Opts, Fun) ->
    hb_beamr_test_util:with_instance("wasi/amplify.wasm", fun(W) ->
        {ok, S0} = hb_beamr_wasi:new_state(maps:merge(#{preopens => #{<<"/data">> => #{}}}, Opts)),
        Serve = hb_beamr_wasi:import_fun(fun hb_beamr:stub/3),
        Key = {?MODULE, state},
        put(Key, S0),
        Call = fun
            (state) -> get(Key);
            ({Func, Args}) ->
                {ok, Results, S1} = hb_beamr:call(W, Func, Args, Serve, get(Key)),
                put(Key, S1),
                {ok, [Count], _} = hb_beamr:call(W, "count", [], Serve, S1),
                {Results, Count}
        end,
        try Fun(fun(Func, Args) -> Call({Func, Args}) end, fun() -> Call(state) end)
        after erase(Key)
        end
    end).

%% `Fun()' and the most the node's memory grew by while it ran, in bytes.
peak(Fun) ->
    erlang:garbage_collect(),
    Base = erlang:memory(total),
    Self = self(),
    Sampler = spawn_link(fun() -> sample(Self, Base, 0) end),
    Result = Fun(),
    Sampler ! {stop, Self},
    receive {peak, Sampler, Peak} -> {Result, max(Peak, erlang:memory(total) - Base)} end.

sample(Parent, Base, Max) ->
    Peak = max(Max, erlang:memory(total) - Base),
    receive {stop, Parent} -> Parent ! {peak, self(), Peak}
    after 1 -> sample(Parent, Base, Peak)
    end.

size_of(State, Path) ->
    hb_beamr_wasi_fs:stat(maps:get(fs, State), Path).

%%% Item 1: fd_write/fd_pwrite/fd_read/fd_pread with aliased iovecs

%% Before: 512 MiB gathered, 1.1 GiB peak growth, count 536870912.
aliased_stdout_write_test_() ->
    {timeout, 120, fun() ->
        with_guest(#{}, fun(Call, State) ->
            Call("fill", [8192, 65536]),
            {{[0], Count}, Grew} = peak(fun() -> Call("write", [1, 8192]) end),
            % A short write at max_io (16 MiB by default).
            ?assertEqual(16 * ?MiB, Count),
            ?assertEqual(16 * ?MiB, byte_size(hb_beamr_wasi:stdout(State()))),
            ?assert(Grew < 48 * ?MiB)
        end)
    end}.

%% Captured output stops at max_output: short, then nospc.
capture_limit_test_() ->
    {timeout, 120, fun() ->
        with_guest(#{max_io => 512 * 1024, max_output => ?MiB + 100}, fun(Call, State) ->
            Call("fill", [8192, 65536]),
            {Answers, Grew} = peak(fun() -> [Call("write", [2, 8192]) || _ <- lists:seq(1, 5)] end),
            ?assertEqual([{[0], 512 * 1024}, {[0], 512 * 1024}, {[0], 100}, {[?NOSPC], 100}, {[?NOSPC], 100}],
                         Answers),
            ?assertEqual(?MiB + 100, byte_size(hb_beamr_wasi:stderr(State()))),
            ?assertEqual(<<>>, hb_beamr_wasi:stdout(State())),
            ?assert(Grew < 16 * ?MiB)
        end)
    end}.

%% A host device gets the bytes 64 KiB at a time: nothing is assembled.
host_stdout_streams_test_() ->
    {timeout, 120, fun() ->
        {ok, Null} = file:open("/dev/null", [write, raw, binary]),
        try
            with_guest(#{stdout => {host, Null}}, fun(Call, _State) ->
                Call("fill", [8192, 65536]),
                {{[0], Count}, Grew} = peak(fun() -> Call("write", [1, 8192]) end),
                ?assertEqual(16 * ?MiB, Count),
                ?assert(Grew < 8 * ?MiB)
            end)
        after
            file:close(Null)
        end
    end}.

%% fd_write and fd_pwrite into a file stop at the budget: short, then
%% nospc; overwriting what is there costs nothing.
aliased_file_write_test_() ->
    {timeout, 120, fun() ->
        with_guest(#{fs_budget => 4 * ?MiB}, fun(Call, State) ->
            {[0], Fd} = Call("open", [0, 1]),
            Call("fill", [8192, 65536]),
            {{{[0], Short}, {[?NOSPC], _}, Over}, Grew} = peak(fun() ->
                {Call("pwrite", [Fd, 8192, 0]), Call("pwrite", [Fd, 8192, 4 * ?MiB]), Call("write", [Fd, 8192])}
            end),
            % The budget less the file's entry (its path and 64 bytes).
            ?assert(Short > 4 * ?MiB - 200 andalso Short < 4 * ?MiB),
            ?assertEqual({[0], Short}, Over),
            ?assertMatch({[?NOSPC], _}, Call("write", [Fd, 8192])),
            ?assertEqual({file, Short}, size_of(State(), <<"/data/big0">>)),
            ?assert(Grew < 24 * ?MiB)
        end)
    end}.

%% fd_read takes what stdin has, however much the iovecs name.
aliased_read_test_() ->
    {timeout, 120, fun() ->
        Input = binary:copy(<<"abcd">>, 256 * 1024),
        with_guest(#{stdin => Input}, fun(Call, _State) ->
            Call("fill", [8192, 65536]),
            {{[0], Count}, Grew} = peak(fun() -> Call("read", [0, 8192]) end),
            ?assertEqual(?MiB, Count),
            ?assertEqual({[0], 0}, Call("read", [0, 8192])),
            ?assert(Grew < 8 * ?MiB)
        end)
    end}.

%% Host stdin is read 64 KiB a call (a short read, as from a pipe).
host_stdin_read_test_() ->
    {timeout, 120, fun() ->
        Path = filename:join(os:getenv("TMPDIR", "/tmp"), "hb_beamr_wasi_limits_stdin"),
        ok = file:write_file(Path, binary:copy(<<"abcd">>, 256 * 1024)),
        {ok, In} = file:open(Path, [read, raw, binary]),
        try
            with_guest(#{stdin => {host, In}}, fun(Call, _State) ->
                Call("fill", [8192, 65536]),
                {Counts, Grew} = peak(fun() -> [Call("read", [0, 8192]) || _ <- lists:seq(1, 17)] end),
                ?assertEqual(lists:duplicate(16, {[0], 65536}) ++ [{[0], 0}], Counts),
                ?assert(Grew < 8 * ?MiB)
            end)
        after
            file:close(In),
            file:delete(Path)
        end
    end}.

%% fd_pread of a 1 GiB hole: max_io of zeros, 64 KiB at a time.
hole_pread_test_() ->
    {timeout, 120, fun() ->
        with_guest(#{fs_budget => infinity}, fun(Call, _State) ->
            {[0], Fd} = Call("open", [0, 1]),
            Call("fill", [1, 65536]),
            {[0], 65536} = Call("pwrite", [Fd, 1, 0]),   % 64 KiB of whatever is at 0
            {[0], _} = Call("set_size", [Fd, ?GiB]),
            Call("fill", [8192, 65536]),
            {{[0], Count}, Grew} = peak(fun() -> Call("pread", [Fd, 8192, ?GiB - 65536]) end),
            ?assertEqual(65536, Count),
            {{[0], Count2}, Grew2} = peak(fun() -> Call("pread", [Fd, 8192, 65536]) end),
            ?assertEqual(16 * ?MiB, Count2),
            ?assert(max(Grew, Grew2) < 8 * ?MiB)
        end)
    end}.

%%% Item 2: sparse writes and the file system's budget

%% Before: two pwrites grew the node by 2.2 GiB (both answered 0).
sparse_write_default_budget_test_() ->
    {timeout, 120, fun() ->
        with_guest(#{}, fun(Call, State) ->
            {[0], Fd} = Call("open", [0, 1]),
            Call("fill", [1, 1]),
            {{{[?NOSPC], _}, {[?NOSPC], _}}, Grew} = peak(fun() ->
                {Call("pwrite", [Fd, 1, ?GiB - 1]), Call("set_size", [Fd, ?GiB])}
            end),
            ?assertEqual({file, 0}, size_of(State(), <<"/data/big0">>)),
            % Within the budget, a write in the middle works.
            ?assertEqual({[0], 1}, Call("pwrite", [Fd, 1, ?MiB])),
            ?assertEqual({file, ?MiB + 1}, size_of(State(), <<"/data/big0">>)),
            ?assert(Grew < 4 * ?MiB)
        end)
    end}.

%% With no budget, a hole costs nothing while the program runs.
sparse_write_no_budget_test_() ->
    {timeout, 120, fun() ->
        with_guest(#{fs_budget => infinity}, fun(Call, State) ->
            {[0], Fd0} = Call("open", [0, 1]),
            {[0], Fd1} = Call("open", [1, 1]),
            Call("fill", [1, 1]),
            {{{[0], 1}, {[0], 1}}, Grew} = peak(fun() ->
                {Call("pwrite", [Fd0, 1, ?GiB - 1]), Call("pwrite", [Fd1, 1, ?GiB - 1])}
            end),
            ?assert(Grew < 4 * ?MiB),
            ?assertEqual({file, ?GiB}, size_of(State(), <<"/data/big0">>)),
            % Past 1 GiB is fbig, of a write or a size.
            ?assertMatch({[?FBIG], _}, Call("pwrite", [Fd0, 1, ?GiB])),
            ?assertMatch({[?FBIG], _}, Call("set_size", [Fd0, ?GiB + 1])),
            FS = maps:get(fs, State()),
            ?assertEqual({ok, <<0, 0, 0>>}, hb_beamr_wasi_fs:read(FS, <<"/data/big0">>, ?GiB - 4, 3))
        end)
    end}.

%% Truncating gives the budget back; growing a file by its size counts.
truncate_budget_test_() ->
    {timeout, 120, fun() ->
        with_guest(#{fs_budget => ?MiB}, fun(Call, _State) ->
            {[0], Fd} = Call("open", [0, 1]),
            ?assertMatch({[0], _}, Call("set_size", [Fd, ?MiB - 100])),
            ?assertMatch({[?NOSPC], _}, Call("set_size", [Fd, ?MiB])),
            ?assertMatch({[?NOSPC], _}, Call("open", [1, 1])),
            {[0], _} = Call("open", [0, 8]),                 % O_TRUNC
            ?assertMatch({[0], _}, Call("open", [1, 1])),
            ?assertMatch({[0], _}, Call("set_size", [Fd, ?MiB - 200]))
        end)
    end}.

%% The whole attack as a command: both classes, bounded, through run/2.
run_test_() ->
    {timeout, 120, fun() ->
        Wasm = hb_beamr_test_util:fixture("wasi/amplify.wasm"),
        {{ok, Result}, Grew} = peak(fun() ->
            hb_beamr_wasi:run(Wasm, #{mode => hb_beamr_test_util:mode(), max_io => ?MiB, max_output => 2 * ?MiB,
                                      preopens => #{<<"/data">> => #{}}})
        end),
        % Two 1 MiB writes, a third that is nospc; the first pwrite is nospc.
        ?assertMatch(#{exit_code := ?NOSPC, files := #{<<"/data/big0">> := <<>>}}, Result),
        ?assertEqual(2 * ?MiB, byte_size(maps:get(stdout, Result))),
        ?assert(Grew < 32 * ?MiB)
    end}.

%%% Options

options_test_() ->
    Wasm = hb_beamr_test_util:fixture("wasi/amplify.wasm"),
    [?_assertEqual({error, {invalid_option, {Key, Value}}}, hb_beamr_wasi:new_state(#{Key => Value}))
     || {Key, Value} <- [{max_io, 0}, {max_io, infinity}, {max_output, -1}, {max_output, big},
                         {fs_budget, -1}, {fs_budget, 1.5}]] ++
    [?_assertEqual({error, {invalid_option, {fs_budget, lots}}}, hb_beamr_wasi:run(Wasm, #{fs_budget => lots})),
     ?_assertMatch({ok, #{limits := #{max_io := 16777216, max_output := 67108864}}}, hb_beamr_wasi:new_state(#{})),
     ?_assertEqual(#{max_io => 16 * ?MiB, max_output => 64 * ?MiB, fs_budget => 256 * ?MiB},
                   hb_beamr_wasi:default_limits())].

%%% The file system (no instance)

fs_blocks_test() ->
    {ok, FS0, _} = hb_beamr_wasi_fs:new(#{<<"/d">> => #{<<"f">> => <<"abc">>}}, 70000),
    {Used0, Limit0} = hb_beamr_wasi_fs:usage(FS0),
    ?assertEqual(70000, Limit0 - Used0),
    % Across a block boundary, then a hole between.
    {ok, FS1, 65540} = hb_beamr_wasi_fs:write(FS0, <<"/d/f">>, 65530, <<"0123456789">>),
    ?assertMatch({error, nospc}, hb_beamr_wasi_fs:write(FS1, <<"/d/f">>, 70010, <<"x">>)),
    ?assertEqual({ok, <<"abc", 0, 0>>}, hb_beamr_wasi_fs:read(FS1, <<"/d/f">>, 0, 5)),
    ?assertEqual({ok, <<0, "0123456789">>}, hb_beamr_wasi_fs:read(FS1, <<"/d/f">>, 65529, 100)),
    % Shrinking drops the bytes: growing again reads zeros.
    {ok, FS2} = hb_beamr_wasi_fs:set_size(FS1, <<"/d/f">>, 65532),
    {ok, FS3} = hb_beamr_wasi_fs:set_size(FS2, <<"/d/f">>, 65540),
    ?assertEqual({ok, <<"01", 0, 0, 0, 0, 0, 0, 0, 0>>}, hb_beamr_wasi_fs:read(FS3, <<"/d/f">>, 65530, 10)),
    {ok, FS4} = hb_beamr_wasi_fs:set_size(FS3, <<"/d/f">>, 2),
    ?assertEqual(<<"ab">>, hb_beamr_wasi_fs:lookup(FS4, <<"/d/f">>)),
    ?assertEqual(hb_beamr_wasi_fs:usage(FS0), begin {U, L} = hb_beamr_wasi_fs:usage(FS4), {U + 1, L} end),
    % Unlinking gives the file's bytes and entry back.
    {ok, FS5} = hb_beamr_wasi_fs:unlink(FS1, <<"/d/f">>),
    ?assertEqual(element(1, hb_beamr_wasi_fs:usage(FS0)) - 3 - byte_size(<<"/d/f">>) - 64,
                 element(1, hb_beamr_wasi_fs:usage(FS5))).

fs_entry_budget_test() ->
    {ok, FS0, _} = hb_beamr_wasi_fs:new(#{<<"/d">> => #{}}, 200),
    Long = <<"/d/", (binary:copy(<<"n">>, 100))/binary>>,
    Longer = <<"/d/", (binary:copy(<<"n">>, 140))/binary>>,
    {ok, FS1} = hb_beamr_wasi_fs:mkdir(FS0, Long),
    ?assertEqual({error, nospc}, hb_beamr_wasi_fs:create(FS1, <<Long/binary, "2">>)),
    % A rename to a longer path costs the difference.
    {ok, FS2} = hb_beamr_wasi_fs:create(FS0, <<"/d/a">>),
    ?assertEqual({error, nospc}, hb_beamr_wasi_fs:rename(FS2, <<"/d/a">>, Longer)),
    {ok, FS3} = hb_beamr_wasi_fs:rename(FS2, <<"/d/a">>, <<"/d/bb">>),
    ?assertEqual(element(1, hb_beamr_wasi_fs:usage(FS2)) + 1, element(1, hb_beamr_wasi_fs:usage(FS3))).
