//! A test per transition, and a model-based test of random interleavings.

use super::*;

type P = u32;
type Machine = Protocol<P, (), ()>;

fn call(id: CallId, caller: P) -> Call<P, ()> {
    of_kind(id, caller, CallKind::Export)
}

fn of_kind(id: CallId, caller: P, kind: CallKind) -> Call<P, ()> {
    Call {
        id,
        reply: ReplyTo {
            pid: caller,
            id: Some(id),
        },
        kind,
        imports: ImportMode::Erlang,
        fuel: FuelMode::Stop,
        body: (),
    }
}

fn op(caller: P) -> Op<P, ()> {
    Op {
        reply: ReplyTo {
            pid: caller,
            id: None,
        },
        body: (),
    }
}

fn ask(owner: P, id: CallId) -> ImportStep<P> {
    ImportStep::Ask {
        to: ReplyTo {
            pid: owner,
            id: Some(id),
        },
        id,
    }
}

fn ran(actions: &[Action<P, (), ()>]) -> Vec<CallId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Run(c) => Some(c.id),
            _ => None,
        })
        .collect()
}

/// A machine with call 1 of process 10 waiting for its import.
fn waiting() -> Machine {
    let mut m = Machine::new();
    assert_eq!(ran(&m.arrive(call(1, 10))), vec![1]);
    assert_eq!(m.import_requested(Ok(())), ask(10, 1));
    m
}

#[test]
fn an_idle_instance_runs_a_call_at_once() {
    let mut m = Machine::new();
    assert_eq!(ran(&m.arrive(call(1, 10))), vec![1]);
    let (done, next) = m.finished(Ok(())).unwrap();
    assert_eq!((done.id, done.to.pid, done.result), (1, 10, Ok(())));
    assert!(next.is_empty());
    assert!(m.is_idle());
}

#[test]
fn calls_from_others_queue_and_run_in_order() {
    let mut m = waiting();
    assert!(m.arrive(call(2, 20)).is_empty());
    assert!(m.arrive(call(3, 30)).is_empty());
    assert!(matches!(m.answer(10, Some(1), vec![]), Action::Deliver(_)));
    let (_, next) = m.finished(Ok(())).unwrap();
    assert_eq!(ran(&next), vec![2]);
    let (_, next) = m.finished(Ok(())).unwrap();
    assert_eq!(ran(&next), vec![3]);
}

#[test]
fn the_owner_of_a_waiting_call_nests() {
    let mut m = waiting();
    assert_eq!(ran(&m.arrive(call(2, 10))), vec![2]);
    assert_eq!(m.depth(), 2);
    let (done, next) = m.finished(Ok(())).unwrap();
    assert_eq!(done.id, 2);
    assert!(next.is_empty());
    assert!(matches!(m.answer(10, Some(1), vec![]), Action::Deliver(_)));
}

#[test]
fn a_stranger_cannot_answer_an_import() {
    let mut m = waiting();
    assert!(matches!(
        m.answer(99, None, vec![]),
        Action::Reject {
            to: ReplyTo { pid: 99, .. },
            why: Rejection::NotOwner,
            ..
        }
    ));
    // The owner's answer still goes through.
    assert!(matches!(m.answer(10, None, vec![]), Action::Deliver(_)));
}

#[test]
fn an_answer_for_another_call_or_none_pending_is_rejected() {
    let mut m = waiting();
    assert!(matches!(
        m.answer(10, Some(7), vec![]),
        Action::Reject {
            why: Rejection::NoPendingImport,
            ..
        }
    ));
    assert!(matches!(m.answer(10, Some(1), vec![]), Action::Deliver(_)));
    assert!(matches!(
        m.answer(10, Some(1), vec![]),
        Action::Reject {
            why: Rejection::NoPendingImport,
            ..
        }
    ));
    let mut idle = Machine::new();
    assert!(matches!(
        idle.answer(10, None, vec![]),
        Action::Reject {
            why: Rejection::NoPendingImport,
            ..
        }
    ));
}

#[test]
fn a_dead_queued_caller_is_dropped_and_blocks_nobody() {
    let mut m = waiting();
    assert!(m.arrive(call(2, 20)).is_empty());
    assert!(m.arrive(call(3, 30)).is_empty());
    let actions = m.caller_down(20);
    assert!(matches!(actions.as_slice(), [Action::Drop(Request::Call(c))] if c.id == 2));
    assert!(matches!(m.answer(10, None, vec![]), Action::Deliver(_)));
    let (_, next) = m.finished(Ok(())).unwrap();
    assert_eq!(ran(&next), vec![3]);
}

