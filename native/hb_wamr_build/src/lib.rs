//! Build-time helper shared by hb_beamr's two WAMR builds: the runtime
//! (`hb_wamr_sys`) and the AOT compiler (`hb_beamr_compiler`). Both compile
//! WAMR from the sources in the `wamrx-sys` package, located through
//! `cargo metadata` (or `HB_BEAMR_WAMR_DIR`), never copied into the repo.
//! Those sources (their `core/`) are WAMR's main branch as of upstream
//! commit e830d9f43 (2026-06-30), which still calls itself 2.4.3 but holds
//! the security fixes of 2.4.4 and 2.4.5 that apply to hb_beamr's builds
//! (see [`patch::FIXED`]).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

mod flavour;
pub mod patch;

pub use flavour::Flavour;

const WAMRX_PACKAGE: &str = "wamrx-sys-0.3.0";

/// The WAMR tree, its directories and the target it is built for.
pub struct Wamr {
    pub root: PathBuf,
    pub arch: String,
}

impl Wamr {
    /// Finds the sources and checks the target.
    pub fn locate() -> Wamr {
        println!("cargo:rerun-if-env-changed=HB_BEAMR_WAMR_DIR");
        let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
        if os != "linux" {
            panic!("hb_beamr: only Linux is supported for now (target os: {os})");
        }
        Wamr {
            root: wamr_root(),
            arch: env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default(),
        }
    }

    fn core(&self) -> PathBuf {
        self.root.join("core")
    }

    fn iwasm(&self) -> PathBuf {
        self.core().join("iwasm")
    }

    fn shared(&self) -> PathBuf {
        self.core().join("shared")
    }

    /// A `cc::Build` with WAMR's include directories and `flavour`'s defines,
    /// console output routed to `quiet_dir/hb_quiet.c` (which it compiles).
    pub fn c_build(&self, flavour: Flavour, quiet_dir: &Path) -> cc::Build {
        let mut build = cc::Build::new();
        build
            .warnings(false)
            .flag_if_supported("-std=gnu99")
            .flag_if_supported("-fno-strict-aliasing")
            .flag_if_supported("-ffunction-sections")
            .flag_if_supported("-fdata-sections")
            .pic(true);
        self.configure(&mut build, flavour, quiet_dir);
        build
    }

    /// Include directories and defines, for C and C++ builds alike.
    pub fn configure(&self, build: &mut cc::Build, flavour: Flavour, quiet_dir: &Path) {
        for (name, value) in defines(&self.arch, flavour) {
            build.define(name, Some(value.as_str()));
        }
        build
            .define("BH_VPRINTF", Some("hb_beamr_wamr_vprintf"))
            .flag("-include")
            .flag(quiet_dir.join("hb_quiet.h").to_string_lossy().as_ref());
        for dir in self.include_dirs() {
            build.include(dir);
        }
    }

    fn include_dirs(&self) -> Vec<PathBuf> {
        let (core, iwasm, shared) = (self.core(), self.iwasm(), self.shared());
        vec![
            core,
            iwasm.join("include"),
            iwasm.join("common"),
            iwasm.join("interpreter"),
            iwasm.join("aot"),
            iwasm.join("compilation"),
            iwasm.join("libraries/thread-mgr"),
            shared.join("include"),
            shared.join("platform/include"),
            shared.join("platform/linux"),
            shared.join("utils"),
            shared.join("mem-alloc"),
        ]
    }

    /// The C sources of the runtime: common, classic interpreter, AOT
    /// loader, platform, utilities, allocator.
    pub fn runtime_sources(&self, flavour: Flavour) -> Vec<PathBuf> {
        let (iwasm, shared) = (self.iwasm(), self.shared());
        let mut sources: Vec<PathBuf> = Vec::new();
        sources.extend(c_files(&iwasm.join("common"), "c"));
        sources.push(
            iwasm
                .join("common/arch")
                .join(invoke_native_asm(&self.arch)),
        );
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
        let reloc = match flavour {
            // The compiler never relocates: WAMR's own wamrc uses the dummy.
            Flavour::Compiler => "aot_reloc_dummy.c",
            Flavour::Runtime => aot_reloc(&self.arch),
        };
        sources.push(iwasm.join("aot/arch").join(reloc));
        if flavour == Flavour::Runtime {
            // Lets another thread terminate a running call (timeouts, stop).
            sources.push(iwasm.join("libraries/thread-mgr/thread_manager.c"));
        }
        sources.extend(c_files(&shared.join("platform/linux"), "c"));
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
        sources.extend(c_files(&shared.join("utils"), "c"));
        sources.extend(c_files(&shared.join("utils/uncommon"), "c"));
        sources.push(shared.join("mem-alloc/mem_alloc.c"));
        sources.extend(c_files(&shared.join("mem-alloc/ems"), "c"));
        check_exist(&sources);
        self.patched(sources, flavour)
    }

