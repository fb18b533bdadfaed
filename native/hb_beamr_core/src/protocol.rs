//! The call protocol of one instance, as an explicit state machine.
//!
//! An instance runs one call at a time. A call that needs Erlang for an
//! import waits for its *owner* (the process that made it) to answer; while
//! it waits, the owner may call the instance again (nested calls, such as
//! `malloc` from inside an import function), and calls from anyone else
//! queue. Callers die, time out, answer out of turn or not at all; the
//! instance is stopped or its pid killed. This module decides, for each of
//! those events, what the worker thread does. The worker feeds it events and
//! carries out the [`Action`]s it returns; nothing else decides.
//!
//! The machine is generic over the process identifier `P` and the call body
//! `B` (what to run), so it is tested here without the BEAM: a test per
//! transition and a model-based test of random interleavings (see the tests
//! at the end).
//!
//! Guarantees (checked by the model test after every step):
//! - every call gets exactly one reply, or none when its caller died first;
//! - replies go only to the caller that made the request;
//! - only a call's owner can answer (or abort) its import;
//! - a dead caller never blocks anyone: its queued calls are dropped and its
//!   running calls unwound at their next import;
//! - nothing runs after a stop.

use std::collections::VecDeque;

use crate::errors::Error;

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

/// A call request: who asked, its id, and what to run.
#[derive(Debug)]
pub struct Call<P, B> {
    pub id: CallId,
    pub caller: P,
    pub body: B,
}

/// What the worker must do.
#[derive(Debug)]
pub enum Action<P, B> {
    /// Run this call now, nested inside the waiting call if one waits. When
    /// it returns, the worker reports [`Protocol::finished`].
    Run(Call<P, B>),
    /// Reply `{error, Failure}` to a call that will not run.
    Refuse(Call<P, B>, Failure),
    /// Forget a call whose caller is dead (no reply: nobody would read it).
    Drop(Call<P, B>),
    /// Tell `to` that its import answer was not taken.
    Reject {
        to: P,
        id: Option<CallId>,
        why: Rejection,
    },
    /// The waiting import gets the answer just given.
    Deliver,
    /// The waiting import fails, so its call unwinds, with this reason.
    Unwind(Failure),
}

/// How a call ended, and what the worker does next.
pub type Outcome<P, B> = (Finished<P>, Vec<Action<P, B>>);

/// What [`Protocol::import_requested`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportStep<P> {
    /// Ask `owner` to serve the import of call `id`, then wait.
    Ask { owner: P, id: CallId },
    /// Do not ask: the call is already doomed; unwind with this reason.
    Unwind(Failure),
}

/// How a call ended, from [`Protocol::finished`].
#[derive(Debug, PartialEq, Eq)]
pub struct Finished<P> {
    pub id: CallId,
    pub caller: P,
    /// Set when the call was cut short: its reply is this failure, whatever
    /// the engine returned.
    pub failure: Option<Failure>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    AwaitingImport,
}

#[derive(Debug)]
struct Active<P> {
    id: CallId,
    caller: P,
    phase: Phase,
    doom: Option<Failure>,
}

/// The protocol state of one instance.
#[derive(Debug)]
pub struct Protocol<P, B> {
    /// Calls in progress, outermost first; each but the last awaits an
    /// import (the ones above it are nested calls of its owner).
    active: Vec<Active<P>>,
    /// Calls waiting for the instance, in arrival order.
    queue: VecDeque<Call<P, B>>,
    stopped: bool,
}

impl<P: Copy + Eq, B> Default for Protocol<P, B> {
    fn default() -> Self {
        Protocol {
            active: Vec::new(),
            queue: VecDeque::new(),
            stopped: false,
        }
    }
}

