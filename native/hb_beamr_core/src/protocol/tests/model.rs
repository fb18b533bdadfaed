//! Model-based test: random interleavings of calls (tagged or raw, with
//! imports from Erlang, stubbed or refused) and memory or state operations
//! from several callers, nested calls, imports, answers that fit or not from
//! owners and strangers, aborts, caller deaths, timeouts and stops, driven
//! the way the worker drives the machine: events reach it only while no
//! WebAssembly runs (while a call waits for an import, before its
//! WebAssembly begins, after it returned, or when idle). The world mirrors
//! which calls are doomed and why their imports failed, and after every step
//! the protocol's guarantees are checked (metered calls whose fuel runs
//! out stop, or ask their owner, who answers with more fuel or stops them); at the end every request from a
//! live caller must have had exactly one reply.

use std::collections::HashMap;

use proptest::prelude::*;

use super::super::*;
use crate::values::Number;

type P = u32;
/// Calls carry nothing; operations carry their id in the world.
type Machine = Protocol<P, (), u64>;
type Act = Action<P, (), u64>;
const CALLERS: P = 4;

#[derive(Clone, Debug)]
enum Step {
    /// Caller `c` calls the instance: raw (untagged) or not, how its
    /// imports are served (0: Erlang, 1: stub, 2: refused), whether its
    /// owner serves fuel exhaustion (`on_fuel_exhausted`), and whether it
    /// is a retiring snapshot (`migrate/2`).
    Call(P, bool, u8, bool, bool),
    /// Caller `c` reads, writes, snapshots or restores.
    Operation(P),
    /// The engine moves: the running WebAssembly returns (0: a result,
    /// 1: a trap, 2: another error), asks for an import (3), runs out
    /// of fuel (4) or calls an import no answer can carry (5).
    Engine(u8),
    /// `c` answers an import; `pick` chooses the call id it names; `fits`
    /// says whether the results fit the import.
    Answer(P, u8, bool),
    /// `c` aborts its import.
    Abort(P, u8),
    /// Caller `c` dies.
    Kill(P),
    /// The call picked times out.
    Timeout(u8),
    /// The instance is stopped (or its pid killed).
    Stop,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..CALLERS, any::<bool>(), 0..3u8, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(c, r, i, f, retire)| Step::Call(c, r, i, f, retire)),
        3 => (0..CALLERS).prop_map(Step::Operation),
        7 => (0..6u8).prop_map(Step::Engine),
        4 => (0..CALLERS + 1, any::<u8>(), any::<bool>()).prop_map(|(c, p, f)| Step::Answer(c, p, f)),
        1 => (0..CALLERS, any::<u8>()).prop_map(|(c, p)| Step::Abort(c, p)),
        1 => (0..CALLERS).prop_map(Step::Kill),
        1 => any::<u8>().prop_map(Step::Timeout),
        1 => Just(Step::Stop),
    ]
}

/// What the worker's engine is doing with a call in progress.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sim {
    /// Run, but its WebAssembly has not begun (events are read meanwhile).
    Starting,
    Running,
    Awaiting,
    /// Its import failed (unwound, unfit answer, refused): it traps next.
    Unwinding,
    /// Its WebAssembly returned this; events are read before it finishes.
    Returned(Ended),
}

/// How a call's WebAssembly ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ended {
    Value,
    Trap,
    Other,
}

impl Ended {
    fn result(self) -> Result<(), Error> {
        match self {
            Ended::Value => Ok(()),
            Ended::Trap => Err(Error::Trap("trap".into())),
            Ended::Other => Err(Error::FunctionNotFound),
        }
    }
}

#[derive(Clone, Debug)]
struct Frame {
    id: CallId,
    sim: Sim,
    /// The mirror of the machine's doom: the first reason sticks.
    doom: Option<Failure>,
    /// Why one of its imports failed (the mirror of the machine's).
    failure: Option<Error>,
    /// Whether it waits for fuel (not for an import).
    fuel_wait: bool,
    kind: CallKind,
}

#[derive(Default)]
struct World {
    machine: Machine,
    /// Mirror of the calls in progress, outermost first.
    stack: Vec<Frame>,
    next_id: CallId,
    dead: Vec<P>,
    /// Every call made: where its replies go, and how its imports and its
    /// fuel exhaustion are served.
    calls: HashMap<CallId, (ReplyTo<P>, ImportMode, FuelMode)>,
    /// What each call is to the instance.
    kinds: HashMap<CallId, CallKind>,
    /// Whether the world's first call is the instantiation.
    starts: bool,
    /// Every operation made: its caller.
    ops: HashMap<u64, P>,
    replies: HashMap<CallId, u32>,
    op_replies: HashMap<u64, u32>,
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

