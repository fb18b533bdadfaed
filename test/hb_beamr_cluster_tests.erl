%%% @doc Instances across a cluster: every API function on an instance of
%%% another node (peer nodes), starting on another node, migrating, and
%%% prompt errors when a node goes down. Runs in the suites' mode.
-module(hb_beamr_cluster_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, mode/0, wait_until/1]).

-define(PAGE, 65536).

%% Makes this node distributed (once) and starts a peer with hb_beamr's code.
peer() ->
    ok = distributed(50),
    Paths = lists:append([["-pa", D] || D <- code:get_path(), string:find(D, "_build") =/= nomatch]),
    {ok, Peer, Node} = peer:start_link(#{name => peer:random_name(), args => Paths}),
    {Peer, Node}.

distributed(Tries) ->
    case node() of
        nonode@nohost ->
            _ = os:cmd("epmd -daemon"),
            Name = list_to_atom("hb_beamr_test_" ++ os:getpid()),
            case net_kernel:start([Name, shortnames]) of
                {ok, _} -> ok;
                % epmd may take a moment to listen.
                {error, _} when Tries > 0 -> timer:sleep(100), distributed(Tries - 1);
                {error, Reason} -> {error, Reason}
            end;
        _ ->
            ok
    end.

bytes(Name) ->
    case mode() of
        wasm -> fixture(Name);
        aot -> {ok, Aot} = hb_beamr:compile(fixture(Name)), Aot
    end.

start_on(Node, Name) ->
    {ok, WASM, _, _} = hb_beamr:start(bytes(Name), mode(), #{node => Node}),
    WASM.

cluster_test_() ->
    {setup, fun peer/0, fun({Peer, _}) -> peer:stop(Peer) end, fun({_, Node}) ->
        [
            {"calls and errors", fun() -> calls_and_errors(Node) end},
            {"imports served here, nested calls and io", fun() -> imports_here(Node) end},
            {"memory, snapshots, raw protocol", fun() -> memory_and_raw(Node) end},
            {"timeouts with a stuck import function", fun() -> remote_timeout(Node) end},
            {"migrate there and back", fun() -> migrate(Node) end},
            {"calls queued during a migration are answered", fun() -> migrate_with_queue(Node) end},
            {"a caller on another node dying mid-import", fun() -> remote_caller_dies(Node) end}
        ]
    end}.

calls_and_errors(Node) ->
    WASM = start_on(Node, "test.wasm"),
    ?assertEqual(Node, node(WASM)),
    ?assertEqual({ok, [120.0]}, hb_beamr:call(WASM, "fac", [5.0])),
    ?assertEqual({error, function_not_found}, hb_beamr:call(WASM, "nope", [])),
    ?assertMatch({error, {invalid_args, _}}, hb_beamr:call(WASM, "fac", [1, 2])),
    ok = hb_beamr:stop(WASM),
    ?assertEqual({error, stopped}, hb_beamr:call(WASM, "fac", [5.0])),
    ?assertMatch({error, {invalid_wasm, _}}, hb_beamr:start(<<"junk">>, wasm, #{node => Node})).

imports_here(Node) ->
    WASM = start_on(Node, "imports.wasm"),
    Me = self(),
    Import = fun(Calls, #{args := [I], instance := W}, _) ->
        % The import function runs here, in the caller.
        Me = self(),
        {ok, [Inc]} = hb_beamr:call(W, "inc", [I]),
        ok = hb_beamr_io:write(W, 100, <<I>>),
        {ok, [Inc * 10], [I | Calls]}
    end,
    ?assertEqual({ok, [30], [2, 1, 0]}, hb_beamr:call(WASM, "count", [3], Import, [])),
    ?assertEqual({ok, <<2>>}, hb_beamr_io:read(WASM, 100, 1)),
    Raise = fun(_, _, _) -> error(boom) end,
    ?assertMatch({error, error, boom, _, []}, hb_beamr:call(WASM, "count", [1], Raise, [])),
    ?assertEqual({ok, [6]}, hb_beamr:call(WASM, "inc", [5])),
    ok = hb_beamr:stop(WASM).

memory_and_raw(Node) ->
    WASM = start_on(Node, "state.wasm"),
    {ok, [1]} = hb_beamr:call(WASM, "grow", [1]),
    {ok, []} = hb_beamr:call(WASM, "set_all", [99, 1, 2.0, 3.0]),
    ?assertEqual({ok, 2 * ?PAGE}, hb_beamr_io:size(WASM)),
    {ok, Memory} = hb_beamr:serialize(WASM),
    {ok, Snapshot} = hb_beamr:snapshot(WASM),
    Local = start_on(node(), "state.wasm"),
    ?assertEqual(ok, hb_beamr:restore(Local, Snapshot)),
    ?assertEqual({ok, [99]}, hb_beamr:call(Local, "sp", [])),
    ?assertEqual(ok, hb_beamr:deserialize(WASM, Memory)),
    ?assertMatch({error, {snapshot_mismatch, _}}, hb_beamr:restore(WASM, element(2, hb_beamr:snapshot(start_on(Node, "test.wasm"))))),
    ok = hb_beamr:wasm_send(WASM, {command, term_to_binary({call, "sp", []})}),
    receive {execution_result, R} -> ?assertEqual([99], R) after 2000 -> error(no_raw_reply) end,
    [hb_beamr:stop(W) || W <- [WASM, Local]].

remote_timeout(Node) ->
    WASM = start_on(Node, "imports.wasm"),
    Stuck = fun(_, _, _) -> receive never -> ok end end,
    T0 = erlang:monotonic_time(millisecond),
    ?assertEqual({error, timeout}, hb_beamr:call(WASM, "count", [1], Stuck, #{}, #{timeout => 200})),
    ?assert(erlang:monotonic_time(millisecond) - T0 < 1500),
    ?assertEqual({ok, [6]}, hb_beamr:call(WASM, "inc", [5])),
    ok = hb_beamr:stop(WASM).

migrate(Node) ->
    Here = start_on(node(), "state.wasm"),
    {ok, [1]} = hb_beamr:call(Here, "grow", [2]),
    {ok, []} = hb_beamr:call(Here, "store", [2 * ?PAGE + 4, 4242]),
    {ok, []} = hb_beamr:call(Here, "set_all", [7, 8, 9.0, 10.0]),
    {ok, There} = hb_beamr:migrate(Here, Node),
    ?assertEqual(Node, node(There)),
    ?assertEqual({ok, [7]}, hb_beamr:call(There, "sp", [])),
    ?assertEqual({ok, [4242]}, hb_beamr:call(There, "load", [2 * ?PAGE + 4])),
    % The old instance answers nothing any more, but never with silence.
    ?assertEqual({error, stopped}, hb_beamr:call(Here, "sp", [])),
    {ok, Back} = hb_beamr:migrate(There, node()),
    ?assertEqual(node(), node(Back)),
    ?assertEqual({ok, [3]}, hb_beamr:call(Back, "pages", [])),
    ?assertEqual({ok, [7]}, hb_beamr:call(Back, "sp", [])),
    ok = hb_beamr:stop(Back).

%% While one call waits in its import, others queue; a migration queues
%% behind them. Each call gets an answer: served by the old instance before
%% the snapshot, or `{error, stopped}' after it; none is lost.
migrate_with_queue(Node) ->
    Here = start_on(node(), "imports.wasm"),
    Me = self(),
    Blocking = fun(S, _, _) -> Me ! {in_import, self()}, receive {release, V} -> {ok, [V], S} end end,
    A = spawn(fun() -> Me ! {a, hb_beamr:call(Here, "count", [1], Blocking)} end),
    Server = receive {in_import, P} -> P after 5000 -> error(no_import) end,
    spawn(fun() -> Me ! {b, hb_beamr:call(Here, "inc", [1])} end),
    timer:sleep(50),
    spawn(fun() -> Me ! {migrated, hb_beamr:migrate(Here, Node)} end),
    timer:sleep(50),
    spawn(fun() -> Me ! {c, hb_beamr:call(Here, "inc", [2])} end),
    timer:sleep(50),
    Server ! {release, 5},
    Results = [receive {K, R} -> {K, R} after 10000 -> {K, hang} end || K <- [a, b, migrated, c]],
    ?assertMatch([{a, {ok, [5], _}}, {b, {ok, [2]}}, {migrated, {ok, _}}, {c, _}], Results),
    {c, C} = lists:keyfind(c, 1, Results),
    ?assert(C =:= {ok, [3]} orelse C =:= {error, stopped}),
    {migrated, {ok, There}} = lists:keyfind(migrated, 1, Results),
    ?assertEqual({ok, [8]}, hb_beamr:call(There, "inc", [7])),
    _ = A,
    ok = hb_beamr:stop(There).

%% A process on the peer calls an instance here and dies mid-import: the
%% instance is freed for the next caller.
remote_caller_dies(Node) ->
    WASM = start_on(node(), "imports.wasm"),
    Me = self(),
    Caller = spawn(Node, fun() ->
        hb_beamr:call(WASM, "count", [1], fun(_, _, _) -> Me ! in_import, receive never -> ok end end)
    end),
    receive in_import -> ok after 5000 -> error(no_import) end,
    exit(Caller, kill),
    ?assertEqual({ok, [6]}, hb_beamr:call(WASM, "inc", [5])),
    ok = hb_beamr:stop(WASM).

%% The instance's node goes down mid-call: the caller gets
%% `{error, {nodedown, Node}}' at once, not a hang.
nodedown_mid_call_test_() ->
    {timeout, 60, fun() ->
        {Peer, Node} = peer(),
        WASM = start_on(Node, "spin.wasm"),
        Me = self(),
        spawn(fun() -> Me ! {result, hb_beamr:call(WASM, "forever", [])} end),
        timer:sleep(200),
        peer:stop(Peer),
        receive
            {result, R} -> ?assertEqual({error, {nodedown, Node}}, R)
        after 10000 -> error(hang)
        end,
        ?assertEqual({error, {nodedown, Node}}, hb_beamr:call(WASM, "quick", []))
    end}.

%% The caller's node goes down mid-import: the instance here is freed.
caller_nodedown_mid_import_test_() ->
    {timeout, 60, fun() ->
        {Peer, Node} = peer(),
        WASM = start_on(node(), "imports.wasm"),
        Me = self(),
        spawn(Node, fun() ->
            hb_beamr:call(WASM, "count", [1], fun(_, _, _) -> Me ! in_import, receive never -> ok end end)
        end),
        receive in_import -> ok after 5000 -> error(no_import) end,
        peer:stop(Peer),
        ?assertEqual({ok, [6]}, hb_beamr:call(WASM, "inc", [5])),
        ok = hb_beamr:stop(WASM)
    end}.
