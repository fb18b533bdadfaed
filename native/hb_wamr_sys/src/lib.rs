//! Raw bindings to the slice of WAMR's embedding API (`wasm_export.h`,
//! `lib_export.h`, WAMR 2.4.3) that hb_beamr uses, and the static WAMR
//! library built by `build.rs` with hb_beamr's configuration.
//!
//! Everything here is `unsafe` C API; the safe wrappers live in the
//! `hb_beamr_nif` crate's `engine` module.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};

/// Opaque WAMR handles.
#[repr(C)]
pub struct WASMModuleCommon {
    _private: [u8; 0],
}
#[repr(C)]
pub struct WASMModuleInstanceCommon {
    _private: [u8; 0],
}
#[repr(C)]
pub struct WASMExecEnv {
    _private: [u8; 0],
}
#[repr(C)]
pub struct WASMMemoryInstance {
    _private: [u8; 0],
}
#[repr(C)]
pub struct InstantiationArgs2 {
    _private: [u8; 0],
}
#[repr(C)]
pub struct WASMFuncType {
    _private: [u8; 0],
}

pub type wasm_module_t = *mut WASMModuleCommon;
pub type wasm_module_inst_t = *mut WASMModuleInstanceCommon;
pub type wasm_exec_env_t = *mut WASMExecEnv;
pub type wasm_memory_inst_t = *mut WASMMemoryInstance;
pub type wasm_function_inst_t = *mut c_void;
pub type wasm_func_type_t = *mut WASMFuncType;
pub type wasm_valkind_t = u8;

pub const WASM_I32: wasm_valkind_t = 0;
pub const WASM_I64: wasm_valkind_t = 1;
pub const WASM_F32: wasm_valkind_t = 2;
pub const WASM_F64: wasm_valkind_t = 3;
pub const WASM_V128: wasm_valkind_t = 4;
pub const WASM_EXTERNREF: wasm_valkind_t = 128;
pub const WASM_FUNCREF: wasm_valkind_t = 129;

/// `wasm_import_export_kind_t`
pub const WASM_IMPORT_EXPORT_KIND_FUNC: u32 = 0;
pub const WASM_IMPORT_EXPORT_KIND_TABLE: u32 = 1;
pub const WASM_IMPORT_EXPORT_KIND_MEMORY: u32 = 2;
pub const WASM_IMPORT_EXPORT_KIND_GLOBAL: u32 = 3;

/// `package_type_t`
pub const WASM_MODULE_BYTECODE: u32 = 0;
pub const WASM_MODULE_AOT: u32 = 1;
pub const PACKAGE_TYPE_UNKNOWN: u32 = 0xFFFF;

