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
}
