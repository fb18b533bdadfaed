//! The Rust runner: each file's steps through `hb_beamr_engine`, the code
//! the NIF's instance threads run (load_module, EngineInstance, calls, the
//! import trampoline through a [`Host`]), with every value bit-exact (NaN
//! payloads included). AOT mode loads the `.aot` files the Erlang runner
//! compiled with `hb_beamr:compile/2` next to each module's `.wasm`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hb_beamr_core::errors::Error;
use hb_beamr_core::values::Value as EValue;
use hb_beamr_engine::{
    install_host, EngineInstance, Host, ImportDesc, InstanceRef, Interrupter, Limits, Mode, Module,
    Target, Trap,
};

use crate::extract::REGISTER;
use crate::manifest::{Action, Command, Expected, FileManifest, Value};

const REFS: &str = "reference values (funcref, externref): the engine's values are numbers";
const GLOBAL_GET: &str = "reading an exported global: not in the engine's interface";
const TAINTED: &str = "follows a skipped step that changes this module's state (a skipped \
     action, or a skipped module linked to it)";
/// A call still running after this is stopped (as `hb_beamr:call`'s
/// timeout does) and counts as a failure.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

const AOT_EH: &str =
    "exception handling in AOT: WAMR's AOT compiler has none (such modules run as bytecode)";

/// One file's counts in one mode.
pub struct FileResult {
    pub suite: String,
    pub name: String,
    pub mode: &'static str,
    pub passed: usize,
    pub failed: usize,
    pub skipped: BTreeMap<String, usize>,
    pub failures: Vec<(usize, String)>,
}

/// The `spectest` host module's functions print; here they do nothing.
struct SpecHost;

impl Host for SpecHost {
    fn engine(&self) -> Option<&EngineInstance> {
        None
    }

    fn import(
        &self,
        _instance: InstanceRef,
        desc: &ImportDesc,
        _args: &[EValue],
    ) -> Result<Vec<EValue>, Trap> {
        if desc.module == "spectest" && desc.name.starts_with("print") {
            Ok(Vec::new())
        } else {
            Err(Trap::new(format!(
                "unknown import {}.{}",
                desc.module, desc.name
            )))
        }
    }
}

enum Slot {
    Live(Rc<EngineInstance>),
    Skipped(String),
    Failed(String),
    Tainted,
}

/// The call in progress: when it started, and how to stop it.
type Running = Arc<Mutex<Option<(Instant, Interrupter)>>>;

