//! [`Interrupter`]: stopping an instance's running call from another thread.
//! A leaf over WAMR: it depends on nothing else in the crate.

use std::sync::{Arc, Mutex, MutexGuard};

use hb_wamr_sys as sys;

/// The WAMR handles an interrupt needs.
struct Handles {
    inst: sys::wasm_module_inst_t,
    exec_env: sys::wasm_exec_env_t,
}

// SAFETY: the handles are only passed to `hb_beamr_interrupt`, which is made
// to be called from any thread (it takes the exec env's lock, or calls WAMR's
// thread-safe terminate), and only while they are set: the owner revokes
// them, under the same lock, before it frees the instance or exec env.
unsafe impl Send for Handles {}

/// Stops the call running on one instance (or on the exec env that runs its
/// start function), from any thread: a timeout, a stop. Cheap to clone; the
/// clones share one handle. Calling it after the instance is gone does
/// nothing: the instance revokes the handle, under the handle's lock, before
/// it is freed, and an interrupt holds that lock while it reaches WAMR.
#[derive(Clone)]
pub struct Interrupter(Arc<Mutex<Option<Handles>>>);

impl Interrupter {
    /// A handle for `inst` running on `exec_env`; the caller revokes it
    /// ([`Interrupter::revoke`]) before either is freed.
    pub(crate) fn new(
        inst: sys::wasm_module_inst_t,
        exec_env: sys::wasm_exec_env_t,
    ) -> Interrupter {
        Interrupter(Arc::new(Mutex::new(Some(Handles { inst, exec_env }))))
    }

    fn handles(&self) -> MutexGuard<'_, Option<Handles>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the running call at WebAssembly's next check (a loop back-edge,
    /// a call): it fails with a trap, which the owner clears with
    /// `EngineInstance::clear_interrupt`. A call that begins later is
    /// stopped at once, until then. Returns whether the instance was still
    /// there to interrupt.
    pub fn interrupt(&self) -> bool {
        let handles = self.handles();
        let Some(h) = handles.as_ref() else {
            return false;
        };
        // SAFETY: the handles are set, so the instance and exec env are
        // alive, and stay so while the lock is held (see `revoke`);
        // `hb_beamr_interrupt` may be called from any thread.
        unsafe { sys::hb_beamr_interrupt(h.exec_env, h.inst) };
        true
    }

    /// Whether the instance is still there to interrupt.
    pub fn is_live(&self) -> bool {
        self.handles().is_some()
    }

    /// Forgets the handles: every interrupt from now on does nothing. Waits
    /// for an interrupt in progress to finish.
    pub(crate) fn revoke(&self) {
        *self.handles() = None;
    }
}

impl std::fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupter")
            .field("live", &self.is_live())
            .finish()
    }
}
