//! [`Trap`]: the text a call unwinds with when an import fails.

use std::fmt;

use hb_beamr_core::errors::Error;

/// Why an import failed: the engine raises the text as the running call's
/// exception, and the call fails with [`Error::Trap`] carrying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap(String);

impl Trap {
    pub fn new(text: impl Into<String>) -> Trap {
        Trap(text.into())
    }

    /// The text the call unwinds with.
    pub fn text(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Trap {}

impl From<String> for Trap {
    fn from(text: String) -> Trap {
        Trap(text)
    }
}

impl From<&str> for Trap {
    fn from(text: &str) -> Trap {
        Trap(text.to_string())
    }
}

/// A trap goes on as itself; any other error becomes its words.
impl From<Error> for Trap {
    fn from(error: Error) -> Trap {
        match error {
            Error::Trap(text) => Trap(text),
            other => Trap(other.to_string()),
        }
    }
}
