use super::*;
use wasmparser::{Operator, Parser, Payload};

fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("wat")
}

fn metered(wat: &str) -> Metered {
    meter(&wasm(wat), &Options::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Each body's operators, as text, one per entry.
fn bodies(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::CodeSectionEntry(body) = payload.expect("payload") {
            let mut r = body.get_operators_reader().expect("ops");
            let mut ops = Vec::new();
            while !r.eof() {
                ops.push(format!("{:?}", r.read().expect("op")));
            }
            out.push(ops);
        }
    }
    out
}

/// Each body's fixed charges, in code order: the constant after each
/// `global.get $fuel` that starts a charge.
fn charges(m: &Metered) -> Vec<Vec<i64>> {
    let fuel = m.info.fuel_global;
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(&m.wasm) {
        if let Payload::CodeSectionEntry(body) = payload.expect("payload") {
            let mut r = body.get_operators_reader().expect("ops");
            let mut ops = Vec::new();
            while !r.eof() {
                ops.push(r.read().expect("op"));
            }
            let mut found = Vec::new();
            for w in ops.windows(3) {
                if let [Operator::GlobalGet { global_index }, Operator::I64Const { value }, Operator::I64LtS] =
                    w
                {
                    if *global_index == fuel {
                        found.push(*value);
                    }
                }
            }
            out.push(found);
        }
    }
    out
}

#[test]
fn straight_line_code_is_charged_once_at_entry() {
    let m = metered(
        r#"(module (func (export "f") (result i32)
             i32.const 1 i32.const 2 i32.add i32.const 3 i32.div_u))"#,
    );
    // 1 + 1 + 1 + 1 + 4 (div); the charge function has no charges.
    assert_eq!(charges(&m), vec![vec![8], vec![]]);
    let ops = &bodies(&m.wasm)[0];
    assert_eq!(
        ops[0],
        format!("GlobalGet {{ global_index: {} }}", m.info.fuel_global)
    );
    assert_eq!(ops[1], "I64Const { value: 8 }");
}

#[test]
fn the_abi_is_recorded() {
    let m = metered(
        r#"(module
             (import "env" "a" (func))
             (import "env" "g" (global i32))
             (global (mut i32) (i32.const 0))
             (func (export "f")))"#,
    );
    assert_eq!(
        m.info,
        MeterInfo {
            abi_version: abi::ABI_VERSION,
            cost_table_version: COST_TABLE_VERSION,
            fuel_global: 2,
            out_of_fuel_func: 1,
            charge_func: 3,
        }
    );
    assert_eq!(MeterInfo::find(&m.wasm), Some(m.info));
    let mut saw = (false, false);
    for payload in Parser::new(0).parse_all(&m.wasm) {
        match payload.expect("payload") {
            Payload::ImportSection(r) => {
                let last = r.into_imports().last().expect("imports").expect("import");
                assert_eq!((last.module, last.name), ("hb_beamr", "out_of_fuel"));
                saw.0 = true;
            }
            Payload::ExportSection(r) => {
                let e = r.into_iter().last().expect("exports").expect("export");
                assert_eq!((e.name, e.index), ("hb_beamr.fuel", 2));
                assert_eq!(e.kind, wasmparser::ExternalKind::Global);
                saw.1 = true;
            }
            _ => {}
        }
    }
    assert_eq!(saw, (true, true));
}

