//! The classic interpreter runs a validated charge sequence (the eleven
//! instructions `hb_beamr_meter` puts before a block) as one fused
//! instruction (hb_wamr_build's patch/fused_charge.rs). These modules write
//! the sequence by hand with an `F` that does not wait for fuel, so the
//! fused instruction must do what the instructions do: call `F` once when
//! the counter is short and then subtract whatever the counter holds. AOT
//! code compiles the instructions themselves; the modes must agree, and on
//! the numbers worked out here.

use crate::modes;
use crate::run::{self, Fuel};

/// `charge(c, f)`: the sequence for cost `c` with function `$f`, on `$g`.
fn charge(c: i64, f: &str) -> String {
    format!(
        "global.get $g i64.const {c} i64.lt_s \
         if i64.const {c} call {f} end \
         global.get $g i64.const {c} i64.sub global.set $g"
    )
}

fn module() -> String {
    let short = charge(10, "$add1");
    let plenty = charge(10, "$add1");
    let skipped = charge(5, "$add1");
    let other_arm = charge(7, "$add1");
    let dead = charge(1, "$add1");
    format!(
        r#"(module
  (global $g (mut i64) (i64.const 0))
  ;; F: not hb_beamr_meter's $charge, it adds 1 and returns
  (func $add1 (param i64) global.get $g i64.const 1 i64.add global.set $g)
  ;; 3 < 10: F once (4), then 4 - 10
  (func (export "a_short_counter_calls_f_once") (result i64)
    {short} global.get $g)
  (func (export "refill") (result i64)
    i64.const 1000 global.set $g global.get $g)
  ;; 1000 >= 10: 990, F not called
  (func (export "a_full_counter_pays") (result i64)
    {plenty} global.get $g)
  ;; the then-arm (a fused charge) is skipped; the else-arm pays 7
  (func (export "an_if_skips_a_fused_charge") (param i32) (result i64)
    local.get 0 if {skipped} else {other_arm} end
    local.get 0 if {skipped} end
    global.get $g)
  ;; br out of a block whose end is found past a fused charge
  (func (export "a_br_skips_past_a_fused_charge") (result i64)
    block {skipped} br 0 {dead} end
    global.get $g)
  ;; differs in one byte (the call's constant): not fused, the same meaning
  (func (export "a_near_miss") (result i64)
    i64.const 0 global.set $g
    global.get $g i64.const 10 i64.lt_s
    if i64.const 11 call $add1 end
    global.get $g i64.const 10 i64.sub global.set $g
    global.get $g))
"#
    )
}

#[test]
fn fused_charges_keep_their_meaning() {
    let wasm = wat::parse_str(module()).expect("wat");
    let exports = run::exports(&wasm);
    let fuel = Fuel {
        global: Some(0),
        start: Some(3),
        refill: 0,
        refills: 0,
    };
    let outcomes = modes::run_all(&wasm, "fused", &exports, &[fuel]).expect("aot");
    let [outcome] = &outcomes[..] else {
        panic!("one budget")
    };
    modes::agree(outcome).unwrap_or_else(|e| panic!("fused: {e}"));
    let expected: [(&str, i64); 6] = [
        ("a_short_counter_calls_f_once", 4 - 10),
        ("refill", 1000),
        ("a_full_counter_pays", 990),
        ("an_if_skips_a_fused_charge", 983),
        ("a_br_skips_past_a_fused_charge", 978),
        ("a_near_miss", 1 - 10),
    ];
    for (mode, calls) in modes::MODES.iter().zip(outcome) {
        let calls = calls.as_ref().expect("instantiated");
        let got: Vec<(&str, Result<Vec<u64>, String>)> = calls
            .iter()
            .map(|c| (&c.export[..], c.result.clone()))
            .collect();
        let want: Vec<(&str, Result<Vec<u64>, String>)> = expected
            .iter()
            .map(|(e, v)| (*e, Ok(vec![*v as u64])))
            .collect();
        assert_eq!(got, want, "{mode}");
    }
}
