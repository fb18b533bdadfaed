//! The AOT compiler NIF, `hb_beamr_compiler_nif`: WebAssembly bytes to a
//! WAMR AOT file for hb_beamr's runtime. It is a library of its own, loaded
//! only when `hb_beamr:compile/1,2` is first used, so that the runtime needs
//! no LLVM. Compiling runs on a dirty CPU scheduler, one at a time (WAMR's
//! compiler keeps its last error in a global).

use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::Mutex;

use hb_beamr_core::aot_tag::{self, TargetTag};
use hb_beamr_core::c_text;
use hb_beamr_core::snapshot;
use hb_beamr_core::wasm_sections;
use hb_beamr_eh::Outcome;
use rustler::{Atom, Binary, Encoder, Env, OwnedBinary, Term};

mod atoms {
    rustler::atoms! {
        ok,
        error,
        host,
        generic,
        invalid_wasm,
        compile_failed,
        invalid_option,
        unchanged,
    }
}

#[repr(C)]
struct CompileOptions {
    opt_level: u32,
    size_level: u32,
    bounds_checks: c_int,
    target_arch: *const c_char,
    target_cpu: *const c_char,
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
}

static COMPILER: Mutex<()> = Mutex::new(());

/// Which CPU to generate code for.
enum Cpu {
    /// The machine compiling (fastest; the file is tagged with its features).
    Host,
    /// The baseline of the architecture: runs on any CPU of it.
    Generic,
    /// An LLVM CPU name of the host architecture (`skylake`, `znver3`, ...).
    Named(String),
}

impl Cpu {
    /// (LLVM arch, LLVM cpu) for WAMR's compiler; `None` means the host.
    fn target(&self) -> (Option<String>, Option<String>) {
        let arch = std::env::consts::ARCH;
        match self {
            Cpu::Host => (None, None),
            Cpu::Generic => match arch {
                "aarch64" => (Some("aarch64v8".into()), Some("generic".into())),
                _ => (Some(arch.into()), Some("x86-64".into())),
            },
            Cpu::Named(name) => (Some(arch.into()), Some(name.clone())),
        }
    }
}

fn host_cpu() -> (String, String) {
    let mut name = [0 as c_char; 128];
    let mut features = [0 as c_char; 8192];
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
    if ok == 0 {
        return (String::new(), String::new());
    }
    (c_text::from_buffer(&name), c_text::from_buffer(&features))
}

/// The features LLVM gives a named CPU.
fn named_cpu_features(name: &str) -> String {
    let Ok(c_name) = CString::new(name) else {
        return String::new();
    };
    let mut features = [0 as c_char; 8192];
    // SAFETY: a NUL-terminated name and a buffer of the size passed, which
    // the shim NUL-terminates.
    let ok = unsafe {
        hb_beamr_cpu_features(
            c_name.as_ptr(),
            features.as_mut_ptr(),
            features.len() as u32,
        )
    };
    if ok == 0 {
        return String::new();
    }
    c_text::from_buffer(&features)
}

/// The tag recorded in the output: what the code may assume of the CPU.
fn target_tag(cpu: &Cpu) -> TargetTag {
    let arch = std::env::consts::ARCH.to_string();
    match cpu {
        Cpu::Host => {
            let (name, features) = host_cpu();
            TargetTag {
                arch,
                cpu: name,
                features: TargetTag::enabled_features(&features),
            }
        }
        Cpu::Generic => TargetTag {
            arch,
            cpu: "generic".into(),
            features: Vec::new(),
        },
        Cpu::Named(name) => TargetTag {
            arch,
            cpu: name.clone(),
            features: TargetTag::enabled_features(&named_cpu_features(name)),
        },
    }
}

