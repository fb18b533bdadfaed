%%% @private
%%% @doc Every option hb_beamr takes, checked in one place: one validator
%%% per option (`validate_start_opt/2', `validate_compile_opt/2',
%%% `validate_call_opt/2', `validate_cache_opt/2', `validate_wasi_opt/2', in the style of ranch's
%%% `validate_transport_opt/3'), one entry point per API:
%%%
%%% <ul>
%%% <li>{@link start/1}: the options of {@link hb_beamr:start/3};</li>
%%% <li>{@link compile/1}: those of {@link hb_beamr:compile/2};</li>
%%% <li>{@link call/1}: the one option of {@link hb_beamr:call/6} hb_beamr
%%%     reads (`timeout'; the other keys are the import function's);</li>
%%% <li>{@link wasi/1}: those of {@link hb_beamr_wasi:run/2} and
%%%     {@link hb_beamr_wasi:new_state/1} (`validate_wasi_opt/2');</li>
%%% <li>{@link cache/0}, {@link cache_dir/0}, {@link max_bytes/0},
%%%     {@link aot_key/0}: the application environment of the compile cache
%%%     and the seal (`cache_dir', `aot_cache_max_bytes', `aot_key').</li>
%%% </ul>
%%%
%%% A bad option is always `{error, {invalid_option, {Name, Value}}}', an
%%% unknown one included (`{invalid_option, {colour, blue}}'); of several,
%%% the first in the order of the names.
-module(hb_beamr_opts).

-export([start/1, compile/1, call/1, wasi/1, wasi_limits/0, cache/0, cache_dir/0, max_bytes/0, aot_key/0]).
-export([fuel/1]).

-define(KIB, 1024).
-define(MIB, (1024 * 1024)).
-define(DEFAULT_MAX_BYTES, 1 bsl 30).
%% What a WASI guest may make the host hold (hb_beamr_wasi:limits()).
-define(WASI_LIMITS, #{max_io => 16 bsl 20, max_output => 64 bsl 20, fs_budget => 256 bsl 20}).

-type invalid() :: {invalid_option, {atom() | term(), term()}}.
%% The one shape of every refused option: its name and value.
-export_type([invalid/0]).

%% @doc {@link hb_beamr:start/3}'s options, checked, with every default
%% filled in (`import_fun' is `none' when not given, and `state' `#{}').
-spec start(term()) -> {ok, #{atom() => term()}} | {error, invalid()}.
start(Opts) ->
    validate(Opts, fun validate_start_opt/2, #{
        max_memory => 0,
        wasm_stack => 64 * ?KIB,
        native_stack => 4 * ?MIB,
        import_fun => none,
        state => #{},
        timeout => infinity,
        deterministic => false,
        node => node(),
        trust_aot => false,
        fuel => none,
        snapshot => none
    }).

%% @doc {@link hb_beamr:compile/2}'s options, checked, with every default
%% filled in. A `target_cpu' string is given as a binary (whether LLVM knows
%% the name is the compiler's to say, in the same shape).
-spec compile(term()) -> {ok, #{atom() => term()}} | {error, invalid()}.
compile(Opts) ->
    case validate(Opts, fun validate_compile_opt/2, #{
        opt_level => 3,
        size_level => 3,
        bounds_checks => true,
        target_cpu => host,
        deterministic => false,
        metered => false
    }) of
        {ok, #{target_cpu := Cpu} = Checked} when is_list(Cpu) ->
            {ok, Checked#{target_cpu := unicode:characters_to_binary(Cpu)}};
        Other ->
            Other
    end.

%% @doc {@link hb_beamr:call/6}'s `timeout' (default `infinity'), checked
%% with the fuel options `fuel' (a budget: a non-negative integer) and
%% `on_fuel_exhausted' (a fun of arity 3); the other keys belong to the
%% import function and are not looked at.
-spec call(term()) -> {ok, timeout()} | {error, invalid()}.
call(Opts) when is_map(Opts) ->
    Checked = [{Name, maps:get(Name, Opts)} || Name <- [fuel, on_fuel_exhausted, timeout],
                                              maps:is_key(Name, Opts)],
    case [Bad || {Name, Value} = Bad <- Checked, not validate_call_opt(Name, Value)] of
        [] -> {ok, maps:get(timeout, Opts, infinity)};
        [Bad | _] -> {error, {invalid_option, Bad}}
    end;
call(Opts) ->
    {error, {invalid_option, {opts, Opts}}}.

%% @doc {@link hb_beamr_wasi:run/2}'s options (which include
%% {@link hb_beamr_wasi:new_state/1}'s), checked, with the defaults of the
%% WASI state and its limits ({@link wasi_limits/0}) filled in; the
%% options passed on to {@link hb_beamr:start/3} (`max_memory',
%% `wasm_stack', `native_stack', `timeout') are checked as start checks
%% them and left out when not given. What a preopen holds is
%% hb_beamr_wasi_fs's to check (it reads the directories), in the same shape.
-spec wasi(term()) -> {ok, #{atom() => term()}} | {error, invalid()}.
wasi(Opts) ->
    validate(Opts, fun validate_wasi_opt/2, maps:merge(?WASI_LIMITS, #{
        args => [],
        env => #{},
        stdin => <<>>,
        stdout => <<>>,
        stderr => <<>>,
        tty => false,
        preopens => #{},
        clock => real,
        random => os,
        mode => wasm
    })).

%% @doc The limits of a WASI state whose options name none
%% (`max_io', `max_output', `fs_budget'; see hb_beamr_wasi:limits()).
-spec wasi_limits() -> #{max_io := pos_integer(), max_output := non_neg_integer(),
                         fs_budget := non_neg_integer() | infinity}.
wasi_limits() ->
    ?WASI_LIMITS.

%% @doc The compile cache's and the seal's application environment
%% (application `hb_beamr'), checked: `cache_dir' (a non-empty string or
%% binary, default `filename:basedir(user_cache, "hb_beamr")'),
%% `aot_cache_max_bytes' (a non-negative integer or `infinity', default
%% 1 GiB) and `aot_key' (a binary of at least 16 bytes, or `undefined':
%% the key file).
-spec cache() -> {ok, #{cache_dir := file:filename_all(),
                        aot_cache_max_bytes := non_neg_integer() | infinity,
                        aot_key := binary() | undefined}}
               | {error, invalid()}.
