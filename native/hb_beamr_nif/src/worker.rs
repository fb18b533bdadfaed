//! The worker thread of one instance: it owns the WAMR module, instance and
//! exec env, and serves commands from its channel one at a time.
//!
//! While a call waits for an Erlang import, the thread keeps reading its
//! channel: the import's answer ends the wait; memory reads and writes are
//! served at once; a call from the same process runs nested (an import fun
//! may call `malloc`); calls from other processes wait their turn.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use hb_wamr_sys as sys;

use crate::engine::{Mode, Module};
use crate::imports::ImportDesc;
use crate::instance::{CallMonitor, Command, ImportMode, InstHandle, Shared};
use crate::instance_engine::{EngineInstance, Limits, Target};
use crate::mailbox::{Mailbox, Message, ReplyTo};
use hb_beamr_core::errors::Error;
use hb_beamr_core::values::{Number, Value};

/// What a worker needs to start.
pub struct Startup {
    pub shared: Arc<Shared>,
    pub rx: Receiver<Command>,
    pub bytes: Vec<u8>,
    pub mode: Mode,
    pub reply: ReplyTo,
    pub limits: Limits,
}

/// One call in progress (calls nest when an import calls back in).
struct ActiveCall {
    reply: ReplyTo,
    imports: ImportMode,
    /// Why the call was cut short, when that is more than WAMR's trap text.
    failure: Option<Error>,
}

pub struct Worker {
    engine: EngineInstance,
    shared: Arc<Shared>,
    rx: Receiver<Command>,
    mailbox: RefCell<Mailbox>,
    deferred: RefCell<VecDeque<Command>>,
    calls: RefCell<Vec<ActiveCall>>,
    stopping: Cell<bool>,
}

