//! An instance's memory and state: serving the memory and state operations
//! the protocol lets through (size, read, write, snapshot, delta snapshot,
//! restore, deserialize), and the state as data: snapshots (memory, every
//! mutable global, the module's fingerprint), deltas against the last one,
//! chains restored, and raw memory restored into a fresh instance. The format
//! is `hb_beamr_core::snapshot`'s.

use crate::context::Worker;
use crate::instance::{Op, OpBody};
use crate::mailbox::{Message, ReplyTo};
use crate::snapshots::{Advanced, Snapshots};
use hb_beamr_core::errors::Error;
use hb_beamr_core::snapshot::{self, Body, Header, Kind, Method, Tracked};
use hb_beamr_engine::{DirtyTracker, InstanceRef};

/// Serves an operation the protocol let through, and replies to it.
pub fn serve(worker: &Worker, op: Op) {
    let reply = op.reply;
    let Some(engine) = worker.memory_instance() else {
        return worker.send(&reply, Message::Failed(&Error::Stopped));
    };
    let done = match op.body {
        OpBody::Size => {
            worker.send(&reply, Message::Size(engine.memory_size()));
            Ok(())
        }
        // Straight from linear memory into the reply's binary.
        OpBody::Read { offset, length } => engine.read_with(offset, length, |bytes| {
            worker.send(&reply, Message::Bytes(bytes))
        }),
        OpBody::Write { offset, data } => data
            .with_bytes(|bytes| {
                let tracker = &mut worker.snapshots.borrow_mut().tracker;
                tracker.will_write(engine, offset, bytes.len());
                engine.write(offset, bytes)
            })
            .map(|()| worker.send(&reply, Message::Written)),
        OpBody::Deserialize(data) => data
            .with_bytes(|bytes| {
                let tracker = &mut worker.snapshots.borrow_mut().tracker;
                grow_and_write(engine, &[(0, bytes)], bytes.len() as u64, tracker)
            })
            .map(|()| worker.send(&reply, Message::Written)),
        OpBody::Snapshot => send_snapshot(worker, engine, &reply),
        OpBody::Delta { base, hash_only } => base
            .with_bytes(|base| delta(worker, engine, base, hash_only))
            .map(|bytes| {
                worker.send(
                    &reply,
                    Message::Snapshot {
                        header: &bytes,
                        memory: &[],
                    },
                )
            }),
        OpBody::Restore(data) => {
            // The counter is a global: it comes back with the snapshot.
            // Fuel used stays what this instance used.
            let before = worker.fuel(engine).ok();
            data.with_chain(|chain| restore(worker, engine, chain))
                .map(|()| {
                    if let Some((left, _)) = before {
                        worker.rebase_fuel(engine, left);
                    }
                    worker.send(&reply, Message::Written)
                })
        }
        OpBody::Fuel => worker
            .fuel(engine)
            .map(|(remaining, used)| worker.send(&reply, Message::Fuel { remaining, used })),
        OpBody::AddFuel(more) => worker
            .add_fuel(engine, more)
            .map(|()| worker.send(&reply, Message::Written)),
        OpBody::Image => crate::images::of_instance(worker, engine).map(|image| {
            let image = rustler::ResourceArc::new(crate::images::ImageResource { image });
            worker.send(&reply, Message::Image(image))
        }),
    };
    if let Err(error) = done {
        worker.send(&reply, Message::Failed(&error));
    }
}

/// Sends `{ok, Snapshot}` straight from linear memory (one copy). Once a
/// delta has been asked of this instance its snapshots carry their id,
/// which needs every unit's hash (with the kernel's tracking only the units
/// written since the last snapshot are hashed again); before that they
/// carry none, and cost a copy only.
pub fn send_snapshot(worker: &Worker, engine: InstanceRef, reply: &ReplyTo) -> Result<(), Error> {
    let fingerprint = worker.fingerprint()?;
    let globals = engine.mutable_globals()?;
    let mut snapshots = worker.snapshots.borrow_mut();
    let size = engine.memory_size();
    let header = if snapshots.last.is_some() {
        let Advanced { hashes, groups, .. } = snapshots.advance(engine, false)?;
        let id = snapshot::state_id_of_groups(&fingerprint, size, &globals, &groups);
        snapshots.last = Some(Tracked { id, hashes, groups });
        Header::full(fingerprint, id, size, globals).encode()
    } else {
        Header::untracked(fingerprint, size, globals).encode()
    };
    engine.read_with(0, size, |memory| {
        worker.send(
            reply,
            Message::Snapshot {
                header: &header,
                memory,
            },
        )
    })
}

