//! The interface through which the engine reaches its driver: imports that
//! are not served natively go to the [`Host`] installed on the thread that
//! runs the instance.

use std::cell::RefCell;
use std::rc::Rc;

use crate::imports::ImportDesc;
use crate::instance::{EngineInstance, InstanceRef};
use crate::trap::Trap;
use hb_beamr_core::values::Value;

/// What a driver provides to serve imports.
pub trait Host {
    /// The instance, once instantiation has finished (`None` while a start
    /// function or constructor runs inside instantiation).
    fn engine(&self) -> Option<&EngineInstance>;

    /// Serves an import that the engine does not serve natively. `instance`
    /// is the running instance (also during instantiation). `Err` is the
    /// trap the call unwinds with.
    fn import(
        &self,
        instance: InstanceRef,
        desc: &ImportDesc,
        args: &[Value],
    ) -> Result<Vec<Value>, Trap>;

    /// A metered module's counter cannot pay for the next block: `needed`
    /// more fuel is missing. Return after adding fuel to the counter (the
    /// block is checked again), or `Err` to stop the call. By default it is
    /// served as any other import, by [`Host::import`].
    fn out_of_fuel(
        &self,
        instance: InstanceRef,
        desc: &ImportDesc,
        needed: i64,
    ) -> Result<(), Trap> {
        self.import(instance, desc, &[Value::I64(needed)])
            .map(|_| ())
    }
}

thread_local! {
    static HOST: RefCell<Option<Rc<dyn Host>>> = const { RefCell::new(None) };
}

/// Installs `host` for this thread until the guard is dropped.
pub fn install(host: Rc<dyn Host>) -> Installed {
    HOST.with(|h| *h.borrow_mut() = Some(host));
    Installed(())
}

/// Keeps a host installed; dropping it uninstalls the host.
pub struct Installed(());

impl Drop for Installed {
    fn drop(&mut self) {
        HOST.with(|h| *h.borrow_mut() = None);
    }
}

/// The host of this thread, if one is installed.
pub fn current() -> Option<Rc<dyn Host>> {
    HOST.with(|h| h.borrow().clone())
}
