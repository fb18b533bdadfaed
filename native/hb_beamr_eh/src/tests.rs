use super::*;

/// The rewritten bytes of a WAT module (which must use exceptions).
fn rewritten(wat: &str) -> Vec<u8> {
    rewritten_bytes(&wasm(wat))
}

fn wasm(wat: &str) -> Vec<u8> {
    let buf = wast::parser::ParseBuffer::new(wat).expect("lex");
    let mut module: wast::Wat = wast::parser::parse(&buf).expect("parse");
    module.encode().expect("encode")
}

fn text(bytes: &[u8]) -> String {
    // A compact listing: one operator per line, enough to check shapes.
    let mut out = String::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.expect("payload") {
            wasmparser::Payload::ImportSection(r) => {
                for i in r.into_imports() {
                    let i = i.expect("import");
                    out.push_str(&format!("import {}.{}\n", i.module, i.name));
                }
            }
            wasmparser::Payload::ExportSection(r) => {
                for e in r {
                    let e = e.expect("export");
                    out.push_str(&format!("export {}\n", e.name));
                }
            }
            wasmparser::Payload::TagSection(_) => out.push_str("tags\n"),
            wasmparser::Payload::CodeSectionEntry(body) => {
                out.push_str("func\n");
                let mut r = body.get_operators_reader().expect("ops");
                while !r.eof() {
                    out.push_str(&format!("  {:?}\n", r.read().expect("op")));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn no_exceptions_is_unchanged() {
    let bytes = wasm(r#"(module (func (export "f") (result i32) i32.const 1))"#);
    assert!(matches!(rewrite(&bytes), Ok(Outcome::Unchanged)));
}

#[test]
fn invalid_input_is_an_error() {
    let err = rewrite(b"\0asm\x01\0\0\0\x01").unwrap_err();
    assert!(err.0.starts_with("invalid module"), "{err}");
}

#[test]
fn aos_module_when_given() {
    let Some(path) = std::env::var_os("HB_BEAMR_AOS_WASM") else {
        return;
    };
    let bytes = std::fs::read(path).expect("read");
    let out = match rewrite(&bytes) {
        Ok(Outcome::Rewritten(out)) => out,
        other => panic!("{other:?}"),
    };
    let listing = text(&out);
    assert!(!listing.contains("tags"));
    assert!(listing.contains("import hb_beamr_eh.throw"));
    eprintln!("{} -> {} bytes", bytes.len(), out.len());
}

/// emscripten's shape: a try around one call_indirect, a throw in the
/// handler for other jump buffers, a throw in a helper.
const SETJMP: &str = r#"
(module
  (type $v (func (param i64)))
  (tag $c_longjmp (param i64))
  (table 2 2 funcref)
  (elem (i32.const 0) $thrower $quiet)
  (func $thrower (param i64) (throw $c_longjmp (local.get 0)))
  (func $quiet (param i64))
  (func (export "protected") (param i32 i64) (result i64)
    try (result i64)
      (call_indirect (type $v) (local.get 1) (local.get 0))
      i64.const 0
    catch $c_longjmp
      (if (i64.eqz) (then (throw $c_longjmp (i64.const 0))))
      i64.const 1
    end))
"#;

#[test]
fn setjmp_shape() {
    let listing = text(&rewritten(SETJMP));
    assert!(!listing.contains("tags"), "{listing}");
    for import in ["throw", "call_indirect.0", "caught", "payload"] {
        assert!(
            listing.contains(&format!("import hb_beamr_eh.{import}\n")),
            "{listing}"
        );
    }
    assert!(!listing.contains("Try"), "{listing}");
    assert!(!listing.contains("Throw"), "{listing}");
    assert!(!listing.contains("CallIndirect"), "{listing}");
    // The runtime finds table 0 by an export.
    assert!(listing.contains("export hb_beamr_eh.table\n"), "{listing}");
}

/// Nested tries, a direct call that may throw, catch_all, rethrow and a
/// delegate to the outer try.
const NESTED: &str = r#"
(module
  (tag $a (param i32))
  (tag $b)
  (func $deep (param i32) (if (local.get 0) (then (throw $a (local.get 0)))))
  (func $mid (param i32) (call $deep (local.get 0)))
  (func $safe (param i32) (result i32) (local.get 0))
  (func (export "run") (param i32) (result i32)
    try $outer (result i32)
      try (result i32)
        (call $mid (local.get 0))
        (call $safe (i32.const 7))
      catch $b
        i32.const 2
      catch_all
        rethrow 0
      end
      try
        (call $mid (local.get 0))
      delegate $outer
    catch $a
    end)
  (func (export "raw") (throw $b)))
"#;

#[test]
fn nested_shapes() {
    let bytes = rewritten(NESTED);
    let listing = text(&bytes);
    assert!(
        !listing.contains("Try") && !listing.contains("Rethrow"),
        "{listing}"
    );
    assert!(
        !listing.contains("Delegate") && !listing.contains("tags"),
        "{listing}"
    );
    // $mid may throw: called through the host, by an added export.
    assert!(
        listing.contains("import hb_beamr_eh.call:hb_beamr_eh.f1\n"),
        "{listing}"
    );
    assert!(listing.contains("export hb_beamr_eh.f1\n"), "{listing}");
    // $safe cannot: called directly.
    assert!(!listing.contains("call:hb_beamr_eh.f2"), "{listing}");
}

#[test]
fn refuses_what_it_cannot_rewrite() {
    let cases = [
        (
            r#"(module (tag (param f64)) (func (throw 0 (f64.const 1))))"#,
            "carries values",
        ),
        (
            r#"(module (import "m" "t" (tag)) )"#,
            "imports exception tag",
        ),
        (r#"(module (tag (export "t")))"#, "exports exception tag"),
        (
            r#"(module (tag) (func (block (try_table (catch_all 0) (throw 0)))))"#,
            "exnref",
        ),
        (
            r#"(module (tag) (type $t (func (param i32)))
                 (func (param i32) (local.get 0) try (type $t) drop catch_all end))"#,
            "parameters",
        ),
    ];
    for (wat, why) in cases {
        let err = rewrite(&wasm(wat)).unwrap_err();
        assert!(err.0.contains(why), "{wat}: {err}");
    }
}

#[test]
fn indices_shift_past_the_added_imports() {
    let wat = r#"
      (module
        (import "env" "f" (func $f))
        (tag)
        (table 1 funcref)
        (elem (i32.const 0) $g)
        (func $g (call $f))
        (func (export "h") (call $g) try (call_indirect (i32.const 0)) catch_all end)
        (start $g))"#;
    let listing = text(&rewritten(wat));
    // Imports: env.f (0), then call_indirect.N, caught, payload; $g is 4.
    assert!(listing.contains("Call { function_index: 4 }"), "{listing}");
    assert!(listing.contains("Call { function_index: 0 }"), "{listing}");
}

/// Every single-bit flip of modules with exception handling: the rewriter
/// never panics, and what it returns is valid (it validates its output).
#[test]
fn bit_flips_never_panic() {
    for wat in [SETJMP, NESTED] {
        let original = wasm(wat);
        for bit in 0..original.len() * 8 {
            let mut bytes = original.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            if let Ok(Outcome::Rewritten(out)) = rewrite(&bytes) {
                let features = wasmparser::WasmFeatures::default()
                    - wasmparser::WasmFeatures::EXCEPTIONS
                    - wasmparser::WasmFeatures::LEGACY_EXCEPTIONS;
                wasmparser::Validator::new_with_features(features)
                    .validate_all(&out)
                    .expect("valid output");
            }
        }
    }
}

/// The test fixture test/fixtures/setjmp.wat (emscripten's shapes) rewrites.
#[test]
fn setjmp_fixture_rewrites() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test/fixtures/setjmp.wasm"
    );
    let bytes = std::fs::read(path).expect("test/fixtures/setjmp.wasm");
    let listing = text(&rewritten_bytes(&bytes));
    assert!(
        listing.contains("import hb_beamr_eh.call:hb_beamr_eh.f"),
        "{listing}"
    );
    assert!(
        !listing.contains("Try") && !listing.contains("Delegate"),
        "{listing}"
    );
}

fn rewritten_bytes(bytes: &[u8]) -> Vec<u8> {
    match rewrite(bytes) {
        Ok(Outcome::Rewritten(out)) => out,
        other => panic!("not rewritten: {other:?}"),
    }
}
