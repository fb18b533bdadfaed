//! The term codec: Erlang terms into the values, names and numbers a
//! request carries, and the messages an instance sends back into terms.
//! Non-finite floats travel as the atoms `infinity`, `neg_infinity` and
//! `nan`, both ways.
//!
//! Its parts: [`errors`], the term each error becomes; [`raw`], the commands
//! of the original driver's raw protocol.

use rustler::{Atom, Encoder, Env, OwnedBinary, Term, TermType};

pub mod errors;
pub mod raw;

use errors::ErrorTerm;

use hb_beamr_core::errors::Error;
use hb_beamr_core::values::{Number, Value};
use hb_beamr_engine::{ExportInfo, ExternKind, ImportInfo, Target};

mod atoms {
    rustler::atoms! {
        hb_beamr,
        execution_result,
        import,
        error,
        ok,
        func,
        table,
        memory,
        global,
        infinity,
        neg_infinity,
        nan,
        out_of_memory,
        remaining,
        used,
    }
}

mod in_atoms {
    rustler::atoms! {
        infinity,
        neg_infinity,
        nan,
    }
}

pub enum Message<'a> {
    Results(&'a [Value]),
    Import {
        module: &'a str,
        func: &'a str,
        args: &'a [Value],
        signature: &'a str,
    },
    Started {
        imports: &'a [ImportInfo],
        exports: &'a [ExportInfo],
    },
    Size(u64),
    Bytes(&'a [u8]),
    /// A snapshot: its header, then the memory (one binary, one copy).
    Snapshot {
        header: &'a [u8],
        memory: &'a [u8],
    },
    Written,
    /// `{execution_result, #{remaining => R, used => U}}`.
    Fuel {
        remaining: i64,
        used: u64,
    },
    Failed(&'a Error),
    /// `{execution_result, Image}`: an image of the instance's state.
    Image(rustler::ResourceArc<crate::images::ImageResource>),
}

/// Encodes a value for Erlang; non-finite floats become atoms.
pub fn encode_value<'a>(value: &Value, env: Env<'a>) -> Term<'a> {
    let float = |f: f64| {
        if f.is_nan() {
            atoms::nan().encode(env)
        } else if f == f64::INFINITY {
            atoms::infinity().encode(env)
        } else if f == f64::NEG_INFINITY {
            atoms::neg_infinity().encode(env)
        } else {
            f.encode(env)
        }
    };
    match *value {
        Value::I32(v) => v.encode(env),
        Value::I64(v) => v.encode(env),
        Value::F32(v) => float(v as f64),
        Value::F64(v) => float(v),
    }
}

fn encode_values<'a>(values: &[Value], env: Env<'a>) -> Term<'a> {
    let terms: Vec<Term<'a>> = values.iter().map(|v| encode_value(v, env)).collect();
    terms.encode(env)
}

fn kind_atom<'a>(kind: ExternKind, env: Env<'a>) -> Term<'a> {
    match kind {
        ExternKind::Func => atoms::func().encode(env),
        ExternKind::Table => atoms::table().encode(env),
        ExternKind::Memory => atoms::memory().encode(env),
        ExternKind::Global => atoms::global().encode(env),
    }
}

/// `{execution_result, Binary}` with a binary of `len` bytes that `fill`
/// writes, or `{error, {out_of_memory, Len}}` when the VM cannot allocate
/// it: a reply too large for memory is an error, not an abort of the node
/// (rustler's `OwnedBinary::new` aborts when allocation fails).
fn large_result<'a>(env: Env<'a>, len: usize, fill: impl FnOnce(&mut [u8])) -> Term<'a> {
    let mut raw = std::mem::MaybeUninit::<rustler::sys::ErlNifBinary>::uninit();
    // SAFETY: enif_alloc_binary fills `raw` in when it returns nonzero.
    if unsafe { rustler::sys::enif_alloc_binary(len, raw.as_mut_ptr()) } == 0 {
        return (atoms::error(), (atoms::out_of_memory(), len as u64)).encode(env);
    }
    // SAFETY: `raw` was allocated above; the OwnedBinary owns it from here
    // (released into the term below).
    let mut owned = unsafe { OwnedBinary::from_raw(raw.assume_init()) };
    fill(owned.as_mut_slice());
    (atoms::execution_result(), owned.release(env)).encode(env)
}

fn binary<'a>(bytes: &[u8], env: Env<'a>) -> Term<'a> {
    OwnedBinary::from_slice(bytes).release(env).encode(env)
}