/// Stops calls that run past [`CALL_TIMEOUT`], until `running` is dropped
/// by the file's thread.
fn watchdog(running: &Running) {
    let running = Arc::downgrade(running);
    std::thread::spawn(move || {
        while let Some(running) = running.upgrade() {
            let mut slot = running.lock().unwrap_or_else(|e| e.into_inner());
            if slot
                .as_ref()
                .is_some_and(|(started, _)| started.elapsed() > CALL_TIMEOUT)
            {
                // Taking the slot tells the file's thread it was stopped.
                if let Some((_, interrupter)) = slot.take() {
                    interrupter.interrupt();
                }
            }
            drop(slot);
            drop(running);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

struct State<'a> {
    dir: &'a Path,
    running: Running,
    mode: Mode,
    current: Option<Rc<Slot>>,
    named: HashMap<String, Rc<Slot>>,
    registered: HashMap<String, Rc<Slot>>,
    result: FileResult,
}

/// Runs one file in `mode` on a thread of its own (the instance's native
/// stack, as the NIF's instance threads have).
pub fn file(dir: &Path, manifest: &FileManifest, mode: Mode) -> FileResult {
    let stack = Limits::default().native_stack + 1024 * 1024;
    let dir = dir.to_path_buf();
    let (suite, name, commands) = (
        manifest.suite.clone(),
        manifest.name.clone(),
        manifest.commands.clone(),
    );
    let mode_name = mode_name(mode);
    let run = move || {
        let _env = hb_beamr_engine::ThreadEnv::enter();
        let _host = install_host(Rc::new(SpecHost));
        let running: Running = Arc::new(Mutex::new(None));
        watchdog(&running);
        let mut state = State {
            dir: &dir,
            running,
            mode,
            current: None,
            named: HashMap::new(),
            registered: HashMap::new(),
            result: FileResult {
                suite,
                name,
                mode: mode_name,
                passed: 0,
                failed: 0,
                skipped: BTreeMap::new(),
                failures: Vec::new(),
            },
        };
        for command in &commands {
            state.step(command);
        }
        state.result
    };
    match std::thread::Builder::new().stack_size(stack).spawn(run) {
        Ok(handle) => handle
            .join()
            .unwrap_or_else(|_| crashed(manifest, mode_name)),
        Err(_) => crashed(manifest, mode_name),
    }
}

fn crashed(manifest: &FileManifest, mode: &'static str) -> FileResult {
    FileResult {
        suite: manifest.suite.clone(),
        name: manifest.name.clone(),
        mode,
        passed: 0,
        failed: 1,
        skipped: BTreeMap::new(),
        failures: vec![(0, "the runner thread panicked".into())],
    }
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Wasm => "wasm",
        Mode::Aot => "aot",
    }
}

impl State<'_> {
    fn pass(&mut self) {
        self.result.passed += 1;
    }

    fn fail(&mut self, line: usize, why: String) {
        self.result.failed += 1;
        self.result.failures.push((line, why));
    }

    fn skip(&mut self, reason: &str) {
        *self.result.skipped.entry(reason.to_string()).or_insert(0) += 1;
    }

    fn set_module(&mut self, name: &Option<String>, slot: Slot) {
        let slot = Rc::new(slot);
        if let Some(name) = name {
            self.named.insert(name.clone(), slot.clone());
        }
        self.current = Some(slot);
    }

    fn module_of(&self, name: &Option<String>) -> Option<Rc<Slot>> {
        match name {
            None => self.current.clone(),
            Some(n) => self.named.get(n).cloned(),
        }
    }

    /// Replaces every reference to a live `slot` by a tainted one.
    fn taint(&mut self, slot: &Rc<Slot>) {
        if !matches!(**slot, Slot::Live(_)) {
            return;
        }
        let tainted = Rc::new(Slot::Tainted);
        let swap = |s: &mut Rc<Slot>| {
            if Rc::ptr_eq(s, slot) {
                *s = tainted.clone();
            }
        };
        if let Some(c) = self.current.as_mut() {
            swap(c);
        }
        self.named.values_mut().for_each(swap);
        self.registered.values_mut().for_each(swap);
    }

    fn taint_links(&mut self, links: &[String]) {
        for link in links {
            if let Some(slot) = self.registered.get(link).cloned() {
                self.taint(&slot);
            }
        }
    }

    /// Loads a module binary in this mode: `.wasm`, or the `.aot` the
    /// Erlang runner compiled (`None`: the compiler refused it).
    fn load(&self, wasm: &str) -> Result<Option<Module>, Error> {
        let path = match self.mode {
            Mode::Wasm => self.dir.join(wasm),
            Mode::Aot => self.dir.join(wasm).with_extension("aot"),
        };
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        hb_beamr_engine::load_module(bytes, self.mode).map(Some)
    }

    fn instantiate(&self, wasm: &str) -> Result<Option<EngineInstance>, Error> {
        match self.load(wasm)? {
            Some(module) => EngineInstance::new(module, Limits::default()).map(Some),
            None => Ok(None),
        }
    }

    fn step(&mut self, command: &Command) {
        match command {
            Command::Module {
                line,
                name,
                wasm,
                exceptions,
            } => {
                if self.mode == Mode::Aot && *exceptions {
                    self.set_module(name, Slot::Skipped(AOT_EH.into()));
                    return self.skip(AOT_EH);
                }
                match self.instantiate(wasm) {
                    Ok(Some(instance)) => {
                        self.set_module(name, Slot::Live(Rc::new(instance)));
                        self.pass();
                    }
                    Ok(None) => {
                        self.set_module(name, Slot::Failed("not compiled".into()));
                        self.fail(*line, "the module was not compiled to AOT".into());
                    }
                    Err(e) => {
                        let why = format!("module refused: {e:?}");
                        self.set_module(name, Slot::Failed(why.clone()));
                        self.fail(*line, why);
                    }
                }
            }
            Command::SkipModule {
                name,
                reason,
                links,
                ..
            } => {
                self.taint_links(links);
                self.set_module(name, Slot::Skipped(reason.clone()));
                self.skip(reason);
            }
            Command::Register { name, module, .. } => {
                if let Some(slot) = self.module_of(module) {
                    self.registered.insert(name.clone(), slot);
                }
                self.skip(REGISTER);
            }
            Command::Skip { reason, links, .. } => {
                self.taint_links(links);
                self.skip(reason);
            }
            Command::Action { line, action } => self.act(*line, action, |r| {
                r.map(|_| ()).map_err(|e| format!("{e:?}"))
            }),
            Command::AssertReturn {
                line,
                action,
                expected,
            } => self.act(*line, action, |r| match r {
                Ok(values) if matches_all(expected, &values) => Ok(()),
                Ok(values) => Err(format!("expected {expected:?}, got {:?}", bits(&values))),
                other => Err(format!("expected {expected:?}, got {other:?}")),
            }),
            Command::AssertTrap {
                line,
                action,
                message,
                exhaustion,
            } => self.act(*line, action, |r| match r {
                Err(Error::Trap(why))
                    if !exhaustion
                        || why.contains("stack overflow")
                        || why.contains("exhausted") =>
                {
                    Ok(())
                }
                other => Err(format!("expected the trap {message:?}, got {other:?}")),
            }),
            Command::AssertModuleTrap {
                line,
                wasm,
                message,
            } => match self.instantiate(wasm) {
                Err(Error::Instantiation(_)) => self.pass(),
                other => {
                    let got = other.map(|o| o.is_some());
                    self.fail(
                        *line,
                        format!("expected the start trap {message:?}, got {got:?}"),
                    )
                }
            },
            Command::AssertRefused {
                line,
                kind,
                wasm,
                message,
            } => match self.instantiate(wasm) {
                Err(_) | Ok(None) => self.pass(),
                Ok(Some(_)) => self.fail(*line, format!("{kind} {message:?}: it started")),
            },
        }
    }

    /// Runs an invocation, unless it cannot be expressed; `check` judges the
    /// result. A skipped call (reference types: the calls that change
    /// tables) taints its module.
    fn act(
        &mut self,
        line: usize,
        action: &Action,
        check: impl FnOnce(Result<Vec<EValue>, Error>) -> Result<(), String>,
    ) {
        let (module, name, args, refs) = match action {
            Action::Get { .. } => return self.skip(GLOBAL_GET),
            Action::Invoke {
                module,
                name,
                args,
                refs,
            } => (module, name, args, *refs),
        };
        let slot = self.module_of(module);
        let values: Option<Vec<EValue>> = args.iter().map(engine_value).collect();
        let Some(values) = values.filter(|_| !refs) else {
            if let Some(slot) = slot {
                self.taint(&slot);
            }
            return self.skip(REFS);
        };
        match slot.as_deref() {
            None => self.fail(line, "no module".into()),
            Some(Slot::Skipped(reason)) => {
                let reason = reason.clone();
                self.skip(&reason)
            }
            Some(Slot::Tainted) => self.skip(TAINTED),
            Some(Slot::Failed(why)) => {
                let why = why.clone();
                self.fail(line, why)
            }
            Some(Slot::Live(instance)) => {
                let instance = instance.clone();
                let result = self.timed_call(&instance, name, &values);
                match check(result) {
                    Ok(()) => self.pass(),
                    Err(why) => self.fail(line, format!("{name}({args:?}): {why}")),
                }
            }
        }
    }
}

impl State<'_> {
    /// Calls under the watchdog: past [`CALL_TIMEOUT`] the call is stopped
    /// and reported as `Error::Timeout`.
    fn timed_call(
        &self,
        instance: &EngineInstance,
        name: &str,
        values: &[EValue],
    ) -> Result<Vec<EValue>, Error> {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), instance.interrupter()));
        let result = instance.call_typed(&Target::Name(name.to_string()), values);
        let finished = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if finished.is_none() {
            // The watchdog stopped it: nothing may linger for the next call.
            instance.clear_interrupt();
            return Err(Error::Timeout);
        }
        result
    }
}

