//! The worker thread of one instance: it owns the WAMR module, instance and
//! exec env, reads commands from its channel, and carries out what the call
//! protocol ([`hb_beamr_core::protocol`]) decides for each of them.
//!
//! Memory reads and writes are served at once, also while a call waits for
//! an import. Everything about calls (when one runs, nests or queues, who
//! may answer an import, what a dead caller, a timeout or a stop does) is
//! the protocol's decision; this file only runs calls and sends messages.

use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use rustler::LocalPid;

use crate::instance::{CallBody, Command, ImportMode, Job, Shared};
use crate::mailbox::{Mailbox, Message, ReplyTo};
use crate::state;
use hb_beamr_core::errors::Error;
use hb_beamr_core::protocol::{Action, Call, Failure, ImportStep, Protocol, Rejection};
use hb_beamr_core::snapshot;
use hb_beamr_core::values::{Number, Value};
use hb_beamr_engine::{
    install_host, EngineInstance, Host, ImportDesc, InstanceRef, Limits, Mode, Module, Trap,
};

type CallAction = Action<LocalPid, CallBody>;

/// What a worker needs to start: the first call is the instantiation.
pub struct Startup {
    pub shared: Arc<Shared>,
    pub rx: Receiver<Command>,
    pub bytes: Vec<u8>,
    pub mode: Mode,
    /// Every NaN float arithmetic produces is the canonical one.
    pub deterministic: bool,
    pub limits: Limits,
    pub start_id: u64,
    pub start: CallBody,
}

/// One call the engine is running (calls nest when an import calls back in).
struct Running {
    reply: ReplyTo,
    imports: ImportMode,
    /// Why the call was cut short, when that is more than WAMR's trap text.
    failure: Option<Error>,
}

pub struct Worker {
    engine: OnceCell<EngineInstance>,
    shared: Arc<Shared>,
    rx: Receiver<Command>,
    mailbox: RefCell<Mailbox>,
    protocol: RefCell<Protocol<LocalPid, CallBody>>,
    /// Actions decided but not yet carried out, in order. Shared by the
    /// serving loop and the import waits nested in it: whichever loop runs
    /// takes the next one.
    pending: RefCell<VecDeque<CallAction>>,
    calls: RefCell<Vec<Running>>,
    /// The results of the answer the protocol just delivered.
    answer: RefCell<Option<Vec<Number>>>,
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
        bytes,
        mode,
        deterministic,
        limits,
        start_id,
        start,
    } = startup;
    let worker = Rc::new(Worker {
        engine: OnceCell::new(),
        shared,
        rx,
        mailbox: RefCell::new(Mailbox::default()),
        protocol: RefCell::new(Protocol::new()),
        pending: RefCell::new(VecDeque::new()),
        calls: RefCell::new(Vec::new()),
        answer: RefCell::new(None),
    });
    let installed = install_host(worker.clone());
    let caller = start.reply.pid;
    let first = worker.protocol.borrow_mut().arrive(Call {
        id: start_id,
        caller,
        body: start,
    });
    worker.pending.borrow_mut().extend(first);
    let served = catch_unwind(AssertUnwindSafe(|| {
        // The instantiation runs first; then commands until the stop.
        let module = load(bytes, mode, deterministic);
        worker.instantiate_then_serve(module, limits)
    }));
    if served.is_err() {
        worker.fail_running(&Error::Trap("internal error in hb_beamr".into()));
    }
    worker.close();
    worker.shared.set_instance(None);
    drop(installed);
    // The engine (instance, then module) is freed here, on its thread.
    drop(worker);
}

impl Host for Worker {
    fn engine(&self) -> Option<&EngineInstance> {
        self.engine.get()
    }

    fn import(
        &self,
        instance: InstanceRef,
        desc: &ImportDesc,
        args: &[Value],
    ) -> Result<Vec<Value>, Trap> {
        self.import_from_erlang(instance, desc, args)
            .map_err(Trap::from)
    }
}

