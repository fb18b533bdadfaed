%%% Shared definitions for hb_beamr (HyperBEAM-compatible include).
%%%
%%% HyperBEAM's modules and tests include "include/hb.hrl" for its event
%%% macros; hb_beamr keeps the include so that such code compiles unchanged.
%%% Events are debug log lines here, off unless the logger level allows them.

-ifndef(HB_HRL).
-define(HB_HRL, true).

-include_lib("kernel/include/logger.hrl").

-define(event(X), ?LOG_DEBUG(#{event => X})).
-define(event(Topic, X), ?LOG_DEBUG(#{topic => Topic, event => X})).
-define(event(Topic, X, Opts), begin _ = Opts, ?LOG_DEBUG(#{topic => Topic, event => X}) end).

-endif.
