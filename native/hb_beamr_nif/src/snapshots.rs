//! [`Snapshots`]: what an instance keeps between snapshots, which the
//! worker holds (`context`) and `state` serves snapshots, deltas and
//! restores with. A leaf: it depends on no other module of this crate.

use hb_beamr_core::errors::Error;
use hb_beamr_core::snapshot::{self, Method, Tracked};
use hb_beamr_engine::{DirtyTracker, InstanceRef};

/// What an instance keeps between snapshots: the state of its last snapshot
/// (or restore), the base of the next delta, and the kernel's record of the
/// pages written since.
#[derive(Default)]
pub struct Snapshots {
    pub(crate) last: Option<Tracked>,
    pub(crate) tracker: DirtyTracker,
}

impl Snapshots {
    /// The unit hashes of memory now, and (when there is a last snapshot)
    /// the units changed since it and how they were found: only the pages
    /// the kernel says were written are hashed again, or (where it cannot
    /// say, or `hash_only`) every unit. Tracking starts anew from here.
    pub(crate) fn advance(
        &mut self,
        engine: InstanceRef,
        hash_only: bool,
    ) -> Result<Advanced, Error> {
        let candidates = self.tracker.take(engine).filter(|_| !hash_only);
        let last = self.last.take();
        engine.read_with(0, engine.memory_size(), |memory| match last {
            Some(Tracked {
                id,
                mut hashes,
                mut groups,
            }) => {
                let before = hashes.len();
                let changed = snapshot::diff(&mut hashes, memory, candidates.as_deref());
                snapshot::regroup(&mut groups, &hashes, &changed, before);
                let method = match candidates {
                    Some(_) => Method::Kernel,
                    None => Method::Hash,
                };
                Advanced {
                    hashes,
                    groups,
                    since: Some((id, changed, method)),
                }
            }
            None => {
                let hashes = snapshot::unit_hashes(memory);
                let groups = snapshot::group_hashes(&hashes);
                Advanced {
                    hashes,
                    groups,
                    since: None,
                }
            }
        })
    }
}

pub(crate) struct Advanced {
    pub(crate) hashes: Vec<snapshot::Hash>,
    /// The hashes of the units' groups (the state id's input).
    pub(crate) groups: Vec<snapshot::Hash>,
    /// The last snapshot's id, the units changed since, the method.
    pub(crate) since: Option<(snapshot::Hash, Vec<u32>, Method)>,
}