impl Worker {
    /// Runs the instantiation (queued as the first call), then serves.
    fn instantiate_then_serve(&self, module: Result<Module, Error>, limits: Limits) {
        let mut module = Some(module);
        while let Some(action) = self.next_action() {
            match action {
                Action::Run(call) if matches!(call.body.job, Job::Instantiate) => {
                    let module = module.take().unwrap_or(Err(Error::Stopped));
                    self.run_instantiation(call, module, limits);
                    if self.engine.get().is_none() {
                        // Nothing to serve: refuse whatever came meanwhile.
                        let stop = self.protocol.borrow_mut().stop();
                        self.pending.borrow_mut().extend(stop);
                    }
                }
                other => self.carry_out(other),
            }
        }
    }

    /// The next action to carry out, reading commands as needed; `None`
    /// once the instance has stopped and nothing is left to do.
    fn next_action(&self) -> Option<CallAction> {
        loop {
            if let Some(action) = self.pending.borrow_mut().pop_front() {
                return Some(action);
            }
            {
                let protocol = self.protocol.borrow();
                if protocol.is_stopped() && protocol.is_idle() {
                    return None;
                }
            }
            let actions = match self.next_command() {
                Ok(command) => self.on_command(command),
                // Every sender is gone: nobody can reach the instance.
                Err(_) => self.protocol.borrow_mut().stop(),
            };
            self.pending.borrow_mut().extend(actions);
        }
    }

    /// The next command. A caller that has just had a reply (or an import
    /// request) usually sends its next command within a few microseconds,
    /// far sooner than a parked thread wakes up, so the thread first polls
    /// for a short, bounded time (see `hb_beamr_core::spin`).
    fn next_command(&self) -> Result<Command, crossbeam_channel::RecvError> {
        hb_beamr_core::spin::recv(&self.rx)
    }

    /// Feeds a command to the protocol (memory commands are served here).
    fn on_command(&self, command: Command) -> Vec<CallAction> {
        let mut protocol = self.protocol.borrow_mut();
        match command {
            Command::Call { id, body } => protocol.arrive(Call {
                id,
                caller: body.reply.pid,
                body,
            }),
            Command::ImportResponse {
                from,
                call_id,
                results,
            } => {
                let action = protocol.answer(from, call_id);
                if matches!(action, Action::Deliver) {
                    *self.answer.borrow_mut() = Some(results);
                }
                vec![action]
            }
            Command::AbortImport { from, call_id } => protocol.abort(from, call_id),
            Command::Timeout { call_id } => protocol.timeout(call_id),
            Command::CallerDown(pid) => protocol.caller_down(pid),
            Command::Shutdown => protocol.stop(),
            memory @ (Command::Size { .. }
            | Command::Read { .. }
            | Command::Write { .. }
            | Command::Snapshot { .. }
            | Command::Restore { .. }
            | Command::Deserialize { .. }) => {
                let stopped = protocol.is_stopped();
                drop(protocol);
                self.serve_memory(memory, stopped);
                Vec::new()
            }
        }
    }

    /// Carries out an action outside an import wait.
    fn carry_out(&self, action: CallAction) {
        match action {
            Action::Run(call) => self.run_call(call),
            Action::Refuse(call, failure) => {
                self.send(&call.body.reply, Message::Failed(&failure.error()))
            }
            // Dropping the body releases the monitor on the dead caller.
            Action::Drop(_) => {}
            Action::Reject { to, id, why } => {
                let error = match why {
                    Rejection::NotOwner => Error::NotCallOwner,
                    Rejection::NoPendingImport => Error::NoPendingImport,
                };
                self.send(&ReplyTo { pid: to, id }, Message::Failed(&error));
            }
            // Only an import wait takes these; none is waiting.
            Action::Deliver | Action::Unwind(_) => {}
        }
    }

    fn close(&self) {
        self.shared.close();
        let leftover: Vec<CallAction> = self.pending.borrow_mut().drain(..).collect();
        for action in leftover {
            self.carry_out(action);
        }
        // Whatever was sent before the channel closed.
        for command in self.rx.try_iter() {
            if let Some(reply) = command.reply_to() {
                self.send(reply, Message::Failed(&Error::Stopped));
            }
        }
    }

    fn fail_running(&self, error: &Error) {
        let calls: Vec<Running> = self.calls.borrow_mut().drain(..).collect();
        for call in calls {
            self.send(&call.reply, Message::Failed(error));
        }
    }

    fn send(&self, to: &ReplyTo, message: Message<'_>) {
        self.mailbox.borrow_mut().send(to, message);
    }

