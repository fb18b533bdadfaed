//! The original driver's raw protocol (`send_raw`): a command is
//! `term_to_binary(Cmd)` with Cmd one of `{call, Name, Args}`,
//! `{indirect_call, Index, Args}`, `{import_response, Results}`, `{size}`,
//! `{read, Offset, Len}`, `{write, Offset, Bin}`. Decoded here into a
//! [`RawCommand`]; the NIF makes the instance's command of it.

use rustler::types::tuple::get_tuple;
use rustler::{Atom, Binary, Env};

use super::{decode_numbers, decode_target};
use hb_beamr_core::errors::Error;
use hb_beamr_core::values::Number;
use hb_beamr_engine::Target;

mod atoms {
    rustler::atoms! {
        call,
        indirect_call,
        import_response,
        size,
        read,
        write,
    }
}

/// A raw command, decoded.
pub enum RawCommand<'a> {
    /// `{call, Name, Args}` or `{indirect_call, Index, Args}`.
    Call { target: Target, args: Vec<Number> },
    /// `{import_response, Results}`.
    ImportResponse(Vec<Number>),
    /// `{size}`.
    Size,
    /// `{read, Offset, Len}`.
    Read { offset: u64, length: u64 },
    /// `{write, Offset, Bin}`.
    Write { offset: u64, data: Binary<'a> },
}

/// Decodes `term_to_binary(Cmd)`; anything else is `invalid_args` (a
/// target or numbers that do not decode fail as they do in a call).
pub fn decode<'a>(env: Env<'a>, bytes: &[u8]) -> Result<RawCommand<'a>, Error> {
    let bad = || Error::InvalidArgs;
    let (term, _) = env.binary_to_term(bytes).ok_or_else(bad)?;
    let items = get_tuple(term).map_err(|_| bad())?;
    let tag: Atom = items.first().ok_or_else(bad)?.decode().map_err(|_| bad())?;
    let u64_at = |i: usize| -> Result<u64, Error> {
        items
            .get(i)
            .ok_or_else(bad)?
            .decode::<u64>()
            .map_err(|_| bad())
    };
    match items.len() {
        3 if tag == atoms::call() || tag == atoms::indirect_call() => Ok(RawCommand::Call {
            target: decode_target(items[1])?,
            args: decode_numbers(items[2])?,
        }),
        2 if tag == atoms::import_response() => {
            Ok(RawCommand::ImportResponse(decode_numbers(items[1])?))
        }
        1 if tag == atoms::size() => Ok(RawCommand::Size),
        3 if tag == atoms::read() => Ok(RawCommand::Read {
            offset: u64_at(1)?,
            length: u64_at(2)?,
        }),
        3 if tag == atoms::write() => {
            let data: Binary = items[2].decode().map_err(|_| bad())?;
            Ok(RawCommand::Write {
                offset: u64_at(1)?,
                data,
            })
        }
        _ => Err(bad()),
    }
}
