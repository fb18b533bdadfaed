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
%% `{invalid_option, Option}', and `compiler_unavailable' where hb_beamr was
%% built without LLVM, `thread_spawn_failed' if the compiler thread cannot be
%% started. The output is the same for the same input and options.
-spec compile(binary(), hb_beamr:compile_opts()) -> {ok, binary()} | {error, term()}.
compile(WasmBinary, Opts) when is_binary(WasmBinary), is_map(Opts) ->
    case compile_args(Opts) of
        {ok, {Opt, Size, Checks, Cpu}} ->
            Deterministic = maps:get(deterministic, Opts, false),
            try hb_beamr_compiler_nif:compile(WasmBinary, Opt, Size, Checks, Cpu, Deterministic) of
                {ok, Aot} -> hb_beamr_seal:seal(Aot);
                Error -> Error
            catch
                error:nif_not_loaded -> {error, compiler_unavailable}
            end;
        {error, _} = Error ->
            Error
    end;
compile(_WasmBinary, _Opts) ->
    {error, badarg}.

compile_args(Opts) ->
    Known = [opt_level, size_level, bounds_checks, target_cpu, deterministic],
    case maps:keys(maps:without(Known, Opts)) of
        [] ->
            Opt = maps:get(opt_level, Opts, 3),
            Size = maps:get(size_level, Opts, 3),
            Checks = maps:get(bounds_checks, Opts, true),
            Cpu = maps:get(target_cpu, Opts, host),
            Deterministic = maps:get(deterministic, Opts, false),
            if
                not (is_integer(Opt) andalso Opt >= 0 andalso Opt =< 3) ->
                    {error, {invalid_option, {opt_level, Opt}}};
                not (is_integer(Size) andalso Size >= 0 andalso Size =< 3) ->
                    {error, {invalid_option, {size_level, Size}}};
                Checks =/= true ->
                    {error, {invalid_option, {bounds_checks, Checks}}};
                not is_boolean(Deterministic) ->
                    {error, {invalid_option, {deterministic, Deterministic}}};
                not (Cpu =:= host orelse Cpu =:= generic orelse is_list(Cpu)) ->
                    {error, {invalid_option, {target_cpu, Cpu}}};
                is_list(Cpu) ->
                    case unicode:characters_to_binary(Cpu) of
                        Name when is_binary(Name) -> {ok, {Opt, Size, Checks, Name}};
                        _ -> {error, {invalid_option, {target_cpu, Cpu}}}
                    end;
                true ->
                    {ok, {Opt, Size, Checks, Cpu}}
            end;
        Unknown ->
            {error, {invalid_option, hd(Unknown)}}
    end.

