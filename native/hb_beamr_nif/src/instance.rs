//! The Erlang-facing handle of an instance: the command channel to its
//! worker thread, the NIF resource that monitors processes for it, and the
//! registry that maps the instance's Erlang worker pid to both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crossbeam_channel::{Receiver, Sender};
use once_cell::sync::Lazy;
use rustler::env::SavedTerm;
use rustler::{Binary, Env, LocalPid, Monitor, OwnedEnv, Resource, ResourceArc, Term};

use crate::mailbox::ReplyTo;
use hb_beamr_core::errors::Error;
use hb_beamr_core::protocol;
use hb_beamr_core::values::Number;
use hb_beamr_engine::{Interrupter, Target};

/// A call request, as the protocol sees it.
pub type Call = protocol::Call<LocalPid, CallBody>;
/// A memory or state operation, as the protocol sees it.
pub type Op = protocol::Op<LocalPid, OpBody>;

/// A process monitor held for the life of one call request; dropping it
/// (the call replied to, refused or forgotten) releases the monitor.
pub struct CallMonitor {
    pub resource: ResourceArc<InstanceResource>,
    pub monitor: Monitor,
}

impl Drop for CallMonitor {
    fn drop(&mut self) {
        self.resource.demonitor(None, &self.monitor);
    }
}

/// What a call request runs.
pub enum Job {
    Call {
        target: Target,
        args: Vec<Number>,
        /// `call/6`'s `fuel`: the counter is set to this before the call.
        budget: Option<u64>,
    },
    /// Instantiation (start function, constructors): the first call.
    Instantiate,
    /// A snapshot taken in turn, between calls, after which the instance
    /// serves nothing more (`migrate/2`).
    Retire,
}

/// The part of a call request the protocol does not look at: what it runs,
/// and the monitor on its caller.
pub struct CallBody {
    pub job: Job,
    pub monitor: Option<CallMonitor>,
}

/// What a memory or state operation does.
pub enum OpBody {
    Size,
    Read {
        offset: u64,
        length: u64,
    },
    Write {
        offset: u64,
        data: WriteData,
    },
    /// `{ok, Snapshot}`: memory, mutable globals, module fingerprint.
    Snapshot,
    /// `{ok, Delta}`: the state's difference from a base snapshot; with
    /// `hash_only`, found by hashing every unit even where the kernel tracks
    /// written pages.
    Delta {
        base: WriteData,
        hash_only: bool,
    },
    /// Restores a snapshot or a chain `[Full, Delta, ...]` (memory grown to
    /// its size first).
    Restore(WriteData),
    /// Writes raw memory from offset 0, grown to its size first.
    Deserialize(WriteData),
    /// `{ok, #{remaining, used}}` of a metered instance.
    Fuel,
    /// Adds fuel to a metered instance's counter.
    AddFuel(u64),
    /// `{ok, Image}`: an image of the state now, for forks.
    Image,
}

/// The bytes of a write. Small ones are copied; a large Erlang binary is
/// kept by reference (a copy of the term into a process-independent env
/// only takes a reference to a refc binary), so the one copy is the worker's
/// into linear memory and the NIF stays O(1).
pub enum WriteData {
    Copied(Vec<u8>),
    Shared(OwnedEnv, SavedTerm),
}

/// Writes above this size are kept by reference.
const COPY_LIMIT: usize = 4096;

impl WriteData {
    pub fn from_binary(env: Env, binary: Binary) -> WriteData {
        if binary.len() <= COPY_LIMIT {
            return WriteData::Copied(binary.as_slice().to_vec());
        }
        let owned = OwnedEnv::new();
        let saved = owned.save(binary.to_term(env));
        WriteData::Shared(owned, saved)
    }

    /// A binary, or a list of binaries (kept by reference).
    pub fn from_chain(env: Env, term: Term) -> Result<WriteData, Error> {
        if let Ok(binary) = term.decode::<Binary>() {
            return Ok(WriteData::from_binary(env, binary));
        }
        term.decode::<Vec<Binary>>()
            .map_err(|_| Error::InvalidArgs)?;
        let owned = OwnedEnv::new();
        let saved = owned.save(term);
        Ok(WriteData::Shared(owned, saved))
    }

