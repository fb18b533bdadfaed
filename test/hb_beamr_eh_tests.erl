%%% @doc setjmp/longjmp through WebAssembly exception handling
%%% (test/fixtures/setjmp.wat, emscripten's shapes): the same results in `wasm' mode
%%% (the interpreter runs the exception handling) and in `aot' mode (compile/1
%%% rewrites it into host calls, hb_beamr_eh), and the rewritten module as
%%% bytecode gives them too.
-module(hb_beamr_eh_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, start/1, start/2]).

%% Calls and what each returns, in order on one instance.
script() ->
    [
        {"protected call returns", "protected", [0, 42], {ok, [0]}},
        {"its side effect stays", "counter", [2056], {ok, [42]}},
        {"longjmp through 6 frames", "protected", [1, 5], {ok, [105]}},
        {"frames it went through", "counter", [2048], {ok, [6]}},
        {"nested: jump to the outer buffer", "protected", [2, 0], {ok, [7]}},
        {"the inner handler saw a foreign buffer", "counter", [2064], {ok, [1]}},
        {"two sites, the first jumps", "two_sites", [3, 0], {ok, [3000]}},
        {"two sites, the second jumps", "two_sites", [0, 4], {ok, [4]}},
        {"two sites, both jump", "two_sites", [2, 5], {ok, [2005]}},
        {"catch and rethrow", "rethrow", [3], {ok, [10000]}},
        {"the inner catch ran once", "counter", [2068], {ok, [1]}},
        {"no jump, no catch", "rethrow", [0], {ok, [0]}},
        {"delegate skips the inner catch_all", "delegate", [4], {ok, [4]}},
        {"the inner catch_all did not run", "counter", [2072], {ok, [0]}},
        {"the stack pointer is restored", "stack_pointer", [], {ok, [60000]}},
        {"an uncaught longjmp is a trap", "uncaught", [2], trap},
        {"the instance goes on", "uncaught", [0], {ok, [0]}},
        {"a trap is not caught by a handler", "protected", [4, 0], trap},
        {"and the instance goes on", "protected", [1, 0], {ok, [100]}}
    ].

%% test/fixtures/eh-tags.wat: two tags.
tags_script() ->
    [
        {"a longjmp caught by the inner try", "mixed", [1, 5], {ok, [1005]}},
        {"a C++ exception past it, to the outer", "mixed", [0, 5], {ok, [2005]}},
        {"catch_all takes a C++ exception", "catch_all", [0, 7], {ok, [3000]}},
        {"catch_all takes a longjmp", "catch_all", [1, 7], {ok, [3000]}},
        {"a longjmp handler catches its own", "only_lj", [1, 7], {ok, [7]}},
        {"and lets a C++ exception through", "only_lj", [0, 7], trap},
        {"a throw inside a try body", "direct", [9], {ok, [9]}}
    ].

run_script(W) ->
    run_script(W, script()).

run_script(W, Script) ->
    [check(W, Step) || Step <- Script].

check(W, {Name, Func, Args, trap}) ->
    {Name, ?_assertMatch({error, {wasm_trap, _}}, hb_beamr:call(W, Func, Args))};
check(W, {Name, Func, Args, Expected}) ->
    {Name, ?_assertEqual(Expected, hb_beamr:call(W, Func, Args))}.

%% In the suite's mode: the original in wasm, the compiled module in aot.
setjmp_test_() ->
    {setup, fun() -> start("setjmp.wasm") end, fun hb_beamr:stop/1, fun(W) ->
        {inorder, run_script(W)}
    end}.

tags_test_() ->
    {setup, fun() -> start("eh-tags.wasm") end, fun hb_beamr:stop/1, fun(W) ->
        {inorder, run_script(W, tags_script())}
    end}.

%% The rewritten module, run by the interpreter: the host imports serve
%% it there too, and its metadata is the original's.
rewritten_as_bytecode_test_() ->
    {ok, Rewritten} = hb_beamr_test_nif:rewrite_eh(fixture("setjmp.wasm")),
    {setup,
        fun() ->
            {ok, W, Imports, Exports} = hb_beamr:start(Rewritten, wasm),
            {ok, _, Imports0, Exports0} = hb_beamr:start(fixture("setjmp.wasm"), wasm),
            {W, {Imports, Exports}, {Imports0, Exports0}}
        end,
        fun({W, _, _}) -> hb_beamr:stop(W) end,
        fun({W, Meta, Meta0}) ->
            [{"same imports and exports", ?_assertEqual(Meta0, Meta)},
             {inorder, run_script(W)}]
        end}.

rewritten_tags_as_bytecode_test_() ->
    {ok, Rewritten} = hb_beamr_test_nif:rewrite_eh(fixture("eh-tags.wasm")),
    {setup, fun() -> start(Rewritten, wasm) end, fun hb_beamr:stop/1, fun(W) ->
        {inorder, run_script(W, tags_script())}
    end}.

%% A module without exception handling is left as it is.
rewrite_leaves_other_modules_test() ->
    ?assertEqual(unchanged, hb_beamr_test_nif:rewrite_eh(fixture("test.wasm"))).

%% compile/1 lowers what it can and refuses the rest, clearly.
compile_test_() ->
    case hb_beamr_compiler_nif:loaded() of
        false ->
            [];
        true ->
            [
                fun() ->
                    {error, {compile_failed, Why}} = hb_beamr:compile(fixture("eh-unsupported.wasm")),
                    ?assertNotEqual(nomatch, binary:match(Why, <<"exception handling">>)),
                    ?assertNotEqual(nomatch, binary:match(Why, <<"carries values">>)),
                    % It still runs as bytecode.
                    W = start("eh-unsupported.wasm", wasm),
                    ?assertEqual({ok, [1.5]}, hb_beamr:call(W, "run", [])),
                    hb_beamr:stop(W)
                end
            ]
    end.
