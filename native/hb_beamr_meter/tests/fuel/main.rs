//! hb_beamr_meter's metered modules run in WAMR: the same fuel in the
//! interpreter (`wasm`), AOT code for this CPU (`aot` host) and for a
//! generic x86-64 (`aot` generic); results as without metering.
//!
//! - `props`: wasm-smith modules (`HB_BEAMR_METER_CASES`, 40 by default;
//!   `HB_BEAMR_METER_SEED`), with plenty of fuel and with scarce fuel
//!   (refuelled by `out_of_fuel` a few times, then stopped).
//! - `cases`: hand-written modules whose fuel is known from the cost table
//!   (loops, calls, imports, the start function, bulk memory, pausing and
//!   resuming, running out).
//! - `compose`: with the NaN rewrite and the exception-handling rewrite.
//! - `fused`: the interpreter's fused charge (hb_wamr_build's
//!   patch/fused_charge.rs) means what the instructions it replaces mean.
//! - `hostile`: hand-made charge sequences (padded LEB128s, costs near
//!   2^31, any `F` and `G`, a lying `hb_beamr.meter` section) and metered
//!   modules that trap mid-function, in runtime helpers and through tail
//!   calls, against both patches (the fused charge, the AOT register).
//!
//! AOT files come from the `hb_beamr_aotc` command (see `aot`).

mod aot;
mod cases;
mod compose;
mod fused;
mod hostile;
mod modes;
mod props;
mod run;
mod smith;
