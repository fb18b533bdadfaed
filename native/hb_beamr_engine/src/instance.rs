//! A WAMR instance and its execution environment: calling functions (by name
//! or through the function table) and raw access to linear memory.
//!
//! An `EngineInstance` lives on its worker thread only. WAMR allows calling
//! back into WebAssembly from an import on the same exec env, so calls take
//! `&self` and may nest.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::rc::Rc;

use hb_wamr_sys as sys;

use crate::eh_state::EhState;
use crate::interrupt::Interrupter;
use crate::module::{c_str_to_string, Module, ModuleHold};
use hb_beamr_core::errors::Error;
use hb_beamr_core::memory;
use hb_beamr_core::signature::FuncSig;
use hb_beamr_core::snapshot::{self, Global};
use hb_beamr_core::values::{Number, ValKind, Value};

/// What one instance may use (`start/3`'s options).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The interpreter's WebAssembly operand/frame stack, in bytes.
    pub wasm_stack: u32,
    /// The largest linear memory, in bytes (0: what the module declares).
    pub max_memory: u64,
    /// The native stack of the instance's thread, in bytes.
    pub native_stack: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wasm_stack: 64 * 1024,
            max_memory: 0,
            native_stack: 4 * 1024 * 1024,
        }
    }
}

const WASM_PAGE: u64 = 65536;

/// A resolved function: its handle and number-typed signature.
#[derive(Clone)]
struct Func {
    raw: sys::wasm_function_inst_t,
    sig: Rc<FuncSig>,
}

/// What to call.
#[derive(Clone, Debug)]
pub enum Target {
    Name(String),
    TableIndex(u32),
}

pub struct EngineInstance {
    /// Dropped after the instance is deinstantiated (a field, after `drop`).
    module: ModuleHold,
    inst: sys::wasm_module_inst_t,
    exec_env: sys::wasm_exec_env_t,
    funcs: RefCell<HashMap<String, Func>>,
    /// Exception state of rewritten exception handling (eh_host.rs).
    eh: EhState,
    /// Shared with other threads; revoked before the instance is freed.
    interrupter: Interrupter,
}