/// `log_level_t`
pub const WASM_LOG_LEVEL_FATAL: u32 = 0;
pub const WASM_LOG_LEVEL_ERROR: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy)]
pub union wasm_val_of {
    pub i32: i32,
    pub i64: i64,
    pub f32: f32,
    pub f64: f64,
    pub foreign: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct wasm_val_t {
    pub kind: wasm_valkind_t,
    pub _paddings: [u8; 7],
    pub of: wasm_val_of,
}

impl Default for wasm_val_t {
    fn default() -> Self {
        wasm_val_t {
            kind: WASM_I32,
            _paddings: [0; 7],
            of: wasm_val_of { i64: 0 },
        }
    }
}

/// The type union of `wasm_import_t` / `wasm_export_t`: all members are pointers.
pub type wasm_extern_type_ptr = *mut c_void;

#[repr(C)]
pub struct wasm_import_t {
    pub module_name: *const c_char,
    pub name: *const c_char,
    pub kind: u32,
    pub linked: bool,
    pub type_ptr: wasm_extern_type_ptr,
}

#[repr(C)]
pub struct wasm_export_t {
    pub name: *const c_char,
    pub kind: u32,
    pub type_ptr: wasm_extern_type_ptr,
}

#[repr(C)]
pub struct wasm_table_inst_t {
    pub elem_kind: wasm_valkind_t,
    pub cur_size: u32,
    pub max_size: u32,
    pub elems: *mut c_void,
}

impl Default for wasm_table_inst_t {
    fn default() -> Self {
        wasm_table_inst_t {
            elem_kind: 0,
            cur_size: 0,
            max_size: 0,
            elems: std::ptr::null_mut(),
        }
    }
}

#[repr(C)]
pub struct NativeSymbol {
    pub symbol: *const c_char,
    pub func_ptr: *mut c_void,
    pub signature: *const c_char,
    pub attachment: *mut c_void,
}

/// A native function in WAMR's "raw" calling convention: every argument in
/// its own 64-bit slot, the result written back into slot 0.
/// See [`hb_beamr_set_instantiation_hook`].
pub type InstantiationHook = unsafe extern "C" fn(
    ctx: *mut std::ffi::c_void,
    exec_env: wasm_exec_env_t,
    module_inst: wasm_module_inst_t,
);

pub type NativeRawFn = unsafe extern "C" fn(exec_env: wasm_exec_env_t, args: *mut u64);

extern "C" {
    pub fn wasm_runtime_init() -> bool;
    pub fn wasm_runtime_set_log_level(level: u32);
    pub fn wasm_runtime_init_thread_env() -> bool;
    pub fn wasm_runtime_destroy_thread_env();

    pub fn wasm_runtime_get_file_package_type(buf: *const u8, size: u32) -> u32;
    pub fn wasm_runtime_get_file_package_version(buf: *const u8, size: u32) -> u32;
    pub fn wasm_runtime_get_current_package_version(package_type: u32) -> u32;

    pub fn wasm_runtime_load(
        buf: *mut u8,
        size: u32,
        error_buf: *mut c_char,
        error_buf_size: u32,
    ) -> wasm_module_t;
    pub fn wasm_runtime_unload(module: wasm_module_t);
    pub fn wasm_runtime_get_module_package_type(module: wasm_module_t) -> u32;
    pub fn wasm_runtime_resolve_symbols(module: wasm_module_t) -> bool;
    pub fn wasm_runtime_register_natives_raw(
        module_name: *const c_char,
        native_symbols: *mut NativeSymbol,
        n_native_symbols: u32,
    ) -> bool;
    pub fn wasm_runtime_unregister_natives(
        module_name: *const c_char,
        native_symbols: *mut NativeSymbol,
    ) -> bool;

    pub fn wasm_runtime_get_import_count(module: wasm_module_t) -> i32;
    pub fn wasm_runtime_get_import_type(
        module: wasm_module_t,
        import_index: i32,
        import_type: *mut wasm_import_t,
    );
    pub fn wasm_runtime_get_export_count(module: wasm_module_t) -> i32;
    pub fn wasm_runtime_get_export_type(
        module: wasm_module_t,
        export_index: i32,
        export_type: *mut wasm_export_t,
    );
    pub fn wasm_func_type_get_param_count(func_type: wasm_func_type_t) -> u32;
    pub fn wasm_func_type_get_param_valkind(
        func_type: wasm_func_type_t,
        param_index: u32,
    ) -> wasm_valkind_t;
    pub fn wasm_func_type_get_result_count(func_type: wasm_func_type_t) -> u32;
    pub fn wasm_func_type_get_result_valkind(
        func_type: wasm_func_type_t,
        result_index: u32,
    ) -> wasm_valkind_t;
    pub fn wasm_global_type_get_valkind(global_type: *mut c_void) -> wasm_valkind_t;

    pub fn wasm_runtime_instantiate(
        module: wasm_module_t,
        default_stack_size: u32,
        host_managed_heap_size: u32,
        error_buf: *mut c_char,
        error_buf_size: u32,
    ) -> wasm_module_inst_t;
    pub fn wasm_runtime_deinstantiate(module_inst: wasm_module_inst_t);
    pub fn wasm_runtime_instantiation_args_create(p: *mut *mut InstantiationArgs2) -> bool;
    pub fn wasm_runtime_instantiation_args_destroy(p: *mut InstantiationArgs2);
    pub fn wasm_runtime_instantiation_args_set_default_stack_size(
        p: *mut InstantiationArgs2,
        v: u32,
    );
    pub fn wasm_runtime_instantiation_args_set_max_memory_pages(p: *mut InstantiationArgs2, v: u32);
    pub fn wasm_runtime_instantiate_ex2(
        module: wasm_module_t,
        args: *const InstantiationArgs2,
        error_buf: *mut c_char,
        error_buf_size: u32,
    ) -> wasm_module_inst_t;
    pub fn wasm_runtime_create_exec_env(
        module_inst: wasm_module_inst_t,
        stack_size: u32,
    ) -> wasm_exec_env_t;
    pub fn wasm_runtime_destroy_exec_env(exec_env: wasm_exec_env_t);
    pub fn wasm_runtime_get_module_inst(exec_env: wasm_exec_env_t) -> wasm_module_inst_t;

    pub fn wasm_runtime_lookup_function(
        module_inst: wasm_module_inst_t,
        name: *const c_char,
    ) -> wasm_function_inst_t;
    pub fn wasm_func_get_param_count(
        func_inst: wasm_function_inst_t,
        module_inst: wasm_module_inst_t,
    ) -> u32;
    pub fn wasm_func_get_result_count(
        func_inst: wasm_function_inst_t,
        module_inst: wasm_module_inst_t,
    ) -> u32;
    pub fn wasm_func_get_param_types(
        func_inst: wasm_function_inst_t,
        module_inst: wasm_module_inst_t,
        param_types: *mut wasm_valkind_t,
    );
    pub fn wasm_func_get_result_types(
        func_inst: wasm_function_inst_t,
        module_inst: wasm_module_inst_t,
        result_types: *mut wasm_valkind_t,
    );
    pub fn wasm_runtime_call_wasm_a(
        exec_env: wasm_exec_env_t,
        function: wasm_function_inst_t,
        num_results: u32,
        results: *mut wasm_val_t,
        num_args: u32,
        args: *mut wasm_val_t,
    ) -> bool;
    pub fn wasm_runtime_call_indirect(
        exec_env: wasm_exec_env_t,
        element_index: u32,
        argc: u32,
        argv: *mut u32,
    ) -> bool;
    pub fn wasm_runtime_get_export_table_inst(
        module_inst: wasm_module_inst_t,
        name: *const c_char,
        table_inst: *mut wasm_table_inst_t,
    ) -> bool;
    pub fn wasm_table_get_func_inst(
        module_inst: wasm_module_inst_t,
        table_inst: *const wasm_table_inst_t,
        idx: u32,
    ) -> wasm_function_inst_t;

    pub fn wasm_runtime_get_exception(module_inst: wasm_module_inst_t) -> *const c_char;
    pub fn wasm_runtime_set_exception(module_inst: wasm_module_inst_t, exception: *const c_char);
    pub fn wasm_runtime_clear_exception(module_inst: wasm_module_inst_t);
    pub fn wasm_runtime_terminate(module_inst: wasm_module_inst_t);
    pub fn wasm_runtime_get_function_attachment(exec_env: wasm_exec_env_t) -> *mut c_void;

    pub fn wasm_runtime_get_module(module_inst: wasm_module_inst_t) -> wasm_module_t;

    /// hb_beamr's `c/hb_interrupt.c`: stop the running call of an exec env
    /// from another thread, and clear that request afterwards.
    pub fn hb_beamr_interrupt(exec_env: wasm_exec_env_t, module_inst: wasm_module_inst_t);
    pub fn hb_beamr_clear_interrupt(exec_env: wasm_exec_env_t);
    /// How many globals an instance has (imported ones included).
    pub fn hb_beamr_global_count(module_inst: wasm_module_inst_t) -> u32;
    /// Global `index` of an instance: value type (`VALUE_TYPE_*`), whether
    /// it is mutable, and where its value lives; 0 past the count.
    pub fn hb_beamr_global_at(
        module_inst: wasm_module_inst_t,
        index: u32,
        val_type: *mut u8,
        is_mutable: *mut u8,
        data: *mut *mut std::ffi::c_void,
    ) -> i32;
    pub fn wasm_memory_get_max_page_count(memory_inst: wasm_memory_inst_t) -> u64;
    pub fn wasm_runtime_enlarge_memory(
        module_inst: wasm_module_inst_t,
        inc_page_count: u64,
    ) -> bool;
    /// Installs, for the calling thread, the callback WAMR's (patched)
    /// instantiation calls with the exec env that runs the start function
    /// and constructors, and with null ones when they are over.
    pub fn hb_beamr_set_instantiation_hook(
        hook: Option<InstantiationHook>,
        ctx: *mut std::ffi::c_void,
    );

    /// hb_beamr's `c/hb_tail_call.c`: guards a WAMR interpreter crash on a
    /// tail call from a host-entered function to an import.
    pub fn hb_beamr_import_tail_called_from_host(exec_env: wasm_exec_env_t) -> std::ffi::c_int;
    pub fn hb_beamr_function_is_import(
        func: wasm_function_inst_t,
        module_inst: wasm_module_inst_t,
    ) -> std::ffi::c_int;

    pub fn wasm_runtime_get_default_memory(module_inst: wasm_module_inst_t) -> wasm_memory_inst_t;
    pub fn wasm_memory_get_cur_page_count(memory_inst: wasm_memory_inst_t) -> u64;
    pub fn wasm_memory_get_bytes_per_page(memory_inst: wasm_memory_inst_t) -> u64;
    pub fn wasm_memory_get_base_address(memory_inst: wasm_memory_inst_t) -> *mut c_void;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layouts_match_wasm_export_h() {
        assert_eq!(std::mem::size_of::<wasm_val_t>(), 16);
        assert_eq!(std::mem::size_of::<wasm_import_t>(), 32);
        assert_eq!(std::mem::size_of::<wasm_export_t>(), 24);
        assert_eq!(std::mem::size_of::<NativeSymbol>(), 32);
        assert_eq!(std::mem::size_of::<wasm_table_inst_t>(), 24);
    }

    #[test]
    fn runtime_initialises_and_reports_versions() {
        // SAFETY: plain C calls with no pointer arguments.
        unsafe {
            assert!(wasm_runtime_init());
            assert!(wasm_runtime_get_current_package_version(WASM_MODULE_AOT) > 0);
        }
    }
}
