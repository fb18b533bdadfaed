%%% @doc An AO process end to end (issue 23): evaluate, a full snapshot,
%%% evaluate, a delta on it, forks (of the chain, of its image, of the live
%%% process with fork/1, and in the other mode), the same message evaluated
%%% in each fork and in the parent with the same answer and the same state,
%%% the parent untouched by its forks, the chain restored into fresh
%%% instances of both modes, and a second delta on the first.
%%%
%%% Twice: on HyperBEAM's AO module (`aos-2-pure-xs.wasm', emscripten-compiled
%%% Lua, driven by erlang/hb_beamr_aos.erl), which is not in this repository:
%%% those tests run when HB_BEAMR_AOS_WASM names it and are no tests
%%% otherwise; and always on test/fixtures/ao-shape.wasm, our own module of
%%% the same shape (wasm64, emscripten exception handling, a 128 KiB data
%%% segment, a start function, 12 MiB growing to 2 GiB), in the suites'
%%% mode (HB_BEAMR_TEST_MODE=aot for AOT) and across modes.
%%%
%%%   HB_BEAMR_AOS_WASM=/path/to/aos-2-pure-xs.wasm rebar3 eunit --module=hb_beamr_aos_snapshot_tests
-module(hb_beamr_aos_snapshot_tests).

-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, mode/0]).

-define(PAGE, 65536).

other_mode() ->
    case mode() of
        wasm -> aot;
        aot -> wasm
    end.

snap(W) ->
    {ok, S} = hb_beamr:snapshot(W),
    S.

info(Snap, Key) ->
    {ok, Info} = hb_beamr:snapshot_info(Snap),
    maps:get(Key, Info).

%% A full snapshot's state: all but its id (a snapshot carries one once a
%% delta was asked of its instance, or when its instance was restored from
%% a chain).
state(<<Head:48/binary, _Id:32/binary, Rest/binary>>) -> {Head, Rest}.

%%% The AO module (HB_BEAMR_AOS_WASM)

aos_snapshot_test_() ->
    case os:getenv("HB_BEAMR_AOS_WASM") of
        false ->
            io:format(user, "hb_beamr_aos_snapshot_tests: HB_BEAMR_AOS_WASM unset: "
                            "no AO module tests (the ao-shape ones run)~n", []),
            [];
        Path ->
            {setup, fun() -> hb_beamr_test_util:aos_module(Path) end, fun(_) -> ok end,
             fun(Wasm) -> [{timeout, 900, ?_test(ao_end_to_end(Wasm))}] end}
    end.

%% Bytecode in both modes: `aot' compiles it through the compile cache.
ao_start(Wasm, Mode, Opts) ->
    {ok, W} = hb_beamr_aos:start(Wasm, Mode, Opts),
    W.

%% The Lua result of an Eval message (the JSON's `data'); the message
%% must succeed.
data(Out) ->
    ?assertEqual(nomatch, binary:match(Out, <<"error">>)),
    {match, [Data]} = re:run(Out, <<"\"data\":\"?([^\",]*)">>, [{capture, all_but_first, binary}]),
    Data.

-define(SETUP, <<"Counts = {} for i = 1, 700 do local k = 'k' .. (i % 7) "
                 "Counts[k] = (Counts[k] or 0) + i end N = 0 return 'set'">>).
-define(MORE, <<"N = N + 10 Log = {} for i = 1, 200 do Log[i] = string.rep('x', i) end "
                "return N">>).
%% The message evaluated in the forks and the parent: it reads and
%% changes the state of both messages before it.
-define(STEP, <<"N = N + 1 Counts.fork = (Counts.fork or 0) + 1 "
                "local s = 0 for _, v in pairs(Counts) do s = s + v end "
                "return N .. '/' .. Counts.fork .. '/' .. s .. '/' .. #Log[200]">>).
-define(STEP_ANSWER, <<"12/1/245351/200">>).

