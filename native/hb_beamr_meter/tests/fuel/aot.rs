//! AOT files for the tests, from the `hb_beamr_aotc` command: it links its
//! own copy of WAMR's sources (the compiler's), which cannot share a test
//! binary with hb_beamr_engine's runtime, so it runs in another process.
//! The command is `$HB_BEAMR_AOTC`, or the workspace's
//! `target/release/hb_beamr_aotc` (built here when missing, which needs
//! LLVM 19: `cargo build --release -p hb_beamr_aotc`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The CPUs AOT code is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cpu {
    Host,
    Generic,
}

impl Cpu {
    pub fn name(self) -> &'static str {
        match self {
            Cpu::Host => "host",
            Cpu::Generic => "generic",
        }
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn command() -> &'static Path {
    static AOTC: OnceLock<PathBuf> = OnceLock::new();
    AOTC.get_or_init(|| {
        if let Some(path) = std::env::var_os("HB_BEAMR_AOTC") {
            return PathBuf::from(path);
        }
        let path = workspace().join("target/release/hb_beamr_aotc");
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--release", "-p", "hb_beamr_aotc"])
                .current_dir(workspace())
                .status()
                .expect("cargo");
            assert!(status.success(), "building hb_beamr_aotc failed");
        }
        path
    })
}

/// A scratch directory for this test process.
pub fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hb_beamr_meter_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Compiles `wasm` for `cpu` (`name` tells the files apart).
pub fn compile(wasm: &[u8], cpu: Cpu, name: &str) -> Result<Vec<u8>, String> {
    let dir = scratch();
    let input = dir.join(format!("{name}.wasm"));
    let output = dir.join(format!("{name}.{}.aot", cpu.name()));
    std::fs::write(&input, wasm).map_err(|e| e.to_string())?;
    let out = Command::new(command())
        .arg("compile")
        .args(["--cpu", cpu.name()])
        .arg(&input)
        .arg(&output)
        .output()
        .map_err(|e| format!("{}: {e}", command().display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let aot = std::fs::read(&output).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    aot
}
