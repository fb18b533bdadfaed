//! hb_beamr's engine: WAMR modules and instances driven from plain Rust.
//!
//! Nothing here knows Erlang. The NIF's worker thread (and any other
//! driver, such as the spec-test runner) owns an [`EngineInstance`] and
//! serves the imports that are not native through a [`host::Host`] it
//! installs on its thread. Dependencies flow one way: the driver calls the
//! engine, and the engine reaches the driver only through that interface.
//! Inside, modules depend downwards only: `values`, `imports` → `module` →
//! `instance` → `host` → `trampoline`, tied together here.

pub mod eh_host;
pub mod host;
pub mod imports;
pub mod instance;
pub mod module;
pub mod trampoline;
pub mod values;

pub use host::Host;
pub use instance::{EngineInstance, InstanceRef, Limits, Target};
pub use module::{ensure_runtime, ExportInfo, ExternKind, ImportInfo, Mode, Module};

/// Loads a module with its function imports linked to the import
/// trampoline, which serves them natively or through the thread's [`Host`].
/// Modules depend on nothing above them: the link is made here, at the top.
pub fn load_module(bytes: Vec<u8>, mode: Mode) -> Result<Module, hb_beamr_core::errors::Error> {
    Module::load(bytes, mode, trampoline::trampoline)
}

/// Sets up WAMR for the calling thread; pair with [`ThreadEnv::drop`].
pub struct ThreadEnv(());

impl ThreadEnv {
    pub fn enter() -> ThreadEnv {
        // SAFETY: per-thread WAMR setup, paired with the destroy call in Drop.
        unsafe { hb_wamr_sys::wasm_runtime_init_thread_env() };
        ThreadEnv(())
    }
}

impl Drop for ThreadEnv {
    fn drop(&mut self) {
        // SAFETY: pairs with wasm_runtime_init_thread_env in `enter`.
        unsafe { hb_wamr_sys::wasm_runtime_destroy_thread_env() };
    }
}
