//! hb_beamr's NIF: WebAssembly instances run by WAMR, one native worker
//! thread per instance, driven from Erlang by messages.
//!
//! Every NIF here only validates its arguments and hands a command to an
//! instance's thread (or starts one); none runs WebAssembly on a scheduler.
//! Replies come back as `{hb_beamr, Id, Message}` to the calling process,
//! where `Id` is the integer the NIF returned. See `src/hb_beamr.erl`.
//! Terms are decoded and encoded in `codec` (with `codec::errors`, the
//! term of each error, and `codec::raw`, the raw protocol's commands);
//! this file holds the NIF entry points and the commands they make.

pub mod actions;
pub mod calls;
pub mod codec;
pub mod context;
pub mod fuel;
pub mod identity;
pub mod images;
pub mod imports;
pub mod instance;
pub mod mailbox;
pub mod meter;
pub mod module_source;
pub mod reclaim;
pub mod snapshots;
pub mod state;
pub mod worker;

use rustler::{Atom, Binary, Encoder, Env, LocalPid, ResourceArc, Term};

use codec::raw::RawCommand;
use codec::{decode_numbers, decode_target, error_term, reply_result};
use hb_beamr_core::errors::Error;
use hb_beamr_core::protocol::{CallKind, FuelMode, ImportMode};
use hb_beamr_engine::{Bounds, Limits, Mode};
use instance::{
    Call, CallBody, CallMonitor, Command, InstanceResource, Job, Op, OpBody, Shared, WriteData,
};
use mailbox::ReplyTo;

mod atoms {
    rustler::atoms! {
        ok,
        error,
        wasm,
        aot,
        none,
    }
}

fn instance_of(worker: &LocalPid) -> Result<ResourceArc<InstanceResource>, Error> {
    instance::lookup(worker).ok_or(Error::Stopped)
}

/// Sends a memory or state operation; returns the reply's id.
fn request(env: Env, worker: &LocalPid, body: OpBody) -> Result<u64, Error> {
    let resource = instance_of(worker)?;
    let id = instance::next_id();
    let reply = ReplyTo {
        pid: env.pid(),
        id: Some(id),
    };
    resource.shared.send(Command::Op(Op { reply, body }))?;
    Ok(id)
}

/// Starts an instance of `bytes` for the Erlang worker process `worker`.
/// Returns an id; the thread then sends `{hb_beamr, Id, {execution_result,
/// Imports, Exports}}` or `{hb_beamr, Id, {error, Reason}}`. With
/// `serve_imports`, imports called during instantiation (start function,
/// constructors) come to the caller as `{hb_beamr, Id, {import, ...}}`, as
/// in a call. `deterministic` canonicalizes NaNs; a `fuel` of 0 or more
/// meters the instance with that start fuel (see `fuel.rs`; negative: not
/// metered). With an `image` (from `image/1` or `image_of/1`; `none`:
/// none) the instance is a fork: it takes the image's state right after
/// instantiation, or the start fails. Dirty: the module is copied (WAMR
/// needs a writable buffer it keeps).
#[allow(clippy::too_many_arguments)]
#[rustler::nif(schedule = "DirtyCpu")]
fn start<'a>(
    env: Env<'a>,
    worker: LocalPid,
    bytes: Binary,
    mode: Atom,
    limits: (u64, u32, u64, (u64, u64, bool)),
    serve_imports: bool,
    (deterministic, fuel): (bool, i64),
    image: Term<'a>,
) -> Term<'a> {
    let image: images::ImageArg = match image.decode::<ResourceArc<images::ImageResource>>() {
        Ok(image) => Some(image),
        Err(_) if image.atom_to_string().is_ok_and(|a| a == "none") => None,
        Err(_) => return error_term(env, Error::InvalidArgs),
    };
    // Metered with this start fuel; negative: not metered.
    let fuel = u64::try_from(fuel).ok();
    let (max_memory, wasm_stack, native_stack, (modules_max, modules_idle, share)) = limits;
    let limits = Limits {
        max_memory,
        wasm_stack,
        native_stack: usize::try_from(native_stack).unwrap_or(usize::MAX),
    };
    let mode = if mode == atoms::aot() {
        Mode::Aot
    } else {
        Mode::Wasm
    };
    if let Err(error) = hb_beamr_engine::ensure_runtime() {
        return error_term(env, error);
    }
    // The key's SHA-256, computed once per binary started again and again.
    let sha256 = identity::fingerprint(bytes.to_term(env), &bytes);
    let module = module_source::ModuleSource::of(
        bytes.as_slice(),
        sha256,
        mode,
        (deterministic, fuel.is_some()),
        Bounds {
            max_bytes: modules_max,
            idle_bytes: modules_idle,
        },
        share,
    );
    let (shared, rx) = Shared::new();
    let resource = ResourceArc::new(InstanceResource {
        shared: shared.clone(),
        worker,
    });
    // The instance lives as long as its worker process: its exit stops it.
    if resource.monitor(Some(env), &worker).is_none() {
        return error_term(env, Error::Stopped);
    }
    let id = instance::next_id();
    let caller = env.pid();
    // A start that waits on its caller for imports watches it.
    let monitor = if serve_imports {
        watch(env, &resource, &caller)
    } else {
        None
    };
    let start = Call {
        id,
        reply: ReplyTo {
            pid: caller,
            id: Some(id),
        },
        kind: CallKind::Start,
        imports: if serve_imports {
            ImportMode::Erlang
        } else {
            ImportMode::Refuse
        },
        fuel: FuelMode::Stop,
        body: CallBody {
            job: Job::Instantiate,
            monitor,
        },
    };
    instance::register(worker, resource);
    let startup = worker::Startup {
        shared,
        rx,
        module,
        mode,
        deterministic,
        fuel,
        limits,
        start,
        image,
    };
    match worker::spawn(startup) {
        Ok(()) => id.encode(env),
        Err(error) => {
            instance::unregister(&worker);
            error_term(env, error)
        }
    }
}

