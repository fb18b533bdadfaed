//! Loaded modules shared by their instances: a process-wide registry keyed by
//! content ([`ModuleKey`]: SHA-256 of the bytes given to start, the mode and
//! the rewrite flags, which together decide the bytes WAMR loads).
//!
//! An instance holds a [`Lease`] on its module; the registry counts the
//! leases of each module. When the last one drops, the module stays loaded
//! ("idle") while the idle modules fit in `idle_bytes`, and is evicted least
//! recently used first; a module never leaves the registry while it has a
//! lease, so WAMR's module outlives every instance of it (the lease is
//! dropped after the instance is deinstantiated). Loaded modules (live and
//! idle) are bounded by `max_bytes`: a load that does not fit after evicting
//! every idle module is refused.
//!
//! A module is loaded once however many starts ask for it at once: the first
//! start marks its key as loading and loads without the lock; the others wait
//! for it (a per-key load lock), and load themselves only if it failed.
//!
//! Generic over what is loaded, so that it is tested without WAMR.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// What decides the bytes WAMR loads: the SHA-256 of the bytes handed to
/// start (from which any rewrite is derived), the mode, and the rewrite
/// flags (bit 0: deterministic floats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleKey {
    pub sha256: [u8; 32],
    pub aot: bool,
    pub flags: u32,
}

/// The bounds of the registry, in bytes of loaded modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// All loaded modules, live and idle.
    pub max_bytes: u64,
    /// Modules without a live instance kept for later starts.
    pub idle_bytes: u64,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            max_bytes: 1 << 30,
            idle_bytes: 64 << 20,
        }
    }
}

/// Counters and sizes, for `hb_beamr:module_stats/0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Modules loaded (successful loads).
    pub loads: u64,
    /// Starts that found their module loaded (or being loaded).
    pub hits: u64,
    /// Idle modules evicted.
    pub evictions: u64,
    /// Starts refused because loaded modules would exceed `max_bytes`.
    pub refused: u64,
    /// Modules loaded now, with a live instance.
    pub live_modules: u64,
    /// Modules loaded now, without a live instance.
    pub idle_modules: u64,
    /// Leases held now (instances of shared modules).
    pub leases: u64,
    /// Bytes of the modules loaded now.
    pub bytes: u64,
}

enum Slot<T> {
    /// A start is loading it (`size` bytes, counted against `max_bytes`);
    /// the others wait on the condition variable.
    Loading { size: u64 },
    Ready {
        module: Arc<T>,
        size: u64,
        leases: u64,
        /// When its last lease dropped (a tick of `Inner::clock`): the LRU
        /// order of idle modules.
        idle_since: u64,
    },
}

struct Inner<T> {
    slots: BTreeMap<ModuleKey, Slot<T>>,
    bounds: Bounds,
    clock: u64,
    stats: Stats,
    idle_bytes: u64,
}

pub struct Registry<T> {
    inner: Mutex<Inner<T>>,
    loaded: Condvar,
}

/// Why a module could not be had from the registry.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal<E> {
    /// The load failed.
    Load(E),
    /// Loading it would exceed `max_bytes` (what is loaded and live, the
    /// module's size, the bound).
    Full { live: u64, size: u64, max: u64 },
}

/// One instance's hold on a shared module.
pub struct Lease<T: Send + Sync + 'static> {
    module: Arc<T>,
    key: ModuleKey,
    registry: &'static Registry<T>,
}

impl<T: Send + Sync + 'static> std::ops::Deref for Lease<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.module
    }
}

impl<T: Send + Sync + 'static> Drop for Lease<T> {
    fn drop(&mut self) {
        let freed = self.registry.release(&self.key);
        // Unloading (WAMR's unload) happens outside the lock.
        drop(freed);
    }
}

impl<T: Send + Sync + 'static> Default for Registry<T> {
    fn default() -> Registry<T> {
        Registry::new()
    }
}