#[test]
fn an_empty_module_gets_the_counter_too() {
    let m = metered("(module)");
    assert_eq!(m.info.fuel_global, 0);
    assert_eq!(m.info.out_of_fuel_func, 0);
    assert_eq!(m.info.charge_func, 1);
    assert_eq!(MeterInfo::find(&m.wasm), Some(m.info));
    // A module with memory and data only: sections added in their places.
    let m = metered(r#"(module (memory 1) (data (i32.const 0) "x"))"#);
    assert_eq!(m.info.charge_func, 1);
}

#[test]
fn initial_fuel_is_the_globals_initial_value() {
    let bytes = wasm("(module (func))");
    let m = meter(&bytes, &Options { initial_fuel: 77 }).expect("meter");
    let mut init = None;
    for payload in Parser::new(0).parse_all(&m.wasm) {
        if let Payload::GlobalSection(r) = payload.expect("payload") {
            let g = r.into_iter().last().expect("globals").expect("global");
            assert!(g.ty.mutable);
            let mut ops = g.init_expr.get_operators_reader();
            init = Some(format!("{:?}", ops.read().expect("op")));
        }
    }
    assert_eq!(init.as_deref(), Some("I64Const { value: 77 }"));
}

#[test]
fn function_indices_shift_past_the_added_import() {
    let m = metered(
        r#"(module
             (import "env" "imp" (func $imp))
             (table 2 funcref)
             (elem (i32.const 0) $a $imp)
             (global funcref (ref.func $a))
             (func $a (export "a") call $imp call $b)
             (func $b (drop (ref.func $b)))
             (elem declare func $b)
             (start $b))"#,
    );
    let text = bodies(&m.wasm);
    // $a: call $imp (0, unchanged), call $b (2 -> 3).
    assert!(
        text[0].contains(&"Call { function_index: 0 }".to_string()),
        "{text:?}"
    );
    assert!(
        text[0].contains(&"Call { function_index: 3 }".to_string()),
        "{text:?}"
    );
    assert!(
        text[1].contains(&"RefFunc { function_index: 3 }".to_string()),
        "{text:?}"
    );
    for payload in Parser::new(0).parse_all(&m.wasm) {
        match payload.expect("payload") {
            Payload::StartSection { func, .. } => assert_eq!(func, 3),
            Payload::ExportSection(r) => {
                let e = r.into_iter().next().expect("exports").expect("export");
                assert_eq!((e.name, e.index), ("a", 2));
            }
            Payload::ElementSection(r) => {
                let e = r.into_iter().next().expect("elements").expect("element");
                let wasmparser::ElementItems::Functions(funcs) = e.items else {
                    panic!("function indices");
                };
                let funcs: Vec<u32> = funcs.into_iter().map(|f| f.expect("func")).collect();
                assert_eq!(funcs, vec![2, 0]);
            }
            Payload::GlobalSection(r) => {
                let g = r.into_iter().next().expect("globals").expect("global");
                let op = g.init_expr.get_operators_reader().read().expect("op");
                assert_eq!(format!("{op:?}"), "RefFunc { function_index: 2 }");
            }
            _ => {}
        }
    }
}

#[test]
fn the_name_section_follows_the_shift() {
    let m = metered(
        r#"(module
             (import "env" "imp" (func $imp))
             (func $a (param $x i32))
             (func $b))"#,
    );
    let mut names = Vec::new();
    let mut locals = Vec::new();
    for payload in Parser::new(0).parse_all(&m.wasm) {
        if let Payload::CustomSection(c) = payload.expect("payload") {
            if let wasmparser::KnownCustom::Name(reader) = c.as_known() {
                for sub in reader {
                    match sub.expect("names") {
                        wasmparser::Name::Function(map) => {
                            for n in map {
                                let n = n.expect("name");
                                names.push((n.index, n.name.to_string()));
                            }
                        }
                        wasmparser::Name::Local(map) => {
                            for n in map {
                                locals.push(n.expect("locals").index);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    assert_eq!(
        names,
        vec![(0, "imp".into()), (2, "a".into()), (3, "b".into())]
    );
    assert_eq!(locals, vec![2]);
}

#[test]
fn loops_are_charged_at_their_header() {
    let m = metered(
        r#"(module (func (export "f") (param i32)
             i32.const 0 drop
             (loop $l
               local.get 0 i32.const 1 i32.sub local.tee 0
               br_if $l)
             i32.const 9 drop))"#,
    );
    // Entry: const, drop. Header: get, const, sub, tee, br_if (back to
    // the loop: it ends the block). After the loop's end: const, drop.
    assert_eq!(charges(&m)[0], vec![2, 5, 2]);
    // The charge after falling out of the loop sits just before its end:
    // br_if, the charge (11 instructions), the loop's end.
    let ops = &bodies(&m.wasm)[0];
    let br_if = ops
        .iter()
        .position(|o| o.starts_with("BrIf"))
        .expect("br_if");
    assert_eq!(ops[br_if + 2], "I64Const { value: 2 }");
    assert_eq!(ops[br_if + 12], "End");
    assert_eq!(ops[br_if + 13], "I32Const { value: 9 }");
}

#[test]
fn a_forward_br_if_ends_no_block() {
    let m = metered(
        r#"(module (func (export "f") (param i32)
             (block $out
               (loop $l
                 local.get 0 i32.eqz br_if $out
                 local.get 0 i32.const 1 i32.sub local.set 0
                 br $l))
             i32.const 9 drop))"#,
    );
    // Header: get, eqz, br_if (forward: no cut), get, const, sub, set,
    // br. After the block: const, drop.
    assert_eq!(charges(&m)[0], vec![8, 2]);
}

#[test]
fn arms_and_joins_begin_blocks_conditional_branches_do_not() {
    let m = metered(
        r#"(module (func (export "f") (param i32) (result i32)
             (block $b
               local.get 0
               br_if $b
               i32.const 1 drop)
             local.get 0
             (if (result i32) (then i32.const 1) (else i32.const 2 i32.const 3 i32.add))))"#,
    );
    // Entry: get, br_if and (a conditional branch ends no block) const,
    // drop. After the block: get, if. Then: const. Else: const, const, add.
    assert_eq!(charges(&m)[0], vec![4, 2, 1, 3]);
}