/// Monitors `caller` for the life of one call request.
fn watch(
    env: Env,
    resource: &ResourceArc<InstanceResource>,
    caller: &LocalPid,
) -> Option<CallMonitor> {
    resource
        .monitor(Some(env), caller)
        .map(|monitor| CallMonitor {
            resource: resource.clone(),
            monitor,
        })
}

/// A call request of `caller`; a call that may wait on its caller for an
/// import watches it, so the caller's exit cannot leave the instance
/// waiting.
fn call_command(
    env: Env,
    resource: &ResourceArc<InstanceResource>,
    reply: ReplyTo,
    job: Job,
    (imports, fuel): (ImportMode, FuelMode),
) -> (u64, Command) {
    let asks = imports == ImportMode::Erlang && resource.shared.may_import_from_erlang();
    let monitor = if asks || fuel == FuelMode::Erlang {
        watch(env, resource, &reply.pid)
    } else {
        None
    };
    let id = reply.id.unwrap_or_else(instance::next_id);
    let kind = match job {
        Job::Instantiate => CallKind::Start,
        Job::Call { .. } => CallKind::Export,
        Job::Retire => CallKind::Retire,
    };
    let call = Call {
        id,
        reply,
        kind,
        imports,
        fuel,
        body: CallBody { job, monitor },
    };
    (id, Command::Call(call))
}

/// Calls a function. `stub` says that imports answer zeros natively.
#[rustler::nif]
fn call<'a>(
    env: Env<'a>,
    worker: LocalPid,
    target: Term<'a>,
    arguments: Term<'a>,
    stub: bool,
) -> Term<'a> {
    call_with(env, worker, (target, arguments), stub, None, FuelMode::Stop)
}

/// Calls a function of a metered instance: `budget` (negative: none) sets
/// the counter first; with `ask_fuel`, fuel exhaustion is asked of the
/// caller (an `{import, <<"hb_beamr">>, <<"out_of_fuel">>, [Needed], _}`
/// request, answered with `[More]` or `[]` to stop).
#[rustler::nif]
fn call_fuel<'a>(
    env: Env<'a>,
    worker: LocalPid,
    target: Term<'a>,
    arguments: Term<'a>,
    stub: bool,
    budget: i64,
    ask_fuel: bool,
) -> Term<'a> {
    let fuel = if ask_fuel {
        FuelMode::Erlang
    } else {
        FuelMode::Stop
    };
    let budget = u64::try_from(budget).ok();
    call_with(env, worker, (target, arguments), stub, budget, fuel)
}

