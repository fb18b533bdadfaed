//! The properties, on wasm-smith modules: the metered module validates,
//! computes what the unmetered one computes (in the interpreter), and uses
//! the same fuel in every mode, with plenty of fuel and with scarce fuel.

use hb_beamr_engine::Mode;
use hb_beamr_meter::{meter, Options};

use crate::modes;
use crate::run::{self, Fuel};
use crate::smith::{self, Rng};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fuel enough for anything: the first `out_of_fuel` (in the start
/// function or the first call: the counter starts at 0) gives 2^50.
pub fn plenty(global: u32) -> Fuel {
    Fuel {
        global: Some(global),
        start: None,
        refill: 1 << 50,
        refills: 1,
    }
}

/// Every `out_of_fuel` gives exactly what is missing: a pause before
/// every block that finds the counter short (here: every block).
pub fn hand_to_mouth(global: u32) -> Fuel {
    Fuel {
        global: Some(global),
        start: Some(0),
        refill: 0,
        refills: u32::MAX,
    }
}

/// Fuel that runs out: six refuels of 300 beyond what is missing.
pub fn scarce(global: u32) -> Fuel {
    Fuel {
        global: Some(global),
        start: None,
        refill: 300,
        refills: 6,
    }
}

const UNMETERED: Fuel = Fuel {
    global: None,
    start: None,
    refill: 0,
    refills: 0,
};

#[test]
fn smith_modules_use_the_same_fuel_in_every_mode() {
    let cases = env_number("HB_BEAMR_METER_CASES", 40) as usize;
    let seed = env_number("HB_BEAMR_METER_SEED", 1);
    // Modules before this one are generated (the same modules follow) but
    // not run: for going straight to a module a long run reported.
    let first = env_number("HB_BEAMR_METER_FIRST", 1) as usize;
    let mut rng = Rng::new(seed);
    let (mut modules, mut attempts, mut calls, mut ran_out, mut instantiated) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut divergences = Vec::new();
    let mut with_imports = 0;
    let mut not_compiled = 0;
    while modules < cases && attempts < cases * 20 {
        attempts += 1;
        let imports = attempts % 4 >= 2;
        with_imports += usize::from(imports);
        let Some(wasm) = smith::module(&mut rng, attempts % 2 == 0, imports) else {
            continue;
        };
        modules += 1;
        if modules < first {
            continue;
        }
        let metered = meter(&wasm, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
        wasmparser::Validator::new()
            .validate_all(&metered.wasm)
            .unwrap_or_else(|e| panic!("module {modules}: {e}"));
        let exports = run::exports(&wasm);
        let global = metered.info.fuel_global;

        // Metering changes no result.
        let plain = run::run(&wasm, Mode::Wasm, &exports, UNMETERED);
        let with_fuel = run::run(&metered.wasm, Mode::Wasm, &exports, plenty(global));
        let results = |o: &run::Outcome| {
            o.as_ref()
                .map(|calls| calls.iter().map(|c| c.result.clone()).collect::<Vec<_>>())
                .map_err(|e| e.contains("trap") || e.contains("Trap"))
        };
        if results(&plain) != results(&with_fuel) {
            failures.push(format!(
                "module {modules} (seed {seed}): metering changed a result:\n  plain: {plain:?}\n  metered: {with_fuel:?}"
            ));
            continue;
        }

        // The same fuel in every mode.
        let name = format!("smith{seed}_{modules}");
        let outcomes = match modes::run_all(
            &metered.wasm,
            &name,
            &exports,
            &[plenty(global), scarce(global), hand_to_mouth(global)],
        ) {
            Ok(outcomes) => outcomes,
            // WAMR's AOT compiler refuses some modules (a table64 offset
            // above 2^32); metering must not add refusals.
            Err(why) => {
                let cpu = crate::aot::Cpu::Host;
                if crate::aot::compile(&wasm, cpu, &format!("{name}_plain")).is_ok() {
                    failures.push(format!("module {modules}: only metered: {why}"));
                } else {
                    not_compiled += 1;
                }
                continue;
            }
        };
        // Pausing before every block changes no result.
        if results(&outcomes[2][0]) != results(&with_fuel) {
            failures.push(format!(
                "module {modules} (seed {seed}): pausing changed a result:\n  paused: {:?}\n  metered: {with_fuel:?}",
                outcomes[2][0]
            ));
        }
        let mut unmetered_agree = None;
        for o in &outcomes {
            if let Err(why) = modes::agree(o) {
                let path = crate::aot::scratch().join(format!("{name}.wasm"));
                let _ = std::fs::write(&path, &wasm);
                // Not metering's when the modes disagree without it too.
                let engines_agree = *unmetered_agree.get_or_insert_with(|| {
                    modes::run_all(&wasm, &format!("{name}_plain"), &exports, &[UNMETERED])
                        .map(|o| modes::agree(&o[0]).is_ok())
                        .unwrap_or(true)
                });
                if engines_agree {
                    failures.push(format!("module {modules} ({}): {why}", path.display()));
                } else {
                    divergences.push(format!(
                        "module {modules} ({}): the modes disagree unmetered too: {why}",
                        path.display()
                    ));
                }
            }
            calls += modes::calls(o);
            instantiated += usize::from(o[0].is_ok());
            ran_out += o[0].as_ref().map_or(0, |calls| {
                calls
                    .iter()
                    .filter(|c| {
                        c.result
                            .as_ref()
                            .is_err_and(|t| t.contains(run::OUT_OF_FUEL))
                    })
                    .count()
            });
        }
    }
    eprintln!(
        "hb_beamr_meter: {modules} wasm-smith modules (seed {seed}, {attempts} attempts, \
         {with_imports} with imports), 3 fuel budgets each ({instantiated} runs instantiated), \
         {calls} calls compared in {} ({ran_out} ran out of fuel); {not_compiled} modules \
         WAMR's AOT compiler refuses, metered or not",
        modes::MODES.join(", ")
    );
    for d in &divergences {
        eprintln!("hb_beamr_meter: WAMR divergence, not metering's: {d}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        modules >= cases / 2,
        "only {modules} modules in {attempts} attempts"
    );
}

/// Runs `HB_BEAMR_METER_PROBE` (a .wasm file), unmetered and metered, in
/// the three modes and prints what each did: for looking into a module
/// the property test reports.
#[test]
#[ignore]
fn probe() {
    let Some(path) = std::env::var_os("HB_BEAMR_METER_PROBE") else {
        return;
    };
    let wasm = std::fs::read(path).expect("read");
    let exports = run::exports(&wasm);
    let metered = meter(&wasm, &Options::default()).expect("meter");
    let plain = modes::run_all(&wasm, "probe", &exports, &[UNMETERED]).expect("aot");
    let with = modes::run_all(
        &metered.wasm,
        "probe_m",
        &exports,
        &[plenty(metered.info.fuel_global)],
    )
    .expect("aot");
    for (what, o) in [("unmetered", &plain[0]), ("metered", &with[0])] {
        for (mode, outcome) in modes::MODES.iter().zip(o.iter()) {
            eprintln!("{what} {mode}: {outcome:?}");
        }
    }
}
