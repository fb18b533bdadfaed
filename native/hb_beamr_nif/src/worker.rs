//! The worker thread of one instance: it owns the WAMR module, instance and
//! exec env, feeds the commands from its channel to the call protocol
//! ([`hb_beamr_core::protocol`]) and carries out the actions it returns.
//! Nothing here decides: the protocol says what runs, what is served, what
//! queues and what every request's reply is; `actions` carries them out, and
//! `calls`, `imports` and `state` run calls, serve imports and memory
//! operations.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::actions::carry_out;
use crate::calls;
use crate::context::{Action, Worker};
use crate::instance::{Call, Command, Shared};
use crate::module_source::ModuleSource;
use hb_beamr_core::errors::Error;
use hb_beamr_engine::{install_host, Limits, Mode};

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
    /// A fork's image: the instance takes its state right after
    /// instantiation.
    pub image: crate::images::ImageArg,
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
        image,
    } = startup;
    let meter = fuel.map(crate::meter::Meter::new);
    let worker = Rc::new(Worker::new(shared, rx, meter));
    let installed = install_host(worker.clone());
    let first = worker.protocol.borrow_mut().arrive(start);
    worker.decided(first);
    let served = catch_unwind(AssertUnwindSafe(|| {
        // The instantiation runs first; then commands until the stop.
        let mut first = Some((module, image));
        while let Some(action) = worker.next_action() {
            match (action, first.take()) {
                // A failed instantiation (a fork that failed included)
                // stops the instance (the protocol refuses whatever came
                // meanwhile).
                (Action::Run(call), Some((bytes, image))) => calls::instantiate(
                    &worker,
                    call,
                    bytes,
                    (mode, deterministic, fuel.is_some()),
                    limits,
                    image,
                ),
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

/// The instance has stopped: what the protocol decided and was not carried
/// out, and whatever was sent before the channel closed, is answered as the
/// protocol says.
fn close(worker: &Worker) {
    worker.shared.close();
    for action in worker.take_pending() {
        let undone = worker.protocol.borrow_mut().undone(action);
        if let Some(action) = undone {
            carry_out(worker, action);
        }
    }
    for command in worker.leftover_commands() {
        let actions = worker.feed(command);
        for action in actions {
            carry_out(worker, action);
        }
    }
}
