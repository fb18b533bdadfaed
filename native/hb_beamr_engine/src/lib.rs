//! hb_beamr's engine: WAMR modules and instances driven from plain Rust.
//!
//! Nothing here knows Erlang, and nothing outside sees WAMR: every WAMR
//! handle and `unsafe` call stays inside this crate. The NIF's worker thread
//! (and any other driver, such as the spec-test runner) owns an
//! [`EngineInstance`] and serves the imports that are not native through a
//! [`Host`] it installs on its thread. Dependencies flow one way: the driver
//! calls the engine, and the engine reaches the driver only through that
//! interface.
//!
//! # The types
//!
//! * [`ensure_runtime`] starts WAMR once per process; [`ThreadEnv`] sets it
//!   up for each thread that runs instances.
//! * [`load_module`] loads bytecode or an AOT file ([`Mode`]) into a
//!   [`Module`], with its imports ([`ImportInfo`]) and exports
//!   ([`ExportInfo`], [`ExternKind`]) and every function import linked to the
//!   engine's import trampoline.
//! * [`EngineInstance`] instantiates a module within [`Limits`] on the thread
//!   that will run it, and calls a [`Target`] (an export or a table element).
//!   It stays on that thread.
//! * [`Interrupter`] is the one piece that crosses threads: `Send + Sync`,
//!   cloneable, it stops the running call (timeouts, stop) and does nothing
//!   once the instance is gone.
//! * [`InstanceRef`] is the running instance as an import sees it, also
//!   while a start function runs inside instantiation: its linear memory and
//!   its mutable globals (for snapshots, with [`CheckedGlobals`]).
//! * [`DirtyTracker`] asks the kernel which pages of an instance's memory
//!   were written since the last snapshot (userfaultfd write-protection).
//! * [`Host`] is what a driver implements to serve imports: each call gets
//!   the import's [`ImportDesc`] (with its [`ImportKind`]) and answers with
//!   results or a [`Trap`]. [`install_host`] installs one on the thread
//!   until its [`HostInstalled`] guard drops.
//! * Failures are `hb_beamr_core::errors::Error`, which every operation
//!   returns.
//!
//! # The modules
//!
//! All private; this file chooses what is public. They depend downwards
//! only, and none depends on this file:
//!
//! * leaves: `values` (value conversions), `imports` (import descriptors),
//!   `trap`, `eh_state` (one instance's exception state), `interrupt`,
//!   `thread_env`;
//! * `shared` (the registry of shared modules, generic over what it
//!   holds);
//! * `module` (uses `imports`, `values`, `shared`): also [`ModuleHold`],
//!   what an instance runs;
//! * `instance` (uses `module`, `eh_state`, `interrupt`, `values`);
//! * `dirty` (uses `instance`: the memory's range);
//! * `host` (uses `instance`, `imports`, `trap`);
//! * `eh_host` (uses `instance`, `trap`): rewritten exception handling;
//! * `trampoline` (uses `host`, `imports`, `instance`, `eh_host`, `trap`):
//!   every import call enters here; [`load_module`] ties it to the module.

mod dirty;
mod eh_host;
mod eh_state;
mod host;
mod image;
mod imports;
mod instance;
mod interrupt;
mod module;
mod shared;
mod thread_env;
mod trampoline;
mod trap;
mod values;

pub use dirty::DirtyTracker;
pub use host::{install as install_host, Host, Installed as HostInstalled};
pub use image::Image;
pub use imports::{ImportDesc, ImportKind, FUEL_EXPORT, FUEL_IMPORT};
pub use instance::{CheckedGlobals, EngineInstance, InstanceRef, Limits, Target};
pub use interrupt::Interrupter;
pub use module::{
    ensure_runtime, ExportInfo, ExternKind, ImportInfo, Mode, Module, ModuleHold, SharedModule,
};
pub use shared::{Bounds, ModuleKey, Refusal, Registry, Stats as ModuleStats};
pub use thread_env::ThreadEnv;
pub use trap::Trap;

/// Loads a module with its function imports linked to the import
/// trampoline, which serves them natively or through the thread's [`Host`].
/// Modules depend on nothing above them: the link is made here, at the top.
pub fn load_module(bytes: Vec<u8>, mode: Mode) -> Result<Module, hb_beamr_core::errors::Error> {
    Module::load(bytes, mode, trampoline::trampoline, None)
}

/// Like [`load_module`], with the SHA-256 the caller computed of the bytes
/// it started from (the bytes, or the bytecode they were rewritten from),
/// which becomes the module's fingerprint instead of hashing again.
pub fn load_module_hashed(
    bytes: Vec<u8>,
    mode: Mode,
    sha256: [u8; 32],
) -> Result<Module, hb_beamr_core::errors::Error> {
    Module::load(bytes, mode, trampoline::trampoline, Some(sha256))
}

/// The process-wide registry of loaded modules shared by their instances
/// (see `shared.rs`).
pub static MODULES: Registry<Module> = Registry::new();
