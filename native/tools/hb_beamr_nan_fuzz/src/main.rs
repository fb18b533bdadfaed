//! Differential fuzzing of hb_beamr's deterministic floats (scripts/nan-fuzz.sh).
//!
//! `hb_beamr_nan_fuzz generate DIR COUNT SEED` writes, for each of COUNT
//! float-heavy modules (deterministic for a seed), `NNNNN.wasm` (the
//! wasm-smith module with NaN constants and result wrappers, see `wrap`)
//! and `NNNNN.det.wasm` (the same through `hb_beamr_nan::canonicalize`).
//! erlang/hb_beamr_nan_fuzz.erl then runs each in wasm mode, AOT for the
//! host CPU and AOT `generic`, and writes what it saw to `NNNNN.hb`.
//!
//! `hb_beamr_nan_fuzz wasmtime DIR` (built with `--features wasmtime`) runs
//! every `NNNNN.wasm` that has an `NNNNN.hb` under wasmtime with Cranelift's
//! NaN canonicalization and compares, bit for bit (`--no-canonicalization`:
//! without it, to show that the comparison sees NaN bits).

mod generate;
mod pools;
mod rng;
#[cfg(feature = "wasmtime")]
mod wasmtime_run;
mod wrap;

use std::path::Path;
use std::process::ExitCode;

fn generate(dir: &Path, count: usize, seed: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut rng = rng::Rng::new(seed);
    let (mut written, mut attempts) = (0usize, 0usize);
    while written < count && attempts < count * 20 {
        attempts += 1;
        let Some(module) =
            generate::smith(&mut rng).and_then(|(m, fuel)| wrap::prepare(&m, fuel, &mut rng))
        else {
            continue;
        };
        let canonical = hb_beamr_nan::canonicalize(&module)
            .map_err(|e| format!("module {written}: canonicalize failed: {e}"))?;
        let write = |name: String, bytes: &[u8]| {
            std::fs::write(dir.join(&name), bytes).map_err(|e| format!("{name}: {e}"))
        };
        write(format!("{written:05}.wasm"), &module)?;
        write(format!("{written:05}.det.wasm"), &canonical)?;
        written += 1;
    }
    println!(
        "hb_beamr_nan_fuzz: wrote {written} modules to {} ({attempts} attempts)",
        dir.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("generate") if args.len() == 5 => {
            let count = args[3].parse().unwrap_or(100);
            let seed = args[4].parse().unwrap_or(1);
            generate(Path::new(&args[2]), count, seed)
        }
        #[cfg(feature = "wasmtime")]
        Some("wasmtime") if args.len() == 3 => wasmtime_run::run(Path::new(&args[2]), true),
        #[cfg(feature = "wasmtime")]
        Some("wasmtime") if args.len() == 4 && args[3] == "--no-canonicalization" => {
            wasmtime_run::run(Path::new(&args[2]), false)
        }
        _ => Err(
            "usage: hb_beamr_nan_fuzz generate DIR COUNT SEED | wasmtime DIR [--no-canonicalization]"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("hb_beamr_nan_fuzz: {why}");
            ExitCode::FAILURE
        }
    }
}