    fn caller(&self, id: CallId) -> P {
        self.calls[&id].0.pid
    }

    fn reply(&mut self, id: CallId, to: ReplyTo<P>) {
        assert_eq!(
            self.calls.get(&id).map(|c| c.0),
            Some(to),
            "reply to a stranger"
        );
        *self.replies.entry(id).or_default() += 1;
        assert!(self.replies[&id] <= 1, "call {id} got two replies");
    }

    fn op_reply(&mut self, op: &Op<P, u64>) {
        assert_eq!(
            self.ops.get(&op.body),
            Some(&op.reply.pid),
            "op reply to a stranger"
        );
        *self.op_replies.entry(op.body).or_default() += 1;
        assert!(
            self.op_replies[&op.body] <= 1,
            "op {} got two replies",
            op.body
        );
    }

    /// May `caller`'s request run or be served now?
    fn admits(&self, caller: P) -> bool {
        match self.stack.last() {
            None => true,
            Some(top) => {
                top.sim == Sim::Awaiting && top.doom.is_none() && self.caller(top.id) == caller
            }
        }
    }

    fn refused(&mut self, request: Request<P, (), u64>) {
        match request {
            Request::Call(call) => self.reply(call.id, call.reply),
            Request::Op(op) => self.op_reply(&op),
        }
    }

    /// The innermost call's import fails with `failure` (an unwind).
    fn unwound(&mut self, failure: Failure) {
        let top = self.stack.last_mut().expect("unwind with nothing running");
        assert_eq!(
            top.sim,
            Sim::Awaiting,
            "unwound a call that was not waiting"
        );
        // An abort unwinds a call that is not doomed; anything else, its doom.
        let doom = (failure != Failure::ImportAborted).then_some(failure);
        assert_eq!(top.doom, doom, "unwound with another reason than its doom");
        top.failure.get_or_insert(failure.error());
        top.sim = Sim::Unwinding;
    }

    fn apply(&mut self, actions: Vec<Act>) {
        for action in actions {
            match action {
                Action::Run(call) => {
                    assert!(!self.stopped, "a call ran after stop");
                    assert!(self.alive(call.caller()), "a dead caller's call ran");
                    assert!(
                        self.admits(call.caller()),
                        "a call ran while another holds the instance"
                    );
                    assert_eq!(self.calls[&call.id], (call.reply, call.imports, call.fuel));
                    assert_eq!(self.kinds[&call.id], call.kind);
                    self.stack.push(Frame {
                        id: call.id,
                        sim: Sim::Starting,
                        doom: None,
                        failure: None,
                        fuel_wait: false,
                        kind: call.kind,
                    });
                }
                Action::Serve(op) => {
                    assert!(!self.stopped, "an operation was served after stop");
                    assert!(
                        self.alive(op.reply.pid),
                        "a dead caller's operation was served"
                    );
                    assert!(
                        self.admits(op.reply.pid),
                        "an operation was served while a stranger's call holds the instance"
                    );
                    self.op_reply(&op);
                }
                Action::Refuse(request, why) => {
                    // A dead caller's requests are dropped, never answered;
                    // a refusal is a stop's, or a queued call's timeout.
                    assert!(
                        self.alive(request.caller()),
                        "a dead caller's request was answered"
                    );
                    let expected = if self.stopped {
                        Failure::Stopped
                    } else {
                        Failure::Timeout
                    };
                    assert_eq!(why, expected, "a request refused for the wrong reason");
                    self.refused(request)
                }
                Action::Drop(request) => {
                    assert!(
                        !self.alive(request.caller()),
                        "a live caller's request dropped"
                    );
                }
                Action::Reject { .. } => {}
                Action::Deliver(_) => panic!("a delivery outside an answer"),
                Action::Unwind(failure) => self.unwound(failure),
            }
        }
    }

    /// Dooms the frames from `from` up, as the machine must.
    fn doom(&mut self, from: usize, failure: Failure) {
        for frame in self.stack.iter_mut().skip(from) {
            frame.doom.get_or_insert(failure);
        }
    }