#[test]
fn dead_code_is_not_charged() {
    let m = metered(
        r#"(module (func (export "f") (result i32)
             (block $b (br $b) i32.const 1 drop i32.const 2 drop)
             i32.const 7
             return
             i32.const 8 drop))"#,
    );
    // Entry: br. After the block: const, return. Nothing else.
    assert_eq!(charges(&m)[0], vec![1, 2]);
}

#[test]
fn calls_cost_more_and_end_no_block() {
    let m = metered(
        r#"(module
             (type $t (func))
             (table 1 funcref)
             (func $g)
             (func (export "f")
               call $g i32.const 0 call_indirect (type $t) return_call $g))"#,
    );
    // call 5, const 1, call_indirect 10, return_call 5.
    assert_eq!(charges(&m)[1], vec![21]);
    // The callee pays nothing for an empty body.
    assert_eq!(charges(&m)[0], Vec::<i64>::new());
}

#[test]
fn handlers_are_charged_on_entry() {
    let m = metered(
        r#"(module
             (tag $e (param i32))
             (func (export "f") (result i32)
               try (result i32)
                 i32.const 1 throw $e
               catch $e
                 i32.const 1 i32.add
               catch_all
                 i32.const 5
               end))"#,
    );
    // Entry: const, throw (10). catch: 5 + const, add. catch_all: 5 + const.
    assert_eq!(charges(&m)[0], vec![11, 7, 6]);
}

#[test]
fn delegate_ends_a_try() {
    let m = metered(
        r#"(module
             (tag $e)
             (func (export "f")
               try
                 try throw $e delegate 0
               catch_all
               end
               i32.const 0 drop))"#,
    );
    // Entry: throw. catch_all: 5. After the outer try: const, drop.
    // (Nothing can run after the delegate in the outer body.)
    assert_eq!(charges(&m)[0], vec![10, 5, 2]);
}