impl<T: Send + Sync + 'static> Registry<T> {
    pub const fn new() -> Registry<T> {
        Registry {
            inner: Mutex::new(Inner {
                slots: BTreeMap::new(),
                bounds: Bounds {
                    max_bytes: 1 << 30,
                    idle_bytes: 64 << 20,
                },
                clock: 0,
                stats: Stats {
                    loads: 0,
                    hits: 0,
                    evictions: 0,
                    refused: 0,
                    live_modules: 0,
                    idle_modules: 0,
                    leases: 0,
                    bytes: 0,
                },
                idle_bytes: 0,
            }),
            loaded: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the bounds; idle modules beyond the new ones are evicted.
    pub fn set_bounds(&self, bounds: Bounds) {
        let evicted = {
            let mut inner = self.lock();
            if inner.bounds == bounds {
                return;
            }
            inner.bounds = bounds;
            let keep = bounds.idle_bytes.min(bounds.max_bytes);
            inner.evict_idle_until(keep)
        };
        drop(evicted);
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        let mut stats = inner.stats;
        stats.idle_modules = 0;
        stats.live_modules = 0;
        stats.leases = 0;
        stats.bytes = 0;
        for slot in inner.slots.values() {
            if let Slot::Ready { size, leases, .. } = slot {
                stats.bytes += size;
                stats.leases += leases;
                if *leases == 0 {
                    stats.idle_modules += 1;
                } else {
                    stats.live_modules += 1;
                }
            }
        }
        stats
    }

    /// Evicts every idle module (for tests and memory pressure).
    pub fn purge_idle(&self) -> usize {
        let evicted = self.lock().evict_idle_until(0);
        evicted.len()
    }

    /// A lease on the module of `key` if it is loaded; never waits.
    pub fn lease_loaded(&'static self, key: &ModuleKey) -> Option<Lease<T>> {
        let mut inner = self.lock();
        let module = inner.take_lease(key)?;
        inner.stats.hits += 1;
        Some(Lease {
            module,
            key: *key,
            registry: self,
        })
    }

    /// A lease on the module of `key`: the loaded one, the one another start
    /// is loading (waiting for it), or one loaded here by `load` (`size`
    /// bytes), without the registry's lock held.
    pub fn lease_or_load<E>(
        &'static self,
        key: ModuleKey,
        size: u64,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<Lease<T>, Refusal<E>> {
        let mut inner = self.lock();
        loop {
            match inner.slots.get(&key) {
                Some(Slot::Loading { .. }) => {
                    inner = self.loaded.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
                Some(Slot::Ready { .. }) => {
                    let module = inner.take_lease(&key).expect("a ready slot");
                    inner.stats.hits += 1;
                    return Ok(Lease {
                        module,
                        key,
                        registry: self,
                    });
                }
                None => break,
            }
        }
        // Room for it: idle modules go first; live ones stay.
        let max = inner.bounds.max_bytes;
        let room = max.saturating_sub(size);
        let mut evicted = inner.evict_idle_until_total(room);
        let total = inner.total_bytes();
        if total > room {
            inner.stats.refused += 1;
            drop(inner);
            evicted.clear();
            return Err(Refusal::Full {
                live: total,
                size,
                max,
            });
        }
        inner.slots.insert(key, Slot::Loading { size });
        drop(inner);
        drop(evicted);

        let loaded = load();
        let mut inner = self.lock();
        let result = match loaded {
            Ok(module) => {
                let module = Arc::new(module);
                inner.stats.loads += 1;
                inner.slots.insert(
                    key,
                    Slot::Ready {
                        module: module.clone(),
                        size,
                        leases: 1,
                        idle_since: 0,
                    },
                );
                Ok(Lease {
                    module,
                    key,
                    registry: self,
                })
            }
            Err(error) => {
                // Whoever waits loads it again (and most likely fails alike).
                inner.slots.remove(&key);
                Err(Refusal::Load(error))
            }
        };
        drop(inner);
        self.loaded.notify_all();
        result
    }

    /// One lease of `key` dropped: the module turns idle with its last one,
    /// and is kept while the idle modules fit. Returns what to free.
    fn release(&self, key: &ModuleKey) -> Vec<Arc<T>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let mut idle_size = None;
        if let Some(Slot::Ready {
            leases,
            idle_since,
            size,
            ..
        }) = inner.slots.get_mut(key)
        {
            *leases -= 1;
            if *leases == 0 {
                *idle_since = now;
                idle_size = Some(*size);
            }
        }
        match idle_size {
            Some(size) => {
                inner.idle_bytes += size;
                let keep = inner.bounds.idle_bytes.min(inner.bounds.max_bytes);
                inner.evict_idle_until(keep)
            }
            None => Vec::new(),
        }
    }
}

impl<T> Inner<T> {
    fn take_lease(&mut self, key: &ModuleKey) -> Option<Arc<T>> {
        let Some(Slot::Ready {
            module,
            leases,
            size,
            ..
        }) = self.slots.get_mut(key)
        else {
            return None;
        };
        if *leases == 0 {
            self.idle_bytes -= *size;
        }
        *leases += 1;
        Some(module.clone())
    }

    fn total_bytes(&self) -> u64 {
        self.slots
            .values()
            .map(|slot| match slot {
                Slot::Ready { size, .. } | Slot::Loading { size } => *size,
            })
            .sum()
    }

    /// The least recently used idle module, if any.
    fn oldest_idle(&self) -> Option<ModuleKey> {
        self.slots
            .iter()
            .filter_map(|(key, slot)| match slot {
                Slot::Ready {
                    leases: 0,
                    idle_since,
                    ..
                } => Some((*idle_since, *key)),
                _ => None,
            })
            .min_by_key(|(since, _)| *since)
            .map(|(_, key)| key)
    }

    fn evict(&mut self, key: &ModuleKey) -> Option<Arc<T>> {
        match self.slots.remove(key) {
            Some(Slot::Ready { module, size, .. }) => {
                self.idle_bytes -= size;
                self.stats.evictions += 1;
                Some(module)
            }
            _ => None,
        }
    }

    /// Evicts idle modules, oldest first, until they take at most `keep`.
    fn evict_idle_until(&mut self, keep: u64) -> Vec<Arc<T>> {
        let mut out = Vec::new();
        while self.idle_bytes > keep {
            let Some(key) = self.oldest_idle() else { break };
            out.extend(self.evict(&key));
        }
        out
    }

    /// Evicts idle modules, oldest first, until all loaded take at most
    /// `room`.
    fn evict_idle_until_total(&mut self, room: u64) -> Vec<Arc<T>> {
        let mut out = Vec::new();
        let mut total = self.total_bytes();
        while total > room {
            let Some(key) = self.oldest_idle() else { break };
            if let Some(module) = self.evict(&key) {
                out.push(module);
            }
            total = self.total_bytes();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(n: u8) -> ModuleKey {
        ModuleKey {
            sha256: [n; 32],
            aot: false,
            flags: 0,
        }
    }

    fn leak() -> &'static Registry<String> {
        Box::leak(Box::new(Registry::new()))
    }

    #[test]
    fn one_load_for_many_leases_and_idle_kept() {
        let registry = leak();
        let a = registry
            .lease_or_load(key(1), 10, || Ok::<_, ()>("a".to_string()))
            .unwrap();
        let b = registry.lease_loaded(&key(1)).unwrap();
        assert!(Arc::ptr_eq(&a.module, &b.module));
        let stats = registry.stats();
        assert_eq!((stats.loads, stats.hits, stats.leases), (1, 1, 2));
        drop(a);
        drop(b);
        let stats = registry.stats();
        assert_eq!((stats.idle_modules, stats.bytes), (1, 10));
        assert!(registry.lease_loaded(&key(1)).is_some());
        assert_eq!(registry.purge_idle(), 1);
        assert_eq!(registry.stats().bytes, 0);
    }

    #[test]
    fn freed_at_last_lease_without_idle_room() {
        let registry = leak();
        registry.set_bounds(Bounds {
            max_bytes: 100,
            idle_bytes: 0,
        });
        let a = registry
            .lease_or_load(key(1), 10, || Ok::<_, ()>("a".into()))
            .unwrap();
        let weak = Arc::downgrade(&a.module);
        drop(a);
        assert!(weak.upgrade().is_none());
        assert_eq!(registry.stats().evictions, 1);
    }

    #[test]
    fn lru_eviction_and_refusal_when_full() {
        let registry = leak();
        registry.set_bounds(Bounds {
            max_bytes: 30,
            idle_bytes: 30,
        });
        let load = || Ok::<_, ()>(String::new());
        drop(registry.lease_or_load(key(1), 10, load).unwrap());
        drop(registry.lease_or_load(key(2), 10, load).unwrap());
        let live = registry.lease_or_load(key(3), 10, load).unwrap();
        // Room for key 4: the oldest idle (key 1) goes.
        let live4 = registry.lease_or_load(key(4), 10, load).unwrap();
        assert!(registry.lease_loaded(&key(1)).is_none());
        drop(registry.lease_loaded(&key(2)).unwrap());
        // All live now but key 2: a 25-byte module does not fit.
        let full = registry.lease_or_load(key(5), 25, load);
        assert!(matches!(full, Err(Refusal::Full { .. })));
        assert_eq!(registry.stats().refused, 1);
        drop((live, live4));
    }

    #[test]
    fn concurrent_first_leases_load_once() {
        let registry = leak();
        let loads = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..32)
            .map(|_| {
                let loads = loads.clone();
                std::thread::spawn(move || {
                    registry
                        .lease_or_load(key(9), 1, || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            Ok::<_, ()>("m".to_string())
                        })
                        .unwrap()
                })
            })
            .collect();
        let leases: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(registry.stats().leases, 32);
        drop(leases);
        assert_eq!(registry.stats().leases, 0);
    }

    #[test]
    fn a_failed_load_lets_the_next_try() {
        let registry = leak();
        let failed = registry.lease_or_load(key(7), 1, || Err::<String, _>("bad"));
        assert!(matches!(failed, Err(Refusal::Load("bad"))));
        assert!(registry
            .lease_or_load(key(7), 1, || Ok::<_, &str>("ok".into()))
            .is_ok());
    }
}
