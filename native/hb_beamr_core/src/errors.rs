//! Every way an hb_beamr operation can fail.

/// A failure, with enough words for a person to act on it.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The bytes are not a WebAssembly module this runtime accepts.
    InvalidWasm(String),
    /// The bytes are not an AOT file this runtime (version, CPU) accepts.
    InvalidAot(String),
    /// The module loaded but could not be instantiated.
    Instantiation(String),
    /// No exported function of that name.
    FunctionNotFound,
    /// Wrong number or types of arguments for the function's signature.
    InvalidArgs,
    /// The function's signature has types hb_beamr cannot exchange (v128, references).
    UnsupportedSignature(String),
    /// WebAssembly trapped; the text is WAMR's.
    Trap(String),
    /// An indirect call on a module that exports no function table.
    NoFunctionTable,
    /// A memory access outside the instance's current linear memory.
    OutOfBounds { offset: u64, length: u64, size: u64 },
    /// The instance was stopped (before or during the operation).
    Stopped,
    /// The call ran past its `timeout` and was stopped inside WebAssembly.
    Timeout,
    /// An import function answered with results that do not fit its signature.
    InvalidImportResponse(String),
    /// The process that made the call exited while an import was pending.
    CallerExited,
    /// The caller aborted the call while an import was pending.
    ImportAborted,
    /// An import answer from a process that does not own the waiting call.
    NotCallOwner,
    /// An import answer when no import (or not that call's) is waiting.
    NoPendingImport,
    /// Bytes that are not a snapshot this hb_beamr reads.
    InvalidSnapshot(String),
    /// A snapshot of another module.
    SnapshotMismatch(String),
    /// A snapshot whose memory is larger than the instance may grow to.
    SnapshotTooLarge { size: u64, max: u64 },
    /// An instance whose state a snapshot cannot hold.
    SnapshotUnsupported(String),
    /// WAMR itself could not start.
    RuntimeInit(String),
    /// No native thread could be started for the instance.
    ThreadSpawn(String),
    /// Loading the module would take loaded modules past their bound
    /// (`module_cache_max_bytes`): `loaded` bytes of modules with live
    /// instances, the module's `size`, the bound `max`.
    ModuleLimit { loaded: u64, size: u64, max: u64 },
    /// A metered call ran out of fuel; the fuel it used.
    OutOfFuel(u64),
    /// A fuel operation on an instance started without `fuel`.
    NotMetered,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidWasm(m) => write!(f, "invalid WebAssembly module: {m}"),
            Error::InvalidAot(m) => write!(f, "invalid AOT file: {m}"),
            Error::Instantiation(m) => write!(f, "instantiation failed: {m}"),
            Error::FunctionNotFound => f.write_str("no exported function of that name"),
            Error::InvalidArgs => {
                f.write_str("wrong number or types of arguments for the function's signature")
            }
            Error::UnsupportedSignature(m) => write!(f, "unsupported signature: {m}"),
            Error::Trap(m) => f.write_str(m),
            Error::NoFunctionTable => f.write_str("the module exports no function table"),
            Error::OutOfBounds {
                offset,
                length,
                size,
            } => write!(
                f,
                "out of bounds: {length} bytes at offset {offset} in a memory of {size} bytes"
            ),
            Error::Stopped => f.write_str("instance stopped"),
            Error::Timeout => f.write_str("call timed out"),
            Error::InvalidImportResponse(m) => write!(f, "invalid import response: {m}"),
            Error::CallerExited => f.write_str("the calling process exited during an import"),
            Error::ImportAborted => f.write_str("import aborted by its caller"),
            Error::NotCallOwner => {
                f.write_str("an import answer from a process that does not own the call")
            }
            Error::NoPendingImport => f.write_str("no import is waiting for that answer"),
            Error::InvalidSnapshot(m) => write!(f, "invalid snapshot: {m}"),
            Error::SnapshotMismatch(m) => write!(f, "snapshot of another module: {m}"),
            Error::SnapshotTooLarge { size, max } => write!(
                f,
                "snapshot memory of {size} bytes is larger than the instance may grow to \
                 ({max} bytes)"
            ),
            Error::SnapshotUnsupported(m) => write!(f, "snapshot unsupported: {m}"),
            Error::RuntimeInit(m) => write!(f, "WAMR could not start: {m}"),
            Error::ThreadSpawn(m) => write!(f, "could not start the instance's thread: {m}"),
            Error::ModuleLimit { loaded, size, max } => write!(
                f,
                "loaded modules would exceed their bound: {loaded} bytes in use, \
                 {size} more, at most {max}"
            ),
            Error::OutOfFuel(used) => write!(f, "out of fuel after {used}"),
            Error::NotMetered => f.write_str("the instance is not metered (start it with fuel)"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn display_is_words_not_debug() {
        assert_eq!(Error::Trap("unreachable".into()).to_string(), "unreachable");
        assert_eq!(
            Error::OutOfBounds {
                offset: 8,
                length: 4,
                size: 10
            }
            .to_string(),
            "out of bounds: 4 bytes at offset 8 in a memory of 10 bytes"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(Error::InvalidArgs);
        assert!(!boxed.to_string().contains("InvalidArgs"));
    }
}
