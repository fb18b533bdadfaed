//! `hb_beamr_aotc`: compiles WebAssembly to a target-tagged WAMR AOT file,
//! as `hb_beamr:compile/2` does, without the BEAM. `scripts/cpu-check.sh`
//! runs it under an emulated CPU whose name and features disagree.
//!
//!   hb_beamr_aotc target [host|generic|CPU]   print the resolved target
//!   hb_beamr_aotc compile [--cpu host|generic|CPU] [--deterministic] [--metered] IN OUT
//!   hb_beamr_aotc compile-dir DIR   every N.wasm under DIR to N.aot (host),
//!                                   in one process; modules that do not
//!                                   compile are listed and left out

use std::process::ExitCode;

use hb_beamr_aotc::{compile, Cpu, Options, Target};

fn usage() -> ExitCode {
    eprintln!(
        "usage: hb_beamr_aotc target [host|generic|CPU]\n       \
         hb_beamr_aotc compile [--cpu host|generic|CPU] [--deterministic] [--metered] IN.wasm OUT.aot\n       \
         hb_beamr_aotc compile-dir DIR"
    );
    ExitCode::from(2)
}

fn parse_cpu(text: &str) -> Result<Cpu, String> {
    Cpu::parse(text).ok_or_else(|| format!("unknown CPU {text:?}"))
}

fn run(args: &[String]) -> Result<(), String> {
    match args {
        [cmd, rest @ ..] if cmd == "target" => {
            let cpu = parse_cpu(rest.first().map_or("host", String::as_str))?;
            let target = Target::resolve(&cpu).map_err(|e| e.to_string())?;
            println!(
                "arch={}\ncpu={}\nfeatures={}",
                target.arch, target.cpu, target.features
            );
            Ok(())
        }
        [cmd, rest @ ..] if cmd == "compile" => {
            let mut options = Options::default();
            let mut files = Vec::new();
            let mut it = rest.iter();
            while let Some(arg) = it.next() {
                match arg.as_str() {
                    "--cpu" => options.cpu = parse_cpu(it.next().ok_or("--cpu needs a value")?)?,
                    "--deterministic" => options.deterministic = true,
                    "--metered" => options.metered = true,
                    file => files.push(file),
                }
            }
            let [input, output] = files[..] else {
                return Err("compile needs IN.wasm and OUT.aot".into());
            };
            let wasm = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
            let compiled = compile(&wasm, &options).map_err(|e| format!("{input}: {e}"))?;
            std::fs::write(output, &compiled.aot).map_err(|e| format!("{output}: {e}"))
        }
        [cmd, dir] if cmd == "compile-dir" => compile_dir(std::path::Path::new(dir)),
        _ => Err(String::new()),
    }
}

/// The `.wasm` files under `dir`, in its subdirectories too.
fn wasm_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let (path, kind) = (entry.path(), entry.file_type());
        if kind.as_ref().is_ok_and(|k| k.is_dir()) {
            wasm_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "wasm") {
            out.push(path);
        }
    }
    Ok(())
}

fn compile_dir(dir: &std::path::Path) -> Result<(), String> {
    let mut inputs = Vec::new();
    wasm_files(dir, &mut inputs)?;
    inputs.sort();
    let (mut compiled, mut refused) = (0, 0);
    for input in inputs {
        let Ok(wasm) = std::fs::read(&input) else {
            continue;
        };
        match compile(&wasm, &Options::default()) {
            Ok(out) => {
                let output = input.with_extension("aot");
                std::fs::write(&output, &out.aot)
                    .map_err(|e| format!("{}: {e}", output.display()))?;
                compiled += 1;
            }
            Err(why) => {
                eprintln!("{}: {why}", input.display());
                refused += 1;
            }
        }
    }
    println!("compiled {compiled}, refused {refused}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) if why.is_empty() => usage(),
        Err(why) => {
            eprintln!("hb_beamr_aotc: {why}");
            ExitCode::FAILURE
        }
    }
}