    /// Runs `f` on the binaries of a chain (one binary: a chain of one).
    pub fn with_chain<R>(&self, f: impl FnOnce(&[&[u8]]) -> Result<R, Error>) -> Result<R, Error> {
        match self {
            WriteData::Copied(bytes) => f(&[bytes]),
            // A binary or a list of them was saved; the error is never seen.
            WriteData::Shared(env, saved) => env.run(|env| {
                let term = saved.load(env);
                if let Ok(binary) = term.decode::<Binary>() {
                    return f(&[binary.as_slice()]);
                }
                let list: Vec<Binary> = term.decode().map_err(|_| Error::InvalidArgs)?;
                let slices = list.iter().map(|b| b.as_slice()).collect::<Vec<_>>();
                f(&slices)
            }),
        }
    }

    /// Runs `f` on the bytes.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> Result<R, Error>) -> Result<R, Error> {
        match self {
            WriteData::Copied(bytes) => f(bytes),
            // A binary was saved, so a binary loads; the error is never seen.
            WriteData::Shared(env, saved) => env.run(|env| {
                let binary: Binary = saved.load(env).decode().map_err(|_| Error::InvalidArgs)?;
                f(binary.as_slice())
            }),
        }
    }
}

/// What Erlang asks of a worker thread: each is an event of the protocol.
pub enum Command {
    /// A call (raw calls get an id too, though their replies carry none).
    Call(Call),
    /// A memory or state operation.
    Op(Op),
    /// `from` answers the pending import of call `call_id` (`None`: raw).
    ImportResponse {
        from: LocalPid,
        call_id: Option<u64>,
        results: Vec<Number>,
    },
    /// `from` gives up the pending import of its call `call_id`.
    AbortImport {
        from: LocalPid,
        call_id: u64,
    },
    /// Call `call_id` ran past its timeout.
    Timeout {
        call_id: u64,
    },
    CallerDown(LocalPid),
    Shutdown,
}

impl Command {
    /// Where this command's reply would go, if it expects one.
    pub fn reply_to(&self) -> Option<&ReplyTo> {
        match self {
            Command::Call(call) => Some(&call.reply),
            Command::Op(op) => Some(&op.reply),
            _ => None,
        }
    }
}

const IMPORTS_UNKNOWN: u8 = 0;
const IMPORTS_NATIVE_ONLY: u8 = 1;
const IMPORTS_ERLANG: u8 = 2;

/// Which WebAssembly the worker is running, so that another thread can
/// interrupt it. This decides nothing: a timeout or stop is an event of the
/// protocol, sent first; the interrupt only makes the worker read it soon.
#[derive(Default)]
struct Running {
    /// Set after instantiation, cleared before the instance is freed.
    inst: Option<Interrupter>,
    /// The request id of the top-level call running now (or instantiating).
    call: Option<u64>,
    /// Whether it was interrupted.
    interrupted: bool,
}

/// State shared between the NIFs and one worker thread.
pub struct Shared {
    /// `None` once the worker has closed: no command can be lost in a
    /// channel nobody reads, as the worker drains it after closing.
    tx: Mutex<Option<Sender<Command>>>,
    imports: AtomicU8,
    running: Mutex<Running>,
}

impl Shared {
    pub fn new() -> (Arc<Shared>, Receiver<Command>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Shared {
            tx: Mutex::new(Some(tx)),
            imports: AtomicU8::new(IMPORTS_UNKNOWN),
            running: Mutex::new(Running::default()),
        };
        (Arc::new(shared), rx)
    }