#[test]
fn bulk_operations_pay_by_their_size_operand() {
    let m = metered(
        r#"(module (memory 1)
             (func (export "f") (param i32)
               i32.const 0 i32.const 0 local.get 0 memory.fill
               local.get 0 memory.grow drop))"#,
    );
    // Fixed: 3 + 10 + 1 + 10 + 1.
    assert_eq!(charges(&m)[0], vec![25]);
    let ops = bodies(&m.wasm).remove(0);
    let text = ops.join("\n");
    // memory.fill: bytes / 64, before it runs.
    assert!(
        text.contains("LocalSet { local_index: 1 }\nLocalGet { local_index: 1 }\nI64ExtendI32U\nI64Const { value: 6 }\nI64ShrU\nCall { function_index: 2 }\nGlobalGet { global_index: 0 }\nLocalGet { local_index: 1 }\nI64ExtendI32U\nI64Const { value: 6 }\nI64ShrU\nI64Sub\nGlobalSet { global_index: 0 }\nLocalGet { local_index: 1 }\nMemoryFill"),
        "{text}"
    );
    // memory.grow: 1024 per page, after it returns, unless it returned -1.
    assert!(
        text.contains("LocalTee { local_index: 1 }\nMemoryGrow { mem: 0 }\nLocalSet { local_index: 2 }\nLocalGet { local_index: 1 }\nI64ExtendI32U\nI64Const { value: 1024 }\nI64Mul\nI64Const { value: 0 }\nLocalGet { local_index: 2 }\nI32Const { value: -1 }\nI32Ne\nSelect\nCall { function_index: 2 }\nGlobalGet { global_index: 0 }\nLocalGet { local_index: 1 }\nI64ExtendI32U\nI64Const { value: 1024 }\nI64Mul\nI64Const { value: 0 }\nLocalGet { local_index: 2 }\nI32Const { value: -1 }\nI32Ne\nSelect\nI64Sub\nGlobalSet { global_index: 0 }\nLocalGet { local_index: 2 }\nDrop"),
        "{text}"
    );
}

#[test]
fn a_64_bit_size_operand_is_clamped() {
    let m = metered(
        r#"(module (memory i64 1)
             (func (export "f") (param i64)
               i64.const 0 i64.const 0 local.get 0 memory.copy))"#,
    );
    let text = bodies(&m.wasm).remove(0).join("\n");
    let clamp = cost::OPERAND_CLAMP;
    assert!(
        text.contains(&format!(
            "LocalSet {{ local_index: 1 }}\nLocalGet {{ local_index: 1 }}\nI64Const {{ value: {clamp} }}\nLocalGet {{ local_index: 1 }}\nI64Const {{ value: {clamp} }}\nI64LtU\nSelect"
        )),
        "{text}"
    );
}

#[test]
fn metering_twice_is_refused() {
    let m = metered("(module (func))");
    assert_eq!(
        meter(&m.wasm, &Options::default()),
        Err(MeterError::AlreadyMetered)
    );
}

#[test]
fn the_counters_name_must_be_free() {
    let bytes = wasm(r#"(module (func (export "hb_beamr.fuel")))"#);
    let err = meter(&bytes, &Options::default()).unwrap_err();
    assert_eq!(err, MeterError::NameTaken("hb_beamr.fuel".into()));
    assert!(err.to_string().contains("hb_beamr.fuel"), "{err}");
}

#[test]
fn invalid_input_is_an_error() {
    let err = meter(b"\0asm\x01\0\0\0\x01", &Options::default()).unwrap_err();
    assert!(matches!(err, MeterError::Invalid(_)), "{err:?}");
    assert!(err.to_string().starts_with("invalid module"), "{err}");
}

#[test]
fn the_section_reads_back() {
    let info = MeterInfo {
        abi_version: 1,
        cost_table_version: 1,
        fuel_global: 300,
        out_of_fuel_func: 70000,
        charge_func: 5,
    };
    assert_eq!(MeterInfo::decode(&info.encode()), Some(info));
    assert_eq!(MeterInfo::decode(&info.encode()[..3]), None);
}

#[test]
fn gc_arrays_pay_per_element() {
    let m = metered(
        r#"(module (type $a (array (mut i32)))
             (func (export "f") (param i32) (result i32)
               (array.len (array.new_default $a (local.get 0)))))"#,
    );
    let text = bodies(&m.wasm).remove(0).join("\n");
    assert!(
        text.contains("LocalSet { local_index: 1 }\nLocalGet { local_index: 1 }\nI64ExtendI32U\nCall { function_index: 2 }\nGlobalGet { global_index: 0 }\nLocalGet { local_index: 1 }\nI64ExtendI32U\nI64Sub\nGlobalSet { global_index: 0 }\nLocalGet { local_index: 1 }\nArrayNewDefault"),
        "{text}"
    );
    // get 1, array.new_default 10, array.len 1.
    assert_eq!(charges(&m)[0], vec![12]);
}
