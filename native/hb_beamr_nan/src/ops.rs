//! Which operators produce NaNs whose bits WebAssembly leaves open, and
//! which ones make the bits of a NaN they consume irrelevant.
//!
//! Per the specification (section 4.3.3, NaN propagation), a NaN result of
//! `add`, `sub`, `mul`, `div`, `sqrt`, `min`, `max`, `ceil`, `floor`,
//! `trunc`, `nearest`, `promote` and `demote` may have any payload and sign.
//! `neg`, `abs` and `copysign` only touch the sign bit; `const`, loads,
//! stores, `reinterpret`, `select`, locals and globals move bits unchanged;
//! conversions from integers never give a NaN. Those need no change.

use wasmparser::Operator;

/// A scalar float type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Float {
    F32,
    F64,
}

/// The type of the NaN `op` may produce with open bits, if any.
pub fn nan_result(op: &Operator) -> Option<Float> {
    use Operator::*;
    match op {
        F32Add | F32Sub | F32Mul | F32Div | F32Sqrt | F32Min | F32Max | F32Ceil | F32Floor
        | F32Trunc | F32Nearest | F32DemoteF64 => Some(Float::F32),
        F64Add | F64Sub | F64Mul | F64Div | F64Sqrt | F64Min | F64Max | F64Ceil | F64Floor
        | F64Trunc | F64Nearest | F64PromoteF32 => Some(Float::F64),
        _ => None,
    }
}

/// The float type `op` takes as its top operand, when the bits of a NaN
/// there cannot show in anything `op` does: float arithmetic that is itself
/// canonicalized (a NaN in gives a NaN out), comparisons, truncations to
/// integers (NaN traps, or gives 0 when saturating).
pub fn ignores_nan_bits(op: &Operator) -> Option<Float> {
    use Operator::*;
    if let Some(float) = nan_result(op) {
        return Some(match op {
            F32DemoteF64 => Float::F64,
            F64PromoteF32 => Float::F32,
            _ => float,
        });
    }
    match op {
        F32Eq | F32Ne | F32Lt | F32Gt | F32Le | F32Ge | I32TruncF32S | I32TruncF32U
        | I64TruncF32S | I64TruncF32U | I32TruncSatF32S | I32TruncSatF32U | I64TruncSatF32S
        | I64TruncSatF32U => Some(Float::F32),
        F64Eq | F64Ne | F64Lt | F64Gt | F64Le | F64Ge | I32TruncF64S | I32TruncF64U
        | I64TruncF64S | I64TruncF64U | I32TruncSatF64S | I32TruncSatF64U | I64TruncSatF64S
        | I64TruncSatF64U => Some(Float::F64),
        _ => None,
    }
}

/// How many values `op` pops and pushes, for the instructions the rewrite
/// looks past when it follows a NaN to its consumer: locals, globals,
/// constants, `drop` and scalar float operations. `None` for everything
/// else (control flow, calls, memory, integer arithmetic): the search stops.
pub fn stack_effect(op: &Operator) -> Option<(usize, usize)> {
    use Operator::*;
    match op {
        LocalGet { .. }
        | GlobalGet { .. }
        | I32Const { .. }
        | I64Const { .. }
        | F32Const { .. }
        | F64Const { .. } => Some((0, 1)),
        LocalSet { .. } | GlobalSet { .. } | Drop => Some((1, 0)),
        LocalTee { .. } | F32Neg | F32Abs | F64Neg | F64Abs => Some((1, 1)),
        F32Copysign | F64Copysign => Some((2, 1)),
        F32Add | F32Sub | F32Mul | F32Div | F32Min | F32Max | F32Eq | F32Ne | F32Lt | F32Gt
        | F32Le | F32Ge | F64Add | F64Sub | F64Mul | F64Div | F64Min | F64Max | F64Eq | F64Ne
        | F64Lt | F64Gt | F64Le | F64Ge => Some((2, 1)),
        _ if ignores_nan_bits(op).is_some() => Some((1, 1)),
        _ => None,
    }
}

