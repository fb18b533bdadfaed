//! Imports that Erlang answers: the worker is the engine's [`Host`]. The
//! protocol says how each import is served (asked of the call's owner,
//! stubbed, refused, or unwound at once); while one waits, the worker
//! carries out actions until the protocol delivers the owner's answer or
//! unwinds the call.

use hb_beamr_core::protocol::{Action, Failure, ImportStep};
use hb_beamr_core::values::{Number, Value};
use hb_beamr_engine::{EngineInstance, Host, ImportDesc, InstanceRef, Trap};

use crate::actions::carry_out;
use crate::context::{Instantiating, Worker};
use crate::mailbox::Message;
use hb_beamr_core::errors::Error;

impl Host for Worker {
    fn engine(&self) -> Option<&EngineInstance> {
        self.engine.get()
    }

    /// `Err` is the trap the call unwinds with.
    fn import(
        &self,
        instance: InstanceRef,
        desc: &ImportDesc,
        args: &[Value],
    ) -> Result<Vec<Value>, Trap> {
        self.serve_import(instance, desc, args)
    }

    fn out_of_fuel(
        &self,
        instance: InstanceRef,
        _desc: &ImportDesc,
        needed: i64,
    ) -> Result<(), Trap> {
        self.serve_out_of_fuel(instance, needed)
    }
}

impl Worker {
    fn serve_import(
        &self,
        instance: InstanceRef,
        desc: &ImportDesc,
        args: &[Value],
    ) -> Result<Vec<Value>, Trap> {
        // An import no answer can carry fails the call, however its
        // imports are served: the protocol records why.
        let servable = desc
            .servable_sig()
            .map(|_| ())
            .ok_or_else(|| Error::UnsupportedSignature(desc.unsupported()));
        let step = self.protocol.borrow_mut().import_requested(servable);
        let to = match step {
            ImportStep::Stub => return Ok(desc.zero_results()),
            ImportStep::Refuse => return Err(refused(desc)),
            ImportStep::Unwind(failure) => return Err(unwound(failure)),
            ImportStep::Ask { to, .. } => to,
        };
        self.send(
            &to,
            Message::Import {
                module: &desc.module,
                func: &desc.name,
                args,
                signature: &desc.signature,
            },
        );
        let _instantiating = self
            .engine
            .get()
            .is_none()
            .then(|| Instantiating::enter(instance));
        loop {
            let Some(action) = self.next_action() else {
                return Err(unwound(Failure::Stopped));
            };
            match action {
                Action::Deliver(results) => return self.fit_answer(desc, results),
                Action::Unwind(failure) => return Err(unwound(failure)),
                other => carry_out(self, other),
            }
        }
    }
}

impl Worker {
    fn fit_answer(&self, desc: &ImportDesc, results: Vec<Number>) -> Result<Vec<Value>, Trap> {
        // Only an import with a signature is ever asked.
        let kinds = desc.servable_sig().map_or(&[][..], |sig| &sig.results[..]);
        Value::fit_answer(&results, kinds).ok_or_else(|| {
            let text = format!(
                "{}.{} must return {} value(s) of types {}, got {:?}",
                desc.module,
                desc.name,
                kinds.len(),
                desc.signature,
                results
            );
            let error = Error::InvalidImportResponse(text.clone());
            self.protocol.borrow_mut().answer_unfit(error);
            Trap::new(text)
        })
    }
}

/// The trap of an import the protocol unwound (the call's reply is
/// the protocol's, not this).
pub(crate) fn unwound(failure: Failure) -> Trap {
    Trap::new(match failure {
        Failure::Stopped => "instance stopped",
        Failure::Timeout => "call timed out",
        Failure::CallerExited => "the calling process exited during an import",
        Failure::ImportAborted => "import aborted by its caller",
    })
}

/// The trap of a refused import: one no answer can carry (the call ends
/// with the protocol's `unsupported_signature`), or one outside a call.
fn refused(desc: &ImportDesc) -> Trap {
    if desc.servable_sig().is_none() {
        return Trap::new(desc.unsupported());
    }
    Trap::new(format!(
        "import {}.{} called outside a call (from a start function? start/3 takes an \
         import_fun for those)",
        desc.module, desc.name
    ))
}