fn compile_bytes(
    wasm: &[u8],
    opt_level: u32,
    size_level: u32,
    bounds_checks: bool,
    cpu: &Cpu,
) -> Result<Vec<u8>, String> {
    let size = u32::try_from(wasm.len()).map_err(|_| "module larger than 4 GiB".to_string())?;
    let (arch, cpu_name) = cpu.target();
    let arch = arch
        .map(CString::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let cpu_name = cpu_name
        .map(CString::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let options = CompileOptions {
        opt_level,
        size_level,
        bounds_checks: c_int::from(bounds_checks),
        target_arch: arch.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
        target_cpu: cpu_name.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
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
        return Err(text.to_string_lossy().into_owned());
    }
    // SAFETY: on success the shim hands over `out_size` bytes at `out`,
    // which are copied, then freed with the matching function.
    let aot = unsafe {
        let bytes = std::slice::from_raw_parts(out, out_size as usize).to_vec();
        hb_beamr_aot_free(out);
        bytes
    };
    Ok(aot)
}

fn decode_cpu(term: Term) -> Option<Cpu> {
    if let Ok(atom) = term.decode::<Atom>() {
        if atom == atoms::host() {
            return Some(Cpu::Host);
        }
        if atom == atoms::generic() {
            return Some(Cpu::Generic);
        }
        return None;
    }
    let name: String = term.decode().ok()?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !valid {
        return None;
    }
    let c_name = CString::new(name.as_str()).ok()?;
    // SAFETY: a NUL-terminated name; the check only reads it. LLVM's target
    // registry is initialised by the shim's first compile or here.
    let known = unsafe {
        hb_beamr_init_targets();
        hb_beamr_cpu_is_valid(c_name.as_ptr())
    };
    (known != 0).then_some(Cpu::Named(name))
}

/// WAMR's AOT compiler has no exception handling: a module that uses it is
/// rewritten into host calls first (`hb_beamr_eh`). `None`: compile the
/// module as it is.
fn lower_exceptions(wasm: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if !wasm_sections::uses_exception_handling(wasm) {
        return Ok(None);
    }
    match hb_beamr_eh::rewrite(wasm) {
        Ok(Outcome::Unchanged) => Ok(None),
        Ok(Outcome::Rewritten(bytes)) => Ok(Some(bytes)),
        Err(why) => Err(format!(
            "the module's exception handling cannot be compiled to AOT ({why}): \
             run it as bytecode (start(Wasm, wasm))"
        )),
    }
}

/// `rewrite_eh(Wasm)` → `{ok, Rewritten}` | `unchanged` |
/// `{error, {compile_failed, Why}}`: the rewriting `compile` applies, for
/// tests that run the rewritten module as bytecode too.
#[rustler::nif(schedule = "DirtyCpu")]
fn rewrite_eh<'a>(env: Env<'a>, wasm: Binary<'a>) -> Term<'a> {
    match hb_beamr_eh::rewrite(wasm.as_slice()) {
        Ok(Outcome::Unchanged) => atoms::unchanged().encode(env),
        Ok(Outcome::Rewritten(bytes)) => {
            let mut binary = OwnedBinary::new(bytes.len());
            binary.as_mut_slice().copy_from_slice(&bytes);
            (atoms::ok(), binary.release(env)).encode(env)
        }
        Err(why) => (atoms::error(), (atoms::compile_failed(), why.to_string())).encode(env),
    }
}

/// `compile(Wasm, OptLevel, SizeLevel, BoundsChecks, TargetCpu,
/// Deterministic)` → `{ok, Aot}` | `{error, Reason}`. The Erlang side checks
/// the options. `Deterministic` canonicalizes NaNs first (`hb_beamr_nan`)
/// and marks the output so (`aot_tag::mark_deterministic`).
#[rustler::nif(schedule = "DirtyCpu")]
fn compile<'a>(
    env: Env<'a>,
    wasm: Binary<'a>,
    opt_level: u32,
    size_level: u32,
    bounds_checks: bool,
    target_cpu: Term<'a>,
    deterministic: bool,
) -> Term<'a> {
    if !wasm.as_slice().starts_with(b"\0asm") {
        return (
            atoms::error(),
            (
                atoms::invalid_wasm(),
                "not a WebAssembly module (bad magic number)",
            ),
        )
            .encode(env);
    }
    let Some(cpu) = decode_cpu(target_cpu) else {
        return (atoms::error(), (atoms::invalid_option(), target_cpu)).encode(env);
    };
    // Exception handling first (WAMR's compiler has none), then NaNs.
    let lowered = match lower_exceptions(wasm.as_slice()) {
        Ok(lowered) => lowered,
        Err(why) => return (atoms::error(), (atoms::compile_failed(), why.as_str())).encode(env),
    };
    let input = lowered.as_deref().unwrap_or(wasm.as_slice());
    let canonical = match deterministic.then(|| hb_beamr_nan::canonicalize(input)) {
        Some(Err(why)) => {
            return (atoms::error(), (atoms::invalid_wasm(), why.to_string())).encode(env)
        }
        Some(Ok(canonical)) => Some(canonical),
        None => None,
    };
    let input = canonical.as_deref().unwrap_or(input);
    match compile_bytes(input, opt_level, size_level, bounds_checks, &cpu) {
        Ok(mut aot) => {
            aot_tag::append(&mut aot, &target_tag(&cpu));
            // Snapshots of the bytecode restore into this code and back.
            aot_tag::mark_source(&mut aot, &snapshot::fingerprint(wasm.as_slice()));
            if deterministic {
                aot_tag::mark_deterministic(&mut aot);
            }
            let mut binary = OwnedBinary::new(aot.len());
            binary.as_mut_slice().copy_from_slice(&aot);
            (atoms::ok(), binary.release(env)).encode(env)
        }
        Err(text) => (atoms::error(), (atoms::compile_failed(), text.as_str())).encode(env),
    }
}

rustler::init!("hb_beamr_compiler_nif");
