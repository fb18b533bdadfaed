//! The WebAssembly features of hb_beamr's WAMR build (see
//! `native/hb_wamr_build`), to tell a module the build cannot run (it needs
//! a proposal the build leaves out) from one it must run.

use wasmparser::{Validator, WasmFeatures};

/// What the build enables: WebAssembly 2.0 without SIMD, plus memory64,
/// the legacy exception-handling instructions and tail calls.
pub fn build() -> WasmFeatures {
    (WasmFeatures::WASM2
        | WasmFeatures::MEMORY64
        | WasmFeatures::LEGACY_EXCEPTIONS
        | WasmFeatures::TAIL_CALL)
        .difference(WasmFeatures::SIMD)
}

/// Proposals the build leaves out, by name, for skip reasons.
const LEFT_OUT: &[(&str, WasmFeatures)] = &[
    ("SIMD", WasmFeatures::SIMD),
    ("multiple memories", WasmFeatures::MULTI_MEMORY),
    (
        "exception handling with exnref (try_table, throw_ref; WAMR has the legacy instructions)",
        WasmFeatures::EXCEPTIONS,
    ),
    (
        "extended constant expressions",
        WasmFeatures::EXTENDED_CONST,
    ),
    ("function references", WasmFeatures::FUNCTION_REFERENCES),
    ("GC", WasmFeatures::GC),
    ("threads", WasmFeatures::THREADS),
    ("wide arithmetic", WasmFeatures::WIDE_ARITHMETIC),
    ("custom page sizes", WasmFeatures::CUSTOM_PAGE_SIZES),
];

fn validates(features: WasmFeatures, wasm: &[u8]) -> bool {
    Validator::new_with_features(features)
        .validate_all(wasm)
        .is_ok()
}

/// For a module the `.wast` file expects to be valid: `None` if the build's
/// features validate it, else the proposal it needs that the build leaves
/// out.
pub fn missing_feature(wasm: &[u8]) -> Option<String> {
    let build = build();
    if validates(build, wasm) {
        return None;
    }
    for (name, feature) in LEFT_OUT {
        if validates(build | *feature, wasm) {
            return Some(format!("needs {name}, which the build leaves out"));
        }
    }
    let all = LEFT_OUT.iter().fold(build, |acc, (_, f)| acc | *f);
    if validates(all, wasm) {
        return Some("needs several proposals the build leaves out".into());
    }
    // Not valid under any features: let the engine speak.
    None
}

/// For a module the `.wast` file expects to be refused: whether the build's
/// own features already refuse it for a reason of its own (so the test
/// still means something), or whether it is only refused under WebAssembly
/// 2.0 rules that a proposal the build enables lifts (then the build is
/// right to accept it).
pub fn valid_with_build_features(wasm: &[u8]) -> bool {
    validates(build(), wasm)
}

/// Whether a module the build validates uses exception handling.
pub fn uses_exceptions(wasm: &[u8]) -> bool {
    !validates(build().difference(WasmFeatures::LEGACY_EXCEPTIONS), wasm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(text: &str) -> Vec<u8> {
        let buf = wast::parser::ParseBuffer::new(text).unwrap();
        let mut module: wast::Wat = wast::parser::parse(&buf).unwrap();
        module.encode().unwrap()
    }

    #[test]
    fn the_build_runs_memory64_and_tail_calls() {
        assert_eq!(missing_feature(&wat("(module (memory i64 1))")), None);
        assert_eq!(
            missing_feature(&wat("(module (func $f (return_call $f)))")),
            None
        );
    }

    #[test]
    fn names_what_the_build_leaves_out() {
        let simd = wat("(module (func (result v128) (v128.const i32x4 0 0 0 0)))");
        assert_eq!(
            missing_feature(&simd).as_deref(),
            Some("needs SIMD, which the build leaves out")
        );
        let two = wat("(module (memory 1) (memory 1))");
        assert!(missing_feature(&two).unwrap().contains("multiple memories"));
    }
}
