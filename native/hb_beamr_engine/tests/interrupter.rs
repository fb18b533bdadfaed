//! The engine's `Interrupter` through the public surface only: it crosses
//! threads, stops a running call, and does nothing once the instance is gone.

use std::time::Duration;

use hb_beamr_core::errors::Error;
use hb_beamr_engine::{
    ensure_runtime, load_module, EngineInstance, Interrupter, Limits, Mode, Target, ThreadEnv,
};

/// `(module (func (export "spin") (loop (br 0))))`
const SPIN: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: [] -> []
    0x03, 0x02, 0x01, 0x00, // func 0: type 0
    0x07, 0x08, 0x01, 0x04, b's', b'p', b'i', b'n', 0x00, 0x00, // export "spin"
    0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0
];

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

fn spin_instance() -> Result<EngineInstance, Error> {
    ensure_runtime()?;
    EngineInstance::new(load_module(SPIN.to_vec(), Mode::Wasm)?, Limits::default())
}

#[test]
fn interrupter_stops_a_call_from_another_thread_and_outlives_the_instance() -> Result<(), Error> {
    assert_send_sync_clone::<Interrupter>();
    let _env = ThreadEnv::enter();
    let instance = spin_instance()?;
    let interrupter = instance.interrupter();
    assert!(interrupter.is_live());
    let remote = interrupter.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        remote.interrupt()
    });
    // Returns only because it is interrupted.
    let _ = instance.call(&Target::Name("spin".into()), &[]);
    assert_eq!(stopper.join().ok(), Some(true));
    instance.clear_interrupt();
    drop(instance);
    assert!(!interrupter.is_live());
    assert!(!interrupter.interrupt(), "no instance left to interrupt");
    Ok(())
}