/// Whether `op` is vector float arithmetic that may produce a NaN. hb_beamr's
/// engine has no SIMD, so such modules are refused rather than rewritten.
pub fn is_simd_nan_source(op: &Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        F32x4Add
            | F32x4Sub
            | F32x4Mul
            | F32x4Div
            | F32x4Sqrt
            | F32x4Min
            | F32x4Max
            | F32x4Ceil
            | F32x4Floor
            | F32x4Trunc
            | F32x4Nearest
            | F32x4DemoteF64x2Zero
            | F32x4RelaxedMadd
            | F32x4RelaxedNmadd
            | F32x4RelaxedMin
            | F32x4RelaxedMax
            | F64x2Add
            | F64x2Sub
            | F64x2Mul
            | F64x2Div
            | F64x2Sqrt
            | F64x2Min
            | F64x2Max
            | F64x2Ceil
            | F64x2Floor
            | F64x2Trunc
            | F64x2Nearest
            | F64x2PromoteLowF32x4
            | F64x2RelaxedMadd
            | F64x2RelaxedNmadd
            | F64x2RelaxedMin
            | F64x2RelaxedMax
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_a_nan_source_and_bit_moves_are_not() {
        assert_eq!(nan_result(&Operator::F64Add), Some(Float::F64));
        assert_eq!(nan_result(&Operator::F32Nearest), Some(Float::F32));
        assert_eq!(nan_result(&Operator::F32DemoteF64), Some(Float::F32));
        assert_eq!(nan_result(&Operator::F64PromoteF32), Some(Float::F64));
        for op in [
            Operator::F64Neg,
            Operator::F64Abs,
            Operator::F64Copysign,
            Operator::F32ReinterpretI32,
            Operator::F64ConvertI64S,
            Operator::Select,
        ] {
            assert_eq!(nan_result(&op), None, "{op:?}");
        }
    }

    #[test]
    fn stack_effects_of_the_instructions_looked_past() {
        assert_eq!(stack_effect(&Operator::F64Add), Some((2, 1)));
        assert_eq!(stack_effect(&Operator::F32Sqrt), Some((1, 1)));
        assert_eq!(stack_effect(&Operator::I64TruncF64S), Some((1, 1)));
        assert_eq!(stack_effect(&Operator::F64PromoteF32), Some((1, 1)));
        assert_eq!(
            stack_effect(&Operator::LocalGet { local_index: 0 }),
            Some((0, 1))
        );
        assert_eq!(stack_effect(&Operator::Drop), Some((1, 0)));
        for op in [
            Operator::Br { relative_depth: 0 },
            Operator::Call { function_index: 0 },
            Operator::Select,
            Operator::I32Add,
            Operator::End,
        ] {
            assert_eq!(stack_effect(&op), None, "{op:?}");
        }
    }

    #[test]
    fn consumers_that_hide_nan_bits() {
        assert_eq!(ignores_nan_bits(&Operator::F64Mul), Some(Float::F64));
        assert_eq!(ignores_nan_bits(&Operator::F32DemoteF64), Some(Float::F64));
        assert_eq!(ignores_nan_bits(&Operator::F64PromoteF32), Some(Float::F32));
        assert_eq!(ignores_nan_bits(&Operator::F32Lt), Some(Float::F32));
        assert_eq!(
            ignores_nan_bits(&Operator::I64TruncSatF64U),
            Some(Float::F64)
        );
        // These show a NaN's sign or bits.
        for op in [
            Operator::F64Copysign,
            Operator::F64Neg,
            Operator::I64ReinterpretF64,
            Operator::Drop,
            Operator::LocalTee { local_index: 0 },
        ] {
            assert_eq!(ignores_nan_bits(&op), None, "{op:?}");
        }
    }
}
