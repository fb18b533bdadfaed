//! Builds WAMR 2.4.3 from the C sources carried by the `wamrx-sys` package,
//! with hb_beamr's own configuration (the one HyperBEAM's driver uses):
//! classic interpreter + AOT loader + memory64 + exception handling + tail
//! calls + bulk memory + reference types, software bounds checks, no WASI, no
//! SIMD. WAMR's CMake refuses exception handling together with AOT, so the
//! sources are compiled directly with the `cc` crate.
//!
//! The sources are never copied into this repository: they are located in
//! cargo's package cache (the exact version is pinned in Cargo.lock), or in
//! `HB_BEAMR_WAMR_DIR` when set (a `wasm-micro-runtime` checkout).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WAMRX_PACKAGE: &str = "wamrx-sys-0.3.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HB_BEAMR_WAMR_DIR");

    let root = wamr_root();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        panic!("hb_wamr_sys: only Linux is supported for now (target os: {os})");
    }

    let core = root.join("core");
    let iwasm = core.join("iwasm");
    let shared = core.join("shared");

    let mut build = cc::Build::new();
    build
        .warnings(false)
        .flag_if_supported("-std=gnu99")
        .flag_if_supported("-fno-strict-aliasing")
        .flag_if_supported("-ffunction-sections")
        .flag_if_supported("-fdata-sections")
        .flag_if_supported("-Wno-unused-parameter")
        .pic(true);

    for (name, value) in defines(&arch) {
        build.define(name, Some(value.as_str()));
    }

    for dir in [
        core.clone(),
        iwasm.join("include"),
        iwasm.join("common"),
        iwasm.join("interpreter"),
        iwasm.join("aot"),
        shared.join("include"),
        shared.join("platform/include"),
        shared.join("platform/linux"),
        shared.join("utils"),
        shared.join("mem-alloc"),
    ] {
        build.include(dir);
    }

    let mut sources: Vec<PathBuf> = Vec::new();
    sources.extend(c_files(&iwasm.join("common")));
    sources.push(iwasm.join("common/arch").join(invoke_native_asm(&arch)));
    sources.extend(
        ["wasm_loader.c", "wasm_runtime.c", "wasm_interp_classic.c"]
            .iter()
            .map(|f| iwasm.join("interpreter").join(f)),
    );
    sources.extend(
        ["aot_intrinsic.c", "aot_loader.c", "aot_runtime.c"]
            .iter()
            .map(|f| iwasm.join("aot").join(f)),
    );
    sources.push(iwasm.join("aot/arch").join(aot_reloc(&arch)));
    sources.extend(c_files(&shared.join("platform/linux")));
    sources.extend(
        [
            "posix_blocking_op.c",
            "posix_malloc.c",
            "posix_memmap.c",
            "posix_sleep.c",
            "posix_thread.c",
            "posix_time.c",
        ]
        .iter()
        .map(|f| shared.join("platform/common/posix").join(f)),
    );
    sources.extend(c_files(&shared.join("utils")));
    sources.extend(c_files(&shared.join("utils/uncommon")));
    sources.push(shared.join("mem-alloc/mem_alloc.c"));
    sources.extend(c_files(&shared.join("mem-alloc/ems")));

    for src in &sources {
        if !src.exists() {
            panic!("hb_wamr_sys: missing WAMR source {}", src.display());
        }
        build.file(src);
    }
    build.compile("hb_wamr");

    println!("cargo:rustc-link-lib=dylib=m");
    println!("cargo:rustc-link-lib=dylib=dl");
    println!("cargo:rustc-link-lib=dylib=pthread");
    // Lets a dependent crate (the AOT compiler) build against the same sources.
    println!("cargo:root={}", root.display());
}

