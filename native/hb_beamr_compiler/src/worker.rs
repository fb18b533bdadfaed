//! The compiler thread: one native thread, owned by the NIF library and
//! started on first use, compiles the queued requests one at a time and
//! sends each result to its caller (`enif_send`). No BEAM scheduler, dirty
//! or not, runs or waits for a compile: the NIF call only queues.
//!
//! A request keeps the module alive without copying it: the caller's
//! binary is saved into the request's own environment (a reference to the
//! same bytes), and that environment is cleared by the reply.
//!
//! The thread outlives any module version: the library is pinned in memory
//! (`RTLD_NODELETE`) before the thread starts, so that purging
//! `hb_beamr_compiler_nif` while a module compiles cannot unmap its code.
//!
//! Every request gets exactly one reply: a panic while compiling becomes
//! `{error, {compile_failed, Why}}`; the reply is built from values
//! prepared beforehand, so sending it cannot panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread;

use hb_beamr_aotc::{compile, CompileError, Options};
use rustler::env::{OwnedEnv, SavedTerm};
use rustler::{Binary, Encoder, LocalPid, OwnedBinary, Term};

use crate::atoms;

/// LLVM recurses over large functions: far more room than a scheduler's
/// stack (only reserved, not committed, until used).
const STACK_BYTES: usize = 64 * 1024 * 1024;

/// One compile: the module, the caller's tag and pid, the options.
pub struct Request {
    env: OwnedEnv,
    wasm: SavedTerm,
    tag: SavedTerm,
    reply_to: LocalPid,
    options: Options,
}

impl Request {
    /// A request for `wasm` (a binary term), answered to `reply_to` as
    /// `{hb_beamr_compiled, Tag, Result}`.
    pub fn new(wasm: Term, tag: Term, reply_to: LocalPid, options: Options) -> Request {
        let env = OwnedEnv::new();
        let wasm = env.save(wasm);
        let tag = env.save(tag);
        Request {
            env,
            wasm,
            tag,
            reply_to,
            options,
        }
    }
}

/// Why a request could not be queued: the compiler thread could not be
/// started (the system's words).
#[derive(Debug)]
pub struct SpawnFailed(pub String);

/// The queue of the compiler thread, once started (the mutex guards only
/// the queue's handle, never a compile).
static QUEUE: Mutex<Option<Sender<Request>>> = Mutex::new(None);

/// Queues `request`, starting the compiler thread if there is none (or if
/// it is gone).
pub fn submit(request: Request) -> Result<(), SpawnFailed> {
    let mut queue = QUEUE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let request = match queue.as_ref() {
        Some(sender) => match sender.send(request) {
            Ok(()) => return Ok(()),
            // The thread is gone: start another.
            Err(mpsc::SendError(request)) => request,
        },
        None => request,
    };
    pin_library();
    let (sender, receiver) = mpsc::channel();
    thread::Builder::new()
        .name("hb_beamr_compiler".into())
        .stack_size(STACK_BYTES)
        .spawn(move || serve(receiver))
        .map_err(|why| SpawnFailed(why.to_string()))?;
    sender
        .send(request)
        .map_err(|_| SpawnFailed("the compiler thread exited at once".into()))?;
    *queue = Some(sender);
    Ok(())
}

/// Keeps this library mapped for the life of the process: the BEAM unloads
/// a NIF library when its module is purged, and the compiler thread runs
/// its code. Best effort: where the library cannot be found, nothing is
/// pinned (a purge while compiling is then the only danger).
fn pin_library() {
    static PINNED: std::sync::Once = std::sync::Once::new();
    PINNED.call_once(|| {
        // SAFETY: dladdr reads the loader's tables for an address of this
        // library; dlopen with RTLD_NOLOAD only takes one more reference to
        // the already loaded library (never closed: that is the point).
        unsafe {
            let mut info: libc::Dl_info = std::mem::zeroed();
            let here = pin_library as *const libc::c_void;
            if libc::dladdr(here, &mut info) != 0 && !info.dli_fname.is_null() {
                let _ = libc::dlopen(
                    info.dli_fname,
                    libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
                );
            }
        }
    });
}

fn serve(receiver: Receiver<Request>) {
    for request in receiver {
        // `answer` catches the compiler's panics itself; this one only
        // keeps the thread serving whatever happens.
        let _ = catch_unwind(AssertUnwindSafe(|| answer(request)));
    }
}

/// What a compile produced, ready to be put in a message.
enum Outcome {
    Compiled(OwnedBinary),
    Failed(CompileError),
}

fn answer(mut request: Request) {
    let wasm = request.wasm.clone();
    let options = request.options.clone();
    let outcome = request.env.run(|env| {
        catch_unwind(AssertUnwindSafe(|| {
            match wasm.load(env).decode::<Binary>() {
                Ok(bytes) => match compile(bytes.as_slice(), &options) {
                    Ok(compiled) => Outcome::Compiled(OwnedBinary::from_slice(&compiled.aot)),
                    Err(why) => Outcome::Failed(why),
                },
                Err(_) => Outcome::Failed(CompileError::InvalidWasm("not a binary".into())),
            }
        }))
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the compiler panicked".into());
            Outcome::Failed(CompileError::Failed(why))
        })
    });
    let tag = request.tag.clone();
    let reply_to = request.reply_to;
    // The caller may have exited: nothing to do then.
    let _ = request.env.send_and_clear(&reply_to, |env| {
        let result = match outcome {
            Outcome::Compiled(aot) => (atoms::ok(), aot.release(env)).encode(env),
            Outcome::Failed(CompileError::InvalidWasm(why)) => {
                (atoms::error(), (atoms::invalid_wasm(), why)).encode(env)
            }
            Outcome::Failed(CompileError::Failed(why)) => {
                (atoms::error(), (atoms::compile_failed(), why)).encode(env)
            }
        };
        (atoms::hb_beamr_compiled(), tag.load(env), result).encode(env)
    });
}
