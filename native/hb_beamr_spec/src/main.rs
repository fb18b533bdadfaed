//! `hb_beamr_spec extract OUT_DIR`: writes the spec tests' modules and
//! `OUT_DIR/manifest.eterm`, the steps `erlang/hb_beamr_spec.erl` runs
//! through hb_beamr's Erlang API (see `scripts/spec.sh`).

mod extract;
mod features;
mod manifest;
mod suites;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, out] if cmd == "extract" => match run_extract(&PathBuf::from(out)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hb_beamr_spec: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: hb_beamr_spec extract OUT_DIR");
            ExitCode::from(2)
        }
    }
}

fn run_extract(out: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut manifests = Vec::new();
    for file in suites::files() {
        let manifest = extract::file(&file, out)
            .map_err(|e| format!("{}/{}: {e}", file.suite, file.name))?;
        manifests.push(manifest);
    }
    let path = out.join("manifest.eterm");
    std::fs::write(&path, manifest::to_erlang(&manifests))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("hb_beamr_spec: {} files -> {}", manifests.len(), path.display());
    Ok(())
}
