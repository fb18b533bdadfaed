//! Running the calls the protocol starts: the instantiation (the first
//! call), calls of exports, and the retiring snapshot. Each reads the events
//! that came just before its WebAssembly begins and just after it returns,
//! and reports the engine's result to the protocol, which gives the reply.

use crate::context::Worker;
use crate::instance::{Call, Job};
use crate::mailbox::Message;
use crate::module_source::ModuleSource;
use crate::state;
use hb_beamr_core::errors::Error;
use hb_beamr_engine::{EngineInstance, Limits, Mode, Module, ModuleHold, Refusal, MODULES};

/// Runs a call of an export (or the retiring snapshot).
pub fn run(worker: &Worker, call: Call) {
    let (target, args, budget) = match &call.body.job {
        Job::Call {
            target,
            args,
            budget,
        } => (target, args, *budget),
        Job::Retire => return retire(worker, &call),
        // Only ever the first call, which `instantiate` runs.
        Job::Instantiate => return finish(worker, Err(Error::Stopped)),
    };
    let top_level = worker.protocol.borrow().depth() == 1;
    if top_level {
        worker.shared.begin_call(call.id);
    }
    worker.read_events();
    let entering = worker.protocol.borrow().entering();
    let result = match (entering, worker.engine.get()) {
        (Err(failure), _) => Err(failure.error()),
        (Ok(()), None) => Err(Error::Stopped),
        (Ok(()), Some(engine)) => {
            let budget = budget.map_or(Ok(()), |fuel| worker.set_fuel(engine.as_ref(), fuel));
            budget.and_then(|()| {
                worker.mark_call(Some(engine.as_ref()), true);
                let result = engine.call(target, args);
                worker.mark_call(None, false);
                result
            })
        }
    };
    if top_level && worker.shared.end_call() {
        // Interrupted (timeout, stop): no exception or flag may linger for
        // the next call. The event that caused it is read next.
        if let Some(engine) = worker.engine.get() {
            engine.clear_interrupt();
        }
    }
    worker.read_events();
    finish(worker, result);
    // `call.body` drops here: the monitor on the caller is released.
}

fn finish(worker: &Worker, result: Result<Vec<hb_beamr_core::values::Value>, Error>) {
    let finished = worker.protocol.borrow_mut().finished(result);
    if let Some((reply, next)) = finished {
        worker.reply(reply);
        worker.decided(next);
    }
}

/// Takes the snapshot of a retiring instance. The protocol stops the
/// instance once it is taken (every queued request is refused, nothing runs
/// after) and lets it serve on if it failed. The snapshot goes to the
/// caller straight from linear memory, so the reply only says whether it
/// went.
fn retire(worker: &Worker, call: &Call) {
    let entering = worker.protocol.borrow().entering();
    let taken = match (entering, worker.engine.get()) {
        (Err(failure), _) => Err(failure.error()),
        (Ok(()), None) => Err(Error::Stopped),
        (Ok(()), Some(engine)) => state::send_snapshot(worker, engine.as_ref(), &call.reply),
    };
    let finished = worker.protocol.borrow_mut().finished(taken);
    if let Some((reply, next)) = finished {
        if let Err(error) = &reply.result {
            worker.send(&reply.to, Message::Failed(error));
        }
        worker.decided(next);
    }
}

/// Runs the instantiation, the first call: loads the module, instantiates
/// it (its start function and constructors may import, and may be
/// interrupted), and replies with its imports and exports.
pub fn instantiate(
    worker: &Worker,
    call: Call,
    source: ModuleSource,
    (mode, deterministic, metered): (Mode, bool, bool),
    limits: Limits,
    image: crate::images::ImageArg,
) {
    let module = module(source, mode, deterministic, metered);
    let id = call.id;
    let watch = |interrupter: Option<&_>| match interrupter {
        Some(interrupter) => {
            worker.shared.begin_instantiation(interrupter, id);
            worker.read_events();
            let entering = worker.protocol.borrow().entering();
            if entering.is_err() {
                // Doomed before its start function begins: it is
                // interrupted at once.
                worker.shared.interrupt(Some(id));
            }
        }
        None => {
            // Whether it was interrupted does not matter: if it was, it is
            // doomed, and the instance is freed.
            let _ = worker.shared.end_call();
            worker.shared.set_instance(None);
        }
    };
    let started = module.and_then(|module| {
        worker
            .shared
            .set_has_erlang_imports(module.has_host_imports);
        if let Some(meter) = worker.meter.borrow_mut().as_mut() {
            meter.global = module.meter_global;
        }
        worker.mark_call(None, true);
        let started = EngineInstance::new_watched(module, limits, &watch);
        worker.mark_call(None, false);
        started
    });
    // The start fuel goes in; then a fork takes the image's state before
    // anyone can reach it (its fuel is rebased, as a restore's is). If it
    // cannot, the start fails like any failed instantiation: the instance
    // is freed and stops, nothing of the fork is left.
    let started = started.and_then(|engine| {
        worker.deposit_start_fuel(engine.as_ref());
        match &image {
            Some(image) => crate::images::adopt(worker, &engine, &image.image).map(|()| engine),
            None => Ok(engine),
        }
    });
    // A timeout or stop that ended the start function (the interpreter
    // returns from an interrupted start as if it had finished) is among
    // these, and dooms the call.
    worker.read_events();
    let finished = worker.protocol.borrow_mut().finished(started);
    let Some((reply, next)) = finished else {
        return;
    };
    match reply.result {
        Ok(engine) => {
            worker.send(
                &reply.to,
                Message::Started {
                    imports: &engine.module().imports,
                    exports: &engine.module().exports,
                },
            );
            worker.shared.set_instance(Some(engine.interrupter()));
            let _ = worker.engine.set(engine);
        }
        Err(error) => worker.send(&reply.to, Message::Failed(&error)),
    }
    worker.decided(next);
}