    pub fn send(&self, command: Command) -> Result<(), Error> {
        let guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(tx) => tx.send(command).map_err(|_| Error::Stopped),
            None => Err(Error::Stopped),
        }
    }

    /// Refuses all further commands; returns whether it was open.
    pub fn close(&self) -> bool {
        let mut guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        guard.take().is_some()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Worker: the instance exists (`Some`) or is about to be freed (`None`).
    pub fn set_instance(&self, inst: Option<Interrupter>) {
        self.running().inst = inst;
    }

    /// Worker: the top-level call with request id `id` is about to run
    /// WebAssembly; from here it can be interrupted. The worker then reads
    /// the events that came meanwhile (see [`Shared::interrupt`]).
    pub fn begin_call(&self, id: u64) {
        let mut running = self.running();
        running.call = Some(id);
        running.interrupted = false;
    }

    /// Worker: instantiation runs its start function or constructors (call
    /// `id`) on `handle`. [`Shared::end_call`] and `set_instance(None)` end it.
    pub fn begin_instantiation(&self, handle: &Interrupter, id: u64) {
        self.running().inst = Some(handle.clone());
        self.begin_call(id);
    }

    /// Worker: the top-level call ended; whether it was interrupted (its
    /// exec env must then be cleared). After this no interrupt can reach
    /// the instance until the next call.
    pub fn end_call(&self) -> bool {
        let mut running = self.running();
        running.call = None;
        std::mem::take(&mut running.interrupted)
    }

    /// Stops the running WebAssembly, if it is call `id`'s (or any, for
    /// `None`). The event that dooms the call must have been sent first: a
    /// call that begins later reads it before its WebAssembly does, and one
    /// interrupted here reads it when the interrupt returns.
    pub fn interrupt(&self, id: Option<u64>) {
        let mut running = self.running();
        let matches = match (running.call, id) {
            (Some(current), Some(wanted)) => current == wanted,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !matches || running.interrupted {
            return;
        }
        let Some(handle) = running.inst.clone() else {
            return;
        };
        running.interrupted = true;
        handle.interrupt();
    }

    pub fn set_has_erlang_imports(&self, yes: bool) {
        let state = if yes {
            IMPORTS_ERLANG
        } else {
            IMPORTS_NATIVE_ONLY
        };
        self.imports.store(state, Ordering::Release);
    }

    /// Whether a call may block on an Erlang import (and so needs its
    /// caller monitored).
    pub fn may_import_from_erlang(&self) -> bool {
        self.imports.load(Ordering::Acquire) != IMPORTS_NATIVE_ONLY
    }
}

/// The NIF resource of an instance. It monitors the instance's Erlang worker
/// process (whose exit stops the instance) and, during calls that may import,
/// the calling process (whose exit aborts a pending import).
pub struct InstanceResource {
    pub shared: Arc<Shared>,
    pub worker: LocalPid,
}

#[rustler::resource_impl]
impl Resource for InstanceResource {
    fn down<'a>(&'a self, _env: Env<'a>, pid: LocalPid, _monitor: Monitor) {
        if pid == self.worker {
            // Exactly `stop/1`: a running call is stopped inside WebAssembly.
            stop(&pid);
        } else {
            let _ = self.shared.send(Command::CallerDown(pid));
        }
    }
}

impl Drop for InstanceResource {
    fn drop(&mut self) {
        let _ = self.shared.send(Command::Shutdown);
    }
}

type Registry = RwLock<HashMap<LocalPid, ResourceArc<InstanceResource>>>;

/// Instances by the pid of their Erlang worker process.
static REGISTRY: Lazy<Registry> = Lazy::new(|| RwLock::new(HashMap::new()));

pub fn register(worker: LocalPid, resource: ResourceArc<InstanceResource>) {
    let mut map = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    map.insert(worker, resource);
}

pub fn lookup(worker: &LocalPid) -> Option<ResourceArc<InstanceResource>> {
    let map = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    map.get(worker).cloned()
}

pub fn unregister(worker: &LocalPid) -> Option<ResourceArc<InstanceResource>> {
    let mut map = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    map.remove(worker)
}

/// Stops the instance of `worker` (idempotent): a running call is stopped
/// inside WebAssembly, then the worker thread frees the instance and answers
/// anything still queued with `{error, stopped}`.
pub fn stop(worker: &LocalPid) {
    if let Some(resource) = unregister(worker) {
        if resource.shared.send(Command::Shutdown).is_ok() {
            resource.shared.interrupt(None);
        }
    }
}

pub fn live_instances() -> usize {
    REGISTRY.read().map(|m| m.len()).unwrap_or(0)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A request id, unique for the life of the node.
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}
