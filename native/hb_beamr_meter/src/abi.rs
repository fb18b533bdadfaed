//! The counter's interface between a metered module and the host that
//! runs it (see docs/metering.md).
//!
//! - The counter: a mutable `i64` global, added after the module's own
//!   globals and exported as [`FUEL_EXPORT`]. It holds the fuel left; the
//!   code never makes it negative. The host reads it (fuel left), sets it
//!   (give or take fuel) and refuels it; a snapshot of mutable globals
//!   carries it.
//! - [`IMPORT_MODULE`].[`OUT_OF_FUEL`] `(i64 needed) -> ()`: called when
//!   the block about to run costs more than the counter holds, with what is
//!   missing (`cost - counter`, > 0). The host either adds fuel to the
//!   counter and returns (the block is checked again, so returning without
//!   adding enough calls it again) or traps (the call ends). Nothing of the
//!   block has run: this is where a paused instance resumes.
//! - The custom section [`SECTION`]: what [`MeterInfo`] holds, so that a
//!   host (or a second rewrite) finds the counter without names.

/// The import module of [`OUT_OF_FUEL`].
pub const IMPORT_MODULE: &str = "hb_beamr";
/// `(i64 needed) -> ()`: the counter cannot pay for the next block.
pub const OUT_OF_FUEL: &str = "out_of_fuel";
/// The export name of the counter global.
pub const FUEL_EXPORT: &str = "hb_beamr.fuel";
/// The custom section that marks a metered module.
pub const SECTION: &str = "hb_beamr.meter";
/// The version of this interface (the section's layout, the names and what
/// the added functions do; 2: `$charge` waits for fuel and no longer takes
/// it, the code that calls it does).
pub const ABI_VERSION: u32 = 2;

/// Where a metered module keeps its counter, as its [`SECTION`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterInfo {
    /// [`ABI_VERSION`] of the rewrite that made the module.
    pub abi_version: u32,
    /// The cost table the module charges by ([`crate::COST_TABLE_VERSION`]).
    pub cost_table_version: u32,
    /// The counter's global index.
    pub fuel_global: u32,
    /// The function index of the [`OUT_OF_FUEL`] import.
    pub out_of_fuel_func: u32,
    /// The function index of the added (unexported) function that waits
    /// for fuel: `(i64 cost) -> ()`.
    pub charge_func: u32,
}

impl MeterInfo {
    /// The section's contents: five unsigned LEB128 numbers, in the order
    /// of the fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for n in [
            self.abi_version,
            self.cost_table_version,
            self.fuel_global,
            self.out_of_fuel_func,
            self.charge_func,
        ] {
            leb128(&mut out, n);
        }
        out
    }

    /// Reads a section's contents; `None` when they are not five numbers.
    pub fn decode(mut data: &[u8]) -> Option<MeterInfo> {
        let mut next = || -> Option<u32> {
            let (n, used) = read_leb128(data)?;
            data = &data[used..];
            Some(n)
        };
        let info = MeterInfo {
            abi_version: next()?,
            cost_table_version: next()?,
            fuel_global: next()?,
            out_of_fuel_func: next()?,
            charge_func: next()?,
        };
        data.is_empty().then_some(info)
    }

    /// The [`SECTION`] of a module, if it has one (the first, read as
    /// [`MeterInfo::decode`] reads it).
    pub fn find(wasm: &[u8]) -> Option<MeterInfo> {
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            if let Ok(wasmparser::Payload::CustomSection(reader)) = payload {
                if reader.name() == SECTION {
                    return MeterInfo::decode(reader.data());
                }
            } else if payload.is_err() {
                return None;
            }
        }
        None
    }
}

fn leb128(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(data: &[u8]) -> Option<(u32, usize)> {
    let mut n: u64 = 0;
    for (i, byte) in data.iter().enumerate().take(5) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(n).ok().map(|n| (n, i + 1));
        }
    }
    None
}