/// The instance's module: the shared one the start NIF found, or the one of
/// its key in the registry, loaded here (once, however many start it at
/// once: the others wait for this load).
fn module(
    source: ModuleSource,
    mode: Mode,
    deterministic: bool,
    metered: bool,
) -> Result<ModuleHold, Error> {
    let load = |bytes, sha256| load(bytes, mode, (deterministic, metered), sha256);
    match source {
        ModuleSource::Shared(lease) => Ok(lease.into()),
        ModuleSource::Own { key, bytes } => load(bytes, key.sha256).map(ModuleHold::from),
        ModuleSource::Bytes { key, bytes } => {
            let size = bytes.len() as u64;
            MODULES
                .lease_or_load(key, size, || load(bytes, key.sha256))
                .map(ModuleHold::from)
                .map_err(|refusal| match refusal {
                    Refusal::Load(error) => error,
                    Refusal::Full { live, size, max } => Error::ModuleLimit {
                        loaded: live,
                        size,
                        max,
                    },
                })
        }
    }
}

/// Loads the module, here on the instance's thread. With `deterministic`,
/// bytecode is rewritten to canonicalize NaNs (its fingerprint stays the
/// original's, `sha256`, so its snapshots restore into AOT code compiled from
/// it), and an AOT file must have been compiled so. `sha256` is the SHA-256 of
/// `bytes`, computed once for the registry's key.
fn load(
    bytes: Vec<u8>,
    mode: Mode,
    (deterministic, metered): (bool, bool),
    sha256: [u8; 32],
) -> Result<Module, Error> {
    if metered {
        return load_metered(bytes, mode, deterministic, sha256);
    }
    if mode == Mode::Aot && hb_beamr_core::aot_tag::meter_section(&bytes).is_some() {
        return Err(Error::InvalidAot(
            "compiled from a metered module: start it with fuel".into(),
        ));
    }
    match (deterministic, mode) {
        (false, _) => hb_beamr_engine::load_module_hashed(bytes, mode, sha256),
        (true, Mode::Wasm) => {
            let canonical = hb_beamr_nan::canonicalize(&bytes)
                .map_err(|why| Error::InvalidWasm(why.to_string()))?;
            drop(bytes);
            hb_beamr_engine::load_module_hashed(canonical, mode, sha256)
        }
        (true, Mode::Aot) => match hb_beamr_core::aot_tag::deterministic_refusal(&bytes) {
            Some(why) => Err(Error::InvalidAot(why)),
            None => hb_beamr_engine::load_module_hashed(bytes, mode, sha256),
        },
    }
}

/// Loads a metered module (`fuel`): bytecode is rewritten here, exception
/// handling first (`hb_beamr_eh`, so that the interpreter runs what AOT
/// code runs), then NaNs with `deterministic`, then metered
/// (`hb_beamr_meter`), per docs/metering.md; an AOT file must have been
/// compiled so (`compile(Wasm, #{metered => true})`, which marks it with the
/// `hb_beamr.meter` section). The fingerprint stays the original's.
fn load_metered(
    bytes: Vec<u8>,
    mode: Mode,
    deterministic: bool,
    sha256: [u8; 32],
) -> Result<Module, Error> {
    let invalid = |why: String| Error::InvalidWasm(why);
    let (bytes, global) = match mode {
        Mode::Wasm => {
            let lowered = if hb_beamr_core::wasm_sections::uses_exception_handling(&bytes) {
                match hb_beamr_eh::rewrite(&bytes).map_err(|why| invalid(why.to_string()))? {
                    hb_beamr_eh::Outcome::Rewritten(lowered) => lowered,
                    hb_beamr_eh::Outcome::Unchanged => bytes,
                }
            } else {
                bytes
            };
            let canonical = if deterministic {
                hb_beamr_nan::canonicalize(&lowered).map_err(|why| invalid(why.to_string()))?
            } else {
                lowered
            };
            let metered = hb_beamr_meter::meter(&canonical, &hb_beamr_meter::Options::default())
                .map_err(|why| invalid(why.to_string()))?;
            (metered.wasm, metered.info.fuel_global)
        }
        Mode::Aot => {
            if deterministic {
                if let Some(why) = hb_beamr_core::aot_tag::deterministic_refusal(&bytes) {
                    return Err(Error::InvalidAot(why));
                }
            }
            let info = hb_beamr_core::aot_tag::meter_section(&bytes)
                .and_then(hb_beamr_meter::MeterInfo::decode)
                .ok_or_else(|| {
                    Error::InvalidAot(
                        "compiled without metering: recompile with \
                         hb_beamr:compile(Wasm, #{metered => true})"
                            .into(),
                    )
                })?;
            // Fuel is only the same where the cost table is.
            let ours = (
                hb_beamr_meter::abi::ABI_VERSION,
                hb_beamr_meter::COST_TABLE_VERSION,
            );
            if (info.abi_version, info.cost_table_version) != ours {
                return Err(Error::InvalidAot(format!(
                    "metered with interface {} and cost table {}, this runtime meters with {} \
                     and {}: recompile it",
                    info.abi_version, info.cost_table_version, ours.0, ours.1
                )));
            }
            (bytes, info.fuel_global)
        }
    };
    let mut module = hb_beamr_engine::load_module_hashed(bytes, mode, sha256)?;
    module.meter_global = Some(global);
    Ok(module)
}
