//! hb_beamr's spec-test runs (see `scripts/spec.sh`):
//!
//! - `hb_beamr_spec extract OUT_DIR`: writes the spec tests' modules and
//!   `OUT_DIR/manifest.eterm`, the steps `erlang/hb_beamr_spec.erl` runs
//!   through hb_beamr's Erlang API;
//! - `hb_beamr_spec run OUT_DIR OUT.md MODE...`: the same steps through
//!   the engine crate, bit-exact (AOT mode needs the `.aot` files the Erlang
//!   runner compiled into OUT_DIR); exits 1 on a failure.

mod extract;
mod features;
mod manifest;
mod report;
mod run;
mod suites;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, out] if cmd == "extract" => match run_extract(&PathBuf::from(out)) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hb_beamr_spec: {e}");
                ExitCode::FAILURE
            }
        },
        [cmd, out, md, modes @ ..] if cmd == "run" && !modes.is_empty() => {
            match run_engine(&PathBuf::from(out), &PathBuf::from(md), modes) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("hb_beamr_spec: {e}");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!("usage: hb_beamr_spec extract OUT_DIR | run OUT_DIR OUT.md wasm|aot...");
            ExitCode::from(2)
        }
    }
}

/// Runs every file in each of `modes`; whether nothing failed.
fn run_engine(
    out: &std::path::Path,
    md: &std::path::Path,
    modes: &[String],
) -> Result<bool, String> {
    let manifests = run_extract(out)?;
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    let mut names = Vec::new();
    for mode in modes {
        let mode = match mode.as_str() {
            "wasm" => hb_beamr_engine::Mode::Wasm,
            "aot" => hb_beamr_engine::Mode::Aot,
            other => return Err(format!("unknown mode {other}")),
        };
        names.push(run::mode_name(mode));
        eprintln!("spec (engine): {} mode...", run::mode_name(mode));
        results.extend(manifests.iter().map(|m| run::file(out, m, mode)));
    }
    let text = report::markdown(&results, &names, started.elapsed().as_secs_f64());
    print!("{text}");
    std::fs::write(md, &text).map_err(|e| format!("{}: {e}", md.display()))?;
    Ok(results.iter().all(|r| r.failed == 0))
}

fn run_extract(out: &std::path::Path) -> Result<Vec<manifest::FileManifest>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut manifests = Vec::new();
    for file in suites::files() {
        let manifest =
            extract::file(&file, out).map_err(|e| format!("{}/{}: {e}", file.suite, file.name))?;
        manifests.push(manifest);
    }
    let path = out.join("manifest.eterm");
    std::fs::write(&path, manifest::to_erlang(&manifests))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "hb_beamr_spec: {} files -> {}",
        manifests.len(),
        path.display()
    );
    Ok(manifests)
}
