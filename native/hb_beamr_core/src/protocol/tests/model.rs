//! Model-based test: random interleavings of calls from several callers,
//! nested calls, imports, answers from owners and strangers, aborts, caller
//! deaths, timeouts and stops, driven the way the worker drives the machine
//! (events reach it only while no WebAssembly runs). After every step the
//! protocol's guarantees are checked; at the end every call from a live
//! caller must have had exactly one reply.

use std::collections::HashMap;

use proptest::prelude::*;

use super::super::*;

type P = u32;
const CALLERS: P = 4;

#[derive(Clone, Debug)]
enum Op {
    /// Caller `c` calls the instance.
    Call(P),
    /// The running WebAssembly returns (`false`) or asks for an import.
    Engine(bool),
    /// `c` answers an import; `pick` chooses the call id it names.
    Answer(P, u8),
    /// `c` aborts its import.
    Abort(P, u8),
    /// Caller `c` dies.
    Kill(P),
    /// The call picked times out.
    Timeout(u8),
    /// The instance is stopped (or its pid killed).
    Stop,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..CALLERS).prop_map(Op::Call),
        6 => any::<bool>().prop_map(Op::Engine),
        4 => (0..CALLERS + 1, any::<u8>()).prop_map(|(c, p)| Op::Answer(c, p)),
        1 => (0..CALLERS, any::<u8>()).prop_map(|(c, p)| Op::Abort(c, p)),
        1 => (0..CALLERS).prop_map(Op::Kill),
        1 => any::<u8>().prop_map(Op::Timeout),
        1 => Just(Op::Stop),
    ]
}

/// What the worker's engine is doing with a running call.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sim {
    Running,
    Awaiting,
    /// Told to unwind: it returns at the next engine step.
    Unwinding,
}

#[derive(Default)]
struct World {
    machine: Protocol<P, ()>,
    /// Mirror of the running calls, outermost first: (id, caller, state).
    stack: Vec<(CallId, P, Sim)>,
    next_id: CallId,
    dead: Vec<P>,
    /// Every call made: its caller.
    calls: HashMap<CallId, P>,
    replies: HashMap<CallId, u32>,
    dropped: Vec<CallId>,
    stopped: bool,
}

impl World {
    fn alive(&self, c: P) -> bool {
        !self.dead.contains(&c)
    }

    fn pick(&self, pick: u8) -> CallId {
        // Ids 1..=next_id, plus one never used.
        CallId::from(pick) % (self.next_id + 2)
    }

    fn reply(&mut self, id: CallId, to: P) {
        assert_eq!(self.calls.get(&id), Some(&to), "reply to a stranger");
        *self.replies.entry(id).or_default() += 1;
        assert!(self.replies[&id] <= 1, "call {id} got two replies");
    }

    fn apply(&mut self, actions: Vec<Action<P, ()>>) {
        for action in actions {
            match action {
                Action::Run(call) => {
                    assert!(!self.stopped, "a call ran after stop");
                    assert!(self.alive(call.caller) || self.calls.contains_key(&call.id));
                    if let Some(top) = self.stack.last() {
                        assert_eq!(
                            top.2,
                            Sim::Awaiting,
                            "nested into a call that is not waiting"
                        );
                        assert_eq!(top.1, call.caller, "a stranger's call nested");
                    }
                    self.stack.push((call.id, call.caller, Sim::Running));
                }
                Action::Refuse(call, _) => self.reply(call.id, call.caller),
                Action::Drop(call) => {
                    assert!(!self.alive(call.caller), "a live caller's call dropped");
                    self.dropped.push(call.id);
                }
                Action::Reject { to, id, why } => {
                    // Only ever to whoever answered; never a delivery.
                    let _ = (to, id, why);
                }
                Action::Deliver => {
                    let top = self.stack.last_mut().expect("deliver with nothing running");
                    assert_eq!(top.2, Sim::Awaiting);
                    top.2 = Sim::Running;
                }
                Action::Unwind(_) => {
                    let top = self.stack.last_mut().expect("unwind with nothing running");
                    assert_eq!(top.2, Sim::Awaiting, "unwound a call that was not waiting");
                    top.2 = Sim::Unwinding;
                }
            }
        }
    }

