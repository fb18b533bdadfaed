//! One instance's exception state for rewritten exception handling: what
//! [`crate::eh_host`] records and [`crate::instance::EngineInstance`] keeps.
//! A leaf: it depends on nothing else in the crate.

use std::cell::Cell;

/// An exception: (code, payload), as `hb_beamr_core::eh_abi` passes them.
pub(crate) type Exception = (i32, i64);

#[derive(Debug, Default)]
pub(crate) struct EhState {
    /// The exception being thrown.
    pending: Cell<Option<Exception>>,
    /// What unwound the last try call; code 0: nothing.
    last: Cell<Exception>,
}

impl EhState {
    /// A throw begins: `exception` unwinds to the nearest try call.
    pub(crate) fn throw(&self, exception: Exception) {
        self.pending.set(Some(exception));
    }

    /// The exception being thrown, if any; taking it ends the throw.
    pub(crate) fn take_pending(&self) -> Option<Exception> {
        self.pending.take()
    }

    pub(crate) fn last(&self) -> Exception {
        self.last.get()
    }

    pub(crate) fn set_last(&self, exception: Exception) {
        self.last.set(exception);
    }
}
