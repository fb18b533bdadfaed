%%% Shared definitions for hb_beamr (HyperBEAM-compatible include).
%%%
%%% HyperBEAM's modules and tests include "include/hb.hrl" for its event
%%% macros; hb_beamr keeps the include so that such code compiles unchanged.
%%%
%%% Events are off by default: nothing is logged unless the application env
%%% `{hb_beamr, [{log_events, true}]}' is set. Then each event is a debug-level
%%% report `#{event => X}' (with `topic' for ?event/2,3) under the logger
%%% domain `[hb_beamr]', which a logger handler shows when its level and
%%% filters let it through (docs/api.md: "Logging").

-ifndef(HB_HRL).
-define(HB_HRL, true).

-include_lib("kernel/include/logger.hrl").

-define(HB_BEAMR_EVENT(Report),
    case application:get_env(hb_beamr, log_events, false) of
        true -> ?LOG_DEBUG(Report, #{domain => [hb_beamr]});
        _ -> ok
    end).

-define(event(X), ?HB_BEAMR_EVENT(#{event => X})).
-define(event(Topic, X), ?HB_BEAMR_EVENT(#{topic => Topic, event => X})).
-define(event(Topic, X, Opts), begin _ = Opts, ?HB_BEAMR_EVENT(#{topic => Topic, event => X}) end).

-endif.
