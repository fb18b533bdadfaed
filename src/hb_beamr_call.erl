%%% @private
%%% @doc A call's life on the caller's side: the request, the wait for its
%%% reply (polling briefly before blocking), the imports it asks for, served
%%% by the import function with the state threaded through, nested calls,
%%% and timeouts, which run the call in a helper process so that a stuck
%%% import function cannot hold the caller past its deadline. Also the wait
%%% for a start, whose imports are served the same way.
-module(hb_beamr_call).

-export([call/5, await_start/4, with_timeout/3, is_valid_arg_list/1]).

-include("include/hb.hrl").

%% One call in progress, as its caller's loop sees it.
-record(call, {
    wasm :: hb_beamr:wasm(),
    id = 0 :: hb_beamr_node:request_id(),
    watch = local :: hb_beamr_node:watch(),
    args :: list(),
    % `zeros': the instance answers imports with zeros itself (call/3, a
    % start without import_fun), no fun runs.
    import_fun :: hb_beamr:import_fun() | zeros,
    opts :: map(),
    deadline = infinity :: integer() | infinity
}).

%% How long to wait for the acknowledgement of an aborted import.
-define(ABORT_ACK_TIMEOUT, 5000).
%% How long a caller polls for a reply before it blocks (see poll/2).
-define(POLL_US, 20).

%% @doc Calls `FuncRef' with `Args' (already checked), serving imports with
%% `{ImportFun, State, Opts}', within `Timeout' milliseconds (or
%% `infinity'). See {@link hb_beamr:call/6}.
%% `ImportFun' `zeros' has the instance answer every import with zeros
%% (call/3).
-spec call(hb_beamr:wasm(), hb_beamr:func_ref(), [hb_beamr:wasm_value()],
           {hb_beamr:import_fun() | zeros, term(), map()}, timeout()) -> term().
call(WASM, FuncRef, Args, {ImportFun, State, Opts}, Timeout) ->
    Call = #call{wasm = WASM, args = Args, import_fun = ImportFun, opts = Opts},
    case Timeout =:= infinity orelse serving_import(WASM) of
        true ->
            % Inline: no deadline, or a nested call from inside an import
            % function (which must come from the call's owner; the outer
            % call's deadline covers it).
            run_call(Call#call{deadline = deadline(Timeout)}, FuncRef, State, fun(_) -> ok end);
        false ->
            with_timeout(
                fun(Report) -> run_call(Call, FuncRef, State, Report) end,
                Timeout,
                fun(Id) -> hb_beamr_node:request(WASM, timeout, [Id]) end
            )
    end.

%% @doc Waits for start request `Id' of the local instance `WASM', serving
%% the imports instantiation calls with `ImportFun' from `State':
%% `{started, Imports, Exports, FinalState}' or an error.
-spec await_start(hb_beamr:wasm(), hb_beamr_node:request_id(), hb_beamr:import_fun() | zeros, term()) -> term().
await_start(WASM, Id, ImportFun, State) ->
    Call = #call{wasm = WASM, id = Id, args = [], import_fun = ImportFun, opts = #{}},
    await_call(Call, State).

%% @doc Runs `Fun' within `Timeout' milliseconds. With a timeout, `Fun' runs in a
%% linked helper process, so that the caller returns on time even while an
%% import function it called never returns: past the deadline the helper is
%% killed (the instance sees its caller die and unwinds the call), `OnTimeout'
%% gets what the helper reported (the call id, or the instance) and the
%% result is `{error, timeout}'.
-spec with_timeout(fun((fun((term()) -> ok)) -> Result), timeout(), fun((term()) -> term())) ->
    Result | {error, timeout}.
with_timeout(Fun, infinity, _OnTimeout) ->
    Fun(fun(_) -> ok end);
with_timeout(Fun, Timeout, OnTimeout) ->
    Caller = self(),
    Ref = make_ref(),
    Helper = spawn_link(fun() ->
        Report = fun(What) -> Caller ! {Ref, report, What}, ok end,
        Caller ! {Ref, done, Fun(Report)}
    end),
    receive
        {Ref, done, Result} ->
            unlink_flush(Helper),
            flush_reports(Ref, fun(_) -> ok end),
            Result
    after Timeout ->
        unlink_flush(Helper),
        MRef = erlang:monitor(process, Helper),
        exit(Helper, kill),
        receive {'DOWN', MRef, process, Helper, _} -> ok end,
        % Everything the helper sent before it died is here now.
        receive
            {Ref, done, Result} ->
                flush_reports(Ref, fun(_) -> ok end),
                Result
        after 0 ->
            flush_reports(Ref, OnTimeout),
            {error, timeout}
        end
    end.

unlink_flush(Pid) ->
    unlink(Pid),
    receive {'EXIT', Pid, _} -> ok after 0 -> ok end.

flush_reports(Ref, Fun) ->
    receive
        {Ref, report, What} ->
            _ = Fun(What),
            flush_reports(Ref, Fun)
    after 0 ->
        ok
    end.

run_call(Call = #call{wasm = WASM, args = Args, import_fun = ImportFun, opts = Opts}, FuncRef, State, Report) ->
    Stub = ImportFun =:= zeros,
    Id = case {maps:get(fuel, Opts, -1), maps:is_key(on_fuel_exhausted, Opts)} of
        {-1, false} ->
            hb_beamr_node:send(WASM, call, [FuncRef, Args, Stub], Call#call.deadline);
        {Budget, AskFuel} ->
            % A budget for this call, and who serves running out of fuel.
            hb_beamr_node:send(WASM, call_fuel, [FuncRef, Args, Stub, Budget, AskFuel],
                               Call#call.deadline)
    end,
    case hb_beamr_node:is_request_id(Id) of
        true ->
            Report(Id),
            await_call(Call#call{id = Id, watch = hb_beamr_node:watch(WASM)}, State);
        false ->
            refused(Id, Args)
    end.

refused(Error, Args) ->
    case Error of
        {error, invalid_args} ->
            {error, {invalid_args, Args}};
        {error, Reason} ->
            {error, Reason}
    end.

%% Whether this process is running an import function of `WASM' now.
serving_import(WASM) ->
    get({hb_beamr_serving, WASM}) =:= true.

await_call(Call = #call{id = Id}, State) ->
    case poll(Id, erlang:monotonic_time(microsecond) + ?POLL_US) of
        {hb_beamr, Id, Message} -> handle_reply(Call, State, Message);
        none -> await_reply(Call, State)
    end.

%% A short call answers within microseconds, sooner than a sleeping
%% scheduler wakes up for its reply: yield and look again for a bounded
%% time before blocking in `receive'.
poll(Id, Until) ->
    receive
        {hb_beamr, Id, _} = Reply -> Reply
    after 0 ->
        case erlang:monotonic_time(microsecond) < Until of
            true ->
                erlang:yield(),
                poll(Id, Until);
            false ->
                none
        end
    end.

%% What the instance said of the call: its result, an import to serve, or
%% why it failed.
handle_reply(Call = #call{args = Args}, State, Message) ->
    case Message of
        {execution_result, Results} ->
            {ok, Results, State};
        {execution_result, Imports, Exports} ->
            {started, Imports, Exports, State};
        {import, Module, Func, ImportArgs, Signature} ->
            serve_or_interrupt(Call, State, Module, Func, ImportArgs, Signature);
        {error, invalid_args} ->
            {error, {invalid_args, Args}};
        {error, Reason} ->
            {error, Reason}
    end.

%% A remote instance's node that stays silent ends the wait (see
%% hb_beamr_node:check/2).
await_reply(Call = #call{wasm = WASM, id = Id, watch = Watch}, State) ->
    receive
        {hb_beamr, Id, Message} -> handle_reply(Call, State, Message);
        {'DOWN', Watch, process, _, _} -> {error, {nodedown, node(WASM)}}
    after min(remaining(Call#call.deadline), hb_beamr_node:check_after(Watch)) ->
        case remaining(Call#call.deadline) =:= 0 of
            true ->
                interrupt(Call, State);
            false ->
                case hb_beamr_node:check(WASM, Watch) of
                    ok -> await_reply(Call, State);
                    {error, _} = Error -> Error
                end
        end
    end.

serve_or_interrupt(Call = #call{wasm = WASM, id = Id}, State, Module, Func, ImportArgs, Signature) ->
    case remaining(Call#call.deadline) of
        0 ->
            % Out of time (import functions used it up): no more imports.
            interrupt(Call, State);
        _ ->
            Request = #{
                instance => WASM,
                module => Module,
                func => Func,
                args => ImportArgs,
                func_sig => Signature
            },
            #call{import_fun = ImportFun, opts = Opts} = Call,
            try serving(WASM, fun() -> serve_import(WASM, Id, ImportFun, State, Request, Opts) end) of
                NewState ->
                    await_call(Call, NewState)
            catch
                Class:Reason:Stack ->
                    ?event({import_error, Class, Reason}),
                    _ = hb_beamr_node:request(WASM, abort_import, [Id]),
                    receive
                        {hb_beamr, Id, _Aborted} -> ok
                    after ?ABORT_ACK_TIMEOUT -> ok
                    end,
                    {error, Class, Reason, Stack, State}
            end
    end.

interrupt(Call = #call{wasm = WASM, id = Id}, State) ->
    _ = hb_beamr_node:request(WASM, timeout, [Id]),
    await_interrupted(Call, State).

%% After a timeout: the call is being stopped inside WebAssembly; its last
%% word is normally `{error, timeout}', or its result if it won the race.
await_interrupted(Call = #call{id = Id}, State) ->
    receive
        {hb_beamr, Id, {execution_result, Results}} -> {ok, Results, State};
        {hb_beamr, Id, {import, _, _, _, _}} -> await_interrupted(Call, State);
        {hb_beamr, Id, {error, Reason}} -> {error, Reason}
    after ?ABORT_ACK_TIMEOUT ->
        {error, timeout}
    end.

deadline(infinity) ->
    infinity;
deadline(Ms) ->
    erlang:monotonic_time(millisecond) + Ms.

remaining(infinity) ->
    infinity;
remaining(Deadline) ->
    max(0, Deadline - erlang:monotonic_time(millisecond)).

%% Runs `Fun' marked as serving an import of `WASM' (see serving_import/1).
serving(WASM, Fun) ->
    Key = {hb_beamr_serving, WASM},
    Previous = put(Key, true),
    try
        Fun()
    after
        case Previous of
            undefined -> erase(Key);
            _ -> put(Key, Previous)
        end
    end.

%% Runs the import function and hands its results to the instance. Raises
%% (like HyperBEAM) when the function does not answer `{ok, List, State}'
%% with a list of numbers.
serve_import(WASM, Id, _ImportFun, State,
             #{module := <<"hb_beamr">>, func := <<"out_of_fuel">>, args := [Needed],
               func_sig := <<"(I)">>}, #{on_fuel_exhausted := OnFuel} = Opts) ->
    % A metered call ran out of fuel: its owner gives more ([More]) or
    % stops it ([]); the instance then answers the call.
    {Response, NewState} =
        case OnFuel(State, #{instance => WASM, needed => Needed}, Opts) of
            {ok, More, S} when is_integer(More), More >= 0, More < 1 bsl 63 -> {[More], S};
            {stop, S} -> {[], S}
        end,
    answer(WASM, Id, Response, NewState);
serve_import(WASM, Id, zeros, State, _Request, _Opts) ->
    % The instance answers these itself; a request that still comes (an
    % instance of an older build) gets the same zero.
    answer(WASM, Id, [0], State);
serve_import(WASM, Id, ImportFun, State, Request, Opts) ->
    {ok, Response, NewState} = ImportFun(State, Request, Opts),
    case is_valid_arg_list(Response) of
        true -> ok;
        false -> throw({error, {invalid_response, Response}})
    end,
    answer(WASM, Id, Response, NewState).

answer(WASM, Id, Response, NewState) ->
    case hb_beamr_node:send(WASM, import_response, [Id, Response]) of
        % Stopped meanwhile: the call's own reply says so.
        {error, stopped} -> NewState;
        {error, Reason} -> throw({error, Reason});
        % `ok', or (remote) on its way.
        _Sent -> NewState
    end.

%% @doc Whether `Args' is a proper list of WebAssembly values.
-spec is_valid_arg_list(term()) -> boolean().
is_valid_arg_list([]) -> true;
is_valid_arg_list([Value | Rest]) -> is_wasm_value(Value) andalso is_valid_arg_list(Rest);
is_valid_arg_list(_) -> false.

is_wasm_value(V) when is_integer(V); is_float(V) -> true;
is_wasm_value(infinity) -> true;
is_wasm_value(neg_infinity) -> true;
is_wasm_value(nan) -> true;
is_wasm_value(_) -> false.
