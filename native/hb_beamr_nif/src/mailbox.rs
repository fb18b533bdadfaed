//! Messages from an instance's worker thread to Erlang processes.
//!
//! Requests made through `hb_beamr` carry an id, and their replies arrive as
//! `{hb_beamr, Id, Message}`; raw `wasm_send/2` commands get the original
//! driver's untagged messages (`{execution_result, R}`, `{import, ...}`,
//! `{error, R}`, `ok`).

use rustler::{Encoder, LocalPid, OwnedEnv};

pub use crate::codec::Message;

mod atoms {
    rustler::atoms! { hb_beamr }
}

/// Where a reply goes: a process, and the request id (none for raw commands).
pub type ReplyTo = hb_beamr_core::protocol::ReplyTo<LocalPid>;

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