thread_local! {
    /// Set while the host calls an exported import directly (see imports.rs).
    static DIRECT_IMPORT_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Globals checked against an instance, ready to be set.
pub struct CheckedGlobals(Vec<(*mut std::ffi::c_void, Global)>);

/// A running instance as the import trampoline sees it, also while a start
/// function runs inside instantiation (before an [`EngineInstance`] exists):
/// its linear memory and its exceptions. Only valid during the import call
/// it was made for, on the instance's thread.
#[derive(Clone, Copy)]
pub struct InstanceRef {
    inst: sys::wasm_module_inst_t,
}

impl InstanceRef {
    /// The instance running on `exec_env`.
    pub(crate) fn of_exec_env(exec_env: sys::wasm_exec_env_t) -> InstanceRef {
        // SAFETY: WAMR passes the trampoline the exec env of the running call.
        let inst = unsafe { sys::wasm_runtime_get_module_inst(exec_env) };
        InstanceRef { inst }
    }

    /// Raises an exception, so that the running call unwinds with it when
    /// the current import returns.
    pub(crate) fn raise(&self, message: &str) {
        raise_exception(self.inst, message);
    }

    /// The current linear memory: base pointer and length in bytes (null
    /// and 0 when the module has no memory). Re-read on every access:
    /// memory may grow, and move, during any call.
    pub(crate) fn memory_region(&self) -> (*mut u8, u64) {
        if self.inst.is_null() {
            return (std::ptr::null_mut(), 0);
        }
        // SAFETY: live instance; the default memory (if any) stays valid
        // while the instance lives.
        let mem = unsafe { sys::wasm_runtime_get_default_memory(self.inst) };
        if mem.is_null() {
            return (std::ptr::null_mut(), 0);
        }
        // SAFETY: `mem` is the instance's live default memory.
        unsafe {
            let pages = sys::wasm_memory_get_cur_page_count(mem);
            let page_size = sys::wasm_memory_get_bytes_per_page(mem);
            let base = sys::wasm_memory_get_base_address(mem) as *mut u8;
            if base.is_null() {
                return (base, 0);
            }
            (base, pages.saturating_mul(page_size))
        }
    }

    pub fn memory_size(&self) -> u64 {
        self.memory_region().1
    }

    /// The largest linear memory this instance can grow to, in bytes (the
    /// module's declared maximum within the instance's `max_memory`).
    pub fn max_memory_size(&self) -> u64 {
        // SAFETY: live instance.
        let mem = unsafe { sys::wasm_runtime_get_default_memory(self.inst) };
        if mem.is_null() {
            return 0;
        }
        // SAFETY: `mem` is the instance's live default memory.
        unsafe {
            sys::wasm_memory_get_max_page_count(mem)
                .saturating_mul(sys::wasm_memory_get_bytes_per_page(mem))
        }
    }

    /// Whether this instance can take a state (a snapshot's, an image's)
    /// of `size` bytes of memory: memory never shrinks.
    pub fn check_state_size(&self, size: u64) -> Result<(), Error> {
        let current = self.memory_size();
        if current > size {
            return Err(Error::SnapshotMismatch(format!(
                "this instance's memory ({current} bytes) is larger than the snapshot's \
                 ({size} bytes) and cannot shrink: restore into a fresh instance"
            )));
        }
        Ok(())
    }

    /// Grows memory for a state of `size` bytes; how many of its bytes to
    /// put in memory. Zeros past what the instance may grow to are no state
    /// (fresh pages are zero): when `zero_past(max)` says the state's bytes
    /// from `max` on are all zero, memory grows to `max` only, so a snapshot
    /// one page larger than a module that cannot grow still restores
    /// (HyperBEAM's runtime counts one page more for modules that export
    /// `malloc` but not `free`).
    pub fn grow_for_state(
        &self,
        size: u64,
        zero_past: impl FnOnce(u64) -> bool,
    ) -> Result<u64, Error> {
        match self.grow_to(size) {
            Ok(()) => Ok(size),
            Err(Error::SnapshotTooLarge { max, .. }) if zero_past(max) => {
                self.grow_to(max)?;
                Ok(max)
            }
            Err(error) => Err(error),
        }
    }

    /// Grows linear memory to at least `size` bytes (whole pages), within
    /// the module's declared maximum and the instance's `max_memory`.
    pub fn grow_to(&self, size: u64) -> Result<(), Error> {
        let current = self.memory_size();
        if size <= current {
            return Ok(());
        }
        // SAFETY: live instance.
        let mem = unsafe { sys::wasm_runtime_get_default_memory(self.inst) };
        let too_large = |max: u64| Error::SnapshotTooLarge { size, max };
        if mem.is_null() {
            return Err(too_large(0));
        }
        // SAFETY: `mem` is the instance's live default memory.
        let (max_pages, page_size) = unsafe {
            (
                sys::wasm_memory_get_max_page_count(mem),
                sys::wasm_memory_get_bytes_per_page(mem),
            )
        };
        let max = max_pages.saturating_mul(page_size);
        let page_size = page_size.max(1);
        let wanted_pages = size.div_ceil(page_size);
        if wanted_pages > max_pages {
            return Err(too_large(max));
        }
        let more = wanted_pages - current / page_size;
        // SAFETY: live instance, on its own thread, no WebAssembly running.
        if !unsafe { sys::wasm_runtime_enlarge_memory(self.inst, more) } {
            return Err(too_large(max));
        }
        Ok(())
    }

    /// Every mutable global, exported or not, for a snapshot. A mutable
    /// reference-typed global cannot be carried to another instance.
    pub fn mutable_globals(&self) -> Result<Vec<Global>, Error> {
        let mut globals = Vec::new();
        // SAFETY: live instance.
        let count = unsafe { sys::hb_beamr_global_count(self.inst) };
        for index in 0..count {
            let Some((val_type, true, data)) = self.global_at(index) else {
                continue;
            };
            // SAFETY: `data` points at the global's value in the live
            // instance's global data, of the size its type says.
            let bits = unsafe {
                match val_type {
                    snapshot::I32 | snapshot::F32 => (data as *const u32).read_unaligned() as u64,
                    snapshot::I64 | snapshot::F64 => (data as *const u64).read_unaligned(),
                    _ => {
                        return Err(Error::SnapshotUnsupported(format!(
                            "global {index} is a mutable reference (type 0x{val_type:02x})"
                        )))
                    }
                }
            };
            globals.push(Global {
                index,
                val_type,
                bits,
            });
        }
        Ok(globals)
    }

    /// Checks a snapshot's globals against this instance: each must be a
    /// mutable global of the same type here. Nothing is set yet: the result
    /// is set by [`InstanceRef::set_globals`], which cannot fail.
    pub fn check_globals(&self, globals: &[Global]) -> Result<CheckedGlobals, Error> {
        let mut targets = Vec::with_capacity(globals.len());
        for g in globals {
            match self.global_at(g.index) {
                Some((val_type, true, data)) if val_type == g.val_type => targets.push((data, *g)),
                _ => {
                    return Err(Error::SnapshotMismatch(format!(
                        "the snapshot's global {} (type 0x{:02x}) is not a mutable global of \
                         that type here",
                        g.index, g.val_type
                    )))
                }
            }
        }
        Ok(CheckedGlobals(targets))
    }

    /// Sets the globals [`InstanceRef::check_globals`] checked.
    pub fn set_globals(&self, checked: CheckedGlobals) {
        for (data, g) in checked.0 {
            // SAFETY: `data` is where that global of this live instance keeps
            // its value; its type (so its size) was checked.
            unsafe {
                match g.val_type {
                    snapshot::I32 | snapshot::F32 => {
                        (data as *mut u32).write_unaligned(g.bits as u32)
                    }
                    _ => (data as *mut u64).write_unaligned(g.bits),
                }
            }
        }
    }

    /// The value of global `index` if it is a mutable `i64` (a metered
    /// module's counter).
    pub fn i64_global(&self, index: u32) -> Option<i64> {
        match self.global_at(index) {
            // SAFETY: an i64 global's value in the live instance's data.
            Some((snapshot::I64, true, data)) => {
                Some(unsafe { (data as *const i64).read_unaligned() })
            }
            _ => None,
        }
    }

    /// Sets global `index` if it is a mutable `i64`; whether it was.
    pub fn set_i64_global(&self, index: u32, value: i64) -> bool {
        match self.global_at(index) {
            Some((snapshot::I64, true, data)) => {
                // SAFETY: as above; no WebAssembly reads it meanwhile (the
                // instance's thread, between blocks).
                unsafe { (data as *mut i64).write_unaligned(value) };
                true
            }
            _ => false,
        }
    }

    fn global_at(&self, index: u32) -> Option<(u8, bool, *mut std::ffi::c_void)> {
        let (mut val_type, mut mutable, mut data) = (0u8, 0u8, std::ptr::null_mut());
        // SAFETY: live instance; valid out-pointers.
        let found = unsafe {
            sys::hb_beamr_global_at(self.inst, index, &mut val_type, &mut mutable, &mut data)
        };
        (found != 0 && !data.is_null()).then_some((val_type, mutable != 0, data))
    }

    /// Runs `f` on `length` bytes of linear memory at `offset`. The slice
    /// cannot outlive `f`: memory may move when it grows.
    pub fn read_with<R>(
        &self,
        offset: u64,
        length: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        let (base, size) = self.memory_region();
        let range = memory::checked_range(offset, length, size)?;
        // SAFETY: `range` lies within the `size` bytes at `base` (checked
        // above); only the instance's thread touches the memory, and no
        // WebAssembly runs while `f` holds the slice.
        let bytes = unsafe { std::slice::from_raw_parts(base.add(range.start), range.len()) };
        Ok(f(bytes))
    }

    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let (base, size) = self.memory_region();
        let range = memory::checked_range(offset, data.len() as u64, size)?;
        // SAFETY: as in `read_with`; the destination does not overlap `data`,
        // which is an Erlang binary or a copy of one.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(range.start), range.len()) };
        Ok(())
    }
}

