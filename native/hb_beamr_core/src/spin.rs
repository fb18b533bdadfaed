//! Bounded polling before a thread parks on a channel.
//!
//! Waking a parked thread costs a futex wake, tens of microseconds on a busy
//! VM, where an Erlang caller answers a reply with its next request in one
//! or two. So a waiting thread polls its channel for up to `BUDGET` first. At
//! most half the CPUs poll at once: with more waiting threads than that, the
//! rest park at once and leave the CPUs to the schedulers that feed them.
//!
//! hb_beamr's instance threads wait with `recv`; so does the hand-off
//! baseline of `make bench`, so that the two are measured alike.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, TryRecvError};

/// How long a waiting thread polls before parking.
pub const BUDGET: Duration = Duration::from_micros(30);

/// Threads polling right now.
static POLLING: AtomicUsize = AtomicUsize::new(0);

/// How many threads may poll at once.
static MAX_POLLING: LazyLock<usize> = LazyLock::new(|| {
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

/// Polls `rx` for up to `BUDGET` if a slot is free. `None`: nothing came,
/// the channel closed, or no slot was free.
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

/// The next item of `rx`: polled for a bounded time, then waited for
/// parked. An error once the channel is empty and closed.
pub fn recv<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    match poll(rx) {
        Some(item) => Ok(item),
        None => rx.recv(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The slots are process-wide: these tests take turns.
    static TURN: Mutex<()> = Mutex::new(());

    fn turn() -> std::sync::MutexGuard<'static, ()> {
        TURN.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn a_queued_item_comes_back_from_poll() {
        let _turn = turn();
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(7).unwrap();
        assert_eq!(poll(&rx), Some(7));
    }

    #[test]
    fn an_empty_channel_is_polled_for_the_budget_then_given_up() {
        let _turn = turn();
        let (_tx, rx) = crossbeam_channel::unbounded::<u8>();
        let start = Instant::now();
        assert_eq!(poll(&rx), None);
        assert!(start.elapsed() >= BUDGET);
    }

    #[test]
    fn a_closed_channel_ends_the_poll_and_recv() {
        let _turn = turn();
        let (tx, rx) = crossbeam_channel::unbounded::<u8>();
        drop(tx);
        assert_eq!(poll(&rx), None);
        assert_eq!(recv(&rx), Err(RecvError));
    }

    #[test]
    fn without_a_free_slot_poll_does_not_poll() {
        let _turn = turn();
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(1).unwrap();
        let held: Vec<Slot> = std::iter::from_fn(Slot::take).collect();
        assert_eq!(held.len(), *MAX_POLLING);
        assert_eq!(poll(&rx), None);
        drop(held);
        assert_eq!(poll(&rx), Some(1));
    }

    #[test]
    fn recv_parks_until_an_item_comes() {
        let _turn = turn();
        let (tx, rx) = crossbeam_channel::unbounded();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(BUDGET * 10);
            tx.send(42).unwrap();
        });
        assert_eq!(recv(&rx), Ok(42));
        sender.join().unwrap();
    }
}
