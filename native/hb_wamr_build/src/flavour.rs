//! [`Flavour`]: which WAMR build. A leaf, used by the crate's root and by
//! `patch` (each patch says which builds it applies to).

/// Which WAMR build: the runtime hb_beamr runs modules with, or the library
/// behind the AOT compiler (which parses modules the same way).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Runtime,
    Compiler,
}
