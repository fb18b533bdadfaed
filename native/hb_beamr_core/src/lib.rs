//! The parts of hb_beamr that need neither the BEAM nor a running engine:
//! WebAssembly values and their conversions, signatures in HyperBEAM's
//! notation, memory bounds checks, the error type, and the bounded poll
//! threads wait with. Kept apart from the
//! NIF crate so that they can be unit-tested as plain Rust.

pub mod aot_tag;
pub mod c_text;
pub mod cpu_features;
pub mod eh_abi;
pub mod errors;
pub mod memory;
pub mod protocol;
pub mod signature;
pub mod snapshot;
pub mod spin;
pub mod values;
pub mod wasm_sections;
