%%% @doc Drives an AO process module (emscripten-compiled Lua, such as
%%% HyperBEAM's `test/aos-2-pure-xs.wasm') the way HyperBEAM's JSON interface
%%% does: the message and environment are JSON strings written into memory
%%% (through the module's `malloc'), `handle(MsgPtr, EnvPtr)' returns a
%%% pointer to the JSON result. Used by `make bench' (AO rows) and by hand:
%%%
%%%   HB_BEAMR_AOS_WASM=/path/to/aos-2-pure-xs.wasm \
%%%     ERL_LIBS=_build/default/lib escript erlang/hb_beamr_aos.erl
%%%
%%% runs a corpus of Lua programs on the module in `wasm' mode and, compiled
%%% with hb_beamr:compile/1, in `aot' mode, and checks that every output is
%%% byte-identical; then times the Lua loop in both modes. The module is read
%%% from the path given at run time: no third-party code is kept here.
-module(hb_beamr_aos).
-mode(compile).
-export([main/1, start/2, start/3, eval/2, eval/3, handle/4, corpus/0, compare/1]).

-define(OWNER, <<"OWNER_ADDRESS_0000000000000000000000000000">>).
-define(PROCESS, <<"PROCESS_ID_00000000000000000000000000000000">>).
-define(LOOP, <<"local t = 0; for i = 1, 1000000 do t = t + i end; return t">>).

%% @doc Compares the modes on the corpus, then times the loop.
-spec main([string()]) -> ok.
main(_) ->
    Path = case os:getenv("HB_BEAMR_AOS_WASM") of
        false -> halt_with("set HB_BEAMR_AOS_WASM to the module's path");
        P -> P
    end,
    {ok, Wasm} = file:read_file(Path),
    {CompileUs, {ok, Aot}} = timer:tc(fun() -> hb_beamr:compile(Wasm) end),
    io:format("compile: ~.1f s (~w -> ~w bytes)~n", [CompileUs / 1.0e6, byte_size(Wasm), byte_size(Aot)]),
    _ = case compare(Wasm, Aot) of
        [] -> io:format("corpus: ~w programs, every output byte-identical~n", [length(corpus())]);
        Diffs -> [io:format("DIFFERENT: ~s~n  wasm: ~s~n  aot:  ~s~n", [C, W, A]) || {C, W, A} <- Diffs]
    end,
    _ = [begin
         {FirstUs, {ok, W}} = timer:tc(fun() -> start(Bin, Mode) end),
         {EvalUs, _} = timer:tc(fun() -> eval(W, <<"return 1">>) end),
         {LoopUs, Out} = timer:tc(fun() -> eval(W, ?LOOP) end),
         io:format("~s: start ~.1f ms, first message ~.1f ms, loop ~.1f ms (~s)~n",
                   [Mode, FirstUs / 1000, EvalUs / 1000, LoopUs / 1000, data(Out)]),
         hb_beamr:stop(W)
     end || {Mode, Bin} <- [{wasm, Wasm}, {aot, Aot}]],
    ok.

-spec halt_with(string()) -> no_return().
halt_with(Text) ->
    io:format(standard_error, "hb_beamr_aos: ~s~n", [Text]),
    halt(1).

