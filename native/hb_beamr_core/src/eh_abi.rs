//! The host interface between modules rewritten by `hb_beamr_eh` (exception
//! handling lowered to host calls, for WAMR's AOT compiler) and the runtime
//! that serves it. Every import lives in module [`MODULE`].
//!
//! - [`THROW`] `(i64 payload, i32 code)`: raise exception `code` (tag index
//!   + 1) with its payload; it unwinds to the nearest host try call.
//! - `call_indirect.N` `(params..., i32 index) -> results`: call table
//!   element `index`; [`CALL_EXPORT_PREFIX`]`NAME` `(params...) -> results`:
//!   call export `NAME`. Both report whether a throw unwound the call: read
//!   [`CAUGHT`] `() -> i32` right after (0: returned normally, else the
//!   code) and [`PAYLOAD`] `() -> i64`.

/// The import module of the interface.
pub const MODULE: &str = "hb_beamr_eh";
/// `(i64 payload, i32 code) -> ()`.
pub const THROW: &str = "throw";
/// `() -> i32`: the code of the exception that unwound the last try call.
pub const CAUGHT: &str = "caught";
/// `() -> i64`: its payload.
pub const PAYLOAD: &str = "payload";
/// Prefix of `call_indirect.N` imports (table 0).
pub const CALL_INDIRECT_PREFIX: &str = "call_indirect.";
/// Prefix of `call:EXPORT` imports.
pub const CALL_EXPORT_PREFIX: &str = "call:";
/// Prefix of the exports the rewriter adds for `call:` imports; hidden
/// from a module's export list.
pub const EXPORT_PREFIX: &str = "hb_beamr_eh.";

/// How the runtime serves an import of [`MODULE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostImport {
    Throw,
    Caught,
    Payload,
    /// Call table element (last argument) of table 0.
    CallIndirect,
    /// Call the named export.
    CallExport(String),
}

impl HostImport {
    /// Recognises an import by its module and name.
    pub fn parse(module: &str, name: &str) -> Option<HostImport> {
        if module != MODULE {
            return None;
        }
        match name {
            THROW => Some(HostImport::Throw),
            CAUGHT => Some(HostImport::Caught),
            PAYLOAD => Some(HostImport::Payload),
            _ if name.starts_with(CALL_INDIRECT_PREFIX) => Some(HostImport::CallIndirect),
            _ => name
                .strip_prefix(CALL_EXPORT_PREFIX)
                .filter(|export| !export.is_empty())
                .map(|export| HostImport::CallExport(export.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(HostImport::parse(MODULE, "throw"), Some(HostImport::Throw));
        assert_eq!(
            HostImport::parse(MODULE, "caught"),
            Some(HostImport::Caught)
        );
        assert_eq!(
            HostImport::parse(MODULE, "payload"),
            Some(HostImport::Payload)
        );
        assert_eq!(
            HostImport::parse(MODULE, "call_indirect.3"),
            Some(HostImport::CallIndirect)
        );
        assert_eq!(
            HostImport::parse(MODULE, "call:hb_beamr_eh.f7"),
            Some(HostImport::CallExport("hb_beamr_eh.f7".into()))
        );
        assert_eq!(HostImport::parse(MODULE, "call:"), None);
        assert_eq!(HostImport::parse("env", "throw"), None);
        assert_eq!(HostImport::parse(MODULE, "other"), None);
    }
}
