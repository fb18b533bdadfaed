%%% @private
%%% @doc Where an instance lives: requests to an instance go through here,
%%% to the NIF when the instance is on this node, and through an agent
%%% process on the instance's node when it is not.
%%%
%%% An agent stands in for one calling process on one node: it makes the NIF
%%% requests there (so the instance sees it as the caller, the owner of the
%%% caller's calls), and relays every reply to the caller, request ids made
%%% unique across nodes. It watches its caller, and the caller watches it:
%%% a caller that dies (or whose node goes down) takes its agent with it,
%%% which the instance sees as a dead caller; an agent that dies (its node
%%% went down) ends the caller's wait with `{error, {nodedown, Node}}'.
%%%
%%% == A node that stops answering ==
%%% A node can be up and silent (stopped, swapped out, partitioned without
%%% the connection breaking): the distribution notices only after its tick
%%% (about a minute). No wait here lasts that long. A wait for a remote
%%% reply that hears nothing for half of the node timeout (application env
%%% `node_timeout', milliseconds, default 3000; {@link node_timeout/0})
%%% pings the agent; without an answer for the other half the wait ends with
%%% `{error, timeout}'. So a silent node is given up within the node timeout,
%%% while a slow operation on a node that answers (a call queued behind a
%%% long one, a large snapshot) waits as long as it would locally. Explicit
%%% timeouts (`start/3', `call/6') bound the wait on their own.
%%%
%%% Giving up leaves nothing behind in the caller: the agent's replies come
%%% to an alias of the caller's, which is deactivated (a late reply is
%%% dropped by the runtime, never a stray message), the agent is told to
%%% end (the instance sees a dead caller, as when the caller dies), and the
%%% next request makes a new one. A remote start runs in a starter process
%%% there that keeps the new instance only when the caller confirms it has
%%% taken it: a start given up stops the instance once its node answers
%%% again. Messages to a node are sent without suspending the caller (a
%%% full distribution buffer hands them to a sender process).
-module(hb_beamr_node).

-export([request/3, send/3, send/4, await/2, watch/1, check/2, check_after/1, is_request_id/1]).
-export([start/4, origin/1, node_timeout/0]).
%% Spawned on the instance's node: the agent, and a remote start.
-export([agent/2, starter/5]).

-export_type([request_id/0, watch/0]).

-type request_id() :: non_neg_integer() | {node(), non_neg_integer() | reference()}.
%% A request's id: the NIF's integer for a local instance, tagged with the
%% node for a remote one (a reference for requests sent without waiting).
-type watch() :: reference() | local.
%% What a caller waits on besides its reply (see {@link watch/1}).

%% How long a node may stay silent before a wait for it is given up.
-define(NODE_TIMEOUT, 3000).

%% @doc The node timeout, in milliseconds: application env `node_timeout'
%% of `hb_beamr' (a positive integer), default 3000. A remote node that
%% answers nothing (not even a ping) for this long ends a wait for it with
%% `{error, timeout}'; functions without a timeout of their own (`stop/1',
%% memory, snapshots, `migrate/2', ...) answer within it when the instance's
%% node stalls.
-spec node_timeout() -> pos_integer().
node_timeout() ->
    case application:get_env(hb_beamr, node_timeout) of
        {ok, Ms} when is_integer(Ms), Ms > 0 -> Ms;
        _ -> ?NODE_TIMEOUT
    end.

%% @doc Makes NIF request `Fun' with `[WASM | Args]' where `WASM' lives.
%% Returns what the NIF returns (a request id, `ok', or `{error, Reason}');
%% for a remote instance whose node cannot be reached,
%% `{error, {nodedown, Node}}', and whose node does not answer within the
%% node timeout, `{error, timeout}'. A remote `timeout' or `abort_import'
%% (the caller is giving up on a call) is sent without waiting: `ok'.
-spec request(pid(), atom(), list()) -> term().
request(WASM, Fun, Args) when node(WASM) =:= node() ->
    hb_beamr_nif:guarded(fun() -> apply(hb_beamr_nif, Fun, [WASM | Args]) end);
request(WASM, Fun, Args) when Fun =:= timeout; Fun =:= abort_import ->
    % Only through an agent this process already has: a call made by
    % another process of the caller's (the helper of a call with a timeout)
    % ends with it, and starting an agent here could wait on a silent node.
    case get({hb_beamr_agent, node(WASM)}) of
        {Agent, _MRef, _Alias} -> post(Agent, {hb_beamr_agent_cast, self(), Fun, [WASM | Args]});
        undefined -> ok
    end;
request(WASM, Fun, Args) ->
    Node = node(WASM),
    case agent_for(Node) of
        {ok, Agent, _MRef} ->
            % The reply comes to this alias, which its first reply (or the
            % give-up below) deactivates.
            Ref = erlang:monitor(process, Agent, [{alias, reply_demonitor}]),
            ok = post(Agent, {hb_beamr_agent, self(), Ref, Fun, [WASM | Args]}),
            receive
                {Ref, Result} ->
                    Result;
                {'DOWN', Ref, process, Agent, _} ->
                    nodedown(Node)
            after node_timeout() ->
                erlang:demonitor(Ref, [flush]),
                receive
                    {Ref, Result} -> Result
                after 0 ->
                    abandon(Node),
                    {error, timeout}
                end
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Like {@link request/3} for a request whose replies come as messages
%% (a call, an import answer), without waiting for the remote NIF's answer:
%% for a remote instance the id is made here, and a refusal arrives as the
%% request's reply, `{hb_beamr, Id, {error, Reason}}', so a remote call costs
%% one round trip. Local requests are {@link request/3}.
-spec send(pid(), atom(), list()) -> term().
send(WASM, Fun, Args) ->
    send(WASM, Fun, Args, infinity).

%% @doc {@link send/3} for a request with a deadline (a monotonic time in
%% milliseconds, or `infinity'): starting this process's agent on a silent
%% node waits no longer than it.
-spec send(pid(), atom(), list(), integer() | infinity) -> term().
send(WASM, call, [FuncRef, Args, Stub], _Deadline) when node(WASM) =:= node() ->
    % The hot path: a local call, straight to the NIF.
    try
        hb_beamr_nif:call(WASM, FuncRef, Args, Stub)
    catch
        error:nif_not_loaded -> {error, driver_load_failed}
    end;
send(WASM, Fun, Args, _Deadline) when node(WASM) =:= node() ->
    request(WASM, Fun, Args);
send(WASM, Fun, Args, Deadline) ->
    Node = node(WASM),
    case agent_for(Node, Deadline) of
        {ok, Agent, _MRef} ->
            Id = {Node, make_ref()},
            ok = post(Agent, {hb_beamr_agent_send, self(), Id, Fun, [WASM | Args]}),
            Id;
        {error, _} = Error ->
            Error
    end.

%% @doc What to watch while waiting for replies from `WASM': a monitor
%% reference that comes `DOWN' if the instance's node goes (its agent's),
%% or `local', which no `DOWN' message carries. A remote wait that hears
%% nothing for {@link check_after/1} calls {@link check/2}.
-spec watch(pid()) -> watch().
watch(WASM) when node(WASM) =:= node() ->
    local;
watch(WASM) ->
    case agent_for(node(WASM)) of
        {ok, _Agent, MRef} -> MRef;
        {error, _} -> make_ref()
    end.

%% @doc How long a wait on `Watch' may hear nothing before it calls
%% {@link check/2}: half the node timeout for a remote instance,
%% `infinity' for a local one.
-spec check_after(watch()) -> timeout().
check_after(local) -> infinity;
check_after(_Watch) -> max(1, node_timeout() div 2).

%% @doc Whether a remote wait on `Watch' for `WASM' should go on: `ok' if
%% the agent answers a ping within {@link check_after/1}; else the agent is
%% given up (see the module's doc) and the wait ends with the error
%% returned, `{error, timeout}' (or `{error, {nodedown, Node}}' once the
%% distribution knows). A wait whose agent was given up meanwhile (by a
%% nested request) ends at once.
-spec check(pid(), watch()) -> ok | {error, timeout | {nodedown, node()}}.
check(_WASM, local) ->
    ok;
check(WASM, Watch) ->
    Node = node(WASM),
    case get({hb_beamr_agent, Node}) of
        {Agent, Watch, _Alias} ->
            case ping(Agent, check_after(Watch)) of
                ok -> ok;
                timeout -> abandon(Node), {error, timeout};
                down -> nodedown(Node)
            end;
        _ ->
            case lists:member(Node, nodes()) of
                true -> {error, timeout};
                false -> {error, {nodedown, Node}}
            end
    end.

%% @doc Waits for the reply to a request the NIF accepted (`Id'), or passes
%% on its refusal: `ok' (a write, a restore), `{ok, Result}' or
%% `{error, Reason}'. A remote wait
%% ends with `{error, timeout}' once the node is silent for the node
%% timeout (see {@link check/2}).
-spec await(pid(), request_id() | {error, term()}) -> ok | {ok, term()} | {error, term()}.
await(WASM, Id) ->
    case is_request_id(Id) of
        true -> await(WASM, Id, watch(WASM));
        false -> Id
    end.

await(WASM, Id, Watch) ->
    receive
        {hb_beamr, Id, {execution_result, Result}} -> {ok, Result};
        {hb_beamr, Id, ok} -> ok;
        {hb_beamr, Id, {error, Reason}} -> {error, Reason};
        {'DOWN', Watch, process, _, _} -> nodedown(node(WASM))
    after check_after(Watch) ->
        case check(WASM, Watch) of
            ok -> await(WASM, Id, Watch);
            {error, _} = Error -> Error
        end
    end.

%% @doc Whether a NIF answer is a request id (local or remote).
-spec is_request_id(term()) -> boolean().
is_request_id(Id) when is_integer(Id) -> true;
is_request_id({Node, Id}) when is_atom(Node), is_integer(Id) -> true;
is_request_id({Node, Id}) when is_atom(Node), is_reference(Id) -> true;
is_request_id(_) -> false.

%% @doc What an instance was started from (see hb_beamr_start:origin/1),
%% asked of its process wherever it is: a remote one that does not answer
%% within the node timeout is `{error, timeout}'.
-spec origin(pid()) -> {ok, {binary(), hb_beamr:mode(), map()}} | {error, term()}.
origin(WASM) when node(WASM) =:= node() ->
    hb_beamr_start:origin(WASM);
origin(WASM) ->
    Ref = erlang:monitor(process, WASM, [{alias, reply_demonitor}]),
    ok = post(WASM, {hb_beamr_origin, Ref, Ref}),
    receive
        {Ref, Origin} ->
            {ok, Origin};
        {'DOWN', Ref, process, WASM, noconnection} ->
            {error, {nodedown, node(WASM)}};
        {'DOWN', Ref, process, WASM, _} ->
            {error, stopped}
    after node_timeout() ->
        erlang:demonitor(Ref, [flush]),
        receive
            {Ref, Origin} -> {ok, Origin}
        after 0 -> {error, timeout}
        end
    end.
%% The agent on `Node' is gone with its node: forgotten, and what it sent
%% before it went is dropped.
nodedown(Node) ->
    forget_agent(Node),
    {error, {nodedown, Node}}.

%% The arguments of proc_lib's entry point (what proc_lib:spawn/4 runs on
%% another node) for `Fun' of this module: agents and remote starters are
%% OTP processes there (crash reports, ancestors, initial call), spawned
%% with spawn_request/5, which does not wait for a silent node.
otp_args(Fun, Args) ->
    [self(), [self()], ?MODULE, Fun, Args].

%% This process's agent on `Node', started on first use. The spawn is
%% asynchronous (a remote spawn/4 would wait for a silent node's answer):
%% without an answer within the node timeout it is abandoned.
agent_for(Node) ->
    agent_for(Node, infinity).

agent_for(Node, Deadline) ->
    case get({hb_beamr_agent, Node}) of
        {Agent, MRef, _Alias} ->
            {ok, Agent, MRef};
        undefined ->
            Alias = erlang:alias(),
            % The spawn's monitor reference is its request id.
            ReqId = erlang:spawn_request(Node, proc_lib, init_p, otp_args(agent, [self(), Alias]), [monitor]),
            receive
                {spawn_reply, ReqId, ok, Agent} ->
                    new_agent(Node, Agent, ReqId, Alias);
                {spawn_reply, ReqId, error, _} ->
                    erlang:unalias(Alias),
                    {error, {nodedown, Node}}
            after min(remaining(Deadline), node_timeout()) ->
                case erlang:spawn_request_abandon(ReqId) of
                    true ->
                        % An agent spawned later gets an exit signal.
                        erlang:unalias(Alias),
                        {error, timeout};
                    false ->
                        receive
                            {spawn_reply, ReqId, ok, Agent} ->
                                new_agent(Node, Agent, ReqId, Alias);
                            {spawn_reply, ReqId, error, _} ->
                                erlang:unalias(Alias),
                                {error, {nodedown, Node}}
                        end
                end
            end
    end.

%% The agent waits for this `go' (see agent/2).
new_agent(Node, Agent, MRef, Alias) ->
    ok = post(Agent, {hb_beamr_agent_go, self()}),
    put({hb_beamr_agent, Node}, {Agent, MRef, Alias}),
    {ok, Agent, MRef}.

%% Forgets a dead agent: no `DOWN', no reply of its left.
forget_agent(Node) ->
    case erase({hb_beamr_agent, Node}) of
        {_Agent, MRef, Alias} ->
            erlang:demonitor(MRef, [flush]),
            erlang:unalias(Alias),
            flush_replies(Node);
        undefined ->
            ok
    end.

%% Gives up an agent whose node is silent: forgotten (its alias
%% deactivated, so nothing it sends later arrives), and told to end, which
%% it does when its node answers again (the instance then sees a dead
%% caller: a call of the caller's still running unwinds).
abandon(Node) ->
    case get({hb_beamr_agent, Node}) of
        {Agent, _MRef, _Alias} ->
            forget_agent(Node),
            post(Agent, {hb_beamr_agent_quit, self()});
        undefined ->
            ok
    end.

%% Replies from `Node' that arrived before its agent was forgotten.
flush_replies(Node) ->
    receive
        {hb_beamr, {Node, _}, _} -> flush_replies(Node)
    after 0 ->
        ok
    end.

%% Pings `Pid' (an agent or a starter): `ok' if it answers within
%% `Timeout', `down' if it is gone, else `timeout'. A late answer is
%% dropped (reply alias).
ping(Pid, Timeout) ->
    Ref = erlang:monitor(process, Pid, [{alias, reply_demonitor}]),
    ok = post(Pid, {hb_beamr_ping, Ref}),
    receive
        {Ref, pong} ->
            ok;
        {'DOWN', Ref, process, Pid, _} ->
            down
    after Timeout ->
        erlang:demonitor(Ref, [flush]),
        receive
            {Ref, pong} -> ok
        after 0 -> timeout
        end
    end.

%% Sends without suspending the caller: when the connection's buffer is
%% full (a silent node does not read), a sender process waits instead.
post(Dest, Message) ->
    case erlang:send(Dest, Message, [nosuspend]) of
        ok ->
            ok;
        _Busy ->
            % Unlinked: it outlives a caller that gives up (proc_lib: a
            % crash would be logged).
            _ = proc_lib:spawn(fun() -> Dest ! Message end),
            ok
    end.

%% @doc Starts an instance on `Node' for the calling process (see
%% hb_beamr:start/3's `node' option; `Opts' without it). The module's bytes
%% travel once, to a starter process there ({@link starter/5}), which runs
%% the start and keeps the instance only once this process has taken it.
%% `Opts''s `timeout' bounds the whole wait here (the transfer and any AOT
%% preparation there included), and a node silent for the node timeout ends
%% it: `{error, timeout}'. An instance started too late is stopped there.
-spec start(node(), binary(), hb_beamr:mode(), map()) -> term().
start(Node, WasmBinary, Mode, Opts) ->
    Deadline = deadline(maps:get(timeout, Opts, infinity)),
    Alias = erlang:alias(),
    ReqId = erlang:spawn_request(Node, proc_lib, init_p,
                                  otp_args(starter, [self(), Alias, WasmBinary, Mode, Opts]), [monitor]),
    Result =
        receive
            {spawn_reply, ReqId, ok, Starter} ->
                ok = post(Starter, {Alias, go}),
                await_started(Node, Starter, ReqId, Alias, Deadline);
            {spawn_reply, ReqId, error, _} ->
                {error, {nodedown, Node}}
        after min(remaining(Deadline), node_timeout()) ->
            case erlang:spawn_request_abandon(ReqId) of
                true ->
                    {error, timeout};
                false ->
                    receive
                        {spawn_reply, ReqId, ok, Starter} -> give_up_start(Starter, ReqId, Alias);
                        {spawn_reply, ReqId, error, _} -> {error, {nodedown, Node}}
                    end
            end
        end,
    erlang:unalias(Alias),
    % An answer that came as the wait ended (its start stopped there).
    receive {Alias, _} -> ok after 0 -> ok end,
    Result.

await_started(Node, Starter, ReqId, Alias, Deadline) ->
    Check = check_after(ReqId),
    receive
        {Alias, Result} when element(1, Result) =:= ok ->
            erlang:demonitor(ReqId, [flush]),
            ok = post(Starter, {Alias, confirm}),
            Result;
        {Alias, Result} ->
            erlang:demonitor(ReqId, [flush]),
            Result;
        {'DOWN', ReqId, process, Starter, noconnection} ->
            {error, {nodedown, Node}};
        {'DOWN', ReqId, process, Starter, {undef, [{?MODULE, starter, _, _} | _]}} ->
            {error, {hb_beamr_not_loaded, Node}};
        {'DOWN', ReqId, process, Starter, Reason} ->
            {error, {start_failed, Reason}}
    after min(remaining(Deadline), Check) ->
        case remaining(Deadline) of
            0 ->
                give_up_start(Starter, ReqId, Alias);
            _ ->
                case ping(Starter, Check) of
                    timeout -> give_up_start(Starter, ReqId, Alias);
                    % ok, or gone (its `DOWN' is next).
                    _ -> await_started(Node, Starter, ReqId, Alias, Deadline)
                end
        end
    end.

give_up_start(Starter, ReqId, Alias) ->
    erlang:demonitor(ReqId, [flush]),
    ok = post(Starter, {Alias, cancel}),
    {error, timeout}.

%% @private A remote start, on the instance's node, for `Caller' (whose
%% answers come to `Alias'): once told to go, runs the start in a process of its own (so
%% that it answers pings meanwhile) as the instance's watcher, sends the
%% result, and keeps a started instance only once the caller confirms;
%% a cancel, or the caller's exit or node going down, stops it.
-spec starter(pid(), reference(), binary(), hb_beamr:mode(), map()) -> ok.
starter(Caller, Alias, WasmBinary, Mode, Opts) ->
    % Exit signals (none is expected) give the start up in order.
    process_flag(trap_exit, true),
    CRef = erlang:monitor(process, Caller),
    % Nothing starts before the caller, told of this process, says `go': a
    % spawn it abandoned is never told, and ends here within the node
    % timeout.
    receive
        {Alias, go} ->
            Self = self(),
            {Runner, RRef} = spawn_monitor(fun() ->
                Self ! {self(), hb_beamr_start:start_for(WasmBinary, Mode, Opts, Self)}
            end),
            starting(Caller, CRef, Alias, Runner, RRef);
        {Alias, cancel} ->
            ok;
        {'DOWN', CRef, process, Caller, _} ->
            ok
    after node_timeout() ->
        ok
    end.

starting(Caller, CRef, Alias, Runner, RRef) ->
    receive
        {hb_beamr_ping, Ref} ->
            Ref ! {Ref, pong},
            starting(Caller, CRef, Alias, Runner, RRef);
        {Runner, Result} ->
            erlang:demonitor(RRef, [flush]),
            Alias ! {Alias, Result},
            case started(Result) of
                {ok, WASM} -> confirming(Caller, CRef, Alias, WASM);
                none -> ok
            end;
        {'DOWN', RRef, process, Runner, Reason} ->
            Alias ! {Alias, {error, {start_failed, Reason}}},
            ok;
        {Alias, cancel} ->
            give_up(Runner, RRef);
        {'DOWN', CRef, process, Caller, _} ->
            give_up(Runner, RRef);
        {'EXIT', _, _} ->
            give_up(Runner, RRef)
    end.

%% The start is given up: the runner is ended, and an instance it started
%% meanwhile is stopped; one still starting stops when this process ends
%% (it is the instance's watcher).
give_up(Runner, RRef) ->
    exit(Runner, kill),
    receive {'DOWN', RRef, process, Runner, _} -> ok end,
    receive
        {Runner, Result} ->
            case started(Result) of
                {ok, WASM} -> hb_beamr_start:stop(WASM);
                none -> ok
            end
    after 0 ->
        ok
    end.

confirming(Caller, CRef, Alias, WASM) ->
    receive
        {hb_beamr_ping, Ref} ->
            Ref ! {Ref, pong},
            confirming(Caller, CRef, Alias, WASM);
        {Alias, confirm} ->
            ok;
        {Alias, cancel} ->
            hb_beamr_start:stop(WASM);
        {'DOWN', CRef, process, Caller, _} ->
            hb_beamr_start:stop(WASM);
        {'EXIT', _, _} ->
            hb_beamr_start:stop(WASM)
    end.

started(Result) when is_tuple(Result), tuple_size(Result) >= 4, element(1, Result) =:= ok ->
    {ok, element(2, Result)};
started(_) ->
    none.

deadline(infinity) -> infinity;
deadline(Ms) -> erlang:monotonic_time(millisecond) + Ms.

remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

%% @doc The agent of `Caller' on this node: makes its NIF requests and
%% relays every other message (the instance's replies) to the caller's
%% `Alias'. Ends with its caller, or when the caller gives it up; it starts
%% once its caller says `go' (on the spawn's answer), and ends without it
%% within the node timeout (a spawn the caller abandoned).
-spec agent(pid(), reference()) -> ok.
agent(Caller, Alias) ->
    Ref = erlang:monitor(process, Caller),
    % A spawn its caller gave up on (abandoned) is never told to go.
    receive
        {hb_beamr_agent_go, Caller} -> agent_loop(Caller, Alias, Ref, #{});
        {'DOWN', Ref, process, Caller, _} -> ok
    after node_timeout() ->
        ok
    end.

%% `Ids' maps the NIF's ids of requests sent without waiting to the ids
%% their caller made for them.
agent_loop(Caller, Alias, Ref, Ids) ->
    receive
        {hb_beamr_agent, Caller, ReqRef, Fun, Args} ->
            ReqRef ! {ReqRef, remote_id(nif(Fun, Args, Ids), Ids)},
            agent_loop(Caller, Alias, Ref, Ids);
        {hb_beamr_agent_send, Caller, CallerId, Fun, Args} ->
            case nif(Fun, Args, Ids) of
                Id when is_integer(Id) ->
                    agent_loop(Caller, Alias, Ref, Ids#{Id => CallerId, CallerId => Id});
                ok ->
                    agent_loop(Caller, Alias, Ref, Ids);
                % An answer refused (the call stopped meanwhile): the call's
                % own reply says so.
                _Refused when Fun =:= import_response ->
                    agent_loop(Caller, Alias, Ref, Ids);
                Refused ->
                    Alias ! {hb_beamr, CallerId, Refused},
                    agent_loop(Caller, Alias, Ref, Ids)
            end;
        {hb_beamr_agent_cast, Caller, Fun, Args} ->
            _ = nif(Fun, Args, Ids),
            agent_loop(Caller, Alias, Ref, Ids);
        {hb_beamr_ping, PingRef} ->
            PingRef ! {PingRef, pong},
            agent_loop(Caller, Alias, Ref, Ids);
        {hb_beamr_agent_quit, Caller} ->
            ok;
        {'DOWN', Ref, process, Caller, _} ->
            ok;
        {hb_beamr, Id, Message} ->
            Alias ! {hb_beamr, remote_id(Id, Ids), Message},
            agent_loop(Caller, Alias, Ref, forget(Id, Message, Ids));
        Other ->
            % Replies of the raw protocol, untagged.
            Alias ! Other,
            agent_loop(Caller, Alias, Ref, Ids)
    end.

%% Runs a NIF request for the caller: ids it names are the NIF's again; a
%% raise (a term the NIF cannot take) is an error, not the agent's end.
nif(Fun, Args, Ids) ->
    try
        hb_beamr_nif:guarded(fun() -> apply(hb_beamr_nif, Fun, [local_id(A, Ids) || A <- Args]) end)
    catch
        error:_ -> {error, badarg}
    end.

%% A request's last message ends its mapping (an import request does not).
forget(_Id, {import, _, _, _, _}, Ids) -> Ids;
forget(Id, _Last, Ids) ->
    case maps:take(Id, Ids) of
        {CallerId, Rest} -> maps:remove(CallerId, Rest);
        error -> Ids
    end.

remote_id(Id, Ids) when is_integer(Id) -> maps:get(Id, Ids, {node(), Id});
remote_id(Other, _Ids) -> Other.

local_id({Node, Id}, _Ids) when Node =:= node(), is_integer(Id) -> Id;
local_id({Node, Ref} = CallerId, Ids) when Node =:= node(), is_reference(Ref) ->
    maps:get(CallerId, Ids, CallerId);
local_id(Other, _Ids) -> Other.
