//! The call protocol of one instance, as an explicit state machine.
//!
//! An instance runs one call at a time. A call that needs Erlang for an
//! import waits for its *owner* (the process that made it) to answer; while
//! it waits, the owner may call the instance again (nested calls, such as
//! `malloc` from inside an import function) and use its memory and state,
//! and everyone else's calls and memory or state operations queue behind it.
//! Callers die, time out, answer out of turn or not at all; the instance is
//! stopped or its pid killed. This module decides, for each of those events,
//! what the worker thread does: which request runs or is served now, where
//! replies go, how imports are served, which error a call ends with. The
//! worker feeds it events and carries out the [`Action`]s it returns;
//! nothing else decides.
//!
//! Events reach the machine only while no WebAssembly runs: the worker reads
//! them while a call waits for an import, while it is idle, and just before
//! and just after it runs a call's WebAssembly. A timeout or a stop of a
//! call that runs WebAssembly also interrupts it (outside this machine: the
//! NIF does, after it has sent the event), so that the worker reads the
//! event soon; the reply is the machine's.
//!
//! The machine is generic over the process identifier `P`, the call body `B`
//! (what to run) and the operation body `O` (what to serve), so it is tested
//! here without the BEAM: a test per transition and a model-based test of
//! random interleavings (see the tests at the end).
//!
//! Guarantees (checked by the model test after every step):
//! - every request gets exactly one reply, or none when its caller died;
//! - replies go only to the requester, tagged as it asked;
//! - only a call's owner can answer (or abort) its import, and its answer is
//!   what the import gets;
//! - memory and state operations run only when no call holds the instance or
//!   they come from the owner of the call waiting for an import;
//! - a call doomed (timed out, stopped, its caller dead) before its
//!   WebAssembly begins never runs; a doomed call's reply is its doom;
//! - a dead caller never blocks anyone: its queued requests are dropped and
//!   its running calls unwound at their next import;
//! - an import no answer can carry is asked of nobody, and fails its call;
//! - nothing runs after a stop, a failed start ([`CallKind::Start`]) or a
//!   retiring snapshot taken ([`CallKind::Retire`]).

use std::collections::VecDeque;

use crate::errors::Error;
use crate::values::Number;

/// A request id, unique for the life of the node.
pub type CallId = u64;

/// Why a call ends without a result of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The instance was stopped (`stop/1`, or its pid died).
    Stopped,
    /// The call ran past its timeout.
    Timeout,
    /// The caller exited while its call was running.
    CallerExited,
    /// The caller aborted its import (its import function raised).
    ImportAborted,
}

impl Failure {
    pub fn error(self) -> Error {
        match self {
            Failure::Stopped => Error::Stopped,
            Failure::Timeout => Error::Timeout,
            Failure::CallerExited => Error::CallerExited,
            Failure::ImportAborted => Error::ImportAborted,
        }
    }
}

/// Why an import answer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The answer came from a process that does not own the waiting call.
    NotOwner,
    /// No import is waiting for an answer (or not the one the answer names).
    NoPendingImport,
}

impl Rejection {
    pub fn error(self) -> Error {
        match self {
            Rejection::NotOwner => Error::NotCallOwner,
            Rejection::NoPendingImport => Error::NoPendingImport,
        }
    }
}

/// Where a reply goes: the process that asked and, unless it used the raw
/// protocol (untagged replies), the request id its replies carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo<P> {
    pub pid: P,
    pub id: Option<CallId>,
}

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

/// What a metered call does when its counter cannot pay for the next
/// block (the module's `hb_beamr`.`out_of_fuel` import is called and the
/// instance has no fuel of its own to give).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FuelMode {
    /// The call ends with `{error, {out_of_fuel, Used}}`.
    #[default]
    Stop,
    /// The owner is asked, as for an import (its `on_fuel_exhausted`
    /// function): it answers with more fuel, or with nothing to stop.
    Erlang,
}

/// What a call is to the instance's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// The instantiation (start function, constructors), the first call:
    /// if it fails, the instance stops.
    Start,
    /// A call of an export.
    Export,
    /// The retiring snapshot (`migrate/2`): once it is taken, the instance
    /// stops; if it fails, the instance serves on.
    Retire,
}

