//! Float-heavy wasm-smith modules: no SIMD, no imports, loops bounded by
//! fuel; numeric, variable, parametric, memory and control instructions
//! only (so a large share of the code is float arithmetic).

use arbitrary::Unstructured;
use wasm_smith::{InstructionKind, InstructionKinds};

use crate::rng::Rng;

fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        // The code: mostly numbers, with loads, stores and control flow.
        allowed_instructions: InstructionKinds::new(&[
            InstructionKind::Numeric,
            InstructionKind::Variable,
            InstructionKind::Parametric,
            InstructionKind::Memory,
            InstructionKind::Control,
        ]),
        // Calls that complete show more results than calls that trap.
        disallow_traps: true,
        canonicalize_nans: false,
        // Every function exported, for `wrap` to call; no start function,
        // no imports; small modules (memory64, multi-value, tail calls and
        // bulk memory stay on, as by default).
        export_everything: true,
        allow_start_export: false,
        max_imports: 0,
        max_funcs: 8,
        max_instructions: 200,
        max_memories: 1,
        max_tables: 1,
        max_memory32_bytes: 1 << 20,
        max_memory64_bytes: 1 << 20,
        // Proposals hb_beamr's engine does not run, or that add nothing
        // here (references cannot cross the wrappers).
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

/// Fuel of each call (see `wrap`): loop iterations and calls.
pub const FUEL: u32 = 1000;

/// A wasm-smith module and the index of its fuel global, or `None` when the
/// random bytes did not make one.
pub fn smith(rng: &mut Rng) -> Option<(Vec<u8>, u32)> {
    let data = rng.bytes(8192);
    let mut u = Unstructured::new(&data);
    let mut module = wasm_smith::Module::new(config(), &mut u).ok()?;
    // Loops and calls bounded by fuel, so that AOT code returns.
    let fuel = module.ensure_termination(FUEL).ok()?;
    Some((module.to_bytes(), fuel))
}
