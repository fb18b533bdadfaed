-module(my_app_tests).
-include_lib("eunit/include/eunit.hrl").

fac_test() ->
    {ok, _Started} = application:ensure_all_started(my_app),
    {ok, Wasm} = file:read_file("test/test.wasm"),
    {ok, WASM, [], [{func, <<"fac">>, <<"(F)F">>}]} = hb_beamr:start(Wasm),
    ?assertEqual({ok, [120.0]}, hb_beamr:call(WASM, "fac", [5.0])),
    ok = hb_beamr:stop(WASM).
