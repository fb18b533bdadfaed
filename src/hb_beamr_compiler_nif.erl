%%% @private
%%% @doc Loader and stub of hb_beamr's AOT compiler NIF
%%% (`priv/hb_beamr_compiler_nif.so', built only where LLVM 19 is installed).
%%%
%%% Internal: use {@link hb_beamr:compile/2}. The library is loaded when this
%%% module is first used, so that nodes that never compile never load LLVM.
%%% Where the library is missing, the module still loads and
%%% {@link compile/6} raises `nif_not_loaded'.
%%%
%%% Compiles run on the library's compiler thread, one at a time: the NIF
%%% only queues the module and returns at once, and the result comes back
%%% as a message (`{hb_beamr_compiled, Tag, Result}'). Waiting for the
%%% compiler holds no scheduler, dirty or not.
-module(hb_beamr_compiler_nif).

-export([compile/6, submit/8, loaded/0]).

-on_load(init/0).

init() ->
    Path = filename:join(hb_beamr_nif:priv_dir(), "hb_beamr_compiler_nif"),
    case erlang:load_nif(Path, 0) of
        ok -> ok;
        {error, {reload, _}} -> ok;
        {error, Reason} ->
            logger:notice("hb_beamr: no AOT compiler: ~p", [Reason]),
            ok
    end.

%% @doc Whether the compiler library is loaded.
-spec loaded() -> boolean().
loaded() ->
    % A target that is not one is refused before anything is queued.
    try submit(make_ref(), <<>>, 0, 0, true, not_a_cpu, false, false) of
        _ -> true
    catch
        error:nif_not_loaded -> false
    end.

%% @doc Compiles WebAssembly bytes to a WAMR AOT file; `Deterministic'
%% canonicalizes the module's NaNs first and marks the file so; `Metered'
%% meters it last (hb_beamr_meter) and marks the file with its
%% `hb_beamr.meter' section (`Rewrites' is `Deterministic' or
%% `{Deterministic, Metered}'). Queues the module for the compiler thread
%% ({@link submit/8}) and waits for its
%% result in a receive: the caller holds no scheduler meanwhile. Raises
%% `nif_not_loaded' where the library is missing.
-spec compile(binary(), 0..3, 0..3, boolean(), host | generic | binary(),
              boolean() | {boolean(), boolean()}) ->
    {ok, binary()} | {error, term()}.
compile(Wasm, OptLevel, SizeLevel, BoundsChecks, TargetCpu, Deterministic) when is_boolean(Deterministic) ->
    compile(Wasm, OptLevel, SizeLevel, BoundsChecks, TargetCpu, {Deterministic, false});
compile(Wasm, OptLevel, SizeLevel, BoundsChecks, TargetCpu, {Deterministic, Metered}) ->
    Tag = make_ref(),
    case submit(Tag, Wasm, OptLevel, SizeLevel, BoundsChecks, TargetCpu, Deterministic, Metered) of
        ok ->
            % The compiler thread answers every request it queued, once.
            receive
                {hb_beamr_compiled, Tag, Result} -> Result
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Queues a compile and returns at once: `ok', after which the calling
%% process gets `{hb_beamr_compiled, Tag, {ok, Aot} | {error, Reason}}'
%% exactly once, or `{error, Reason}' (`{invalid_option, TargetCpu}' for a
%% target other than `host', `generic' or a CPU name LLVM knows,
%% `{thread_spawn_failed, Why}') and no message.
-spec submit(term(), binary(), 0..3, 0..3, boolean(), atom() | binary(), boolean(), boolean()) ->
    ok | {error, term()}.
submit(_Tag, _Wasm, _OptLevel, _SizeLevel, _BoundsChecks, _TargetCpu, _Deterministic, _Metered) ->
    erlang:nif_error(nif_not_loaded).