    fn finish(&mut self, ended: Ended) {
        let frame = self.stack.pop().expect("nothing to finish");
        let (reply, next) = self
            .machine
            .finished(ended.result())
            .expect("machine has no call");
        assert_eq!(reply.id, frame.id);
        let expected = match (frame.doom, &frame.failure, ended.result()) {
            (Some(doom), _, _) => Err(doom.error()),
            (None, Some(failure), Err(Error::Trap(_))) => Err(failure.clone()),
            (None, _, result) => result,
        };
        assert_eq!(
            reply.result, expected,
            "call {} ended with the wrong reply",
            frame.id
        );
        self.reply(reply.id, reply.to);
        // A failed instantiation, or a retiring snapshot taken, stops the
        // instance: what it then refuses is refused as stopped.
        let ends = match frame.kind {
            CallKind::Start => expected.is_err(),
            CallKind::Retire => expected.is_ok(),
            CallKind::Export => false,
        };
        if ends && !self.stopped {
            self.stopped = true;
            self.doom(0, Failure::Stopped);
        }
        self.apply(next);
        if ends {
            assert!(
                self.machine.is_stopped(),
                "call {} did not stop the instance",
                frame.id
            );
        }
    }

    /// The engine moves the innermost call on. Returns false when it cannot
    /// (nothing runs, or the call waits for its import).
    fn engine(&mut self, how: u8) -> bool {
        let Some(top) = self.stack.last().cloned() else {
            return false;
        };
        match top.sim {
            Sim::Awaiting => return false,
            Sim::Starting => match self.machine.entering() {
                Ok(()) => {
                    assert_eq!(top.doom, None, "a doomed call entered WebAssembly");
                    self.top().sim = Sim::Running;
                }
                Err(failure) => {
                    assert_eq!(top.doom, Some(failure), "a call that may run was kept out");
                    self.finish(Ended::Other);
                }
            },
            Sim::Running if how == 3 => self.import(&top),
            Sim::Running if how == 5 => self.unservable_import(),
            Sim::Running if how == 4 => self.out_of_fuel(&top),
            Sim::Running => {
                let ended = [Ended::Value, Ended::Trap, Ended::Other][usize::from(how % 3)];
                self.top().sim = Sim::Returned(ended);
            }
            Sim::Unwinding => self.top().sim = Sim::Returned(Ended::Trap),
            Sim::Returned(ended) => self.finish(ended),
        }
        true
    }

    fn top(&mut self) -> &mut Frame {
        self.stack.last_mut().expect("a call in progress")
    }

    fn import(&mut self, top: &Frame) {
        let (reply, imports, _) = self.calls[&top.id];
        match (self.machine.import_requested(Ok(())), imports) {
            (ImportStep::Stub, ImportMode::Stub) => {}
            (ImportStep::Refuse, ImportMode::Refuse) => self.top().sim = Sim::Unwinding,
            (ImportStep::Ask { to, id }, ImportMode::Erlang) => {
                assert_eq!(
                    (to, id),
                    (reply, top.id),
                    "the import asked of the wrong process"
                );
                assert_eq!(top.doom, None, "a doomed call asked for an import");
                let frame = self.top();
                frame.sim = Sim::Awaiting;
                frame.fuel_wait = false;
            }
            (ImportStep::Unwind(failure), ImportMode::Erlang) => {
                assert_eq!(top.doom, Some(failure), "unwound a call that is not doomed");
                let frame = self.top();
                frame.failure.get_or_insert(failure.error());
                frame.sim = Sim::Unwinding;
            }
            (step, mode) => panic!("import of a {mode:?} call served as {step:?}"),
        }
    }

    /// The innermost call calls an import whose types no answer can carry:
    /// refused however its imports are served, the call fails with why.
    fn unservable_import(&mut self) {
        let error = Error::UnsupportedSignature("v128".into());
        assert_eq!(
            self.machine.import_requested(Err(error.clone())),
            ImportStep::Refuse,
            "an unservable import was served"
        );
        let frame = self.top();
        frame.failure.get_or_insert(error);
        frame.sim = Sim::Unwinding;
    }

