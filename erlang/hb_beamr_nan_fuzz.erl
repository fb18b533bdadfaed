#!/usr/bin/env escript
%%! -noshell +A 4
%%% @doc Differential fuzz run of deterministic floats (scripts/nan-fuzz.sh).
%%% For each module `NNNNN' that native/tools/hb_beamr_nan_fuzz generated (float
%%% heavy, NaN constants, wrappers `nanfuzz_*' returning raw bits), runs the
%%% canonicalized module in wasm mode, AOT for the host CPU (compiled with
%%% `deterministic => true' from the original) and AOT `generic' (compiled
%%% from `NNNNN.det.wasm'), and compares what each call returned and the
%%% final memory, bit for bit. Also runs the original in wasm mode, to count
%%% the modules whose results the rewrite changed (that the run meets
%%% non-canonical NaNs at all). Writes what wasm mode saw to `NNNNN.hb', for
%%% `hb_beamr_nan_fuzz wasmtime DIR' to compare with.
%%%
%%%   hb_beamr_nan_fuzz.erl DIR
-module(hb_beamr_nan_fuzz).
-mode(compile).
-export([main/1]).

-define(PREFIX, "nanfuzz_").
-define(CALL_TIMEOUT, 10000).
%% memory.grow fails past this (as under wasmtime's limiter in the
%% `wasmtime' mode), so that no module grows without bound.
-define(MAX_MEMORY, 16 * 1024 * 1024).

main([Dir]) ->
    Files = lists:sort(filelib:wildcard(filename:join(Dir, "[0-9][0-9][0-9][0-9][0-9].wasm"))),
    {Micros, Tally} = timer:tc(fun() -> lists:foldl(fun run_one/2, #{}, Files) end),
    Get = fun(K) -> maps:get(K, Tally, 0) end,
    io:format(
        "nan-fuzz: ~w modules, ~w divergences, ~w skipped (stack exhausted), "
        "~w changed by the rewrite, ~w calls, ~w trapped, ~.1f s~n",
        [Get(modules), Get(divergences), Get(skipped), Get(changed), Get(calls), Get(traps),
         Micros / 1.0e6]
    ),
    halt(case Get(divergences) of 0 -> 0; _ -> 1 end);
main(_) ->
    io:format(standard_error, "usage: hb_beamr_nan_fuzz.erl DIR~n", []),
    halt(2).

bump(Key, N, Tally) ->
    maps:update_with(Key, fun(M) -> M + N end, N, Tally).

run_one(File, Tally0) ->
    os:getenv("HB_BEAMR_STRESS_TRACE") =:= "1" andalso io:format(standard_error, "~s~n", [File]),
    Base = filename:rootname(File),
    {ok, Raw} = file:read_file(File),
    {ok, Det} = file:read_file(Base ++ ".det.wasm"),
    Wasm = outcome(Det, wasm),
    Host = outcome(hb_beamr:compile(Raw, #{deterministic => true, target_cpu => host}), aot),
    Generic = outcome(hb_beamr:compile(Det, #{target_cpu => generic}), aot),
    Original = outcome(Raw, wasm),
    ok = file:write_file(Base ++ ".hb", Wasm),
    Tally = bump(modules, 1, Tally0),
    Exhausted = [O || O <- [Wasm, Host, Generic], binary:match(O, <<" exhausted">>) =/= nomatch],
    Lines = binary:split(Wasm, <<"\n">>, [global, trim]),
    Counted = bump(traps, length([L || L <- Lines, binary:match(L, <<" trap">>) =/= nomatch]),
                   bump(calls, length(Lines) - 1, Tally)),
    if
        Exhausted =/= [] ->
            bump(skipped, 1, Counted);
        Wasm =:= Host, Wasm =:= Generic ->
            bump(changed, case Original of Wasm -> 0; _ -> 1 end, Counted);
        true ->
            io:format("DIVERGENCE ~s~n--- wasm~n~s--- aot host~n~s--- aot generic~n~s",
                      [File, Wasm, Host, Generic]),
            bump(divergences, 1, Counted)
    end.

%% What a module does: one line per call (each wrapper twice, in name
%% order), then its memory's size and CRC-32.
outcome({ok, Aot}, aot) ->
    outcome(Aot, aot);
outcome({error, Reason}, _Mode) ->
    iolist_to_binary(io_lib:format("compile error ~p~n", [Reason]));
outcome(Bytes, Mode) ->
    case hb_beamr:start(Bytes, Mode, #{wasm_stack => 1024 * 1024, max_memory => ?MAX_MEMORY}) of
        {ok, WASM, _Imports, Exports} ->
            Names = lists:sort([N || {func, N, _} <- Exports, binary:match(N, <<?PREFIX>>) =:= {0, 8}]),
            try
                Calls = [call_line(WASM, N) || N <- Names, _ <- [1, 2]],
                iolist_to_binary([Calls, memory_line(WASM)])
            after
                hb_beamr:stop(WASM)
            end;
        {error, Reason} ->
            iolist_to_binary(io_lib:format("start error ~p~n", [Reason]))
    end.

call_line(WASM, Name) ->
    Result = hb_beamr:call(WASM, Name, [], fun hb_beamr:stub/3, #{}, #{timeout => ?CALL_TIMEOUT}),
    Tail =
        case Result of
            {ok, Values, _} ->
                ["ok" | [[" ", integer_to_list(V band (1 bsl 64 - 1))] || V <- Values]];
            {error, {wasm_trap, Message}} ->
                case binary:match(Message, <<"stack overflow">>) of
                    nomatch -> "trap";
                    _ -> "exhausted"
                end;
            Other ->
                io_lib:format("error ~p", [Other])
        end,
    [Name, " ", Tail, "\n"].

memory_line(WASM) ->
    case hb_beamr_io:size(WASM) of
        {ok, Size} when Size > 0 ->
            {ok, Bytes} = hb_beamr_io:read(WASM, 0, Size),
            io_lib:format("memory ~w ~w~n", [Size, erlang:crc32(Bytes)]);
        _ ->
            "memory none\n"
    end.