impl Message<'_> {
    pub fn encode<'e>(&self, env: Env<'e>) -> Term<'e> {
        match self {
            Message::Results(values) => {
                (atoms::execution_result(), encode_values(values, env)).encode(env)
            }
            Message::Import {
                module,
                func,
                args,
                signature,
            } => (
                atoms::import(),
                binary(module.as_bytes(), env),
                binary(func.as_bytes(), env),
                encode_values(args, env),
                binary(signature.as_bytes(), env),
            )
                .encode(env),
            Message::Started { imports, exports } => {
                let imports: Vec<Term<'e>> = imports
                    .iter()
                    .map(|i| {
                        (
                            kind_atom(i.kind, env),
                            binary(i.module.as_bytes(), env),
                            binary(i.name.as_bytes(), env),
                            binary(i.signature.as_bytes(), env),
                        )
                            .encode(env)
                    })
                    .collect();
                let exports: Vec<Term<'e>> = exports
                    .iter()
                    .map(|e| {
                        (
                            kind_atom(e.kind, env),
                            binary(e.name.as_bytes(), env),
                            binary(e.signature.as_bytes(), env),
                        )
                            .encode(env)
                    })
                    .collect();
                (atoms::execution_result(), imports, exports).encode(env)
            }
            Message::Size(size) => (atoms::execution_result(), *size).encode(env),
            Message::Bytes(bytes) => {
                large_result(env, bytes.len(), |out| out.copy_from_slice(bytes))
            }
            Message::Snapshot { header, memory } => {
                large_result(env, header.len() + memory.len(), |out| {
                    out[..header.len()].copy_from_slice(header);
                    out[header.len()..].copy_from_slice(memory);
                })
            }
            Message::Written => atoms::ok().encode(env),
            Message::Fuel { remaining, used } => {
                let pairs = [
                    (atoms::remaining().encode(env), remaining.encode(env)),
                    (atoms::used().encode(env), used.encode(env)),
                ];
                let map = Term::map_from_pairs(env, &pairs).unwrap_or_else(|_| used.encode(env));
                (atoms::execution_result(), map).encode(env)
            }
            Message::Failed(error) => (atoms::error(), ErrorTerm(error)).encode(env),
            Message::Image(image) => (atoms::execution_result(), image).encode(env),
        }
    }
}

/// `{error, Reason}`: what a NIF returns when it refuses a request.
pub fn error_term<'a>(env: Env<'a>, error: Error) -> Term<'a> {
    (atoms::error(), ErrorTerm(&error)).encode(env)
}

/// What a NIF that sends a request returns: the reply's id, or why not.
pub fn reply_result<'a>(env: Env<'a>, result: Result<u64, Error>) -> Term<'a> {
    match result {
        Ok(id) => id.encode(env),
        Err(error) => error_term(env, error),
    }
}

/// A number as Erlang gave it (an argument, an import's answer).
fn decode_number(term: Term) -> Option<Number> {
    match term.get_type() {
        // Past 128 bits an integer fits no type: fitting it says so, as for
        // any number out of range (an import's answer is then an
        // `invalid_import_response`, a call's argument `invalid_args`).
        TermType::Integer => Some(term.decode::<i128>().map_or(Number::Huge, Number::Int)),
        TermType::Float => term.decode::<f64>().ok().map(Number::Float),
        TermType::Atom => {
            let atom = term.decode::<Atom>().ok()?;
            if atom == in_atoms::infinity() {
                Some(Number::Float(f64::INFINITY))
            } else if atom == in_atoms::neg_infinity() {
                Some(Number::Float(f64::NEG_INFINITY))
            } else if atom == in_atoms::nan() {
                Some(Number::Float(f64::NAN))
            } else {
                None
            }
        }
        _ => None,
    }
}

pub fn decode_numbers(term: Term) -> Result<Vec<Number>, Error> {
    let items: Vec<Term> = term.decode().map_err(|_| Error::InvalidArgs)?;
    items
        .into_iter()
        .map(decode_number)
        .collect::<Option<Vec<_>>>()
        .ok_or(Error::InvalidArgs)
}

/// A function name (string or binary) or a table index.
pub fn decode_target(term: Term) -> Result<Target, Error> {
    match term.get_type() {
        TermType::Integer => term
            .decode::<u32>()
            .map(Target::TableIndex)
            .map_err(|_| Error::InvalidArgs),
        TermType::Binary => term
            .decode::<String>()
            .map(Target::Name)
            .map_err(|_| Error::FunctionNotFound),
        TermType::List => {
            let chars: Vec<u32> = term.decode().map_err(|_| Error::FunctionNotFound)?;
            chars
                .into_iter()
                .map(char::from_u32)
                .collect::<Option<String>>()
                .map(Target::Name)
                .ok_or(Error::FunctionNotFound)
        }
        _ => Err(Error::FunctionNotFound),
    }
}