impl<P: Copy + Eq, B> Protocol<P, B> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the instance was stopped: no call runs any more, and every
    /// request is refused.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Whether no call is in progress and none is queued.
    pub fn is_idle(&self) -> bool {
        self.active.is_empty() && self.queue.is_empty()
    }

    /// How deep calls are nested now (0: none running).
    pub fn depth(&self) -> usize {
        self.active.len()
    }

    /// A call arrives.
    pub fn arrive(&mut self, call: Call<P, B>) -> Vec<Action<P, B>> {
        if self.stopped {
            return vec![Action::Refuse(call, Failure::Stopped)];
        }
        let runs_now = match self.active.last() {
            None => true,
            // The owner of the waiting call calls back in: a nested call.
            Some(top) => {
                top.phase == Phase::AwaitingImport
                    && top.doom.is_none()
                    && top.caller == call.caller
            }
        };
        if runs_now {
            vec![self.start(call)]
        } else {
            self.queue.push_back(call);
            Vec::new()
        }
    }

    fn start(&mut self, call: Call<P, B>) -> Action<P, B> {
        self.active.push(Active {
            id: call.id,
            caller: call.caller,
            phase: Phase::Running,
            doom: None,
        });
        Action::Run(call)
    }

    /// The innermost call asks for an Erlang import.
    pub fn import_requested(&mut self) -> ImportStep<P> {
        match self.active.last_mut() {
            None => ImportStep::Unwind(Failure::Stopped),
            Some(top) => match top.doom {
                Some(failure) => ImportStep::Unwind(failure),
                None => {
                    top.phase = Phase::AwaitingImport;
                    ImportStep::Ask {
                        owner: top.caller,
                        id: top.id,
                    }
                }
            },
        }
    }

    /// `from` answers an import, for call `id` (`None`: the raw protocol,
    /// which names no call).
    pub fn answer(&mut self, from: P, id: Option<CallId>) -> Action<P, B> {
        let reject = |why| Action::Reject { to: from, id, why };
        match self.active.last_mut() {
            Some(top) if top.phase == Phase::AwaitingImport => {
                if top.caller != from {
                    reject(Rejection::NotOwner)
                } else if id.is_some_and(|id| id != top.id) {
                    reject(Rejection::NoPendingImport)
                } else {
                    top.phase = Phase::Running;
                    Action::Deliver
                }
            }
            Some(top) if top.caller != from => reject(Rejection::NotOwner),
            _ => reject(Rejection::NoPendingImport),
        }
    }

    /// The owner of call `id` gives up its import (its import function
    /// raised). Anyone else's abort, or one for another call, is ignored.
    pub fn abort(&mut self, from: P, id: CallId) -> Vec<Action<P, B>> {
        match self.active.last_mut() {
            Some(top)
                if top.phase == Phase::AwaitingImport && top.caller == from && top.id == id =>
            {
                top.phase = Phase::Running;
                vec![Action::Unwind(Failure::ImportAborted)]
            }
            _ => Vec::new(),
        }
    }

    /// A process that made calls died.
    pub fn caller_down(&mut self, pid: P) -> Vec<Action<P, B>> {
        let mut actions = self.drain_queue(|call| call.caller == pid, None);
        if let Some(lowest) = self.active.iter().position(|a| a.caller == pid) {
            actions.extend(self.doom_from(lowest, Failure::CallerExited));
        }
        actions
    }

    /// Call `id` ran out of time (its caller says so). A running call is
    /// also interrupted inside WebAssembly, outside this machine.
    pub fn timeout(&mut self, id: CallId) -> Vec<Action<P, B>> {
        let mut actions = self.drain_queue(|call| call.id == id, Some(Failure::Timeout));
        if let Some(at) = self.active.iter().position(|a| a.id == id) {
            actions.extend(self.doom_from(at, Failure::Timeout));
        }
        actions
    }

    /// The instance stops: queued calls are refused, running ones unwound.
    pub fn stop(&mut self) -> Vec<Action<P, B>> {
        self.stopped = true;
        let mut actions = self.drain_queue(|_| true, Some(Failure::Stopped));
        if !self.active.is_empty() {
            actions.extend(self.doom_from(0, Failure::Stopped));
        }
        actions
    }

    /// The innermost call returned (with a result or a trap). Returns how
    /// it ended and what to do next: run the next queued call, or unwind
    /// the outer call if it was doomed meanwhile.
    pub fn finished(&mut self) -> Option<Outcome<P, B>> {
        let done = self.active.pop()?;
        let finished = Finished {
            id: done.id,
            caller: done.caller,
            failure: done.doom,
        };
        let next = match self.active.last_mut() {
            None if self.stopped => Vec::new(),
            None => match self.queue.pop_front() {
                Some(call) => vec![self.start(call)],
                None => Vec::new(),
            },
            // The outer call still waits for its import, unless it was
            // doomed while the nested call ran.
            Some(outer) => match outer.doom {
                Some(failure) if outer.phase == Phase::AwaitingImport => {
                    outer.phase = Phase::Running;
                    vec![Action::Unwind(failure)]
                }
                _ => Vec::new(),
            },
        };
        Some((finished, next))
    }

    /// Removes the queued calls that `matches`: refused with `failure`, or
    /// dropped without a reply when `failure` is `None` (dead caller).
    fn drain_queue(
        &mut self,
        matches: impl Fn(&Call<P, B>) -> bool,
        failure: Option<Failure>,
    ) -> Vec<Action<P, B>> {
        let mut kept = VecDeque::with_capacity(self.queue.len());
        let mut actions = Vec::new();
        for call in self.queue.drain(..) {
            if !matches(&call) {
                kept.push_back(call);
            } else if let Some(failure) = failure {
                actions.push(Action::Refuse(call, failure));
            } else {
                actions.push(Action::Drop(call));
            }
        }
        self.queue = kept;
        actions
    }

    /// Dooms the call at `from` and every call nested in it; the innermost,
    /// if it waits for an import, unwinds at once (the others when control
    /// returns to them). The first reason given sticks.
    fn doom_from(&mut self, from: usize, failure: Failure) -> Vec<Action<P, B>> {
        for call in &mut self.active[from..] {
            call.doom.get_or_insert(failure);
        }
        match self.active.last_mut() {
            Some(top) if top.phase == Phase::AwaitingImport => {
                top.phase = Phase::Running;
                let reason = top.doom.unwrap_or(failure);
                vec![Action::Unwind(reason)]
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
