//! Builds WAMR 2.4.3's AOT compiler (`core/iwasm/compilation`) against LLVM
//! 19, with the same module features as hb_beamr's runtime, plus the small
//! C shim in `c/`. LLVM comes from `llvm-config` (`LLVM_CONFIG`, else
//! `llvm-config-19`, else `llvm-config`). LLVM's library directory is
//! passed on to dependents (`DEP_HB_WAMR_COMPILER_LIBDIR`), which need it
//! as an rpath too.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use hb_wamr_build::{Flavour, Wamr};

fn llvm_config(args: &[&str]) -> String {
    let candidates: Vec<String> = match env::var("LLVM_CONFIG") {
        Ok(path) => vec![path],
        Err(_) => vec!["llvm-config-19".into(), "llvm-config".into()],
    };
    for tool in &candidates {
        if let Ok(out) = Command::new(tool).args(args).output() {
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
        }
    }
    panic!(
        "hb_beamr_compiler: llvm-config not found (tried {candidates:?}); install llvm-19-dev \
         or set LLVM_CONFIG"
    );
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=c");
    println!("cargo:rerun-if-env-changed=LLVM_CONFIG");
    let wamr = Wamr::locate();
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let quiet = manifest.join("../hb_wamr_sys/c");
    let shim = manifest.join("c");

    let version = llvm_config(&["--version"]);
    if !version.starts_with("19.") {
        println!("cargo:warning=hb_beamr_compiler is tested with LLVM 19; found {version}");
    }
    let cflags = llvm_config(&["--cflags"]);
    let cxxflags = llvm_config(&["--cxxflags"]);
    let libdir = llvm_config(&["--libdir"]);
    let libs = llvm_config(&["--libs", "--link-shared"]);

    let mut c = wamr.c_build(Flavour::Compiler, &quiet);
    for flag in cflags.split_whitespace() {
        c.flag(flag);
    }
    c.include(&shim);
    c.file(quiet.join("hb_quiet.c"));
    c.file(shim.join("hb_compile.c"));
    c.file(shim.join("hb_comp_target.c"));
    for src in wamr.runtime_sources(Flavour::Compiler) {
        c.file(src);
    }
    let (compiler_c, compiler_cpp) = wamr.compiler_sources();
    for src in compiler_c {
        c.file(src);
    }
    c.compile("hb_wamr_compiler");

    let mut cpp = cc::Build::new();
    cpp.cpp(true).warnings(false).pic(true);
    wamr.configure(&mut cpp, Flavour::Compiler, &quiet);
    for flag in cxxflags.split_whitespace() {
        cpp.flag(flag);
    }
    cpp.flag("-fno-rtti");
    for src in compiler_cpp {
        cpp.file(src);
    }
    cpp.file(shim.join("hb_cpu_check.cpp"));
    cpp.compile("hb_wamr_compiler_cpp");

    println!("cargo:rustc-link-search=native={libdir}");
    for lib in libs.split_whitespace() {
        if let Some(name) = lib.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={name}");
        }
    }
    // Debian keeps libLLVM-19.so outside the loader's default path.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{libdir}");
    println!("cargo:libdir={libdir}");
    println!("cargo:rustc-link-lib=dylib=m");
    println!("cargo:rustc-link-lib=dylib=dl");
    println!("cargo:rustc-link-lib=dylib=pthread");
}
