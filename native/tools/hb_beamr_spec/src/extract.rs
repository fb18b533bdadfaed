//! A `.wast` file to [`Command`]s, with every module encoded to a binary
//! file under the output directory. Steps that cannot run here become
//! skips with their reason (the `reason` constants are what the result
//! table groups by).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use wast::core::{AbstractHeapType, HeapType, NanPattern, WastArgCore, WastRetCore};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};

use crate::features;
use crate::manifest::{Action, Command, Expected, FileManifest, Value};
use crate::suites::WastFile;

pub const TEXT_ONLY: &str =
    "text-format error (a quoted module the text parser must refuse): no binary to load";
pub const REGISTER: &str =
    "register: one module's exports as another's imports (hb_beamr does not link instances)";
pub const IMPORTS_REGISTERED: &str =
    "imports from a registered module (hb_beamr does not link instances)";
pub const IMPORTS_GLOBAL: &str =
    "imports a global (spectest.global_*): hb_beamr links no imported globals (as HyperBEAM's build)";
pub const IMPORTS_MEMORY: &str = "imports spectest's memory or table: hb_beamr links imported \
     memories and tables only under WAMR's built-in module name env";
pub const UNLINKABLE: &str = "assert_unlinkable: hb_beamr answers imports with an Erlang fun \
     at call time, so it does not refuse unknown imports at start";
pub const V128: &str = "SIMD (v128) values";
pub const LIFTED: &str = "refused under WebAssembly 2.0 rules but valid with a proposal the \
     build enables (memory64, exception handling, tail calls)";
pub const OTHER: &str = "wast commands for other proposals (threads, custom-section \
     assertions, module definitions, suspensions)";

/// Parses `file`, writes its modules under `out/<suite>/<file>/`, and
/// returns its steps.
pub fn file(file: &WastFile, out: &Path) -> Result<FileManifest, String> {
    let stem = file.name.trim_end_matches(".wast");
    let rel_dir = format!("{}/{}", file.suite, stem);
    std::fs::create_dir_all(out.join(&rel_dir)).map_err(|e| format!("{rel_dir}: {e}"))?;
    let mut lexer = Lexer::new(file.text);
    lexer.allow_confusing_unicode(true);
    let buf = ParseBuffer::new_with_lexer(lexer).map_err(|e| e.to_string())?;
    let wast: Wast<'_> = parser::parse(&buf).map_err(|e| e.to_string())?;
    let mut x = Extractor {
        text: file.text,
        out,
        rel_dir,
        count: 0,
        commands: Vec::new(),
        current: HashSet::new(),
        named: HashMap::new(),
    };
    for directive in wast.directives {
        x.directive(directive)?;
    }
    Ok(FileManifest {
        suite: file.suite.clone(),
        name: file.name.clone(),
        commands: x.commands,
    })
}

struct Extractor<'t> {
    text: &'t str,
    out: &'t Path,
    rel_dir: String,
    count: usize,
    commands: Vec<Command>,
    /// Exports of the current and of the named modules whose signatures
    /// have reference or v128 types.
    current: HashSet<String>,
    named: HashMap<String, HashSet<String>>,
}