    fn run_instantiation(
        &self,
        call: Call<LocalPid, CallBody>,
        module: Result<Module, Error>,
        limits: Limits,
    ) {
        let body = &call.body;
        self.calls.borrow_mut().push(Running {
            reply: body.reply,
            imports: body.imports,
            failure: None,
        });
        let interrupted = std::cell::Cell::new(None);
        let watch = |interrupter: Option<&_>| match interrupter {
            Some(interrupter) => self.shared.begin_instantiation(interrupter, call.id),
            None => {
                interrupted.set(self.shared.end_call());
                self.shared.set_instance(None);
            }
        };
        let started = module.and_then(|module| {
            self.shared.set_has_erlang_imports(module.has_host_imports);
            EngineInstance::new_watched(module, limits, &watch)
        });
        let failure = self.calls.borrow_mut().pop().and_then(|c| c.failure);
        let finished = self.protocol.borrow_mut().finished();
        let (doom, next) = match finished {
            Some((done, next)) => (done.failure, next),
            None => (None, Vec::new()),
        };
        let started = match (started, doom, failure, interrupted.take()) {
            (_, Some(doom), _, _) => Err(doom.error()),
            // A timeout or stop ended the start function (the interpreter
            // returns from an interrupted start as if it had finished).
            (_, None, _, Some(reason)) => Err(reason),
            (Err(Error::Instantiation(_)), None, Some(failure), None) => Err(failure),
            (started, _, _, _) => started,
        };
        match started {
            Ok(engine) => {
                self.send(
                    &body.reply,
                    Message::Started {
                        imports: &engine.module().imports,
                        exports: &engine.module().exports,
                    },
                );
                self.shared.set_instance(Some(engine.interrupter()));
                let _ = self.engine.set(engine);
            }
            Err(error) => self.send(&body.reply, Message::Failed(&error)),
        }
        self.pending.borrow_mut().extend(next);
    }

    fn run_call(&self, call: Call<LocalPid, CallBody>) {
        let Call { id, body, .. } = call;
        let (target, args) = match &body.job {
            Job::Call { target, args } => (target, args),
            Job::Retire => return self.retire(&body.reply),
            Job::Instantiate => return,
        };
        let top_level = self.calls.borrow().is_empty();
        let cancelled = if top_level {
            self.shared.begin_call(Some(id))
        } else {
            None
        };
        let result = match (cancelled, self.engine.get()) {
            (Some(reason), _) => Err(reason),
            (None, None) => Err(Error::Stopped),
            (None, Some(engine)) => {
                self.calls.borrow_mut().push(Running {
                    reply: body.reply,
                    imports: body.imports,
                    failure: None,
                });
                let mut result = engine.call(target, args);
                let failure = self.calls.borrow_mut().pop().and_then(|c| c.failure);
                if top_level {
                    if let Some(reason) = self.shared.end_call() {
                        // Interrupted (timeout, stop): whatever the call
                        // returned is void, and no exception or flag may
                        // linger for the next call.
                        engine.clear_interrupt();
                        result = Err(reason);
                    }
                }
                match (result, failure) {
                    (Err(Error::Trap(_)), Some(failure)) => Err(failure),
                    (result, _) => result,
                }
            }
        };
        let finished = self.protocol.borrow_mut().finished();
        let (doom, next) = match finished {
            Some((done, next)) => (done.failure, next),
            None => (None, Vec::new()),
        };
        match (doom, result) {
            (Some(failure), _) => self.send(&body.reply, Message::Failed(&failure.error())),
            (None, Ok(values)) => self.send(&body.reply, Message::Results(&values)),
            (None, Err(error)) => self.send(&body.reply, Message::Failed(&error)),
        }
        self.pending.borrow_mut().extend(next);
        // `body` drops here: the monitor on the caller is released.
    }

    /// Takes the snapshot of a retiring instance, then stops serving: every
    /// queued call is refused, nothing runs after.
    fn retire(&self, reply: &ReplyTo) {
        let taken = match self.engine.get() {
            Some(engine) => self.snapshot(engine.as_ref(), reply),
            None => Err(Error::Stopped),
        };
        match taken {
            Ok(()) => {
                let refused = self.protocol.borrow_mut().stop();
                self.pending.borrow_mut().extend(refused);
            }
            Err(error) => self.send(reply, Message::Failed(&error)),
        }
        // Stopped first, so that no queued call runs next.
        if let Some((_, next)) = self.protocol.borrow_mut().finished() {
            self.pending.borrow_mut().extend(next);
        }
    }

