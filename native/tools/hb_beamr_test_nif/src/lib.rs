//! Test-only NIF (`hb_beamr_test_nif`, loaded by `test/hb_beamr_test_nif.erl`):
//! the rewrites that `start/3` and `compile/2` apply on their own, so the
//! EUnit suites can run a rewritten module as plain bytecode and compare it
//! with the original. Kept out of the shipping NIFs (`hb_beamr_nif`,
//! `hb_beamr_compiler_nif`), as rustler keeps `rustler_tests` apart.

use hb_beamr_eh::Outcome;
use rustler::{Binary, Encoder, Env, OwnedBinary, Term};

mod atoms {
    rustler::atoms! { ok, error, unchanged, invalid_wasm, compile_failed }
}

/// `{ok, Binary}`.
fn ok_binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut binary = OwnedBinary::new(bytes.len());
    binary.as_mut_slice().copy_from_slice(bytes);
    (atoms::ok(), binary.release(env)).encode(env)
}

/// `canonicalize_nans(Wasm)` → `{ok, Wasm2}` | `{error, {invalid_wasm, Why}}`:
/// the module rewritten as `deterministic => true` rewrites it (the
/// `hb_beamr_nan` crate). Dirty: linear in the module's size.
#[rustler::nif(schedule = "DirtyCpu")]
fn canonicalize_nans<'a>(env: Env<'a>, wasm: Binary<'a>) -> Term<'a> {
    match hb_beamr_nan::canonicalize(wasm.as_slice()) {
        Ok(out) => ok_binary(env, &out),
        Err(why) => (atoms::error(), (atoms::invalid_wasm(), why.to_string())).encode(env),
    }
}

/// `rewrite_eh(Wasm)` → `{ok, Rewritten}` | `unchanged` |
/// `{error, {compile_failed, Why}}`: the exception-handling rewrite
/// `compile/2` applies (the `hb_beamr_eh` crate).
#[rustler::nif(schedule = "DirtyCpu")]
fn rewrite_eh<'a>(env: Env<'a>, wasm: Binary<'a>) -> Term<'a> {
    match hb_beamr_eh::rewrite(wasm.as_slice()) {
        Ok(Outcome::Unchanged) => atoms::unchanged().encode(env),
        Ok(Outcome::Rewritten(bytes)) => ok_binary(env, &bytes),
        Err(why) => (atoms::error(), (atoms::compile_failed(), why.to_string())).encode(env),
    }
}

rustler::init!("hb_beamr_test_nif");
