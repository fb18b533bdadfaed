%%% @private
%%% @doc The hb_beamr application: starts {@link hb_beamr_sup}, which
%%% supervises hb_beamr's long-lived processes (the compile cache,
%%% hb_beamr_aot_cache).
%%%
%%% The library also works without the application started (an escript, a
%%% node that only has hb_beamr's `ebin' in its code path): the compile
%%% cache is then started on first use, unsupervised, as a process of its
%%% own (see hb_beamr_aot_cache). Starting the application later takes the
%%% cache over: the unsupervised one is stopped and the supervised one takes
%%% its name (the disk cache stays; the in-memory one starts empty).
-module(hb_beamr_app).
-behaviour(application).

-export([start/2, stop/1]).

%% @doc Starts hb_beamr's supervisor.
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    hb_beamr_sup:start_link().

%% @doc Nothing to clean up: the supervisor stops its children.
-spec stop(term()) -> ok.
stop(_State) ->
    ok.
