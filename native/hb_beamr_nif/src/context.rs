//! What an instance's worker thread holds: the engine, the call protocol,
//! the command channel, the outgoing mailbox, and the actions decided but
//! not yet carried out. Feeding commands to the protocol happens here; what
//! the actions do is in `actions` (used by `worker`, the event loop, and by
//! the import waits), `calls`, `imports`, `fuel` and `state`.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use rustler::LocalPid;

use crate::instance::{CallBody, Command, OpBody, Shared};
use crate::mailbox::{Mailbox, Message, ReplyTo};
use hb_beamr_core::errors::Error;
use hb_beamr_core::protocol::{self, Protocol};
use hb_beamr_core::values::Value;
use hb_beamr_engine::{EngineInstance, InstanceRef};

pub type Action = protocol::Action<LocalPid, CallBody, OpBody>;
pub type Reply<R> = protocol::Reply<LocalPid, R>;

pub struct Worker {
    pub engine: OnceCell<EngineInstance>,
    pub shared: Arc<Shared>,
    rx: Receiver<Command>,
    mailbox: RefCell<Mailbox>,
    pub protocol: RefCell<Protocol<LocalPid, CallBody, OpBody>>,
    /// Actions decided but not yet carried out, in order. Shared by the
    /// serving loop and the import waits nested in it: whichever loop runs
    /// takes the next one.
    pending: RefCell<VecDeque<Action>>,
    /// The last snapshot's state and the pages written since (deltas).
    pub snapshots: RefCell<crate::snapshots::Snapshots>,
    /// The fuel of a metered instance (`None`: not metered).
    pub meter: RefCell<Option<crate::meter::Meter>>,
}

impl Worker {
    pub fn new(
        shared: Arc<Shared>,
        rx: Receiver<Command>,
        meter: Option<crate::meter::Meter>,
    ) -> Worker {
        Worker {
            engine: OnceCell::new(),
            shared,
            rx,
            mailbox: RefCell::new(Mailbox::default()),
            protocol: RefCell::new(Protocol::new()),
            pending: RefCell::new(VecDeque::new()),
            snapshots: RefCell::new(Default::default()),
            meter: RefCell::new(meter),
        }
    }

    pub fn send(&self, to: &ReplyTo, message: Message<'_>) {
        self.mailbox.borrow_mut().send(to, message);
    }

    /// Sends a finished call's reply.
    pub fn reply(&self, reply: Reply<Vec<Value>>) {
        match reply.result {
            Ok(values) => self.send(&reply.to, Message::Results(&values)),
            Err(error) => self.send(&reply.to, Message::Failed(&error)),
        }
    }

    /// Queues actions to carry out.
    pub fn decided(&self, actions: impl IntoIterator<Item = Action>) {
        self.pending.borrow_mut().extend(actions);
    }

    /// The next action to carry out, reading commands as needed; `None`
    /// once the instance has stopped and nothing is left to do.
    pub fn next_action(&self) -> Option<Action> {
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
            // A caller that has just had a reply (or an import request)
            // usually sends its next command within a few microseconds, far
            // sooner than a parked thread wakes up, so the thread first
            // polls for a short, bounded time (see `hb_beamr_core::spin`).
            let actions = match hb_beamr_core::spin::recv(&self.rx) {
                Ok(command) => self.feed(command),
                // Every sender is gone: nobody can reach the instance.
                Err(_) => self.protocol.borrow_mut().stop(),
            };
            self.decided(actions);
        }
    }

    /// Feeds the events that have come, without waiting: just before and
    /// just after a call's WebAssembly runs (a timeout or stop that came
    /// meanwhile dooms it; one that interrupted it is among them).
    pub fn read_events(&self) {
        while let Ok(command) = self.rx.try_recv() {
            let actions = self.feed(command);
            self.decided(actions);
        }
    }

    /// A command is an event of the protocol.
    pub(crate) fn feed(&self, command: Command) -> Vec<Action> {
        let mut protocol = self.protocol.borrow_mut();
        match command {
            Command::Call(call) => protocol.arrive(call),
            Command::Op(op) => protocol.operation(op),
            Command::ImportResponse {
                from,
                call_id,
                results,
            } => vec![protocol.answer(from, call_id, results)],
            Command::AbortImport { from, call_id } => protocol.abort(from, call_id),
            Command::Timeout { call_id } => protocol.timeout(call_id),
            Command::CallerDown(pid) => protocol.caller_down(pid),
            Command::Shutdown => protocol.stop(),
        }
    }

    /// Takes the actions not yet carried out (when the thread ends).
    pub fn take_pending(&self) -> Vec<Action> {
        self.pending.borrow_mut().drain(..).collect()
    }

    /// Whatever was sent before the channel closed.
    pub fn leftover_commands(&self) -> Vec<Command> {
        self.rx.try_iter().collect()
    }

    /// The instance memory operations act on: the engine's, or while a
    /// start function waits for an import, the one being instantiated.
    pub fn memory_instance(&self) -> Option<InstanceRef> {
        match self.engine.get() {
            Some(engine) => Some(engine.as_ref()),
            None => INSTANTIATING.with(|i| i.get()),
        }
    }

    /// The module's fingerprint; snapshots need the instance to exist.
    pub fn fingerprint(&self) -> Result<[u8; 32], Error> {
        self.engine
            .get()
            .map(|engine| engine.module().fingerprint)
            .ok_or_else(|| {
                Error::SnapshotUnsupported("the instance is still being instantiated".into())
            })
    }
}

thread_local! {
    /// The instance being instantiated, while its start function waits for
    /// an import (memory commands are served on it meanwhile).
    static INSTANTIATING: Cell<Option<InstanceRef>> = const { Cell::new(None) };
}

/// Marks the thread as serving an import during instantiation.
pub struct Instantiating(Option<InstanceRef>);

impl Instantiating {
    pub fn enter(instance: InstanceRef) -> Instantiating {
        Instantiating(INSTANTIATING.with(|i| i.replace(Some(instance))))
    }
}

impl Drop for Instantiating {
    fn drop(&mut self) {
        INSTANTIATING.with(|i| i.set(self.0));
    }
}
