//! The Erlang term each [`Error`] becomes.

use hb_beamr_core::errors::Error;
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
        timeout,
        invalid_import_response,
        caller_exited,
        import_aborted,
        not_call_owner,
        no_pending_import,
        invalid_snapshot,
        snapshot_mismatch,
        snapshot_too_large,
        snapshot_unsupported,
        size,
        max,
        runtime_init_failed,
        thread_spawn_failed,
        module_limit,
        out_of_fuel,
        not_metered,
        loaded,
    }
}

/// An [`Error`] as an Erlang term (the core crate knows nothing of Erlang).
pub struct ErrorTerm<'e>(pub &'e Error);

impl Encoder for ErrorTerm<'_> {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self.0 {
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
            Error::Timeout => atoms::timeout().encode(env),
            Error::InvalidImportResponse(m) => {
                (atoms::invalid_import_response(), m.as_str()).encode(env)
            }
            Error::CallerExited => atoms::caller_exited().encode(env),
            Error::ImportAborted => atoms::import_aborted().encode(env),
            Error::NotCallOwner => atoms::not_call_owner().encode(env),
            Error::NoPendingImport => atoms::no_pending_import().encode(env),
            Error::InvalidSnapshot(m) => (atoms::invalid_snapshot(), m.as_str()).encode(env),
            Error::SnapshotMismatch(m) => (atoms::snapshot_mismatch(), m.as_str()).encode(env),
            Error::SnapshotUnsupported(m) => {
                (atoms::snapshot_unsupported(), m.as_str()).encode(env)
            }
            Error::SnapshotTooLarge { size, max } => {
                let detail = Term::map_from_pairs(
                    env,
                    &[
                        (atoms::size().encode(env), size.encode(env)),
                        (atoms::max().encode(env), max.encode(env)),
                    ],
                )
                .unwrap_or_else(|_| size.encode(env));
                (atoms::snapshot_too_large(), detail).encode(env)
            }
            Error::RuntimeInit(m) => (atoms::runtime_init_failed(), m.as_str()).encode(env),
            Error::ThreadSpawn(m) => (atoms::thread_spawn_failed(), m.as_str()).encode(env),
            Error::ModuleLimit { loaded, size, max } => {
                let detail = Term::map_from_pairs(
                    env,
                    &[
                        (atoms::loaded().encode(env), loaded.encode(env)),
                        (atoms::size().encode(env), size.encode(env)),
                        (atoms::max().encode(env), max.encode(env)),
                    ],
                )
                .unwrap_or_else(|_| size.encode(env));
                (atoms::module_limit(), detail).encode(env)
            }
            Error::OutOfFuel(used) => (atoms::out_of_fuel(), *used).encode(env),
            Error::NotMetered => atoms::not_metered().encode(env),
        }
    }
}
