//! Every way an hb_beamr operation can fail, and the Erlang term it becomes.

use rustler::{Encoder, Env, Term};

mod atoms {
    rustler::atoms! {
        invalid_wasm,
        invalid_aot,
        instantiation_failed,
        function_not_found,
        invalid_args,
        unsupported_signature,
        wasm_trap,
        no_function_table,
        out_of_bounds,
        offset,
        length,
        memory_size,
        stopped,
        invalid_import_response,
        caller_exited,
        import_aborted,
        runtime_init_failed,
        thread_spawn_failed,
    }
}

/// A failure, with enough words for a person to act on it.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The bytes are not a WebAssembly module this runtime accepts.
    InvalidWasm(String),
    /// The bytes are not an AOT file this runtime (version, CPU) accepts.
    InvalidAot(String),
    /// The module loaded but could not be instantiated.
    Instantiation(String),
    /// No exported function of that name.
    FunctionNotFound,
    /// Wrong number or types of arguments for the function's signature.
    InvalidArgs,
    /// The function's signature has types hb_beamr cannot exchange (v128, references).
    UnsupportedSignature(String),
    /// WebAssembly trapped; the text is WAMR's.
    Trap(String),
    /// An indirect call on a module that exports no function table.
    NoFunctionTable,
    /// A memory access outside the instance's current linear memory.
    OutOfBounds { offset: u64, length: u64, size: u64 },
    /// The instance was stopped (before or during the operation).
    Stopped,
    /// An import function answered with results that do not fit its signature.
    InvalidImportResponse(String),
    /// The process that made the call exited while an import was pending.
    CallerExited,
    /// The caller aborted the call while an import was pending.
    ImportAborted,
    /// WAMR itself could not start.
    RuntimeInit(String),
    /// No native thread could be started for the instance.
    ThreadSpawn(String),
}

impl Encoder for Error {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self {
            Error::InvalidWasm(m) => (atoms::invalid_wasm(), m.as_str()).encode(env),
            Error::InvalidAot(m) => (atoms::invalid_aot(), m.as_str()).encode(env),
            Error::Instantiation(m) => (atoms::instantiation_failed(), m.as_str()).encode(env),
            Error::FunctionNotFound => atoms::function_not_found().encode(env),
            Error::InvalidArgs => atoms::invalid_args().encode(env),
            Error::UnsupportedSignature(m) => {
                (atoms::unsupported_signature(), m.as_str()).encode(env)
            }
            Error::Trap(m) => (atoms::wasm_trap(), m.as_str()).encode(env),
            Error::NoFunctionTable => atoms::no_function_table().encode(env),
            Error::OutOfBounds {
                offset,
                length,
                size,
            } => {
                let detail = Term::map_from_pairs(
                    env,
                    &[
                        (atoms::offset().encode(env), offset.encode(env)),
                        (atoms::length().encode(env), length.encode(env)),
                        (atoms::memory_size().encode(env), size.encode(env)),
                    ],
                )
                .unwrap_or_else(|_| offset.encode(env));
                (atoms::out_of_bounds(), detail).encode(env)
            }
            Error::Stopped => atoms::stopped().encode(env),
            Error::InvalidImportResponse(m) => {
                (atoms::invalid_import_response(), m.as_str()).encode(env)
            }
            Error::CallerExited => atoms::caller_exited().encode(env),
            Error::ImportAborted => atoms::import_aborted().encode(env),
            Error::RuntimeInit(m) => (atoms::runtime_init_failed(), m.as_str()).encode(env),
            Error::ThreadSpawn(m) => (atoms::thread_spawn_failed(), m.as_str()).encode(env),
        }
    }
}
