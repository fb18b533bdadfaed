%%% @doc Deterministic floats: with `start/3''s `deterministic => true' (the
%%% NaN rewrite for bytecode; for AOT, a file from hb_beamr:compile/2's
%%% `deterministic => true'), every
%%% NaN a float operation produces is the positive canonical NaN, in the
%%% suites' mode (wasm or aot). Values cross as raw bits (test/fixtures/nan.wat).
-module(hb_beamr_nan_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, mode/0]).

-define(CANON64, 16#7FF8000000000000).
-define(CANON32, 16#7FC00000).
-define(PAYLOAD64, 16#7FF4000000000001).
-define(PAYLOAD32, 16#7FA00001).
-define(ONE64, 16#3FF0000000000000).
-define(ONE32, 16#3F800000).

%% Starts test/fixtures/nan.wasm in the suites' mode, with or without deterministic
%% floats.
start_nan(Deterministic) ->
    Wasm = fixture("nan.wasm"),
    Bytes =
        case mode() of
            wasm ->
                Wasm;
            aot ->
                {ok, Aot} = hb_beamr:compile(Wasm, #{deterministic => Deterministic}),
                Aot
        end,
    {ok, WASM, _, _} = hb_beamr:start(Bytes, mode(), #{deterministic => Deterministic}),
    WASM.

%% An AOT file compiled without the rewrite cannot be started as
%% deterministic; bad option values are refused.
deterministic_start_checks_test_() ->
    Wasm = fixture("nan.wasm"),
    {ok, Plain} = hb_beamr:compile(Wasm),
    [
        ?_assertMatch({error, {invalid_aot, _}}, hb_beamr:start(Plain, aot, #{deterministic => true})),
        ?_assertEqual(
            {error, {invalid_option, {deterministic, 1}}},
            hb_beamr:start(Wasm, wasm, #{deterministic => 1})
        )
    ].

%% Calls `Op' and returns its result as unsigned bits (f32 results are i32).
bits(WASM, Op, Args) ->
    {ok, [Bits]} = hb_beamr:call(WASM, Op, Args),
    Width =
        case Op of
            "f32." ++ _ -> 32;
            _ -> 64
        end,
    Bits band (1 bsl Width - 1).

