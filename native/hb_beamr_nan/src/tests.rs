//! Unit tests of the rewrite: what it inserts, where, with which locals, and
//! that the output validates for modules of every shape. What the rewritten
//! code computes is tested by running it (EUnit in both modes, and the
//! differential fuzz run of scripts/nan-fuzz.sh).

use wasmparser::{Operator, Parser, Payload, ValType};

use super::*;

fn wasm(wat: &str) -> Vec<u8> {
    match wat::parse_str(wat) {
        Ok(bytes) => bytes,
        Err(e) => panic!("bad test WAT: {e}"),
    }
}

fn rewritten(wat: &str) -> Vec<u8> {
    match canonicalize(&wasm(wat)) {
        Ok(bytes) => bytes,
        Err(e) => panic!("rewrite failed: {e}"),
    }
}

/// (declared locals, operators) of each function body.
fn bodies(wasm: &[u8]) -> Vec<(Vec<ValType>, Vec<Operator<'_>>)> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Ok(Payload::CodeSectionEntry(body)) = payload {
            let mut locals = Vec::new();
            for pair in body.get_locals_reader().into_iter().flatten().flatten() {
                locals.extend(std::iter::repeat_n(pair.1, pair.0 as usize));
            }
            let mut reader = body.get_operators_reader().ok().into_iter().flatten();
            let ops: Vec<Operator> = reader.by_ref().flatten().collect();
            out.push((locals, ops));
        }
    }
    out
}

fn f64_sequence(scratch: u32) -> Vec<String> {
    vec![
        format!(
            "{:?}",
            Operator::LocalTee {
                local_index: scratch
            }
        ),
        format!(
            "{:?}",
            Operator::F64Const {
                value: wasmparser::Ieee64::from(f64::from_bits(CANONICAL_F64))
            }
        ),
        format!(
            "{:?}",
            Operator::LocalGet {
                local_index: scratch
            }
        ),
        format!(
            "{:?}",
            Operator::LocalGet {
                local_index: scratch
            }
        ),
        format!("{:?}", Operator::F64Eq),
        format!("{:?}", Operator::Select),
    ]
}

fn names(ops: &[Operator]) -> Vec<String> {
    ops.iter().map(|op| format!("{op:?}")).collect()
}

#[test]
fn f64_add_is_followed_by_the_canonicalizing_select() {
    let out = rewritten(
        r#"(module (func (param f64 f64) (result f64) (local i32)
             local.get 0 local.get 1 f64.add))"#,
    );
    let bodies = bodies(&out);
    let (locals, ops) = &bodies[0];
    // One f64 scratch local after the 2 params and the declared i32.
    assert_eq!(locals, &vec![ValType::I32, ValType::F64]);
    let names = names(ops);
    assert_eq!(names[2], "F64Add");
    assert_eq!(names[3..9], f64_sequence(3)[..]);
    assert_eq!(names[9], "End");
}

#[test]
fn f32_sources_use_an_f32_scratch_and_the_f32_canonical_nan() {
    let out = rewritten(
        r#"(module (func (param f64) (result f32)
             local.get 0 f32.demote_f64 f32.sqrt f32.const 1 f32.div))"#,
    );
    let bodies = bodies(&out);
    let (locals, ops) = &bodies[0];
    assert_eq!(locals, &vec![ValType::F32]);
    let tees = ops
        .iter()
        .filter(|op| matches!(op, Operator::LocalTee { local_index: 1 }))
        .count();
    // demote feeds sqrt, sqrt feeds div (under a constant): both are
    // canonicalized again there, so only div needs the sequence.
    assert_eq!(tees, 1);
    assert!(ops
        .iter()
        .any(|op| matches!(op, Operator::F32Const { value }
        if value.bits() == CANONICAL_F32)));
    assert!(ops.iter().any(|op| matches!(op, Operator::F32Eq)));
}

