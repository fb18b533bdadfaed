%%% @private
%%% @doc Loader and stubs of hb_beamr's NIF (`priv/hb_beamr_nif.so').
%%%
%%% This module is internal: use {@link hb_beamr} and {@link hb_beamr_io}.
%%% Every function hands a command to an instance's native thread and
%%% returns at once: an integer request id (the reply arrives later as
%%% `{hb_beamr, Id, Message}'), `ok', or `{error, Reason}'.
%%%
%%% If the shared library cannot be loaded, the module still loads and every
%%% function raises `nif_not_loaded'; {@link hb_beamr:start/2} turns that into
%%% `{error, driver_load_failed}'.
-module(hb_beamr_nif).

-export([start/7, call/4, call_fuel/6, fuel/1, add_fuel/2, import_response/3, abort_import/2]).
-export([size/1, read/3, write/3, send_raw/2, stop/1, timeout/2]).
-export([live_instances/0, loaded/0, priv_dir/0, guarded/1]).
-export([snapshot/1, snapshot_delta/3, restore/2, deserialize/2, retire/1]).
-export([image/1, image_of/1, image_info/1]).
-export([meter_version/0]).
-export([module_stats/0, purge_modules/0]).
-export([memo_get/2, memo_put/3, memo_stats/0]).

-on_load(init/0).

-type reply() :: non_neg_integer() | {error, term()}.
-export_type([reply/0]).

-define(NOT_LOADED, erlang:nif_error(nif_not_loaded)).

init() ->
    case erlang:load_nif(filename:join(priv_dir(), "hb_beamr_nif"), 0) of
        ok ->
            ok;
        {error, {reload, _}} ->
            ok;
        {error, Reason} ->
            logger:warning("hb_beamr: could not load its NIF: ~p", [Reason]),
            ok
    end.

%% @doc The directory the NIF libraries are loaded from.
-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(hb_beamr) of
        {error, bad_name} ->
            Ebin = filename:dirname(code:which(?MODULE)),
            filename:join(filename:dirname(Ebin), "priv");
        Dir ->
            Dir
    end.

%% @doc Whether the NIF library is loaded.
-spec loaded() -> boolean().
loaded() ->
    try live_instances() of
        N when is_integer(N) -> true
    catch
        error:nif_not_loaded -> false
    end.

%% @doc Runs a request to this NIF; a library that did not load is the
%% error value `{error, driver_load_failed}' rather than an exception.
-spec guarded(fun(() -> Result)) -> Result | {error, driver_load_failed}.
guarded(Fun) ->
    try
        Fun()
    catch
        error:nif_not_loaded -> {error, driver_load_failed}
    end.

%% @doc Starts an instance for the Erlang worker process `Worker', with
%% `{MaxMemoryBytes (0: the module's), WasmStackBytes, NativeStackBytes,
%% {ModulesMaxBytes, ModulesIdleBytes, Share}}' (the bounds of the registry
%% of shared modules from now on; without `Share' the instance loads its
%% own module).
%% With `ServeImports', imports called during instantiation come to the
%% caller as `{import, ...}' replies, as in a call. With `Deterministic',
%% bytecode is rewritten to canonicalize NaNs, and an AOT file must have
%% been compiled so. With `Fuel' >= 0 the instance is metered (bytecode
%% rewritten after the other rewrites, an AOT file compiled so) with that
%% start fuel; -1: not metered. With an `Image' ({@link image/1}; `none':
%% none) the instance is a fork: it takes the image's state right after
%% instantiation, or the start fails.
-spec start(pid(), binary(), wasm | aot,
            {non_neg_integer(), pos_integer(), pos_integer(),
             {non_neg_integer(), non_neg_integer(), boolean()}},
            boolean(), {boolean(), integer()}, reference() | none) -> reply().
start(_Worker, _Bytes, _Mode, _Limits, _ServeImports, _Rewrites, _Image) -> ?NOT_LOADED.

%% @doc Calls a function by name or table index; `Stub' serves imports with zeros.
-spec call(pid(), string() | binary() | non_neg_integer(), list(), boolean()) -> reply().
call(_Worker, _Target, _Args, _Stub) -> ?NOT_LOADED.

%% @doc Calls a function of a metered instance: `Budget' (-1: none) sets
%% its fuel first; with `AskFuel', running out of fuel comes to the caller
%% as the import `hb_beamr'.`out_of_fuel' `[Needed]', answered with
%% `[More]' (go on) or `[]' (stop).
-spec call_fuel(pid(), string() | binary() | non_neg_integer(), list(), boolean(),
                integer(), boolean()) -> reply().
call_fuel(_Worker, _Target, _Args, _Stub, _Budget, _AskFuel) -> ?NOT_LOADED.

