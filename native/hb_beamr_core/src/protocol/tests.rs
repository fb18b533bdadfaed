//! A test per transition, and a model-based test of random interleavings.

use super::*;

type P = u32;
type Machine = Protocol<P, ()>;

fn call(id: CallId, caller: P) -> Call<P, ()> {
    Call {
        id,
        caller,
        body: (),
    }
}

fn ran(actions: &[Action<P, ()>]) -> Vec<CallId> {
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
    assert_eq!(m.import_requested(), ImportStep::Ask { owner: 10, id: 1 });
    m
}

#[test]
fn an_idle_instance_runs_a_call_at_once() {
    let mut m = Machine::new();
    assert_eq!(ran(&m.arrive(call(1, 10))), vec![1]);
    let (done, next) = m.finished().unwrap();
    assert_eq!((done.id, done.caller, done.failure), (1, 10, None));
    assert!(next.is_empty());
    assert!(m.is_idle());
}

#[test]
fn calls_from_others_queue_and_run_in_order() {
    let mut m = waiting();
    assert!(m.arrive(call(2, 20)).is_empty());
    assert!(m.arrive(call(3, 30)).is_empty());
    assert!(matches!(m.answer(10, Some(1)), Action::Deliver));
    let (_, next) = m.finished().unwrap();
    assert_eq!(ran(&next), vec![2]);
    let (_, next) = m.finished().unwrap();
    assert_eq!(ran(&next), vec![3]);
}

#[test]
fn the_owner_of_a_waiting_call_nests() {
    let mut m = waiting();
    assert_eq!(ran(&m.arrive(call(2, 10))), vec![2]);
    assert_eq!(m.depth(), 2);
    let (done, next) = m.finished().unwrap();
    assert_eq!(done.id, 2);
    assert!(next.is_empty());
    assert!(matches!(m.answer(10, Some(1)), Action::Deliver));
}

#[test]
fn a_stranger_cannot_answer_an_import() {
    let mut m = waiting();
    assert!(matches!(
        m.answer(99, None),
        Action::Reject {
            to: 99,
            why: Rejection::NotOwner,
            ..
        }
    ));
    // The owner's answer still goes through.
    assert!(matches!(m.answer(10, None), Action::Deliver));
}

#[test]
fn an_answer_for_another_call_or_none_pending_is_rejected() {
    let mut m = waiting();
    assert!(matches!(
        m.answer(10, Some(7)),
        Action::Reject {
            why: Rejection::NoPendingImport,
            ..
        }
    ));
    assert!(matches!(m.answer(10, Some(1)), Action::Deliver));
    assert!(matches!(
        m.answer(10, Some(1)),
        Action::Reject {
            why: Rejection::NoPendingImport,
            ..
        }
    ));
    let mut idle = Machine::new();
    assert!(matches!(
        idle.answer(10, None),
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
    assert!(matches!(actions.as_slice(), [Action::Drop(c)] if c.id == 2));
    assert!(matches!(m.answer(10, None), Action::Deliver));
    let (_, next) = m.finished().unwrap();
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
    let (done, next) = m.finished().unwrap();
    assert_eq!(done.failure, Some(Failure::CallerExited));
    assert_eq!(ran(&next), vec![2]);
}

#[test]
fn a_dead_owner_of_nested_calls_unwinds_them_all() {
    let mut m = waiting();
    m.arrive(call(2, 10));
    assert_eq!(m.import_requested(), ImportStep::Ask { owner: 10, id: 2 });
    let actions = m.caller_down(10);
    assert!(matches!(
        actions.as_slice(),
        [Action::Unwind(Failure::CallerExited)]
    ));
    let (inner, next) = m.finished().unwrap();
    assert_eq!(inner.id, 2);
    assert!(matches!(
        next.as_slice(),
        [Action::Unwind(Failure::CallerExited)]
    ));
    let (outer, _) = m.finished().unwrap();
    assert_eq!(outer.failure, Some(Failure::CallerExited));
}

#[test]
fn a_doomed_call_asking_for_an_import_unwinds_without_asking() {
    let mut m = Machine::new();
    m.arrive(call(1, 10));
    // The timeout comes while WebAssembly runs; the worker sees it later.
    assert!(m.timeout(1).is_empty());
    assert_eq!(m.import_requested(), ImportStep::Unwind(Failure::Timeout));
}

#[test]
fn a_timeout_of_a_waiting_call_unwinds_it() {
    let mut m = waiting();
    assert!(matches!(
        m.timeout(1).as_slice(),
        [Action::Unwind(Failure::Timeout)]
    ));
    let (done, _) = m.finished().unwrap();
    assert_eq!(done.failure, Some(Failure::Timeout));
}

#[test]
fn a_timeout_of_a_queued_call_refuses_it() {
    let mut m = waiting();
    m.arrive(call(2, 20));
    assert!(matches!(
        m.timeout(2).as_slice(),
        [Action::Refuse(c, Failure::Timeout)] if c.id == 2
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
        [Action::Refuse(c, Failure::Stopped), Action::Unwind(Failure::Stopped)] if c.id == 2
    ));
    let (done, next) = m.finished().unwrap();
    assert_eq!(done.failure, Some(Failure::Stopped));
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
    assert_eq!(m.import_requested(), ImportStep::Unwind(Failure::Timeout));
    assert!(m.arrive(call(2, 10)).is_empty());
    let (_, next) = m.finished().unwrap();
    assert_eq!(ran(&next), vec![2]);
}

mod model;
