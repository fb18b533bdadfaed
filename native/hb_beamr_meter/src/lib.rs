//! Deterministic, resumable metering for hb_beamr. AO processes are
//! computed by many nodes that must agree, also on how much work a call
//! did; [`meter`] rewrites a module so that it counts that work itself, in
//! WebAssembly, into a counter the instance owns. WAMR's interpreter and
//! AOT code (for any CPU) run the same rewritten module, so a given call
//! uses exactly the same fuel in `wasm`, `aot` for the host CPU and `aot`
//! `generic` (tests/fuel_equality.rs checks it). docs/metering.md has the
//! design and what is left to integrate.
//!
//! - Where fuel is charged: per straight-line block, before it runs, at
//!   the places control can arrive (function entry, loop headers, `if` /
//!   `else` arms, joins after `end`, handler entry, after conditional
//!   branches): see `plan`. No path runs an instruction that was not paid
//!   for.
//! - How much: the table in [`cost`] (version [`COST_TABLE_VERSION`]): 1
//!   per instruction, more for memory accesses, division, calls and
//!   throws; bulk memory and table operations also pay per byte, page or
//!   element, read from their size operand at run time.
//! - The counter (see [`abi`]): a mutable i64 global exported as
//!   `hb_beamr.fuel` (fuel left, never negative); when a block costs more
//!   than is left, the import `hb_beamr.out_of_fuel (i64 needed)` is called
//!   before the block runs: the host adds fuel and returns (resume) or
//!   traps (stop). The custom section `hb_beamr.meter` records the
//!   interface and cost table versions and the indices of the global, the
//!   import and the added charge function.
//!
//! With the other rewrites: exception handling first
//! (`hb_beamr_eh::rewrite`, so that the interpreter and AOT code run the
//! same control flow), then NaN canonicalization
//! (`hb_beamr_nan::canonicalize`), then [`meter`], last, so that the code
//! the others add is paid for as ordinary instructions and nothing after
//! it changes what a block costs. Later rewrites that add code without
//! control flow (as `canonicalize` does; `hb_beamr_aotc` applies it again
//! with `deterministic`) leave the fuel unchanged.

pub mod abi;
mod body;
pub mod cost;
mod module;
mod plan;

use std::fmt;

use wasmparser::{Validator, WasmFeatures};

pub use abi::MeterInfo;
pub use cost::COST_TABLE_VERSION;

/// How to meter a module.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The counter's initial value (fuel for the start function and
    /// whatever runs before the host sets the counter). 0 by default: the
    /// first block calls `out_of_fuel`.
    pub initial_fuel: i64,
}

/// A metered module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metered {
    /// The rewritten module (validated).
    pub wasm: Vec<u8>,
    /// Where its counter is (also in its `hb_beamr.meter` section).
    pub info: MeterInfo,
}

/// Why a module could not be metered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeterError {
    /// The input is not a valid WebAssembly module.
    Invalid(String),
    /// The module is metered already (it has the `hb_beamr.meter`
    /// section, the `out_of_fuel` import or the counter's export).
    AlreadyMetered,
    /// The module already exports something under the counter's name.
    NameTaken(String),
    /// The rewritten module would exceed a limit (functions, locals).
    TooLarge(String),
    /// The rewritten module does not validate (a bug in the rewrite).
    Output(String),
}

impl fmt::Display for MeterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeterError::Invalid(why) => write!(f, "invalid module: {why}"),
            MeterError::AlreadyMetered => f.write_str("the module is metered already"),
            MeterError::NameTaken(name) => write!(
                f,
                "the module already exports {name}, the name of the fuel counter"
            ),
            MeterError::TooLarge(why) => write!(f, "cannot meter the module: {why}"),
            MeterError::Output(why) => {
                write!(f, "internal: the metered module does not validate: {why}")
            }
        }
    }
}

impl std::error::Error for MeterError {}

/// What the rewrite accepts (and produces): wasmparser's defaults and the
/// legacy exception handling emscripten emits.
fn features() -> WasmFeatures {
    WasmFeatures::default() | WasmFeatures::LEGACY_EXCEPTIONS
}

fn validate(wasm: &[u8]) -> Result<(), String> {
    Validator::new_with_features(features())
        .validate_all(wasm)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Meters `wasm`. The input is validated first and the output before it is
/// returned.
pub fn meter(wasm: &[u8], options: &Options) -> Result<Metered, MeterError> {
    validate(wasm).map_err(MeterError::Invalid)?;
    let facts = module::facts(wasm)?;
    let (out, info) = module::rewrite(wasm, &facts, options)?;
    validate(&out).map_err(MeterError::Output)?;
    Ok(Metered { wasm: out, info })
}

#[cfg(test)]
mod tests;