fn call_with<'a>(
    env: Env<'a>,
    worker: LocalPid,
    (target, arguments): (Term<'a>, Term<'a>),
    stub: bool,
    budget: Option<u64>,
    fuel: FuelMode,
) -> Term<'a> {
    let result = (|| {
        let target = decode_target(target)?;
        let args = decode_numbers(arguments)?;
        let resource = instance_of(&worker)?;
        let imports = if stub {
            ImportMode::Stub
        } else {
            ImportMode::Erlang
        };
        let reply = ReplyTo {
            pid: env.pid(),
            id: Some(instance::next_id()),
        };
        let job = Job::Call {
            target,
            args,
            budget,
        };
        let (id, command) = call_command(env, &resource, reply, job, (imports, fuel));
        resource.shared.send(command)?;
        Ok(id)
    })();
    reply_result(env, result)
}

/// Answers the pending import of call `id`; only the call's owner may.
#[rustler::nif]
fn import_response<'a>(env: Env<'a>, worker: LocalPid, id: u64, results: Term<'a>) -> Term<'a> {
    let result = decode_numbers(results).and_then(|results| {
        instance_of(&worker)?.shared.send(Command::ImportResponse {
            from: env.pid(),
            call_id: Some(id),
            results,
        })
    });
    match result {
        Ok(()) => atoms::ok().encode(env),
        Err(error) => error_term(env, error),
    }
}

/// Aborts the pending import of call `id`: the WebAssembly call unwinds.
#[rustler::nif]
fn abort_import(env: Env, worker: LocalPid, id: u64) -> Atom {
    if let Ok(resource) = instance_of(&worker) {
        let _ = resource.shared.send(Command::AbortImport {
            from: env.pid(),
            call_id: id,
        });
    }
    atoms::ok()
}

#[rustler::nif]
fn size(env: Env, worker: LocalPid) -> Term {
    let result = request(env, &worker, OpBody::Size);
    reply_result(env, result)
}

#[rustler::nif]
fn read(env: Env, worker: LocalPid, offset: u64, length: u64) -> Term {
    let result = request(env, &worker, OpBody::Read { offset, length });
    reply_result(env, result)
}

/// Writes `data` at `offset`. O(1) whatever the size: a large binary is
/// passed to the worker by reference (see `WriteData`).
#[rustler::nif]
fn write<'a>(env: Env<'a>, worker: LocalPid, offset: u64, data: Binary<'a>) -> Term<'a> {
    let data = WriteData::from_binary(env, data);
    let result = request(env, &worker, OpBody::Write { offset, data });
    reply_result(env, result)
}

/// `{AbiVersion, CostTableVersion}` of the metering this runtime does
/// (`hb_beamr_meter`): part of the compile cache's key for metered modules.
#[rustler::nif]
fn meter_version() -> (u32, u32) {
    (
        hb_beamr_meter::abi::ABI_VERSION,
        hb_beamr_meter::COST_TABLE_VERSION,
    )
}

/// A metered instance's fuel: `{ok, #{remaining, used}}` arrives.
#[rustler::nif]
fn fuel(env: Env, worker: LocalPid) -> Term {
    let result = request(env, &worker, OpBody::Fuel);
    reply_result(env, result)
}

/// Adds fuel to a metered instance's counter: `ok` arrives.
#[rustler::nif]
fn add_fuel(env: Env, worker: LocalPid, more: u64) -> Term {
    let result = request(env, &worker, OpBody::AddFuel(more));
    reply_result(env, result)
}

/// Takes a snapshot: `{ok, Snapshot}` arrives as the reply.
#[rustler::nif]
fn snapshot(env: Env, worker: LocalPid) -> Term {
    let result = request(env, &worker, OpBody::Snapshot);
    reply_result(env, result)
}

/// Retires the instance: in turn after the calls before it, takes a
/// snapshot (`{ok, Snapshot}` arrives), then refuses every later call.
#[rustler::nif]
fn retire(env: Env, worker: LocalPid) -> Term {
    let result = instance_of(&worker).and_then(|resource| {
        let reply = ReplyTo {
            pid: env.pid(),
            id: Some(instance::next_id()),
        };
        let (id, command) = call_command(
            env,
            &resource,
            reply,
            Job::Retire,
            (ImportMode::Refuse, FuelMode::Stop),
        );
        resource.shared.send(command)?;
        Ok(id)
    });
    reply_result(env, result)
}

