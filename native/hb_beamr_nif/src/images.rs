//! Images of snapshots, for forks (`hb_beamr:image/1`, `start/3`'s
//! `snapshot`, `hb_beamr:fork/1,2`): the NIF resource that owns an
//! [`Image`] (its memfd is closed when Erlang's GC frees the last
//! reference; forks mapped from it keep their pages), an image built from
//! a snapshot or a chain, one built from a live instance on its thread, and
//! an image adopted by a new instance right after its instantiation.

use rustler::{Resource, ResourceArc};

use crate::context::Worker;
use crate::snapshots::Snapshots;
use hb_beamr_core::errors::Error;
use hb_beamr_core::snapshot;
use hb_beamr_engine::{EngineInstance, Image, InstanceRef};

/// An image, as Erlang holds it (an opaque reference).
pub struct ImageResource {
    pub image: Image,
}

#[rustler::resource_impl]
impl Resource for ImageResource {}

/// The image of a snapshot or of a chain `[Full, Delta, ...]`: every check
/// `restore/2` makes of the chain itself (it decodes, one module, in order,
/// ids that match), the memory as the chain restores it.
pub fn of_chain(chain: &[&[u8]]) -> Result<Image, Error> {
    let first = chain
        .first()
        .ok_or_else(|| Error::InvalidSnapshot("an empty chain".into()))?;
    let ours = snapshot::peek(first)?.fingerprint;
    let plan = snapshot::plan(chain, &ours, u64::MAX)?;
    let mut image = Image::build(ours, plan.globals, plan.memory_size, &plan.writes)?;
    image.tracked = plan.tracked;
    Ok(image)
}

/// The image of an instance's state now (on its thread): its memory and
/// every mutable global.
pub fn of_instance(worker: &Worker, engine: InstanceRef) -> Result<Image, Error> {
    let fingerprint = worker.fingerprint()?;
    let globals = engine.mutable_globals()?;
    let size = engine.memory_size();
    engine.read_with(0, size, |memory| {
        Image::build(fingerprint, globals, size, &[(0, memory)])
    })?
}

/// A freshly instantiated instance takes `image`'s state, as
/// `restore(Snap)` would give it (same checks, same errors, same fuel
/// handling), before anything else can reach it. On an error the caller
/// drops the instance: nothing of a failed fork is left.
pub fn adopt(worker: &Worker, engine: &EngineInstance, image: &Image) -> Result<(), Error> {
    let ours = engine.module().fingerprint;
    if image.fingerprint != ours {
        return Err(Error::SnapshotMismatch(format!(
            "the snapshot is of module {}, this instance runs module {}",
            snapshot::hex(&image.fingerprint),
            snapshot::hex(&ours)
        )));
    }
    let engine = engine.as_ref();
    // The counter is a global: it comes with the image; fuel used stays
    // what this instance used (as in a restore).
    let before = worker.fuel(engine).ok();
    engine.adopt(image)?;
    if let Some((left, _)) = before {
        worker.rebase_fuel(engine, left);
    }
    // As after a restore: the restored state is the base of the next
    // delta where the restore would know its id (a chain), and the kernel's
    // record starts here. A lone snapshot leaves no base (as a restore of
    // one): the next snapshot is untracked, and tracking starts when a
    // delta first needs it, so a fork maps and scans nothing more.
    let mut snapshots = worker.snapshots.borrow_mut();
    *snapshots = Snapshots::default();
    if let Some(tracked) = &image.tracked {
        if engine.memory_size() == image.memory_size() {
            snapshots.tracker.take(engine);
            snapshots.last = Some(tracked.clone());
        }
    }
    Ok(())
}

/// An image term: the resource, `none` for none.
pub type ImageArg = Option<ResourceArc<ImageResource>>;
