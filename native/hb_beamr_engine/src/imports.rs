//! Function imports as hb_beamr sees them: what each one is and how it is
//! served (see `trampoline.rs` for the serving).

use hb_beamr_core::eh_abi::HostImport;
use hb_beamr_core::signature::FuncSig;
use hb_beamr_core::values::{ValKind, Value};

/// How an import is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// Served by the thread's [`crate::Host`] (the caller's import function, for the NIF).
    Host,
    /// emscripten `invoke_*`: call table element `args[0]` with the rest.
    Invoke,
    /// Rewritten exception handling (`hb_beamr_eh`), see eh_host.rs.
    Eh(HostImport),
    /// A metered module's `hb_beamr`.`out_of_fuel` `(i64 needed) -> ()`
    /// (`hb_beamr_meter`): served by [`crate::Host::out_of_fuel`].
    Fuel,
}

/// The import module and name of a metered module's `out_of_fuel`.
pub const FUEL_IMPORT: (&str, &str) = ("hb_beamr", "out_of_fuel");
/// The export name of a metered module's counter.
pub const FUEL_EXPORT: &str = "hb_beamr.fuel";

/// One function import of a module. Boxed and owned by the module, so WAMR
/// can keep a pointer to it as the import's attachment.
#[derive(Debug)]
pub struct ImportDesc {
    pub module: String,
    pub name: String,
    /// `None` when the import uses types hb_beamr cannot exchange.
    pub sig: Option<FuncSig>,
    pub signature: String,
    pub kind: ImportKind,
}

impl ImportDesc {
    pub(crate) fn new(module: String, name: String, sig: Option<FuncSig>) -> ImportDesc {
        let is_invoke = module == "env"
            && name.starts_with("invoke_")
            && sig
                .as_ref()
                .is_some_and(|s| s.params.first() == Some(&ValKind::I32));
        let is_fuel = (module.as_str(), name.as_str()) == FUEL_IMPORT
            && sig
                .as_ref()
                .is_some_and(|s| s.params == [ValKind::I64] && s.results.is_empty());
        let kind = match HostImport::parse(&module, &name) {
            Some(host) => ImportKind::Eh(host),
            None if is_fuel => ImportKind::Fuel,
            None if is_invoke => ImportKind::Invoke,
            None => ImportKind::Host,
        };
        ImportDesc {
            signature: sig.as_ref().map(|s| s.encode()).unwrap_or_default(),
            kind,
            module,
            name,
            sig,
        }
    }

    pub fn is_native(&self) -> bool {
        self.kind != ImportKind::Host
    }

    /// The import's signature, if hb_beamr can exchange its values: numbers
    /// only, and at most one result.
    pub fn servable_sig(&self) -> Option<&FuncSig> {
        self.sig.as_ref().filter(|sig| sig.results.len() <= 1)
    }

    /// Why an import without a servable signature cannot be served.
    pub fn unsupported(&self) -> String {
        match &self.sig {
            Some(_) => format!(
                "import {}.{} returns several values; hb_beamr serves imports with at most one \
                 result",
                self.module, self.name
            ),
            None => format!(
                "import {}.{} has a signature hb_beamr cannot serve (v128 or reference types)",
                self.module, self.name
            ),
        }
    }

    /// What `hb_beamr:stub/3` answers: zeros.
    pub fn zero_results(&self) -> Vec<Value> {
        let kinds = self
            .sig
            .as_ref()
            .map(|s| s.results.as_slice())
            .unwrap_or(&[]);
        kinds.iter().map(|k| Value::from_slot(0, *k)).collect()
    }
}
