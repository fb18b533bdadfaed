%%% @doc start(Bytecode, aot) through the compile cache (hb_beamr_aot_cache):
%%% compiled once for concurrent starts, then served from memory and from
%%% disk; an altered cache file is recompiled, never loaded.
-module(hb_beamr_cache_tests).
-include_lib("eunit/include/eunit.hrl").
-include_lib("kernel/include/file.hrl").

-import(hb_beamr_test_util, [fixture/1]).

with_cache_dir(Fun) ->
    with_cache_dir(undefined, Fun).

%% With a fresh cache directory and `aot_cache_max_bytes' = `Max'
%% (`undefined': the default).
with_cache_dir(Max, Fun) ->
    Dir = filename:join(["/tmp", "hb_beamr_cache_" ++ integer_to_list(erlang:unique_integer([positive]))]),
    Previous = application:get_env(hb_beamr, cache_dir),
    PreviousMax = application:get_env(hb_beamr, aot_cache_max_bytes),
    ok = application:set_env(hb_beamr, cache_dir, Dir),
    ok = set_max(Max),
    ok = hb_beamr_aot_cache:forget(),
    try
        Fun(Dir)
    after
        case Previous of
            {ok, D} -> application:set_env(hb_beamr, cache_dir, D);
            undefined -> application:unset_env(hb_beamr, cache_dir)
        end,
        case PreviousMax of
            {ok, M} -> application:set_env(hb_beamr, aot_cache_max_bytes, M);
            undefined -> application:unset_env(hb_beamr, aot_cache_max_bytes)
        end,
        ok = hb_beamr_aot_cache:forget(),
        _ = file:del_dir_r(Dir)
    end.

mix(Bin) ->
    case hb_beamr:start(Bin, aot) of
        {ok, W, _, _} ->
            R = hb_beamr:call(W, "mix", [1000]),
            hb_beamr:stop(W),
            R;
        Error ->
            Error
    end.

mix_wasm(Wasm) ->
    {ok, W, _, _} = hb_beamr:start(Wasm, wasm),
    R = hb_beamr:call(W, "mix", [1000]),
    hb_beamr:stop(W),
    R.

compiles() ->
    maps:get(compiles, hb_beamr_aot_cache:stats()).

cache_test_() ->
    {timeout, 120, fun() -> with_cache_dir(fun(Dir) ->
        Wasm = fixture("compute.wasm"),
        {ok, W0, _, _} = hb_beamr:start(Wasm, wasm),
        Expected = hb_beamr:call(W0, "mix", [1000]),
        hb_beamr:stop(W0),
        % Eight concurrent starts, one compilation.
        Before = compiles(),
        Test = self(),
        Pids = [spawn(fun() -> Test ! {self(), mix(Wasm)} end) || _ <- lists:seq(1, 8)],
        [receive {P, R} -> ?assertEqual(Expected, R) after 60000 -> error(timeout) end || P <- Pids],
        ?assertEqual(Before + 1, compiles()),
        [File] = filelib:wildcard(filename:join([Dir, "aot", "*.aot"])),
        % From memory, then from disk.
        ?assertEqual(Expected, mix(Wasm)),
        ok = hb_beamr_aot_cache:forget(),
        ?assertEqual(Expected, mix(Wasm)),
        ?assertEqual(Before + 1, compiles()),
        % An altered file on disk is not loaded: compiled again.
        {ok, Bytes} = file:read_file(File),
        <<Head:100/binary, B, Tail/binary>> = Bytes,
        ok = file:write_file(File, <<Head/binary, (B bxor 1), Tail/binary>>),
        ok = hb_beamr_aot_cache:forget(),
        ?assertEqual(Expected, mix(Wasm)),
        ?assertEqual(Before + 2, compiles()),
        ?assertEqual({ok, Bytes}, file:read_file(File))
    end) end}.

%% start/3's deterministic option reaches the compilation (and the key).
deterministic_start_test() ->
    with_cache_dir(fun(_) ->
        Before = compiles(),
        {ok, W, _, _} = hb_beamr:start(fixture("compute.wasm"), aot, #{deterministic => true}),
        hb_beamr:stop(W),
        {ok, W2, _, _} = hb_beamr:start(fixture("compute.wasm"), aot),
        hb_beamr:stop(W2),
        ?assertEqual(Before + 2, compiles())
    end).

compile_errors_are_start_errors_test() ->
    with_cache_dir(fun(_) ->
        ?assertMatch({error, {compile_failed, _}}, hb_beamr:start(fixture("eh-unsupported.wasm"), aot)),
        ?assertMatch({error, {compile_failed, _}}, hb_beamr:start(<<0, "asm", 1, 0, 0, 0, 99>>, aot))
    end).

set_max(undefined) -> application:unset_env(hb_beamr, aot_cache_max_bytes);
set_max(Max) -> application:set_env(hb_beamr, aot_cache_max_bytes, Max).

refused(Why) ->
    maps:get(Why, maps:get(refused, hb_beamr_aot_cache:stats()), 0).

evicted() ->
    maps:get(evicted, hb_beamr_aot_cache:stats()).

entry_files(Dir) ->
    lists:sort(filelib:wildcard(filename:join([Dir, "aot", "*.aot"]))).

fac(Bin) ->
    case hb_beamr:start(Bin, aot) of
        {ok, W, _, _} ->
            R = hb_beamr:call(W, "fac", [5.0]),
            hb_beamr:stop(W),
            R;
        Error ->
            Error
    end.

%% The cache file for bytecode `Wasm' with options `Opts' (compiled into an
%% empty cache directory... or found by elimination): the one new file.
new_entry(Dir, Fun) ->
    Before = entry_files(Dir),
    Fun(),
    [File] = entry_files(Dir) -- Before,
    File.

%% Copying module B's sealed cache file over module A's makes start(A, aot)
%% compile A again (never run B), logged and counted; the same across
%% compile options; and a symlink in an entry's place is not followed.
swapped_cache_files_are_refused_test_() ->
    {timeout, 120, fun() -> with_cache_dir(fun(Dir) ->
        A = fixture("compute.wasm"),
        B = fixture("test.wasm"),
        Expected = mix_wasm(A),
        FileA = new_entry(Dir, fun() -> ?assertEqual(Expected, mix(A)) end),
        FileB = new_entry(Dir, fun() -> ?assertEqual({ok, [120.0]}, fac(B)) end),
        {ok, BytesA} = file:read_file(FileA),
        {ok, BytesB} = file:read_file(FileB),
        % B's file over A's: A's code runs, after a compilation.
        {ok, _} = file:copy(FileB, FileA),
        ok = hb_beamr_aot_cache:forget(),
        {C0, M0} = {compiles(), refused(mismatched)},
        ?assertEqual(Expected, mix(A)),
        ?assertEqual({C0 + 1, M0 + 1}, {compiles(), refused(mismatched)}),
        ?assertEqual({ok, BytesA}, file:read_file(FileA)),
        % And A's over B's.
        {ok, _} = file:copy(FileA, FileB),
        ok = hb_beamr_aot_cache:forget(),
        ?assertEqual({ok, [120.0]}, fac(B)),
        ?assertEqual({C0 + 2, M0 + 2}, {compiles(), refused(mismatched)}),
        ?assertEqual({ok, BytesB}, file:read_file(FileB)),
        % The same module compiled with other options is another module.
        FileD = new_entry(Dir, fun() ->
            {ok, W, _, _} = hb_beamr:start(A, aot, #{deterministic => true}),
            hb_beamr:stop(W)
        end),
        {ok, _} = file:copy(FileD, FileA),
        ok = hb_beamr_aot_cache:forget(),
        ?assertEqual(Expected, mix(A)),
        ?assertEqual({C0 + 4, M0 + 3}, {compiles(), refused(mismatched)}),
        ?assertEqual({ok, BytesA}, file:read_file(FileA)),
        % A symlink to B's file in A's place is not followed, and is
        % replaced (B's file stays as it is).
        ok = file:delete(FileA),
        ok = file:make_symlink(FileB, FileA),
        ok = hb_beamr_aot_cache:forget(),
        N0 = refused(not_regular),
        ?assertEqual(Expected, mix(A)),
        ?assertEqual({C0 + 5, N0 + 1}, {compiles(), refused(not_regular)}),
        ?assertMatch({ok, #file_info{type = regular}}, file:read_link_info(FileA)),
        ?assertEqual({ok, BytesA}, file:read_file(FileA)),
        ?assertEqual({ok, BytesB}, file:read_file(FileB))
    end) end}.

%% A file sealed before seals had bindings (hb_beamr:compile/1's, a valid
%% seal of this node) is a miss: compiled again, not an error.
old_seals_are_a_miss_test_() ->
    {timeout, 120, fun() -> with_cache_dir(fun(Dir) ->
        A = fixture("compute.wasm"),
        Expected = mix_wasm(A),
        FileA = new_entry(Dir, fun() -> ?assertEqual(Expected, mix(A)) end),
        {ok, BytesA} = file:read_file(FileA),
        {ok, Old} = hb_beamr:compile(A),
        ok = file:write_file(FileA, Old),
        ok = hb_beamr_aot_cache:forget(),
        {C0, U0} = {compiles(), refused(unbound)},
        ?assertEqual(Expected, mix(A)),
        ?assertEqual({C0 + 1, U0 + 1}, {compiles(), refused(unbound)}),
        ?assertEqual({ok, BytesA}, file:read_file(FileA)),
        % Then a hit.
        ok = hb_beamr_aot_cache:forget(),
        ?assertEqual(Expected, mix(A)),
        ?assertEqual({C0 + 1, U0 + 1}, {compiles(), refused(unbound)})
    end) end}.

%% Distinct entries of test.wasm (one per compile option set).
entry_opts() ->
    [#{opt_level => O, size_level => Sz} || O <- [0, 1, 2, 3], Sz <- [0, 3]].

compile_entry(Opts) ->
    {ok, _} = hb_beamr_aot_cache:compiled(fixture("test.wasm"), Opts),
    ok.

%% Sizes of the entries for `Opts', measured in a cache without a budget
%% (names differ from one cache directory to the next: its key).
entry_sizes(OptsList) ->
    with_cache_dir(infinity, fun(Dir) ->
        [begin
             File = new_entry(Dir, fun() -> compile_entry(Opts) end),
             {ok, #file_info{size = Size}} = file:read_file_info(File),
             {Opts, Size}
         end || Opts <- OptsList]
    end).

set_age(File, SecondsAgo) ->
    T = os:system_time(second) - SecondsAgo,
    ok = file:write_file_info(File, #file_info{mtime = T, atime = T}, [{time, posix}]).

%% The disk cache keeps to its budget, evicting the least recently used
%% entries (a disk hit counts as a use).
budget_evicts_least_recently_used_test_() ->
    {timeout, 120, fun() ->
        Measured = entry_sizes(lists:sublist(entry_opts(), 4)),
        % The smallest is E2, so that E1, E2, E3 fit when E1, E3, E4 do.
        [{O2, _} | Others] = lists:keysort(2, Measured),
        [{O1, S1}, {O3, S3}, {O4, S4}] = Others,
        Max = S1 + S3 + S4,
        with_cache_dir(Max, fun(Dir) ->
            Ev0 = evicted(),
            [F1, F2, F3] = [new_entry(Dir, fun() -> compile_entry(O) end) || O <- [O1, O2, O3]],
            [set_age(F, Age) || {F, Age} <- [{F1, 300}, {F2, 200}, {F3, 100}]],
            % A disk hit on E1 makes it the most recently used.
            ok = hb_beamr_aot_cache:forget(),
            C0 = compiles(),
            compile_entry(O1),
            ?assertEqual(C0, compiles()),
            F4 = new_entry(Dir, fun() -> compile_entry(O4) end),
            ?assertEqual(lists:sort([F1, F3, F4]), entry_files(Dir)),
            ?assertEqual(Ev0 + 1, evicted()),
            ?assert(total(Dir) =< Max),
            % E2 is compiled again, E3 (now the oldest) goes: never over the budget.
            ok = hb_beamr_aot_cache:forget(),
            F2 = new_entry(Dir, fun() -> compile_entry(O2) end),
            ?assertEqual(C0 + 2, compiles()),
            ?assert(total(Dir) =< Max),
            ?assertNot(lists:member(F3, entry_files(Dir))),
            ?assertEqual(Ev0 + 2, evicted())
        end)
    end}.

total(Dir) ->
    lists:sum([filelib:file_size(F) || F <- entry_files(Dir)]).

%% Thirty modules, a budget of about three entries: the cache stays within
%% it (it used to keep them all).
budget_bounds_the_disk_cache_test_() ->
    {timeout, 120, fun() ->
        [{_, Size}] = entry_sizes([#{}]),
        Max = Size * 3 + Size div 2,
        with_cache_dir(Max, fun(Dir) ->
            Wasm = fixture("test.wasm"),
            [begin
                 % Thirty distinct modules: test.wasm with a custom section.
                 Module = <<Wasm/binary, 0, 6, 4, "hbxx", I>>,
                 {ok, _} = hb_beamr_aot_cache:compiled(Module, #{}),
                 ?assert(total(Dir) =< Max)
             end || I <- lists:seq(1, 30)],
            ?assert(length(entry_files(Dir)) =< 3),
            ?assert(length(entry_files(Dir)) >= 1)
        end)
    end}.

%% Eviction and clear/0 touch nothing that is not an entry: other files, an
%% entry-like name in lower case, a symlink (nor what it points to), a
%% directory, the key file, a cache directory that is a symlink.
eviction_deletes_only_entries_test_() ->
    {timeout, 120, fun() ->
        [{O1, S1}, {O2, _}] = entry_sizes([#{opt_level => 0}, #{opt_level => 1}]),
        with_cache_dir(S1, fun(Dir) ->
            AotDir = filename:join(Dir, "aot"),
            Outside = filename:join(Dir, "outside.aot"),
            ok = filelib:ensure_dir(filename:join(AotDir, "x")),
            ok = file:write_file(Outside, binary:copy(<<"o">>, 100000)),
            Hex = binary_to_list(binary:copy(<<"AB">>, 32)),
            Planted = [
                {file, "notes.txt"},
                {file, string:lowercase(Hex) ++ ".aot"},
                {file, Hex ++ ".aot.old"},
                {file, Hex ++ ".aot.12.tmp.x"},
                {symlink, binary_to_list(binary:copy(<<"CD">>, 32)) ++ ".aot"},
                {dir, binary_to_list(binary:copy(<<"EF">>, 32)) ++ ".aot"}
            ],
            [case Kind of
                 file -> ok = file:write_file(filename:join(AotDir, Name), binary:copy(<<"p">>, 100000));
                 symlink -> ok = file:make_symlink(Outside, filename:join(AotDir, Name));
                 dir -> ok = file:make_dir(filename:join(AotDir, Name)),
                        ok = file:write_file(filename:join([AotDir, Name, "inside"]), <<"i">>)
             end || {Kind, Name} <- Planted],
            Ev0 = evicted(),
            compile_entry(O1),
            compile_entry(O2),
            ?assertEqual(Ev0 + 1, evicted()),
            Kept = fun() ->
                [?assertMatch({ok, _}, file:read_link_info(filename:join(AotDir, N))) || {_, N} <- Planted],
                ?assertEqual(100000, filelib:file_size(Outside)),
                ?assertEqual({ok, <<"i">>}, file:read_file(filename:join([AotDir, element(2, lists:last(Planted)), "inside"]))),
                ?assertMatch({ok, _}, file:read_file_info(filename:join(Dir, "aot.key")))
            end,
            Kept(),
            % clear/0 deletes the entries, nothing else.
            ?assertEqual(ok, hb_beamr:clear_aot_cache()),
            ?assertEqual([], [F || F <- entry_files(Dir), is_entry(F)]),
            Kept()
        end)
    end}.

is_entry(File) ->
    Name = filename:basename(File, ".aot"),
    {ok, Info} = file:read_link_info(File),
    length(Name) =:= 64 andalso Name =:= string:uppercase(Name) andalso Info#file_info.type =:= regular.

%% clear/0: no entry left, memory emptied (the next start compiles), the
%% key kept; a cache directory that is a symlink is not cleared.
clear_test_() ->
    {timeout, 120, fun() -> with_cache_dir(fun(Dir) ->
        A = fixture("compute.wasm"),
        Expected = mix(A),
        ?assertEqual({ok, [120.0]}, fac(fixture("test.wasm"))),
        ?assertEqual(2, length(entry_files(Dir))),
        {ok, Key} = hb_beamr_seal:key(),
        ?assertEqual(ok, hb_beamr_aot_cache:clear()),
        ?assertEqual([], entry_files(Dir)),
        ?assertEqual({ok, Key}, hb_beamr_seal:key()),
        C0 = compiles(),
        ?assertEqual(Expected, mix(A)),
        ?assertEqual(C0 + 1, compiles()),
        % <cache_dir>/aot a symlink to another directory: not followed.
        Elsewhere = Dir ++ ".elsewhere",
        ok = file:rename(filename:join(Dir, "aot"), Elsewhere),
        ok = file:make_symlink(Elsewhere, filename:join(Dir, "aot")),
        try
            ?assertEqual(ok, hb_beamr_aot_cache:clear()),
            ?assertEqual(1, length(filelib:wildcard(filename:join(Elsewhere, "*.aot"))))
        after
            file:del_dir_r(Elsewhere)
        end
    end) end}.

%% The budget option is checked; 0 keeps nothing on disk.
budget_option_test_() ->
    {timeout, 120, fun() ->
        [with_cache_dir(Bad, fun(_) ->
             ?assertEqual({error, {invalid_option, {aot_cache_max_bytes, Bad}}},
                          hb_beamr:start(fixture("test.wasm"), aot)),
             ?assertEqual({error, {invalid_option, {aot_cache_max_bytes, Bad}}},
                          hb_beamr_aot_cache:compiled(fixture("test.wasm")))
         end) || Bad <- [-1, 1.5, "1000", unlimited]],
        with_cache_dir(0, fun(Dir) ->
            ?assertEqual({ok, [120.0]}, fac(fixture("test.wasm"))),
            ?assertEqual([], entry_files(Dir))
        end),
        with_cache_dir(infinity, fun(Dir) ->
            ?assertEqual({ok, [120.0]}, fac(fixture("test.wasm"))),
            ?assertEqual(1, length(entry_files(Dir)))
        end),
        ?assertEqual({ok, 1 bsl 30}, begin
            ok = application:unset_env(hb_beamr, aot_cache_max_bytes),
            hb_beamr_aot_cache:max_bytes()
        end)
    end}.
