//! The module around the bodies: what the bodies need to know (`Facts`),
//! and the re-encoder that adds the counter's pieces (a type, the import,
//! the global and its export, the charge function, the custom section),
//! shifts function indices past the added import (calls, `ref.func`,
//! elements, exports, the start function, the name section) and meters
//! every body.

use wasm_encoder::reencode::{utils, Error, Reencode};
use wasm_encoder::{
    CodeSection, ConstExpr, CustomSection, EntityType, ExportKind, ExportSection, FunctionSection,
    GlobalSection, GlobalType, ImportSection, SectionId, TypeSection, ValType,
};
use wasmparser::{CompositeInnerType, ExternalKind, FunctionBody, Parser, Payload, TypeRef};

use crate::abi::{self, MeterInfo, ABI_VERSION};
use crate::body::{self, BodyCtx};
use crate::cost::COST_TABLE_VERSION;
use crate::{MeterError, Options};

/// What the rewrite needs to know of the input module.
#[derive(Debug, Default)]
pub struct Facts {
    /// Types in the type section (all rec groups).
    pub types: u32,
    pub imported_funcs: u32,
    /// Parameter count of each defined function.
    pub params: Vec<u32>,
    /// Globals, imported and defined.
    pub globals: u32,
    pub memory64: Vec<bool>,
    pub table64: Vec<bool>,
}

fn invalid(e: wasmparser::BinaryReaderError) -> MeterError {
    MeterError::Invalid(e.to_string())
}

/// Reads the facts of a validated module; refuses a module that is
/// already metered or uses the counter's names.
pub fn facts(wasm: &[u8]) -> Result<Facts, MeterError> {
    let mut facts = Facts::default();
    let mut type_params: Vec<u32> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(invalid)?.into_types() {
                        type_params.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => f.params().len() as u32,
                            _ => 0,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    if import.module == abi::IMPORT_MODULE && import.name == abi::OUT_OF_FUEL {
                        return Err(MeterError::AlreadyMetered);
                    }
                    match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => facts.imported_funcs += 1,
                        TypeRef::Global(_) => facts.globals += 1,
                        TypeRef::Memory(m) => facts.memory64.push(m.memory64),
                        TypeRef::Table(t) => facts.table64.push(t.table64),
                        TypeRef::Tag(_) => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    let ty = ty.map_err(invalid)?;
                    facts
                        .params
                        .push(type_params.get(ty as usize).copied().unwrap_or(0));
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    facts.table64.push(table.map_err(invalid)?.ty.table64);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    facts.memory64.push(memory.map_err(invalid)?.memory64);
                }
            }
            Payload::GlobalSection(reader) => facts.globals += reader.count(),
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    if export.name == abi::FUEL_EXPORT {
                        return Err(if export.kind == ExternalKind::Global {
                            MeterError::AlreadyMetered
                        } else {
                            MeterError::NameTaken(export.name.to_string())
                        });
                    }
                }
            }
            Payload::CustomSection(reader) if reader.name() == abi::SECTION => {
                return Err(MeterError::AlreadyMetered);
            }
            _ => {}
        }
    }
    facts.types = type_params.len() as u32;
    Ok(facts)
}

/// The sections the rewrite adds to, in module order; a module without
/// one of them gets one with only the rewrite's entries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Added {
    Type,
    Import,
    Function,
    Global,
    Export,
    Code,
}

const ADDED: [Added; 6] = [
    Added::Type,
    Added::Import,
    Added::Function,
    Added::Global,
    Added::Export,
    Added::Code,
];

impl Added {
    fn id(self) -> SectionId {
        match self {
            Added::Type => SectionId::Type,
            Added::Import => SectionId::Import,
            Added::Function => SectionId::Function,
            Added::Global => SectionId::Global,
            Added::Export => SectionId::Export,
            Added::Code => SectionId::Code,
        }
    }
}

/// A section's place in a module (the tag and data count sections are
/// numbered out of order).
fn rank(id: SectionId) -> u32 {
    match id {
        SectionId::Tag => 2 * SectionId::Memory as u32 + 1,
        SectionId::DataCount => 2 * SectionId::Element as u32 + 1,
        other => 2 * other as u32,
    }
}

struct Meterer<'a> {
    facts: &'a Facts,
    info: MeterInfo,
    /// The added type `(i64) -> ()` (of the import and `$charge`).
    fuel_type: u32,
    initial_fuel: i64,
    next_body: usize,
    done: [bool; 6],
}

/// What the bodies need, from the facts and the counter's place.
fn body_ctx<'a>(facts: &'a Facts, info: &MeterInfo) -> BodyCtx<'a> {
    BodyCtx {
        fuel_global: info.fuel_global,
        charge_func: info.charge_func,
        out_of_fuel_func: info.out_of_fuel_func,
        memory64: &facts.memory64,
        table64: &facts.table64,
    }
}

