//! Handing memory back to the OS once the last instance is gone.
//!
//! Instance threads allocate through glibc's malloc, which gives each thread
//! an arena and keeps what is freed there for reuse. After thousands of
//! instances have come and gone that can be hundreds of MiB of RSS that no
//! instance uses. When the last worker thread exits, it asks malloc to
//! return those free pages (`malloc_trim`), off the schedulers.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Worker threads alive.
static WORKERS: AtomicUsize = AtomicUsize::new(0);

/// Counts a worker thread for as long as it lives.
pub struct WorkerGuard(());

impl WorkerGuard {
    pub fn enter() -> WorkerGuard {
        WORKERS.fetch_add(1, Ordering::AcqRel);
        WorkerGuard(())
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        if WORKERS.fetch_sub(1, Ordering::AcqRel) == 1 {
            trim();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: malloc_trim takes the arena locks itself and may be called
    // from any thread at any time.
    unsafe { malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
