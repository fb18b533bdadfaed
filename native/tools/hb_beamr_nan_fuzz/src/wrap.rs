//! Prepares a wasm-smith module for differential runs:
//! - half of its float constants become values of `pools` (NaN payloads,
//!   infinities, zeros), so that arithmetic meets and makes NaNs;
//! - after half of the instructions that leave a float on the stack, one to
//!   three more float operations on it (so that the module is float-heavy);
//! - each exported function with numeric parameters and results gets an
//!   exported wrapper `nanfuzz_NNN` that takes nothing, calls it with
//!   values of `pools` and returns every result as an i64 of its raw bits
//!   (through the Erlang API a NaN would only be the atom `nan`), with a
//!   fresh budget of fuel (wasm-smith's fuel global is the instance's);
//! - a defined memory is exported as `nanfuzz_memory`; these are the only
//!   exports left;
//! - the page count given to `memory.grow` of a 64-bit memory is masked to
//!   32 bits: WAMR 2.4.3's AOT code grows such a memory by the low 32 bits
//!   of a larger count (and returns -1), where the interpreter and wasmtime
//!   grow nothing; a bug of its own, not one of NaNs, left out of this run.

use std::collections::BTreeSet;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, Function, FunctionSection, Instruction, TypeSection,
    ValType,
};
use wasmparser::{Operator, Parser, Payload, TypeRef};

use crate::pools;
use crate::rng::Rng;

/// The prefix of the wrappers' export names.
pub const WRAPPER_PREFIX: &str = "nanfuzz_";
/// The export name of the module's memory.
pub const MEMORY_EXPORT: &str = "nanfuzz_memory";
const MAX_RESULTS: usize = 8;

#[derive(Clone)]
struct Signature {
    params: Vec<ValType>,
    results: Vec<ValType>,
}

/// What the wrappers need to know of the module, read before re-encoding.
#[derive(Default)]
struct Info {
    types: Vec<Option<Signature>>,
    func_types: Vec<u32>,
    exported_funcs: Vec<u32>,
    defined_memory: bool,
    /// Per memory index: whether it is 64-bit.
    memory64: Vec<bool>,
    sections: usize,
}

fn numeric(ty: &wasmparser::ValType) -> Option<ValType> {
    match ty {
        wasmparser::ValType::I32 => Some(ValType::I32),
        wasmparser::ValType::I64 => Some(ValType::I64),
        wasmparser::ValType::F32 => Some(ValType::F32),
        wasmparser::ValType::F64 => Some(ValType::F64),
        _ => None,
    }
}

fn read_info(wasm: &[u8]) -> Option<Info> {
    let mut info = Info::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.ok()? {
            Payload::TypeSection(reader) => {
                info.sections += 1;
                for group in reader {
                    for sub in group.ok()?.into_types() {
                        let sig = match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                let params: Option<Vec<ValType>> =
                                    f.params().iter().map(numeric).collect();
                                let results: Option<Vec<ValType>> =
                                    f.results().iter().map(numeric).collect();
                                params
                                    .zip(results)
                                    .map(|(params, results)| Signature { params, results })
                            }
                            _ => None,
                        };
                        info.types.push(sig);
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if let TypeRef::Func(ty) = import.ok()?.ty {
                        info.func_types.push(ty);
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                info.sections += 1;
                for ty in reader {
                    info.func_types.push(ty.ok()?);
                }
            }
            Payload::MemorySection(reader) => {
                info.defined_memory = reader.count() > 0;
                for memory in reader {
                    info.memory64.push(memory.ok()?.memory64);
                }
            }
            Payload::ExportSection(reader) => {
                info.sections += 1;
                for export in reader {
                    let export = export.ok()?;
                    if export.kind == wasmparser::ExternalKind::Func {
                        info.exported_funcs.push(export.index);
                    }
                }
            }
            Payload::CodeSectionStart { .. } => info.sections += 1,
            _ => {}
        }
    }
    Some(info)
}

/// One wrapper: the function it calls, its arguments, its result types.
struct Wrapper {
    fuel_global: u32,
    callee: u32,
    args: Vec<Instruction<'static>>,
    results: Vec<ValType>,
}