    /// The AOT compiler's own sources (LLVM-based): C, then C++.
    pub fn compiler_sources(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let compilation = self.iwasm().join("compilation");
        let mut c = c_files(&compilation, "c");
        c.extend(c_files(&compilation.join("simd"), "c"));
        let cpp = c_files(&compilation, "cpp");
        check_exist(&c);
        check_exist(&cpp);
        (
            self.patched(c, Flavour::Compiler),
            self.patched(cpp, Flavour::Compiler),
        )
    }

    /// `sources` with each file hb_beamr patches (see [`patch`]) replaced
    /// by its patched copy in `OUT_DIR`.
    fn patched(&self, sources: Vec<PathBuf>, flavour: Flavour) -> Vec<PathBuf> {
        let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
        let patched = patch::apply(&self.root, &out_dir, flavour);
        sources
            .into_iter()
            .map(|src| patched.get(&src).cloned().unwrap_or(src))
            .collect()
    }
}

fn check_exist(sources: &[PathBuf]) {
    for src in sources {
        if !src.exists() {
            panic!("hb_beamr: missing WAMR source {}", src.display());
        }
    }
}

/// The `WASM_ENABLE_*` configuration: what HyperBEAM's build of WAMR has.
/// The compiler parses modules with the same features, except exception
/// handling, which WAMR's AOT compiler does not support: such modules are
/// refused when compiling, with the loader's words.
fn defines(arch: &str, flavour: Flavour) -> Vec<(&'static str, String)> {
    let on = |n: &'static str| (n, "1".to_string());
    let off = |n: &'static str| (n, "0".to_string());
    let flag = |n: &'static str, v: bool| (n, if v { "1" } else { "0" }.to_string());
    let runtime = flavour == Flavour::Runtime;
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
        off("WASM_ENABLE_LAZY_JIT"),
        flag("WASM_ENABLE_WAMR_COMPILER", !runtime),
        on("WASM_ENABLE_QUICK_AOT_ENTRY"),
        on("WASM_ENABLE_AOT_INTRINSICS"),
        on("WASM_ENABLE_MEMORY64"),
        flag("WASM_ENABLE_EXCE_HANDLING", runtime),
        flag("WASM_ENABLE_TAGS", runtime),
        on("WASM_ENABLE_TAIL_CALL"),
        on("WASM_ENABLE_BULK_MEMORY"),
        // WAMR's CMake turns this on with bulk memory (memory.fill, memory.copy).
        on("WASM_ENABLE_BULK_MEMORY_OPT"),
        on("WASM_ENABLE_REF_TYPES"),
        // WAMR's CMake turns this on with reference types: without it the
        // interpreter ignores call_indirect's table index (always table 0).
        on("WASM_ENABLE_CALL_INDIRECT_OVERLONG"),
        // WAMR shrinks the memory of a module that exports __heap_base and
        // never grows its memory to that heap base: loads past it trap where
        // the spec says they succeed (spec test memory.wast).
        off("WASM_ENABLE_SHRUNK_MEMORY"),
        off("WASM_ENABLE_SIMD"),
        off("WASM_ENABLE_GC"),
        off("WASM_ENABLE_SHARED_MEMORY"),
        off("WASM_ENABLE_MULTI_MODULE"),
        off("WASM_ENABLE_MINI_LOADER"),
        off("WASM_ENABLE_LIBC_BUILTIN"),
        off("WASM_ENABLE_LIBC_WASI"),
        // The thread manager is what lets another thread stop a running
        // call (`wasm_runtime_terminate`): timeouts and `stop/1`.
        flag("WASM_ENABLE_THREAD_MGR", runtime),
        // Software bounds checks: no SIGSEGV handlers inside the BEAM's process.
        on("WASM_DISABLE_HW_BOUND_CHECK"),
        on("WASM_DISABLE_STACK_HW_BOUND_CHECK"),
        off("WASM_DISABLE_WAKEUP_BLOCKING_OP"),
        off("BH_DEBUG"),
    ];
    match arch {
        "x86_64" => d.push(on("BUILD_TARGET_X86_64")),
        "aarch64" => {
            d.push(on("BUILD_TARGET_AARCH64"));
            d.push(("BUILD_TARGET", "\"AARCH64\"".to_string()));
        }
        other => panic!("hb_beamr: unsupported target architecture {other}"),
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

fn c_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("hb_beamr: cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == extension))
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
        .unwrap_or_else(|e| panic!("hb_beamr: cannot run `{cargo} metadata`: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    let needle = format!("{WAMRX_PACKAGE}/Cargo.toml\"");
    let end = text.find(&needle).unwrap_or_else(|| {
        panic!(
            "hb_beamr: the {WAMRX_PACKAGE} package is not in cargo's cache; run `cargo fetch` \
             (or set HB_BEAMR_WAMR_DIR). cargo metadata said: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let start = text[..end].rfind('"').map(|i| i + 1).unwrap_or(0);
    let package_dir = PathBuf::from(&text[start..end + WAMRX_PACKAGE.len()]);
    let root = package_dir.join("wasm-micro-runtime");
    assert!(
        root.join("core/iwasm").is_dir(),
        "hb_beamr: no WAMR sources under {}",
        root.display()
    );
    root
}
