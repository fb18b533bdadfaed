//! Forks (`Image`, `InstanceRef::adopt`): an instance adopting an image has
//! its memory and globals; forks of one image and the instance it came from
//! are independent (a write in one is seen in no other); memory grows after
//! a fork; a memory WAMR grows with mremap (memory64 without a maximum) gets
//! a copy instead, with the same result; the kernel's dirty-page tracking
//! sees a fork's writes, and only those.

use hb_beamr_core::errors::Error;
use hb_beamr_core::values::{Number, Value};
use hb_beamr_engine::{
    ensure_runtime, load_module, DirtyTracker, EngineInstance, Image, Limits, Mode, Target,
    ThreadEnv,
};

const STATE: &[u8] = include_bytes!("../../../test/fixtures/state.wasm");
/// memory64 without a maximum: grown with mremap, so copied, never mapped.
const TEST64: &[u8] = include_bytes!("../../../test/fixtures/test-64.wasm");

fn instance(bytes: &[u8]) -> Result<EngineInstance, Error> {
    ensure_runtime()?;
    EngineInstance::new(load_module(bytes.to_vec(), Mode::Wasm)?, Limits::default())
}

fn call(i: &EngineInstance, name: &str, args: &[i128]) -> Result<Vec<Value>, Error> {
    let args = args.iter().map(|a| Number::Int(*a)).collect::<Vec<_>>();
    i.call(&Target::Name(name.into()), &args)
}

fn load(i: &EngineInstance, at: u64) -> Result<u8, Error> {
    i.read_with(at, 1, |b| b[0])
}

/// An image of `i`'s state now (as the NIF makes one of a live instance).
fn image_of(i: &EngineInstance) -> Result<Image, Error> {
    let globals = i.as_ref().mutable_globals()?;
    let size = i.memory_size();
    i.read_with(0, size, |memory| {
        Image::build([7; 32], globals, size, &[(0, memory)])
    })?
}

fn ptr(i: &EngineInstance) -> Result<usize, Error> {
    i.read_with(0, 1, |s| s.as_ptr() as usize)
}

#[test]
fn forks_have_the_state_and_are_independent() -> Result<(), Error> {
    let _env = ThreadEnv::enter();
    let parent = instance(STATE)?;
    call(&parent, "grow", &[2])?;
    call(&parent, "store", &[100, 0x1234_5678])?;
    call(&parent, "store", &[2 * 65536 + 4, 7])?;
    call(&parent, "set_all", &[99, -5, 0, 0])?;
    let image = image_of(&parent)?;
    assert_eq!(image.memory_size(), 3 * 65536);

    let (a, b) = (instance(STATE)?, instance(STATE)?);
    let before = ptr(&a)?;
    assert!(
        Image::maps_into(a.as_ref()),
        "state.wasm's memory is reserved"
    );
    a.as_ref().adopt(&image)?;
    b.as_ref().adopt(&image)?;
    assert_eq!(ptr(&a)?, before, "the mapping replaced pages in place");
    for i in [&a, &b] {
        assert_eq!(i.memory_size(), 3 * 65536);
        assert_eq!(call(i, "load", &[100])?, vec![Value::I32(0x1234_5678)]);
        assert_eq!(call(i, "load", &[2 * 65536 + 4])?, vec![Value::I32(7)]);
        assert_eq!(call(i, "sp", &[])?, vec![Value::I32(99)]);
        assert_eq!(call(i, "wide", &[])?, vec![Value::I64(-5)]);
    }
    // Writes in one are seen in no other.
    call(&a, "store", &[100, 1])?;
    b.write(104, &[9])?;
    call(&parent, "store", &[2 * 65536 + 4, 8])?;
    assert_eq!(call(&a, "load", &[100])?, vec![Value::I32(1)]);
    assert_eq!(call(&b, "load", &[100])?, vec![Value::I32(0x1234_5678)]);
    assert_eq!(load(&a, 104)?, 0);
    assert_eq!(load(&b, 104)?, 9);
    assert_eq!(call(&a, "load", &[2 * 65536 + 4])?, vec![Value::I32(7)]);
    // A fork made now still sees the image, not the others' writes.
    let c = instance(STATE)?;
    c.as_ref().adopt(&image)?;
    assert_eq!(call(&c, "load", &[100])?, vec![Value::I32(0x1234_5678)]);
    assert_eq!(load(&c, 104)?, 0);

    // Memory grows after a fork, in place, past the mapped pages, up to the
    // maximum; the grown pages are zero and writable.
    assert_eq!(call(&a, "grow", &[5])?, vec![Value::I32(3)]);
    assert_eq!(ptr(&a)?, before);
    assert_eq!(a.memory_size(), 8 * 65536);
    assert_eq!(call(&a, "load", &[7 * 65536])?, vec![Value::I32(0)]);
    call(&a, "store", &[7 * 65536, 3])?;
    assert_eq!(call(&a, "load", &[7 * 65536])?, vec![Value::I32(3)]);
    assert_eq!(call(&a, "load", &[100])?, vec![Value::I32(1)]);
    assert_eq!(call(&a, "grow", &[1])?, vec![Value::I32(-1)]);
    // Bounds checks are unchanged.
    assert!(call(&b, "load", &[3 * 65536]).is_err());
    Ok(())
}