impl EngineInstance {
    pub fn new(module: impl Into<ModuleHold>, limits: Limits) -> Result<EngineInstance, Error> {
        let module = module.into();
        let max_pages = u32::try_from(limits.max_memory.div_ceil(WASM_PAGE)).unwrap_or(u32::MAX);
        let mut args: *mut sys::InstantiationArgs2 = std::ptr::null_mut();
        // SAFETY: `args` is a valid out-pointer; the arguments are destroyed
        // below, after use.
        if !unsafe { sys::wasm_runtime_instantiation_args_create(&mut args) } || args.is_null() {
            return Err(Error::Instantiation("out of memory".into()));
        }
        let mut error_buf = [0 as std::ffi::c_char; 256];
        // SAFETY: `args` is live; the module is loaded and owned by the
        // instance we return (dropped after it); error_buf is 256 bytes.
        let inst = unsafe {
            sys::wasm_runtime_instantiation_args_set_default_stack_size(args, limits.wasm_stack);
            sys::wasm_runtime_instantiation_args_set_max_memory_pages(args, max_pages);
            let inst = sys::wasm_runtime_instantiate_ex2(
                module.raw(),
                args,
                error_buf.as_mut_ptr(),
                error_buf.len() as u32,
            );
            sys::wasm_runtime_instantiation_args_destroy(args);
            inst
        };
        if inst.is_null() {
            let text = hb_beamr_core::c_text::from_buffer(&error_buf);
            let text = text
                .strip_prefix("WASM module instantiate failed: ")
                .or_else(|| text.strip_prefix("AOT module instantiate failed: "))
                .unwrap_or(&text)
                .to_string();
            return Err(Error::Instantiation(text));
        }
        // SAFETY: `inst` was just created; the exec env is created on the
        // worker thread that will run every call, as WAMR requires.
        let exec_env = unsafe { sys::wasm_runtime_create_exec_env(inst, limits.wasm_stack) };
        if exec_env.is_null() {
            // SAFETY: `inst` is live and not used afterwards.
            unsafe { sys::wasm_runtime_deinstantiate(inst) };
            return Err(Error::Instantiation(
                "could not create an execution environment".into(),
            ));
        }
        let instance = EngineInstance {
            module,
            inst,
            exec_env,
            funcs: RefCell::new(HashMap::new()),
            eh: EhState::default(),
            interrupter: Interrupter::new(inst, exec_env),
        };
        // WAMR keeps a module's initial memory even when asked for less.
        if limits.max_memory > 0 && instance.memory_size() > limits.max_memory {
            return Err(Error::Instantiation(format!(
                "the module's initial memory ({} bytes) is larger than max_memory ({} bytes)",
                instance.memory_size(),
                limits.max_memory
            )));
        }
        Ok(instance)
    }

