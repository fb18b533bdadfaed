//! Carrying out the actions the protocol decides, outside an import wait:
//! running calls (`calls`), serving memory and state operations (`state`),
//! and the refusals. The serving loop (`worker`) and the import waits nested
//! in it (`imports`, `fuel`) all carry out actions here; none of those is
//! imported by this module, so the dependencies stay one way.

use crate::calls;
use crate::context::{Action, Worker};
use crate::mailbox::Message;
use crate::state;

/// Carries out an action outside an import wait (an import wait takes its
/// own `Deliver` and `Unwind`; none is waiting here).
pub fn carry_out(worker: &Worker, action: Action) {
    match action {
        Action::Run(call) => calls::run(worker, call),
        Action::Serve(op) => state::serve(worker, op),
        Action::Refuse(request, failure) => {
            worker.send(&request.reply(), Message::Failed(&failure.error()))
        }
        // Dropping the body releases the monitor on the dead caller.
        Action::Drop(_) => {}
        Action::Reject { to, why } => worker.send(&to, Message::Failed(&why.error())),
        Action::Deliver(_) | Action::Unwind(_) => {}
    }
}