    fn serve_memory(&self, command: Command, stopped: bool) {
        let engine = match self.engine.get() {
            Some(engine) if !stopped => engine.as_ref(),
            // While a start function runs, its instance is the import's.
            _ if !stopped => match self.instantiating() {
                Some(instance) => instance,
                None => return self.refuse_memory(command, Error::Stopped),
            },
            _ => return self.refuse_memory(command, Error::Stopped),
        };
        match command {
            Command::Size { reply } => {
                self.send(&reply, Message::Size(engine.memory_size()));
            }
            Command::Read {
                reply,
                offset,
                length,
            } => {
                // Straight from linear memory into the reply's binary.
                let sent = engine.read_with(offset, length, |bytes| {
                    self.send(&reply, Message::Bytes(bytes))
                });
                if let Err(error) = sent {
                    self.send(&reply, Message::Failed(&error));
                }
            }
            Command::Write {
                reply,
                offset,
                data,
            } => match data.with_bytes(|bytes| engine.write(offset, bytes)) {
                Ok(()) => self.send(&reply, Message::Written),
                Err(error) => self.send(&reply, Message::Failed(&error)),
            },
            Command::Deserialize { reply, data } => {
                let restored = data.with_bytes(|bytes| state::grow_and_write(engine, bytes));
                match restored {
                    Ok(()) => self.send(&reply, Message::Written),
                    Err(error) => self.send(&reply, Message::Failed(&error)),
                }
            }
            Command::Snapshot { reply } => {
                if let Err(error) = self.snapshot(engine, &reply) {
                    self.send(&reply, Message::Failed(&error));
                }
            }
            Command::Restore { reply, data } => {
                match data.with_bytes(|bytes| self.restore(engine, bytes)) {
                    Ok(()) => self.send(&reply, Message::Written),
                    Err(error) => self.send(&reply, Message::Failed(&error)),
                }
            }
            _ => {}
        }
    }

    /// The module's fingerprint; snapshots need the instance to exist.
    fn fingerprint(&self) -> Result<[u8; 32], Error> {
        self.engine
            .get()
            .map(|engine| engine.module().fingerprint)
            .ok_or_else(|| {
                Error::SnapshotUnsupported("the instance is still being instantiated".into())
            })
    }

    /// Sends `{ok, Snapshot}` straight from linear memory (one copy).
    fn snapshot(&self, engine: InstanceRef, reply: &ReplyTo) -> Result<(), Error> {
        let header = state::snapshot_header(engine, self.fingerprint()?)?;
        engine.read_with(0, engine.memory_size(), |memory| {
            self.send(
                reply,
                Message::Snapshot {
                    header: &header,
                    memory,
                },
            )
        })
    }

    fn restore(&self, engine: InstanceRef, bytes: &[u8]) -> Result<(), Error> {
        state::restore(engine, &self.fingerprint()?, bytes)
    }

    fn refuse_memory(&self, command: Command, error: Error) {
        if let Some(reply) = command.reply_to() {
            self.send(reply, Message::Failed(&error));
        }
    }

    /// The instance a start function runs in, while it waits for an import.
    fn instantiating(&self) -> Option<InstanceRef> {
        INSTANTIATING.with(|i| i.get())
    }

    /// Records why the innermost call is failing.
    fn fail_current(&self, error: Error) {
        if let Some(call) = self.calls.borrow_mut().last_mut() {
            call.failure = Some(error);
        }
    }