#[test]
fn a_dead_owner_unwinds_its_waiting_call() {
    let mut m = waiting();
    assert!(m.arrive(call(2, 20)).is_empty());
    let actions = m.caller_down(10);
    assert!(matches!(
        actions.as_slice(),
        [Action::Unwind(Failure::CallerExited)]
    ));
    let (done, next) = m.finished(Ok(())).unwrap();
    assert_eq!(done.result, Err(Error::CallerExited));
    assert_eq!(ran(&next), vec![2]);
}

#[test]
fn a_dead_owner_of_nested_calls_unwinds_them_all() {
    let mut m = waiting();
    m.arrive(call(2, 10));
    assert_eq!(m.import_requested(Ok(())), ask(10, 2));
    let actions = m.caller_down(10);
    assert!(matches!(
        actions.as_slice(),
        [Action::Unwind(Failure::CallerExited)]
    ));
    let (inner, next) = m.finished(Ok(())).unwrap();
    assert_eq!(inner.id, 2);
    assert!(matches!(
        next.as_slice(),
        [Action::Unwind(Failure::CallerExited)]
    ));
    let (outer, _) = m.finished(Ok(())).unwrap();
    assert_eq!(outer.result, Err(Error::CallerExited));
}

#[test]
fn a_doomed_call_asking_for_an_import_unwinds_without_asking() {
    let mut m = Machine::new();
    m.arrive(call(1, 10));
    // The timeout comes while WebAssembly runs; the worker sees it later.
    assert!(m.timeout(1).is_empty());
    assert_eq!(
        m.import_requested(Ok(())),
        ImportStep::Unwind(Failure::Timeout)
    );
}

#[test]
fn a_timeout_of_a_waiting_call_unwinds_it() {
    let mut m = waiting();
    assert!(matches!(
        m.timeout(1).as_slice(),
        [Action::Unwind(Failure::Timeout)]
    ));
    let (done, _) = m.finished(Ok(())).unwrap();
    assert_eq!(done.result, Err(Error::Timeout));
}

#[test]
fn a_timeout_of_a_queued_call_refuses_it() {
    let mut m = waiting();
    m.arrive(call(2, 20));
    assert!(matches!(
        m.timeout(2).as_slice(),
        [Action::Refuse(Request::Call(c), Failure::Timeout)] if c.id == 2
    ));
    assert!(m.timeout(42).is_empty());
}

#[test]
fn only_the_owner_aborts_and_only_its_own_call() {
    let mut m = waiting();
    assert!(m.abort(99, 1).is_empty());
    assert!(m.abort(10, 2).is_empty());
    assert!(matches!(
        m.abort(10, 1).as_slice(),
        [Action::Unwind(Failure::ImportAborted)]
    ));
}

#[test]
fn stop_refuses_the_queue_unwinds_the_running_and_refuses_what_comes() {
    let mut m = waiting();
    m.arrive(call(2, 20));
    let actions = m.stop();
    assert!(matches!(
        actions.as_slice(),
        [Action::Refuse(Request::Call(c), Failure::Stopped), Action::Unwind(Failure::Stopped)] if c.id == 2
    ));
    let (done, next) = m.finished(Ok(())).unwrap();
    assert_eq!(done.result, Err(Error::Stopped));
    assert!(next.is_empty());
    assert!(matches!(
        m.arrive(call(3, 30)).as_slice(),
        [Action::Refuse(_, Failure::Stopped)]
    ));
    assert!(m.is_stopped());
}

#[test]
fn a_call_arriving_for_a_doomed_owner_queues() {
    let mut m = Machine::new();
    m.arrive(call(1, 10));
    m.timeout(1);
    // Not asked for an import yet, so nothing unwinds now; a call from the
    // owner while it is doomed and waiting must not nest into it.
    assert_eq!(
        m.import_requested(Ok(())),
        ImportStep::Unwind(Failure::Timeout)
    );
    assert!(m.arrive(call(2, 10)).is_empty());
    let (_, next) = m.finished(Ok(())).unwrap();
    assert_eq!(ran(&next), vec![2]);
}

