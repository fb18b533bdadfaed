%%% @doc Loader and stub of hb_beamr's AOT compiler NIF
%%% (`priv/hb_beamr_compiler_nif.so', built only where LLVM 19 is installed).
%%%
%%% Internal: use {@link hb_beamr:compile/2}. The library is loaded when this
%%% module is first used, so that nodes that never compile never load LLVM.
%%% Where the library is missing, the module still loads and
%%% {@link compile/6} raises `nif_not_loaded'.
-module(hb_beamr_compiler_nif).

-export([compile/6, rewrite_eh/1, loaded/0]).

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
    try compile(<<>>, 0, 0, true, host, false) of
        _ -> true
    catch
        error:nif_not_loaded -> false
    end.

%% @doc Compiles WebAssembly bytes to a WAMR AOT file; `Deterministic'
%% canonicalizes the module's NaNs first and marks the file so.
-spec compile(binary(), 0..3, 0..3, boolean(), host | generic | binary(), boolean()) ->
    {ok, binary()} | {error, term()}.
compile(_Wasm, _OptLevel, _SizeLevel, _BoundsChecks, _TargetCpu, _Deterministic) ->
    erlang:nif_error(nif_not_loaded).

%% @doc The exception-handling rewriting {@link hb_beamr:compile/2} applies
%% before compiling (exposed for tests that run its output as bytecode).
-spec rewrite_eh(binary()) -> {ok, binary()} | unchanged | {error, term()}.
rewrite_eh(_Wasm) ->
    erlang:nif_error(nif_not_loaded).