#[test]
fn every_scalar_nan_source_is_canonicalized() {
    let binary = ["add", "sub", "mul", "div", "min", "max"];
    let unary = ["sqrt", "ceil", "floor", "trunc", "nearest"];
    let mut body = String::new();
    for t in ["f32", "f64"] {
        for op in binary {
            body.push_str(&format!("{t}.const 1 {t}.const 2 {t}.{op} drop\n"));
        }
        for op in unary {
            body.push_str(&format!("{t}.const 2 {t}.{op} drop\n"));
        }
    }
    body.push_str("f64.const 1 f32.demote_f64 drop f32.const 1 f64.promote_f32 drop\n");
    let out = rewritten(&format!("(module (func {body}))"));
    let bodies = bodies(&out);
    let selects = bodies[0]
        .1
        .iter()
        .filter(|op| matches!(op, Operator::Select))
        .count();
    assert_eq!(selects, 2 * (binary.len() + unary.len()) + 2);
}

#[test]
fn bit_exact_operations_are_left_alone() {
    let src = wasm(
        r#"(module (memory 1)
             (func (param f64 f32) (result f64)
               local.get 0 f64.neg f64.abs local.get 0 f64.copysign
               i32.const 0 f64.load f64.add drop
               local.get 1 i32.reinterpret_f32 f32.reinterpret_i32 drop
               i64.const 1 f64.convert_i64_s
               f64.const nan:0x4000000000001 i32.const 1 select
               i32.const 8 local.get 0 f64.store))"#,
    );
    let Ok(out) = canonicalize(&src) else {
        panic!("rewrite failed")
    };
    let before = bodies(&src);
    let after = bodies(&out);
    // Only the f64.add gets a sequence (its result is dropped: drop shows
    // nothing, but it is not worth a special case).
    assert_eq!(after[0].1.len(), before[0].1.len() + 6);
    assert_eq!(after[0].0, vec![ValType::F64]);
}

#[test]
fn consumers_that_ignore_nan_bits_skip_the_sequence() {
    let out = rewritten(
        r#"(module (func (param f64 f64) (result i32 i64 i64)
             local.get 0 local.get 1 f64.mul local.get 1 f64.add local.get 0 f64.lt
             local.get 0 local.get 1 f64.div i64.trunc_sat_f64_s
             local.get 0 f64.sqrt i64.reinterpret_f64))"#,
    );
    let bodies = bodies(&out);
    let selects = bodies[0]
        .1
        .iter()
        .filter(|op| matches!(op, Operator::Select))
        .count();
    // mul is consumed by add (after a local.get): skipped; add by f64.lt:
    // skipped; div by trunc_sat: skipped; sqrt by i64.reinterpret_f64,
    // which shows the bits: kept.
    assert_eq!(selects, 1);
}

fn selects_in_wasm(wasm: &[u8]) -> usize {
    bodies(wasm)[0]
        .1
        .iter()
        .filter(|op| matches!(op, Operator::Select))
        .count()
}

fn selects_in(wat: &str) -> usize {
    selects_in_wasm(&rewritten(wat))
}

#[test]
fn a_nan_is_followed_through_the_stack_to_its_consumer() {
    // x*x + x/3: the product waits under x/3, then add consumes it.
    let chain = r#"(module (func (param f64) (result f64)
         local.get 0 local.get 0 f64.mul
         local.get 0 f64.const 3 f64.div f64.add))"#;
    assert_eq!(selects_in(chain), 1);
    // The same value stored, or left for a branch, or copied into a
    // local, may show its bits: kept.
    let stored = r#"(module (memory 1) (func (param f64)
         i32.const 0 local.get 0 f64.sqrt f64.store))"#;
    assert_eq!(selects_in(stored), 1);
    let teed = r#"(module (func (param f64) (result f64) (local f64)
         local.get 0 f64.sqrt local.tee 1 f64.sqrt))"#;
    assert_eq!(selects_in(teed), 2);
    let branched = r#"(module (func (param f64) (result f64)
         block (result f64) local.get 0 f64.sqrt br 0 end f64.sqrt))"#;
    assert_eq!(selects_in(branched), 2);
    // copysign shows its second operand's sign: kept.
    let signed = r#"(module (func (param f64) (result f64)
         f64.const 1 local.get 0 f64.sqrt f64.copysign))"#;
    assert_eq!(selects_in(signed), 1);
    // A value of the other type in between does not confuse the depth.
    let mixed = r#"(module (func (param f64 f32) (result f32)
         local.get 0 f64.sqrt local.get 1 f32.sqrt f32.neg drop f32.demote_f64))"#;
    assert_eq!(selects_in(mixed), 2);
}