fn constant(rng: &mut Rng, ty: ValType) -> Instruction<'static> {
    let int = rng.pick(pools::INTS).unwrap_or(0);
    match ty {
        ValType::I32 => Instruction::I32Const(int as i32),
        ValType::I64 => Instruction::I64Const(int),
        ValType::F32 => {
            Instruction::F32Const(f32::from_bits(rng.pick(pools::F32_BITS).unwrap_or(0)).into())
        }
        _ => Instruction::F64Const(f64::from_bits(rng.pick(pools::F64_BITS).unwrap_or(0)).into()),
    }
}

/// The float type an instruction certainly leaves on top of the stack.
fn float_result(op: &Operator) -> Option<ValType> {
    use Operator::*;
    match op {
        F32Const { .. }
        | F32Load { .. }
        | F32Add
        | F32Sub
        | F32Mul
        | F32Div
        | F32Min
        | F32Max
        | F32Copysign
        | F32Sqrt
        | F32Ceil
        | F32Floor
        | F32Trunc
        | F32Nearest
        | F32Neg
        | F32Abs
        | F32DemoteF64
        | F32ReinterpretI32
        | F32ConvertI32S
        | F32ConvertI64U => Some(ValType::F32),
        F64Const { .. }
        | F64Load { .. }
        | F64Add
        | F64Sub
        | F64Mul
        | F64Div
        | F64Min
        | F64Max
        | F64Copysign
        | F64Sqrt
        | F64Ceil
        | F64Floor
        | F64Trunc
        | F64Nearest
        | F64Neg
        | F64Abs
        | F64PromoteF32
        | F64ReinterpretI64
        | F64ConvertI32U
        | F64ConvertI64S => Some(ValType::F64),
        _ => None,
    }
}

/// One float operation that takes the float on top of the stack and leaves
/// one of the same type.
fn float_work(rng: &mut Rng, ty: ValType) -> Vec<Instruction<'static>> {
    use Instruction::*;
    let f64_binary = [F64Add, F64Sub, F64Mul, F64Div, F64Min, F64Max, F64Copysign];
    let f64_unary = [
        F64Sqrt, F64Ceil, F64Floor, F64Trunc, F64Nearest, F64Neg, F64Abs,
    ];
    let f32_binary = [F32Add, F32Sub, F32Mul, F32Div, F32Min, F32Max, F32Copysign];
    let f32_unary = [
        F32Sqrt, F32Ceil, F32Floor, F32Trunc, F32Nearest, F32Neg, F32Abs,
    ];
    let (binary, unary, there, back) = if ty == ValType::F64 {
        (&f64_binary, &f64_unary, F32DemoteF64, F64PromoteF32)
    } else {
        (&f32_binary, &f32_unary, F64PromoteF32, F32DemoteF64)
    };
    let pick = |rng: &mut Rng, ops: &[Instruction<'static>]| ops[rng.below(ops.len())].clone();
    match rng.below(5) {
        0 | 1 => vec![constant(rng, ty), pick(rng, binary)],
        2 => vec![pick(rng, unary)],
        3 => vec![there, back],
        // A binary then a unary operation.
        _ => vec![constant(rng, ty), pick(rng, binary), pick(rng, unary)],
    }
}

struct Preparer {
    rng: Rng,
    info: Info,
    wrappers: Vec<Wrapper>,
    /// Result counts with a wrapper type, in type section order.
    arities: Vec<usize>,
}

impl Preparer {
    fn wrapper_type(&self, arity: usize) -> u32 {
        let at = self.arities.iter().position(|a| *a == arity).unwrap_or(0);
        (self.info.types.len() + at) as u32
    }
}

impl Reencode for Preparer {
    type Error = std::convert::Infallible;