#[test]
fn a_memory_grown_by_mremap_gets_a_copy() -> Result<(), Error> {
    let _env = ThreadEnv::enter();
    let parent = instance(TEST64)?;
    let grow = |i: &EngineInstance, n: i128| call(i, "grow", &[n]);
    grow(&parent, 1)?;
    call(&parent, "store8", &[65536 + 3, 42])?;
    let image = image_of(&parent)?;
    let fork = instance(TEST64)?;
    assert!(!Image::maps_into(fork.as_ref()));
    fork.as_ref().adopt(&image)?;
    assert_eq!(call(&fork, "load8", &[65536 + 3])?, vec![Value::I32(42)]);
    assert_eq!(call(&fork, "load8", &[16])?, vec![Value::I32(b'm' as i32)]);
    // It grows (with mremap, which may move it) and keeps its bytes.
    assert_eq!(grow(&fork, 30)?, vec![Value::I64(2)]);
    assert_eq!(call(&fork, "load8", &[65536 + 3])?, vec![Value::I32(42)]);
    call(&fork, "store8", &[31 * 65536, 1])?;
    assert_eq!(call(&parent, "load8", &[65536 + 3])?, vec![Value::I32(42)]);
    Ok(())
}

#[test]
fn the_kernel_sees_a_forks_writes_only() -> Result<(), Error> {
    let _env = ThreadEnv::enter();
    let parent = instance(STATE)?;
    call(&parent, "grow", &[1])?;
    for page in 0..32 {
        call(&parent, "store", &[page * 4096, page + 1])?;
    }
    let image = image_of(&parent)?;
    let fork = instance(STATE)?;
    fork.as_ref().adopt(&image)?;
    let mut tracker = DirtyTracker::new();
    assert_eq!(tracker.take(fork.as_ref()), None);
    if !tracker.kernel_available() {
        eprintln!("the kernel cannot track dirty pages here: skipped");
        return Ok(());
    }
    let pages = |t: &mut DirtyTracker| {
        t.take(fork.as_ref())
            .map(|r| r.into_iter().flatten().collect::<Vec<_>>())
    };
    assert_eq!(pages(&mut tracker), Some(vec![]));
    // Reading shared pages is no write; writing one copies it, and is.
    fork.read_with(0, 2 * 65536, |_| ())?;
    call(&fork, "store", &[3 * 4096 + 8, 1])?;
    fork.write(20 * 4096, &[5])?;
    assert_eq!(pages(&mut tracker), Some(vec![3, 20]));
    assert_eq!(pages(&mut tracker), Some(vec![]));
    // Grown pages (anonymous, after the mapping) are reported, then tracked.
    call(&fork, "grow", &[1])?;
    assert_eq!(pages(&mut tracker), Some((32..48).collect()));
    call(&fork, "store", &[40 * 4096, 1])?;
    call(&fork, "store", &[3 * 4096, 1])?;
    assert_eq!(pages(&mut tracker), Some(vec![3, 40]));
    assert_eq!(call(&fork, "load", &[5 * 4096])?, vec![Value::I32(6)]);
    Ok(())
}

#[test]
fn adopt_refuses_what_restore_refuses() -> Result<(), Error> {
    let _env = ThreadEnv::enter();
    let parent = instance(STATE)?;
    call(&parent, "grow", &[3])?;
    let image = image_of(&parent)?;
    // Larger than the fork's maximum, with bytes past it.
    parent.write(4 * 65536 - 1, &[1])?;
    let big = image_of(&parent)?;
    let small = |max: u64| -> Result<EngineInstance, Error> {
        let limits = Limits {
            max_memory: max,
            ..Limits::default()
        };
        EngineInstance::new(load_module(STATE.to_vec(), Mode::Wasm)?, limits)
    };
    let fork = small(2 * 65536)?;
    assert!(matches!(
        fork.as_ref().adopt(&big),
        Err(Error::SnapshotTooLarge { max, .. }) if max == 2 * 65536
    ));
    // Zeros past the maximum are no state: memory grows to it.
    let fork = small(3 * 65536)?;
    let zeros = {
        let zero = instance(STATE)?;
        call(&zero, "grow", &[3])?;
        zero.write(65536, &[1])?;
        image_of(&zero)?
    };
    fork.as_ref().adopt(&zeros)?;
    assert_eq!(fork.memory_size(), 3 * 65536);
    assert_eq!(load(&fork, 65536)?, 1);
    // A memory already larger cannot shrink.
    let larger = instance(STATE)?;
    call(&larger, "grow", &[5])?;
    assert!(matches!(
        larger.as_ref().adopt(&image),
        Err(Error::SnapshotMismatch(_))
    ));
    Ok(())
}