%% @doc `{AbiVersion, CostTableVersion}' of the metering this runtime does.
-spec meter_version() -> {pos_integer(), pos_integer()}.
meter_version() -> ?NOT_LOADED.

%% @doc A metered instance's fuel: `{execution_result, #{remaining, used}}' arrives.
-spec fuel(pid()) -> reply().
fuel(_Worker) -> ?NOT_LOADED.

%% @doc Adds fuel to a metered instance: `ok' arrives.
-spec add_fuel(pid(), non_neg_integer()) -> reply().
add_fuel(_Worker, _More) -> ?NOT_LOADED.

%% @doc Answers the pending import of call `Id'.
-spec import_response(pid(), non_neg_integer(), list()) -> ok | {error, term()}.
import_response(_Worker, _Id, _Results) -> ?NOT_LOADED.

%% @doc Aborts the pending import of call `Id'.
-spec abort_import(pid(), non_neg_integer()) -> ok.
abort_import(_Worker, _Id) -> ?NOT_LOADED.

%% @doc Asks for the size of linear memory.
-spec size(pid()) -> reply().
size(_Worker) -> ?NOT_LOADED.

%% @doc Asks for `Length' bytes of linear memory at `Offset'.
-spec read(pid(), non_neg_integer(), non_neg_integer()) -> reply().
read(_Worker, _Offset, _Length) -> ?NOT_LOADED.

%% @doc Writes a binary into linear memory (O(1) here: a large binary goes to
%% the instance thread by reference, and that thread copies it).
-spec write(pid(), non_neg_integer(), binary()) -> reply().
write(_Worker, _Offset, _Data) -> ?NOT_LOADED.

%% @doc Sends a raw command (`term_to_binary/1' of the original protocol).
-spec send_raw(pid(), binary()) -> ok | {error, term()}.
send_raw(_Worker, _Command) -> ?NOT_LOADED.

%% @doc Stops an instance (idempotent).
-spec stop(pid()) -> ok.
stop(_Worker) -> ?NOT_LOADED.

%% @doc Stops call `Id' inside WebAssembly: it ran past its timeout.
-spec timeout(pid(), non_neg_integer()) -> ok.
timeout(_Worker, _Id) -> ?NOT_LOADED.

%% @doc Takes a snapshot of the instance (memory, mutable globals, module
%% fingerprint); `{execution_result, Snapshot}' arrives.
-spec snapshot(pid()) -> reply().
snapshot(_Worker) -> ?NOT_LOADED.

%% @doc Retires the instance: in turn, a snapshot (`{execution_result,
%% Snapshot}' arrives), then every later call is refused.
-spec retire(pid()) -> reply().
retire(_Worker) -> ?NOT_LOADED.

%% @doc Takes a delta snapshot against `Base' (with `HashOnly', hashing
%% every unit even where the kernel tracks written pages);
%% `{execution_result, Delta}' arrives.
-spec snapshot_delta(pid(), binary(), boolean()) -> reply().
snapshot_delta(_Worker, _Base, _HashOnly) -> ?NOT_LOADED.

%% @doc Restores a snapshot or a chain `[Full, Delta, ...]'; `ok' arrives.
-spec restore(pid(), binary() | [binary()]) -> reply().
restore(_Worker, _Snapshot) -> ?NOT_LOADED.

%% @doc The image of a snapshot or a chain `[Full, Delta, ...]' (its
%% memory in a sealed memfd, which forks map copy-on-write): `{ok, Image}'
%% or `{error, Reason}', at once (a dirty NIF: it writes the whole memory).
-spec image(binary() | [binary()]) -> {ok, reference()} | {error, term()}.
image(_Snapshot) -> ?NOT_LOADED.

%% @doc The image of the instance's state now, made on its thread;
%% `{execution_result, Image}' arrives.
-spec image_of(pid()) -> reply().
image_of(_Worker) -> ?NOT_LOADED.

%% @doc `{MemorySize, ModuleFingerprint}' of an image.
-spec image_info(reference()) -> {non_neg_integer(), binary()}.
image_info(_Image) -> ?NOT_LOADED.

%% @doc Writes raw memory at 0, grown to its size first; `ok' arrives.
-spec deserialize(pid(), binary()) -> reply().
deserialize(_Worker, _Memory) -> ?NOT_LOADED.

%% @doc How many instances are live.
-spec live_instances() -> non_neg_integer().
live_instances() -> ?NOT_LOADED.

%% @doc The shared-module registry's counters (see hb_beamr:module_stats/0).
-spec module_stats() -> #{atom() => non_neg_integer()}.
module_stats() -> ?NOT_LOADED.

%% @doc Frees the loaded modules without a live instance; returns how many.
-spec purge_modules() -> non_neg_integer().
purge_modules() -> ?NOT_LOADED.

%% @doc The value kept by {@link memo_put/3} for this very binary (by
%% identity: the same off-heap bytes, not equal ones) under `Tag', or
%% `none'. What a start works out about a module's bytes (a seal found
%% good) is kept there, so that starting the same binary again reads none
%% of them.
-spec memo_get(binary(), binary()) -> {ok, term()} | none.
memo_get(_Binary, _Tag) -> ?NOT_LOADED.

%% @doc Keeps `Value' for this very binary under `Tag' (only a value that
%% follows from the binary's bytes and what `Tag' names); false when the
%% binary is too small to be known by identity. Bounded: the least
%% recently used binaries are forgotten first.
-spec memo_put(binary(), binary(), term()) -> boolean().
memo_put(_Binary, _Tag, _Value) -> ?NOT_LOADED.

%% @doc How many binaries are known by identity, and how many bytes they
%% keep alive.
-spec memo_stats() -> {non_neg_integer(), non_neg_integer()}.
memo_stats() -> ?NOT_LOADED.
