%%% @doc Linear memory: size, reads and writes with bounds checks, strings,
%%% malloc/free through the module, snapshots, and memory64.
-module(hb_beamr_io_tests).
-include_lib("eunit/include/eunit.hrl").
-include("include/hb.hrl").

-import(hb_beamr_test_util, [fixture/1, start/1, with_instance/2]).

-define(PAGE, 65536).

size_is_one_page_test() ->
    with_instance("test-print.wasm", fun(W) ->
        ?assertEqual({ok, ?PAGE}, hb_beamr_io:size(W))
    end).

size_of_a_module_without_memory_test() ->
    with_instance("test.wasm", fun(W) ->
        ?assertEqual({ok, 0}, hb_beamr_io:size(W)),
        ?assertMatch({error, {out_of_bounds, _}}, hb_beamr_io:read(W, 0, 1))
    end).

reads_the_data_segment_test() ->
    with_instance("test-print.wasm", fun(W) ->
        ?assertEqual({ok, <<"Hello, World!">>}, hb_beamr_io:read(W, 66, 13)),
        ?assertEqual({ok, <<"Hello, World!">>}, hb_beamr_io:read_string(W, 66)),
        ?assertEqual({ok, <<"Hello, World!">>}, hb_beamr_io:read_string(W, 66, 1)),
        ?assertEqual({ok, <<>>}, hb_beamr_io:read(W, 0, 0))
    end).

writes_and_reads_back_test() ->
    with_instance("test-print.wasm", fun(W) ->
        ?assertEqual(ok, hb_beamr_io:write(W, 0, <<"Hello, World!">>)),
        ?assertEqual({ok, <<"Hello, World!">>}, hb_beamr_io:read(W, 0, 13)),
        % The last byte of memory is writable, the one after it is not.
        ?assertEqual(ok, hb_beamr_io:write(W, ?PAGE - 1, <<7>>)),
        ?assertEqual({ok, <<7>>}, hb_beamr_io:read(W, ?PAGE - 1, 1)),
        % A write larger than 4 KiB goes to the instance by reference.
        Big = binary:copy(<<"0123456789abcdef">>, 4096),
        ?assertEqual(ok, hb_beamr_io:write(W, 0, Big)),
        ?assertEqual({ok, Big}, hb_beamr_io:read(W, 0, byte_size(Big)))
    end).

large_writes_of_sub_binaries_and_dropped_binaries_test() ->
    with_instance("test-print.wasm", fun(W) ->
        % A sub-binary: only its own bytes are written, from its offset.
        Whole = << <<(I band 255)>> || I <- lists:seq(0, 3 * 8192 - 1) >>,
        <<_:8192/binary, Middle:8192/binary, _/binary>> = Whole,
        ?assertEqual(ok, hb_beamr_io:write(W, 100, Middle)),
        ?assertEqual({ok, Middle}, hb_beamr_io:read(W, 100, 8192)),
        ?assertEqual({ok, <<0>>}, hb_beamr_io:read(W, 99, 1)),
        % A binary nobody keeps after the call (made and dropped in another
        % process) is still written whole.
        Self = self(),
        spawn(fun() -> Self ! {written, hb_beamr_io:write(W, 0, binary:copy(<<"x">>, 20000))} end),
        ?assertEqual(ok, receive {written, R} -> R after 5000 -> timeout end),
        ?assertEqual({ok, binary:copy(<<"x">>, 20000)}, hb_beamr_io:read(W, 0, 20000))
    end).