    fn instruction<'a>(
        &mut self,
        op: Operator<'a>,
    ) -> Result<Instruction<'a>, reencode::Error<Self::Error>> {
        let seeded = self.rng.below(2) == 0;
        Ok(match op {
            Operator::F64Const { .. } if seeded => constant(&mut self.rng, ValType::F64),
            Operator::F32Const { .. } if seeded => constant(&mut self.rng, ValType::F32),
            op => reencode::utils::instruction(self, op)?,
        })
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let mut f = self.new_function_with_parsed_locals(&body)?;
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            let top = float_result(&op);
            if let Operator::MemoryGrow { mem } = op {
                if self.info.memory64.get(mem as usize) == Some(&true) {
                    f.instruction(&Instruction::I64Const(0xFFFF_FFFF));
                    f.instruction(&Instruction::I64And);
                }
            }
            f.instruction(&self.instruction(op)?);
            if let Some(ty) = top.filter(|_| self.rng.below(2) == 0) {
                for _ in 0..1 + self.rng.below(3) {
                    for ins in float_work(&mut self.rng, ty) {
                        f.instruction(&ins);
                    }
                }
            }
        }
        code.function(&f);
        Ok(())
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        for arity in &self.arities {
            types.ty().function([], vec![ValType::I64; *arity]);
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        for w in &self.wrappers {
            functions.function(self.wrapper_type(w.results.len()));
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        // Only the wrappers and the memory: wasm-smith's own export names
        // need not be names WAMR accepts, and nothing calls them.
        let _ = section;
        let first = self.info.func_types.len() as u32;
        for k in 0..self.wrappers.len() {
            exports.export(
                &format!("{WRAPPER_PREFIX}{k:03}"),
                ExportKind::Func,
                first + k as u32,
            );
        }
        if self.info.defined_memory {
            exports.export(MEMORY_EXPORT, ExportKind::Memory, 0);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_code_section(self, code, section)?;
        for w in &self.wrappers {
            code.function(&wrapper_body(w));
        }
        Ok(())
    }
}

/// `call f(args)`, then each result in a local, then each as i64 bits.
fn wrapper_body(w: &Wrapper) -> Function {
    let mut f = Function::new(w.results.iter().map(|ty| (1, *ty)));
    f.instruction(&Instruction::I32Const(crate::generate::FUEL as i32));
    f.instruction(&Instruction::GlobalSet(w.fuel_global));
    for arg in &w.args {
        f.instruction(arg);
    }
    f.instruction(&Instruction::Call(w.callee));
    for k in (0..w.results.len()).rev() {
        f.instruction(&Instruction::LocalSet(k as u32));
    }
    for (k, ty) in w.results.iter().enumerate() {
        f.instruction(&Instruction::LocalGet(k as u32));
        match ty {
            ValType::I32 => {
                f.instruction(&Instruction::I64ExtendI32U);
            }
            ValType::F32 => {
                f.instruction(&Instruction::I32ReinterpretF32);
                f.instruction(&Instruction::I64ExtendI32U);
            }
            ValType::F64 => {
                f.instruction(&Instruction::I64ReinterpretF64);
            }
            _ => {}
        }
    }
    f.instruction(&Instruction::End);
    f
}

/// The prepared module, or `None` for a module without exported functions
/// it can wrap (or that does not re-encode).
pub fn prepare(wasm: &[u8], fuel_global: u32, rng: &mut Rng) -> Option<Vec<u8>> {
    let info = read_info(wasm)?;
    if info.sections < 4 {
        return None;
    }
    let mut wrappers = Vec::new();
    let exported: BTreeSet<u32> = info.exported_funcs.iter().copied().collect();
    for callee in exported {
        let ty = *info.func_types.get(callee as usize)?;
        let Some(Some(sig)) = info.types.get(ty as usize).cloned() else {
            continue;
        };
        if sig.results.len() > MAX_RESULTS {
            continue;
        }
        let args = sig.params.iter().map(|ty| constant(rng, *ty)).collect();
        wrappers.push(Wrapper {
            fuel_global,
            callee,
            args,
            results: sig.results,
        });
    }
    if wrappers.is_empty() {
        return None;
    }
    let arities: BTreeSet<usize> = wrappers.iter().map(|w| w.results.len()).collect();
    let mut preparer = Preparer {
        rng: Rng::new(rng.next()),
        info,
        wrappers,
        arities: arities.into_iter().collect(),
    };
    let mut module = wasm_encoder::Module::new();
    preparer
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .ok()?;
    let out = module.finish();
    wasmparser::Validator::new().validate_all(&out).ok()?;
    Some(out)
}
