%%% @doc AOT compilation (hb_beamr:compile/1,2) and what start(_, aot)
%%% accepts. Every fixture suite also runs in aot mode (HB_BEAMR_TEST_MODE=aot);
%%% these tests are about the compiler and AOT files themselves.
-module(hb_beamr_aot_tests).
-include_lib("eunit/include/eunit.hrl").
-include("include/hb.hrl").

-import(hb_beamr_test_util, [fixture/1, start/2]).

compiler_is_built_test() ->
    ?assert(hb_beamr_compiler_nif:loaded()).

compile_makes_an_aot_file_that_runs_test() ->
    {ok, Aot} = hb_beamr:compile(fixture("test.wasm")),
    ?assertMatch(<<0, "aot", _/binary>>, Aot),
    {ok, WASM, [], [{func, <<"fac">>, <<"(F)F">>}]} = hb_beamr:start(Aot, aot),
    ?assertEqual({ok, [120.0]}, hb_beamr:call(WASM, "fac", [5.0])),
    hb_beamr:stop(WASM).

compile_is_deterministic_test() ->
    Wasm = fixture("imports.wasm"),
    ?assertEqual(hb_beamr:compile(Wasm), hb_beamr:compile(Wasm)),
    Opts = #{opt_level => 1, target_cpu => generic},
    ?assertEqual(hb_beamr:compile(Wasm, Opts), hb_beamr:compile(Wasm, Opts)),
    % Different options, different code.
    ?assertNotEqual(hb_beamr:compile(Wasm), hb_beamr:compile(Wasm, Opts)).

every_option_produces_working_code_test_() ->
    Wasm = fixture("compute.wasm"),
    {ok, WASM0, _, _} = hb_beamr:start(Wasm),
    {ok, Expected} = hb_beamr:call(WASM0, "mix", [1000]),
    hb_beamr:stop(WASM0),
    [
        {lists:flatten(io_lib:format("~p", [Opts])), fun() ->
            {ok, Aot} = hb_beamr:compile(Wasm, Opts),
            {ok, WASM, _, _} = hb_beamr:start(Aot, aot),
            ?assertEqual({ok, Expected}, hb_beamr:call(WASM, "mix", [1000])),
            hb_beamr:stop(WASM)
        end}
     || Opts <- [
            #{opt_level => 0},
            #{opt_level => 2, size_level => 0},
            #{size_level => 1},
            #{bounds_checks => true},
            #{target_cpu => host},
            #{target_cpu => generic},
            #{target_cpu => "x86-64-v2"}
        ],
        is_valid_for_host(Opts)
    ].

