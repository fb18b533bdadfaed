//! The rewrite itself: every function body is re-encoded with a
//! canonicalizing sequence after each NaN-producing instruction, unless the
//! instruction that consumes its result, found in straight-line code, makes
//! the NaN's bits irrelevant (float arithmetic that is itself canonicalized,
//! comparisons, truncations to integers).
//!
//! After an instruction that left a float `x` on the stack:
//! `local.tee $t; T.const canonical; local.get $t; local.get $t; T.eq; select`
//! keeps `x` when `x == x` and the canonical NaN otherwise: branchless, one
//! scratch local per float type per function (added only where needed).

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{CodeSection, Function, Instruction, ValType};
use wasmparser::{FunctionBody, Operator, Parser, Payload};

use crate::ops::{self, Float};

/// The positive canonical NaN of f32.
pub const CANONICAL_F32: u32 = 0x7FC0_0000;
/// The positive canonical NaN of f64.
pub const CANONICAL_F64: u64 = 0x7FF8_0000_0000_0000;

/// Why a function could not be rewritten.
#[derive(Debug)]
pub enum Refusal {
    /// Vector float arithmetic: hb_beamr's engine has no SIMD.
    Simd { operator: String, offset: u64 },
    /// The body was not what the validated module promised.
    Malformed(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Simd { operator, offset } => write!(f, "{operator} at offset {offset}"),
            Refusal::Malformed(why) => write!(f, "{why}"),
        }
    }
}

/// The number of parameters of each function defined in the module, in
/// code section order.
pub fn defined_function_params(wasm: &[u8]) -> Result<Vec<u32>, wasmparser::BinaryReaderError> {
    let mut type_params: Vec<Option<u32>> = Vec::new();
    let mut params = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.into_types() {
                        let count = match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => {
                                u32::try_from(f.params().len()).ok()
                            }
                            _ => None,
                        };
                        type_params.push(count);
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for type_index in reader {
                    let count = usize::try_from(type_index?)
                        .ok()
                        .and_then(|i| type_params.get(i).copied().flatten())
                        .unwrap_or(0);
                    params.push(count);
                }
            }
            _ => {}
        }
    }
    Ok(params)
}

/// A re-encoder that canonicalizes NaNs in function bodies and copies
/// everything else unchanged.
pub struct Canonicalizer {
    params: Vec<u32>,
    next_function: usize,
}

impl Canonicalizer {
    pub fn new(params: Vec<u32>) -> Canonicalizer {
        Canonicalizer {
            params,
            next_function: 0,
        }
    }
}

type Error = reencode::Error<Refusal>;

fn malformed(why: &str) -> Error {
    reencode::Error::UserError(Refusal::Malformed(why.to_string()))
}

/// Reads a body's operators, refusing vector float arithmetic.
fn read_operators<'a>(body: &FunctionBody<'a>) -> Result<Vec<Operator<'a>>, Error> {
    let mut reader = body.get_operators_reader()?;
    let mut operators = Vec::new();
    while !reader.eof() {
        let (op, offset) = reader.read_with_offset()?;
        if ops::is_simd_nan_source(&op) {
            return Err(reencode::Error::UserError(Refusal::Simd {
                operator: format!("{op:?}"),
                offset,
            }));
        }
        operators.push(op);
    }
    Ok(operators)
}

/// How far the rewrite follows a NaN-producing instruction's result.
const LOOKAHEAD: usize = 64;

/// Whether the float that `operators[at]` leaves on the stack is first
/// consumed by an instruction that hides NaN bits, in straight-line code
/// right after it: the operand stack is followed through locals, constants
/// and float operations (see `ops::stack_effect`); anything else (a branch,
/// a call, a store, a local.set of the value) means the bits may show.
fn nan_bits_hidden(operators: &[Operator], at: usize, float: Float) -> bool {
    // The value's depth below the top of the stack.
    let mut depth = 0usize;
    for op in operators.iter().skip(at + 1).take(LOOKAHEAD) {
        let Some((pops, pushes)) = ops::stack_effect(op) else {
            return false;
        };
        if depth < pops {
            return ops::ignores_nan_bits(op) == Some(float);
        }
        depth = depth - pops + pushes;
    }
    false
}

/// Which NaN-producing instructions need a canonicalizing sequence after
/// them, with their float type.
fn plan(operators: &[Operator]) -> Vec<Option<Float>> {
    operators
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let float = ops::nan_result(op)?;
            (!nan_bits_hidden(operators, i, float)).then_some(float)
        })
        .collect()
}

fn canonicalize(f: &mut Function, float: Float, scratch: u32) {
    f.instruction(&Instruction::LocalTee(scratch));
    match float {
        Float::F32 => {
            f.instruction(&Instruction::F32Const(f32::from_bits(CANONICAL_F32).into()));
        }
        Float::F64 => {
            f.instruction(&Instruction::F64Const(f64::from_bits(CANONICAL_F64).into()));
        }
    }
    f.instruction(&Instruction::LocalGet(scratch));
    f.instruction(&Instruction::LocalGet(scratch));
    f.instruction(&match float {
        Float::F32 => Instruction::F32Eq,
        Float::F64 => Instruction::F64Eq,
    });
    f.instruction(&Instruction::Select);
}

impl Reencode for Canonicalizer {
    type Error = Refusal;

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        body: FunctionBody<'_>,
    ) -> Result<(), Error> {
        let params = *self
            .params
            .get(self.next_function)
            .ok_or_else(|| malformed("more bodies than functions"))?;
        self.next_function += 1;
        let mut locals = Vec::new();
        let mut count = params;
        for pair in body.get_locals_reader()? {
            let (n, ty) = pair?;
            count = count
                .checked_add(n)
                .ok_or_else(|| malformed("too many locals"))?;
            locals.push((n, self.val_type(ty)?));
        }
        let operators = read_operators(&body)?;
        let plan = plan(&operators);
        let mut scratch_of = |float: Float, ty: ValType| -> Result<Option<u32>, Error> {
            if !plan.contains(&Some(float)) {
                return Ok(None);
            }
            locals.push((1, ty));
            let index = count;
            count = count
                .checked_add(1)
                .ok_or_else(|| malformed("too many locals"))?;
            Ok(Some(index))
        };
        let f32_scratch = scratch_of(Float::F32, ValType::F32)?;
        let f64_scratch = scratch_of(Float::F64, ValType::F64)?;
        let mut f = Function::new(locals);
        for (op, canon) in operators.into_iter().zip(plan) {
            f.instruction(&self.instruction(op)?);
            let scratch = match canon {
                Some(Float::F32) => f32_scratch.map(|s| (Float::F32, s)),
                Some(Float::F64) => f64_scratch.map(|s| (Float::F64, s)),
                None => None,
            };
            if let Some((float, index)) = scratch {
                canonicalize(&mut f, float, index);
            }
        }
        code.function(&f);
        Ok(())
    }
}

/// Re-encodes `wasm` (already validated) through the canonicalizer.
pub fn rewrite(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    let params = defined_function_params(wasm)?;
    let mut module = wasm_encoder::Module::new();
    Canonicalizer::new(params).parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(module.finish())
}
