//! The WAMR engine: process-wide initialisation, loading modules (with their
//! imports linked to hb_beamr's import trampoline) and reading their metadata.
//!
//! All `unsafe` calls into WAMR for modules live here; instances are in
//! `instance`.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Mutex;

use hb_wamr_sys as sys;
use once_cell::sync::Lazy;

use crate::imports::ImportDesc;
use crate::shared::Lease;
use hb_beamr_core::aot_tag;
use hb_beamr_core::errors::Error;
use hb_beamr_core::signature::FuncSig;
use hb_beamr_core::snapshot;

/// `start/2`'s mode: what the bytes are expected to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Wasm,
    Aot,
}

/// What kind of thing an import or export is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternKind {
    Func,
    Table,
    Memory,
    Global,
}

impl ExternKind {
    fn from_wamr(kind: u32) -> ExternKind {
        match kind {
            sys::WASM_IMPORT_EXPORT_KIND_TABLE => ExternKind::Table,
            sys::WASM_IMPORT_EXPORT_KIND_MEMORY => ExternKind::Memory,
            sys::WASM_IMPORT_EXPORT_KIND_GLOBAL => ExternKind::Global,
            _ => ExternKind::Func,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ImportInfo {
    pub kind: ExternKind,
    pub module: String,
    pub name: String,
    pub signature: String,
}

#[derive(Clone, Debug)]
pub struct ExportInfo {
    pub kind: ExternKind,
    pub name: String,
    pub signature: String,
}

static RUNTIME: Lazy<Result<(), Error>> = Lazy::new(|| {
    // SAFETY: process-wide one-time initialisation, guarded by the Lazy.
    unsafe {
        if !sys::wasm_runtime_init() {
            return Err(Error::RuntimeInit("wasm_runtime_init failed".into()));
        }
        sys::wasm_runtime_set_log_level(sys::WASM_LOG_LEVEL_FATAL);
    }
    Ok(())
});

/// WAMR's native-symbol table is one global, unsynchronised list: loading a
/// module and linking its imports must not interleave with another's.
static LINK_LOCK: Mutex<()> = Mutex::new(());

pub fn ensure_runtime() -> Result<(), Error> {
    RUNTIME.clone()
}

/// A loaded (not yet instantiated) module with its metadata. The byte buffer
/// and the import descriptors must outlive the WAMR module (WAMR keeps
/// pointers into both), so they are owned here and dropped after unload.
pub struct Module {
    raw: sys::wasm_module_t,
    pub imports: Vec<ImportInfo>,
    pub exports: Vec<ExportInfo>,
    /// Whether any import is served by the host (not natively).
    pub has_host_imports: bool,
    /// The name of the first exported table: the target of indirect calls.
    pub(crate) table_export: Option<CString>,
    /// Never resized after linking: WAMR holds pointers to its elements.
    import_descs: Box<[ImportDesc]>,
    _bytes: Vec<u8>,
    /// SHA-256 of the module's bytecode (for an AOT file, of the bytecode it
    /// was compiled from, when it says): what snapshots are checked against.
    pub fingerprint: [u8; 32],
    /// A metered module's counter (`hb_beamr_meter`): its global index.
    /// Set by whoever metered (or checked) the module, before sharing it.
    pub meter_global: Option<u32>,
}

// SAFETY: a Module is moved to the worker threads of its instances; WAMR
// allows a module to be loaded on one thread and instantiated and unloaded
// on another (nothing of it is thread-local).
unsafe impl Send for Module {}

// SAFETY: after `load` returns, nothing writes to a Module or to the WAMR
// module it owns, so instances on several threads may share one. hb_beamr's
// fields are never mutated once shared (the fingerprint is set before), and
// the import descriptors are immutable. What WAMR does with a module after
// loading, in this build (classic interpreter, AOT, no multi-module, no JIT,
// no debugger, no shared memory), read in its sources:
// * instantiation (`wasm_instantiate`, `aot_instantiate`) only reads the
//   module: memories, tables, globals, function and export instances, the
//   data/elem-dropped bitmaps and the AOT function-pointer table are
//   allocated per instance and filled from the module. The module's
//   instance list is only kept with the debugger or lazy JIT (not built);
// * imports are resolved once, at load (`wasm_runtime_resolve_symbols` in
//   `link`, under LINK_LOCK); instantiation only checks that they are
//   (`check_linked_symbol`) and copies the linked pointers into the
//   instance (`init_func_ptrs`);
// * the classic interpreter's loader rewrites opcodes and names in the
//   module's buffer during load only; at run time its block-address cache
//   is in the exec env;
// * AOT relocations are applied to the module's code at load;
// * `wasm_runtime_set_module_name` / `wasm_const_str_list_insert` at run
//   time would write the module's string list: hb_beamr never calls them;
// * hb_beamr's own WAMR hooks (start-function exec env, direct import
//   calls) are thread-local.
// hb_beamr_engine/tests/shared.rs and the EUnit module
// hb_beamr_shared_tests (also under ASan) run siblings on many threads.
unsafe impl Sync for Module {}

impl Module {
    pub(crate) fn raw(&self) -> sys::wasm_module_t {
        self.raw
    }

    /// Loads `bytes` as `mode`, checks what the bytes are before WAMR sees
    /// them, and links every function import to `native` (the import
    /// trampoline: see [`crate::load_module`]).
    ///
    /// `sha256`, when given, is the SHA-256 the caller already computed of
    /// the bytes it started from (`bytes` themselves, or the bytecode they
    /// were rewritten from): it becomes the fingerprint (for an AOT file
    /// that does not name its source), so the bytes are not hashed twice.
    pub(crate) fn load(
        mut bytes: Vec<u8>,
        mode: Mode,
        native: sys::NativeRawFn,
        sha256: Option<[u8; 32]>,
    ) -> Result<Module, Error> {
        ensure_runtime()?;
        check_package(&bytes, mode)?;
        let own = || sha256.unwrap_or_else(|| snapshot::fingerprint(&bytes));
        let fingerprint = match mode {
            Mode::Wasm => own(),
            Mode::Aot => aot_tag::source_fingerprint(&bytes).unwrap_or_else(own),
        };
        let size = u32::try_from(bytes.len())
            .map_err(|_| invalid(mode, "module larger than 4 GiB".to_string()))?;

        let _guard = LINK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut error_buf = [0 as c_char; 256];
        // SAFETY: `bytes` is writable, `size` long, and owned by the Module we
        // return (so it outlives the WAMR module); error_buf is 256 bytes.
        let raw = unsafe {
            sys::wasm_runtime_load(
                bytes.as_mut_ptr(),
                size,
                error_buf.as_mut_ptr(),
                error_buf.len() as u32,
            )
        };
        if raw.is_null() {
            return Err(invalid(
                mode,
                hb_beamr_core::c_text::from_buffer(&error_buf),
            ));
        }
        let mut module = Module {
            raw,
            imports: Vec::new(),
            exports: Vec::new(),
            has_host_imports: false,
            table_export: None,
            import_descs: Box::new([]),
            _bytes: bytes,
            fingerprint,
            meter_global: None,
        };
        module.read_exports();
        module.read_and_link_imports(native);
        Ok(module)
    }

    fn read_exports(&mut self) {
        // SAFETY: `self.raw` is a loaded module; indices are within the count.
        let count = unsafe { sys::wasm_runtime_get_export_count(self.raw) }.max(0);
        for index in 0..count {
            let mut export = sys::wasm_export_t {
                name: std::ptr::null(),
                kind: 0,
                type_ptr: std::ptr::null_mut(),
            };
            // SAFETY: as above; `export` is a valid out-pointer.
            unsafe { sys::wasm_runtime_get_export_type(self.raw, index, &mut export) };
            let name = c_str_to_string(export.name);
            let kind = ExternKind::from_wamr(export.kind);
            if kind == ExternKind::Table && self.table_export.is_none() {
                self.table_export = CString::new(name.clone()).ok();
            }
            // Exports hb_beamr_eh added for its host calls are not the module's.
            if name.starts_with(hb_beamr_core::eh_abi::EXPORT_PREFIX)
                || name == crate::imports::FUEL_EXPORT
            {
                continue;
            }
            self.exports.push(ExportInfo {
                kind,
                signature: extern_signature(kind, export.type_ptr),
                name,
            });
        }
    }

    /// Reads the imports and links each function import to the trampoline,
    /// with an attachment that says which import it is. WAMR resolves
    /// imports against its global native list, so the natives are
    /// registered, resolved and unregistered again under `LINK_LOCK`.
    fn read_and_link_imports(&mut self, native: sys::NativeRawFn) {
        // SAFETY: `self.raw` is a loaded module; indices are within the count.
        let count = unsafe { sys::wasm_runtime_get_import_count(self.raw) }.max(0);
        let mut by_module: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut descs: Vec<ImportDesc> = Vec::new();
        for index in 0..count {
            let mut import = sys::wasm_import_t {
                module_name: std::ptr::null(),
                name: std::ptr::null(),
                kind: 0,
                linked: false,
                type_ptr: std::ptr::null_mut(),
            };
            // SAFETY: as above; `import` is a valid out-pointer.
            unsafe { sys::wasm_runtime_get_import_type(self.raw, index, &mut import) };
            let kind = ExternKind::from_wamr(import.kind);
            let module = c_str_to_string(import.module_name);
            let name = c_str_to_string(import.name);
            let signature = extern_signature(kind, import.type_ptr);
            if kind == ExternKind::Func {
                let desc = ImportDesc::new(
                    module.clone(),
                    name.clone(),
                    func_sig(import.type_ptr as sys::wasm_func_type_t),
                );
                self.has_host_imports |= !desc.is_native();
                by_module
                    .entry(module.clone())
                    .or_default()
                    .push(descs.len());
                descs.push(desc);
            }
            // Imports hb_beamr_eh added are served here, not by the caller.
            // So is a metered module's out_of_fuel.
            if module == hb_beamr_core::eh_abi::MODULE
                || (module.as_str(), name.as_str()) == crate::imports::FUEL_IMPORT
            {
                continue;
            }
            self.imports.push(ImportInfo {
                kind,
                module,
                name,
                signature,
            });
        }
        self.import_descs = descs.into_boxed_slice();
        for (module_name, desc_indices) in by_module {
            self.link(&module_name, &desc_indices, native);
        }
    }

    fn link(&self, module_name: &str, desc_indices: &[usize], native: sys::NativeRawFn) {
        let Ok(module_c) = CString::new(module_name) else {
            return;
        };
        let names: Vec<CString> = desc_indices
            .iter()
            .filter_map(|i| CString::new(self.import_descs[*i].name.as_str()).ok())
            .collect();
        let mut symbols: Vec<sys::NativeSymbol> = desc_indices
            .iter()
            .zip(&names)
            .map(|(i, name)| sys::NativeSymbol {
                symbol: name.as_ptr(),
                func_ptr: native as *mut c_void,
                signature: std::ptr::null(),
                attachment: &self.import_descs[*i] as *const ImportDesc as *mut c_void,
            })
            .collect();
        // SAFETY: the module name, symbol names and the symbol array stay
        // alive until `unregister` below; each attachment points at a boxed
        // descriptor the Module owns for as long as WAMR's module exists.
        // LINK_LOCK is held by the caller, so no other load sees the list.
        unsafe {
            if sys::wasm_runtime_register_natives_raw(
                module_c.as_ptr(),
                symbols.as_mut_ptr(),
                symbols.len() as u32,
            ) {
                sys::wasm_runtime_resolve_symbols(self.raw);
                sys::wasm_runtime_unregister_natives(module_c.as_ptr(), symbols.as_mut_ptr());
            }
        }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: every instance of this module has been deinstantiated by
        // its owner before the module is dropped (the worker drops the
        // instance first); the module pointer is not used afterwards.
        unsafe { sys::wasm_runtime_unload(self.raw) };
    }
}

/// A module shared by instances: a lease on it in [`crate::MODULES`].
pub type SharedModule = Lease<Module>;

/// What an instance runs: a module of its own, or one shared with its
/// siblings. Either way the instance is deinstantiated before the module
/// (or the instance's lease on it) is dropped.
pub enum ModuleHold {
    Own(Module),
    Shared(SharedModule),
}

impl std::ops::Deref for ModuleHold {
    type Target = Module;
    fn deref(&self) -> &Module {
        match self {
            ModuleHold::Own(module) => module,
            ModuleHold::Shared(lease) => lease,
        }
    }
}

impl From<Module> for ModuleHold {
    fn from(module: Module) -> ModuleHold {
        ModuleHold::Own(module)
    }
}

impl From<SharedModule> for ModuleHold {
    fn from(lease: SharedModule) -> ModuleHold {
        ModuleHold::Shared(lease)
    }
}

/// Rejects bytes that are not what `mode` says, before WAMR parses them:
/// AOT files from another WAMR version get a clear error, not a crash.
fn check_package(bytes: &[u8], mode: Mode) -> Result<(), Error> {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    // SAFETY: WAMR only reads the first bytes, within `len`.
    let package = unsafe { sys::wasm_runtime_get_file_package_type(bytes.as_ptr(), len) };
    match (mode, package) {
        (Mode::Wasm, sys::WASM_MODULE_BYTECODE) => Ok(()),
        (Mode::Aot, sys::WASM_MODULE_AOT) => {
            // SAFETY: as above.
            let file = unsafe { sys::wasm_runtime_get_file_package_version(bytes.as_ptr(), len) };
            // SAFETY: a pure query.
            let ours =
                unsafe { sys::wasm_runtime_get_current_package_version(sys::WASM_MODULE_AOT) };
            if file != ours {
                return Err(Error::InvalidAot(format!(
                    "AOT file version {file} does not match this runtime's version {ours} \
                     (WAMR 2.4.3); recompile it with hb_beamr:compile/1"
                )));
            }
            // Files from hb_beamr:compile/2 say which CPU they need.
            match aot_tag::find(bytes).and_then(|tag| aot_tag::incompatibility(&tag)) {
                Some(why) => Err(Error::InvalidAot(why)),
                None => Ok(()),
            }
        }
        (Mode::Wasm, sys::WASM_MODULE_AOT) => Err(Error::InvalidWasm(
            "this is an AOT file: start it with mode aot".into(),
        )),
        (Mode::Aot, sys::WASM_MODULE_BYTECODE) => Err(Error::InvalidAot(
            "this is WebAssembly bytecode, not an AOT file: start it with mode wasm".into(),
        )),
        (Mode::Wasm, _) => Err(Error::InvalidWasm(
            "not a WebAssembly module (bad magic number)".into(),
        )),
        (Mode::Aot, _) => Err(Error::InvalidAot(
            "not a WAMR AOT file (bad magic number)".into(),
        )),
    }
}

fn invalid(mode: Mode, message: String) -> Error {
    match mode {
        Mode::Wasm => Error::InvalidWasm(message),
        Mode::Aot => Error::InvalidAot(message),
    }
}

/// The number-typed signature of a function type; `None` when a parameter
/// or result is a v128 or reference.
pub(crate) fn func_sig(func_type: sys::wasm_func_type_t) -> Option<FuncSig> {
    if func_type.is_null() {
        return None;
    }
    // SAFETY: `func_type` is a non-null type pointer WAMR gave us for a live
    // module; indices stay within the counts it reports.
    unsafe {
        let params = (0..sys::wasm_func_type_get_param_count(func_type))
            .map(|i| {
                crate::values::kind_from_wamr(sys::wasm_func_type_get_param_valkind(func_type, i))
            })
            .collect::<Option<Vec<_>>>()?;
        let results = (0..sys::wasm_func_type_get_result_count(func_type))
            .map(|i| {
                crate::values::kind_from_wamr(sys::wasm_func_type_get_result_valkind(func_type, i))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(FuncSig { params, results })
    }
}

/// The signature text of an import or export: `(ii)i` for functions, the
/// value type for globals, empty for memories and tables.
fn extern_signature(kind: ExternKind, type_ptr: *mut c_void) -> String {
    match kind {
        ExternKind::Func => func_sig(type_ptr as sys::wasm_func_type_t)
            .map(|s| s.encode())
            .unwrap_or_default(),
        ExternKind::Global if !type_ptr.is_null() => {
            // SAFETY: a non-null global type pointer from WAMR for a live module.
            let kind = unsafe { sys::wasm_global_type_get_valkind(type_ptr) };
            crate::values::kind_from_wamr(kind)
                .map(|k| hb_beamr_core::signature::kind_char(k).to_string())
                .unwrap_or_default()
        }
        _ => String::new(),
    }
}

pub(crate) fn c_str_to_string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: WAMR hands out NUL-terminated strings that live as long as the
    // module or instance they belong to; we copy at once.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    String::from_utf8_lossy(&name_from_wamr(bytes)).into_owned()
}

/// hb_beamr's WAMR build keeps a NUL in an import or export name as the
/// bytes C0 80 (never valid UTF-8; see hb_wamr_build's patches): the name as
/// the module spells it.
fn name_from_wamr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(&[0xC0, 0x80]) {
            out.push(0);
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// A name as hb_beamr's WAMR build keeps it (each NUL as C0 80), as a C
/// string for look-ups.
pub(crate) fn name_to_wamr(name: &str) -> CString {
    let mut out = Vec::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b == 0 {
            out.extend_from_slice(&[0xC0, 0x80]);
        } else {
            out.push(b);
        }
    }
    // No NUL is left in `out`.
    CString::new(out).unwrap_or_default()
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn nul_in_names_round_trips_through_wamrs_spelling() {
        let wamr = name_to_wamr("a\0b\0");
        assert_eq!(wamr.as_bytes(), b"a\xC0\x80b\xC0\x80");
        assert_eq!(name_from_wamr(wamr.as_bytes()), b"a\0b\0");
        assert_eq!(name_from_wamr("é".as_bytes()), "é".as_bytes());
    }
}
