//! One metered module in the three modes: WAMR's interpreter, AOT code for
//! this CPU and AOT code for a generic x86-64; what each did, and the
//! comparison that must hold: the same results (traps alike), the same
//! counter after every call and the same `out_of_fuel` calls.

use hb_beamr_engine::Mode;

use crate::aot::{self, Cpu};
use crate::run::{self, Call, Fuel, Outcome};

pub const MODES: [&str; 3] = ["wasm", "aot host", "aot generic"];

/// What the three modes did (AOT compile errors are errors).
pub fn run_all(
    metered: &[u8],
    name: &str,
    calls: &[(String, Vec<hb_beamr_core::values::ValKind>)],
    fuels: &[Fuel],
) -> Result<Vec<[Outcome; 3]>, String> {
    let host = aot::compile(metered, Cpu::Host, name)?;
    let generic = aot::compile(metered, Cpu::Generic, name)?;
    Ok(fuels
        .iter()
        .map(|fuel| {
            [
                run::run(metered, Mode::Wasm, calls, *fuel),
                run::run(&host, Mode::Aot, calls, *fuel),
                run::run(&generic, Mode::Aot, calls, *fuel),
            ]
        })
        .collect())
}

/// A call as modes must agree on it: trap texts differ between the
/// interpreter and AOT code, so a trap is only "out of fuel" or not; a
/// call one engine refuses to make ("unsupported: ...", see
/// hb_beamr_engine's trampoline: a tail call to an import from a function
/// the host called, in the interpreter) is compared by its fuel only.
fn same(a: &Call, b: &Call) -> bool {
    let unsupported = |c: &Call| {
        c.result
            .as_ref()
            .is_err_and(|t| t.starts_with("unsupported:"))
    };
    let result = |c: &Call| {
        c.result
            .clone()
            .map_err(|text| text.contains(run::OUT_OF_FUEL))
    };
    a.export == b.export
        && a.fuel_left == b.fuel_left
        && a.out_of_fuel == b.out_of_fuel
        && (unsupported(a) || unsupported(b) || result(a) == result(b))
}

/// Checks that the modes agree; the text says where they do not.
pub fn agree(outcomes: &[Outcome; 3]) -> Result<(), String> {
    let first = &outcomes[0];
    for (i, o) in outcomes.iter().enumerate().skip(1) {
        let agree = match (first, o) {
            (Ok(a), Ok(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b)),
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !agree {
            return Err(format!(
                "{} and {} differ:\n  {}: {:?}\n  {}: {:?}",
                MODES[0], MODES[i], MODES[0], first, MODES[i], o
            ));
        }
    }
    Ok(())
}

/// How many calls the first mode made (for the tally).
pub fn calls(outcomes: &[Outcome; 3]) -> usize {
    outcomes[0].as_ref().map(|c| c.len()).unwrap_or(0)
}
