%%% @doc Regressions for WAMR behaviours hb_beamr's build fixes (defines in
%%% native/hb_wamr_build, found by `make spec'). Runs in both modes.
-module(hb_beamr_wamr_fixes_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [with_instance/2]).

call_indirect_uses_the_table_it_names_test() ->
    with_instance("wamr-fixes.wasm", fun(W) ->
        ?assertEqual({ok, [9]}, hb_beamr:call(W, "second_table", []))
    end).

memory_is_not_shrunk_to_the_heap_base_test() ->
    with_instance("wamr-fixes.wasm", fun(W) ->
        ?assertEqual({ok, [0]}, hb_beamr:call(W, "load", [65535])),
        ?assertEqual({ok, 65536}, hb_beamr_io:size(W))
    end).

%% memory.grow on memory64 by 2^32 + 2 pages fails and grows nothing, in
%% both modes (the AOT compiler grew by the low 32 bits: a patch).
memory64_grow_beyond_32_bits_grows_nothing_test() ->
    WASM = hb_beamr_test_util:start("grow64.wasm"),
    ?assertEqual({ok, [-1]}, hb_beamr:call(WASM, "grow", [16#100000002])),
    ?assertEqual({ok, [1]}, hb_beamr:call(WASM, "pages", [])),
    ?assertEqual({ok, [1]}, hb_beamr:call(WASM, "grow", [2])),
    ?assertEqual({ok, [3]}, hb_beamr:call(WASM, "pages", [])),
    hb_beamr:stop(WASM).
