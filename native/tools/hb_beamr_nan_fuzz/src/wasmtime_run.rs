//! `hb_beamr_nan_fuzz wasmtime DIR`: runs each original module (not
//! rewritten) under wasmtime with Cranelift's NaN canonicalization, and
//! compares with what hb_beamr's wasm mode saw of the rewritten one
//! (`NNNNN.hb`, written by erlang/hb_beamr_nan_fuzz.erl in the same format:
//! each wrapper called twice in name order, then the memory's CRC-32).

use std::fmt::Write as _;
use std::path::Path;

use wasmtime::{Config, Engine, Instance, Module, ResourceLimiter, Store, Trap, Val};

use crate::wrap::{MEMORY_EXPORT, WRAPPER_PREFIX};

/// CRC-32 (IEEE, as zlib and `erlang:crc32/1`).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// memory.grow fails past 16 MiB, as `max_memory` makes it fail under
/// hb_beamr in erlang/hb_beamr_nan_fuzz.erl.
const MAX_MEMORY: usize = 16 * 1024 * 1024;

struct Limits;

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_MEMORY)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

fn outcome(engine: &Engine, bytes: &[u8]) -> String {
    let module = match Module::new(engine, bytes) {
        Ok(module) => module,
        Err(e) => return format!("start error {e}\n"),
    };
    let mut store = Store::new(engine, Limits);
    store.limiter(|limits| limits);
    let instance = match Instance::new(&mut store, &module, &[]) {
        Ok(instance) => instance,
        Err(e) => return format!("start error {e}\n"),
    };
    let mut names: Vec<String> = module
        .exports()
        .filter(|e| e.name().starts_with(WRAPPER_PREFIX) && e.ty().func().is_some())
        .map(|e| e.name().to_string())
        .collect();
    names.sort();
    let mut out = String::new();
    for name in &names {
        let Some(func) = instance.get_func(&mut store, name) else {
            continue;
        };
        for _ in 0..2 {
            let mut results = vec![Val::I64(0); func.ty(&store).results().len()];
            let _ = write!(out, "{name} ");
            match func.call(&mut store, &[], &mut results) {
                Ok(()) => {
                    out.push_str("ok");
                    for value in &results {
                        let bits = value.i64().map_or(u64::MAX, |v| v as u64);
                        let _ = write!(out, " {bits}");
                    }
                }
                Err(e) if e.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) => {
                    out.push_str("exhausted")
                }
                Err(_) => out.push_str("trap"),
            }
            out.push('\n');
        }
    }
    match instance.get_memory(&mut store, MEMORY_EXPORT) {
        Some(memory) if memory.data_size(&store) > 0 => {
            let data = memory.data(&store);
            let _ = writeln!(out, "memory {} {}", data.len(), crc32(data));
        }
        _ => out.push_str("memory none\n"),
    }
    out
}

/// `canonicalize` false (`--no-canonicalization`) shows that the comparison
/// notices NaN bits: the originals then diverge from hb_beamr's results.
pub fn run(dir: &Path, canonicalize: bool) -> Result<(), String> {
    let mut config = Config::new();
    config
        .cranelift_nan_canonicalization(canonicalize)
        .wasm_multi_value(true)
        .wasm_memory64(true)
        .wasm_tail_call(true)
        .wasm_bulk_memory(true);
    let engine = Engine::new(&config).map_err(|e| e.to_string())?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "hb"))
        .collect();
    entries.sort();
    let (mut modules, mut skipped, mut divergences) = (0usize, 0usize, 0usize);
    for hb in entries {
        let (Ok(expected), Ok(bytes)) = (
            std::fs::read_to_string(&hb),
            std::fs::read(hb.with_extension("wasm")),
        ) else {
            continue;
        };
        modules += 1;
        let got = outcome(&engine, &bytes);
        if [&expected, &got].iter().any(|o| o.contains(" exhausted")) {
            skipped += 1;
        } else if got != expected {
            divergences += 1;
            if divergences <= 5 {
                println!(
                    "DIVERGENCE {}\n--- hb_beamr\n{expected}--- wasmtime\n{got}",
                    hb.display()
                );
            }
        }
    }
    println!(
        "nan-fuzz wasmtime: {modules} modules, {divergences} divergences, {skipped} skipped (stack exhausted)"
    );
    if divergences == 0 {
        Ok(())
    } else {
        Err(format!("{divergences} modules diverge from wasmtime"))
    }
}
