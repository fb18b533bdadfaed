//! The native side of every function import: each one is linked to
//! [`trampoline`], which finds the import's descriptor in the WAMR attachment
//! and serves it: emscripten's `invoke_*` natively through the function
//! table, everything else through the thread's [`Host`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use hb_wamr_sys as sys;

use crate::host::{self, Host};
use crate::imports::{ImportDesc, ImportKind};
use crate::instance::{EngineInstance, InstanceRef};
use crate::trap::Trap;
use hb_beamr_core::errors::Error;
use hb_beamr_core::values::{ValKind, Value};

/// The native side of every function import, in WAMR's raw calling
/// convention. A panic must not unwind into C, so it is caught here.
///
/// # Safety
/// Called by WAMR only, with the exec env of the running call and an
/// argument array with one 64-bit slot per parameter (and at least one).
pub(crate) unsafe extern "C" fn trampoline(exec_env: sys::wasm_exec_env_t, args: *mut u64) {
    // SAFETY: WAMR sets the attachment of the import being called; it points
    // at an ImportDesc owned by the module, alive while the module is.
    let desc = unsafe { sys::wasm_runtime_get_function_attachment(exec_env) } as *const ImportDesc;
    // SAFETY: see above; null is handled by `as_ref`.
    let desc = unsafe { desc.as_ref() };
    let instance = InstanceRef::of_exec_env(exec_env);
    let Some(desc) = desc else {
        // WAMR's AOT runtime calls an exported import directly without its
        // attachment, so there is no telling which import it is.
        instance.raise("unsupported: calling an exported import directly (AOT)");
        return;
    };
    let Some(host) = host::current() else {
        instance.raise(&format!(
            "import {}.{} called on a thread that serves no imports",
            desc.module, desc.name
        ));
        return;
    };
    let direct = EngineInstance::take_direct_import_call();
    // SAFETY: WAMR passes the exec env of the running call.
    if !direct && unsafe { sys::hb_beamr_import_tail_called_from_host(exec_env) } != 0 {
        // WAMR's interpreter would crash on returning from this import.
        instance.raise(&format!(
            "unsupported: tail call (return_call) to import {}.{} from a function called by \
             the host; WAMR's interpreter cannot return from it",
            desc.module, desc.name
        ));
        return;
    }
    let param_count = desc.sig.as_ref().map(|s| s.params.len()).unwrap_or(0);
    // SAFETY: WAMR passes one slot per parameter (the array holds at least
    // 16 slots, or one per parameter when there are more).
    let slots = unsafe { std::slice::from_raw_parts_mut(args, param_count.max(1)) };
    let outcome = catch_unwind(AssertUnwindSafe(|| serve(&*host, instance, desc, slots)));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(trap)) => instance.raise(trap.text()),
        Err(_) => instance.raise("internal error serving an import"),
    }
}

fn serve(
    host: &dyn Host,
    instance: InstanceRef,
    desc: &ImportDesc,
    slots: &mut [u64],
) -> Result<(), Trap> {
    let Some(sig) = desc.servable_sig() else {
        // What an import no answer can carry does to its call is the
        // host's call protocol's to decide; native imports just trap.
        return match desc.kind {
            ImportKind::Host => host.import(instance, desc, &[]).map(|_| ()),
            _ => Err(Trap::new(desc.unsupported())),
        };
    };
    let args: Vec<Value> = sig
        .params
        .iter()
        .zip(slots.iter())
        .map(|(kind, slot)| Value::from_slot(*slot, *kind))
        .collect();
    let results = match &desc.kind {
        ImportKind::Invoke => invoke(host, &args, &sig.results)?,
        ImportKind::Eh(import) => {
            let engine = host
                .engine()
                .ok_or("hb_beamr_eh import called during instantiation")?;
            crate::eh_host::serve(engine, import, &args, &sig.results)?
        }
        ImportKind::Fuel => {
            let needed = match args.first() {
                Some(Value::I64(needed)) => *needed,
                _ => return Err("hb_beamr.out_of_fuel: bad arguments".into()),
            };
            host.out_of_fuel(instance, desc, needed)?;
            Vec::new()
        }
        ImportKind::Host => host.import(instance, desc, &args)?,
    };
    if let (Some(result), Some(slot)) = (results.first(), slots.first_mut()) {
        *slot = result.to_slot();
    }
    Ok(())
}

/// emscripten's `invoke_<sig>(index, args...)`: call the table element.
fn invoke(host: &dyn Host, args: &[Value], results: &[ValKind]) -> Result<Vec<Value>, Trap> {
    let Some((Value::I32(index), rest)) = args.split_first() else {
        return Err("invoke_* without a table index".into());
    };
    let engine = host
        .engine()
        .ok_or("invoke_* called during instantiation, before the instance exists")?;
    engine
        .call_table_checked(*index as u32, rest, results)
        .map_err(|error| match error {
            Error::Trap(text) => Trap::new(text),
            Error::NoFunctionTable => Trap::new(
                "invoke_*: the module exports no function table to check the callee against",
            ),
            other => Trap::new(format!("invoke_*: {other}")),
        })
}