impl Meterer<'_> {
    fn mark(&mut self, added: Added) {
        self.done[added as usize] = true;
    }

    fn add_type(&mut self, types: &mut TypeSection) {
        types.ty().function([ValType::I64], []);
        self.mark(Added::Type);
    }

    fn add_import(&mut self, imports: &mut ImportSection) {
        imports.import(
            abi::IMPORT_MODULE,
            abi::OUT_OF_FUEL,
            EntityType::Function(self.fuel_type),
        );
        self.mark(Added::Import);
    }

    fn add_function(&mut self, functions: &mut FunctionSection) {
        functions.function(self.fuel_type);
        self.mark(Added::Function);
    }

    fn add_global(&mut self, globals: &mut GlobalSection) {
        globals.global(
            GlobalType {
                val_type: ValType::I64,
                mutable: true,
                shared: false,
            },
            &ConstExpr::i64_const(self.initial_fuel),
        );
        self.mark(Added::Global);
    }

    fn add_export(&mut self, exports: &mut ExportSection) {
        exports.export(abi::FUEL_EXPORT, ExportKind::Global, self.info.fuel_global);
        self.mark(Added::Export);
    }

    fn add_code(&mut self, code: &mut CodeSection) {
        code.function(&body::charge_function(&body_ctx(self.facts, &self.info)));
        self.mark(Added::Code);
    }

    /// A section with only the rewrite's entries.
    fn add_alone(&mut self, module: &mut wasm_encoder::Module, added: Added) {
        match added {
            Added::Type => {
                let mut s = TypeSection::new();
                self.add_type(&mut s);
                module.section(&s);
            }
            Added::Import => {
                let mut s = ImportSection::new();
                self.add_import(&mut s);
                module.section(&s);
            }
            Added::Function => {
                let mut s = FunctionSection::new();
                self.add_function(&mut s);
                module.section(&s);
            }
            Added::Global => {
                let mut s = GlobalSection::new();
                self.add_global(&mut s);
                module.section(&s);
            }
            Added::Export => {
                let mut s = ExportSection::new();
                self.add_export(&mut s);
                module.section(&s);
            }
            Added::Code => {
                let mut s = CodeSection::new();
                self.add_code(&mut s);
                module.section(&s);
            }
        }
    }
}

impl Reencode for Meterer<'_> {
    type Error = MeterError;

    fn function_index(&mut self, func: u32) -> Result<u32, Error<MeterError>> {
        if func < self.facts.imported_funcs {
            Ok(func)
        } else {
            func.checked_add(1)
                .ok_or_else(|| Error::UserError(MeterError::TooLarge("too many functions".into())))
        }
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), Error<MeterError>> {
        utils::parse_type_section(self, types, section)?;
        self.add_type(types);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), Error<MeterError>> {
        utils::parse_import_section(self, imports, section)?;
        self.add_import(imports);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), Error<MeterError>> {
        utils::parse_function_section(self, functions, section)?;
        self.add_function(functions);
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), Error<MeterError>> {
        utils::parse_global_section(self, globals, section)?;
        self.add_global(globals);
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), Error<MeterError>> {
        utils::parse_export_section(self, exports, section)?;
        self.add_export(exports);
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), Error<MeterError>> {
        utils::parse_code_section(self, code, section)?;
        self.add_code(code);
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: FunctionBody<'_>,
    ) -> Result<(), Error<MeterError>> {
        let params = *self.facts.params.get(self.next_body).ok_or_else(|| {
            Error::UserError(MeterError::Invalid("more bodies than functions".into()))
        })?;
        self.next_body += 1;
        // The context borrows only the facts, which outlive `self`.
        let ctx = body_ctx(self.facts, &self.info);
        let f = body::meter_body(self, &ctx, &func, params)?;
        code.function(&f);
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), Error<MeterError>> {
        let low = after.map(rank);
        let high = before.map(rank);
        for added in ADDED {
            let r = rank(added.id());
            let fits = low.is_none_or(|low| r > low) && high.is_none_or(|high| r < high);
            if fits && !self.done[added as usize] {
                self.add_alone(module, added);
            }
        }
        if before.is_none() {
            module.section(&CustomSection {
                name: abi::SECTION.into(),
                data: self.info.encode().into(),
            });
        }
        Ok(())
    }
}

/// Meters a validated module with these facts.
pub fn rewrite(
    wasm: &[u8],
    facts: &Facts,
    options: &Options,
) -> Result<(Vec<u8>, MeterInfo), MeterError> {
    let too_large = |what: &str| MeterError::TooLarge(format!("too many {what}"));
    let defined = u32::try_from(facts.params.len()).map_err(|_| too_large("functions"))?;
    let charge_func = facts
        .imported_funcs
        .checked_add(1)
        .and_then(|n| n.checked_add(defined))
        .ok_or_else(|| too_large("functions"))?;
    let info = MeterInfo {
        abi_version: ABI_VERSION,
        cost_table_version: COST_TABLE_VERSION,
        fuel_global: facts.globals,
        out_of_fuel_func: facts.imported_funcs,
        charge_func,
    };
    let mut meterer = Meterer {
        facts,
        info,
        fuel_type: facts.types,
        initial_fuel: options.initial_fuel,
        next_body: 0,
        done: [false; 6],
    };
    let mut module = wasm_encoder::Module::new();
    meterer
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| match e {
            Error::UserError(e) => e,
            other => MeterError::Invalid(other.to_string()),
        })?;
    Ok((module.finish(), info))
}
