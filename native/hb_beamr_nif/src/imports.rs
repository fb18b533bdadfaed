//! Imports that Erlang answers: the worker is the engine's [`Host`]. The
//! protocol says how each import is served (asked of the call's owner,
//! stubbed, refused, or unwound at once); while one waits, the worker
//! carries out actions until the protocol delivers the owner's answer or
//! unwinds the call.

use hb_beamr_core::protocol::{Action, Failure, ImportStep};
use hb_beamr_core::signature::FuncSig;
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
        let sig = desc
            .sig
            .as_ref()
            .ok_or_else(|| Trap::new(desc.unsupported()))?;
        let step = self.protocol.borrow_mut().import_requested();
        let to = match step {
            ImportStep::Stub => return Ok(desc.zero_results()),
            ImportStep::Refuse => return Err(outside_a_call(desc)),
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
                Action::Deliver(results) => return self.fit_answer(desc, sig, results),
                Action::Unwind(failure) => return Err(unwound(failure)),
                other => carry_out(self, other),
            }
        }
    }
}

impl Worker {
    fn fit_answer(
        &self,
        desc: &ImportDesc,
        sig: &FuncSig,
        results: Vec<Number>,
    ) -> Result<Vec<Value>, Trap> {
        // HyperBEAM's stub answers `[0]` to every import: a void import
        // ignores whatever it is given.
        if sig.results.is_empty() {
            return Ok(Vec::new());
        }
        Value::fit_all(&results, &sig.results).ok_or_else(|| {
            let text = format!(
                "{}.{} must return {} value(s) of types {}, got {:?}",
                desc.module,
                desc.name,
                sig.results.len(),
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

fn outside_a_call(desc: &ImportDesc) -> Trap {
    Trap::new(format!(
        "import {}.{} called outside a call (from a start function? start/3 takes an \
         import_fun for those)",
        desc.module, desc.name
    ))
}