/// A call request: its id, where its replies go (its caller is their
/// process), what it is to the instance, how its imports and fuel
/// exhaustion are served, and what to run.
#[derive(Debug)]
pub struct Call<P, B> {
    pub id: CallId,
    pub reply: ReplyTo<P>,
    pub kind: CallKind,
    pub imports: ImportMode,
    pub fuel: FuelMode,
    pub body: B,
}

impl<P: Copy, B> Call<P, B> {
    pub fn caller(&self) -> P {
        self.reply.pid
    }
}

/// A memory or state operation (size, read, write, snapshot, restore,
/// deserialize): served whole, at once, and never importing.
#[derive(Debug)]
pub struct Op<P, O> {
    pub reply: ReplyTo<P>,
    pub body: O,
}

/// What waits in the queue, or is refused or dropped.
#[derive(Debug)]
pub enum Request<P, B, O> {
    Call(Call<P, B>),
    Op(Op<P, O>),
}

impl<P: Copy, B, O> Request<P, B, O> {
    pub fn reply(&self) -> ReplyTo<P> {
        match self {
            Request::Call(call) => call.reply,
            Request::Op(op) => op.reply,
        }
    }

    fn caller(&self) -> P {
        self.reply().pid
    }
}

/// What the worker must do.
#[derive(Debug)]
pub enum Action<P, B, O> {
    /// Run this call now, nested inside the waiting call if one waits. Just
    /// before its WebAssembly begins the worker asks [`Protocol::entering`];
    /// when it returns, the worker reports [`Protocol::finished`].
    Run(Call<P, B>),
    /// Serve this operation now and reply to it.
    Serve(Op<P, O>),
    /// Reply `{error, Failure}` to a request that will not run.
    Refuse(Request<P, B, O>, Failure),
    /// Forget a request whose caller is dead (no reply: nobody would read it).
    Drop(Request<P, B, O>),
    /// Tell `to` that its import answer was not taken.
    Reject { to: ReplyTo<P>, why: Rejection },
    /// The waiting import gets these results (the owner's answer).
    Deliver(Vec<Number>),
    /// The waiting import fails, so its call unwinds, with this reason.
    Unwind(Failure),
}

/// What [`Protocol::import_requested`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportStep<P> {
    /// Ask `to` to serve the import of call `id`, then wait.
    Ask { to: ReplyTo<P>, id: CallId },
    /// Answer zeros at once (the call's imports are stubbed).
    Stub,
    /// The import may not be served: no call runs, or the call's imports
    /// are refused. It traps.
    Refuse,
    /// Do not ask: the call is already doomed; unwind with this reason.
    Unwind(Failure),
}

/// The reply a call gets when it ends, from [`Protocol::finished`].
#[derive(Debug, PartialEq)]
pub struct Reply<P, R> {
    pub to: ReplyTo<P>,
    pub id: CallId,
    pub result: Result<R, Error>,
}

/// How a call ended, and what the worker does next.
pub type Outcome<P, B, O, R> = (Reply<P, R>, Vec<Action<P, B, O>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    AwaitingImport,
}

#[derive(Debug)]
struct Active<P> {
    id: CallId,
    reply: ReplyTo<P>,
    kind: CallKind,
    imports: ImportMode,
    fuel: FuelMode,
    phase: Phase,
    /// Why the call must end, whatever it returns.
    doom: Option<Failure>,
    /// Why one of its imports failed: the call's error if it then traps.
    failure: Option<Error>,
}

impl<P> Active<P> {
    /// The waiting import fails with `failure`.
    fn unwind(&mut self, failure: Failure) -> Failure {
        self.phase = Phase::Running;
        self.failure.get_or_insert(failure.error());
        failure
    }
}

/// The protocol state of one instance.
#[derive(Debug)]
pub struct Protocol<P, B, O> {
    /// Calls in progress, outermost first; each but the last awaits an
    /// import (the ones above it are nested calls of its owner).
    active: Vec<Active<P>>,
    /// Requests waiting for the instance, in arrival order.
    queue: VecDeque<Request<P, B, O>>,
    stopped: bool,
}

