//! The worker thread of one instance: it owns the WAMR module, instance and
//! exec env, feeds the commands from its channel to the call protocol
//! ([`hb_beamr_core::protocol`]) and carries out the actions it returns.
//! Nothing here decides: the protocol says what runs, what is served, what
//! queues and what every request's reply is; `calls`, `imports` and `state`
//! run calls, serve imports and memory operations.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::calls;
use crate::context::{Action, Worker};
use crate::instance::{Call, Command, Shared};
use crate::mailbox::Message;
use crate::state;
use hb_beamr_core::errors::Error;
use hb_beamr_engine::{install_host, Bounds, Limits, Mode, ModuleKey, SharedModule, MODULES};

/// Where an instance's module comes from: the one its siblings share (found
/// by the start NIF), or the bytes, to load (or find loaded by then) on the
/// instance's thread.
pub enum ModuleSource {
    Shared(SharedModule),
    Bytes {
        key: ModuleKey,
        bytes: Vec<u8>,
    },
    /// Sharing is off (`module_sharing`): loaded for this instance alone.
    Own {
        key: ModuleKey,
        bytes: Vec<u8>,
    },
}

impl ModuleSource {
    /// Keys the bytes by content (`sha256`, their SHA-256, which is also
    /// the fingerprint of bytecode, so it is computed once), the mode and the
    /// rewrite flags, and takes a lease on a loaded module of that key; the
    /// bytes are copied only when it is not loaded. `bounds` bound the
    /// registry from now on. Without `share`, the module is the instance's
    /// own, as before sharing (for comparison, and as a way out).
    pub fn of(
        bytes: &[u8],
        sha256: [u8; 32],
        mode: Mode,
        (deterministic, metered): (bool, bool),
        bounds: Bounds,
        share: bool,
    ) -> ModuleSource {
        MODULES.set_bounds(bounds);
        let key = ModuleKey {
            sha256,
            aot: mode == Mode::Aot,
            flags: u32::from(deterministic) | u32::from(metered) << 1,
        };
        if !share {
            return ModuleSource::Own {
                key,
                bytes: bytes.to_vec(),
            };
        }
        match MODULES.lease_loaded(&key) {
            Some(lease) => ModuleSource::Shared(lease),
            None => ModuleSource::Bytes {
                key,
                bytes: bytes.to_vec(),
            },
        }
    }
}

/// What a worker needs to start: the first call is the instantiation.
pub struct Startup {
    pub shared: Arc<Shared>,
    pub rx: Receiver<Command>,
    pub module: ModuleSource,
    pub mode: Mode,
    /// Every NaN float arithmetic produces is the canonical one.
    pub deterministic: bool,
    /// Metered, with this start fuel.
    pub fuel: Option<u64>,
    pub limits: Limits,
    pub start: Call,
}

/// Spawns the worker thread of a new instance. Imports that call back into
/// WebAssembly, and AOT code, run on its native stack; WAMR checks it, so
/// overflowing it is a trap, not a crash.
pub fn spawn(startup: Startup) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("hb_beamr".into())
        .stack_size(startup.limits.native_stack)
        .spawn(move || run(startup))
        .map(|_| ())
        .map_err(|e| Error::ThreadSpawn(e.to_string()))
}

fn run(startup: Startup) {
    // Dropped last, after everything of the instance is freed.
    let _counted = crate::reclaim::WorkerGuard::enter();
    let _thread_env = hb_beamr_engine::ThreadEnv::enter();
    let Startup {
        shared,
        rx,
        module,
        mode,
        deterministic,
        fuel,
        limits,
        start,
    } = startup;
    let meter = fuel.map(crate::fuel::Meter::new);
    let worker = Rc::new(Worker::new(shared, rx, meter));
    let installed = install_host(worker.clone());
    let first = worker.protocol.borrow_mut().arrive(start);
    worker.decided(first);
    let served = catch_unwind(AssertUnwindSafe(|| {
        // The instantiation runs first; then commands until the stop.
        let mut bytes = Some(module);
        while let Some(action) = worker.next_action() {
            match (action, bytes.take()) {
                (Action::Run(call), Some(bytes)) => {
                    calls::instantiate(
                        &worker,
                        call,
                        bytes,
                        (mode, deterministic, fuel.is_some()),
                        limits,
                    );
                    if worker.engine.get().is_none() {
                        // Nothing to serve: refuse whatever came meanwhile.
                        let stop = worker.protocol.borrow_mut().stop();
                        worker.decided(stop);
                    }
                }
                (other, _) => carry_out(&worker, other),
            }
        }
    }));
    if served.is_err() {
        abandon(&worker);
    }
    close(&worker);
    worker.shared.set_instance(None);
    drop(installed);
    // The engine (instance, then module) is freed here, on its thread.
    drop(worker);
}

/// Carries out an action outside an import wait (an import wait takes its
/// own `Deliver` and `Unwind`; none is waiting here).
pub fn carry_out(worker: &Worker, action: Action) {
    match action {
        Action::Run(call) => calls::run(worker, call),
        Action::Serve(op) => state::serve(worker, op),
        Action::Refuse(request, failure) => {
            worker.send(&request.reply(), Message::Failed(&failure.error()))
        }
        // Dropping the body releases the monitor on the dead caller.
        Action::Drop(_) => {}
        Action::Reject { to, why } => worker.send(&to, Message::Failed(&why.error())),
        Action::Deliver(_) | Action::Unwind(_) => {}
    }
}

/// After a panic (a bug): every request still in progress or queued is
/// answered, nothing more runs.
fn abandon(worker: &Worker) {
    let stop = worker.protocol.borrow_mut().stop();
    worker.decided(stop);
    loop {
        let internal = Err(Error::Trap("internal error in hb_beamr".into()));
        let finished = worker.protocol.borrow_mut().finished(internal);
        match finished {
            Some((reply, _)) => worker.reply(reply),
            None => break,
        }
    }
}

fn close(worker: &Worker) {
    worker.shared.close();
    for action in worker.take_pending() {
        match action {
            // Nothing runs any more.
            Action::Run(call) => worker.send(&call.reply, Message::Failed(&Error::Stopped)),
            Action::Serve(op) => worker.send(&op.reply, Message::Failed(&Error::Stopped)),
            other => carry_out(worker, other),
        }
    }
    // Whatever was sent before the channel closed.
    for command in worker.leftover_commands() {
        if let Some(reply) = command.reply_to() {
            worker.send(reply, Message::Failed(&Error::Stopped));
        }
    }
}
