//! The C shim over WAMR's compiler and LLVM (`c/`), behind safe functions.
//! WAMR's compiler keeps its last error in a global, so compiles are
//! serialised here.

use std::ffi::{c_char, c_int, CStr, CString};
use std::fmt;
use std::sync::Mutex;

use hb_beamr_core::c_text;

#[repr(C)]
struct CompileOptions {
    opt_level: u32,
    size_level: u32,
    bounds_checks: c_int,
    target_arch: *const c_char,
    target_cpu: *const c_char,
    cpu_features: *const c_char,
    fuel_global: i64,
    charge_function: i64,
}

extern "C" {
    fn hb_beamr_aot_compile(
        wasm: *const u8,
        wasm_size: u32,
        options: *const CompileOptions,
        out: *mut *mut u8,
        out_size: *mut u32,
        err: *mut c_char,
        err_size: u32,
    ) -> c_int;
    fn hb_beamr_aot_free(aot: *mut u8);
    fn hb_beamr_cpu_is_valid(cpu: *const c_char) -> c_int;
    fn hb_beamr_init_targets();
    fn hb_beamr_cpu_features(cpu: *const c_char, out: *mut c_char, out_size: u32) -> c_int;
    fn hb_beamr_host_cpu(
        name: *mut c_char,
        name_size: u32,
        features: *mut c_char,
        features_size: u32,
    ) -> c_int;
    fn hb_beamr_last_target(
        cpu: *mut c_char,
        cpu_size: u32,
        features: *mut c_char,
        features_size: u32,
    );
}

/// Held for each compile and for reading what it compiled for.
static COMPILER: Mutex<()> = Mutex::new(());

const FEATURES_SIZE: usize = 8192;

/// What one compile is asked for; every field reaches LLVM as it is.
pub(crate) struct Request<'a> {
    pub opt_level: u32,
    pub size_level: u32,
    pub bounds_checks: bool,
    pub arch: &'a str,
    pub cpu: &'a str,
    pub features: &'a str,
    /// A metered module's fuel counter and the function that waits for fuel:
    /// the generated code keeps the counter in a register and lays the
    /// function's calls out of the way (hb_wamr_build's
    /// patch/fuel_register.rs).
    pub meter: Option<(u32, u32)>,
}

/// The host's CPU name and feature string, as LLVM reads them.
pub(crate) fn host_cpu() -> Option<(String, String)> {
    let mut name = [0 as c_char; 128];
    let mut features = [0 as c_char; FEATURES_SIZE];
    // SAFETY: both buffers are as large as the sizes passed; the shim
    // NUL-terminates what it writes.
    let ok = unsafe {
        hb_beamr_host_cpu(
            name.as_mut_ptr(),
            name.len() as u32,
            features.as_mut_ptr(),
            features.len() as u32,
        )
    };
    (ok != 0).then(|| (c_text::from_buffer(&name), c_text::from_buffer(&features)))
}

/// Whether LLVM knows `name` as a CPU of the host's architecture (and, on
/// x86-64, one that can run 64-bit code: others abort inside LLVM).
pub(crate) fn cpu_is_valid(name: &str) -> bool {
    let Ok(c_name) = CString::new(name) else {
        return false;
    };
    // SAFETY: a NUL-terminated name that the check only reads; the targets
    // are initialised first (idempotent).
    unsafe {
        hb_beamr_init_targets();
        hb_beamr_cpu_is_valid(c_name.as_ptr()) != 0
    }
}

/// The feature string LLVM gives a named CPU (`+a,+b,...`).
pub(crate) fn cpu_features(name: &str) -> Option<String> {
    let c_name = CString::new(name).ok()?;
    let mut features = [0 as c_char; FEATURES_SIZE];
    // SAFETY: a NUL-terminated name and a buffer of the size passed, which
    // the shim NUL-terminates; targets initialised first.
    let ok = unsafe {
        hb_beamr_init_targets();
        hb_beamr_cpu_features(
            c_name.as_ptr(),
            features.as_mut_ptr(),
            features.len() as u32,
        )
    };
    (ok != 0).then(|| c_text::from_buffer(&features))
}

/// Why [`compile`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CompileFailure {
    /// The module is 4 GiB or more: WAMR's compiler takes a 32-bit size.
    TooLarge,
    /// A target option holds a NUL byte, so C cannot be given it.
    NulInOption(String),
    /// WAMR's compiler refused the module, with its message.
    Wamr(String),
}

impl fmt::Display for CompileFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileFailure::TooLarge => f.write_str("module larger than 4 GiB"),
            CompileFailure::NulInOption(option) => write!(f, "NUL in target option {option:?}"),
            CompileFailure::Wamr(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CompileFailure {}

/// Compiles `wasm` as `request` says; on success also returns the (CPU,
/// feature string) LLVM's target machine was made with, read back from it.
pub(crate) fn compile(
    wasm: &[u8],
    request: &Request,
) -> Result<(Vec<u8>, (String, String)), CompileFailure> {
    let size = u32::try_from(wasm.len()).map_err(|_| CompileFailure::TooLarge)?;
    let text = |s: &str| CString::new(s).map_err(|_| CompileFailure::NulInOption(s.to_string()));
    let (arch, cpu, features) = (
        text(request.arch)?,
        text(request.cpu)?,
        text(request.features)?,
    );
    let options = CompileOptions {
        opt_level: request.opt_level,
        size_level: request.size_level,
        bounds_checks: c_int::from(request.bounds_checks),
        target_arch: arch.as_ptr(),
        target_cpu: cpu.as_ptr(),
        cpu_features: features.as_ptr(),
        fuel_global: request.meter.map_or(-1, |(global, _)| i64::from(global)),
        charge_function: request.meter.map_or(-1, |(_, charge)| i64::from(charge)),
    };
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut out_size: u32 = 0;
    let mut err = [0 as c_char; 512];
    let _guard = COMPILER.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: `wasm` is `size` bytes; `options` and the strings it points to
    // outlive the call; `out`, `out_size` and `err` are valid out-pointers
    // (err is 512 bytes). Calls are serialised by COMPILER.
    let ok = unsafe {
        hb_beamr_aot_compile(
            wasm.as_ptr(),
            size,
            &options,
            &mut out,
            &mut out_size,
            err.as_mut_ptr(),
            err.len() as u32,
        )
    };
    if ok == 0 || out.is_null() {
        // SAFETY: the shim NUL-terminates its message within `err`.
        let text = unsafe { CStr::from_ptr(err.as_ptr()) };
        return Err(CompileFailure::Wamr(text.to_string_lossy().into_owned()));
    }
    // SAFETY: on success the shim hands over `out_size` bytes at `out`,
    // which are copied, then freed with the matching function.
    let aot = unsafe {
        let bytes = std::slice::from_raw_parts(out, out_size as usize).to_vec();
        hb_beamr_aot_free(out);
        bytes
    };
    Ok((aot, last_target()))
}

/// The target of the last successful compile (the caller holds COMPILER).
fn last_target() -> (String, String) {
    let mut cpu = [0 as c_char; 128];
    let mut features = [0 as c_char; FEATURES_SIZE];
    // SAFETY: buffers of the sizes passed; the shim NUL-terminates them.
    unsafe {
        hb_beamr_last_target(
            cpu.as_mut_ptr(),
            cpu.len() as u32,
            features.as_mut_ptr(),
            features.len() as u32,
        )
    };
    (c_text::from_buffer(&cpu), c_text::from_buffer(&features))
}
