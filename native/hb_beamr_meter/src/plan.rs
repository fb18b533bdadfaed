//! Where a function's fuel is charged: its instructions cut into
//! straight-line blocks, each charged (the sum of its instructions' fixed
//! costs) before its first instruction.
//!
//! A block begins where control can arrive other than from the
//! instruction before:
//! - the function's first instruction (function entry: every call, direct,
//!   indirect, tail or from the host, is charged by the callee);
//! - after `loop` (the loop header: charged on every iteration);
//! - after `if` and `else` (each arm), and after the `end` of a `block`,
//!   `if`, `try` or `try_table` and after `delegate` (where branches and
//!   the arms join);
//! - after `catch` and `catch_all` (handler entry, which also costs
//!   [`HANDLER_ENTRY`]);
//! - after a conditional branch back to a `loop` (`br_if`, `br_on_*`).
//!
//! A conditional branch forward (`br_if`, `br_on_*` to a `block`, `if`,
//! `try` or the function) does not end a block (cost table 2; 1 cut one
//! there): the code after it, up to the block's end, is charged with the
//! code before it, whether the branch is taken or not. A taken branch
//! pays for the code it skips (at most the rest of one straight-line
//! block); in exchange a loop of the usual shape (`loop`, `br_if` out,
//! body, `br` back) is one charge an iteration, not two. A conditional
//! branch back to a `loop` still ends its block: otherwise the code after
//! the loop, which runs once, would be paid on every iteration.
//!
//! A block ends at any of these and at an unconditional transfer (`br`,
//! `br_table`, `return`, `return_call*`, `throw`, `rethrow`, `throw_ref`,
//! `unreachable`); the code after such a transfer is dead until the next
//! place control can arrive from elsewhere, and is not charged. Calls do
//! not end a block: the callee returns to the next instruction (when it
//! traps or throws instead, the rest of the block was charged and does not
//! run; the same in every engine).
//!
//! The `end` of a `loop` does not begin a block (the code after it is
//! reached only by falling out of the loop body), so the block that runs
//! out of the loop continues after it, and its charge sits inside the loop
//! just before that `end`.

use wasmparser::Operator;

use crate::cost::{self, Bulk, HANDLER_ENTRY};

/// What to add before one instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The fixed fuel of the block that begins here (0: none begins, or it
    /// costs nothing).
    pub charge: u64,
    /// The run-time charge of this bulk operation (live code only).
    pub bulk: Option<Bulk>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Function,
    Block,
    Loop,
    If,
    Try,
}

struct Frame {
    kind: Kind,
    /// Whether control could enter the construct.
    live: bool,
}

/// The charging plan of a function body: one [`Step`] per operator.
pub fn plan(ops: &[Operator]) -> Vec<Step> {
    let mut steps = vec![Step::default(); ops.len()];
    let mut frames = vec![Frame {
        kind: Kind::Function,
        live: true,
    }];
    let mut live = true;
    let mut start = 0usize;
    let mut fuel = 0u64;

    // Closes the current block at its first instruction, and begins the
    // next one after `at`, with `entry` fuel when live.
    fn cut(steps: &mut [Step], start: &mut usize, fuel: &mut u64, at: usize) {
        if *fuel > 0 {
            if let Some(step) = steps.get_mut(*start) {
                step.charge = step.charge.saturating_add(*fuel);
            }
        }
        *start = at + 1;
        *fuel = 0;
    }

    for (i, op) in ops.iter().enumerate() {
        let c = cost::cost(op);
        if live {
            fuel = fuel.saturating_add(c.fixed);
            steps[i].bulk = c.bulk;
        }
        match op {
            Operator::Block { .. } | Operator::TryTable { .. } => {
                frames.push(Frame {
                    kind: Kind::Block,
                    live,
                });
            }
            Operator::Try { .. } => frames.push(Frame {
                kind: Kind::Try,
                live,
            }),
            Operator::Loop { .. } => {
                frames.push(Frame {
                    kind: Kind::Loop,
                    live,
                });
                cut(&mut steps, &mut start, &mut fuel, i);
            }
            Operator::If { .. } => {
                frames.push(Frame {
                    kind: Kind::If,
                    live,
                });
                cut(&mut steps, &mut start, &mut fuel, i);
            }
            Operator::Else => {
                cut(&mut steps, &mut start, &mut fuel, i);
                live = frames.last().is_some_and(|f| f.live);
            }
            Operator::Catch { .. } | Operator::CatchAll => {
                cut(&mut steps, &mut start, &mut fuel, i);
                live = frames.last().is_some_and(|f| f.live);
                if live {
                    fuel = HANDLER_ENTRY;
                }
            }
            Operator::Delegate { .. } => {
                cut(&mut steps, &mut start, &mut fuel, i);
                live = frames.pop().is_some_and(|f| f.live);
            }
            Operator::End => match frames.pop() {
                // Falling out of a loop: the block goes on.
                Some(Frame {
                    kind: Kind::Loop, ..
                }) => {}
                Some(Frame {
                    kind: Kind::Function,
                    ..
                })
                | None => cut(&mut steps, &mut start, &mut fuel, i),
                Some(frame) => {
                    cut(&mut steps, &mut start, &mut fuel, i);
                    live = frame.live;
                }
            },
            // A conditional branch forward goes on in the same block; one
            // back to a loop's header ends it (see above).
            Operator::BrIf { relative_depth }
            | Operator::BrOnNull { relative_depth }
            | Operator::BrOnNonNull { relative_depth }
            | Operator::BrOnCast { relative_depth, .. }
            | Operator::BrOnCastFail { relative_depth, .. } => {
                let target = frames
                    .len()
                    .checked_sub(1)
                    .and_then(|top| top.checked_sub(*relative_depth as usize))
                    .and_then(|i| frames.get(i));
                if target.is_some_and(|f| f.kind == Kind::Loop) {
                    cut(&mut steps, &mut start, &mut fuel, i);
                }
            }
            Operator::Br { .. }
            | Operator::BrTable { .. }
            | Operator::Return
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. }
            | Operator::Throw { .. }
            | Operator::Rethrow { .. }
            | Operator::ThrowRef
            | Operator::Unreachable => {
                cut(&mut steps, &mut start, &mut fuel, i);
                live = false;
            }
            _ => {}
        }
    }
    steps
}