fn engine_value(v: &Value) -> Option<EValue> {
    Some(match v {
        Value::I32(x) => EValue::I32(*x as i32),
        Value::I64(x) => EValue::I64(*x as i64),
        Value::F32(bits) => EValue::F32(f32::from_bits(*bits)),
        Value::F64(bits) => EValue::F64(f64::from_bits(*bits)),
        Value::RefNull(_) | Value::RefExtern(_) | Value::RefFunc => return None,
    })
}

/// Results as the manifest writes values (floats as bits).
fn bits(values: &[EValue]) -> Vec<Value> {
    values
        .iter()
        .map(|v| match v {
            EValue::I32(x) => Value::I32(*x as u32),
            EValue::I64(x) => Value::I64(*x as u64),
            EValue::F32(x) => Value::F32(x.to_bits()),
            EValue::F64(x) => Value::F64(x.to_bits()),
        })
        .collect()
}

fn matches_all(expected: &[Expected], values: &[EValue]) -> bool {
    expected.len() == values.len() && expected.iter().zip(values).all(|(e, v)| matches(e, v))
}

/// Bit-exact, except where the spec allows any NaN of a kind.
fn matches(expected: &Expected, value: &EValue) -> bool {
    match (expected, value) {
        (Expected::Either(all), v) => all.iter().any(|e| matches(e, v)),
        (Expected::Exact(Value::I32(x)), EValue::I32(v)) => *x == *v as u32,
        (Expected::Exact(Value::I64(x)), EValue::I64(v)) => *x == *v as u64,
        (Expected::Exact(Value::F32(x)), EValue::F32(v)) => *x == v.to_bits(),
        (Expected::Exact(Value::F64(x)), EValue::F64(v)) => *x == v.to_bits(),
        (Expected::CanonicalNan(32), EValue::F32(v)) => v.to_bits() & 0x7fff_ffff == 0x7fc0_0000,
        (Expected::CanonicalNan(64), EValue::F64(v)) => {
            v.to_bits() & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000
        }
        (Expected::ArithmeticNan(32), EValue::F32(v)) => {
            v.is_nan() && v.to_bits() & 0x0040_0000 != 0
        }
        (Expected::ArithmeticNan(64), EValue::F64(v)) => {
            v.is_nan() && v.to_bits() & 0x0008_0000_0000_0000 != 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_compare_by_bits_and_nan_kinds() {
        let nan = EValue::F32(f32::from_bits(0x7fc0_0000));
        let payload = EValue::F32(f32::from_bits(0x7fa0_0000));
        assert!(matches(&Expected::CanonicalNan(32), &nan));
        assert!(!matches(&Expected::CanonicalNan(32), &payload));
        assert!(!matches(&Expected::ArithmeticNan(32), &payload));
        assert!(matches(&Expected::Exact(Value::F32(0x7fa0_0000)), &payload));
        assert!(!matches(
            &Expected::Exact(Value::F64(0x8000_0000_0000_0000)),
            &EValue::F64(0.0)
        ));
        assert!(matches(
            &Expected::Exact(Value::I32(u32::MAX)),
            &EValue::I32(-1)
        ));
    }
}
