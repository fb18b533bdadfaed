#!/usr/bin/env escript
%%! -noshell
%%% @doc `make spec', the Erlang runner: the WebAssembly spec tests through
%%% hb_beamr's public API (start, call with an import fun serving the
%%% `spectest' host module, compile), in `wasm' and `aot' modes.
%%%
%%% Usage: hb_beamr_spec.erl MANIFEST_DIR OUT.md [wasm] [aot]
%%%
%%% MANIFEST_DIR is what `hb_beamr_spec extract' wrote (module binaries and
%%% manifest.eterm). Each file's steps run in order; every assertion the API
%%% can express is checked, the others are skipped with their reason. Values
%%% go through the API's conversions both ways: integers (given alternately
%%% in their unsigned and signed range), floats including -0.0, `infinity',
%%% `neg_infinity' and `nan'. Prints a table, writes it (with the skip
%%% reasons) to OUT.md, and exits 1 if anything failed.
-module(hb_beamr_spec).
-mode(compile).
-export([main/1]).

-define(CALL_TIMEOUT, 20000).
%% AOT compilation per module: a low optimisation level keeps the run short
%% (1, not 0: at 0 LLVM makes no tail calls, which return_call_indirect needs).
-define(AOT_OPTS, #{opt_level => 1}).

-define(NAN_VALUE, "an exact NaN (sign, payload): the API gives every NaN as `nan`").
-define(REF_VALUE, "reference values (funcref, externref) in the signature: not among the API's values").
-define(GLOBAL_GET, "reading an exported global: not in hb_beamr's API").
-define(REGISTER, "register: one module's exports as another's imports (hb_beamr does not link instances)").
-define(TAINTED, "follows a skipped step that changes this module's state (a skipped action, or a skipped module linked to it)").
-define(AOT_EH, "exception handling in AOT: WAMR's AOT compiler has none (such modules run as bytecode)").

%% @doc Runs the manifest in `Dir' in each mode given, writes the table to
%% `Out' and halts: 0 when nothing failed, 1 otherwise, 2 on bad arguments.
-spec main([string()]) -> no_return().
main([Dir, Out | Modes0]) ->
    Modes = [list_to_atom(M) || M <- Modes0],
    {ok, Files} = file:consult(filename:join(Dir, "manifest.eterm")),
    Started = erlang:monotonic_time(millisecond),
    Results = lists:append([run_mode(Dir, Mode, Files) || Mode <- Modes]),
    Seconds = (erlang:monotonic_time(millisecond) - Started) / 1000,
    Text = report(Results, Modes, Seconds),
    io:format("~ts", [Text]),
    ok = file:write_file(Out, unicode:characters_to_binary(Text)),
    Failed = lists:sum([F || #{failed := F} <- Results]),
    halt(case Failed of 0 -> 0; _ -> 1 end);
main(_) ->
    io:format(standard_error, "usage: hb_beamr_spec.erl MANIFEST_DIR OUT.md [wasm] [aot]~n", []),
    halt(2).

run_mode(Dir, Mode, Files) ->
    io:format(standard_error, "spec: ~s mode...~n", [Mode]),
    Self = self(),
    %% One file at a time per worker, two workers (two CPUs). The run's
    %% reference keeps another mode's messages apart.
    Run = make_ref(),
    Queue = lists:zip(lists:seq(1, length(Files)), Files),
    Workers = [spawn_link(fun() -> worker({Self, Run}, Dir, Mode) end) || _ <- [1, 2]],
    collect(Run, Queue, Workers, #{}, length(Files)).

collect(_Run, _Queue, Workers, Done, Total) when map_size(Done) =:= Total ->
    [W ! stop || W <- Workers],
    [R || {_, R} <- lists:sort(maps:to_list(Done))];
collect(Run, Queue, Workers, Done, Total) ->
    receive
        {ready, Run, W} ->
            case Queue of
                [{N, File} | Rest] ->
                    W ! {run, N, File},
                    collect(Run, Rest, Workers, Done, Total);
                [] ->
                    collect(Run, [], Workers, Done, Total)
            end;
        {done, Run, N, Result} ->
            collect(Run, Queue, Workers, Done#{N => Result}, Total)
    end.

worker({Parent, Run} = Boss, Dir, Mode) ->
    Parent ! {ready, Run, self()},
    receive
        {run, N, {file, Suite, Name, Commands}} ->
            os:getenv("HB_BEAMR_SPEC_VERBOSE") =:= false
                orelse io:format(standard_error, "spec: ~s ~s/~s~n", [Mode, Suite, Name]),
            Result = run_file(Dir, Mode, Suite, Name, Commands),
            os:getenv("HB_BEAMR_SPEC_VERBOSE") =:= false
                orelse io:format(standard_error, "spec: ~s ~s/~s done~n", [Mode, Suite, Name]),
            Parent ! {done, Run, N, Result},
            worker(Boss, Dir, Mode);
        stop ->
            ok
    end.

%%% One file

run_file(Dir, Mode, Suite, Name, Commands) ->
    S0 = #{dir => Dir, mode => Mode, current => none, named => #{}, instances => [],
           registered => #{},
           passed => 0, failed => 0, skipped => #{}, failures => []},
    S = lists:foldl(fun step/2, S0, Commands),
    [hb_beamr:stop(I) || I <- maps:get(instances, S)],
    #{suite => Suite, file => Name, mode => Mode,
      passed => maps:get(passed, S), failed => maps:get(failed, S),
      skipped => maps:get(skipped, S), failures => lists:reverse(maps:get(failures, S))}.

step({module, Line, Name, Wasm, Exceptions}, S = #{mode := Mode}) ->
    Target = case {Mode, Exceptions} of
        {aot, true} -> {skipped, ?AOT_EH};
        _ ->
            case load(S, Wasm) of
                {ok, I} -> {ok, I};
                {error, Why} -> {failed, Why}
            end
    end,
    S1 = set_module(S, Name, Target),
    case Target of
        {ok, I2} -> pass(S1#{instances := [I2 | maps:get(instances, S1)]});
        {skipped, Reason} -> skip(S1, Reason);
        {failed, Why2} -> fail(S1, Line, {module_refused, Why2})
    end;
step({skip_module, _Line, Name, Reason, Links}, S) ->
    %% Instantiating it would have changed the modules it links to.
    skip(set_module(taint_links(S, Links), Name, {skipped, Reason}), Reason);
step({register, _Line, As, Name}, S = #{registered := Registered}) ->
    skip(S#{registered := Registered#{As => module_of(S, Name)}}, ?REGISTER);
step({skip, _Line, Reason, Links}, S) ->
    skip(taint_links(S, Links), Reason);
step({action, Line, Action}, S) ->
    with_action(S, Line, Action, [], action);
step({assert_return, Line, Action, Expected}, S) ->
    with_action(S, Line, Action, Expected, fun(Result) ->
        case Result of
            {ok, Values} ->
                case matches(Expected, Values) of
                    true -> ok;
                    false -> {expected, Expected, got, Values}
                end;
            Other ->
                {expected, Expected, got, Other}
        end
    end);
step({assert_trap, Line, Action, Message}, S) ->
    with_action(S, Line, Action, [], fun(Result) -> trap(Result, Message) end);
step({assert_exhaustion, Line, Action, Message}, S) ->
    with_action(S, Line, Action, [], fun
        ({error, {wasm_trap, Why}} = R) ->
            case binary:match(Why, [<<"stack overflow">>, <<"exhausted">>]) of
                nomatch -> {expected_exhaustion, Message, got, R};
                _ -> ok
            end;
        (Other) ->
            {expected_exhaustion, Message, got, Other}
    end);
step({assert_module_trap, Line, Wasm, Message}, S) ->
    case load(S, Wasm) of
        {error, {instantiation_failed, _}} -> pass(S);
        {ok, I} -> hb_beamr:stop(I), fail(S, Line, {expected_start_trap, Message, got, started});
        Other -> fail(S, Line, {expected_start_trap, Message, got, Other})
    end;
step({Kind, Line, Wasm, Message}, S) when Kind =:= assert_invalid; Kind =:= assert_malformed ->
    case load(S, Wasm) of
        {error, _} -> pass(S);
        {ok, I} -> hb_beamr:stop(I), fail(S, Line, {Kind, Message, got, started})
    end.

%% Compiles (aot) and starts a module binary.
load(#{dir := Dir, mode := Mode}, Rel) ->
    {ok, Bin} = file:read_file(filename:join(Dir, Rel)),
    Code = case Mode of
        wasm -> {ok, Bin};
        aot -> compile(filename:join(Dir, Rel), Bin)
    end,
    case Code of
        {ok, C} ->
            case hb_beamr:start(C, Mode, #{import_fun => fun spectest/3}) of
                {ok, I, _Imports, _Exports, _State} -> {ok, I};
                {error, _} = E -> E
            end;
        {error, _} = E ->
            E
    end.

%% Compiles to AOT, keeping the result next to the module (`N.aot`, the
%% plain AOT file inside hb_beamr's seal, for the Rust runner's AOT mode).
compile(Path, Bin) ->
    case hb_beamr:compile(Bin, ?AOT_OPTS) of
        {ok, Sealed} ->
            {ok, Aot} = hb_beamr_seal:open(Sealed, false),
            ok = file:write_file(iolist_to_binary([filename:rootname(Path), ".aot"]), Aot),
            {ok, Sealed};
        Error ->
            Error
    end.

set_module(S = #{named := Named}, undefined, Target) ->
    S#{current := Target, named := Named};
set_module(S = #{named := Named}, Name, Target) ->
    S#{current := Target, named := Named#{Name => Target}}.

module_of(#{current := Current}, undefined) -> Current;
module_of(#{named := Named}, Name) -> maps:get(Name, Named, none).

%% Runs an action when the API can express it, then checks its result. A
%% skipped bare action (or call with reference types) taints its module:
%% its state is not what the steps after it expect.
with_action(S, Line, Action, Expected, Check) ->
    case expressible(Action, Expected) of
        {skip, Reason} when Check =:= action; Reason =:= ?REF_VALUE ->
            %% Functions with reference types are the ones that change
            %% tables: skipping one leaves its module in another state.
            skip(taint(S, module_of(S, action_module(Action))), Reason);
        {skip, Reason} ->
            skip(S, Reason);
        ok ->
            {invoke, Mod, Name, Args, _Refs} = Action,
            case module_of(S, Mod) of
                {skipped, Reason} ->
                    skip(S, Reason);
                {failed, Why} ->
                    fail(S, Line, {module_refused, Why});
                none ->
                    fail(S, Line, no_module);
                {tainted, _} ->
                    skip(S, ?TAINTED);
                {ok, I} ->
                    Result = hb_beamr:call(I, Name, to_api(Line, Args), fun spectest/3, #{},
                                           #{timeout => ?CALL_TIMEOUT}),
                    case check(Check, plain(Result)) of
                        ok -> pass(S);
                        Why -> fail(S, Line, {Name, Args, Why})
                    end
            end
    end.

check(action, {ok, _}) -> ok;
check(action, Other) -> {unexpected, Other};
check(Fun, Result) -> Fun(Result).

action_module({invoke, Mod, _, _, _}) -> Mod;
action_module({get, Mod, _}) -> Mod.

taint_links(S = #{registered := Registered}, Links) ->
    lists:foldl(fun(Link, Acc) ->
        case maps:find(Link, Registered) of
            {ok, Target} -> taint(Acc, Target);
            error -> Acc
        end
    end, S, Links).

%% Marks a module (by its target) as no longer in the state the file expects.
taint(S = #{current := Current, named := Named, registered := Registered}, {ok, I}) ->
    Swap = fun({ok, X}) when X =:= I -> {tainted, I}; (Other) -> Other end,
    S#{current := Swap(Current), named := maps:map(fun(_, V) -> Swap(V) end, Named),
       registered := maps:map(fun(_, V) -> Swap(V) end, Registered)};
taint(S, _) ->
    S.

plain({ok, Values, _State}) -> {ok, Values};
plain(Other) -> Other.

trap({error, {wasm_trap, _}}, _Message) -> ok;
trap(Other, Message) -> {expected_trap, Message, got, Other}.

%% The `spectest' host module's functions: they print, here nothing.
spectest(State, #{module := <<"spectest">>, func := <<"print", _/binary>>}, _Opts) ->
    {ok, [], State};
spectest(_State, Request, _Opts) ->
    error({unexpected_import, Request}).

%%% What the API can express

expressible({get, _, _}, _) ->
    {skip, ?GLOBAL_GET};
expressible({invoke, _, _, Args, Refs}, Expected) ->
    case Refs orelse lists:any(fun is_ref/1, Args ++ flatten(Expected)) of
        true -> {skip, ?REF_VALUE};
        false ->
            case lists:any(fun exact_nan/1, Args ++ flatten(Expected)) of
                true -> {skip, ?NAN_VALUE};
                false -> ok
            end
    end.

flatten(Expected) ->
    lists:append([case E of {either, All} -> flatten(All); _ -> [E] end || E <- Expected]).

is_ref({ref_null, _}) -> true;
is_ref({ref_extern, _}) -> true;
is_ref(ref_func) -> true;
is_ref(_) -> false.

%% A NaN given by its bits, other than the one the API's `nan' stands for
%% (as an argument) or at all (as a result: the API cannot show the bits).
exact_nan({f32, Bits}) when is_integer(Bits) -> is_nan32(Bits);
exact_nan({f64, Bits}) when is_integer(Bits) -> is_nan64(Bits);
exact_nan(_) -> false.

is_nan32(Bits) -> (Bits band 16#7f800000) =:= 16#7f800000 andalso (Bits band 16#7fffff) =/= 0.
is_nan64(Bits) ->
    (Bits band 16#7ff0000000000000) =:= 16#7ff0000000000000
        andalso (Bits band 16#fffffffffffff) =/= 0.

%% Arguments as the API takes them. Integers alternate between the unsigned
%% and the signed range by line, so that both conversions are exercised.
to_api(Line, Args) ->
    [arg(Line rem 2, A) || A <- Args].

arg(0, {i32, X}) -> X;
arg(1, {i32, X}) -> signed(X, 32);
arg(0, {i64, X}) -> X;
arg(1, {i64, X}) -> signed(X, 64);
arg(_, {f32, Bits}) -> float32(Bits);
arg(_, {f64, Bits}) -> float64(Bits).

signed(X, N) when X >= 1 bsl (N - 1) -> X - (1 bsl N);
signed(X, _) -> X.

float32(16#7f800000) -> infinity;
float32(16#ff800000) -> neg_infinity;
float32(Bits) -> <<F:32/float>> = <<Bits:32>>, F.

float64(16#7ff0000000000000) -> infinity;
float64(16#fff0000000000000) -> neg_infinity;
float64(Bits) -> <<F:64/float>> = <<Bits:64>>, F.

%%% Results

matches(Expected, Values) when length(Expected) =:= length(Values) ->
    lists:all(fun({E, V}) -> match(E, V) end, lists:zip(Expected, Values));
matches(_, _) ->
    false.

match({either, All}, V) -> lists:any(fun(E) -> match(E, V) end, All);
match({i32, X}, V) when is_integer(V) -> X =:= V band 16#ffffffff;
match({i64, X}, V) when is_integer(V) -> X =:= V band 16#ffffffffffffffff;
match({f32, Nan}, nan) when Nan =:= nan_canonical; Nan =:= nan_arithmetic -> true;
match({f64, Nan}, nan) when Nan =:= nan_canonical; Nan =:= nan_arithmetic -> true;
match({f32, Bits}, V) when is_integer(Bits) -> bits32(V) =:= Bits;
match({f64, Bits}, V) when is_integer(Bits) -> bits64(V) =:= Bits;
match(_, _) -> false.

bits32(infinity) -> 16#7f800000;
bits32(neg_infinity) -> 16#ff800000;
bits32(F) when is_float(F) -> <<B:32>> = <<F:32/float>>, B;
bits32(_) -> none.

bits64(infinity) -> 16#7ff0000000000000;
bits64(neg_infinity) -> 16#fff0000000000000;
bits64(F) when is_float(F) -> <<B:64>> = <<F:64/float>>, B;
bits64(_) -> none.

%%% Counting

pass(S = #{passed := P}) -> S#{passed := P + 1}.

fail(S = #{failed := F, failures := Fs}, Line, Why) ->
    S#{failed := F + 1, failures := [{Line, Why} | Fs]}.

skip(S = #{skipped := Sk}, Reason) ->
    S#{skipped := maps:update_with(Reason, fun(N) -> N + 1 end, 1, Sk)}.

%%% The report

report(Results, Modes, Seconds) ->
    Keys = lists:usort([{Su, F} || #{suite := Su, file := F} <- Results]),
    Get = fun(Key, Mode) ->
        hd([R || R = #{suite := Su, file := F, mode := M} <- Results, {Su, F} =:= Key, M =:= Mode])
    end,
    Cell = fun(#{passed := P, failed := F, skipped := Sk}) ->
        io_lib:format("~w / ~w / ~w", [P, F, lists:sum(maps:values(Sk))])
    end,
    Header = ["| suite | file |", [[" ", atom_to_list(M), " (passed / failed / skipped) |"] || M <- Modes], "\n",
              "|---|---|", [["---:|"] || _ <- Modes], "\n"],
    Rows = [["| ", Su, " | ", F, " |", [[" ", Cell(Get(K, M)), " |"] || M <- Modes], "\n"]
            || K = {Su, F} <- Keys],
    Totals = ["| **total** | |",
              [[" **", total(Results, M), "** |"] || M <- Modes], "\n"],
    Skips = [["\nSkipped in `", atom_to_list(M), "` mode, by reason:\n\n",
              [io_lib:format("- ~w: ~ts\n", [N, R]) || {R, N} <- skip_reasons(Results, M)]]
             || M <- Modes],
    Failures = [[io_lib:format("- ~s ~s/~s line ~w: ~tp\n", [M, Su, F, L, Why])
                 || {L, Why} <- Fs]
                || #{suite := Su, file := F, mode := M, failures := Fs} <- Results],
    FailText = case lists:append(Failures) of
        [] -> "\nNo failures.\n";
        _ -> ["\nFailures:\n\n", Failures]
    end,
    lists:flatten(io_lib:format("~ts", [[Header, Rows, Totals, Skips, FailText,
        io_lib:format("\n(~.1f s)\n", [Seconds])]])).

total(Results, Mode) ->
    Sum = fun(Key) -> lists:sum([maps:get(Key, R) || R = #{mode := M} <- Results, M =:= Mode]) end,
    Skipped = lists:sum([lists:sum(maps:values(Sk)) || #{mode := M, skipped := Sk} <- Results, M =:= Mode]),
    io_lib:format("~w / ~w / ~w", [Sum(passed), Sum(failed), Skipped]).

skip_reasons(Results, Mode) ->
    All = lists:foldl(fun(#{skipped := Sk}, Acc) ->
        maps:fold(fun(R, N, A) -> maps:update_with(R, fun(X) -> X + N end, N, A) end, Acc, Sk)
    end, #{}, [R || R = #{mode := M} <- Results, M =:= Mode]),
    lists:reverse(lists:keysort(2, maps:to_list(All))).
