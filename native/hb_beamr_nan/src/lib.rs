//! Deterministic floats for hb_beamr. WebAssembly leaves open the bits of a
//! NaN that float arithmetic produces (x86 propagates payloads, other CPUs
//! and compilers differ); [`canonicalize`] rewrites a module so that every
//! such NaN is the positive canonical NaN (`0x7FC00000` for f32,
//! `0x7FF8000000000000` for f64), whatever runs it: WAMR's interpreter or
//! AOT code for any CPU. See `ops` for which instructions are rewritten and
//! why the others need not be.

pub mod ops;
mod rewrite;

use std::fmt;

use wasm_encoder::reencode;
use wasmparser::{Validator, WasmFeatures};

pub use rewrite::{CANONICAL_F32, CANONICAL_F64};

/// Why a module could not be made deterministic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The input is not a valid WebAssembly module.
    Invalid(String),
    /// The module uses vector (SIMD) float arithmetic, which hb_beamr's
    /// engine does not run and this rewrite does not handle.
    Simd(String),
    /// The rewritten module does not validate (for instance a function
    /// already at the limit of locals).
    Output(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(why) => write!(f, "{why}"),
            Error::Simd(why) => write!(f, "{why}"),
            Error::Output(why) => write!(f, "the rewritten module does not validate: {why}"),
        }
    }
}

impl std::error::Error for Error {}

/// What the rewrite accepts: wasmparser's defaults, and the legacy
/// exception handling (`try`/`catch`) that emscripten's setjmp/longjmp
/// emits, as AO processes do.
fn features() -> WasmFeatures {
    WasmFeatures::default() | WasmFeatures::LEGACY_EXCEPTIONS
}

fn validate(wasm: &[u8]) -> Result<(), String> {
    Validator::new_with_features(features())
        .validate_all(wasm)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Rewrites `wasm` so that every NaN produced by float arithmetic is the
/// positive canonical NaN. The input is validated first and the output
/// before it is returned.
pub fn canonicalize(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    validate(wasm).map_err(Error::Invalid)?;
    let out = rewrite::rewrite(wasm).map_err(|e| match e {
        reencode::Error::UserError(rewrite::Refusal::Simd { operator, offset }) => {
            Error::Simd(format!(
                "SIMD float operation {operator} at offset {offset}: deterministic floats \
                 cover scalar f32 and f64 only (hb_beamr's engine has no SIMD)"
            ))
        }
        reencode::Error::UserError(rewrite::Refusal::Malformed(why)) => Error::Invalid(why),
        other => Error::Invalid(other.to_string()),
    })?;
    validate(&out).map_err(Error::Output)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