#[test]
fn functions_of_all_shapes_still_validate() {
    let out = rewritten(
        r#"(module
             (import "env" "f" (func $imp (param f64) (result f64)))
             (memory i64 1)
             (global $g (mut f64) (f64.const 0))
             (func (export "multi") (param f32 f64) (result f64 f32 f64)
               (local f32 f64 i64)
               local.get 1 local.get 1 f64.add
               local.get 0 local.get 0 f32.mul
               block (param f64 f32) (result f64 f32 f64)
                 local.get 1 f64.sqrt
               end)
             (func (param f64) (result f64)
               i64.const 0 local.get 0 f64.const 2 f64.mul f64.store
               i64.const 0 f64.load local.get 0 f64.div
               call $imp global.set $g global.get $g)
             (func (result f64)
               unreachable f64.add)
             (func (param f64) (result f64)
               local.get 0 f64.const 1 f64.sub
               local.get 0 f64.const 0 f64.gt
               if (param f64) (result f64) f64.ceil else f64.floor end
               loop (param f64) (result f64) f64.nearest end
               return_call 4)
             (func))"#,
    );
    assert_eq!(bodies(&out).len(), 5);
}

#[test]
fn legacy_exception_handling_is_rewritten_too() {
    // emscripten's setjmp/longjmp, as in AO processes.
    let out = rewritten(
        r#"(module (tag $t (param f64))
             (func (param f64) (result f64)
               try (result f64)
                 local.get 0 f64.sqrt throw $t
               catch $t
                 f64.const 1 f64.div
               end))"#,
    );
    assert_eq!(selects_in_wasm(&out), 2);
}

#[test]
fn modules_without_float_code_are_unchanged_in_their_bodies() {
    let src = wasm(r#"(module (func (param i32) (result i32) local.get 0 i32.const 1 i32.add))"#);
    let Ok(out) = canonicalize(&src) else {
        panic!("rewrite failed")
    };
    assert_eq!(names(&bodies(&src)[0].1), names(&bodies(&out)[0].1));
    assert!(bodies(&out)[0].0.is_empty());
}

#[test]
fn simd_float_arithmetic_is_refused_clearly() {
    let src = wasm(
        r#"(module (func (param v128 v128) (result v128)
             local.get 0 local.get 1 f64x2.add))"#,
    );
    match canonicalize(&src) {
        Err(Error::Simd(why)) => assert!(why.contains("F64x2Add"), "{why}"),
        other => panic!("expected a SIMD refusal, got {other:?}"),
    }
    // Vector code without float arithmetic is copied.
    let ints = wasm(
        r#"(module (func (param v128 v128) (result v128)
             local.get 0 local.get 1 i32x4.add))"#,
    );
    assert!(canonicalize(&ints).is_ok());
}

#[test]
fn invalid_input_is_an_error_not_a_panic() {
    assert!(matches!(canonicalize(b""), Err(Error::Invalid(_))));
    assert!(matches!(
        canonicalize(b"\0asm\x01\0\0\0\x01"),
        Err(Error::Invalid(_))
    ));
    let bad_types = wasm(r#"(module (func (result i32) f64.const 1))"#);
    assert!(bad_types.starts_with(b"\0asm"));
    assert!(matches!(canonicalize(&bad_types), Err(Error::Invalid(_))));
}

#[test]
fn a_function_at_the_local_limit_is_an_output_error() {
    let src = wasm(
        r#"(module (func (param f64) (result f64) (local i32 i32)
             local.get 0 local.get 0 f64.add))"#,
    );
    assert!(canonicalize(&src).is_ok());
    let too_many = format!(
        "(module (func (param f64) (result f64) (local {}) local.get 0 f64.sqrt))",
        "i32 ".repeat(49_999)
    );
    assert!(matches!(
        canonicalize(&wasm(&too_many)),
        Err(Error::Output(_))
    ));
}
