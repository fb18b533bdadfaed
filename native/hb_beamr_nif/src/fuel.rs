//! A metered instance's fuel (`start/3 #{fuel => N}`, docs/metering.md):
//! the counter is the module's `hb_beamr.fuel` global, read and set here;
//! the worker keeps how much fuel it has given the instance, so that fuel
//! used is what was given minus what is left. `out_of_fuel` is served
//! here: the start fuel first (so that a start function runs on it), then
//! as the protocol says (the call stops, or its owner is asked).

use hb_beamr_core::errors::Error;
use hb_beamr_core::protocol::{Action, Failure, ImportStep};
use hb_beamr_core::values::{Number, Value};
use hb_beamr_engine::{InstanceRef, Trap};

use crate::actions::carry_out;
use crate::context::{Instantiating, Worker};
use crate::imports::unwound;
use crate::mailbox::Message;

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Worker {
    fn counter(&self, instance: InstanceRef) -> Option<(u32, i64)> {
        let global = self.meter.borrow().as_ref()?.global?;
        Some((global, instance.i64_global(global)?))
    }

    /// Adds `more` to the counter (and to what was given).
    pub fn add_fuel(&self, instance: InstanceRef, more: u64) -> Result<(), Error> {
        let (global, left) = self.counter(instance).ok_or(Error::NotMetered)?;
        let now = left.saturating_add(to_i64(more));
        instance.set_i64_global(global, now);
        if let Some(meter) = self.meter.borrow_mut().as_mut() {
            meter.granted = meter
                .granted
                .saturating_add(now.saturating_sub(left) as u64);
        }
        Ok(())
    }

    /// Sets the counter to `to` (a call's budget), keeping fuel used as it
    /// was.
    pub fn set_fuel(&self, instance: InstanceRef, to: u64) -> Result<(), Error> {
        let (global, left) = self.counter(instance).ok_or(Error::NotMetered)?;
        let to = to_i64(to);
        instance.set_i64_global(global, to);
        if let Some(meter) = self.meter.borrow_mut().as_mut() {
            meter.granted = (i128::from(meter.granted) + i128::from(to) - i128::from(left))
                .clamp(0, i128::from(u64::MAX)) as u64;
        }
        Ok(())
    }

    /// The counter changed from `left_before` without fuel being used (a
    /// restore): what was given moves with it.
    pub fn rebase_fuel(&self, instance: InstanceRef, left_before: i64) {
        let Some((_, left)) = self.counter(instance) else {
            return;
        };
        if let Some(meter) = self.meter.borrow_mut().as_mut() {
            meter.granted = (i128::from(meter.granted) + i128::from(left) - i128::from(left_before))
                .clamp(0, i128::from(u64::MAX)) as u64;
        }
    }

    /// `(remaining, used)`.
    pub fn fuel(&self, instance: InstanceRef) -> Result<(i64, u64), Error> {
        let (_, left) = self.counter(instance).ok_or(Error::NotMetered)?;
        let granted = self.meter.borrow().as_ref().map_or(0, |m| m.granted);
        Ok((left, used(granted, 0, left, 0)))
    }

    /// After instantiation: the start fuel not yet given goes in now.
    pub fn deposit_start_fuel(&self, instance: InstanceRef) {
        let start = match self.meter.borrow_mut().as_mut() {
            Some(meter) => std::mem::take(&mut meter.start),
            None => return,
        };
        if start > 0 {
            let _ = self.add_fuel(instance, start);
        }
    }

    /// A call begins (`false`: it ends): marks where its fuel starts.
    pub fn mark_call(&self, instance: Option<InstanceRef>, begins: bool) {
        let left = instance
            .and_then(|i| self.counter(i))
            .map_or(0, |(_, left)| left);
        if let Some(meter) = self.meter.borrow_mut().as_mut() {
            if begins {
                meter.marks.push((meter.granted, left));
            } else {
                meter.marks.pop();
            }
        }
    }

    /// The fuel the innermost call has used so far.
    fn used_by_call(&self, instance: InstanceRef) -> u64 {
        let left = self.counter(instance).map_or(0, |(_, left)| left);
        let meter = self.meter.borrow();
        let Some(meter) = meter.as_ref() else {
            return 0;
        };
        let (granted0, left0) = meter.marks.last().copied().unwrap_or((0, 0));
        used(meter.granted, granted0, left, left0)
    }

    /// Serves `out_of_fuel(needed)`.
    pub fn serve_out_of_fuel(&self, instance: InstanceRef, needed: i64) -> Result<(), Trap> {
        let start = match self.meter.borrow_mut().as_mut() {
            None => return Err(Trap::new("out of fuel (the instance is not metered)")),
            Some(meter) => std::mem::take(&mut meter.start),
        };
        if start > 0 {
            return self
                .add_fuel(instance, start)
                .map_err(|e| Trap::new(e.to_string()));
        }
        let step = self.protocol.borrow_mut().fuel_exhausted();
        let to = match step {
            ImportStep::Ask { to, .. } => to,
            ImportStep::Unwind(failure) => return Err(unwound(failure)),
            ImportStep::Refuse | ImportStep::Stub => return Err(self.stop_for_fuel(instance)),
        };
        self.send(
            &to,
            Message::Import {
                module: hb_beamr_engine::FUEL_IMPORT.0,
                func: hb_beamr_engine::FUEL_IMPORT.1,
                args: &[Value::I64(needed)],
                signature: "(I)",
            },
        );
        let _instantiating = self
            .engine
            .get()
            .is_none()
            .then(|| Instantiating::enter(instance));
        loop {
            let Some(action) = self.next_action() else {
                return Err(unwound(Failure::Stopped));
            };
            match action {
                Action::Deliver(results) => return self.fuel_answer(instance, &results),
                Action::Unwind(failure) => return Err(unwound(failure)),
                other => carry_out(self, other),
            }
        }
    }

    /// The owner's answer: `[More]` adds fuel (the block is checked again),
    /// `[]` stops the call.
    fn fuel_answer(&self, instance: InstanceRef, results: &[Number]) -> Result<(), Trap> {
        match results {
            [] => Err(self.stop_for_fuel(instance)),
            [Number::Int(more)] if *more >= 0 => {
                let more = u64::try_from(*more).unwrap_or(u64::MAX);
                self.add_fuel(instance, more)
                    .map_err(|e| Trap::new(e.to_string()))
            }
            other => {
                let text = format!(
                    "on_fuel_exhausted must give a non-negative integer of fuel, got {other:?}"
                );
                self.protocol
                    .borrow_mut()
                    .import_failed(Error::InvalidImportResponse(text.clone()));
                Err(Trap::new(text))
            }
        }
    }

    /// The call ends for want of fuel: its reply says how much it used.
    fn stop_for_fuel(&self, instance: InstanceRef) -> Trap {
        let used = self.used_by_call(instance);
        self.protocol
            .borrow_mut()
            .import_failed(Error::OutOfFuel(used));
        Trap::new(format!("out of fuel after {used}"))
    }
}

fn used(granted: u64, granted0: u64, left: i64, left0: i64) -> u64 {
    let given = i128::from(granted) - i128::from(granted0);
    let spent = given - (i128::from(left) - i128::from(left0));
    spent.clamp(0, i128::from(u64::MAX)) as u64
}
