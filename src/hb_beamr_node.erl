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
-module(hb_beamr_node).

-export([request/3, send/3, await/2, watch/1, is_request_id/1]).
%% The agent, spawned on the instance's node.
-export([agent/1]).

-export_type([request_id/0, watch/0]).

-type request_id() :: non_neg_integer() | {node(), non_neg_integer() | reference()}.
%% A request's id: the NIF's integer for a local instance, tagged with the
%% node for a remote one (a reference for requests sent without waiting).
-type watch() :: reference() | local.
%% What a caller waits on besides its reply (see {@link watch/1}).

%% @doc Makes NIF request `Fun' with `[WASM | Args]' where `WASM' lives.
%% Returns what the NIF returns (a request id, `ok', or `{error, Reason}');
%% for a remote instance whose node cannot be reached,
%% `{error, {nodedown, Node}}'.
-spec request(pid(), atom(), list()) -> term().
request(WASM, Fun, Args) when node(WASM) =:= node() ->
    hb_beamr_nif:guarded(fun() -> apply(hb_beamr_nif, Fun, [WASM | Args]) end);
request(WASM, Fun, Args) ->
    Node = node(WASM),
    case agent_for(Node) of
        {ok, Agent, MRef} ->
            Ref = make_ref(),
            Agent ! {hb_beamr_agent, self(), Ref, Fun, [WASM | Args]},
            receive
                {Ref, Result} ->
                    Result;
                {'DOWN', MRef, process, Agent, _} ->
                    forget_agent(Node),
                    {error, {nodedown, Node}}
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
send(WASM, call, [FuncRef, Args, Stub]) when node(WASM) =:= node() ->
    % The hot path: a local call, straight to the NIF.
    try
        hb_beamr_nif:call(WASM, FuncRef, Args, Stub)
    catch
        error:nif_not_loaded -> {error, driver_load_failed}
    end;
send(WASM, Fun, Args) when node(WASM) =:= node() ->
    request(WASM, Fun, Args);
send(WASM, Fun, Args) ->
    Node = node(WASM),
    case agent_for(Node) of
        {ok, Agent, _MRef} ->
            Id = {Node, make_ref()},
            Agent ! {hb_beamr_agent_send, self(), Id, Fun, [WASM | Args]},
            Id;
        {error, _} = Error ->
            Error
    end.

%% @doc What to watch while waiting for replies from `WASM': a monitor
%% reference that comes `DOWN' if the instance's node goes (its agent's),
%% or `local', which no `DOWN' message carries.
-spec watch(pid()) -> watch().
watch(WASM) when node(WASM) =:= node() ->
    local;
watch(WASM) ->
    case agent_for(node(WASM)) of
        {ok, _Agent, MRef} -> MRef;
        {error, _} -> make_ref()
    end.

%% @doc Waits for the reply to a request the NIF accepted (`Id'), or passes
%% on its refusal. `{ok, written}' stands for a write's `ok'.
-spec await(pid(), request_id() | {error, term()}) -> {ok, term()} | {error, term()}.
await(WASM, Id) ->
    case is_request_id(Id) of
        true ->
            Watch = watch(WASM),
            receive
                {hb_beamr, Id, {execution_result, Result}} -> {ok, Result};
                {hb_beamr, Id, ok} -> {ok, written};
                {hb_beamr, Id, {error, Reason}} -> {error, Reason};
                {'DOWN', Watch, process, _, _} -> nodedown(WASM)
            end;
        false ->
            Id
    end.

%% @doc Whether a NIF answer is a request id (local or remote).
-spec is_request_id(term()) -> boolean().
is_request_id(Id) when is_integer(Id) -> true;
is_request_id({Node, Id}) when is_atom(Node), is_integer(Id) -> true;
is_request_id({Node, Id}) when is_atom(Node), is_reference(Id) -> true;
is_request_id(_) -> false.

nodedown(WASM) ->
    forget_agent(node(WASM)),
    {error, {nodedown, node(WASM)}}.

%% This process's agent on `Node', started on first use.
agent_for(Node) ->
    case get({hb_beamr_agent, Node}) of
        {Agent, MRef} ->
            {ok, Agent, MRef};
        undefined ->
            case net_kernel:connect_node(Node) of
                true ->
                    Agent = spawn(Node, ?MODULE, agent, [self()]),
                    MRef = erlang:monitor(process, Agent),
                    put({hb_beamr_agent, Node}, {Agent, MRef}),
                    {ok, Agent, MRef};
                _ ->
                    {error, {nodedown, Node}}
            end
    end.

forget_agent(Node) ->
    case erase({hb_beamr_agent, Node}) of
        {_Agent, MRef} -> erlang:demonitor(MRef, [flush]);
        undefined -> ok
    end.

%% @doc The agent of `Caller' on this node: makes its NIF requests and
%% relays every other message (the instance's replies) to it. Ends with its
%% caller.
-spec agent(pid()) -> ok.
agent(Caller) ->
    Ref = erlang:monitor(process, Caller),
    agent_loop(Caller, Ref, #{}).

%% `Ids' maps the NIF's ids of requests sent without waiting to the ids
%% their caller made for them.
agent_loop(Caller, Ref, Ids) ->
    receive
        {hb_beamr_agent, Caller, ReqRef, Fun, Args} ->
            Caller ! {ReqRef, remote_id(nif(Fun, Args, Ids), Ids)},
            agent_loop(Caller, Ref, Ids);
        {hb_beamr_agent_send, Caller, CallerId, Fun, Args} ->
            case nif(Fun, Args, Ids) of
                Id when is_integer(Id) ->
                    agent_loop(Caller, Ref, Ids#{Id => CallerId, CallerId => Id});
                ok ->
                    agent_loop(Caller, Ref, Ids);
                % An answer refused (the call stopped meanwhile): the call's
                % own reply says so.
                _Refused when Fun =:= import_response ->
                    agent_loop(Caller, Ref, Ids);
                Refused ->
                    Caller ! {hb_beamr, CallerId, Refused},
                    agent_loop(Caller, Ref, Ids)
            end;
        {'DOWN', Ref, process, Caller, _} ->
            ok;
        {hb_beamr, Id, Message} ->
            Caller ! {hb_beamr, remote_id(Id, Ids), Message},
            agent_loop(Caller, Ref, forget(Id, Message, Ids));
        Other ->
            % Replies of the raw protocol, untagged.
            Caller ! Other,
            agent_loop(Caller, Ref, Ids)
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
