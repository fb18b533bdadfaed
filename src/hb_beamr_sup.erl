%%% @private
%%% @doc hb_beamr's top supervisor (registered as `hb_beamr_sup'): the
%%% compile cache ({@link hb_beamr_aot_cache}), restarted if it crashes
%%% (one_for_one; its disk entries survive a restart, its in-memory ones do
%%% not).
%%%
%%% Instances and cluster agents are OTP processes (started with proc_lib:
%%% crash reports, ancestors, initial call) but not children of this
%%% supervisor, on purpose: each belongs to the process that started it
%%% (an instance lives until stopped and ends with its NIF's instance; an
%%% agent ends with its caller), so a restart could not bring back what it
%%% stood for, and starting one through a supervisor on another node would
%%% wait on that node, which may be silent ({@link hb_beamr_node}).
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
