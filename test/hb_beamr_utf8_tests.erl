%%% @doc Names with a NUL in them are valid UTF-8. WAMR 2.4.3 refused such
%%% modules ("invalid UTF-8 encoding"); hb_beamr's build patches its loader
%%% (native/hb_wamr_build/src/patch.rs). Runs in both modes.
-module(hb_beamr_utf8_tests).
-include_lib("eunit/include/eunit.hrl").

-import(hb_beamr_test_util, [fixture/1, start/2, mode/0]).

%% The fixture with a custom section whose name has NULs appended (WAT
%% cannot write a custom section without annotations).
with_custom_section(Wasm) ->
    Name = <<0, "custom", 0>>,
    Payload = <<"payload">>,
    Body = <<(byte_size(Name)), Name/binary, Payload/binary>>,
    <<Wasm/binary, 0, (byte_size(Body)), Body/binary>>.

names_with_nul_load_test_() ->
    Wasm = fixture("utf8-names.wasm"),
    [
        {"export names", fun() -> loads(Wasm) end},
        {"custom section name", fun() -> loads(with_custom_section(Wasm)) end}
    ].

loads(Wasm) ->
    W = start(Wasm, mode()),
    % Three distinct exports: the empty name is not confused with "\0".
    ?assertEqual({ok, [1]}, hb_beamr:call(W, <<>>, [])),
    hb_beamr:stop(W).

invalid_utf8_is_still_refused_test() ->
    % An export named by a lone continuation byte: the check is still there.
    Wasm = binary:replace(fixture("utf8-names.wasm"), <<"a", 0, "b">>, <<"a", 16#80, "b">>),
    {error, {invalid_wasm, Why}} = hb_beamr:start(Wasm),
    ?assertNotEqual(nomatch, binary:match(Why, <<"invalid UTF-8">>)).
