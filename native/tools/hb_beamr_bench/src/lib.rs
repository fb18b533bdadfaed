//! The baseline of `make bench` (see `erlang/hb_beamr_bench.erl`): the same
//! hand-off hb_beamr makes for a call or an import, with nothing run in
//! between. A NIF decodes the arguments and sends a job over a crossbeam
//! channel to a Rust thread, which answers the calling process with
//! `enif_send` in hb_beamr's message shapes. Not part of the library.
//!
//! It waits the way hb_beamr's workers wait (`hb_beamr_core::spin::recv`:
//! a bounded poll of its channel before parking), and its Erlang side polls
//! for replies as `hb_beamr:call` does, so the ratio measures hb_beamr's
//! own cost, not a difference in wake-up strategy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crossbeam_channel::{Receiver, Sender};
use hb_beamr_core::spin::recv;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Resource, ResourceArc, Term};

mod atoms {
    rustler::atoms! { ok, error, stopped, hb_beamr, execution_result, import }
}

enum Job {
    /// Answer `{execution_result, Args}` at once.
    Echo {
        pid: LocalPid,
        id: u64,
        args: Vec<f64>,
    },
    /// Ask the caller `n` imports, one at a time, then answer their sum.
    Imports { pid: LocalPid, id: u64, n: u32 },
    /// The caller's answer to the pending import.
    Respond(i64),
}

/// One echo thread; dropping the resource closes its channel and ends it.
pub struct Echo {
    tx: Mutex<Sender<Job>>,
}

#[rustler::resource_impl]
impl Resource for Echo {}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn reply<'a>(env: Env<'a>, id: u64, body: Term<'a>) -> Term<'a> {
    (atoms::hb_beamr(), id, body).encode(env)
}

fn serve(rx: Receiver<Job>) {
    let mut out = OwnedEnv::new();
    while let Ok(job) = recv(&rx) {
        match job {
            Job::Echo { pid, id, args } => {
                let _ = out.send_and_clear(&pid, |env| {
                    reply(env, id, (atoms::execution_result(), &args).encode(env))
                });
            }
            Job::Imports { pid, id, n } => {
                let mut sum = 0i64;
                for i in (1..=n).rev() {
                    let _ = out.send_and_clear(&pid, |env| {
                        let module = "env".encode(env);
                        let func = "tick".encode(env);
                        let sig = "(i32)i32".encode(env);
                        let body = (atoms::import(), module, func, vec![i], sig).encode(env);
                        reply(env, id, body)
                    });
                    match recv(&rx) {
                        Ok(Job::Respond(value)) => sum += value,
                        _ => return,
                    }
                }
                let _ = out.send_and_clear(&pid, |env| {
                    reply(env, id, (atoms::execution_result(), vec![sum]).encode(env))
                });
            }
            Job::Respond(_) => {}
        }
    }
}

fn submit<'a>(env: Env<'a>, echo: &Echo, job: Job, id: u64) -> Term<'a> {
    let sent = echo
        .tx
        .lock()
        .map_err(|_| ())
        .and_then(|tx| tx.send(job).map_err(|_| ()));
    match sent {
        Ok(()) => id.encode(env),
        Err(()) => (atoms::error(), atoms::stopped()).encode(env),
    }
}

/// Starts an echo thread.
#[rustler::nif]
fn start() -> Result<ResourceArc<Echo>, rustler::Error> {
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("hb_beamr_bench".into())
        .spawn(move || serve(rx))
        .map_err(|_| rustler::Error::BadArg)?;
    Ok(ResourceArc::new(Echo { tx: Mutex::new(tx) }))
}

/// Like `hb_beamr_nif:call/4`: returns an id; the thread then sends
/// `{hb_beamr, Id, {execution_result, Args}}`.
#[rustler::nif]
fn call<'a>(env: Env<'a>, echo: ResourceArc<Echo>, args: Vec<f64>) -> Term<'a> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let job = Job::Echo {
        pid: env.pid(),
        id,
        args,
    };
    submit(env, &echo, job, id)
}

/// Like a call of an export that imports `n` times: `{import, ...}`
/// messages, each answered with `respond/2`, then the result.
#[rustler::nif]
fn imports<'a>(env: Env<'a>, echo: ResourceArc<Echo>, n: u32) -> Term<'a> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let job = Job::Imports {
        pid: env.pid(),
        id,
        n,
    };
    submit(env, &echo, job, id)
}

/// Like `hb_beamr_nif:import_response/3`.
#[rustler::nif]
fn respond(echo: ResourceArc<Echo>, results: Vec<i64>) -> rustler::Atom {
    let value = results.first().copied().unwrap_or(0);
    let _ = echo.tx.lock().map(|tx| tx.send(Job::Respond(value)));
    atoms::ok()
}

rustler::init!("hb_beamr_bench_nif");
