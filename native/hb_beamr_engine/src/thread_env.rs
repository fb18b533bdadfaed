//! [`ThreadEnv`]: WAMR's per-thread setup. A leaf over WAMR.

use std::marker::PhantomData;

use hb_wamr_sys as sys;

/// Sets up WAMR for the calling thread while it lives: enter it on each
/// thread that runs instances, before the first, and drop it after the last.
/// Not `Send`: it must be dropped on the thread that entered it.
pub struct ThreadEnv(PhantomData<*const ()>);

impl ThreadEnv {
    pub fn enter() -> ThreadEnv {
        // SAFETY: per-thread WAMR setup, paired with the destroy call in Drop.
        unsafe { sys::wasm_runtime_init_thread_env() };
        ThreadEnv(PhantomData)
    }
}

impl Drop for ThreadEnv {
    fn drop(&mut self) {
        // SAFETY: pairs with wasm_runtime_init_thread_env in `enter`.
        unsafe { sys::wasm_runtime_destroy_thread_env() };
    }
}
