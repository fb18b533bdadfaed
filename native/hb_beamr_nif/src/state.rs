//! An instance's memory and state: serving the memory and state operations
//! the protocol lets through (size, read, write, snapshot, restore,
//! deserialize), and the state as data: snapshots (memory, every mutable
//! global, the module's fingerprint) and raw memory restored into a fresh
//! instance. The format is `hb_beamr_core::snapshot`'s.

use crate::context::Worker;
use crate::instance::{Op, OpBody};
use crate::mailbox::{Message, ReplyTo};
use hb_beamr_core::errors::Error;
use hb_beamr_core::snapshot;
use hb_beamr_engine::InstanceRef;

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
            .with_bytes(|bytes| engine.write(offset, bytes))
            .map(|()| worker.send(&reply, Message::Written)),
        OpBody::Deserialize(data) => data
            .with_bytes(|bytes| grow_and_write(engine, bytes))
            .map(|()| worker.send(&reply, Message::Written)),
        OpBody::Snapshot => send_snapshot(worker, engine, &reply),
        OpBody::Restore(data) => {
            // The counter is a global: it comes back with the snapshot.
            // Fuel used stays what this instance used.
            let before = worker.fuel(engine).ok();
            data.with_bytes(|bytes| restore(engine, &worker.fingerprint()?, bytes))
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
    };
    if let Err(error) = done {
        worker.send(&reply, Message::Failed(&error));
    }
}

/// Sends `{ok, Snapshot}` straight from linear memory (one copy).
pub fn send_snapshot(worker: &Worker, engine: InstanceRef, reply: &ReplyTo) -> Result<(), Error> {
    let header = snapshot_header(engine, worker.fingerprint()?)?;
    engine.read_with(0, engine.memory_size(), |memory| {
        worker.send(
            reply,
            Message::Snapshot {
                header: &header,
                memory,
            },
        )
    })
}

/// A snapshot's header and globals; its memory is sent right after them.
pub fn snapshot_header(engine: InstanceRef, fingerprint: [u8; 32]) -> Result<Vec<u8>, Error> {
    Ok(snapshot::Header {
        fingerprint,
        memory_size: engine.memory_size(),
        globals: engine.mutable_globals()?,
    }
    .encode())
}

/// Restores a snapshot of the module whose fingerprint is `ours`:
/// everything is checked before anything changes, except that memory may
/// have grown.
pub fn restore(engine: InstanceRef, ours: &[u8; 32], bytes: &[u8]) -> Result<(), Error> {
    let (header, memory) = snapshot::Header::decode(bytes)?;
    if header.fingerprint != *ours {
        return Err(Error::SnapshotMismatch(format!(
            "the snapshot is of module {}, this instance runs module {}",
            snapshot::hex(&header.fingerprint),
            snapshot::hex(ours)
        )));
    }
    let current = engine.memory_size();
    if current > header.memory_size {
        return Err(Error::SnapshotMismatch(format!(
            "this instance's memory ({current} bytes) is larger than the snapshot's ({} \
             bytes) and cannot shrink: restore into a fresh instance",
            header.memory_size
        )));
    }
    let globals = engine.check_globals(&header.globals)?;
    grow_and_write(engine, memory)?;
    engine.set_globals(globals);
    Ok(())
}

/// Writes `memory` from offset 0, growing linear memory to its size first.
/// Zeros past what the instance may grow to are no state (fresh pages are
/// zero): they are not written, so a snapshot one page larger than a module
/// that cannot grow still restores (HyperBEAM's runtime counts one page more
/// for modules that export `malloc` but not `free`).
pub fn grow_and_write(engine: InstanceRef, memory: &[u8]) -> Result<(), Error> {
    match engine.grow_to(memory.len() as u64) {
        Ok(()) => engine.write(0, memory),
        Err(Error::SnapshotTooLarge { max, .. })
            if memory
                .get(usize::try_from(max).unwrap_or(usize::MAX)..)
                .is_some_and(|tail| tail.iter().all(|b| *b == 0)) =>
        {
            let kept = &memory[..memory.len().min(max as usize)];
            engine.grow_to(kept.len() as u64)?;
            engine.write(0, kept)
        }
        Err(error) => Err(error),
    }
}