    fn engine_finishes(&mut self) {
        let (id, caller, _) = self.stack.pop().expect("nothing to finish");
        let (done, next) = self.machine.finished().expect("machine has no call");
        assert_eq!((done.id, done.caller), (id, caller));
        self.reply(id, caller);
        self.apply(next);
    }

    fn step(&mut self, op: Op) {
        // While WebAssembly runs, only the engine acts.
        if let Some(&(_, _, sim)) = self.stack.last() {
            if sim != Sim::Awaiting {
                let asks = matches!(op, Op::Engine(true)) && sim == Sim::Running;
                if asks {
                    match self.machine.import_requested() {
                        ImportStep::Ask { owner, id } => {
                            let top = self.stack.last_mut().unwrap();
                            assert_eq!((top.0, top.1), (id, owner));
                            top.2 = Sim::Awaiting;
                        }
                        ImportStep::Unwind(_) => self.engine_finishes(),
                    }
                } else {
                    self.engine_finishes();
                }
                return;
            }
        }
        match op {
            Op::Call(c) if self.alive(c) => {
                self.next_id += 1;
                let id = self.next_id;
                self.calls.insert(id, c);
                let actions = self.machine.arrive(Call {
                    id,
                    caller: c,
                    body: (),
                });
                self.apply(actions);
            }
            Op::Call(_) | Op::Engine(_) => {}
            Op::Answer(c, pick) => {
                let id = (pick % 2 == 0).then(|| self.pick(pick / 2));
                let owner_waiting = self
                    .stack
                    .last()
                    .filter(|t| t.2 == Sim::Awaiting)
                    .map(|t| (t.1, t.0));
                let action = self.machine.answer(c, id);
                if matches!(action, Action::Deliver) {
                    let (owner, call) = owner_waiting.expect("delivered with nothing waiting");
                    assert_eq!(owner, c, "a stranger's answer was delivered");
                    assert!(id.is_none_or(|id| id == call));
                }
                self.apply(vec![action]);
            }
            Op::Abort(c, pick) => {
                let actions = self.machine.abort(c, self.pick(pick));
                self.apply(actions);
            }
            Op::Kill(c) => {
                if self.alive(c) {
                    self.dead.push(c);
                    let actions = self.machine.caller_down(c);
                    self.apply(actions);
                }
            }
            Op::Timeout(pick) => {
                let actions = self.machine.timeout(self.pick(pick));
                self.apply(actions);
            }
            Op::Stop => {
                self.stopped = true;
                let actions = self.machine.stop();
                self.apply(actions);
            }
        }
    }

    fn check(&self) {
        // Nothing waits behind an idle instance.
        if self.machine.depth() == 0 {
            assert!(
                self.machine.is_idle(),
                "calls queued behind an idle instance"
            );
        }
        assert_eq!(self.machine.depth(), self.stack.len());
        // A dead caller never holds the instance.
        if let Some(&(_, owner, Sim::Awaiting)) = self.stack.last() {
            assert!(self.alive(owner), "the instance waits for a dead caller");
        }
    }

    /// Lets everything still in progress end: owners answer, WebAssembly
    /// returns.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            match self.stack.last().copied() {
                None => break,
                Some((id, owner, Sim::Awaiting)) => {
                    let action = self.machine.answer(owner, Some(id));
                    assert!(matches!(action, Action::Deliver));
                    self.apply(vec![action]);
                }
                Some(_) => self.engine_finishes(),
            }
            self.check();
        }
        assert!(self.stack.is_empty() && self.machine.is_idle());
        for (id, caller) in &self.calls {
            let replies = self.replies.get(id).copied().unwrap_or(0);
            if self.alive(*caller) {
                assert_eq!(
                    replies, 1,
                    "call {id} of a live caller got {replies} replies"
                );
            } else {
                assert!(replies <= 1);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("HB_BEAMR_MODEL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000)
    ))]

    #[test]
    fn every_interleaving_keeps_the_protocol(ops in proptest::collection::vec(op(), 1..80)) {
        let mut world = World::default();
        for op in ops {
            world.step(op);
            world.check();
        }
        world.drain();
    }
}