out_of_bounds_access_is_an_error_test_() ->
    W = fun() -> start("test-print.wasm") end,
    {setup, W, fun hb_beamr:stop/1, fun(WASM) ->
        [
            ?_assertEqual(
                {error, {out_of_bounds, #{offset => 1000000, length => 16, memory_size => ?PAGE}}},
                hb_beamr_io:write(WASM, 1000000, <<"Bad hello world!">>)
            ),
            ?_assertMatch({error, {out_of_bounds, _}}, hb_beamr_io:read(WASM, 1000000, 13)),
            ?_assertMatch({error, {out_of_bounds, _}}, hb_beamr_io:read(WASM, ?PAGE - 1, 2)),
            ?_assertMatch({error, {out_of_bounds, _}}, hb_beamr_io:write(WASM, ?PAGE, <<1>>)),
            % offset + length overflows 64 bits
            ?_assertMatch({error, {out_of_bounds, _}}, hb_beamr_io:read(WASM, 16#FFFFFFFFFFFFFFFF, 2)),
            ?_assertEqual({error, badarg}, hb_beamr_io:read(WASM, -1, 2)),
            ?_assertEqual({error, badarg}, hb_beamr_io:read(WASM, 0, -2)),
            ?_assertEqual({error, badarg}, hb_beamr_io:write(WASM, 0, not_binary)),
            ?_assertEqual({error, badarg}, hb_beamr_io:size(not_a_pid)),
            ?_assertMatch({error, _}, hb_beamr_io:read(WASM, 16#10000000000000000, 1)),
            ?_assertMatch({error, {unterminated_string, _}}, string_to_the_end(WASM))
        ]
    end}.

string_to_the_end(WASM) ->
    ok = hb_beamr_io:write(WASM, ?PAGE - 4, <<"abcd">>),
    hb_beamr_io:read_string(WASM, ?PAGE - 4).

malloc_write_string_and_free_test() ->
    with_instance("alloc.wasm", fun(W) ->
        {ok, P1} = hb_beamr_io:malloc(W, 100),
        {ok, P2} = hb_beamr_io:malloc(W, 100),
        ?assert(P2 >= P1 + 100),
        {ok, Ptr} = hb_beamr_io:write_string(W, <<"Hello, World!">>),
        ?assertEqual({ok, <<"Hello, World!">>}, hb_beamr_io:read_string(W, Ptr)),
        {ok, Ptr2} = hb_beamr_io:write_string(W, ["io", $l, <<"ist">>]),
        ?assertEqual({ok, <<"iolist">>}, hb_beamr_io:read_string(W, Ptr2)),
        ?assertEqual(ok, hb_beamr_io:free(W, P1))
    end).

malloc_grows_memory_and_fails_past_its_maximum_test() ->
    with_instance("alloc.wasm", fun(W) ->
        {ok, ?PAGE} = hb_beamr_io:size(W),
        {ok, Ptr} = hb_beamr_io:malloc(W, 2 * ?PAGE),
        % Memory grew during the call; the new bytes are readable and writable.
        {ok, Size} = hb_beamr_io:size(W),
        ?assert(Size >= 3 * ?PAGE),
        ?assertEqual(ok, hb_beamr_io:write(W, Ptr + 2 * ?PAGE - 1, <<1>>)),
        ?assertEqual({error, malloc_failed}, hb_beamr_io:malloc(W, 128 * 1024 * 1024))
    end).

malloc_without_an_exported_malloc_test() ->
    with_instance("test-print.wasm", fun(W) ->
        ?assertEqual({error, function_not_found}, hb_beamr_io:malloc(W, 10)),
        ?assertEqual({error, function_not_found}, hb_beamr_io:free(W, 10))
    end).

serialize_is_the_whole_memory_test() ->
    with_instance("test-print.wasm", fun(W) ->
        {ok, Size} = hb_beamr_io:size(W),
        {ok, Memory} = hb_beamr:serialize(W),
        ?assertEqual(Size, byte_size(Memory)),
        ?assertEqual(<<"Hello, World!">>, binary:part(Memory, 66, 13))
    end).

deserialize_restores_a_snapshot_test() ->
    with_instance("test-print.wasm", fun(W) ->
        ok = hb_beamr_io:write(W, 0, <<"first state">>),
        {ok, Snapshot} = hb_beamr:serialize(W),
        ok = hb_beamr_io:write(W, 0, <<"other state">>),
        ?assertEqual(ok, hb_beamr:deserialize(W, Snapshot)),
        ?assertEqual({ok, <<"first state">>}, hb_beamr_io:read(W, 0, 11))
    end).

snapshot_moves_to_a_fresh_instance_test() ->
    W1 = start("alloc.wasm"),
    {ok, Ptr} = hb_beamr_io:write_string(W1, <<"carried over">>),
    {ok, Snapshot} = hb_beamr:serialize(W1),
    hb_beamr:stop(W1),
    W2 = start("alloc.wasm"),
    ?assertEqual(ok, hb_beamr:deserialize(W2, Snapshot)),
    ?assertEqual({ok, <<"carried over">>}, hb_beamr_io:read_string(W2, Ptr)),
    hb_beamr:stop(W2).

%% test-print.wasm has no memory.grow, so WAMR fixes its memory at the
%% initial size. A snapshot one page larger (as HyperBEAM's runtime reports
%% for such modules) restores when that page is zeros, which is no state;
%% anything there is refused (see hb_beamr_state_tests for modules that grow).
deserialize_into_memory_that_cannot_grow_test() ->
    with_instance("test-print.wasm", fun(W) ->
        {ok, Memory} = hb_beamr:serialize(W),
        Edited = <<"Hi", (binary:part(Memory, 2, ?PAGE - 2))/binary>>,
        ?assertEqual(ok, hb_beamr:deserialize(W, <<Edited/binary, 0:?PAGE/unit:8>>)),
        ?assertEqual({ok, <<"Hi">>}, hb_beamr_io:read(W, 0, 2)),
        ?assertEqual({ok, ?PAGE}, hb_beamr_io:size(W)),
        ?assertMatch(
            {error, {snapshot_too_large, #{size := 131072, max := 65536}}},
            hb_beamr:deserialize(W, <<0:(2 * ?PAGE - 1)/unit:8, 9>>)
        ),
        ?assertEqual({error, badarg}, hb_beamr:deserialize(W, not_a_binary))
    end).

memory64_module_test() ->
    with_instance("test-64.wasm", fun(W) ->
        ?assertEqual({ok, [120.0]}, hb_beamr:call(W, "fac", [5.0])),
        ?assertEqual({ok, <<"memory64 says hi">>}, hb_beamr_io:read(W, 16, 16)),
        ok = hb_beamr_io:write(W, 1000, <<42>>),
        ?assertEqual({ok, [42]}, hb_beamr:call(W, "load8", [1000])),
        {ok, []} = hb_beamr:call(W, "store8", [2000, 7]),
        ?assertEqual({ok, <<7>>}, hb_beamr_io:read(W, 2000, 1)),
        ?assertEqual({ok, [1]}, hb_beamr:call(W, "grow", [2])),
        ?assertEqual({ok, 3 * ?PAGE}, hb_beamr_io:size(W)),
        ?assertMatch({error, {wasm_trap, _}}, hb_beamr:call(W, "load8", [16#100000000]))
    end).
