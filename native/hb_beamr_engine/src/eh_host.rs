//! The host side of modules whose exception handling `hb_beamr_eh` rewrote
//! into host calls (see `hb_beamr_core::eh_abi`), served natively and per
//! instance. A throw records its exception on the instance
//! ([`crate::eh_state`]) and raises a WAMR exception with a marker text,
//! which unwinds every WebAssembly frame up to the nearest host try call;
//! that call recognises the marker, clears it and reports the exception to
//! the code after it. Any other exception (a trap) goes on unwinding. Works
//! the same in the interpreter and in AOT.

use hb_beamr_core::eh_abi::HostImport;
use hb_beamr_core::errors::Error;
use hb_beamr_core::values::{ValKind, Value};

use crate::instance::EngineInstance;
use crate::trap::Trap;

/// The marker text in AOT: what WAMR's interpreter says of an uncaught
/// exception, so that both modes fail alike.
const MARKER_AOT: &str = "uncaught wasm exception";
/// The marker text in the interpreter, which treats a native function
/// returning with the text above as a throw of its own.
const MARKER_INTERP: &str = "uncaught exception (hb_beamr_eh)";

fn marker(engine: &EngineInstance) -> &'static str {
    if engine.is_interpreted() {
        MARKER_INTERP
    } else {
        MARKER_AOT
    }
}

/// Serves one call of a host import; `Err` raises its text.
pub(crate) fn serve(
    engine: &EngineInstance,
    import: &HostImport,
    args: &[Value],
    results: &[ValKind],
) -> Result<Vec<Value>, Trap> {
    let state = engine.eh();
    match import {
        HostImport::Throw => {
            let [Value::I64(payload), Value::I32(code)] = args else {
                return Err("hb_beamr_eh.throw: bad arguments".into());
            };
            state.throw((*code, *payload));
            Err(marker(engine).into())
        }
        HostImport::Caught => Ok(vec![Value::I32(state.last().0)]),
        HostImport::Payload => Ok(vec![Value::I64(state.last().1)]),
        HostImport::CallIndirect => {
            let Some((Value::I32(index), rest)) = args.split_last() else {
                return Err("hb_beamr_eh.call_indirect: no table index".into());
            };
            let outcome = engine.call_table_checked(*index as u32, rest, results);
            caught(engine, outcome, results)
        }
        HostImport::CallExport(name) => {
            let outcome = engine.call_export_values(name, args);
            caught(engine, outcome, results)
        }
    }
}

/// Turns the outcome of a try call into its results, recording whether a
/// throw unwound it.
fn caught(
    engine: &EngineInstance,
    outcome: Result<Vec<Value>, Error>,
    results: &[ValKind],
) -> Result<Vec<Value>, Trap> {
    let state = engine.eh();
    match outcome {
        Ok(values) => {
            state.set_last((0, 0));
            Ok(values)
        }
        Err(Error::Trap(text)) => match state.take_pending() {
            Some(exception) if text == marker(engine) => {
                state.set_last(exception);
                Ok(results.iter().map(|k| Value::from_slot(0, *k)).collect())
            }
            _ => Err(Trap::new(text)),
        },
        Err(other) => Err(Trap::new(format!("hb_beamr_eh: {other}"))),
    }
}
