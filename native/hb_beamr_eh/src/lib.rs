//! Rewrites a module's exception handling into calls of host functions, so
//! that WAMR's AOT compiler (which has no exception handling) can compile
//! it. Made for what emscripten emits for setjmp/longjmp (`__c_longjmp`):
//! legacy `try`/`catch`/`catch_all`/`rethrow`/`delegate` and `throw`, with
//! tags carrying at most one i32 or i64.
//!
//! - A call that may throw, inside a `try` body, becomes a host call
//!   (`call_indirect.N` or `call:EXPORT`, see `hb_beamr_core::eh_abi`) that
//!   calls the callee in a new activation and reports whether a throw
//!   unwound it; if so the code branches to the `try`'s handlers.
//! - A `throw` (or `rethrow`) inside a `try` body of the same function is a
//!   branch to its handlers; elsewhere it is a call of the host `throw`.
//! - `try` becomes nested blocks: one per `catch` clause and a dispatch
//!   block that picks the clause by the exception's tag.
//!
//! What cannot be rewritten faithfully (`try_table`/`exnref`, imported or
//! exported tags, tags with other payloads, `try` blocks with parameters,
//! `call_ref` inside a `try`) is an error that says so. The output is
//! validated before it is returned.

mod body;
mod error;
mod module;
mod plan;
mod scan;

pub use error::RewriteError;

/// What [`rewrite`] did.
#[derive(Debug)]
pub enum Outcome {
    /// The module uses no exception handling: compile it as it is.
    Unchanged,
    /// The rewritten module (valid, without exception handling).
    Rewritten(Vec<u8>),
}

/// Rewrites `wasm`'s exception handling into host calls.
pub fn rewrite(wasm: &[u8]) -> Result<Outcome, RewriteError> {
    Ok(match module::rewrite(wasm)? {
        None => Outcome::Unchanged,
        Some(out) => Outcome::Rewritten(out),
    })
}

#[cfg(test)]
mod tests;
