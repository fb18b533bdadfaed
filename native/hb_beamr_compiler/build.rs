//! The compiler NIF links LLVM through `hb_beamr_aotc`; Debian keeps
//! libLLVM-19.so outside the loader's default path, so the NIF carries
//! LLVM's library directory as an rpath.

fn main() {
    if let Ok(libdir) = std::env::var("DEP_HB_WAMR_COMPILER_LIBDIR") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{libdir}");
    }
}