#[test]
fn operations_of_strangers_queue_behind_the_waiting_call() {
    let mut m = waiting();
    assert!(m.operation(op(20)).is_empty());
    assert!(m.arrive(call(2, 30)).is_empty());
    assert!(m.operation(op(40)).is_empty());
    assert!(matches!(m.answer(10, Some(1), vec![]), Action::Deliver(_)));
    // In arrival order: the operation, then the call; the operation after
    // that call waits for it.
    let (_, next) = m.finished(Ok(())).unwrap();
    assert!(matches!(
        next.as_slice(),
        [Action::Serve(o), Action::Run(c)] if o.reply.pid == 20 && c.id == 2
    ));
    let (_, next) = m.finished(Ok(())).unwrap();
    assert!(matches!(next.as_slice(), [Action::Serve(o)] if o.reply.pid == 40));
    assert!(m.is_idle());
}

#[test]
fn the_owner_of_a_waiting_call_is_served_at_once() {
    let mut m = waiting();
    assert!(matches!(m.operation(op(10)).as_slice(), [Action::Serve(_)]));
    let mut idle = Machine::new();
    assert!(matches!(
        idle.operation(op(10)).as_slice(),
        [Action::Serve(_)]
    ));
    // While the call runs WebAssembly (not waiting), even the owner queues.
    let mut running = Machine::new();
    running.arrive(call(1, 10));
    assert!(running.operation(op(10)).is_empty());
}

#[test]
fn queued_operations_are_refused_on_stop_and_dropped_with_their_caller() {
    let mut m = waiting();
    m.operation(op(20));
    m.operation(op(30));
    assert!(matches!(
        m.caller_down(20).as_slice(),
        [Action::Drop(Request::Op(_))]
    ));
    assert!(matches!(
        m.stop().as_slice(),
        [
            Action::Refuse(Request::Op(_), Failure::Stopped),
            Action::Unwind(Failure::Stopped)
        ]
    ));
    assert!(matches!(
        m.operation(op(30)).as_slice(),
        [Action::Refuse(Request::Op(_), Failure::Stopped)]
    ));
}

#[test]
fn a_call_doomed_before_its_webassembly_begins_does_not_enter() {
    let mut m = Machine::new();
    m.arrive(call(1, 10));
    assert_eq!(m.entering(), Ok(()));
    m.timeout(1);
    assert_eq!(m.entering(), Err(Failure::Timeout));
    let (done, _) = m.finished(Err::<(), _>(Error::Stopped)).unwrap();
    assert_eq!(done.result, Err(Error::Timeout));
    // A stop before the call begins: it does not enter either.
    let mut m = Machine::new();
    m.arrive(call(1, 10));
    m.stop();
    assert_eq!(m.entering(), Err(Failure::Stopped));
}

#[test]
fn imports_are_served_as_the_call_asked() {
    let mut m = Machine::new();
    let mut stub = call(1, 10);
    stub.imports = ImportMode::Stub;
    m.arrive(stub);
    assert_eq!(m.import_requested(Ok(())), ImportStep::Stub);
    m.finished(Ok(()));
    let mut refused = call(2, 10);
    refused.imports = ImportMode::Refuse;
    m.arrive(refused);
    assert_eq!(m.import_requested(Ok(())), ImportStep::Refuse);
    m.finished(Ok(()));
    assert_eq!(m.import_requested(Ok(())), ImportStep::Refuse);
    // A raw call's import goes untagged, as its replies do.
    let mut raw = call(3, 10);
    raw.reply.id = None;
    m.arrive(raw);
    assert_eq!(
        m.import_requested(Ok(())),
        ImportStep::Ask {
            to: ReplyTo { pid: 10, id: None },
            id: 3
        }
    );
}

#[test]
fn the_answer_is_delivered_as_given() {
    let mut m = waiting();
    let answer = vec![crate::values::Number::Int(7)];
    assert!(matches!(m.answer(10, Some(1), answer.clone()), Action::Deliver(r) if r == answer));
}

#[test]
fn which_error_a_call_ends_with() {
    let trap = || Err::<(), _>(Error::Trap("unreachable".into()));
    // An unfit answer: the trap it causes reports it.
    let mut m = waiting();
    m.answer(10, Some(1), vec![]);
    m.answer_unfit(Error::InvalidImportResponse("bad".into()));
    let (done, _) = m.finished(trap()).unwrap();
    assert_eq!(done.result, Err(Error::InvalidImportResponse("bad".into())));
    // An aborted import: the call reports the abort, not the trap.
    let mut m = waiting();
    m.abort(10, 1);
    let (done, _) = m.finished(trap()).unwrap();
    assert_eq!(done.result, Err(Error::ImportAborted));
    // A doom wins over both, and over a result.
    let mut m = waiting();
    m.abort(10, 1);
    m.timeout(1);
    let (done, _) = m.finished(Ok(())).unwrap();
    assert_eq!(done.result, Err(Error::Timeout));
    // Other errors are the call's own.
    let mut m = waiting();
    m.answer(10, Some(1), vec![]);
    let (done, _) = m.finished(Err::<(), _>(Error::FunctionNotFound)).unwrap();
    assert_eq!(done.result, Err(Error::FunctionNotFound));
}

