//! The kernel's dirty-page tracking of linear memory (`DirtyTracker`):
//! writes by WebAssembly and by the host are seen, page by page, per
//! instance, and grown memory is reported; memory does not move as it
//! grows. Where the kernel cannot track
//! (`take` answers `None`) there is nothing to check here.

use hb_beamr_core::errors::Error;
use hb_beamr_core::values::Number;
use hb_beamr_engine::{
    ensure_runtime, load_module, DirtyTracker, EngineInstance, Limits, Mode, Target, ThreadEnv,
};

const STATE: &[u8] = include_bytes!("../../../test/fixtures/state.wasm");

fn instance() -> Result<EngineInstance, Error> {
    ensure_runtime()?;
    EngineInstance::new(load_module(STATE.to_vec(), Mode::Wasm)?, Limits::default())
}

fn call(i: &EngineInstance, name: &str, args: &[i128]) -> Result<(), Error> {
    let args = args.iter().map(|a| Number::Int(*a)).collect::<Vec<_>>();
    i.call(&Target::Name(name.into()), &args).map(|_| ())
}

fn pages(ranges: Vec<std::ops::Range<usize>>) -> Vec<usize> {
    ranges.into_iter().flatten().collect()
}

#[test]
fn written_pages_are_reported_per_instance() -> Result<(), Error> {
    let _env = ThreadEnv::enter();
    let (a, b) = (instance()?, instance()?);
    let (mut ta, mut tb) = (DirtyTracker::new(), DirtyTracker::new());
    // Nothing was tracked before: the kernel cannot say yet.
    assert_eq!(ta.take(a.as_ref()), None);
    if !ta.kernel_available() {
        eprintln!("the kernel cannot track dirty pages here: skipped");
        return Ok(());
    }
    assert_eq!(tb.take(b.as_ref()), None);
    assert_eq!(ta.take(a.as_ref()).map(pages), Some(vec![]));

    call(&a, "store", &[3 * 4096 + 8, 1])?;
    a.write(9 * 4096, &[1, 2, 3])?;
    a.read_with(0, 65536, |_| ())?;
    call(&b, "store", &[5 * 4096, 1])?;
    assert_eq!(ta.take(a.as_ref()).map(pages), Some(vec![3, 9]));
    // Another instance's scan does not disturb this one's record.
    assert_eq!(tb.take(b.as_ref()).map(pages), Some(vec![5]));
    assert_eq!(ta.take(a.as_ref()).map(pages), Some(vec![]));

    // Memory grows in place (hb_wamr_build's patch: it reserves its
    // maximum), so the kernel keeps tracking it; the grown pages are
    // reported once, then tracked.
    let base = |i: &EngineInstance| i.read_with(0, 1, |s| s.as_ptr() as usize);
    let before = base(&a)?;
    call(&a, "grow", &[1])?;
    assert_eq!(base(&a)?, before, "linear memory moved as it grew");
    assert_eq!(ta.take(a.as_ref()).map(pages), Some((16..32).collect()));
    call(&a, "store", &[20 * 4096, 1])?;
    assert_eq!(ta.take(a.as_ref()).map(pages), Some(vec![20]));
    Ok(())
}
