//! Builds WAMR 2.4.3 from the C sources carried by the `wamrx-sys` package,
//! with hb_beamr's own configuration (the one HyperBEAM's driver uses):
//! classic interpreter + AOT loader + memory64 + exception handling + tail
//! calls + bulk memory + reference types, software bounds checks, no WASI, no
//! SIMD. WAMR's CMake refuses exception handling together with AOT, so the
//! sources are compiled directly with the `cc` crate (see `hb_wamr_build`).

use std::env;
use std::path::PathBuf;

use hb_wamr_build::{Flavour, Wamr};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=c");
    let wamr = Wamr::locate();
    let quiet =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR")).join("c");
    let mut build = wamr.c_build(Flavour::Runtime, &quiet);
    build.flag_if_supported("-Wno-unused-parameter");
    build.file(quiet.join("hb_quiet.c"));
    build.file(quiet.join("hb_interrupt.c"));
    build.file(quiet.join("hb_tail_call.c"));
    build.file(quiet.join("hb_globals.c"));
    for src in wamr.runtime_sources(Flavour::Runtime) {
        build.file(src);
    }
    build.compile("hb_wamr");

    println!("cargo:rustc-link-lib=dylib=m");
    println!("cargo:rustc-link-lib=dylib=dl");
    println!("cargo:rustc-link-lib=dylib=pthread");
}
