//! wasm-smith modules for the property tests: no SIMD, no references;
//! loops and calls bounded by wasm-smith's own fuel global
//! (`ensure_termination`), so that every module terminates unmetered too.
//! Traps allowed or not; function imports (from a fixed set) or none.

use arbitrary::Unstructured;
use wasm_smith::{InstructionKind, InstructionKinds};

/// splitmix64: the same modules for a seed, on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The functions a module may import (the tests' host returns zeros).
const IMPORTS: &str = r#"
(module
  (import "env" "f0" (func (result i32)))
  (import "env" "f1" (func (param i32) (result i32)))
  (import "env" "f2" (func (param i64 f64)))
  (import "env" "f3" (func (param f32) (result i64))))
"#;

fn config(traps: bool, imports: bool) -> wasm_smith::Config {
    wasm_smith::Config {
        available_imports: imports.then(|| wat::parse_str(IMPORTS).expect("imports")),
        min_imports: usize::from(imports),
        allowed_instructions: InstructionKinds::new(&[
            InstructionKind::Numeric,
            InstructionKind::Variable,
            InstructionKind::Parametric,
            InstructionKind::Memory,
            InstructionKind::Control,
        ]),
        disallow_traps: !traps,
        canonicalize_nans: false,
        export_everything: true,
        allow_start_export: true,
        max_imports: if imports { 4 } else { 0 },
        min_funcs: 2,
        max_funcs: 10,
        max_instructions: 300,
        max_memories: 1,
        max_tables: 1,
        max_memory32_bytes: 1 << 20,
        max_memory64_bytes: 1 << 20,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        gc_enabled: false,
        reference_types_enabled: false,
        exceptions_enabled: false,
        threads_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: false,
        compact_imports_enabled: false,
        ..wasm_smith::Config::default()
    }
}

/// wasm-smith's fuel: loop iterations and calls per module.
const TERMINATION: u32 = 2000;

/// A module from `rng`, or `None` when the bytes did not make one.
pub fn module(rng: &mut Rng, traps: bool, imports: bool) -> Option<Vec<u8>> {
    let data = rng.bytes(16384);
    let mut u = Unstructured::new(&data);
    let mut module = wasm_smith::Module::new(config(traps, imports), &mut u).ok()?;
    module.ensure_termination(TERMINATION).ok()?;
    Some(module.to_bytes())
}
