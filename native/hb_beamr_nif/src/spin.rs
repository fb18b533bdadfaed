//! Bounded polling before a worker thread parks.
//!
//! Waking a parked thread costs a futex wake, tens of microseconds on a busy
//! VM, where an Erlang caller answers a reply with its next request in one
//! or two. So an idle worker polls its channel for up to `BUDGET` first. At
//! most half the CPUs poll at once: with more instances than that, the rest
//! park at once and leave the CPUs to the schedulers that feed them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use once_cell::sync::Lazy;

/// How long an idle worker polls before parking.
const BUDGET: Duration = Duration::from_micros(30);

/// Workers polling right now.
static POLLING: AtomicUsize = AtomicUsize::new(0);

/// How many workers may poll at once.
static MAX_POLLING: Lazy<usize> = Lazy::new(|| {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
});

/// Releases a polling slot when dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        let max = *MAX_POLLING;
        POLLING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        POLLING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Polls `rx` for up to `BUDGET` if a slot is free. `None`: nothing came
/// (or the channel closed); the caller then blocks on `recv` as usual.
pub fn poll<T>(rx: &Receiver<T>) -> Option<T> {
    let _slot = Slot::take()?;
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(item) => return Some(item),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        if start.elapsed() >= BUDGET {
            return None;
        }
        for _ in 0..32 {
            std::hint::spin_loop();
        }
    }
}