/// Takes a delta against `base`: `{ok, Delta}` arrives as the reply.
#[rustler::nif]
fn snapshot_delta<'a>(
    env: Env<'a>,
    worker: LocalPid,
    base: Binary<'a>,
    hash_only: bool,
) -> Term<'a> {
    let base = WriteData::from_binary(env, base);
    let result = request(env, &worker, OpBody::Delta { base, hash_only });
    reply_result(env, result)
}

/// `image(Snapshot | [Full, Delta, ...])` → `{ok, Image}`: the state the
/// snapshot (or chain) restores, prepared for forks (`start/3`'s
/// `snapshot`): its memory written once into a sealed memfd that forks map
/// copy-on-write. Dirty: it writes the whole memory.
#[rustler::nif(schedule = "DirtyCpu")]
fn image<'a>(env: Env<'a>, data: Term<'a>) -> Term<'a> {
    let built = if let Ok(binary) = data.decode::<Binary>() {
        images::of_chain(&[binary.as_slice()])
    } else if let Ok(list) = data.decode::<Vec<Binary>>() {
        let slices = list.iter().map(|b| b.as_slice()).collect::<Vec<_>>();
        images::of_chain(&slices)
    } else {
        Err(Error::InvalidArgs)
    };
    match built {
        Ok(image) => (
            atoms::ok(),
            ResourceArc::new(images::ImageResource { image }),
        )
            .encode(env),
        Err(error) => error_term(env, error),
    }
}

/// An image of the instance's state now, made on its thread (in turn, as
/// a snapshot is): `{ok, Image}` arrives.
#[rustler::nif]
fn image_of(env: Env, worker: LocalPid) -> Term {
    let result = request(env, &worker, OpBody::Image);
    reply_result(env, result)
}

/// `image_info(Image)` → `{MemorySize, Fingerprint}`.
#[rustler::nif]
fn image_info<'a>(env: Env<'a>, image: ResourceArc<images::ImageResource>) -> Term<'a> {
    let fingerprint = rustler::OwnedBinary::from_slice(&image.image.fingerprint).release(env);
    (image.image.memory_size(), fingerprint).encode(env)
}

/// Restores a snapshot or a chain `[Full, Delta, ...]` (O(1) here: the
/// binaries go to the thread by reference).
#[rustler::nif]
fn restore<'a>(env: Env<'a>, worker: LocalPid, data: Term<'a>) -> Term<'a> {
    let result = WriteData::from_chain(env, data)
        .and_then(|data| request(env, &worker, OpBody::Restore(data)));
    reply_result(env, result)
}

/// Writes raw memory from offset 0, growing memory to its size first.
#[rustler::nif]
fn deserialize<'a>(env: Env<'a>, worker: LocalPid, data: Binary<'a>) -> Term<'a> {
    let data = WriteData::from_binary(env, data);
    let result = request(env, &worker, OpBody::Deserialize(data));
    reply_result(env, result)
}

/// The original driver's raw protocol: `term_to_binary(Cmd)` with Cmd one of
/// `{call, Name, Args}`, `{indirect_call, Index, Args}`, `{import_response,
/// Results}`, `{size}`, `{read, Offset, Len}`, `{write, Offset, Bin}`.
/// Replies go untagged to the calling process.
#[rustler::nif(schedule = "DirtyCpu")]
fn send_raw<'a>(env: Env<'a>, worker: LocalPid, command: Binary<'a>) -> Term<'a> {
    let result = instance_of(&worker).and_then(|resource| {
        let command = raw_command(env, &resource, command.as_slice())?;
        resource.shared.send(command)
    });
    match result {
        Ok(()) => atoms::ok().encode(env),
        Err(error) => error_term(env, error),
    }
}