impl Extractor<'_> {
    /// Sets an invocation's `refs` from its module's export signatures.
    fn typed(&self, action: Action) -> Action {
        match action {
            Action::Invoke {
                module, name, args, ..
            } => {
                let set = match &module {
                    Some(m) => self.named.get(m),
                    None => Some(&self.current),
                };
                let refs = set.is_some_and(|s| s.contains(&name));
                Action::Invoke {
                    module,
                    name,
                    args,
                    refs,
                }
            }
            other => other,
        }
    }

    fn set_module(&mut self, name: &Option<String>, wasm: Option<&[u8]>) {
        self.current = wasm.map(ref_exports).unwrap_or_default();
        if let Some(name) = name {
            self.named.insert(name.clone(), self.current.clone());
        }
    }

    fn line(&self, span: wast::token::Span) -> usize {
        span.linecol_in(self.text).0 + 1
    }

    fn skip(&mut self, line: usize, reason: &str) {
        self.commands.push(Command::Skip {
            line,
            reason: reason.to_string(),
            links: Vec::new(),
        });
    }

    /// Writes a module binary; returns its path relative to the output.
    fn write(&mut self, wasm: &[u8]) -> Result<String, String> {
        self.count += 1;
        let rel = format!("{}/{}.wasm", self.rel_dir, self.count);
        std::fs::write(self.out.join(&rel), wasm).map_err(|e| format!("{rel}: {e}"))?;
        Ok(rel)
    }

    fn directive(&mut self, d: WastDirective<'_>) -> Result<(), String> {
        use WastDirective as D;
        match d {
            D::Module(mut module) => {
                let line = self.line(module.span());
                let name = module_name(&module);
                let encoded = module.encode();
                self.set_module(&name, encoded.as_deref().ok());
                let command = match encoded {
                    Err(e) => Command::SkipModule {
                        line,
                        name,
                        reason: format!("the text parser cannot encode it: {}", e.message()),
                        links: Vec::new(),
                    },
                    Ok(wasm) => match runnable(&wasm) {
                        Err((reason, links)) => Command::SkipModule {
                            line,
                            name,
                            reason,
                            links,
                        },
                        Ok(()) => Command::Module {
                            line,
                            name,
                            exceptions: features::uses_exceptions(&wasm),
                            wasm: self.write(&wasm)?,
                        },
                    },
                };
                self.commands.push(command);
            }
            D::AssertMalformed {
                span,
                module,
                message,
            } => self.refused(span, "assert_malformed", module, message)?,
            D::AssertInvalid {
                span,
                module,
                message,
            } => self.refused(span, "assert_invalid", module, message)?,
            D::Register { span, name, module } => self.commands.push(Command::Register {
                line: self.line(span),
                name: name.to_string(),
                module: module.map(|id| id.name().to_string()),
            }),
            D::Invoke(invoke) => {
                let line = self.line(invoke.span);
                match invoke_action(invoke) {
                    Ok(action) => {
                        let action = self.typed(action);
                        self.commands.push(Command::Action { line, action })
                    }
                    Err(reason) => self.skip(line, reason),
                }
            }
            D::AssertReturn {
                span,
                exec,
                results,
            } => {
                let line = self.line(span);
                match (execute_action(exec), expected_all(results)) {
                    (Ok(action), Ok(expected)) => {
                        let action = self.typed(action);
                        self.commands.push(Command::AssertReturn {
                            line,
                            action,
                            expected,
                        })
                    }
                    (Err(reason), _) | (_, Err(reason)) => self.skip(line, reason),
                }
            }
            D::AssertTrap {
                span,
                exec: WastExecute::Wat(mut module),
                message,
            } => {
                let line = self.line(span);
                match module.encode() {
                    Ok(wasm) if runnable(&wasm).is_err() => {
                        let (reason, links) = runnable(&wasm).err().unwrap_or_default();
                        self.commands.push(Command::Skip {
                            line,
                            reason,
                            links,
                        });
                    }
                    Ok(wasm) => {
                        let wasm = self.write(&wasm)?;
                        self.commands.push(Command::AssertModuleTrap {
                            line,
                            wasm,
                            message: message.to_string(),
                        });
                    }
                    Err(_) => self.skip(line, TEXT_ONLY),
                }
            }
            D::AssertTrap {
                span,
                exec,
                message,
            } => self.trap(self.line(span), execute_action(exec), message, false),
            D::AssertExhaustion {
                span,
                call,
                message,
            } => self.trap(self.line(span), invoke_action(call), message, true),
            // An uncaught exception reaches the host as a trap.
            D::AssertException { span, exec } => {
                self.trap(self.line(span), execute_action(exec), "", false)
            }
            D::AssertUnlinkable { span, .. } => self.skip(self.line(span), UNLINKABLE),
            other => {
                let line = self.line(other.span());
                self.skip(line, OTHER)
            }
        }
        Ok(())
    }

    fn trap(
        &mut self,
        line: usize,
        action: Result<Action, &'static str>,
        message: &str,
        exhaustion: bool,
    ) {
        match action {
            Ok(action) => self.commands.push(Command::AssertTrap {
                line,
                action: self.typed(action),
                message: message.to_string(),
                exhaustion,
            }),
            Err(reason) => self.skip(line, reason),
        }
    }

    fn refused(
        &mut self,
        span: wast::token::Span,
        kind: &'static str,
        mut module: QuoteWat<'_>,
        message: &str,
    ) -> Result<(), String> {
        let line = self.line(span);
        let Ok(wasm) = module.encode() else {
            self.skip(line, TEXT_ONLY);
            return Ok(());
        };
        if features::valid_with_build_features(&wasm) && !valid_in_wasm2(&wasm) {
            // Valid for the build's features: only a 2.0-only rule refuses it.
            self.skip(line, LIFTED);
            return Ok(());
        }
        let wasm = self.write(&wasm)?;
        self.commands.push(Command::AssertRefused {
            line,
            kind,
            wasm,
            message: message.to_string(),
        });
        Ok(())
    }
}