    /// Serves an import that Erlang answers: asks the call's owner and
    /// carries out actions until the protocol delivers its answer or
    /// unwinds the call. `Err` carries the trap text.
    fn import_from_erlang(
        &self,
        instance: InstanceRef,
        desc: &ImportDesc,
        args: &[Value],
    ) -> Result<Vec<Value>, String> {
        let sig = desc.sig.as_ref().ok_or_else(|| desc.unsupported())?;
        let (reply, imports) = match self.calls.borrow().last() {
            Some(call) => (call.reply, call.imports),
            None => return Err(outside_a_call(desc)),
        };
        match imports {
            ImportMode::Stub => return Ok(desc.zero_results()),
            ImportMode::Refuse => return Err(outside_a_call(desc)),
            ImportMode::Erlang => {}
        }
        if let ImportStep::Unwind(failure) = self.protocol.borrow_mut().import_requested() {
            return Err(self.unwind(failure));
        }
        self.send(
            &reply,
            Message::Import {
                module: &desc.module,
                func: &desc.name,
                args,
                signature: &desc.signature,
            },
        );
        let _instantiating = (self.engine.get().is_none()).then(|| Instantiating::enter(instance));
        loop {
            let Some(action) = self.next_action() else {
                return Err(self.unwind(Failure::Stopped));
            };
            match action {
                Action::Deliver => {
                    let results = self.answer.borrow_mut().take().unwrap_or_default();
                    return self.fit_answer(desc, sig, results);
                }
                Action::Unwind(failure) => return Err(self.unwind(failure)),
                other => self.carry_out(other),
            }
        }
    }

    fn unwind(&self, failure: Failure) -> String {
        self.fail_current(failure.error());
        match failure {
            Failure::Stopped => "instance stopped",
            Failure::Timeout => "call timed out",
            Failure::CallerExited => "the calling process exited during an import",
            Failure::ImportAborted => "import aborted by its caller",
        }
        .to_string()
    }

    fn fit_answer(
        &self,
        desc: &ImportDesc,
        sig: &hb_beamr_core::signature::FuncSig,
        results: Vec<Number>,
    ) -> Result<Vec<Value>, String> {
        // HyperBEAM's stub answers `[0]` to every import: a void import
        // ignores whatever it is given.
        if sig.results.is_empty() {
            return Ok(Vec::new());
        }
        Value::fit_all(&results, &sig.results).ok_or_else(|| {
            let text = format!(
                "{}.{} must return {} value(s) of types {}, got {:?}",
                desc.module,
                desc.name,
                sig.results.len(),
                desc.signature,
                results
            );
            self.fail_current(Error::InvalidImportResponse(text.clone()));
            text
        })
    }
}

/// Loads the module, here on the instance's thread. With `deterministic`,
/// bytecode is rewritten to canonicalize NaNs (its fingerprint stays the
/// original's, so its snapshots restore into AOT code compiled from it), and
/// an AOT file must have been compiled so.
fn load(bytes: Vec<u8>, mode: Mode, deterministic: bool) -> Result<Module, Error> {
    match (deterministic, mode) {
        (false, _) => hb_beamr_engine::load_module(bytes, mode),
        (true, Mode::Wasm) => {
            let fingerprint = snapshot::fingerprint(&bytes);
            let canonical = hb_beamr_nan::canonicalize(&bytes)
                .map_err(|why| Error::InvalidWasm(why.to_string()))?;
            let mut module = hb_beamr_engine::load_module(canonical, mode)?;
            module.fingerprint = fingerprint;
            Ok(module)
        }
        (true, Mode::Aot) => match hb_beamr_core::aot_tag::deterministic_refusal(&bytes) {
            Some(why) => Err(Error::InvalidAot(why)),
            None => hb_beamr_engine::load_module(bytes, mode),
        },
    }
}

fn outside_a_call(desc: &ImportDesc) -> String {
    format!(
        "import {}.{} called outside a call (from a start function? start/3 takes an \
         import_fun for those)",
        desc.module, desc.name
    )
}

thread_local! {
    /// The instance being instantiated, while its start function waits for
    /// an import (memory commands are served on it meanwhile).
    static INSTANTIATING: std::cell::Cell<Option<InstanceRef>> = const { std::cell::Cell::new(None) };
}

/// Marks the thread as serving an import during instantiation.
struct Instantiating(Option<InstanceRef>);

impl Instantiating {
    fn enter(instance: InstanceRef) -> Instantiating {
        Instantiating(INSTANTIATING.with(|i| i.replace(Some(instance))))
    }
}

impl Drop for Instantiating {
    fn drop(&mut self) {
        INSTANTIATING.with(|i| i.set(self.0));
    }
}