thread_local! {
    /// The worker of this thread, for the import trampoline to find.
    static CURRENT: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

/// The worker running on this thread, if any.
pub fn current() -> Option<Rc<Worker>> {
    CURRENT.with(|c| c.borrow().clone())
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
    // SAFETY: per-thread WAMR setup, paired with the destroy call below.
    unsafe { sys::wasm_runtime_init_thread_env() };
    let Startup {
        shared,
        rx,
        bytes,
        mode,
        reply,
        limits,
    } = startup;
    let mut mailbox = Mailbox::default();
    let started = Module::load(bytes, mode).and_then(|module| {
        shared.set_has_erlang_imports(module.has_erlang_imports);
        EngineInstance::new(module, limits)
    });
    match started {
        Err(error) => {
            mailbox.send(&reply, Message::Failed(&error));
            close_and_drain(&shared, &rx, std::iter::empty(), &mut mailbox);
        }
        Ok(engine) => {
            mailbox.send(
                &reply,
                Message::Started {
                    imports: &engine.module().imports,
                    exports: &engine.module().exports,
                },
            );
            shared.set_instance(Some(InstHandle {
                inst: engine.raw(),
                exec_env: engine.exec_env(),
            }));
            let worker = Rc::new(Worker {
                engine,
                shared,
                rx,
                mailbox: RefCell::new(mailbox),
                deferred: RefCell::new(VecDeque::new()),
                calls: RefCell::new(Vec::new()),
                stopping: Cell::new(false),
            });
            CURRENT.with(|c| *c.borrow_mut() = Some(worker.clone()));
            if catch_unwind(AssertUnwindSafe(|| worker.serve())).is_err() {
                worker.fail_active_calls(&Error::Trap("internal error in hb_beamr".into()));
            }
            worker.close();
            worker.shared.set_instance(None);
            CURRENT.with(|c| *c.borrow_mut() = None);
            // The engine (instance, then module) is freed here, on its thread.
            drop(worker);
        }
    }
    // SAFETY: pairs with wasm_runtime_init_thread_env above.
    unsafe { sys::wasm_runtime_destroy_thread_env() };
}

/// Refuses new commands, then answers everything still queued with
/// `{error, stopped}`, so no caller waits forever.
fn close_and_drain(
    shared: &Shared,
    rx: &Receiver<Command>,
    deferred: impl Iterator<Item = Command>,
    mailbox: &mut Mailbox,
) {
    shared.close();
    for command in deferred.chain(rx.try_iter()) {
        if let Some(reply) = command.reply_to() {
            mailbox.send(reply, Message::Failed(&Error::Stopped));
        }
        if let Command::Call {
            monitor: Some(m), ..
        } = command
        {
            m.release();
        }
    }
}

impl Worker {
    fn serve(&self) {
        while !self.stopping.get() {
            let next = self.deferred.borrow_mut().pop_front();
            let command = match next {
                Some(command) => command,
                None => match self.next_command() {
                    Ok(command) => command,
                    Err(_) => break,
                },
            };
            match command {
                Command::Shutdown => break,
                Command::Call {
                    reply,
                    target,
                    args,
                    imports,
                    monitor,
                } => self.run_call(reply, &target, &args, imports, monitor),
                Command::Size { .. } | Command::Read { .. } | Command::Write { .. } => {
                    self.serve_memory(command)
                }
                // Answers for calls that have already ended.
                Command::ImportResponse { .. }
                | Command::AbortImport { .. }
                | Command::CallerDown(_) => {}
            }
        }
    }

    /// The next command. A caller that has just had a reply (or an import
    /// request) usually sends its next command within a few microseconds,
    /// far sooner than a parked thread wakes up, so the thread first polls
    /// for a short, bounded time (see `hb_beamr_core::spin`).
    fn next_command(&self) -> Result<Command, crossbeam_channel::RecvError> {
        hb_beamr_core::spin::recv(&self.rx)
    }

    fn close(&self) {
        let deferred: Vec<Command> = self.deferred.borrow_mut().drain(..).collect();
        let mut mailbox = self.mailbox.borrow_mut();
        close_and_drain(&self.shared, &self.rx, deferred.into_iter(), &mut mailbox);
    }

    fn fail_active_calls(&self, error: &Error) {
        let calls: Vec<ActiveCall> = self.calls.borrow_mut().drain(..).collect();
        for call in calls {
            self.send(&call.reply, Message::Failed(error));
        }
    }

    fn send(&self, to: &ReplyTo, message: Message<'_>) {
        self.mailbox.borrow_mut().send(to, message);
    }

    fn run_call(
        &self,
        reply: ReplyTo,
        target: &Target,
        args: &[Number],
        imports: ImportMode,
        monitor: Option<CallMonitor>,
    ) {
        let top_level = self.calls.borrow().is_empty();
        if top_level {
            if let Some(reason) = self.shared.begin_call(reply.id) {
                if let Some(monitor) = monitor {
                    monitor.release();
                }
                self.send(&reply, Message::Failed(&reason));
                return;
            }
        }
        self.calls.borrow_mut().push(ActiveCall {
            reply,
            imports,
            failure: None,
        });
        let mut result = self.engine.call(target, args);
        let mut failure = self.calls.borrow_mut().pop().and_then(|c| c.failure);
        if top_level {
            if let Some(reason) = self.shared.end_call() {
                // Interrupted (timeout, stop): whatever the call returned is
                // void, and no exception or flag may linger for the next call.
                self.engine.clear_interrupt();
                failure = Some(reason);
                result = Err(Error::Trap("interrupted".into()));
            }
        }
        if let Some(monitor) = monitor {
            monitor.release();
        }
        match result {
            Ok(values) => self.send(&reply, Message::Results(&values)),
            Err(Error::Trap(text)) => {
                let error = failure.unwrap_or(Error::Trap(text));
                self.send(&reply, Message::Failed(&error));
            }
            Err(error) => self.send(&reply, Message::Failed(&error)),
        }
    }

    fn serve_memory(&self, command: Command) {
        match command {
            Command::Size { reply } => {
                self.send(&reply, Message::Size(self.engine.memory_size()));
            }
            Command::Read {
                reply,
                offset,
                length,
            } => {
                // Straight from linear memory into the reply's binary.
                let sent = self.engine.read_with(offset, length, |bytes| {
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
            } => match data.with_bytes(|bytes| self.engine.write(offset, bytes)) {
                Ok(()) => self.send(&reply, Message::Written),
                Err(error) => self.send(&reply, Message::Failed(&error)),
            },
            _ => {}
        }
    }

    pub fn engine(&self) -> &EngineInstance {
        &self.engine
    }

    /// Records why the innermost call is failing.
    fn fail_current(&self, error: Error) {
        if let Some(call) = self.calls.borrow_mut().last_mut() {
            call.failure = Some(error);
        }
    }

    /// Serves an import that Erlang answers: sends `{import, ...}` to the
    /// caller and waits for its answer. `Err` carries the trap text.
    pub fn import_from_erlang(
        &self,
        desc: &ImportDesc,
        args: &[Value],
    ) -> Result<Vec<Value>, String> {
        let sig = desc.sig.as_ref().ok_or_else(|| desc.unsupported())?;
        let (reply, imports) = match self.calls.borrow().last() {
            Some(call) => (call.reply, call.imports),
            None => {
                return Err(format!(
                    "import {}.{} called outside a call (from a start function?)",
                    desc.module, desc.name
                ))
            }
        };
        if imports == ImportMode::Stub {
            return Ok(desc.zero_results());
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
        loop {
            let next = self.next_command();
            let Ok(command) = next else {
                self.fail_current(Error::Stopped);
                return Err("instance stopped".into());
            };
            match command {
                Command::ImportResponse { call_id, results }
                    if call_id.is_none() || call_id == reply.id =>
                {
                    // HyperBEAM's stub answers `[0]` to every import: a void
                    // import ignores whatever it is given.
                    if sig.results.is_empty() {
                        return Ok(Vec::new());
                    }
                    return Value::fit_all(&results, &sig.results).ok_or_else(|| {
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
                    });
                }
                Command::AbortImport { call_id } if Some(call_id) == reply.id => {
                    self.fail_current(Error::ImportAborted);
                    return Err("import aborted by its caller".into());
                }
                Command::CallerDown(pid) if pid == reply.pid => {
                    self.fail_current(Error::CallerExited);
                    return Err("the calling process exited during an import".into());
                }
                Command::Shutdown => {
                    self.stopping.set(true);
                    self.fail_current(Error::Stopped);
                    return Err("instance stopped".into());
                }
                Command::Call {
                    reply: nested,
                    target,
                    args,
                    imports,
                    monitor,
                } if nested.pid == reply.pid => {
                    self.run_call(nested, &target, &args, imports, monitor)
                }
                command @ Command::Call { .. } => self.deferred.borrow_mut().push_back(command),
                command @ (Command::Size { .. } | Command::Read { .. } | Command::Write { .. }) => {
                    self.serve_memory(command)
                }
                Command::ImportResponse { .. }
                | Command::AbortImport { .. }
                | Command::CallerDown(_) => {}
            }
        }
    }
}