    /// The innermost call's counter cannot pay for its next block.
    fn out_of_fuel(&mut self, top: &Frame) {
        let (reply, _, fuel) = self.calls[&top.id];
        match (self.machine.fuel_exhausted(), fuel) {
            (ImportStep::Refuse, FuelMode::Stop) => {
                assert_eq!(top.doom, None, "a doomed call was not unwound");
                // The worker records the fuel used; the call traps.
                self.stop_for_fuel();
            }
            (ImportStep::Ask { to, id }, FuelMode::Erlang) => {
                assert_eq!((to, id), (reply, top.id), "fuel asked of the wrong process");
                assert_eq!(top.doom, None, "a doomed call asked for fuel");
                let frame = self.top();
                frame.sim = Sim::Awaiting;
                frame.fuel_wait = true;
            }
            (ImportStep::Unwind(failure), _) => {
                assert_eq!(top.doom, Some(failure), "unwound a call that is not doomed");
                let frame = self.top();
                frame.failure.get_or_insert(failure.error());
                frame.sim = Sim::Unwinding;
            }
            (step, mode) => panic!("fuel exhaustion of a {mode:?} call served as {step:?}"),
        }
    }

    /// The innermost call stops for want of fuel: its import traps.
    fn stop_for_fuel(&mut self) {
        let error = Error::OutOfFuel(7);
        self.machine.import_failed(error.clone());
        let frame = self.top();
        frame.failure.get_or_insert(error);
        frame.sim = Sim::Unwinding;
    }

    fn step(&mut self, step: Step) {
        // While WebAssembly runs, only the engine acts.
        let sim = self.stack.last().map(|t| t.sim);
        if matches!(sim, Some(Sim::Running | Sim::Unwinding)) {
            let how = match step {
                Step::Engine(how) => how,
                _ => 0,
            };
            self.engine(how);
            return;
        }
        match step {
            Step::Call(c, raw, imports, asks_fuel, retire) if self.alive(c) => {
                self.next_id += 1;
                let id = self.next_id;
                let reply = ReplyTo {
                    pid: c,
                    id: (!raw).then_some(id),
                };
                let imports = [ImportMode::Erlang, ImportMode::Stub, ImportMode::Refuse]
                    [usize::from(imports)];
                let fuel = if asks_fuel {
                    FuelMode::Erlang
                } else {
                    FuelMode::Stop
                };
                self.calls.insert(id, (reply, imports, fuel));
                let kind = match (id, retire) {
                    (1, _) if self.starts => CallKind::Start,
                    (_, true) => CallKind::Retire,
                    (_, false) => CallKind::Export,
                };
                self.kinds.insert(id, kind);
                let call = Call {
                    id,
                    reply,
                    kind,
                    imports,
                    fuel,
                    body: (),
                };
                let admitted = self.admits(c) && !self.stopped;
                let actions = self.machine.arrive(call);
                self.apply(actions);
                let ran = self.stack.last().is_some_and(|top| top.id == id);
                assert_eq!(ran, admitted, "call {id} ran or queued against the rule");
            }
            Step::Operation(c) if self.alive(c) => {
                let id = self.ops.len() as u64;
                self.ops.insert(id, c);
                let reply = ReplyTo { pid: c, id: None };
                let admitted = self.admits(c) && !self.stopped;
                let actions = self.machine.operation(Op { reply, body: id });
                self.apply(actions);
                // Served at once when admitted (refused at once after a stop).
                let replied = self.op_replies.contains_key(&id);
                assert_eq!(
                    replied,
                    admitted || self.stopped,
                    "op {id} served or queued against the rule"
                );
            }
            Step::Call(..) | Step::Operation(_) => {}
            Step::Engine(how) => {
                self.engine(how);
            }
            Step::Answer(c, pick, fits) => self.answer(c, pick, fits),
            Step::Abort(c, pick) => {
                let id = self.pick(pick);
                // Only the owner of the waiting call, naming it, aborts it.
                let owner_aborts = self.stack.last().is_some_and(|top| {
                    top.sim == Sim::Awaiting && top.id == id && self.caller(top.id) == c
                });
                let actions = self.machine.abort(c, id);
                self.apply(actions);
                let unwound = self
                    .stack
                    .last()
                    .is_some_and(|top| top.sim == Sim::Unwinding);
                assert_eq!(
                    unwound, owner_aborts,
                    "an abort unwound an import it does not own (or the owner's did not)"
                );
            }
            Step::Kill(c) => {
                if self.alive(c) {
                    self.dead.push(c);
                    if let Some(at) = self.stack.iter().position(|f| self.caller(f.id) == c) {
                        self.doom(at, Failure::CallerExited);
                    }
                    let actions = self.machine.caller_down(c);
                    self.apply(actions);
                }
            }
            Step::Timeout(pick) => {
                let id = self.pick(pick);
                // A live caller's call that waits in the queue.
                let queued = self.calls.contains_key(&id)
                    && !self.replies.contains_key(&id)
                    && !self.stack.iter().any(|f| f.id == id)
                    && self.alive(self.caller(id));
                if let Some(at) = self.stack.iter().position(|f| f.id == id) {
                    self.doom(at, Failure::Timeout);
                }
                let actions = self.machine.timeout(id);
                self.apply(actions);
                if queued {
                    assert_eq!(
                        self.replies.get(&id),
                        Some(&1),
                        "a queued call that timed out was not refused at once"
                    );
                }
            }
            Step::Stop => {
                self.stopped = true;
                self.doom(0, Failure::Stopped);
                let actions = self.machine.stop();
                self.apply(actions);
            }
        }
    }

