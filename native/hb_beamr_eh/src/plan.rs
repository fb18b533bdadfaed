//! The plan shared by the module rewrite (module.rs) and the body rewrite
//! (body.rs): what a tag carries, the module-wide facts a body needs, the
//! host imports the bodies ask for, and the function index shift. A leaf
//! below both, so that neither imports the other's types.

use std::collections::HashMap;
use std::convert::Infallible;

use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasm_encoder::{BlockType, ValType};

use crate::error::RewriteError;

/// What a tag carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    Nothing,
    I32,
    I64,
}

impl Payload {
    pub fn block_type(self) -> BlockType {
        match self {
            Payload::Nothing => BlockType::Empty,
            Payload::I32 => BlockType::Result(ValType::I32),
            Payload::I64 => BlockType::Result(ValType::I64),
        }
    }
}

/// The module-wide facts a body needs.
pub struct BodyCtx<'a> {
    pub tags: &'a [Payload],
    pub may_throw: &'a [bool],
    /// Function imports of the original module.
    pub imported: u32,
    /// Parameter counts of the module's function types (None: not a function type).
    pub type_params: &'a [Option<usize>],
}

/// Function indices of the original module, shifted past the added imports.
pub struct Shift {
    pub imported: u32,
    pub added: u32,
}

impl Reencode for Shift {
    type Error = Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError<Infallible>> {
        Ok(if func < self.imported {
            func
        } else {
            func + self.added
        })
    }
}

/// A host function the rewritten code calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostNeed {
    Throw,
    Caught,
    Payload,
    /// A try call through table 0 with this type index.
    CallIndirect(u32),
    /// A try call of this (original) function index, through an export.
    CallExport(u32),
}

/// The host imports, in the order they are added (after the module's own
/// function imports).
pub struct Hosts {
    needs: Vec<HostNeed>,
    positions: HashMap<HostNeed, u32>,
    base: u32,
}

impl Hosts {
    /// No host imports yet; the first goes after `base` function imports.
    pub fn new(base: u32) -> Hosts {
        Hosts {
            needs: Vec::new(),
            positions: HashMap::new(),
            base,
        }
    }

    /// The host imports, in the order they are added.
    pub fn needs(&self) -> &[HostNeed] {
        &self.needs
    }

    /// The function index of the host import `need`, added if it is new.
    pub fn func(&mut self, need: HostNeed) -> Result<u32, RewriteError> {
        let position = match self.positions.get(&need) {
            Some(p) => *p,
            None => {
                let p = self.needs.len() as u32;
                self.needs.push(need);
                self.positions.insert(need, p);
                p
            }
        };
        self.base
            .checked_add(position)
            .ok_or_else(|| RewriteError::new("too many functions"))
    }
}
