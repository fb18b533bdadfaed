//! [`Meter`]: the fuel accounting of a metered instance, which the worker
//! holds (`context`) and `fuel` keeps. A leaf: it depends on no other module
//! of this crate.

/// The fuel accounting of a metered instance.
#[derive(Debug)]
pub struct Meter {
    /// The counter's global index (`None` until the module is loaded).
    pub global: Option<u32>,
    /// Every unit of fuel given to the instance so far.
    pub granted: u64,
    /// The start fuel, until it is put in the counter (at the first
    /// `out_of_fuel` or after instantiation, whichever comes first: as if
    /// it had been the counter's initial value).
    pub start: u64,
    /// For each call in progress (outermost first): what had been given
    /// and what was left when it began.
    pub marks: Vec<(u64, i64)>,
}

impl Meter {
    pub fn new(start: u64) -> Meter {
        Meter {
            global: None,
            granted: 0,
            start,
            marks: Vec::new(),
        }
    }
}