    fn answer(&mut self, c: P, pick: u8, fits: bool) {
        let id = pick.is_multiple_of(2).then(|| self.pick(pick / 2));
        let results = vec![Number::Int(i128::from(pick))];
        let waiting = self
            .stack
            .last()
            .filter(|t| t.sim == Sim::Awaiting)
            .cloned();
        match self.machine.answer(c, id, results.clone()) {
            Action::Deliver(given) => {
                let top = waiting.expect("delivered with nothing waiting");
                assert_eq!(self.caller(top.id), c, "a stranger's answer was delivered");
                assert!(
                    id.is_none_or(|id| id == top.id),
                    "an answer for another call taken"
                );
                assert_eq!(
                    given, results,
                    "the import got another answer than the owner's"
                );
                if top.fuel_wait && !fits {
                    // No fuel given ({stop, State}): out_of_fuel traps.
                    self.stop_for_fuel();
                } else if fits {
                    self.top().sim = Sim::Running;
                } else {
                    let error = Error::InvalidImportResponse(format!("{pick}"));
                    self.machine.answer_unfit(error.clone());
                    let frame = self.top();
                    frame.failure.get_or_insert(error);
                    frame.sim = Sim::Unwinding;
                }
            }
            Action::Reject { to, why } => {
                assert_eq!(to, ReplyTo { pid: c, id }, "a rejection to someone else");
                let owns = waiting.as_ref().is_some_and(|t| self.caller(t.id) == c);
                let names_it = waiting
                    .as_ref()
                    .is_some_and(|t| id.is_none_or(|id| id == t.id));
                assert!(!(owns && names_it), "the owner's answer was rejected");
                let _ = why;
            }
            other => panic!("an answer led to {other:?}"),
        }
    }

    fn check(&self) {
        // Nothing waits behind an idle instance.
        if self.machine.depth() == 0 {
            assert!(
                self.machine.is_idle(),
                "requests queued behind an idle instance"
            );
        }
        assert_eq!(self.machine.depth(), self.stack.len());
        // A dead caller never holds the instance.
        if let Some(top) = self.stack.last() {
            if top.sim == Sim::Awaiting {
                assert!(
                    self.alive(self.caller(top.id)),
                    "the instance waits for a dead caller"
                );
                // A doomed call unwinds at once: it never waits.
                assert_eq!(top.doom, None, "a doomed call waits for its import");
            }
        }
    }

    /// Lets everything still in progress end: owners answer, WebAssembly
    /// returns.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            match self.stack.last().cloned() {
                None => break,
                Some(top) if top.sim == Sim::Awaiting => {
                    let owner = self.caller(top.id);
                    let action = self.machine.answer(owner, Some(top.id), Vec::new());
                    assert!(matches!(action, Action::Deliver(_)));
                    self.top().sim = Sim::Running;
                }
                Some(_) => {
                    self.engine(0);
                }
            }
            self.check();
        }
        assert!(self.stack.is_empty() && self.machine.is_idle());
        for (id, (reply, _, _)) in &self.calls {
            let replies = self.replies.get(id).copied().unwrap_or(0);
            if self.alive(reply.pid) {
                assert_eq!(
                    replies, 1,
                    "call {id} of a live caller got {replies} replies"
                );
            } else {
                assert!(replies <= 1);
            }
        }
        for (id, caller) in &self.ops {
            let replies = self.op_replies.get(id).copied().unwrap_or(0);
            if self.alive(*caller) {
                assert_eq!(replies, 1, "op {id} of a live caller got {replies} replies");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("HB_BEAMR_MODEL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000)
    ))]

    #[test]
    fn every_interleaving_keeps_the_protocol(
        starts in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        let mut world = World { starts, ..World::default() };
        for step in steps {
            world.step(step);
            world.check();
        }
        world.drain();
    }
}
