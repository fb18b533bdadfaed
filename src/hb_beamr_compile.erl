%%% @private
%%% @doc Compiling WebAssembly to sealed WAMR AOT files: options checked,
%%% the compiler NIF (loaded on first use), then the seal.
-module(hb_beamr_compile).
-export([compile/2]).

%% @doc Compiles WebAssembly to a WAMR AOT file (see {@link compile_opts()}).
%% Runs on the compiler NIF's own thread, one compilation at a time; the
%% caller waits in a receive, holding no scheduler. Errors:
%% `{invalid_wasm, Why}', `{compile_failed, Why}' (for instance a module that
%% uses exception handling hb_beamr_eh cannot rewrite into host calls; the
%% output is sealed, see hb_beamr_aot),
%% `{invalid_option, {Name, Value}}' (hb_beamr_opts), and `compiler_unavailable' where hb_beamr was
%% built without LLVM, `{thread_spawn_failed, Why}' if the compiler thread cannot be
%% started. The output is the same for the same input and options.
-spec compile(binary(), hb_beamr:compile_opts()) -> {ok, binary()} | {error, term()}.
compile(WasmBinary, Opts) when is_binary(WasmBinary), is_map(Opts) ->
    case hb_beamr_opts:compile(Opts) of
        {ok, #{opt_level := Opt, size_level := Size, bounds_checks := Checks,
               target_cpu := Cpu, deterministic := Deterministic, metered := Metered}} ->
            try hb_beamr_compiler_nif:compile(WasmBinary, Opt, Size, Checks, Cpu, {Deterministic, Metered}) of
                {ok, Aot} -> hb_beamr_seal:seal(Aot);
                % A CPU name LLVM does not know: the option as it was given.
                {error, {invalid_option, _}} -> {error, {invalid_option, {target_cpu, maps:get(target_cpu, Opts, host)}}};
                Error -> Error
            catch
                error:nif_not_loaded -> {error, compiler_unavailable}
            end;
        {error, _} = Error ->
            Error
    end;
compile(_WasmBinary, _Opts) ->
    {error, badarg}.