/// Whether the module is valid under WebAssembly 2.0 as well: then the
/// `.wast` file's refusal is for a reason a validator does not see (a
/// malformed encoding wasmparser accepts, say), and it stays a test.
fn valid_in_wasm2(wasm: &[u8]) -> bool {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::WASM2)
        .validate_all(wasm)
        .is_ok()
}

fn module_name(module: &QuoteWat<'_>) -> Option<String> {
    match module {
        QuoteWat::Wat(Wat::Module(m)) => m.id.map(|id| id.name().to_string()),
        _ => None,
    }
}

/// Whether the build can run a valid module: the proposals it needs, and
/// its imports (only the `spectest` host module's functions are served).
/// On refusal, the reason and the registered modules it imports from.
fn runnable(wasm: &[u8]) -> Result<(), (String, Vec<String>)> {
    if let Some(reason) = features::missing_feature(wasm) {
        return Err((reason, Vec::new()));
    }
    let mut links: Vec<String> = Vec::new();
    let mut reason = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::ImportSection(reader)) = payload {
            for import in reader.into_imports().flatten() {
                if import.module != "spectest" {
                    if !links.iter().any(|l| l == import.module) {
                        links.push(import.module.to_string());
                    }
                    reason = Some(IMPORTS_REGISTERED);
                    continue;
                }
                match import.ty {
                    wasmparser::TypeRef::Global(_) => {
                        reason = reason.or(Some(IMPORTS_GLOBAL));
                    }
                    wasmparser::TypeRef::Memory(_) | wasmparser::TypeRef::Table(_) => {
                        reason = reason.or(Some(IMPORTS_MEMORY));
                    }
                    _ => {}
                }
            }
        }
    }
    match reason {
        Some(reason) => Err((reason.to_string(), links)),
        None => Ok(()),
    }
}