/// A delta of the state now against `base`: this instance's last snapshot
/// (or restore), whose changed units the kernel or the units' hashes find,
/// or any full snapshot of this module, compared unit by unit.
fn delta(
    worker: &Worker,
    engine: InstanceRef,
    base: &[u8],
    hash_only: bool,
) -> Result<Vec<u8>, Error> {
    let ours = worker.fingerprint()?;
    let given = snapshot::decode(base)?;
    if given.header.fingerprint != ours {
        return Err(Error::SnapshotMismatch(format!(
            "the base is a snapshot of module {}, this instance runs module {}",
            snapshot::hex(&given.header.fingerprint),
            snapshot::hex(&ours)
        )));
    }
    let size = engine.memory_size();
    if given.header.memory_size > size {
        return Err(Error::SnapshotMismatch(format!(
            "the base's memory ({} bytes) is larger than this instance's ({size} bytes): it is \
             not a state this instance was in",
            given.header.memory_size
        )));
    }
    let globals = engine.mutable_globals()?;
    let mut snapshots = worker.snapshots.borrow_mut();
    let is_last = |s: &Snapshots| {
        given.header.id.is_some() && s.last.as_ref().map(|t| Some(t.id)) == Some(given.header.id)
    };
    let (base_id, hashes, groups, changed, method) = if is_last(&snapshots) {
        let Advanced {
            hashes,
            groups,
            since,
        } = snapshots.advance(engine, hash_only)?;
        let (id, changed, method) = since.ok_or(Error::InvalidArgs)?;
        (id, hashes, groups, changed, method)
    } else if let Body::Full(then) = given.body {
        let base_id = match given.header.id {
            Some(id) => id,
            None => snapshot::state_id(
                &given.header.fingerprint,
                given.header.memory_size,
                &given.header.globals,
                &snapshot::unit_hashes(then),
            ),
        };
        // Tracking starts anew from this snapshot.
        snapshots.tracker.take(engine);
        let (changed, hashes) = engine.read_with(0, size, |now| {
            (snapshot::compare(then, now), snapshot::unit_hashes(now))
        })?;
        let groups = snapshot::group_hashes(&hashes);
        (base_id, hashes, groups, changed, Method::Compare)
    } else {
        return Err(Error::SnapshotMismatch(
            "the base is a delta that is not this instance's last snapshot: give the last \
             snapshot taken (or restored) here, or a full snapshot"
                .into(),
        ));
    };
    let id = snapshot::state_id_of_groups(&ours, size, &globals, &groups);
    let header = Header {
        kind: Kind::Delta,
        method,
        base: base_id,
        ..Header::full(ours, id, size, globals)
    };
    snapshots.last = Some(Tracked { id, hashes, groups });
    engine.read_with(0, size, |memory| {
        snapshot::encode_delta(&header, &changed, memory)
    })
}

/// Restores a snapshot, or a chain `[Full, Delta, ...]`, of the module this
/// instance runs: everything is checked (the chain's order, every id
/// against its contents, the globals) before anything changes, except that
/// memory may have grown.
fn restore(worker: &Worker, engine: InstanceRef, chain: &[&[u8]]) -> Result<(), Error> {
    let ours = worker.fingerprint()?;
    let plan = snapshot::plan(chain, &ours, engine.max_memory_size())?;
    engine.check_state_size(plan.memory_size)?;
    let globals = engine.check_globals(&plan.globals)?;
    let mut snapshots = worker.snapshots.borrow_mut();
    // Growing may fail (then only memory has grown, with zeros: the last
    // snapshot is still the base of the next delta); writing cannot.
    let kept = grow(engine, &plan.writes, plan.memory_size)?;
    snapshots.last = None;
    write(engine, &plan.writes, kept, &mut snapshots.tracker)?;
    engine.set_globals(globals);
    // The restored state is the base of the next delta; the writes above
    // are not changes since it.
    snapshots.tracker.take(engine);
    if engine.memory_size() == plan.memory_size {
        snapshots.last = plan.tracked;
    }
    Ok(())
}

/// Grows linear memory to `size` bytes, then makes `writes` (offset,
/// bytes), in order; zeros past what the instance may grow to are not
/// written ([`InstanceRef::grow_for_state`]).
pub fn grow_and_write(
    engine: InstanceRef,
    writes: &[(u64, &[u8])],
    size: u64,
    tracker: &mut DirtyTracker,
) -> Result<(), Error> {
    let kept = grow(engine, writes, size)?;
    write(engine, writes, kept, tracker)
}

/// Grows memory for `writes` of a state of `size` bytes; how many bytes of
/// memory to write.
fn grow(engine: InstanceRef, writes: &[(u64, &[u8])], size: u64) -> Result<u64, Error> {
    engine.grow_for_state(size, |max| {
        writes.iter().all(|(at, bytes)| {
            let from = max.saturating_sub(*at).min(bytes.len() as u64) as usize;
            bytes[from..].iter().all(|b| *b == 0)
        })
    })
}

/// Makes `writes` within the first `kept` bytes of memory (telling the
/// dirty-page tracker first).
fn write(
    engine: InstanceRef,
    writes: &[(u64, &[u8])],
    kept: u64,
    tracker: &mut DirtyTracker,
) -> Result<(), Error> {
    for (at, bytes) in writes {
        let n = kept.saturating_sub(*at).min(bytes.len() as u64) as usize;
        if n > 0 {
            tracker.will_write(engine, *at, n);
            engine.write(*at, &bytes[..n])?;
        }
    }
    Ok(())
}
