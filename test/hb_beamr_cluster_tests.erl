%%% @doc Instances across a cluster: every API function on an instance of
%%% another node (peer nodes), starting on another node, migrating, and
%%% prompt errors when a node goes down. Runs in the suites' mode.
-module(hb_beamr_cluster_tests).
-include_lib("eunit/include/eunit.hrl").

%% Run on a peer node.
-export([peer_census/1]).

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
            {"a caller on another node dying mid-import", fun() -> remote_caller_dies(Node) end},
            {"forks there, of a snapshot from here", fun() -> remote_forks(Node) end}
        ]
    end}.

%% A fork of an instance on another node lives there; a start there takes
%% a snapshot made here (an image is local to its node).
remote_forks(Node) ->
    WASM = start_on(Node, "state.wasm"),
    {ok, [1]} = hb_beamr:call(WASM, "grow", [1]),
    {ok, []} = hb_beamr:call(WASM, "store", [?PAGE + 8, 42]),
    {ok, Snap} = hb_beamr:snapshot(WASM),
    {ok, Fork, _, _} = hb_beamr:fork(WASM),
    ?assertEqual(Node, node(Fork)),
    ?assertEqual({ok, Snap}, hb_beamr:snapshot(Fork)),
    {ok, []} = hb_beamr:call(Fork, "store", [?PAGE + 8, 1]),
    ?assertEqual({ok, [42]}, hb_beamr:call(WASM, "load", [?PAGE + 8])),
    {ok, There, _, _} = hb_beamr:start(bytes("state.wasm"), mode(), #{node => Node, snapshot => Snap}),
    ?assertEqual({ok, Snap}, hb_beamr:snapshot(There)),
    ?assertEqual({error, badarg}, hb_beamr:image(WASM)),
    [ok = hb_beamr:stop(W) || W <- [WASM, Fork, There]],
    ?assertEqual({error, stopped}, hb_beamr:fork(WASM)).

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

%%% The instance's node stalled (SIGSTOP of its OS process: the connection
%%% stays up, the distribution would notice only after its tick, about a
%%% minute). Every operation answers within its timeout, or within the node
%%% timeout (hb_beamr_node:node_timeout/0) for those without one, leaves no
%%% stray message here, and after SIGCONT each instance is usable or gone.

%% Margin over a timeout for an answer, on a loaded machine.
-define(MARGIN, 1000).

stalled_node_test_() ->
    {setup,
        fun() ->
            {Peer, Node} = peer(),
            OsPid = erpc:call(Node, os, getpid, []),
            {Peer, Node, OsPid}
        end,
        fun({Peer, _Node, OsPid}) ->
            % Whatever happened, the peer runs again before it is stopped.
            _ = os:cmd("kill -CONT " ++ OsPid),
            peer:stop(Peer)
        end,
        fun({_Peer, Node, OsPid}) ->
            [{timeout, 90, {"every operation answers on a stopped node", fun() -> stalled(Node, OsPid) end}}]
        end}.