/// The `WASM_ENABLE_*` configuration: what HyperBEAM's build of WAMR has.
fn defines(arch: &str) -> Vec<(&'static str, String)> {
    let on = |n: &'static str| (n, "1".to_string());
    let off = |n: &'static str| (n, "0".to_string());
    let mut d = vec![
        ("BH_MALLOC", "wasm_runtime_malloc".to_string()),
        ("BH_FREE", "wasm_runtime_free".to_string()),
        on("BH_PLATFORM_LINUX"),
        on("_GNU_SOURCE"),
        on("WASM_HAVE_MREMAP"),
        on("WASM_ENABLE_INTERP"),
        off("WASM_ENABLE_FAST_INTERP"),
        on("WASM_ENABLE_AOT"),
        off("WASM_ENABLE_JIT"),
        off("WASM_ENABLE_FAST_JIT"),
        on("WASM_ENABLE_QUICK_AOT_ENTRY"),
        on("WASM_ENABLE_AOT_INTRINSICS"),
        on("WASM_ENABLE_MEMORY64"),
        on("WASM_ENABLE_EXCE_HANDLING"),
        on("WASM_ENABLE_TAGS"),
        on("WASM_ENABLE_TAIL_CALL"),
        on("WASM_ENABLE_BULK_MEMORY"),
        // WAMR's CMake turns this on with bulk memory (memory.fill, memory.copy).
        on("WASM_ENABLE_BULK_MEMORY_OPT"),
        on("WASM_ENABLE_REF_TYPES"),
        off("WASM_ENABLE_SIMD"),
        off("WASM_ENABLE_GC"),
        off("WASM_ENABLE_SHARED_MEMORY"),
        off("WASM_ENABLE_MULTI_MODULE"),
        off("WASM_ENABLE_MINI_LOADER"),
        off("WASM_ENABLE_LIBC_BUILTIN"),
        off("WASM_ENABLE_LIBC_WASI"),
        off("WASM_ENABLE_THREAD_MGR"),
        // Software bounds checks: no SIGSEGV handlers inside the BEAM's process.
        on("WASM_DISABLE_HW_BOUND_CHECK"),
        on("WASM_DISABLE_STACK_HW_BOUND_CHECK"),
        off("WASM_DISABLE_WAKEUP_BLOCKING_OP"),
        // Quiet by default: errors come back to Erlang as values, not on stderr.
        off("BH_DEBUG"),
    ];
    match arch {
        "x86_64" => d.push(on("BUILD_TARGET_X86_64")),
        "aarch64" => {
            d.push(on("BUILD_TARGET_AARCH64"));
            d.push(("BUILD_TARGET", "\"AARCH64\"".to_string()));
        }
        other => panic!("hb_wamr_sys: unsupported target architecture {other}"),
    }
    d
}

fn invoke_native_asm(arch: &str) -> &'static str {
    match arch {
        "aarch64" => "invokeNative_aarch64.s",
        _ => "invokeNative_em64.s",
    }
}

fn aot_reloc(arch: &str) -> &'static str {
    match arch {
        "aarch64" => "aot_reloc_aarch64.c",
        _ => "aot_reloc_x86_64.c",
    }
}

fn c_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("hb_wamr_sys: cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "c"))
        .collect();
    files.sort();
    files
}

/// Finds the `wasm-micro-runtime` tree: `HB_BEAMR_WAMR_DIR`, or the
/// `wamrx-sys` package in cargo's cache (asking cargo to fetch it if needed).
fn wamr_root() -> PathBuf {
    if let Some(dir) = env::var_os("HB_BEAMR_WAMR_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("core/iwasm").is_dir(),
            "HB_BEAMR_WAMR_DIR={} is not a wasm-micro-runtime tree",
            dir.display()
        );
        return dir;
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let manifest = manifest_dir.join("Cargo.toml");
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .unwrap_or_else(|e| panic!("hb_wamr_sys: cannot run `{cargo} metadata`: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    let needle = format!("{WAMRX_PACKAGE}/Cargo.toml\"");
    let end = text.find(&needle).unwrap_or_else(|| {
        panic!(
            "hb_wamr_sys: the {WAMRX_PACKAGE} package is not in cargo's cache; run `cargo fetch` \
             (or set HB_BEAMR_WAMR_DIR). cargo metadata said: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let start = text[..end].rfind('"').map(|i| i + 1).unwrap_or(0);
    let package_dir = PathBuf::from(&text[start..end + WAMRX_PACKAGE.len()]);
    let root = package_dir.join("wasm-micro-runtime");
    assert!(
        root.join("core/iwasm").is_dir(),
        "hb_wamr_sys: no WAMR sources under {}",
        root.display()
    );
    root
}
