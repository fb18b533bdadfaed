%%% @private
%%% @doc hb_beamr's top supervisor (registered as `hb_beamr_sup'): the
%%% compile cache ({@link hb_beamr_aot_cache}), restarted if it crashes
%%% (one_for_one; its disk entries survive a restart, its in-memory ones do
%%% not). Instances are not supervised here: each is named by its own
%%% process, linked to nothing, and lives until stopped.
-module(hb_beamr_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

-define(SERVER, ?MODULE).

%% @doc Starts the supervisor and the compile cache.
-spec start_link() -> supervisor:startlink_ret().
start_link() ->
    supervisor:start_link({local, ?SERVER}, ?MODULE, []).

%% @doc The children: the compile cache.
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => one_for_one, intensity => 5, period => 10},
    Cache = #{id => hb_beamr_aot_cache,
              start => {hb_beamr_aot_cache, start_link, []},
              restart => permanent,
              shutdown => 5000,
              type => worker,
              modules => [hb_beamr_aot_cache]},
    {ok, {Flags, [Cache]}}.