stalled(Node, OsPid) ->
    NodeTimeout = hb_beamr_node:node_timeout(),
    ?assertEqual(3000, NodeTimeout),
    Kept = start_on(Node, "state.wasm"),
    Stopped = start_on(Node, "test.wasm"),
    {ok, [1]} = hb_beamr:call(Kept, "grow", [1]),
    {ok, []} = hb_beamr:call(Kept, "set_all", [7, 8, 9.0, 10.0]),
    Census0 = census(Node),
    ?assertMatch(#{instances := 2, starters := 0}, Census0),
    Bytes = bytes("test.wasm"),
    flush_mailbox(),
    stop_os(OsPid),
    Answers = [
        {start, 200, fun() -> hb_beamr:start(Bytes, mode(), #{node => Node, timeout => 200}) end},
        {call_with_timeout, 200, fun() -> hb_beamr:call(Kept, "sp", [], fun hb_beamr:stub/3, #{}, #{timeout => 200}) end},
        {call, NodeTimeout, fun() -> hb_beamr:call(Kept, "sp", []) end},
        {size, NodeTimeout, fun() -> hb_beamr_io:size(Kept) end},
        {write, NodeTimeout, fun() -> hb_beamr_io:write(Kept, 16, <<"late">>) end},
        {snapshot, NodeTimeout, fun() -> hb_beamr:snapshot(Kept) end},
        {migrate, NodeTimeout, fun() -> hb_beamr:migrate(Kept, node()) end},
        {start_no_timeout, NodeTimeout, fun() -> hb_beamr:start(Bytes, mode(), #{node => Node}) end},
        {stop, NodeTimeout, fun() -> hb_beamr:stop(Stopped) end}
    ],
    Timed = [{What, Bound, timed(Op)} || {What, Bound, Op} <- Answers],
    cont_os(OsPid),
    ?assertEqual([], [{What, Ms, Bound} || {What, Bound, {Ms, _}} <- Timed, Ms > Bound + ?MARGIN]),
    Results = [{What, Result} || {What, _, {_, Result}} <- Timed],
    ?assertMatch(
        [{start, {error, timeout}}, {call_with_timeout, {error, timeout}}, {call, {error, timeout}},
         {size, {error, timeout}}, {write, {error, timeout}}, {snapshot, {error, timeout}},
         {migrate, {error, timeout}}, {start_no_timeout, {error, timeout}}, {stop, ok}],
        Results),
    % The node runs again: the late replies are dropped, never here.
    timer:sleep(500),
    ?assertEqual({messages, []}, process_info(self(), messages)),
    % The kept instance is usable, the stopped one gone, and the starts given
    % up left nothing.
    ?assertEqual({ok, [7]}, hb_beamr:call(Kept, "sp", [])),
    ?assertEqual({ok, 2 * ?PAGE}, hb_beamr_io:size(Kept)),
    ?assertEqual({error, stopped}, hb_beamr:call(Stopped, "fac", [1.0])),
    Census = #{instances => 1, starters => 0, my_agents => 1},
    _ = wait_until(fun() -> census(Node) =:= Census end),
    ?assertEqual(Census, census(Node)),
    % It answers as before; its write may have landed after the stall.
    {ok, Snapshot} = hb_beamr:snapshot(Kept),
    ?assert(is_binary(Snapshot)),
    ok = hb_beamr:stop(Kept),
    ?assertEqual({messages, []}, process_info(self(), messages)).

%% Instances, starters and agents of this process on `Node'.
census(Node) ->
    erpc:call(Node, ?MODULE, peer_census, [self()]).

%% @private Run on the peer.
peer_census(Caller) ->
    Infos = [I || P <- processes(), I <- [process_info(P, [current_function, monitors, dictionary])],
                  I =/= undefined],
    Count = fun(Pred) -> length([I || I <- Infos, Pred(I)]) end,
    In = fun(I, M, Fs) ->
        {current_function, {M1, F, _}} = lists:keyfind(current_function, 1, I),
        {dictionary, Dict} = lists:keyfind(dictionary, 1, I),
        % A hibernating instance process names itself in '$initial_call'.
        {M2, F2} = case {M1, F} of
            {erlang, hibernate} ->
                case lists:keyfind('$initial_call', 1, Dict) of
                    {_, {Mi, Fi, _}} -> {Mi, Fi};
                    false -> {M1, F}
                end;
            _ -> {M1, F}
        end,
        M2 =:= M andalso lists:member(F2, Fs)
    end,
    #{
        instances => Count(fun(I) -> In(I, hb_beamr_start, [worker, starting]) end),
        starters => Count(fun(I) -> In(I, hb_beamr_node, [starting, confirming, give_up]) end),
        my_agents => Count(fun(I) ->
            In(I, hb_beamr_node, [agent_loop]) andalso
                lists:member({process, Caller}, element(2, lists:keyfind(monitors, 1, I)))
        end)
    }.

timed(Fun) ->
    T0 = erlang:monotonic_time(millisecond),
    Result = Fun(),
    {erlang:monotonic_time(millisecond) - T0, Result}.

stop_os(OsPid) -> [] = os:cmd("kill -STOP " ++ OsPid), ok.
cont_os(OsPid) -> [] = os:cmd("kill -CONT " ++ OsPid), ok.

flush_mailbox() ->
    receive _ -> flush_mailbox() after 0 -> ok end.
