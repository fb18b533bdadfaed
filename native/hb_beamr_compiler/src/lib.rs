//! The AOT compiler NIF, `hb_beamr_compiler_nif`: the Erlang face of
//! `hb_beamr_aotc`. It is a library of its own, loaded only when
//! `hb_beamr:compile/1,2` is first used, so that the runtime needs no LLVM.
//! Compiling runs on the library's own compiler thread (`worker`), one
//! module at a time: the NIF call only queues the request and returns, and
//! the result comes to the caller as a message. No scheduler, dirty or not,
//! is held while a module compiles or waits for the compiler.

use hb_beamr_aotc::{Cpu, Options};
use rustler::{Atom, Binary, Encoder, Env, Term};

mod atoms;
mod worker;

fn decode_cpu(term: Term) -> Option<Cpu> {
    if let Ok(atom) = term.decode::<Atom>() {
        if atom == atoms::host() {
            return Some(Cpu::Host);
        }
        if atom == atoms::generic() {
            return Some(Cpu::Generic);
        }
        return None;
    }
    let name: String = term.decode().ok()?;
    Cpu::named(&name)
}

/// `submit(Tag, Wasm, OptLevel, SizeLevel, BoundsChecks, TargetCpu,
/// Deterministic, Metered)` → `ok` | `{error, Reason}`: queues the module for the
/// compiler thread and returns at once (a normal scheduler: nothing here
/// copies the module or waits). The result comes to the calling process as
/// `{hb_beamr_compiled, Tag, {ok, Aot} | {error, Reason}}`, exactly once.
/// The Erlang side checks the options; the target is resolved once
/// (`hb_beamr_aotc::Target`) and recorded in the file's tag.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn submit<'a>(
    env: Env<'a>,
    tag: Term<'a>,
    wasm: Binary<'a>,
    opt_level: u32,
    size_level: u32,
    bounds_checks: bool,
    target_cpu: Term<'a>,
    deterministic: bool,
    metered: bool,
) -> Term<'a> {
    let Some(cpu) = decode_cpu(target_cpu) else {
        return (atoms::error(), (atoms::invalid_option(), target_cpu)).encode(env);
    };
    let options = Options {
        opt_level,
        size_level,
        bounds_checks,
        cpu,
        deterministic,
        metered,
    };
    let request = worker::Request::new(wasm.to_term(env), tag, env.pid(), options);
    match worker::submit(request) {
        Ok(()) => atoms::ok().encode(env),
        Err(worker::SpawnFailed(why)) => {
            (atoms::error(), (atoms::thread_spawn_failed(), why)).encode(env)
        }
    }
}

rustler::init!("hb_beamr_compiler_nif");