%% Runs `Fun(Deterministic, Non)' on an instance with and one without the rewrite.
with_both(Fun) ->
    Det = start_nan(true),
    Non = start_nan(false),
    try
        Fun(Det, Non)
    after
        hb_beamr:stop(Det),
        hb_beamr:stop(Non)
    end.

x86() ->
    lists:prefix("x86_64", erlang:system_info(system_architecture)).

nan_payload_plus_one_test() ->
    with_both(fun(Det, Non) ->
        ?assertEqual(?CANON64, bits(Det, "f64.add", [?PAYLOAD64, ?ONE64])),
        ?assertEqual(?CANON32, bits(Det, "f32.add", [?PAYLOAD32, ?ONE32])),
        % Without the rewrite x86 propagates the (quieted) payload.
        x86() andalso ?assertEqual(16#7FFC000000000001, bits(Non, "f64.add", [?PAYLOAD64, ?ONE64])),
        x86() andalso ?assertEqual(16#7FE00001, bits(Non, "f32.add", [?PAYLOAD32, ?ONE32]))
    end).

zero_over_zero_test() ->
    with_both(fun(Det, Non) ->
        ?assertEqual(?CANON64, bits(Det, "f64.div", [0, 0])),
        ?assertEqual(?CANON32, bits(Det, "f32.div", [0, 0])),
        % x86's default NaN is negative.
        x86() andalso ?assertEqual(16#FFF8000000000000, bits(Non, "f64.div", [0, 0])),
        x86() andalso ?assertEqual(16#FFC00000, bits(Non, "f32.div", [0, 0]))
    end).

every_nan_source_gives_the_canonical_nan_test() ->
    with_both(fun(Det, _Non) ->
        Neg64 = 16#FFF4000000000001,
        Neg32 = 16#FFA00001,
        [
            ?assertEqual({Op, ?CANON64}, {Op, bits(Det, "f64." ++ Op, [A, B])})
         || Op <- ["add", "sub", "mul", "div", "min", "max"],
            {A, B} <- [{?PAYLOAD64, ?ONE64}, {?ONE64, Neg64}, {Neg64, ?PAYLOAD64}]
        ],
        [
            ?assertEqual({Op, ?CANON32}, {Op, bits(Det, "f32." ++ Op, [A, B])})
         || Op <- ["add", "sub", "mul", "div", "min", "max"],
            {A, B} <- [{?PAYLOAD32, ?ONE32}, {?ONE32, Neg32}, {Neg32, ?PAYLOAD32}]
        ],
        [
            ?assertEqual({Op, ?CANON64}, {Op, bits(Det, "f64." ++ Op, [A])})
         || Op <- ["sqrt", "ceil", "floor", "trunc", "nearest"], A <- [?PAYLOAD64, Neg64]
        ],
        [
            ?assertEqual({Op, ?CANON32}, {Op, bits(Det, "f32." ++ Op, [A])})
         || Op <- ["sqrt", "ceil", "floor", "trunc", "nearest"], A <- [?PAYLOAD32, Neg32]
        ],
        % sqrt of a negative number, infinity minus infinity.
        ?assertEqual(?CANON64, bits(Det, "f64.sqrt", [16#BFF0000000000000])),
        ?assertEqual(?CANON64, bits(Det, "f64.sub", [16#7FF0000000000000, 16#7FF0000000000000])),
        ?assertEqual(?CANON32, bits(Det, "f32.demote_f64", [Neg64])),
        ?assertEqual(?CANON64, bits(Det, "f64.promote_f32", [Neg32]))
    end).

bit_exact_operations_keep_their_nan_test() ->
    with_both(fun(Det, Non) ->
        [
            begin
                ?assertEqual(16#FFF4000000000001, bits(WASM, "f64.neg", [?PAYLOAD64])),
                ?assertEqual(?PAYLOAD64, bits(WASM, "f64.abs", [16#FFF4000000000001])),
                ?assertEqual(16#FFF4000000000001, bits(WASM, "f64.copysign", [?PAYLOAD64, 16#BFF0000000000000])),
                ?assertEqual(16#FFA00001, bits(WASM, "f32.neg", [?PAYLOAD32]))
            end
         || WASM <- [Det, Non]
        ]
    end).

ordinary_results_are_unchanged_test() ->
    with_both(fun(Det, Non) ->
        [
            ?assertEqual(bits(Non, Op, Args), bits(Det, Op, Args))
         || {Op, Args} <- [
                {"f64.add", [16#3FF8000000000000, 16#4002000000000000]},
                {"f64.div", [?ONE64, 0]},
                {"f64.sqrt", [16#4010000000000000]},
                {"f64.min", [0, 16#8000000000000000]},
                {"f32.nearest", [16#40200000]},
                {"f32.demote_f64", [16#3FB999999999999A]}
            ]
        ],
        ?assertEqual(?ONE64, bits(Det, "f64.sqrt", [?ONE64]))
    end).

stored_results_are_canonical_test() ->
    with_both(fun(Det, Non) ->
        {ok, []} = hb_beamr:call(Det, "store_div", [0, 0]),
        {ok, DetBytes} = hb_beamr_io:read(Det, 0, 8),
        ?assertEqual(<<?CANON64:64/little>>, DetBytes),
        {ok, []} = hb_beamr:call(Non, "store_div", [0, 0]),
        {ok, NonBytes} = hb_beamr_io:read(Non, 0, 8),
        x86() andalso ?assertEqual(<<16#FFF8000000000000:64/little>>, NonBytes)
    end).

float_loop_is_the_same_with_the_rewrite_test() ->
    with_both(fun(Det, Non) ->
        ?assertEqual(hb_beamr:call(Non, "float_loop", [1000]), hb_beamr:call(Det, "float_loop", [1000]))
    end).

the_nif_rewrite_is_what_start_loads_test() ->
    {ok, Canonical} = hb_beamr_test_nif:canonicalize_nans(fixture("nan.wasm")),
    {ok, WASM, _, _} = hb_beamr:start(Canonical, wasm),
    ?assertEqual(?CANON64, bits(WASM, "f64.add", [?PAYLOAD64, ?ONE64])),
    ?assertEqual(?CANON32, bits(WASM, "f32.div", [0, 0])),
    hb_beamr:stop(WASM).

aot_without_the_rewrite_is_refused_when_deterministic_test() ->
    {ok, Aot} = hb_beamr:compile(fixture("nan.wasm")),
    ?assertMatch({error, {invalid_aot, _}}, hb_beamr:start(Aot, aot, #{deterministic => true})),
    {ok, DetAot} = hb_beamr:compile(fixture("nan.wasm"), #{deterministic => true}),
    {ok, WASM, _, _} = hb_beamr:start(DetAot, aot, #{deterministic => true}),
    hb_beamr:stop(WASM).

%% emscripten's setjmp/longjmp (legacy exception handling, as in AO
%% processes) with deterministic floats, in the suites' mode.
exception_handling_modules_are_accepted_test() ->
    Wasm = fixture("setjmp.wasm"),
    Bytes =
        case mode() of
            wasm ->
                Wasm;
            aot ->
                {ok, Aot} = hb_beamr:compile(Wasm, #{deterministic => true}),
                Aot
        end,
    {ok, WASM, _, _} = hb_beamr:start(Bytes, mode(), #{deterministic => true}),
    ?assertEqual({ok, [0]}, hb_beamr:call(WASM, "protected", [0, 42])),
    ?assertEqual({ok, [105]}, hb_beamr:call(WASM, "protected", [1, 5])),
    hb_beamr:stop(WASM).

invalid_modules_are_errors_test_() ->
    [
        ?_assertMatch({error, {invalid_wasm, _}}, hb_beamr_test_nif:canonicalize_nans(<<"garbage">>)),
        ?_assertMatch(
            {error, {invalid_wasm, _}},
            hb_beamr_test_nif:canonicalize_nans(<<0, "asm", 1, 0, 0, 0, 1>>)
        ),
        ?_assertMatch(
            {error, {invalid_wasm, _}},
            hb_beamr:compile(<<0, "asm", 1, 0, 0, 0, 1>>, #{deterministic => true})
        ),
        ?_assertMatch(
            {error, {invalid_wasm, _}},
            hb_beamr:start(<<0, "asm", 1, 0, 0, 0, 1>>, wasm, #{deterministic => true})
        ),
        ?_assertEqual(
            {error, {invalid_option, {deterministic, yes}}},
            hb_beamr:compile(fixture("nan.wasm"), #{deterministic => yes})
        )
    ].