fn execute_action(exec: WastExecute<'_>) -> Result<Action, &'static str> {
    match exec {
        WastExecute::Invoke(invoke) => invoke_action(invoke),
        WastExecute::Get { module, global, .. } => Ok(Action::Get {
            module: module.map(|id| id.name().to_string()),
            name: global.to_string(),
        }),
        WastExecute::Wat(_) => Err(OTHER),
    }
}

fn invoke_action(invoke: WastInvoke<'_>) -> Result<Action, &'static str> {
    let args = invoke
        .args
        .iter()
        .map(|arg| match arg {
            WastArg::Core(core) => arg_value(core),
            _ => Err(OTHER),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Action::Invoke {
        module: invoke.module.map(|id| id.name().to_string()),
        name: invoke.name.to_string(),
        args,
        refs: false,
    })
}

fn heap_kind(heap: &HeapType<'_>) -> Result<&'static str, &'static str> {
    match heap {
        HeapType::Abstract {
            ty: AbstractHeapType::Func,
            ..
        } => Ok("func"),
        HeapType::Abstract {
            ty: AbstractHeapType::Extern,
            ..
        } => Ok("extern"),
        _ => Err(OTHER),
    }
}

fn arg_value(arg: &WastArgCore<'_>) -> Result<Value, &'static str> {
    Ok(match arg {
        WastArgCore::I32(x) => Value::I32(*x as u32),
        WastArgCore::I64(x) => Value::I64(*x as u64),
        WastArgCore::F32(x) => Value::F32(x.bits),
        WastArgCore::F64(x) => Value::F64(x.bits),
        WastArgCore::V128(_) => return Err(V128),
        WastArgCore::RefNull(heap) => Value::RefNull(heap_kind(heap)?),
        WastArgCore::RefExtern(x) => Value::RefExtern(*x),
        WastArgCore::RefHost(_) => return Err(OTHER),
    })
}

fn expected_all(results: Vec<WastRet<'_>>) -> Result<Vec<Expected>, &'static str> {
    results
        .iter()
        .map(|r| match r {
            WastRet::Core(core) => expected(core),
            _ => Err(OTHER),
        })
        .collect()
}

fn expected(ret: &WastRetCore<'_>) -> Result<Expected, &'static str> {
    Ok(match ret {
        WastRetCore::I32(x) => Expected::Exact(Value::I32(*x as u32)),
        WastRetCore::I64(x) => Expected::Exact(Value::I64(*x as u64)),
        WastRetCore::F32(NanPattern::Value(x)) => Expected::Exact(Value::F32(x.bits)),
        WastRetCore::F64(NanPattern::Value(x)) => Expected::Exact(Value::F64(x.bits)),
        WastRetCore::F32(NanPattern::CanonicalNan) => Expected::CanonicalNan(32),
        WastRetCore::F64(NanPattern::CanonicalNan) => Expected::CanonicalNan(64),
        WastRetCore::F32(NanPattern::ArithmeticNan) => Expected::ArithmeticNan(32),
        WastRetCore::F64(NanPattern::ArithmeticNan) => Expected::ArithmeticNan(64),
        WastRetCore::V128(_) => return Err(V128),
        WastRetCore::RefNull(None) => Expected::Exact(Value::RefNull("any")),
        WastRetCore::RefNull(Some(heap)) => Expected::Exact(Value::RefNull(heap_kind(heap)?)),
        WastRetCore::RefExtern(Some(x)) => Expected::Exact(Value::RefExtern(*x)),
        WastRetCore::RefFunc(_) => Expected::Exact(Value::RefFunc),
        WastRetCore::Either(all) => {
            Expected::Either(all.iter().map(expected).collect::<Result<_, _>>()?)
        }
        _ => return Err(OTHER),
    })
}

/// The exported functions whose signatures have types other than numbers.
fn ref_exports(wasm: &[u8]) -> HashSet<String> {
    let mut types: Vec<bool> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut out = HashSet::new();
    let numeric = |t: &wasmparser::ValType| {
        matches!(
            t,
            wasmparser::ValType::I32
                | wasmparser::ValType::I64
                | wasmparser::ValType::F32
                | wasmparser::ValType::F64
        )
    };
    for payload in wasmparser::Parser::new(0).parse_all(wasm).flatten() {
        match payload {
            wasmparser::Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types().flatten() {
                    types.push(!ty.params().iter().chain(ty.results()).all(numeric));
                }
            }
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports().flatten() {
                    if let wasmparser::TypeRef::Func(t) = import.ty {
                        funcs.push(t);
                    }
                }
            }
            wasmparser::Payload::FunctionSection(reader) => {
                funcs.extend(reader.into_iter().flatten())
            }
            wasmparser::Payload::ExportSection(reader) => {
                for export in reader.into_iter().flatten() {
                    let refs = export.kind == wasmparser::ExternalKind::Func
                        && funcs
                            .get(export.index as usize)
                            .and_then(|t| types.get(*t as usize))
                            .copied()
                            .unwrap_or(false);
                    if refs {
                        out.insert(export.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}
