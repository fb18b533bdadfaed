%%% @doc Regressions for WAMR behaviours hb_beamr's build fixes (defines in
%%% native/hb_wamr_build, found by `make spec'), and for the upstream
%%% security fixes the build relies on (hb_wamr_build's `patch::FIXED').
%%% Runs in both modes.
-module(hb_beamr_wamr_fixes_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [mode/0, with_instance/2]).

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

%% memory64 accesses whose address + offset (or a memory.fill / memory.copy
%% end) wraps around 2^64 trap in both modes, metered or not, and a metered
%% call uses the same fuel in both (the AOT compiler accessed the wrapped
%% address: a patch). `grow_loop' is the module meter-fuzz found's shape.
memory64_addresses_that_wrap_trap_test_() ->
    Traps = ["load", "store", "fill", "fill_end", "copy_end", "grow_loop"],
    Oob = {error, {wasm_trap, <<"out of bounds memory access">>}},
    [{"unmetered", fun() ->
        WASM = hb_beamr_test_util:start("address64.wasm"),
        [?assertEqual({Name, Oob}, {Name, hb_beamr:call(WASM, Name, [])}) || Name <- Traps],
        ?assertEqual({ok, [42]}, hb_beamr:call(WASM, "in_bounds", [])),
        hb_beamr:stop(WASM)
    end},
     {"metered: the block before the trap paid in full", fun() ->
        Bytes = hb_beamr_test_util:fixture("address64.wasm"),
        {ok, WASM, _, _} = hb_beamr:start(Bytes, mode(), #{fuel => 1000}),
        %% The table: load 3, store 4, fill and copy_end 13 each (their
        %% 64-byte units: 0), the loop's header 24 (its br_if, back to the
        %% loop, ends the block), in_bounds 7.
        Costs = [3, 4, 13, 13, 13, 24],
        lists:foldl(fun({Name, Cost}, Left) ->
            ?assertEqual({Name, Oob}, {Name, hb_beamr:call(WASM, Name, [])}),
            {ok, #{remaining := R}} = hb_beamr:fuel(WASM),
            ?assertEqual({Name, Left - Cost}, {Name, R}),
            R
        end, 1000, lists:zip(Traps, Costs)),
        ?assertEqual({ok, [42]}, hb_beamr:call(WASM, "in_bounds", [])),
        ?assertMatch({ok, #{remaining := 923}}, hb_beamr:fuel(WASM)),
        hb_beamr:stop(WASM)
    end}].

%% CVE-2026-54913 (WAMR 2.4.5): `ref.null' of a number type in a constant
%% expression is malformed, but WAMR took `(global i64 (ref.null i64))',
%% leaving the upper 4 bytes of the global's value uninitialised (it read
%% back as 16#????????FFFFFFFF). The interpreter's loader and the compiler
%% refuse it now. Written as bytes: no text format can say it.
ref_null_of_a_number_type_is_refused_test_() ->
    [{Name, fun() ->
        Why = refused(global_module(Type, Type)),
        ?assertNotEqual(nomatch, binary:match(Why, <<"invalid reference type">>))
    end} || {Name, Type} <- [{"i64", 16#7e}, {"i32", 16#7f}, {"f64", 16#7c}]]
    ++ [{"ref.null func still initialises a funcref global", fun() ->
        % The same module with a reference type loads and runs.
        WASM = hb_beamr_test_util:start(global_module(16#70, 16#70), mode()),
        ?assertEqual({ok, [1]}, hb_beamr:call(WASM, "get", [])),
        hb_beamr:stop(WASM)
    end}].

%% CVE-2025-64704 (WAMR 2.4.4): a SIMD opcode reaching the classic
%% interpreter jumped through a null entry of its dispatch table. This build
%% has no SIMD: the interpreter's loader and the compiler both refuse 0xfd,
%% so nothing runs it. `(func i32.const 0 v128.load drop)', as bytes
%% (scripts/build-fixtures.sh builds without SIMD).
simd_opcode_is_refused_test() ->
    Module = <<"\0asm", 1:32/little,
               1, 4, 1, 16#60, 0, 0,                   % type: () -> ()
               3, 2, 1, 0,                             % func 0: type 0
               5, 3, 1, 0, 1,                          % memory 1
               7, 8, 1, 4, "main", 0, 0,               % export "main"
               10, 11, 1, 9, 0,                        % code: no locals
               16#41, 0, 16#fd, 0, 0, 0, 16#1a, 16#0b>>, % i32.const 0 v128.load drop end
    Why = refused(Module),
    ?assertNotEqual(nomatch, binary:match(Why, <<"unsupported opcode fd">>)).

%% A module with one immutable global of `Type' whose initialiser is
%% `ref.null RefType', and a function "get" that returns the global (a
%% funcref global answers whether it is null, as 1 or 0).
global_module(Type, RefType) ->
    Body = case Type of
        16#70 -> <<0, 16#23, 0, 16#d1, 16#0b>>;  % global.get 0 ref.is_null end
        _ -> <<0, 16#23, 0, 16#0b>>              % global.get 0 end
    end,
    Result = case Type of
        16#70 -> 16#7f;
        _ -> Type
    end,
    <<"\0asm", 1:32/little,
      1, 5, 1, 16#60, 0, 1, Result,              % type: () -> Result
      3, 2, 1, 0,                                % func 0: type 0
      6, 6, 1, Type, 0, 16#d0, RefType, 16#0b,   % global: ref.null RefType
      7, 7, 1, 3, "get", 0, 0,                   % export "get"
      10, (byte_size(Body) + 2), 1, (byte_size(Body)), Body/binary>>.

%% What the suites' mode says when refusing `Module': the loader's words
%% (wasm), or the compiler's (aot, which loads it the same way).
refused(Module) ->
    case mode() of
        wasm ->
            {error, {invalid_wasm, Why}} = hb_beamr:start(Module, wasm),
            Why;
        aot ->
            {error, {compile_failed, Why}} = hb_beamr:compile(Module),
            Why
    end.