#[test]
fn a_failed_start_stops_the_instance_and_refuses_what_queued() {
    let mut m = Machine::new();
    m.arrive(of_kind(1, 10, CallKind::Start));
    m.arrive(call(2, 20));
    let (done, next) = m
        .finished(Err::<(), _>(Error::Instantiation("x".into())))
        .unwrap();
    assert_eq!(done.result, Err(Error::Instantiation("x".into())));
    assert!(matches!(
        next.as_slice(),
        [Action::Refuse(Request::Call(c), Failure::Stopped)] if c.id == 2
    ));
    assert!(m.is_stopped());
    // A start that succeeds serves on.
    let mut m = Machine::new();
    m.arrive(of_kind(1, 10, CallKind::Start));
    m.arrive(call(2, 20));
    let (_, next) = m.finished(Ok(())).unwrap();
    assert_eq!(ran(&next), vec![2]);
    assert!(!m.is_stopped());
}

#[test]
fn a_retiring_snapshot_taken_stops_the_instance_and_one_that_failed_does_not() {
    let mut m = Machine::new();
    m.arrive(of_kind(1, 10, CallKind::Retire));
    m.arrive(call(2, 20));
    let (done, next) = m.finished(Ok(())).unwrap();
    assert_eq!(done.result, Ok(()));
    assert!(matches!(
        next.as_slice(),
        [Action::Refuse(Request::Call(c), Failure::Stopped)] if c.id == 2
    ));
    assert!(m.is_stopped());
    let mut m = Machine::new();
    m.arrive(of_kind(1, 10, CallKind::Retire));
    m.arrive(call(2, 20));
    let (done, next) = m.finished(Err::<(), _>(Error::Stopped)).unwrap();
    assert_eq!(done.result, Err(Error::Stopped));
    assert_eq!(ran(&next), vec![2]);
    assert!(!m.is_stopped());
}

#[test]
fn an_import_no_answer_can_carry_fails_its_call_however_imports_are_served() {
    let unsupported = || Error::UnsupportedSignature("v128".into());
    for imports in [ImportMode::Erlang, ImportMode::Stub, ImportMode::Refuse] {
        let mut m = Machine::new();
        let mut c = call(1, 10);
        c.imports = imports;
        m.arrive(c);
        assert_eq!(m.import_requested(Err(unsupported())), ImportStep::Refuse);
        let (done, _) = m
            .finished(Err::<(), _>(Error::Trap("import failed".into())))
            .unwrap();
        assert_eq!(done.result, Err(unsupported()));
    }
    // A doom still wins.
    let mut m = Machine::new();
    m.arrive(call(1, 10));
    m.timeout(1);
    m.import_requested(Err(unsupported()));
    let (done, _) = m.finished(Err::<(), _>(Error::Trap("t".into()))).unwrap();
    assert_eq!(done.result, Err(Error::Timeout));
}

#[test]
fn what_was_decided_and_not_carried_out_at_close_is_refused_or_forgotten() {
    let mut m = Machine::new();
    let run = m.arrive(call(1, 10));
    let serve = m.operation(op(20));
    m.stop();
    // The call was running: the machine forgets it and refuses it.
    for action in run {
        assert!(matches!(
            m.undone(action),
            Some(Action::Refuse(Request::Call(c), Failure::Stopped)) if c.id == 1
        ));
    }
    assert!(m.is_idle());
    // The operation was queued behind it and refused by the stop itself;
    // an operation served at once is refused.
    assert!(serve
        .into_iter()
        .all(|a| !matches!(m.undone(a), Some(Action::Serve(_)))));
    let mut m = Machine::new();
    let serve = m.operation(op(20));
    m.stop();
    for action in serve {
        assert!(matches!(
            m.undone(action),
            Some(Action::Refuse(Request::Op(_), Failure::Stopped))
        ));
    }
    // An unwind or a delivery needs nothing more.
    assert!(m.undone(Action::Unwind(Failure::Stopped)).is_none());
    assert!(m.undone(Action::Deliver(vec![])).is_none());
}

mod model;
