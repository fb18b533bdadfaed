//! Conversions between hb_beamr's values and WAMR's `wasm_val_t` /
//! `wasm_valkind_t`.

use hb_beamr_core::values::{ValKind, Value};
use hb_wamr_sys::{wasm_val_of, wasm_val_t, WASM_F32, WASM_F64, WASM_I32, WASM_I64};

/// The kind of a WAMR `wasm_valkind_t`, or `None` for v128 and references.
pub(crate) fn kind_from_wamr(kind: u8) -> Option<ValKind> {
    match kind {
        WASM_I32 => Some(ValKind::I32),
        WASM_I64 => Some(ValKind::I64),
        WASM_F32 => Some(ValKind::F32),
        WASM_F64 => Some(ValKind::F64),
        _ => None,
    }
}

fn kind_to_wamr(kind: ValKind) -> u8 {
    match kind {
        ValKind::I32 => WASM_I32,
        ValKind::I64 => WASM_I64,
        ValKind::F32 => WASM_F32,
        ValKind::F64 => WASM_F64,
    }
}

pub(crate) fn to_wamr(value: Value) -> wasm_val_t {
    let of = match value {
        Value::I32(v) => wasm_val_of { i32: v },
        Value::I64(v) => wasm_val_of { i64: v },
        Value::F32(v) => wasm_val_of { f32: v },
        Value::F64(v) => wasm_val_of { f64: v },
    };
    wasm_val_t {
        kind: kind_to_wamr(value.kind()),
        _paddings: [0; 7],
        of,
    }
}

pub(crate) fn from_wamr(val: &wasm_val_t) -> Option<Value> {
    // SAFETY (union reads): the member read is the one `kind` names, which
    // WAMR wrote; every bit pattern is valid for these plain number types.
    match kind_from_wamr(val.kind)? {
        ValKind::I32 => Some(Value::I32(unsafe { val.of.i32 })),
        ValKind::I64 => Some(Value::I64(unsafe { val.of.i64 })),
        ValKind::F32 => Some(Value::F32(unsafe { val.of.f32 })),
        ValKind::F64 => Some(Value::F64(unsafe { val.of.f64 })),
    }
}
