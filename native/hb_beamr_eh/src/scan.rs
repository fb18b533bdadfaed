//! A first pass over each function body: its `try` blocks (clauses or
//! delegate target), whether it uses exception handling, and what it calls;
//! then which functions may throw.

use wasmparser::{FunctionBody, Operator};

use crate::error::RewriteError;

/// One `catch` clause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clause {
    Tag(u32),
    All,
}

/// How a `try` ends: its clauses, or `delegate` with its label.
#[derive(Clone, Debug, Default)]
pub struct TryInfo {
    pub clauses: Vec<Clause>,
    pub delegate: Option<u32>,
}

/// What the first pass learnt about one function body.
#[derive(Debug, Default)]
pub struct FuncScan {
    /// Every `try`, in the order they open.
    pub tries: Vec<TryInfo>,
    /// Any exception-handling instruction at all.
    pub uses_eh: bool,
    /// `throw` or `rethrow` (even if caught in the same function).
    pub throws: bool,
    /// An indirect call (may reach any function in the table).
    pub calls_indirect: bool,
    /// Functions called directly.
    pub callees: Vec<u32>,
}

pub fn scan_body(body: &FunctionBody) -> Result<FuncScan, RewriteError> {
    let mut scan = FuncScan::default();
    // Indices into `scan.tries` of the open `try` blocks (None: other blocks).
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        match reader.read()? {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => open.push(None),
            Operator::Try { .. } => {
                scan.uses_eh = true;
                open.push(Some(scan.tries.len()));
                scan.tries.push(TryInfo::default());
            }
            Operator::Catch { tag_index } => add_clause(&mut scan, &open, Clause::Tag(tag_index))?,
            Operator::CatchAll => add_clause(&mut scan, &open, Clause::All)?,
            Operator::Delegate { relative_depth } => {
                let index = open.pop().flatten().ok_or_else(unbalanced)?;
                scan.tries[index].delegate = Some(relative_depth);
            }
            Operator::End => {
                open.pop();
            }
            Operator::Throw { .. } | Operator::Rethrow { .. } => {
                scan.uses_eh = true;
                scan.throws = true;
            }
            Operator::TryTable { .. } | Operator::ThrowRef => {
                return Err(RewriteError::new(
                    "the module uses exnref exception handling (try_table/throw_ref), \
                     which hb_beamr cannot rewrite for AOT",
                ));
            }
            Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                scan.callees.push(function_index)
            }
            Operator::CallIndirect { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCallRef { .. } => scan.calls_indirect = true,
            _ => {}
        }
    }
    Ok(scan)
}

fn unbalanced() -> RewriteError {
    RewriteError::new("invalid module: unbalanced try")
}

fn add_clause(
    scan: &mut FuncScan,
    open: &[Option<usize>],
    clause: Clause,
) -> Result<(), RewriteError> {
    let index = open.last().copied().flatten().ok_or_else(unbalanced)?;
    scan.tries[index].clauses.push(clause);
    Ok(())
}

/// Which defined functions may throw (or let a throw through): those that
/// throw, call indirectly while the module throws anywhere, or call one
/// that may. Imports never throw (the host raises only traps).
pub fn may_throw(scans: &[FuncScan], imported: u32) -> Vec<bool> {
    let any_throw = scans.iter().any(|s| s.throws);
    let mut result: Vec<bool> = scans
        .iter()
        .map(|s| s.throws || (any_throw && s.calls_indirect))
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for (i, scan) in scans.iter().enumerate() {
            if result[i] {
                continue;
            }
            let throws = scan.callees.iter().any(|&f| {
                f.checked_sub(imported)
                    .and_then(|d| result.get(d as usize).copied())
                    .unwrap_or(false)
            });
            if throws {
                result[i] = true;
                changed = true;
            }
        }
    }
    result
}