cache() ->
    Env = maps:with([cache_dir, aot_cache_max_bytes, aot_key],
                    maps:from_list(application:get_all_env(hb_beamr))),
    validate(Env, fun validate_cache_opt/2, #{
        cache_dir => default_cache_dir(),
        aot_cache_max_bytes => ?DEFAULT_MAX_BYTES,
        aot_key => undefined
    }).

%% @doc The cache directory (application env `cache_dir', see {@link cache/0}).
-spec cache_dir() -> {ok, file:filename_all()} | {error, invalid()}.
cache_dir() ->
    env(cache_dir, default_cache_dir()).

default_cache_dir() ->
    filename:basedir(user_cache, "hb_beamr").

%% @doc The disk cache's budget (application env `aot_cache_max_bytes',
%% see {@link cache/0}).
-spec max_bytes() -> {ok, non_neg_integer() | infinity} | {error, invalid()}.
max_bytes() ->
    env(aot_cache_max_bytes, ?DEFAULT_MAX_BYTES).

%% @doc The configured sealing key (application env `aot_key', see
%% {@link cache/0}), `undefined' where the key file is used.
-spec aot_key() -> {ok, binary() | undefined} | {error, invalid()}.
aot_key() ->
    env(aot_key, undefined).

env(Name, Default) ->
    case application:get_env(hb_beamr, Name) of
        undefined ->
            {ok, Default};
        {ok, Value} ->
            case validate_cache_opt(Name, Value) of
                true -> {ok, Value};
                false -> {error, {invalid_option, {Name, Value}}}
            end
    end.

%% Every option of `Opts' checked by `Validator' (names in order), then
%% merged over `Defaults'.
validate(Opts, Validator, Defaults) when is_map(Opts) ->
    case [{Name, Value} || {Name, Value} <- lists:sort(maps:to_list(Opts)),
                           not Validator(Name, Value)] of
        [] -> {ok, maps:merge(Defaults, Opts)};
        [Bad | _] -> {error, {invalid_option, Bad}}
    end;
validate(Opts, _Validator, _Defaults) ->
    {error, {invalid_option, {opts, Opts}}}.

%% One clause per option of start/3 (limits in bytes; see hb_beamr:start_opts()).
-spec validate_start_opt(term(), term()) -> boolean().
validate_start_opt(max_memory, V) -> is_integer(V) andalso V >= 0 andalso V < 1 bsl 48;
validate_start_opt(wasm_stack, V) -> is_integer(V) andalso V >= 4 * ?KIB andalso V =< 256 * ?MIB;
validate_start_opt(native_stack, V) -> is_integer(V) andalso V >= 256 * ?KIB andalso V =< 1024 * ?MIB;
validate_start_opt(import_fun, V) -> V =:= none orelse is_function(V, 3);
validate_start_opt(state, _) -> true;
validate_start_opt(timeout, V) -> is_timeout(V);
validate_start_opt(deterministic, V) -> is_boolean(V);
validate_start_opt(node, V) -> is_atom(V);
validate_start_opt(trust_aot, V) -> is_boolean(V);
validate_start_opt(fuel, V) -> V =:= none orelse is_fuel(V);
% A fork's state: a snapshot, a chain [Full, Delta, ...], or an image
% (hb_beamr:image/1; an image is a reference, local to its node).
validate_start_opt(snapshot, V) ->
    V =:= none orelse is_binary(V) orelse is_reference(V)
        orelse (is_list(V) andalso V =/= [] andalso lists:all(fun is_binary/1, V));
validate_start_opt(_, _) -> false.

%% One clause per option of compile/2 (see hb_beamr:compile_opts()).
-spec validate_compile_opt(term(), term()) -> boolean().
validate_compile_opt(opt_level, V) -> is_integer(V) andalso V >= 0 andalso V =< 3;
validate_compile_opt(size_level, V) -> is_integer(V) andalso V >= 0 andalso V =< 3;
% Memory bounds checks cannot be turned off (no guard pages).
validate_compile_opt(bounds_checks, V) -> V =:= true;
validate_compile_opt(target_cpu, V) ->
    V =:= host orelse V =:= generic
        orelse (is_list(V) andalso V =/= [] andalso is_binary(catch unicode:characters_to_binary(V)));
validate_compile_opt(deterministic, V) -> is_boolean(V);
validate_compile_opt(metered, V) -> is_boolean(V);
validate_compile_opt(_, _) -> false.

%% The options of call/6 that hb_beamr reads.
-spec validate_call_opt(timeout | fuel | on_fuel_exhausted, term()) -> boolean().
validate_call_opt(timeout, V) -> is_timeout(V);
validate_call_opt(fuel, V) -> is_fuel(V);
validate_call_opt(on_fuel_exhausted, V) -> is_function(V, 3).

%% Fuel: what the counter (a signed 64-bit global) can hold.
is_fuel(V) -> is_integer(V) andalso V >= 0 andalso V < 1 bsl 63.

%% @doc `ok' for an amount of fuel (an integer from 0 to 2^63 - 1), as the
%% `fuel' options and add_fuel/2 take it.
-spec fuel(term()) -> ok | {error, invalid()}.
fuel(V) ->
    case is_fuel(V) of
        true -> ok;
        false -> {error, {invalid_option, {fuel, V}}}
    end.

%% One clause per application env key of the cache and the seal.
-spec validate_cache_opt(term(), term()) -> boolean().
validate_cache_opt(cache_dir, V) when is_binary(V) -> V =/= <<>>;
validate_cache_opt(cache_dir, V) when is_list(V) -> V =/= [] andalso io_lib:char_list(V);
validate_cache_opt(aot_cache_max_bytes, V) -> V =:= infinity orelse (is_integer(V) andalso V >= 0);
validate_cache_opt(aot_key, V) -> V =:= undefined orelse (is_binary(V) andalso byte_size(V) >= 16);
validate_cache_opt(_, _) -> false.

%% hb_beamr_wasi:run/2 and new_state/1 (hb_beamr_wasi documents each).
validate_wasi_opt(args, V) -> is_list(V) andalso lists:all(fun is_text/1, V);
validate_wasi_opt(env, V) ->
    is_map(V) andalso lists:all(fun({K, X}) -> is_text(K) andalso is_text(X) end, maps:to_list(V));
validate_wasi_opt(Stream, V) when Stream =:= stdin; Stream =:= stdout; Stream =:= stderr ->
    is_binary(V) orelse (is_tuple(V) andalso tuple_size(V) =:= 2 andalso element(1, V) =:= host);
validate_wasi_opt(tty, V) -> is_boolean(V);
validate_wasi_opt(preopens, V) -> is_map(V);
validate_wasi_opt(clock, real) -> true;
validate_wasi_opt(clock, {fixed, Ns}) -> is_integer(Ns) andalso Ns >= 0;
validate_wasi_opt(random, os) -> true;
validate_wasi_opt(random, {seed, Seed}) -> is_integer(Seed);
validate_wasi_opt(max_io, V) -> is_integer(V) andalso V > 0;
validate_wasi_opt(max_output, V) -> is_integer(V) andalso V >= 0;
validate_wasi_opt(fs_budget, V) -> V =:= infinity orelse (is_integer(V) andalso V >= 0);
validate_wasi_opt(mode, V) -> V =:= wasm orelse V =:= aot;
validate_wasi_opt(import_fun, V) -> is_function(V, 3);
validate_wasi_opt(Name, V) when Name =:= max_memory; Name =:= wasm_stack;
                                Name =:= native_stack; Name =:= timeout ->
    validate_start_opt(Name, V);
validate_wasi_opt(_, _) -> false.

%% A string the guest sees as UTF-8: a binary, or characters.
is_text(V) when is_binary(V) -> true;
is_text(V) when is_list(V) ->
    try is_binary(unicode:characters_to_binary(V)) catch error:_ -> false end;
is_text(_) -> false.

is_timeout(infinity) -> true;
is_timeout(V) -> is_integer(V) andalso V >= 0.