/// The instance's command of a raw command (see `codec::raw`).
fn raw_command(
    env: Env,
    resource: &ResourceArc<InstanceResource>,
    bytes: &[u8],
) -> Result<Command, Error> {
    let reply = ReplyTo {
        pid: env.pid(),
        id: None,
    };
    let op = |body| Ok(Command::Op(Op { reply, body }));
    match codec::raw::decode(env, bytes)? {
        RawCommand::Call { target, args } => {
            let job = Job::Call {
                target,
                args,
                budget: None,
            };
            let modes = (ImportMode::Erlang, FuelMode::Stop);
            Ok(call_command(env, resource, reply, job, modes).1)
        }
        RawCommand::ImportResponse(results) => Ok(Command::ImportResponse {
            from: env.pid(),
            call_id: None,
            results,
        }),
        RawCommand::Size => op(OpBody::Size),
        RawCommand::Read { offset, length } => op(OpBody::Read { offset, length }),
        RawCommand::Write { offset, data } => op(OpBody::Write {
            offset,
            data: WriteData::from_binary(env, data),
        }),
    }
}

/// Stops the instance of `worker` (idempotent): a running call is stopped
/// inside WebAssembly, then the worker thread frees the instance and answers
/// anything still queued with `{error, stopped}`.
#[rustler::nif]
fn stop(worker: LocalPid) -> Atom {
    instance::stop(&worker);
    atoms::ok()
}

/// Stops call `id` inside WebAssembly because it ran past its timeout; it
/// then answers `{error, timeout}`. A pending import of it is aborted.
#[rustler::nif]
fn timeout(worker: LocalPid, id: u64) -> Atom {
    if let Ok(resource) = instance_of(&worker) {
        // The event first: the protocol decides; the interrupt only makes
        // the worker read it now if the call runs WebAssembly.
        if resource
            .shared
            .send(Command::Timeout { call_id: id })
            .is_ok()
        {
            resource.shared.interrupt(Some(id));
        }
    }
    atoms::ok()
}

/// How many instances are registered (for tests and leak checks).
#[rustler::nif]
fn live_instances() -> usize {
    instance::live_instances()
}

/// `module_stats()` → a map of the shared-module registry's counters and
/// sizes (see hb_beamr:module_stats/0).
#[rustler::nif]
fn module_stats(env: Env) -> Term {
    let stats = hb_beamr_engine::MODULES.stats();
    let pairs = [
        ("loads", stats.loads),
        ("hits", stats.hits),
        ("evictions", stats.evictions),
        ("refused", stats.refused),
        ("live_modules", stats.live_modules),
        ("idle_modules", stats.idle_modules),
        ("instances", stats.leases),
        ("bytes", stats.bytes),
    ];
    let pairs: Vec<(Term, Term)> = pairs
        .iter()
        .map(|(name, value)| {
            (
                Atom::from_str(env, name)
                    .map(|a| a.encode(env))
                    .unwrap_or_else(|_| name.encode(env)),
                value.encode(env),
            )
        })
        .collect();
    Term::map_from_pairs(env, &pairs).unwrap_or_else(|_| atoms::error().encode(env))
}

/// `purge_modules()` → how many loaded modules without a live instance
/// were freed.
#[rustler::nif]
fn purge_modules() -> usize {
    hb_beamr_engine::MODULES.purge_idle()
}

/// `memo_get(Binary, Tag)` → `{ok, Value}` kept by `memo_put/3` for this
/// very binary (by identity, see `identity.rs`) under `Tag`, or `none`.
#[rustler::nif]
fn memo_get<'a>(env: Env<'a>, binary: Binary<'a>, tag: Binary<'a>) -> Term<'a> {
    match identity::get(env, &binary, tag.as_slice()) {
        Some(value) => (atoms::ok(), value).encode(env),
        None => atoms::none().encode(env),
    }
}

/// `memo_put(Binary, Tag, Value)` → whether `Value` is kept for this
/// binary under `Tag` (false for a binary too small to know by identity).
/// Only for a value that follows from the binary's bytes and the tag.
#[rustler::nif]
fn memo_put<'a>(env: Env<'a>, binary: Binary<'a>, tag: Binary<'a>, value: Term<'a>) -> bool {
    identity::put(binary.to_term(env), &binary, tag.as_slice(), value)
}

/// `memo_stats()` → `{Binaries, PinnedBytes}`.
#[rustler::nif]
fn memo_stats() -> (usize, usize) {
    identity::stats()
}

rustler::init!("hb_beamr_nif");
