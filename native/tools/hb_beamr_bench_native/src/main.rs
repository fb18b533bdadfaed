//! `hb_beamr_bench_native WASM KERNEL ROUNDS ARG...` times one compute kernel
//! of `test/fixtures/bench.wat` as native Rust and as the same `.wasm` under wasmtime
//! (compiled before timing), and prints one line per engine:
//! `native <ms> <result>` and `wasmtime <ms> <result>` (medians of ROUNDS).
//! erlang/hb_beamr_bench.erl runs it between its own wasm and aot rounds.

use std::process::ExitCode;
use std::time::Instant;

use wasmtime::{Engine, Instance, Linker, Module, Store};

/// The kernels, written as the WAT writes them.
mod kernels {
    pub fn mix(mut n: u32) -> u64 {
        let mut x: u64 = 88172645463325252;
        while n != 0 {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x = x.wrapping_mul(2685821657736338717);
            n -= 1;
        }
        x
    }

    pub fn fnv1a(memory: &[u8], len: usize, rounds: u32) -> u32 {
        let mut hash: u32 = 0x811c9dc5;
        for _ in 0..rounds {
            for &byte in &memory[..len] {
                hash = (hash ^ u32::from(byte)).wrapping_mul(0x01000193);
            }
        }
        hash
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Runs `f` `rounds` times; the median time in ms and the last result.
fn time<T>(rounds: usize, mut f: impl FnMut() -> Result<T, String>) -> Result<(f64, T), String> {
    let mut samples = Vec::with_capacity(rounds);
    let mut last = None;
    for _ in 0..rounds {
        let start = Instant::now();
        let value = std::hint::black_box(f()?);
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        last = Some(value);
    }
    let last = last.ok_or("no rounds")?;
    Ok((median(samples), last))
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> Result<T, String> {
    args.get(i)
        .ok_or(format!("missing argument {i}"))?
        .parse()
        .map_err(|_| format!("bad argument {i}: {:?}", args[i]))
}

fn run(args: &[String]) -> Result<(), String> {
    let wasm_file: String = arg(args, 0)?;
    let kernel: String = arg(args, 1)?;
    let rounds: usize = arg(args, 2)?;
    let engine = Engine::default();
    let module = Module::from_file(&engine, &wasm_file).map_err(|e| e.to_string())?;
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("env", "tick", |n: i32| n)
        .map_err(|e| e.to_string())?;
    let instance: Instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| e.to_string())?;
    let wt = |e: wasmtime::Error| e.to_string();
    match kernel.as_str() {
        "mix" => {
            let n: u32 = arg(args, 3)?;
            let (ms, value) = time(rounds, || Ok(kernels::mix(std::hint::black_box(n))))?;
            println!("native {ms:.3} {value}");
            let mix = instance
                .get_typed_func::<i32, i64>(&mut store, "mix")
                .map_err(wt)?;
            let (ms, value) = time(rounds, || mix.call(&mut store, n as i32).map_err(wt))?;
            println!("wasmtime {ms:.3} {}", value as u64);
        }
        "fnv1a" => {
            let len: u32 = arg(args, 3)?;
            let reps: u32 = arg(args, 4)?;
            // Both read the same bytes: the module's memory, grown and
            // filled as the Erlang side fills it.
            let fill = |i: usize| (i.wrapping_mul(31) & 0xff) as u8;
            let memory: Vec<u8> = (0..len as usize).map(fill).collect();
            let (ms, value) = time(rounds, || {
                Ok(kernels::fnv1a(
                    std::hint::black_box(&memory),
                    len as usize,
                    reps,
                ))
            })?;
            println!("native {ms:.3} {value}");
            let grow = instance
                .get_typed_func::<i32, i32>(&mut store, "grow")
                .map_err(wt)?;
            grow.call(&mut store, (len / 65536) as i32).map_err(wt)?;
            let mem = instance
                .get_memory(&mut store, "memory")
                .ok_or("no memory export")?;
            mem.data_mut(&mut store)[..len as usize].copy_from_slice(&memory);
            let fnv = instance
                .get_typed_func::<(i32, i32), i32>(&mut store, "fnv1a")
                .map_err(wt)?;
            let (ms, value) = time(rounds, || {
                fnv.call(&mut store, (len as i32, reps as i32)).map_err(wt)
            })?;
            println!("wasmtime {ms:.3} {}", value as u32);
        }
        other => return Err(format!("unknown kernel {other}")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("hb_beamr_bench_native: {why}");
            ExitCode::FAILURE
        }
    }
}
