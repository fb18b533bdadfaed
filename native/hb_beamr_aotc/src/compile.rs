//! WebAssembly bytes to a tagged AOT file: exception handling lowered into
//! host calls (WAMR's compiler has none), NaNs canonicalised when asked,
//! then WAMR's compiler for one resolved [`Target`], and the tag, source
//! fingerprint and deterministic mark appended.

use std::fmt;

use hb_beamr_core::{aot_tag, snapshot, wasm_sections};
use hb_beamr_eh::Outcome;

use crate::llvm;
use crate::target::{Cpu, Target, TargetError};

/// How to compile. `Options::default()` is `hb_beamr:compile/1`'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub opt_level: u32,
    pub size_level: u32,
    pub bounds_checks: bool,
    pub cpu: Cpu,
    pub deterministic: bool,
    /// Meter the module (`hb_beamr_meter`, after the other rewrites) and
    /// mark the file with its `hb_beamr.meter` section.
    pub metered: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            opt_level: 3,
            size_level: 3,
            bounds_checks: true,
            cpu: Cpu::Host,
            deterministic: false,
            metered: false,
        }
    }
}

/// Why a module did not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// Not a module the rewriters or WAMR's loader accept.
    InvalidWasm(String),
    /// A valid module the compiler could not compile.
    Failed(String),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::InvalidWasm(why) => write!(f, "invalid module: {why}"),
            CompileError::Failed(why) => write!(f, "compile failed: {why}"),
        }
    }
}

impl std::error::Error for CompileError {}

/// A CPU that does not resolve fails the compile, with the same words.
impl From<TargetError> for CompileError {
    fn from(error: TargetError) -> CompileError {
        CompileError::Failed(error.to_string())
    }
}

/// A compiled file and the target it was compiled for.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The AOT file, tagged.
    pub aot: Vec<u8>,
    /// What was given to LLVM (and is in the tag).
    pub target: Target,
    /// The (CPU, feature string) LLVM's target machine reports it was made
    /// with: equal to `target`'s, which tests check.
    pub llvm_target: (String, String),
}

/// Compiles `wasm` with `options`.
pub fn compile(wasm: &[u8], options: &Options) -> Result<Compiled, CompileError> {
    if !wasm.starts_with(b"\0asm") {
        return Err(CompileError::InvalidWasm(
            "not a WebAssembly module (bad magic number)".into(),
        ));
    }
    let target = Target::resolve(&options.cpu)?;
    let lowered = lower_exceptions(wasm)?;
    let input = lowered.as_deref().unwrap_or(wasm);
    let canonical = if options.deterministic {
        Some(
            hb_beamr_nan::canonicalize(input)
                .map_err(|why| CompileError::InvalidWasm(why.to_string()))?,
        )
    } else {
        None
    };
    let input = canonical.as_deref().unwrap_or(input);
    let metered = if options.metered {
        let metered = hb_beamr_meter::meter(input, &hb_beamr_meter::Options::default())
            .map_err(|why| CompileError::InvalidWasm(why.to_string()))?;
        Some(metered)
    } else {
        None
    };
    let input = metered.as_ref().map_or(input, |m| m.wasm.as_slice());
    let request = llvm::Request {
        opt_level: options.opt_level,
        size_level: options.size_level,
        bounds_checks: options.bounds_checks,
        arch: &target.arch,
        cpu: &target.cpu,
        features: &target.features,
        // Metered here (the rewrite says where the counter is) or before
        // (its section says).
        meter: metered
            .as_ref()
            .map(|m| m.info)
            .or_else(|| hb_beamr_meter::MeterInfo::find(input))
            .map(|info| (info.fuel_global, info.charge_func)),
    };
    let (mut aot, llvm_target) =
        llvm::compile(input, &request).map_err(|why| CompileError::Failed(why.to_string()))?;
    aot_tag::append(&mut aot, &target.tag());
    // Snapshots of the bytecode restore into this code and back.
    aot_tag::mark_source(&mut aot, &snapshot::fingerprint(wasm));
    if options.deterministic {
        aot_tag::mark_deterministic(&mut aot);
    }
    if let Some(metered) = &metered {
        aot_tag::mark_metered(&mut aot, &metered.info.encode());
    }
    Ok(Compiled {
        aot,
        target,
        llvm_target,
    })
}

/// WAMR's AOT compiler has no exception handling: a module that uses it is
/// rewritten into host calls first (`hb_beamr_eh`). `None`: compile the
/// module as it is.
fn lower_exceptions(wasm: &[u8]) -> Result<Option<Vec<u8>>, CompileError> {
    if !wasm_sections::uses_exception_handling(wasm) {
        return Ok(None);
    }
    match hb_beamr_eh::rewrite(wasm) {
        Ok(Outcome::Unchanged) => Ok(None),
        Ok(Outcome::Rewritten(bytes)) => Ok(Some(bytes)),
        Err(why) => Err(CompileError::Failed(format!(
            "the module's exception handling cannot be compiled to AOT ({why}): \
             run it as bytecode (start(Wasm, wasm))"
        ))),
    }
}