is_valid_for_host(#{target_cpu := "x86-64-v2"}) ->
    erlang:system_info(system_architecture) >= "x86_64" andalso
        lists:prefix("x86_64", erlang:system_info(system_architecture));
is_valid_for_host(_) ->
    true.

bad_options_are_refused_test_() ->
    Wasm = fixture("test.wasm"),
    [
        ?_assertEqual({error, {invalid_option, {opt_level, 4}}}, hb_beamr:compile(Wasm, #{opt_level => 4})),
        ?_assertEqual({error, {invalid_option, {size_level, -1}}}, hb_beamr:compile(Wasm, #{size_level => -1})),
        % Unchecked memory accesses could crash the node: not offered.
        ?_assertEqual({error, {invalid_option, {bounds_checks, false}}}, hb_beamr:compile(Wasm, #{bounds_checks => false})),
        ?_assertEqual({error, {invalid_option, {target_cpu, 42}}}, hb_beamr:compile(Wasm, #{target_cpu => 42})),
        % LLVM would abort the process on these; they are checked first.
        ?_assertEqual({error, {invalid_option, {target_cpu, "no-such-cpu"}}}, hb_beamr:compile(Wasm, #{target_cpu => "no-such-cpu"})),
        ?_assertEqual({error, {invalid_option, {target_cpu, "i386"}}}, hb_beamr:compile(Wasm, #{target_cpu => "i386"})),
        ?_assertEqual({error, {invalid_option, {colour, blue}}}, hb_beamr:compile(Wasm, #{colour => blue})),
        ?_assertEqual({error, badarg}, hb_beamr:compile(not_a_binary)),
        ?_assertEqual({error, badarg}, hb_beamr:compile(Wasm, not_a_map))
    ].

modules_the_compiler_cannot_take_test_() ->
    [
        ?_assertMatch({error, {invalid_wasm, _}}, hb_beamr:compile(<<"not wasm">>)),
        ?_assertMatch({error, {compile_failed, _}}, hb_beamr:compile(<<0, "asm", 1, 0, 0, 0, 99>>)),
        fun() ->
            {error, {compile_failed, Why}} = hb_beamr:compile(fixture("eh-unsupported.wasm")),
            ?assertNotEqual(nomatch, binary:match(Why, <<"exception handling">>))
        end
    ].

%% (Files whose seal is broken never get this far: trust_aot lets these
%% reach the runtime's own checks.)
start_refuses_aot_files_it_cannot_run_test_() ->
    {ok, Sealed} = hb_beamr:compile(fixture("test.wasm")),
    {ok, Aot} = hb_beamr_seal:open(Sealed, true),
    <<Magic:4/binary, _Version:32/little, Rest/binary>> = Aot,
    OtherVersion = <<Magic/binary, 1:32/little, Rest/binary>>,
    Trusted = #{trust_aot => true},
    [
        ?_assertMatch({error, {invalid_aot, <<"AOT file version 1", _/binary>>}}, hb_beamr:start(OtherVersion, aot, Trusted)),
        ?_assertMatch({error, {invalid_wasm, _}}, hb_beamr:start(Sealed, wasm)),
        ?_assertMatch({error, {invalid_aot, _}}, hb_beamr:start(binary:part(Aot, 0, 64), aot, Trusted)),
        ?_assertMatch({error, {invalid_aot, _}}, hb_beamr:start(other_arch(Aot), aot, Trusted))
    ].

%% The same file, tagged as compiled for another architecture.
other_arch(Aot) ->
    Arch = list_to_binary(hd(string:split(erlang:system_info(system_architecture), "-"))),
    Other = binary:part(<<"zzzzzzzzzzzzzzzz">>, 0, byte_size(Arch)),
    binary:replace(Aot, <<"arch=", Arch/binary>>, <<"arch=", Other/binary>>).

cpu_features_the_host_lacks_are_refused_test() ->
    % A CPU with every x86 extension LLVM knows of; skipped where the host has them all.
    case erlang:system_info(system_architecture) of
        "x86_64" ++ _ ->
            {ok, Aot} = hb_beamr:compile(fixture("test.wasm"), #{target_cpu => "sapphirerapids"}),
            case hb_beamr:start(Aot, aot) of
                {error, {invalid_aot, Why}} ->
                    ?assertNotEqual(nomatch, binary:match(Why, <<"sapphirerapids">>));
                {ok, WASM, _, _} ->
                    % This CPU can run it: then it must run correctly.
                    ?assertEqual({ok, [6.0]}, hb_beamr:call(WASM, "fac", [3.0])),
                    hb_beamr:stop(WASM)
            end;
        _ ->
            ok
    end.

%% The start-time gate reads the tag's feature string, the one LLVM was
%% given: a file sealed by this node whose tag claims a feature this CPU
%% lacks, or one the runtime cannot check, is refused, never run.
forged_cpu_features_are_refused_test_() ->
    {ok, Sealed} = hb_beamr:compile(fixture("test.wasm"), #{target_cpu => host}),
    {ok, Aot} = hb_beamr_seal:open(Sealed, false),
    {match, [Features]} = re:run(Aot, <<"llvm_features=([^\n]*)">>, [{capture, all_but_first, binary}]),
    % A feature LLVM read as absent here ("-name"), claimed present instead.
    [Lacking | _] = [F || <<"-", F/binary>> <- binary:split(Features, <<",">>, [global])],
    Claimed = binary:replace(Aot, <<"-", Lacking/binary, ",">>, <<"+", Lacking/binary, ",">>),
    Unknown = binary:replace(Aot, <<"-", Lacking/binary, ",">>,
                             <<"+", (binary:copy(<<"z">>, byte_size(Lacking)))/binary, ",">>),
    % A tag from before the feature string was recorded.
    Legacy = binary:replace(Aot, <<"llvm_features=">>, <<"llvm_featurez=">>),
    Start = fun(Bin) -> {ok, Resealed} = hb_beamr_seal:seal(Bin), hb_beamr:start(Resealed, aot) end,
    Refused = fun(Bin, Text) ->
        {error, {invalid_aot, Why}} = Start(Bin),
        ?assertNotEqual(nomatch, binary:match(Why, Text), Why)
    end,
    [
        ?_assertNotEqual(Aot, Claimed),
        ?_test(Refused(Claimed, <<Lacking/binary, ", which this CPU lacks">>)),
        ?_test(Refused(Unknown, <<"cannot check">>)),
        ?_test(Refused(Legacy, <<"older hb_beamr">>)),
        % The untouched file, resealed, still runs.
        ?_test(begin
            {ok, WASM, _, _} = Start(Aot),
            ?assertEqual({ok, [120.0]}, hb_beamr:call(WASM, "fac", [5.0])),
            hb_beamr:stop(WASM)
        end)
    ].

%% What LLVM is given for `host' is this CPU's name and its feature
%% string: the tag says both.
host_target_records_the_feature_string_test() ->
    {ok, Sealed} = hb_beamr:compile(fixture("test.wasm")),
    {ok, Aot} = hb_beamr_seal:open(Sealed, false),
    {match, [Features]} = re:run(Aot, <<"llvm_features=([^\n]*)">>, [{capture, all_but_first, binary}]),
    % LLVM's host reading names every feature it checks, present or not.
    ?assertNotEqual(nomatch, binary:match(Features, <<"+sse2">>)),
    ?assertNotEqual(nomatch, binary:match(Features, <<"avx512f">>)).

aot_snapshot_restores_into_a_fresh_aot_instance_test() ->
    W1 = start("alloc.wasm", aot),
    {ok, Ptr} = hb_beamr_io:write_string(W1, <<"from an AOT instance">>),
    {ok, Snapshot} = hb_beamr:serialize(W1),
    hb_beamr:stop(W1),
    W2 = start("alloc.wasm", aot),
    ok = hb_beamr:deserialize(W2, Snapshot),
    ?assertEqual({ok, <<"from an AOT instance">>}, hb_beamr_io:read_string(W2, Ptr)),
    % The whole memory came along (globals are not part of a snapshot).
    ?assertEqual({ok, Snapshot}, hb_beamr:serialize(W2)),
    hb_beamr:stop(W2).

wasm_and_aot_compute_the_same_test() ->
    WasmInstance = start("compute.wasm", wasm),
    AotInstance = start("compute.wasm", aot),
    ?assertEqual(hb_beamr:call(WasmInstance, "mix", [100000]), hb_beamr:call(AotInstance, "mix", [100000])),
    hb_beamr:stop(WasmInstance),
    hb_beamr:stop(AotInstance).
