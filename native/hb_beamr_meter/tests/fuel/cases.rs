//! Hand-written modules whose fuel follows from the cost table, in every
//! mode: the exact counter after each call, pausing (every block refuelled
//! by `out_of_fuel`) and running out.

use hb_beamr_meter::{meter, Options};

use crate::modes;
use crate::run::{self, Call, Fuel};

/// Meters `wat` and runs every export in the three modes with `fuel`;
/// they must agree; returns what the interpreter did.
fn run_all(wat: &str, name: &str, options: Options, fuel: impl Fn(u32) -> Fuel) -> Vec<Call> {
    let wasm = wat::parse_str(wat).expect("wat");
    let metered = meter(&wasm, &options).unwrap_or_else(|e| panic!("{e}"));
    let exports = run::exports(&wasm);
    let fuel = fuel(metered.info.fuel_global);
    let outcomes = modes::run_all(&metered.wasm, name, &exports, &[fuel]).expect("aot");
    let [outcome] = &outcomes[..] else {
        panic!("one budget")
    };
    modes::agree(outcome).unwrap_or_else(|e| panic!("{name}: {e}"));
    outcome[0].clone().unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn starting_with(fuel: i64) -> impl Fn(u32) -> Fuel {
    move |global| Fuel {
        global: Some(global),
        start: Some(fuel),
        refill: 0,
        refills: 0,
    }
}

/// Every `out_of_fuel` gives exactly what is missing: each block that
/// finds the counter short pauses once and then runs.
fn hand_to_mouth(global: u32) -> Fuel {
    Fuel {
        global: Some(global),
        start: Some(0),
        refill: 0,
        refills: u32::MAX,
    }
}

fn left(calls: &[Call]) -> Vec<i64> {
    calls
        .iter()
        .map(|c| c.fuel_left.expect("counter"))
        .collect()
}

const LOOP: &str = r#"
(module
  (func (export "loop10") (result i32) (local $i i32)
    (loop $l
      local.get $i i32.const 1 i32.add local.tee $i
      i32.const 10 i32.lt_u br_if $l)
    local.get $i))
"#;

/// The loop header's block (7) runs 10 times; after the loop, 1 (a
/// conditional branch back to the loop ends the block).
#[test]
fn a_loop_pays_at_its_header_on_every_iteration() {
    let calls = run_all(LOOP, "loop", Options::default(), starting_with(1000));
    assert_eq!(calls[0].result, Ok(vec![10]));
    assert_eq!(left(&calls), vec![1000 - 71]);
}

/// Pausing before every block changes nothing but the pauses: 11 blocks,
/// 11 `out_of_fuel` calls, each for exactly the block's cost.
#[test]
fn pausing_before_every_block_resumes_where_it_stopped() {
    let calls = run_all(LOOP, "loop_paused", Options::default(), hand_to_mouth);
    assert_eq!(calls[0].result, Ok(vec![10]));
    assert_eq!(calls[0].out_of_fuel, 11);
    assert_eq!(left(&calls), vec![0]);
}

/// 100 fuel pays for 14 iterations (98); the 15th finds 2 and stops the
/// call before it runs, with the 2 still there.
#[test]
fn running_out_stops_before_the_block_that_cannot_pay() {
    let wat = LOOP.replace("i32.const 10", "i32.const 1000");
    let calls = run_all(&wat, "loop_out", Options::default(), starting_with(100));
    assert_eq!(calls[0].result, Err(run::OUT_OF_FUEL.to_string()));
    assert_eq!(left(&calls), vec![2]);
    assert_eq!(calls[0].out_of_fuel, 1);
}

/// The usual loop: `br_if` out (forward), the body, `br` back. A forward
/// conditional branch ends no block (cost table 2), so an iteration is
/// one block: 4 to the `br_if`, 4, and the `br`, 9. The exit test runs
/// the header an 11th time and pays its 9 too (the taken branch skips 5
/// of them); after the block, 1. 11 x 9 + 1 = 100 (cost table 1: 95).
const EXIT_LOOP: &str = r#"
(module
  (func (export "count") (result i32) (local $i i32)
    (block $done
      (loop $l
        local.get $i i32.const 10 i32.ge_u br_if $done
        local.get $i i32.const 1 i32.add local.set $i
        br $l))
    local.get $i))
"#;

#[test]
fn a_forward_br_if_ends_no_block() {
    let calls = run_all(
        EXIT_LOOP,
        "exit_loop",
        Options::default(),
        starting_with(1000),
    );
    assert_eq!(calls[0].result, Ok(vec![10]));
    assert_eq!(left(&calls), vec![1000 - 100]);
    // 12 blocks run: 12 pauses, the same result.
    let calls = run_all(
        EXIT_LOOP,
        "exit_loop_paused",
        Options::default(),
        hand_to_mouth,
    );
    assert_eq!(calls[0].result, Ok(vec![10]));
    assert_eq!(calls[0].out_of_fuel, 12);
    assert_eq!(left(&calls), vec![0]);
    // 50 fuel: 5 iterations (45), then the 6th header finds 5 and stops.
    let calls = run_all(
        EXIT_LOOP,
        "exit_loop_out",
        Options::default(),
        starting_with(50),
    );
    assert_eq!(calls[0].result, Err(run::OUT_OF_FUEL.to_string()));
    assert_eq!(left(&calls), vec![5]);
}

/// The start function pays from the initial fuel; an empty body pays
/// nothing.
#[test]
fn the_start_function_is_metered() {
    let wat = r#"
      (module
        (global $g (mut i32) (i32.const 0))
        (func $init i32.const 5 global.set $g)
        (start $init)
        (func (export "nop"))
        (func (export "g") (result i32) global.get $g))"#;
    let leave = |global| Fuel {
        global: Some(global),
        start: None,
        refill: 0,
        refills: 0,
    };
    let calls = run_all(wat, "start", Options { initial_fuel: 50 }, leave);
    assert_eq!(left(&calls), vec![48, 47]);
    assert_eq!(calls[1].result, Ok(vec![5]));
}

/// Calls cost 5 at the call site (10 indirect), the callee pays its body
/// on entry; an import pays nothing more, and the counter's own import
/// and charge function are never charged.
#[test]
fn calls_pay_at_the_site_and_on_entry() {
    let wat = r#"
      (module
        (import "env" "zero" (func $zero (result i32)))
        (type $r (func (result i32)))
        (table 2 funcref)
        (elem (i32.const 0) $seven $zero)
        (func $seven (result i32) i32.const 7)
        (func (export "direct") (result i32) call $seven)
        (func (export "indirect") (result i32) i32.const 0 call_indirect (type $r))
        (func (export "import") (result i32) call $zero)
        (func (export "import_indirect") (result i32) i32.const 1 call_indirect (type $r))
        (func (export "tail") (result i32) return_call $seven))"#;
    let calls = run_all(wat, "calls", Options::default(), starting_with(1000));
    let results: Vec<_> = calls.iter().map(|c| c.result.clone()).collect();
    assert_eq!(
        results,
        vec![
            Ok(vec![7]),
            Ok(vec![7]),
            Ok(vec![0]),
            Ok(vec![0]),
            Ok(vec![7])
        ]
    );
    // direct: 5 + 1; indirect: 1 + 10 + 1; import: 5; import through the
    // table: 1 + 10; tail: 5 + 1.
    let used = [6, 12, 5, 11, 6];
    let mut expected = Vec::new();
    let mut fuel = 1000;
    for u in used {
        fuel -= u;
        expected.push(fuel);
    }
    assert_eq!(left(&calls), expected);
}

/// memory.grow pays 1024 a page grown (nothing more when refused),
/// memory.fill and memory.copy 1 per 64 bytes, on top of their fixed 10.
#[test]
fn bulk_memory_pays_by_size() {
    let wat = r#"
      (module (memory 1 100)
        (func (export "grow") (result i32) i32.const 3 memory.grow)
        (func (export "refused") (result i32) i32.const 1000 memory.grow)
        (func (export "fill") i32.const 0 i32.const 7 i32.const 640 memory.fill)
        (func (export "copy") i32.const 64 i32.const 0 i32.const 130 memory.copy)
        (func (export "too_much")
          i32.const 0 i32.const 0 i32.const 0x7fffffff memory.fill))"#;
    let calls = run_all(wat, "bulk", Options::default(), starting_with(100_000));
    assert_eq!(calls[0].result, Ok(vec![1]));
    assert_eq!(calls[1].result, Ok(vec![u32::MAX as u64]));
    let used = [1 + 10 + 3 * 1024, 1 + 10, 3 + 10 + 10, 3 + 10 + 2];
    let mut fuel = 100_000;
    for (call, u) in calls.iter().zip(used) {
        fuel -= u;
        assert_eq!(call.fuel_left, Some(fuel), "{}", call.export);
    }
    // 2 GiB to fill costs 2^25 more than its block's fixed 13, more than
    // is left: out of fuel before the fill runs (and before it would trap
    // out of bounds), with the block's 13 paid.
    assert_eq!(calls[4].result, Err(run::OUT_OF_FUEL.to_string()));
    assert_eq!(calls[4].fuel_left, Some(fuel - 13));
}

/// A trap in the middle of a block: the block was paid for whole, in
/// every mode alike.
#[test]
fn a_trap_leaves_the_same_counter_in_every_mode() {
    let wat = r#"
      (module
        (func (export "div0") (result i32)
          i32.const 1 i32.const 0 i32.div_u i32.const 2 i32.add))"#;
    let calls = run_all(wat, "trap", Options::default(), starting_with(100));
    assert!(calls[0].result.is_err());
    assert_eq!(left(&calls), vec![100 - 8]);
}

/// The cost of metering, by hand: `cargo test --release -p hb_beamr_meter
/// --test fuel -- --ignored --nocapture overhead` prints the time of a
/// loop-heavy call, unmetered and metered, in the interpreter and in AOT
/// code for this CPU.
#[test]
#[ignore]
fn overhead() {
    use std::time::Instant;
    let wat = r#"
      (module (memory 1)
        (func $step (param $x i32) (result i32)
          (i32.add (i32.mul (local.get $x) (i32.const 31)) (i32.const 7)))
        (func (export "run") (result i32) (local $i i32) (local $acc i32)
          (loop $l
            (local.set $acc (call $step (i32.xor (local.get $acc) (local.get $i))))
            (i32.store (i32.and (local.get $i) (i32.const 1020)) (local.get $acc))
            (local.set $acc (i32.add (local.get $acc)
              (i32.load (i32.and (local.get $acc) (i32.const 1020)))))
            (br_if $l (i32.lt_u
              (local.tee $i (i32.add (local.get $i) (i32.const 1)))
              (i32.const 30000000))))
          (local.get $acc)))"#;
    let wasm = wat::parse_str(wat).expect("wat");
    let metered = meter(&wasm, &Options::default()).expect("meter");
    let exports = run::exports(&wasm);
    let plain_fuel = Fuel {
        global: None,
        start: None,
        refill: 0,
        refills: 0,
    };
    let fuel = starting_with(i64::MAX / 2)(metered.info.fuel_global);
    for (mode, name) in [
        (hb_beamr_engine::Mode::Wasm, "wasm"),
        (hb_beamr_engine::Mode::Aot, "aot host"),
    ] {
        let (plain, with) = match mode {
            hb_beamr_engine::Mode::Wasm => (wasm.clone(), metered.wasm.clone()),
            hb_beamr_engine::Mode::Aot => (
                crate::aot::compile(&wasm, crate::aot::Cpu::Host, "overhead").expect("aot"),
                crate::aot::compile(&metered.wasm, crate::aot::Cpu::Host, "overhead_m")
                    .expect("aot"),
            ),
        };
        let time = |bytes: &[u8], fuel: Fuel| {
            let t = Instant::now();
            let out = run::run(bytes, mode, &exports, fuel).expect("run");
            (t.elapsed(), out)
        };
        let (t0, a) = time(&plain, plain_fuel);
        let (t1, b) = time(&with, fuel);
        assert_eq!(a[0].result, b[0].result);
        let used = i64::MAX / 2 - b[0].fuel_left.expect("counter");
        eprintln!(
            "{name}: unmetered {t0:?}, metered {t1:?} ({:.2}x), {used} fuel",
            t1.as_secs_f64() / t0.as_secs_f64()
        );
    }
}

/// memory64 accesses whose effective address wraps around 2^64 trap in
/// every mode. WAMR 2.4.3's AOT compiler added a constant address and the
/// offset in 64 bits and, when the sum wrapped into the memory, accessed
/// it (`-16 + offset 32` read address 16; the interpreter, as the spec
/// says, traps); memory.fill / memory.copy alike, and at run time let an
/// end of exactly 2^64 through (`memory.fill` at 2^64 - 1 of one byte
/// wrote the byte before linear memory). hb_wamr_build patches the
/// compiler. (`memory.init`, which AOT code leaves to the runtime, trapped
/// already: `init_end` checks it stays so.) `wrapped_load_in_a_grow_loop` is the shape of the module the
/// metering differential fuzz found (seed 1, module 768): the interpreter
/// trapped at once, AOT code read the wrapped address and looped on,
/// growing by 2^64 - 2^44 pages, until `unreachable`, with other fuel.
const ADDRESS64: &str = r#"
(module
  (memory i64 1)
  (global $minus1 (mut i64) (i64.const -1))
  (func (export "load") (result i64) i64.const -16 i64.load32_u offset=32)
  (func (export "load_extended") (result f64)
    i32.const -16 i64.extend_i32_s f64.load offset=22906)
  (func (export "store") i64.const -8 i64.const 7 i64.store offset=16)
  (func (export "load_end") (result i64) i64.const -8 i64.load offset=8)
  (func (export "fill") i64.const -1 i32.const 7 i64.const 1 memory.fill)
  (func (export "fill_end") global.get $minus1 i32.const 7 i64.const 1 memory.fill)
  (func (export "copy") i64.const 0 i64.const -2 i64.const 4 memory.copy)
  (func (export "copy_end") i64.const 0 global.get $minus1 i64.const 1 memory.copy)
  (func (export "init_end") global.get $minus1 i32.const 0 i32.const 1 memory.init $d)
  (func (export "wrapped_load_in_a_grow_loop") (result i64) (local $n i64)
    (loop $l
      i32.const -16 i64.extend_i32_s f64.load offset=22906 drop
      i64.const -17592186044416 memory.grow drop
      local.get $n i64.const 1 i64.add local.tee $n
      i64.const 1000 i64.lt_u br_if $l)
    local.get $n)
  (func (export "in_bounds") (result i64)
    i64.const 65528 i64.const 42 i64.store
    i64.const 65520 i64.load offset=8)
  (data $d "xy"))
"#;

#[test]
fn memory64_addresses_that_wrap_trap_in_every_mode() {
    let wasm = wat::parse_str(ADDRESS64).expect("wat");
    let metered = meter(&wasm, &Options::default()).expect("meter");
    let exports = run::exports(&wasm);
    let fuel = starting_with(1000)(metered.info.fuel_global);
    let outcomes = modes::run_all(&metered.wasm, "address64", &exports, &[fuel]).expect("aot");
    let [outcome] = &outcomes[..] else {
        panic!("one budget")
    };
    modes::agree(outcome).unwrap_or_else(|e| panic!("address64: {e}"));
    let oob = Err("out of bounds memory access".to_string());
    // What each call costs (the table): the block before the trap, paid
    // in full; the loop's header once (it traps in its first iteration;
    // 24 to the `br_if` back to the loop, which ends the block).
    type Expected<'a> = (&'a str, Result<Vec<u64>, String>, i64);
    let expected: [Expected; 11] = [
        ("load", oob.clone(), 3),
        ("load_extended", oob.clone(), 4),
        ("store", oob.clone(), 4),
        ("load_end", oob.clone(), 3),
        ("fill", oob.clone(), 13),
        ("fill_end", oob.clone(), 13),
        ("copy", oob.clone(), 13),
        ("copy_end", oob.clone(), 13),
        ("init_end", oob.clone(), 13),
        ("wrapped_load_in_a_grow_loop", oob, 24),
        ("in_bounds", Ok(vec![42]), 7),
    ];
    for (mode, calls) in modes::MODES.iter().zip(outcome) {
        let calls = calls.as_ref().expect("instantiated");
        let mut fuel = 1000;
        for ((export, result, cost), call) in expected.iter().zip(calls) {
            fuel -= cost;
            assert_eq!(
                (&call.export[..], &call.result, call.fuel_left),
                (*export, result, Some(fuel)),
                "{mode}"
            );
        }
        assert_eq!(calls.len(), expected.len(), "{mode}");
    }
}
