//! Messages from an instance's worker thread to Erlang processes.
//!
//! Requests made through `hb_beamr` carry an id, and their replies arrive as
//! `{hb_beamr, Id, Message}`; raw `wasm_send/2` commands get the original
//! driver's untagged messages (`{execution_result, R}`, `{import, ...}`,
//! `{error, R}`, `ok`).

use rustler::{Encoder, Env, LocalPid, OwnedBinary, OwnedEnv, Term};

use crate::errors::ErrorTerm;
use hb_beamr_core::errors::Error;
use hb_beamr_core::values::Value;
use hb_beamr_engine::{ExportInfo, ExternKind, ImportInfo};

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
    }
}

/// Where a reply goes: a process, and the request id (none for raw commands).
pub type ReplyTo = hb_beamr_core::protocol::ReplyTo<LocalPid>;

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
    Failed(&'a Error),
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
    fn encode<'e>(&self, env: Env<'e>) -> Term<'e> {
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
            Message::Failed(error) => (atoms::error(), ErrorTerm(error)).encode(env),
        }
    }
}

/// The worker thread's outgoing message buffer (one process-independent env,
/// cleared after every send).
pub struct Mailbox {
    env: OwnedEnv,
}

impl Default for Mailbox {
    fn default() -> Self {
        Mailbox {
            env: OwnedEnv::new(),
        }
    }
}

impl Mailbox {
    /// Sends `message` to `to`. A dead recipient is not an error: the reply
    /// is dropped, as Erlang drops messages to dead processes.
    pub fn send(&mut self, to: &ReplyTo, message: Message<'_>) {
        let _ = self.env.send_and_clear(&to.pid, |env| {
            let body = message.encode(env);
            match to.id {
                Some(id) => (atoms::hb_beamr(), id, body).encode(env),
                None => body,
            }
        });
    }
}