%% @doc The programs compared: each runs, in order, on one process (state
%% carries across messages).
-spec corpus() -> [binary()].
corpus() ->
    [
        <<"return 1 + 1">>,
        <<"return 2^53 + 0.5, 7 // 2, 7 % 3, -7 // 2, math.huge, -0.0">>,
        <<"return string.format('%5.2f|%d|%s|%q', 3.14159, 42, 'x', 'a\\nb')">>,
        <<"return ('hello'):rep(3, '-'):upper():sub(2, 9)">>,
        <<"return string.gsub('one two three', '(%w+)', '<%1>')">>,
        <<"local t = {} for i = 1, 100 do t[i] = i * i end return #t, t[50], table.concat(t, ',', 1, 5)">>,
        <<"local t = {c = 3, a = 1, b = 2} local k = {} for key in pairs(t) do k[#k + 1] = key end table.sort(k) return table.concat(k)">>,
        <<"Counter = (Counter or 0) + 1 return Counter">>,
        <<"Counter = Counter + 1 return Counter">>,
        <<"return pcall(error, 'plain')">>,
        <<"return pcall(error, {code = 42})">>,
        <<"local ok, e = pcall(error, {code = 42}) return ok, e.code">>,
        <<"local ok, e = pcall(function() local x = nil; return x.y end) return ok, e">>,
        <<"return pcall(function() return pcall(error, 'inner') end)">>,
        <<"return pcall(function() local ok, e = pcall(error, 'inner') error('outer:' .. e, 0) end)">>,
        <<"local function f(n) if n == 0 then error('bottom', 0) end return f(n - 1) end return pcall(f, 100)">>,
        <<"return select('#', pcall(error))">>,
        <<"return xpcall(function() error('x') end, function(m) return 'handled: ' .. m end)">>,
        <<"local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) local ok, e = pcall(function() coroutine.yield(b * 2) error('in co') end) return ok, e end)
           local r = {} for _, v in ipairs({1, 10, 0, 0}) do r[#r + 1] = tostring(select(2, coroutine.resume(co, v))) end return table.concat(r, ' '), coroutine.status(co)">>,
        <<"local co = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end error('done') end) return co(), co(), co(), pcall(co)">>,
        <<"local co = coroutine.create(function() pcall(coroutine.yield, 'from pcall') return 'end' end) return coroutine.resume(co), coroutine.resume(co)">>,
        <<"error('uncaught error')">>,
        <<"error({message = 'table error'})">>,
        <<"local x = nil; return x.field">>,
        <<"return Counter">>,
        <<"return (function() local s = 0 for i = 1, 10000 do s = s + i % 7 end return s end)()">>,
        <<"print('printed') return 'after print'">>,
        <<"return load('return 6 * 7')()">>,
        <<"return load('syntax error here')">>,
        <<"Send({Target = 'someone', Data = 'hi', Action = 'Ping'}) return 'sent'">>,
        <<"return require('json').encode({a = {1, 2, 3}})">>,
        <<"return #Inbox">>
    ].

%% @doc The outputs that differ between `wasm' (bytecode) and `aot' (the
%% compiled module), for `{Program, WasmOut, AotOut}'.
-spec compare(binary()) -> [{binary(), binary(), binary()}].
compare(Wasm) ->
    {ok, Aot} = hb_beamr:compile(Wasm),
    compare(Wasm, Aot).

compare(Wasm, Aot) ->
    {ok, W} = start(Wasm, wasm),
    {ok, A} = start(Aot, aot),
    Diffs = [{Code, OutW, OutA} || Code <- corpus(),
              {OutW, OutA} <- [{eval(W, Code), eval(A, Code)}], OutW =/= OutA],
    ok = hb_beamr:stop(W),
    ok = hb_beamr:stop(A),
    Diffs.

%% @doc Starts an AO process (`Bin' is bytecode for `wasm', an AOT file for
%% `aot').
%% @equiv start(Bin, Mode, #{})
-spec start(binary(), hb_beamr:mode()) -> {ok, pid()} | {error, term()}.
start(Bin, Mode) ->
    start(Bin, Mode, #{}).

%% @doc Starts an AO process with hb_beamr:start/3's options: `fuel' (a
%% metered process; bytecode given as `aot' is compiled metered by the
%% compile cache), `snapshot' (a fork of a snapshot, chain or image), limits.
%% Bytecode given as `aot' is compiled through the compile cache.
-spec start(binary(), hb_beamr:mode(), hb_beamr:start_opts()) -> {ok, pid()} | {error, term()}.
start(Bin, Mode, Opts) ->
    case hb_beamr:start(Bin, Mode, Opts) of
        {ok, W, _Imports, _Exports} -> {ok, W};
        {ok, W, _Imports, _Exports, _State} -> {ok, W};
        {error, _} = Error -> Error;
        Other -> {error, Other}
    end.

%% @doc Sends an `Eval' message with Lua `Code'; returns the JSON result
%% (or `<<"error: ...">>' when the call fails).
%% @equiv eval(W, Code, #{})
-spec eval(pid(), binary()) -> binary().
eval(W, Code) ->
    eval(W, Code, #{}).

%% @doc {@link eval/2} with hb_beamr:call/6's options for the `handle' call
%% (`timeout', `fuel', `on_fuel_exhausted' with no state of its own).
-spec eval(pid(), binary(), map()) -> binary().
eval(W, Code, Opts) ->
    case handle(W, Code, none, Opts) of
        {ok, Out, _} -> Out;
        {error, Reason} -> iolist_to_binary(io_lib:format("error: ~p", [Reason]));
        Other -> iolist_to_binary(io_lib:format("error: ~p", [Other]))
    end.

%% @doc Sends an `Eval' message with Lua `Code': the message and environment
%% written through the module's `malloc', then `handle(MsgPtr, EnvPtr)' with
%% `Opts' (hb_beamr:call/6's) and `State' threaded through the imports and
%% `on_fuel_exhausted'. `{ok, JsonResult, FinalState}', or the call's error.
-spec handle(pid(), binary(), term(), map()) ->
    {ok, binary(), term()} | {error, term()} | {error, atom(), term(), list(), term()}.