impl<P: Copy + Eq, B, O> Default for Protocol<P, B, O> {
    fn default() -> Self {
        Protocol {
            active: Vec::new(),
            queue: VecDeque::new(),
            stopped: false,
        }
    }
}

impl<P: Copy + Eq, B, O> Protocol<P, B, O> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the instance was stopped: no call runs any more, and every
    /// request is refused.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Whether no call is in progress and nothing is queued.
    pub fn is_idle(&self) -> bool {
        self.active.is_empty() && self.queue.is_empty()
    }

    /// How deep calls are nested now (0: none running).
    pub fn depth(&self) -> usize {
        self.active.len()
    }

    /// A call arrives.
    pub fn arrive(&mut self, call: Call<P, B>) -> Vec<Action<P, B, O>> {
        self.request(Request::Call(call))
    }

    /// A memory or state operation arrives.
    pub fn operation(&mut self, op: Op<P, O>) -> Vec<Action<P, B, O>> {
        self.request(Request::Op(op))
    }

    fn request(&mut self, request: Request<P, B, O>) -> Vec<Action<P, B, O>> {
        if self.stopped {
            return vec![Action::Refuse(request, Failure::Stopped)];
        }
        let now = match self.active.last() {
            None => true,
            // The owner of the waiting call: a nested call, or its own
            // memory and state.
            Some(top) => {
                top.phase == Phase::AwaitingImport
                    && top.doom.is_none()
                    && top.reply.pid == request.caller()
            }
        };
        if now {
            vec![self.begin(request)]
        } else {
            self.queue.push_back(request);
            Vec::new()
        }
    }

    fn begin(&mut self, request: Request<P, B, O>) -> Action<P, B, O> {
        match request {
            Request::Op(op) => Action::Serve(op),
            Request::Call(call) => {
                self.active.push(Active {
                    id: call.id,
                    reply: call.reply,
                    kind: call.kind,
                    imports: call.imports,
                    fuel: call.fuel,
                    phase: Phase::Running,
                    doom: None,
                    failure: None,
                });
                Action::Run(call)
            }
        }
    }

    /// The worker is about to run the innermost call's WebAssembly, having
    /// read the events that came since [`Action::Run`]. A call doomed
    /// meanwhile must not begin: `Err` says why (its reply, from
    /// [`Protocol::finished`], is that failure).
    pub fn entering(&self) -> Result<(), Failure> {
        match self.active.last() {
            None => Err(Failure::Stopped),
            Some(top) => top.doom.map_or(Ok(()), Err),
        }
    }

    /// The innermost call asks for an import. `servable` is `Err` when the
    /// import's signature has types no answer can carry (v128, references):
    /// however its imports are served, it traps, and the call ends with
    /// that error unless it is doomed.
    pub fn import_requested(&mut self, servable: Result<(), Error>) -> ImportStep<P> {
        let Some(top) = self.active.last_mut() else {
            return ImportStep::Refuse;
        };
        if let Err(error) = servable {
            top.failure.get_or_insert(error);
            return ImportStep::Refuse;
        }
        match (top.imports, top.doom) {
            (ImportMode::Stub, _) => ImportStep::Stub,
            (ImportMode::Refuse, _) => ImportStep::Refuse,
            (ImportMode::Erlang, Some(failure)) => ImportStep::Unwind(top.unwind(failure)),
            (ImportMode::Erlang, None) => {
                top.phase = Phase::AwaitingImport;
                ImportStep::Ask {
                    to: top.reply,
                    id: top.id,
                }
            }
        }
    }

    /// The innermost call's counter cannot pay for its next block and the
    /// instance has no fuel to give: an import-like step. `Ask`: the owner
    /// serves it (an answer of more fuel resumes the call, an empty answer
    /// stops it); `Refuse`: the call's fuel mode is [`FuelMode::Stop`] (or
    /// no call runs), so `out_of_fuel` traps and the worker records why
    /// ([`Protocol::import_failed`]); `Unwind`: the call is doomed already.
    /// Never `Stub`.
    pub fn fuel_exhausted(&mut self) -> ImportStep<P> {
        let Some(top) = self.active.last_mut() else {
            return ImportStep::Refuse;
        };
        match (top.fuel, top.doom) {
            (_, Some(failure)) => ImportStep::Unwind(top.unwind(failure)),
            (FuelMode::Stop, None) => ImportStep::Refuse,
            (FuelMode::Erlang, None) => {
                top.phase = Phase::AwaitingImport;
                ImportStep::Ask {
                    to: top.reply,
                    id: top.id,
                }
            }
        }
    }

    /// `from` answers an import with `results`, for call `id` (`None`: the
    /// raw protocol, which names no call).
    pub fn answer(&mut self, from: P, id: Option<CallId>, results: Vec<Number>) -> Action<P, B, O> {
        let reject = |why| Action::Reject {
            to: ReplyTo { pid: from, id },
            why,
        };
        match self.active.last_mut() {
            Some(top) if top.phase == Phase::AwaitingImport => {
                if top.reply.pid != from {
                    reject(Rejection::NotOwner)
                } else if id.is_some_and(|id| id != top.id) {
                    reject(Rejection::NoPendingImport)
                } else {
                    top.phase = Phase::Running;
                    Action::Deliver(results)
                }
            }
            Some(top) if top.reply.pid != from => reject(Rejection::NotOwner),
            _ => reject(Rejection::NoPendingImport),
        }
    }

    /// The answer just delivered does not fit the import (`error` says
    /// how): the import traps, and the call ends with `error`.
    pub fn answer_unfit(&mut self, error: Error) {
        self.import_failed(error);
    }

    /// The innermost call's import traps because of `error` (an answer
    /// that does not fit, fuel that ran out): the call ends with `error`
    /// if it then traps (the first reason sticks).
    pub fn import_failed(&mut self, error: Error) {
        if let Some(top) = self.active.last_mut() {
            top.failure.get_or_insert(error);
        }
    }

    /// The owner of call `id` gives up its import (its import function
    /// raised). Anyone else's abort, or one for another call, is ignored.
    pub fn abort(&mut self, from: P, id: CallId) -> Vec<Action<P, B, O>> {
        match self.active.last_mut() {
            Some(top)
                if top.phase == Phase::AwaitingImport && top.reply.pid == from && top.id == id =>
            {
                vec![Action::Unwind(top.unwind(Failure::ImportAborted))]
            }
            _ => Vec::new(),
        }
    }

    /// A process that made calls died.
    pub fn caller_down(&mut self, pid: P) -> Vec<Action<P, B, O>> {
        let mut actions = self.drain_queue(|request| request.caller() == pid, None);
        if let Some(lowest) = self.active.iter().position(|a| a.reply.pid == pid) {
            actions.extend(self.doom_from(lowest, Failure::CallerExited));
        }
        actions
    }

    /// Call `id` ran out of time (its caller says so).
    pub fn timeout(&mut self, id: CallId) -> Vec<Action<P, B, O>> {
        let queued = |request: &Request<P, B, O>| matches!(request, Request::Call(c) if c.id == id);
        let mut actions = self.drain_queue(queued, Some(Failure::Timeout));
        if let Some(at) = self.active.iter().position(|a| a.id == id) {
            actions.extend(self.doom_from(at, Failure::Timeout));
        }
        actions
    }

    /// The instance stops: queued requests are refused, running calls
    /// unwound, and whatever comes later refused.
    pub fn stop(&mut self) -> Vec<Action<P, B, O>> {
        self.stopped = true;
        let mut actions = self.drain_queue(|_| true, Some(Failure::Stopped));
        if !self.active.is_empty() {
            actions.extend(self.doom_from(0, Failure::Stopped));
        }
        actions
    }

    /// The innermost call returned `result` (the engine's: results, a trap,
    /// an error). Returns its reply and what to do next: serve and run what
    /// queued, or unwind the outer call if it was doomed meanwhile.
    ///
    /// The reply is, in this order: the call's doom (it timed out, was
    /// stopped, its caller died: whatever it returned is void); the reason
    /// one of its imports failed, if it then trapped (the trap only says
    /// that the import failed); what it returned.
    ///
    /// A failed instantiation, or a retiring snapshot that was taken, stops
    /// the instance: what queued is refused.
    pub fn finished<R>(&mut self, result: Result<R, Error>) -> Option<Outcome<P, B, O, R>> {
        let done = self.active.pop()?;
        let result = match (done.doom, done.failure, result) {
            (Some(doom), _, _) => Err(doom.error()),
            (None, Some(failure), Err(Error::Trap(_) | Error::Instantiation(_))) => Err(failure),
            (None, _, result) => result,
        };
        let ends_instance = match done.kind {
            CallKind::Start => result.is_err(),
            CallKind::Retire => result.is_ok(),
            CallKind::Export => false,
        };
        let reply = Reply {
            to: done.reply,
            id: done.id,
            result,
        };
        if ends_instance && !self.stopped {
            return Some((reply, self.stop()));
        }
        let next = match self.active.last_mut() {
            None if self.stopped => Vec::new(),
            None => self.next_in_queue(),
            // The outer call still waits for its import, unless it was
            // doomed while the nested call ran.
            Some(outer) => match outer.doom {
                Some(failure) if outer.phase == Phase::AwaitingImport => {
                    vec![Action::Unwind(outer.unwind(failure))]
                }
                _ => Vec::new(),
            },
        };
        Some((reply, next))
    }

    /// An action decided before the instance stopped and not carried out
    /// (the worker ends, after a bug): what it becomes. An operation is
    /// refused; a call still in progress is forgotten by the machine and
    /// refused; a call that has had its reply, and everything else, needs
    /// nothing more.
    pub fn undone(&mut self, action: Action<P, B, O>) -> Option<Action<P, B, O>> {
        debug_assert!(self.stopped, "undone before a stop");
        match action {
            Action::Serve(op) => Some(Action::Refuse(Request::Op(op), Failure::Stopped)),
            Action::Run(call) => {
                let at = self.active.iter().position(|a| a.id == call.id)?;
                self.active.truncate(at);
                Some(Action::Refuse(Request::Call(call), Failure::Stopped))
            }
            Action::Refuse(..) | Action::Drop(_) | Action::Reject { .. } => Some(action),
            Action::Deliver(_) | Action::Unwind(_) => None,
        }
    }

    /// The instance is free: the queued operations up to the next call are
    /// served, and that call runs.
    fn next_in_queue(&mut self) -> Vec<Action<P, B, O>> {
        let mut actions = Vec::new();
        while let Some(request) = self.queue.pop_front() {
            let action = self.begin(request);
            let ran = matches!(action, Action::Run(_));
            actions.push(action);
            if ran {
                break;
            }
        }
        actions
    }

    /// Removes the queued requests that `matches`: refused with `failure`,
    /// or dropped without a reply when `failure` is `None` (dead caller).
    fn drain_queue(
        &mut self,
        matches: impl Fn(&Request<P, B, O>) -> bool,
        failure: Option<Failure>,
    ) -> Vec<Action<P, B, O>> {
        let mut kept = VecDeque::with_capacity(self.queue.len());
        let mut actions = Vec::new();
        for request in self.queue.drain(..) {
            if !matches(&request) {
                kept.push_back(request);
            } else if let Some(failure) = failure {
                actions.push(Action::Refuse(request, failure));
            } else {
                actions.push(Action::Drop(request));
            }
        }
        self.queue = kept;
        actions
    }

    /// Dooms the call at `from` and every call nested in it; the innermost,
    /// if it waits for an import, unwinds at once (the others when control
    /// returns to them). The first reason given sticks.
    fn doom_from(&mut self, from: usize, failure: Failure) -> Vec<Action<P, B, O>> {
        for call in self.active.iter_mut().skip(from) {
            call.doom.get_or_insert(failure);
        }
        match self.active.last_mut() {
            Some(top) if top.phase == Phase::AwaitingImport => {
                let reason = top.doom.unwrap_or(failure);
                vec![Action::Unwind(top.unwind(reason))]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
