//! Siblings of one shared module on many threads at once (test/fixtures/ao-shape.wasm,
//! the AO module's shape): each instance's memory, globals, table and dropped
//! data segments are its own, while all use the one loaded WAMR module. Also
//! run under ASan through the EUnit suite hb_beamr_shared_tests.

use hb_beamr_core::errors::Error;
use hb_beamr_core::values::{Number, Value};
use hb_beamr_engine::{
    ensure_runtime, load_module, EngineInstance, Limits, Mode, ModuleKey, Target, ThreadEnv,
    MODULES,
};

fn call(instance: &EngineInstance, name: &str, args: &[i128]) -> Result<Vec<Value>, Error> {
    let args: Vec<Number> = args.iter().map(|a| Number::Int(*a)).collect();
    instance.call(&Target::Name(name.into()), &args)
}

#[test]
fn siblings_on_many_threads_share_one_module_and_nothing_else() -> Result<(), Error> {
    ensure_runtime()?;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test/fixtures/ao-shape.wasm"
    );
    let bytes = std::fs::read(path).expect("test/fixtures/ao-shape.wasm");
    let key = ModuleKey {
        sha256: hb_beamr_core::snapshot::fingerprint(&bytes),
        aot: false,
        flags: 0x5eed, // not a flag start uses: this test's own entry
    };
    let before = MODULES.stats().loads;
    let threads: Vec<_> = (0..8i128)
        .map(|n| {
            let bytes = bytes.clone();
            std::thread::spawn(move || -> Result<(), Error> {
                let _env = ThreadEnv::enter();
                for round in 0..20i128 {
                    let lease = MODULES
                        .lease_or_load(key, bytes.len() as u64, || {
                            load_module(bytes.clone(), Mode::Wasm)
                        })
                        .map_err(|_| Error::Instantiation("lease".into()))?;
                    let instance = EngineInstance::new(lease, Limits::default())?;
                    let mine = n * 1000 + round;
                    assert_eq!(call(&instance, "get_counter", &[])?, [Value::I64(100)]);
                    assert_eq!(
                        call(&instance, "add_counter", &[mine])?,
                        [Value::I64(100 + mine as i64)]
                    );
                    call(&instance, "store", &[4096, mine])?;
                    if n % 2 == 0 {
                        call(&instance, "swap", &[])?;
                    }
                    assert_eq!(
                        call(&instance, "slot", &[0])?,
                        [Value::I32(if n % 2 == 0 { 2 } else { 1 })]
                    );
                    call(&instance, "init_passive", &[])?;
                    assert!(call(&instance, "init_passive", &[]).is_err());
                    assert!(matches!(call(&instance, "trap", &[]), Err(Error::Trap(_))));
                    assert_eq!(
                        call(&instance, "protected", &[3, mine])?,
                        [Value::I32(mine as i32)]
                    );
                    assert_eq!(call(&instance, "load", &[4096])?, [Value::I64(mine as i64)]);
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic")?;
    }
    // Kept idle between rounds (the default idle budget), so loaded once;
    // other tests in this binary use other keys.
    assert_eq!(MODULES.stats().loads - before, 1);
    Ok(())
}
