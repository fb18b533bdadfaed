//! The rewriter's error: a sentence saying what could not be rewritten.

use std::fmt;

/// Why a module could not be rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteError(pub String);

impl RewriteError {
    pub(crate) fn new(text: impl Into<String>) -> RewriteError {
        RewriteError(text.into())
    }
}

impl fmt::Display for RewriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RewriteError {}

impl From<wasmparser::BinaryReaderError> for RewriteError {
    fn from(e: wasmparser::BinaryReaderError) -> RewriteError {
        RewriteError(format!("invalid module: {e}"))
    }
}

impl<E: fmt::Display> From<wasm_encoder::reencode::Error<E>> for RewriteError {
    fn from(e: wasm_encoder::reencode::Error<E>) -> RewriteError {
        RewriteError(format!("cannot re-encode the module: {e}"))
    }
}