handle(W, Code, State, Opts) ->
    {ok, MsgPtr} = hb_beamr_io:write_string(W, message(Code)),
    {ok, EnvPtr} = hb_beamr_io:write_string(W, env()),
    case hb_beamr:call(W, "handle", [MsgPtr, EnvPtr], fun import/3, State, Opts) of
        {ok, [Ptr], Final} ->
            {ok, Out} = hb_beamr_io:read_string(W, Ptr),
            {ok, Out, Final};
        Error ->
            Error
    end.

%% Imports answered as HyperBEAM's stubs do: zeros (clock, files, exit).
import(State, #{func_sig := Sig}, _Opts) ->
    {ok, [0 || _ <- results(Sig)], State}.

results(Sig) ->
    [_, Results] = binary:split(Sig, <<")">>),
    binary_to_list(Results).

message(Code) ->
    json(#{
        <<"Id">> => <<"MESSAGE_ID_0000000000000000000000000000000000">>,
        <<"Owner">> => ?OWNER,
        <<"From">> => ?OWNER,
        <<"Target">> => ?PROCESS,
        <<"Anchor">> => <<>>,
        <<"Signature">> => <<>>,
        <<"Block-Height">> => <<"1">>,
        <<"Timestamp">> => <<"1700000000000">>,
        <<"Module">> => <<"MODULE_ID">>,
        <<"Tags">> => [#{<<"name">> => <<"Action">>, <<"value">> => <<"Eval">>}],
        <<"Data">> => Code
    }).

env() ->
    json(#{
        <<"Process">> => #{
            <<"Id">> => ?PROCESS,
            <<"Owner">> => ?OWNER,
            <<"Tags">> => [#{<<"name">> => <<"Name">>, <<"value">> => <<"aos">>}]
        },
        <<"Module">> => #{<<"Id">> => <<"MODULE_ID">>, <<"Tags">> => []}
    }).

%% A minimal JSON encoder (OTP 25 has none): maps, lists, binaries.
json(Map) when is_map(Map) ->
    Fields = [[json(K), $:, json(V)] || {K, V} <- lists:sort(maps:to_list(Map))],
    iolist_to_binary([${, lists:join($,, Fields), $}]);
json(List) when is_list(List) ->
    iolist_to_binary([$[, lists:join($,, [json(E) || E <- List]), $]]);
json(Bin) when is_binary(Bin) ->
    iolist_to_binary([$", [escape(C) || <<C>> <= Bin], $"]).

escape($") -> <<"\\\"">>;
escape($\\) -> <<"\\\\">>;
escape($\n) -> <<"\\n">>;
escape($\r) -> <<"\\r">>;
escape($\t) -> <<"\\t">>;
escape(C) when C < 16#20 -> io_lib:format("\\u~4.16.0b", [C]);
escape(C) -> C.

data(Out) ->
    case binary:match(Out, <<"\"data\":">>) of
        {At, Len} -> binary:part(Out, At + Len, min(40, byte_size(Out) - At - Len));
        nomatch -> binary:part(Out, 0, min(80, byte_size(Out)))
    end.