ao_end_to_end(Wasm) ->
    Mode = mode(),
    P = ao_start(Wasm, Mode, #{}),
    ?assertEqual(<<"set">>, data(hb_beamr_aos:eval(P, ?SETUP))),
    ?assertEqual(<<"1">>, data(hb_beamr_aos:eval(P, <<"N = N + 1 return N">>))),
    Full = snap(P),
    ?assertEqual(<<"11">>, data(hb_beamr_aos:eval(P, ?MORE))),
    {ok, Delta} = hb_beamr:snapshot(P, #{base => Full}),
    %% One message's delta: a fraction of the process's memory.
    ?assertEqual(delta, info(Delta, kind)),
    ?assert(byte_size(Delta) * 4 < byte_size(Full)),
    AtDelta = snap(P),
    ?assertEqual(info(AtDelta, id), info(Delta, id)),
    {ok, Image} = hb_beamr:image([Full, Delta]),
    {ok, Live, _, _} = hb_beamr:fork(P),
    Forks = [{chain, ao_start(Wasm, Mode, #{snapshot => [Full, Delta]})},
             {image, ao_start(Wasm, Mode, #{snapshot => Image})},
             {live, Live},
             {other_mode_chain, ao_start(Wasm, other_mode(), #{snapshot => [Full, Delta]})},
             {other_mode_image, ao_start(Wasm, other_mode(), #{snapshot => Image})}],
    %% Each fork is the parent's state at the delta, bit for bit.
    [?assertEqual({How, state(AtDelta)}, {How, state(snap(F))}) || {How, F} <- Forks],
    ForkOuts = [{How, hb_beamr_aos:eval(F, ?STEP)} || {How, F} <- Forks],
    %% The parent is untouched by its forks' messages.
    ?assertEqual(state(AtDelta), state(snap(P))),
    Out = hb_beamr_aos:eval(P, ?STEP),
    ?assertEqual(?STEP_ANSWER, data(Out)),
    %% A second delta on the first (the last snapshot was a full one of
    %% the same state: the same id): the kernel's record where there is one.
    {ok, Delta2} = hb_beamr:snapshot(P, #{base => Delta}),
    ?assert(lists:member(info(Delta2, method), [kernel, hash])),
    ?assert(byte_size(Delta2) * 4 < byte_size(Full)),
    %% Every fork answered what the parent answered, and is in its state.
    [?assertEqual({How, Out}, {How, O}) || {How, O} <- ForkOuts],
    After = snap(P),
    [?assertEqual({How, state(After)}, {How, state(snap(F))}) || {How, F} <- Forks],
    %% The forks go on on their own: a second message in one of them is
    %% not seen in the parent or in the others.
    {chain, F1} = hd(Forks),
    ?assertEqual(<<"13/2/245352/200">>, data(hb_beamr_aos:eval(F1, ?STEP))),
    [?assertEqual({How, state(After)}, {How, state(snap(F))}) || {How, F} <- tl(Forks)],
    ?assertEqual(state(After), state(snap(P))),
    %% The chain restored into fresh instances of both modes: the state at
    %% the delta, the same answer.
    [begin
         R = ao_start(Wasm, M, #{}),
         ok = hb_beamr:restore(R, [Full, Delta]),
         ?assertEqual({M, state(AtDelta)}, {M, state(snap(R))}),
         ?assertEqual({M, Out}, {M, hb_beamr_aos:eval(R, ?STEP)}),
         ?assertEqual({M, state(After)}, {M, state(snap(R))}),
         hb_beamr:stop(R)
     end || M <- [Mode, other_mode()]],
    %% The longer chain forks the parent after its message.
    [begin
         R = ao_start(Wasm, M, #{snapshot => [Full, Delta, Delta2]}),
         ?assertEqual({M, state(After)}, {M, state(snap(R))}),
         ?assertEqual(<<"13/2/245352/200">>, data(hb_beamr_aos:eval(R, ?STEP))),
         hb_beamr:stop(R)
     end || M <- [Mode, other_mode()]],
    ?debugFmt("AO process (~w): full snapshot ~w KiB, delta after one message ~w KiB (~p), "
              "second delta ~w KiB (~p)",
              [Mode, byte_size(Full) div 1024, byte_size(Delta) div 1024, info(Delta, method),
               byte_size(Delta2) div 1024, info(Delta2, method)]),
    [hb_beamr:stop(W) || W <- [P | [F || {_, F} <- Forks]]].

%%% test/fixtures/ao-shape.wasm (always)

shape(wasm) -> fixture("ao-shape.wasm");
shape(aot) ->
    Key = {?MODULE, aot},
    case persistent_term:get(Key, undefined) of
        undefined ->
            {ok, Aot} = hb_beamr:compile(fixture("ao-shape.wasm")),
            persistent_term:put(Key, Aot),
            Aot;
        Aot ->
            Aot
    end.

shape_start(Mode, Opts) ->
    {ok, W, _, _} = hb_beamr:start(shape(Mode), Mode, Opts),
    W.

call(W, F, Args) ->
    {ok, Results} = hb_beamr:call(W, F, Args),
    Results.

%% Addresses written by the messages: in the start function's page, in
%% the data segment's lines (64 KiB on), high in the initial memory, and
%% (after growth) past it.
-define(LOW, 4096 * 3).
-define(IN_DATA, (?PAGE + 64 * 100)).
-define(HIGH, (191 * ?PAGE + 8)).
-define(GROWN, (194 * ?PAGE + 16)).

%% The first messages: the counter, stores, a longjmp through the
%% exception-handling path (table entry 3 jumps with its argument).
shape_setup(W) ->
    [105] = call(W, "add_counter", [5]),
    [] = call(W, "store", [?LOW, 11]),
    [] = call(W, "store", [?HIGH, 12]),
    [9] = call(W, "protected", [3, 9]),
    ok.

%% More: growth, a store past the old end, the data segment overwritten
%% (from WebAssembly and from Erlang).
shape_more(W) ->
    [115] = call(W, "add_counter", [10]),
    [192] = call(W, "grow", [8]),
    [] = call(W, "store", [?GROWN, 13]),
    [] = call(W, "store", [?IN_DATA, 14]),
    ok = hb_beamr_io:write(W, 2 * ?PAGE, binary:copy(<<"more">>, 1024)),
    ok.

%% The message evaluated in the forks and the parent: what it reads
%% depends on every message before it.
shape_step(W) ->
    [Counter] = call(W, "add_counter", [1]),
    [] = call(W, "store", [?LOW, 21 + hd(call(W, "load", [?GROWN]))]),
    Jumped = call(W, "protected", [3, hd(call(W, "load", [?HIGH]))]),
    Returned = call(W, "protected", [2, 77]),
    {ok, Ok} = hb_beamr_io:read(W, 2056, 8),
    {Counter, call(W, "load", [?LOW]), call(W, "load", [?IN_DATA]), Jumped, Returned,
     Ok, call(W, "data_at", [?PAGE + 64 * 200]), hb_beamr_io:size(W)}.

-define(SHAPE_ANSWER, {116, [34], [14], [12], [0], <<77:64/little>>, [$a], {ok, 200 * ?PAGE}}).

ao_shape_end_to_end_test_() ->
    {timeout, 300, fun ao_shape_end_to_end/0}.

ao_shape_end_to_end() ->
    Mode = mode(),
    P = shape_start(Mode, #{}),
    %% The start function's work.
    ?assertEqual({[100], [7]}, {call(P, "get_counter", []), call(P, "load", [8])}),
    ok = shape_setup(P),
    Full = snap(P),
    ok = shape_more(P),
    {ok, Delta} = hb_beamr:snapshot(P, #{base => Full}),
    ?assertEqual(delta, info(Delta, kind)),
    %% The three units written (growth adds zeros: none stored), of 3,200.
    ?assertEqual(3, info(Delta, units)),
    ?assert(byte_size(Delta) * 50 < byte_size(Full)),
    AtDelta = snap(P),
    ?assertEqual(info(AtDelta, id), info(Delta, id)),
    {ok, Image} = hb_beamr:image([Full, Delta]),
    {ok, LiveImage} = hb_beamr:image(P),
    {ok, Live, _, _} = hb_beamr:fork(P),
    Forks = [{chain, shape_start(Mode, #{snapshot => [Full, Delta]})},
             {image, shape_start(Mode, #{snapshot => Image})},
             {live_image, shape_start(Mode, #{snapshot => LiveImage})},
             {live, Live},
             {other_mode_chain, shape_start(other_mode(), #{snapshot => [Full, Delta]})},
             {other_mode_image, shape_start(other_mode(), #{snapshot => Image})}],
    %% A fork ran the start function, then took the image's state: the
    %% counter and memory are the parent's, not the start function's.
    [?assertEqual({How, state(AtDelta)}, {How, state(snap(F))}) || {How, F} <- Forks],
    [?assertEqual({How, [115], [7]}, {How, call(F, "get_counter", []), call(F, "load", [8])})
     || {How, F} <- Forks],
    ForkOuts = [{How, shape_step(F)} || {How, F} <- Forks],
    ?assertEqual(state(AtDelta), state(snap(P))),
    ?assertEqual([115], call(P, "get_counter", [])),
    Out = shape_step(P),
    ?assertEqual(?SHAPE_ANSWER, Out),
    {ok, Delta2} = hb_beamr:snapshot(P, #{base => Delta}),
    ?assert(lists:member(info(Delta2, method), [kernel, hash])),
    ?assertEqual(2, info(Delta2, units)),
    [?assertEqual({How, Out}, {How, O}) || {How, O} <- ForkOuts],
    After = snap(P),
    [?assertEqual({How, state(After)}, {How, state(snap(F))}) || {How, F} <- Forks],
    %% One fork goes on; the others and the parent do not see it.
    {chain, F1} = hd(Forks),
    ?assertMatch({117, _, _, _, _, _, _, _}, shape_step(F1)),
    [?assertEqual({How, state(After)}, {How, state(snap(F))}) || {How, F} <- tl(Forks)],
    ?assertEqual(state(After), state(snap(P))),
    %% The chain in fresh instances of both modes.
    [begin
         R = shape_start(M, #{}),
         ok = hb_beamr:restore(R, [Full, Delta]),
         ?assertEqual({M, state(AtDelta)}, {M, state(snap(R))}),
         ?assertEqual({M, Out}, {M, shape_step(R)}),
         ?assertEqual({M, state(After)}, {M, state(snap(R))}),
         hb_beamr:stop(R)
     end || M <- [Mode, other_mode()]],
    %% The longer chain forks the parent after its message.
    [begin
         R = shape_start(M, #{snapshot => [Full, Delta, Delta2]}),
         ?assertEqual({M, state(After)}, {M, state(snap(R))}),
         ?assertMatch({M, {117, _, _, _, _, _, _, _}}, {M, shape_step(R)}),
         hb_beamr:stop(R)
     end || M <- [Mode, other_mode()]],
    ?debugFmt("ao-shape (~w): full snapshot ~w KiB, delta ~w units (~p), second delta ~w units (~p)",
              [Mode, byte_size(Full) div 1024, info(Delta, units), info(Delta, method),
               info(Delta2, units), info(Delta2, method)]),
    [hb_beamr:stop(W) || W <- [P | [F || {_, F} <- Forks]]].
