//! Runs a module in WAMR through hb_beamr_engine (the code the NIF's
//! instance threads run): every numeric export called once, in order, with
//! zero arguments, on a thread of its own; after each call, the counter's
//! value. The host serves `hb_beamr.out_of_fuel` by refuelling a fixed
//! number of times, then trapping; any other import returns zeros.

use std::cell::{Cell, OnceCell};
use std::rc::Rc;

use hb_beamr_core::snapshot::{self, Global};
use hb_beamr_core::values::{ValKind, Value};
use hb_beamr_engine::{
    install_host, EngineInstance, Host, ImportDesc, InstanceRef, Limits, Mode, Target, Trap,
};

/// How the host refuels.
#[derive(Clone, Copy, Debug)]
pub struct Fuel {
    /// The counter's global (None: the module is not metered).
    pub global: Option<u32>,
    /// The counter's value right after instantiation (None: leave it).
    pub start: Option<i64>,
    /// What each `out_of_fuel` adds, beyond what is missing.
    pub refill: i64,
    /// How many `out_of_fuel` calls are served before one traps.
    pub refills: u32,
}

/// What one call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub export: String,
    /// The results' bits, or the trap's text.
    pub result: Result<Vec<u64>, String>,
    /// The counter after the call.
    pub fuel_left: Option<i64>,
    /// `out_of_fuel` calls so far (served or not).
    pub out_of_fuel: u32,
}

/// What a module did: instantiation's error, or its calls.
pub type Outcome = Result<Vec<Call>, String>;

/// The message of the trap `out_of_fuel` raises when it does not refuel.
pub const OUT_OF_FUEL: &str = "hb_beamr: out of fuel";

struct TestHost {
    engine: OnceCell<EngineInstance>,
    fuel: Fuel,
    refills_left: Cell<u32>,
    calls: Cell<u32>,
}

fn read_global(instance: &InstanceRef, index: u32) -> Option<i64> {
    instance
        .mutable_globals()
        .ok()?
        .into_iter()
        .find(|g| g.index == index)
        .map(|g| g.bits as i64)
}

fn write_global(instance: &InstanceRef, index: u32, value: i64) -> Result<(), String> {
    let checked = instance
        .check_globals(&[Global {
            index,
            val_type: snapshot::I64,
            bits: value as u64,
        }])
        .map_err(|e| format!("{e:?}"))?;
    instance.set_globals(checked);
    Ok(())
}

impl Host for TestHost {
    fn engine(&self) -> Option<&EngineInstance> {
        self.engine.get()
    }

    fn import(
        &self,
        instance: InstanceRef,
        desc: &ImportDesc,
        args: &[Value],
    ) -> Result<Vec<Value>, Trap> {
        if desc.module != hb_beamr_meter::abi::IMPORT_MODULE
            || desc.name != hb_beamr_meter::abi::OUT_OF_FUEL
        {
            return Ok(desc.zero_results());
        }
        self.calls.set(self.calls.get() + 1);
        let needed = match args {
            [Value::I64(n)] if *n > 0 => *n,
            other => return Err(format!("out_of_fuel with {other:?}").into()),
        };
        let left = self.refills_left.get();
        let global = self.fuel.global.ok_or("out_of_fuel without a counter")?;
        if left == 0 {
            return Err(OUT_OF_FUEL.into());
        }
        self.refills_left.set(left - 1);
        let now = read_global(&instance, global).ok_or("no counter")?;
        write_global(&instance, global, now + needed + self.fuel.refill)?;
        Ok(Vec::new())
    }
}

/// The numeric exported functions of `wasm` that it defines (an exported
/// import is the host's), in export order.
pub fn exports(wasm: &[u8]) -> Vec<(String, Vec<ValKind>)> {
    use wasmparser::{CompositeInnerType, ExternalKind, Payload, TypeRef, ValType};
    let kind = |t: &ValType| match t {
        ValType::I32 => Some(ValKind::I32),
        ValType::I64 => Some(ValKind::I64),
        ValType::F32 => Some(ValKind::F32),
        ValType::F64 => Some(ValKind::F64),
        _ => None,
    };
    let mut types = Vec::new();
    let mut funcs = Vec::new();
    let mut imported = 0;
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.expect("valid") {
            Payload::TypeSection(r) => {
                for g in r {
                    for sub in g.expect("types").into_types() {
                        types.push(match sub.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                let params: Option<Vec<_>> = f.params().iter().map(kind).collect();
                                let ok = f.results().iter().all(|r| kind(r).is_some());
                                params.filter(|_| ok)
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(r) => {
                for i in r.into_imports() {
                    if let TypeRef::Func(t) = i.expect("import").ty {
                        funcs.push(t);
                        imported += 1;
                    }
                }
            }
            Payload::FunctionSection(r) => funcs.extend(r.into_iter().map(|t| t.expect("func"))),
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.expect("export");
                    if e.kind != ExternalKind::Func || e.index < imported {
                        continue;
                    }
                    let ty = funcs[e.index as usize] as usize;
                    if let Some(Some(params)) = types.get(ty) {
                        out.push((e.name.to_string(), params.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn zero(kind: ValKind) -> Value {
    Value::from_slot(0, kind)
}

fn run_here(bytes: Vec<u8>, mode: Mode, calls: &[(String, Vec<ValKind>)], fuel: Fuel) -> Outcome {
    let _env = hb_beamr_engine::ThreadEnv::enter();
    let host = Rc::new(TestHost {
        engine: OnceCell::new(),
        fuel,
        refills_left: Cell::new(fuel.refills),
        calls: Cell::new(0),
    });
    let _installed = install_host(host.clone());
    let module = hb_beamr_engine::load_module(bytes, mode).map_err(|e| format!("load: {e:?}"))?;
    let limits = Limits {
        wasm_stack: 32 << 20,
        ..Limits::default()
    };
    let engine = EngineInstance::new(module, limits).map_err(|e| format!("{e:?}"))?;
    if let (Some(global), Some(start)) = (fuel.global, fuel.start) {
        write_global(&engine.as_ref(), global, start)?;
    }
    let _ = host.engine.set(engine);
    let engine = host.engine.get().ok_or("engine")?;
    let mut out = Vec::new();
    for (name, params) in calls {
        let args: Vec<Value> = params.iter().map(|k| zero(*k)).collect();
        let result = engine
            .call_typed(&Target::Name(name.clone()), &args)
            .map(|values| values.iter().map(|v| v.to_slot()).collect())
            .map_err(|e| match e {
                hb_beamr_core::errors::Error::Trap(text) => text,
                other => format!("{other:?}"),
            });
        out.push(Call {
            export: name.clone(),
            result,
            fuel_left: fuel.global.and_then(|g| read_global(&engine.as_ref(), g)),
            out_of_fuel: host.calls.get(),
        });
    }
    Ok(out)
}

/// Runs `bytes` (bytecode or an AOT file, as `mode` says), calling `calls`.
pub fn run(bytes: &[u8], mode: Mode, calls: &[(String, Vec<ValKind>)], fuel: Fuel) -> Outcome {
    let (bytes, calls) = (bytes.to_vec(), calls.to_vec());
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || run_here(bytes, mode, &calls, fuel))
        .expect("thread")
        .join()
        .unwrap_or_else(|_| Err("the run panicked".into()))
}