    /// Like [`EngineInstance::new`], handing `watch` an [`Interrupter`] for
    /// the start function and constructors before they run (`Some`), and
    /// telling it when they are over (`None`), so that another thread can
    /// stop them meanwhile. That interrupter is revoked before `None` is
    /// passed: any later interrupt through it does nothing.
    pub fn new_watched(
        module: impl Into<ModuleHold>,
        limits: Limits,
        watch: &dyn Fn(Option<&Interrupter>),
    ) -> Result<EngineInstance, Error> {
        struct Watch<'w> {
            watch: &'w dyn Fn(Option<&Interrupter>),
            /// The interrupter of the exec env running the start function.
            current: RefCell<Option<Interrupter>>,
        }
        impl Watch<'_> {
            fn over(&self) {
                if let Some(interrupter) = self.current.borrow_mut().take() {
                    interrupter.revoke();
                }
            }
        }
        unsafe extern "C" fn hook(
            ctx: *mut std::ffi::c_void,
            exec_env: sys::wasm_exec_env_t,
            inst: sys::wasm_module_inst_t,
        ) {
            // SAFETY: `ctx` points at the `Watch` below, which outlives the
            // instantiation during which WAMR calls this hook.
            let watch = unsafe { &*(ctx as *const Watch) };
            // A panic must not unwind into C.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // Whatever came before is over (WAMR frees that exec env
                // after telling us so).
                watch.over();
                if exec_env.is_null() || inst.is_null() {
                    (watch.watch)(None);
                } else {
                    // WAMR keeps `inst` and `exec_env` alive until it calls
                    // this hook again (with null), when `over` revokes them.
                    let interrupter = Interrupter::new(inst, exec_env);
                    *watch.current.borrow_mut() = Some(interrupter.clone());
                    (watch.watch)(Some(&interrupter));
                }
            }));
        }
        let ctx = Watch {
            watch,
            current: RefCell::new(None),
        };
        // SAFETY: the hook and its context are per thread and removed again
        // below, before `ctx` goes out of scope.
        unsafe {
            sys::hb_beamr_set_instantiation_hook(
                Some(hook),
                &ctx as *const Watch as *mut std::ffi::c_void,
            )
        };
        let result = EngineInstance::new(module, limits);
        // SAFETY: as above.
        unsafe { sys::hb_beamr_set_instantiation_hook(None, std::ptr::null_mut()) };
        // Should WAMR not have said that the start function is over, its
        // exec env is gone now all the same.
        ctx.over();
        result
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    /// A handle that stops this instance's running call from any thread;
    /// it does nothing once the instance is gone.
    pub fn interrupter(&self) -> Interrupter {
        self.interrupter.clone()
    }

    /// Calls `target` with `args`; a failure leaves no exception set on the
    /// instance, so the next call (or an outer call, when nested) goes on.
    pub fn call(&self, target: &Target, args: &[Number]) -> Result<Vec<Value>, Error> {
        let func = self.resolve(target)?;
        let values = Value::fit_all(args, &func.sig.params).ok_or(Error::InvalidArgs)?;
        self.call_values(&func, &values)
    }

    /// Calls `target` with values of exactly its parameter types (bit-exact
    /// floats: NaN payloads pass unchanged), as the spec-test runner needs.
    pub fn call_typed(&self, target: &Target, args: &[Value]) -> Result<Vec<Value>, Error> {
        let func = self.resolve(target)?;
        let kinds: Vec<ValKind> = args.iter().map(|v| v.kind()).collect();
        if kinds != func.sig.params {
            return Err(Error::InvalidArgs);
        }
        self.call_values(&func, args)
    }

    /// Calls table element `index`, as emscripten's `invoke_*` trampolines
    /// need, after checking that its type is the one the import declares
    /// (WAMR's AOT `call_indirect` API does not check it).
    pub fn call_table_checked(
        &self,
        index: u32,
        args: &[Value],
        results: &[ValKind],
    ) -> Result<Vec<Value>, Error> {
        let func = match self.table_func(index) {
            Err(Error::NoFunctionTable) if self.is_interpreted() => {
                // The interpreter checks the callee's type itself.
                return self
                    .call_indirect_cells(index, args, results)
                    .ok_or_else(|| Error::Trap(self.take_exception()));
            }
            other => other?,
        };
        let params: Vec<ValKind> = args.iter().map(|v| v.kind()).collect();
        if func.sig.params != params || func.sig.results != results {
            return Err(Error::Trap("indirect call type mismatch".into()));
        }
        self.call_values(&func, args)
    }

    /// Calls export `name` with `args` of its exact types (hb_beamr_eh's
    /// try calls).
    pub fn call_export_values(&self, name: &str, args: &[Value]) -> Result<Vec<Value>, Error> {
        let func = self.resolve(&Target::Name(name.to_string()))?;
        let params: Vec<ValKind> = args.iter().map(|v| v.kind()).collect();
        if func.sig.params != params {
            return Err(Error::Trap("hb_beamr_eh: call type mismatch".into()));
        }
        self.call_values(&func, args)
    }

    pub(crate) fn eh(&self) -> &EhState {
        &self.eh
    }

    pub fn is_interpreted(&self) -> bool {
        // SAFETY: a query on the live module.
        let package = unsafe { sys::wasm_runtime_get_module_package_type(self.module.raw()) };
        package == sys::WASM_MODULE_BYTECODE
    }

    /// Whether the import now being served was called by the host directly
    /// (an exported import); reading it clears it, so nested calls see false.
    pub(crate) fn take_direct_import_call() -> bool {
        DIRECT_IMPORT_CALL.with(|d| d.replace(false))
    }

    fn call_values(&self, func: &Func, values: &[Value]) -> Result<Vec<Value>, Error> {
        // SAFETY: a query on a function of this live instance.
        let import = unsafe { sys::hb_beamr_function_is_import(func.raw, self.inst) };
        if import == 2 {
            // WAMR's AOT runtime calls an exported import through a null
            // pointer when the host calls it directly.
            return Err(Error::Trap(
                "unsupported: calling an exported import directly (AOT)".into(),
            ));
        }
        DIRECT_IMPORT_CALL.with(|d| d.set(import == 1));
        let mut wamr_args: Vec<sys::wasm_val_t> =
            values.iter().map(|v| crate::values::to_wamr(*v)).collect();
        let mut wamr_results = vec![sys::wasm_val_t::default(); func.sig.results.len()];
        // SAFETY: the function belongs to this live instance; the argument
        // and result arrays have exactly the lengths of its signature.
        let ok = unsafe {
            sys::wasm_runtime_call_wasm_a(
                self.exec_env,
                func.raw,
                wamr_results.len() as u32,
                wamr_results.as_mut_ptr(),
                wamr_args.len() as u32,
                wamr_args.as_mut_ptr(),
            )
        };
        if !ok {
            return Err(Error::Trap(self.take_exception()));
        }
        wamr_results
            .iter()
            .map(crate::values::from_wamr)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::UnsupportedSignature(func.sig.encode()))
    }

    /// Calls table element `index` with raw cells (the interpreter checks
    /// the element's type). Leaves a trap's exception set.
    fn call_indirect_cells(
        &self,
        index: u32,
        args: &[Value],
        results: &[ValKind],
    ) -> Option<Vec<Value>> {
        let mut cells = Vec::with_capacity(8);
        for v in args {
            v.push_cells(&mut cells);
        }
        let argc = cells.len() as u32;
        let result_cells: usize = results.iter().map(|k| k.cells()).sum();
        cells.resize(cells.len().max(result_cells).max(1), 0);
        // SAFETY: `cells` holds `argc` argument cells and room for the
        // results; WAMR checks the element index and its type.
        let ok = unsafe {
            sys::wasm_runtime_call_indirect(self.exec_env, index, argc, cells.as_mut_ptr())
        };
        if !ok {
            return None;
        }
        Value::from_cells(&cells, results)
    }

    fn resolve(&self, target: &Target) -> Result<Func, Error> {
        match target {
            Target::Name(name) => {
                if let Some(cached) = self.funcs.borrow().get(name) {
                    return Ok(cached.clone());
                }
                // Only hits are cached: they are bounded by the module's
                // exports, misses by nothing (any name can be asked for).
                let found = self.lookup(name).ok_or(Error::FunctionNotFound)?;
                self.funcs.borrow_mut().insert(name.clone(), found.clone());
                Ok(found)
            }
            Target::TableIndex(index) => self.table_func(*index),
        }
    }

    fn lookup(&self, name: &str) -> Option<Func> {
        let c_name = crate::module::name_to_wamr(name);
        // SAFETY: live instance, NUL-terminated name.
        let raw = unsafe { sys::wasm_runtime_lookup_function(self.inst, c_name.as_ptr()) };
        if raw.is_null() {
            return None;
        }
        Some(Func {
            raw,
            sig: Rc::new(self.func_signature(raw)?),
        })
    }

    fn table_func(&self, index: u32) -> Result<Func, Error> {
        let table_name = self
            .module
            .table_export
            .as_ref()
            .ok_or(Error::NoFunctionTable)?;
        let mut table = sys::wasm_table_inst_t::default();
        // SAFETY: live instance, NUL-terminated name, valid out-pointer.
        let found = unsafe {
            sys::wasm_runtime_get_export_table_inst(self.inst, table_name.as_ptr(), &mut table)
        };
        if !found {
            return Err(Error::NoFunctionTable);
        }
        if index >= table.cur_size {
            return Err(Error::Trap(format!(
                "undefined element: table index {index} out of bounds (table size {})",
                table.cur_size
            )));
        }
        // SAFETY: `table.elems` holds `cur_size` elements of WAMR's
        // `table_elem_type_t` (uintptr_t in this build, without GC) and the
        // index is below `cur_size`.
        let element = unsafe { *(table.elems as *const usize).add(index as usize) };
        // WAMR marks empty slots with all bits set, but its own lookup only
        // recognises the 32-bit null and would index past its functions.
        if table.elems.is_null() || element == usize::MAX || element == u32::MAX as usize {
            return Err(Error::Trap(format!(
                "uninitialized element: table index {index}"
            )));
        }
        // SAFETY: `table` was filled in by WAMR for this instance, the index
        // is below its current size and the slot holds a function.
        let raw = unsafe { sys::wasm_table_get_func_inst(self.inst, &table, index) };
        if raw.is_null() {
            return Err(Error::Trap(format!(
                "uninitialized element: table index {index}"
            )));
        }
        let sig = self
            .func_signature(raw)
            .ok_or_else(|| Error::UnsupportedSignature(format!("table element {index}")))?;
        Ok(Func {
            raw,
            sig: Rc::new(sig),
        })
    }

    fn func_signature(&self, raw: sys::wasm_function_inst_t) -> Option<FuncSig> {
        // SAFETY: `raw` is a function of this live instance; the type arrays
        // are sized from the counts WAMR reports.
        unsafe {
            let param_count = sys::wasm_func_get_param_count(raw, self.inst) as usize;
            let result_count = sys::wasm_func_get_result_count(raw, self.inst) as usize;
            let mut params = vec![0u8; param_count];
            let mut results = vec![0u8; result_count];
            sys::wasm_func_get_param_types(raw, self.inst, params.as_mut_ptr());
            sys::wasm_func_get_result_types(raw, self.inst, results.as_mut_ptr());
            Some(FuncSig {
                params: params
                    .into_iter()
                    .map(crate::values::kind_from_wamr)
                    .collect::<Option<_>>()?,
                results: results
                    .into_iter()
                    .map(crate::values::kind_from_wamr)
                    .collect::<Option<_>>()?,
            })
        }
    }

    /// Reads and clears the pending exception; WAMR's "Exception: " prefix
    /// is dropped.
    pub fn take_exception(&self) -> String {
        // SAFETY: live instance; the returned string is copied before the
        // exception is cleared.
        let text = unsafe { c_str_to_string(sys::wasm_runtime_get_exception(self.inst)) };
        // SAFETY: live instance.
        unsafe { sys::wasm_runtime_clear_exception(self.inst) };
        let text = text
            .strip_prefix("Exception: ")
            .unwrap_or(&text)
            .to_string();
        if text.is_empty() {
            "unknown trap".to_string()
        } else {
            text
        }
    }

    /// Clears what an interrupt left: the exception and the terminate flag.
    pub fn clear_interrupt(&self) {
        // SAFETY: live instance and exec env, on their own thread.
        unsafe {
            sys::wasm_runtime_clear_exception(self.inst);
            sys::hb_beamr_clear_interrupt(self.exec_env);
        }
    }

    /// The instance's memory and exceptions, as imports see them.
    pub fn as_ref(&self) -> InstanceRef {
        InstanceRef { inst: self.inst }
    }

    pub fn memory_size(&self) -> u64 {
        self.as_ref().memory_size()
    }

    /// Runs `f` on `length` bytes of linear memory at `offset`.
    pub fn read_with<R>(
        &self,
        offset: u64,
        length: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        self.as_ref().read_with(offset, length, f)
    }

    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.as_ref().write(offset, data)
    }
}

impl Drop for EngineInstance {
    fn drop(&mut self) {
        // No other thread can reach the handles from now on.
        self.interrupter.revoke();
        // SAFETY: no call is running (drop happens on the worker thread after
        // its loop ends); the handles are not used afterwards (the
        // interrupter is revoked). The module is dropped after this, as a
        // field.
        unsafe {
            sys::wasm_runtime_destroy_exec_env(self.exec_env);
            sys::wasm_runtime_deinstantiate(self.inst);
        }
    }
}

/// Sets an exception on a live instance (WAMR copies the message); the
/// running call unwinds with it when the current import returns.
fn raise_exception(inst: sys::wasm_module_inst_t, message: &str) {
    if inst.is_null() {
        return;
    }
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: `inst` is a live instance, running the import that raises.
    unsafe { sys::wasm_runtime_set_exception(inst, text.as_ptr()) };
}
