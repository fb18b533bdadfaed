//! The Erlang-facing handle of an instance: the command channel to its
//! worker thread, the NIF resource that monitors processes for it, and the
//! registry that maps the instance's Erlang worker pid to both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crossbeam_channel::{Receiver, Sender};
use once_cell::sync::Lazy;
use rustler::env::SavedTerm;
use rustler::{Binary, Env, LocalPid, Monitor, OwnedEnv, Resource, ResourceArc};

use crate::mailbox::ReplyTo;
use hb_beamr_core::errors::Error;
use hb_beamr_core::values::Number;
use hb_beamr_engine::{Interrupter, Target};

/// How a call's imports are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// Each import goes to the caller as `{import, ...}`.
    Erlang,
    /// Imports answer zeros at once (`hb_beamr:stub/3`, without a round trip).
    Stub,
    /// Imports are an error (a start function run without an import function).
    Refuse,
}

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
    },
    /// Instantiation (start function, constructors): the first call.
    Instantiate,
    /// A snapshot taken in turn, between calls, after which the instance
    /// serves nothing more (`migrate/2`).
    Retire,
}

/// The part of a call request the protocol does not look at: where its
/// replies go, what it runs, and the monitor on its caller.
pub struct CallBody {
    pub reply: ReplyTo,
    pub job: Job,
    pub imports: ImportMode,
    pub monitor: Option<CallMonitor>,
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

/// What Erlang asks of a worker thread.
pub enum Command {
    /// A call, with its request id (raw calls get one too, though their
    /// replies carry none).
    Call {
        id: u64,
        body: CallBody,
    },
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
    Size {
        reply: ReplyTo,
    },
    Read {
        reply: ReplyTo,
        offset: u64,
        length: u64,
    },
    Write {
        reply: ReplyTo,
        offset: u64,
        data: WriteData,
    },
    /// `{ok, Snapshot}`: memory, mutable globals, module fingerprint.
    Snapshot {
        reply: ReplyTo,
    },
    /// Restores a snapshot (memory grown to its size first).
    Restore {
        reply: ReplyTo,
        data: WriteData,
    },
    /// Writes raw memory from offset 0, grown to its size first.
    Deserialize {
        reply: ReplyTo,
        data: WriteData,
    },
    CallerDown(LocalPid),
    Shutdown,
}

impl Command {
    /// Where this command's reply would go, if it expects one.
    pub fn reply_to(&self) -> Option<&ReplyTo> {
        match self {
            Command::Call { body, .. } => Some(&body.reply),
            Command::Size { reply }
            | Command::Read { reply, .. }
            | Command::Write { reply, .. }
            | Command::Snapshot { reply }
            | Command::Restore { reply, .. }
            | Command::Deserialize { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

const IMPORTS_UNKNOWN: u8 = 0;
const IMPORTS_NATIVE_ONLY: u8 = 1;
const IMPORTS_ERLANG: u8 = 2;

/// The call the worker is running, so that another thread can stop it.
#[derive(Default)]
struct Running {
    /// Set after instantiation, cleared before the instance is freed.
    inst: Option<Interrupter>,
    /// Whether a top-level call is running, and its request id.
    call: Option<Option<u64>>,
    /// Why it was interrupted, if it was.
    interrupt: Option<Error>,
    /// Calls interrupted before they began (a timeout of 0, a stop while
    /// queued), by request id.
    cancelled: Vec<(u64, Error)>,
    /// A stop that came while nothing ran: whatever begins next is
    /// interrupted at once (a start function not yet begun, for instance).
    stop_requested: Option<Error>,
}

/// At most this many early cancellations are remembered (one can outlive
/// its call only in a rare race with the call's reply).
const MAX_CANCELLED: usize = 64;

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

    /// Worker: a top-level call with request id `id` starts, unless it was
    /// cancelled while queued (then the reason comes back and it must not run).
    pub fn begin_call(&self, id: Option<u64>) -> Option<Error> {
        let mut running = self.running();
        if let Some(reason) = &running.stop_requested {
            return Some(reason.clone());
        }
        if let Some(id) = id {
            if let Some(at) = running.cancelled.iter().position(|(c, _)| *c == id) {
                return Some(running.cancelled.remove(at).1);
            }
        }
        running.call = Some(id);
        running.interrupt = None;
        None
    }

    /// Worker: instantiation runs its start function or constructors (call
    /// `id`) on `handle`; a timeout or stop that came first interrupts them
    /// at once. [`Shared::end_call`] and `set_instance(None)` end it.
    pub fn begin_instantiation(&self, handle: &Interrupter, id: u64) {
        let mut running = self.running();
        running.inst = Some(handle.clone());
        let early = running.stop_requested.clone().or_else(|| {
            let at = running.cancelled.iter().position(|(c, _)| *c == id)?;
            Some(running.cancelled.remove(at).1)
        });
        running.call = Some(Some(id));
        running.interrupt = None;
        if let Some(reason) = early {
            running.interrupt = Some(reason);
            handle.interrupt();
        }
    }

    /// Worker: the top-level call ended; why it was interrupted, if it was.
    /// After this no interrupt can reach the instance until the next call.
    pub fn end_call(&self) -> Option<Error> {
        let mut running = self.running();
        running.call = None;
        running.interrupt.take()
    }

    /// Stops the running call inside WebAssembly, if it is call `id` (or any
    /// call, for `None`). Returns whether a call was interrupted.
    pub fn interrupt(&self, id: Option<u64>, reason: Error) -> bool {
        let mut running = self.running();
        let matches = match (running.call, id) {
            (Some(_), None) => true,
            (Some(current), Some(wanted)) => current == Some(wanted),
            (None, _) => false,
        };
        if !matches {
            // Not running (yet): cancel it before it begins.
            if id.is_none() {
                running.stop_requested = Some(reason.clone());
            }
            if let Some(wanted) = id {
                if running.cancelled.len() >= MAX_CANCELLED {
                    running.cancelled.remove(0);
                }
                running.cancelled.push((wanted, reason));
            }
            return false;
        }
        if running.interrupt.is_some() {
            return false;
        }
        let Some(handle) = running.inst.clone() else {
            return false;
        };
        running.interrupt = Some(reason);
        handle.interrupt();
        true
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
        resource.shared.interrupt(None, Error::Stopped);
        let _ = resource.shared.send(Command::Shutdown);
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
