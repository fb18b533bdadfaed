//! The module around the bodies: reads the sections, adds the host imports
//! (and exports for direct calls made through the host), drops the tag
//! section, shifts function indices, and validates the result.

use std::convert::Infallible;

use hb_beamr_core::eh_abi;
use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasm_encoder::{
    CodeSection, CustomSection, DataCountSection, DataSection, ElementSection, EntityType,
    ExportKind, ExportSection, FunctionSection, GlobalSection, ImportSection, MemorySection,
    NameSection, Section, StartSection, TableSection, TypeSection, ValType,
};
use wasmparser::{
    CompositeInnerType, ExternalKind, FuncType, FunctionBody, KnownCustom, Name, Parser, Payload,
    TypeRef, Validator, WasmFeatures,
};

use crate::body;
use crate::error::RewriteError;
use crate::plan::{BodyCtx, HostNeed, Hosts, Payload as TagPayload, Shift};
use crate::scan::{self, FuncScan};

/// The sections of the input, as readers over its bytes.
#[derive(Default)]
struct Sections<'a> {
    types: Option<wasmparser::TypeSectionReader<'a>>,
    imports: Option<wasmparser::ImportSectionReader<'a>>,
    functions: Option<wasmparser::FunctionSectionReader<'a>>,
    tables: Option<wasmparser::TableSectionReader<'a>>,
    memories: Option<wasmparser::MemorySectionReader<'a>>,
    tags: Option<wasmparser::TagSectionReader<'a>>,
    globals: Option<wasmparser::GlobalSectionReader<'a>>,
    exports: Option<wasmparser::ExportSectionReader<'a>>,
    start: Option<u32>,
    elements: Option<wasmparser::ElementSectionReader<'a>>,
    data_count: Option<u32>,
    bodies: Vec<FunctionBody<'a>>,
    data: Option<wasmparser::DataSectionReader<'a>>,
    /// Custom sections before any other section, and the rest.
    leading_custom: Vec<wasmparser::CustomSectionReader<'a>>,
    custom: Vec<wasmparser::CustomSectionReader<'a>>,
}

fn read_sections(wasm: &[u8]) -> Result<Sections<'_>, RewriteError> {
    let mut s = Sections::default();
    let mut seen_other = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        if !matches!(
            payload,
            Payload::Version { .. } | Payload::CustomSection(_) | Payload::End(_)
        ) {
            seen_other = true;
        }
        match payload {
            Payload::Version { .. } | Payload::End(_) | Payload::CodeSectionStart { .. } => {}
            Payload::TypeSection(r) => s.types = Some(r),
            Payload::ImportSection(r) => s.imports = Some(r),
            Payload::FunctionSection(r) => s.functions = Some(r),
            Payload::TableSection(r) => s.tables = Some(r),
            Payload::MemorySection(r) => s.memories = Some(r),
            Payload::TagSection(r) => s.tags = Some(r),
            Payload::GlobalSection(r) => s.globals = Some(r),
            Payload::ExportSection(r) => s.exports = Some(r),
            Payload::StartSection { func, .. } => s.start = Some(func),
            Payload::ElementSection(r) => s.elements = Some(r),
            Payload::DataCountSection { count, .. } => s.data_count = Some(count),
            Payload::CodeSectionEntry(body) => s.bodies.push(body),
            Payload::DataSection(r) => s.data = Some(r),
            Payload::CustomSection(r) if seen_other => s.custom.push(r),
            Payload::CustomSection(r) => s.leading_custom.push(r),
            other => {
                return Err(RewriteError::new(format!(
                    "unexpected section in a core module: {other:?}"
                )))
            }
        }
    }
    Ok(s)
}

/// The facts about the module the bodies need.
struct Facts {
    /// Function types by type index (None: not a function type).
    types: Vec<Option<FuncType>>,
    imported_funcs: u32,
    /// Type index of each defined function.
    func_types: Vec<u32>,
    tags: Vec<TagPayload>,
    export_names: Vec<String>,
    /// Whether table 0 is exported (the runtime finds it by its export).
    table0_exported: bool,
}

fn facts(s: &Sections) -> Result<Facts, RewriteError> {
    let mut types = Vec::new();
    if let Some(reader) = s.types.clone() {
        for group in reader {
            for sub in group?.into_types() {
                types.push(match sub.composite_type.inner {
                    CompositeInnerType::Func(f) => Some(f),
                    _ => None,
                });
            }
        }
    }
    let mut imported_funcs = 0u32;
    if let Some(reader) = s.imports.clone() {
        for import in reader.into_imports() {
            let import = import?;
            match import.ty {
                TypeRef::Func(_) | TypeRef::FuncExact(_) => imported_funcs += 1,
                TypeRef::Tag(_) => {
                    return Err(RewriteError::new(format!(
                        "the module imports exception tag {}.{}, which hb_beamr cannot \
                         rewrite for AOT",
                        import.module, import.name
                    )))
                }
                _ => {}
            }
            if import.module == eh_abi::MODULE {
                return Err(RewriteError::new(format!(
                    "the module already imports from {}",
                    eh_abi::MODULE
                )));
            }
        }
    }
    let mut func_types = Vec::new();
    if let Some(reader) = s.functions.clone() {
        for ty in reader {
            func_types.push(ty?);
        }
    }
    let mut tags = Vec::new();
    if let Some(reader) = s.tags.clone() {
        for tag in reader {
            let tag = tag?;
            let ty = types.get(tag.func_type_idx as usize).cloned().flatten();
            let payload = match ty.as_ref().map(|t| (t.params(), t.results())) {
                Some(([], [])) => TagPayload::Nothing,
                Some(([wasmparser::ValType::I32], [])) => TagPayload::I32,
                Some(([wasmparser::ValType::I64], [])) => TagPayload::I64,
                _ => {
                    return Err(RewriteError::new(format!(
                        "exception tag {} carries values other than one i32 or i64, which \
                         hb_beamr cannot rewrite for AOT",
                        tags.len()
                    )))
                }
            };
            tags.push(payload);
        }
    }
    let mut export_names = Vec::new();
    let mut table0_exported = false;
    if let Some(reader) = s.exports.clone() {
        for export in reader {
            let export = export?;
            table0_exported |= export.kind == ExternalKind::Table && export.index == 0;
            if export.kind == ExternalKind::Tag {
                return Err(RewriteError::new(format!(
                    "the module exports exception tag {}, which hb_beamr cannot rewrite for AOT",
                    export.name
                )));
            }
            export_names.push(export.name.to_string());
        }
    }
    Ok(Facts {
        types,
        imported_funcs,
        func_types,
        tags,
        export_names,
        table0_exported,
    })
}

fn features_in() -> WasmFeatures {
    WasmFeatures::default() | WasmFeatures::LEGACY_EXCEPTIONS
}

fn features_out() -> WasmFeatures {
    features_in() - WasmFeatures::LEGACY_EXCEPTIONS - WasmFeatures::EXCEPTIONS
}

/// The rewritten module, or `None` when it uses no exception handling.
pub fn rewrite(wasm: &[u8]) -> Result<Option<Vec<u8>>, RewriteError> {
    Validator::new_with_features(features_in()).validate_all(wasm)?;
    let sections = read_sections(wasm)?;
    let facts = facts(&sections)?;
    let scans = sections
        .bodies
        .iter()
        .map(scan::scan_body)
        .collect::<Result<Vec<FuncScan>, _>>()?;
    if sections.tags.is_none() && !scans.iter().any(|s| s.uses_eh) {
        return Ok(None);
    }
    let may_throw = scan::may_throw(&scans, facts.imported_funcs);
    let type_params: Vec<Option<usize>> = facts
        .types
        .iter()
        .map(|t| t.as_ref().map(|f| f.params().len()))
        .collect();
    let ctx = BodyCtx {
        tags: &facts.tags,
        may_throw: &may_throw,
        imported: facts.imported_funcs,
        type_params: &type_params,
    };
    let mut hosts = Hosts::new(facts.imported_funcs);
    // A first run finds the host imports (and so the index shift) ...
    let mut plan_shift = Shift {
        imported: facts.imported_funcs,
        added: 0,
    };
    for (i, body) in sections.bodies.iter().enumerate() {
        if scans[i].uses_eh {
            let params = param_count(&facts, i)?;
            body::rewrite_body(&ctx, body, &scans[i], params, &mut hosts, &mut plan_shift)?;
        }
    }
    // ... the second writes the code with it.
    let mut shift = Shift {
        imported: facts.imported_funcs,
        added: hosts.needs().len() as u32,
    };
    let mut code = CodeSection::new();
    for (i, body) in sections.bodies.iter().enumerate() {
        let params = param_count(&facts, i)?;
        let f = body::rewrite_body(&ctx, body, &scans[i], params, &mut hosts, &mut shift)?;
        code.function(&f);
    }
    let out = assemble(&sections, &facts, &hosts, &mut shift, &code)?;
    Validator::new_with_features(features_out())
        .validate_all(&out)
        .map_err(|e| {
            RewriteError::new(format!("internal: the rewritten module is invalid: {e}"))
        })?;
    Ok(Some(out))
}

fn param_count(facts: &Facts, defined: usize) -> Result<u32, RewriteError> {
    facts
        .func_types
        .get(defined)
        .and_then(|t| facts.types.get(*t as usize))
        .and_then(|t| t.as_ref())
        .map(|t| t.params().len() as u32)
        .ok_or_else(|| RewriteError::new("invalid module: function type"))
}

/// The export name a `call:` import calls for original function `func`.
fn export_name(func: u32) -> String {
    format!("{}f{func}", eh_abi::EXPORT_PREFIX)
}

fn val_types(
    shift: &mut Shift,
    types: &[wasmparser::ValType],
) -> Result<Vec<ValType>, RewriteError> {
    types
        .iter()
        .map(|t| shift.val_type(*t).map_err(RewriteError::from))
        .collect()
}

/// A host import: name, params, results.
type HostSignature = (String, Vec<ValType>, Vec<ValType>);

/// The host imports, in order.
fn host_signatures(
    facts: &Facts,
    hosts: &Hosts,
    shift: &mut Shift,
) -> Result<Vec<HostSignature>, RewriteError> {
    let func_type = |index: u32| -> Result<&FuncType, RewriteError> {
        facts
            .types
            .get(index as usize)
            .and_then(|t| t.as_ref())
            .ok_or_else(|| RewriteError::new("invalid module: type index"))
    };
    let mut out = Vec::new();
    for need in hosts.needs() {
        let entry = match *need {
            HostNeed::Throw => (
                eh_abi::THROW.to_string(),
                vec![ValType::I64, ValType::I32],
                vec![],
            ),
            HostNeed::Caught => (eh_abi::CAUGHT.to_string(), vec![], vec![ValType::I32]),
            HostNeed::Payload => (eh_abi::PAYLOAD.to_string(), vec![], vec![ValType::I64]),
            HostNeed::CallIndirect(ty) => {
                let t = func_type(ty)?;
                let mut params = val_types(shift, t.params())?;
                params.push(ValType::I32);
                (
                    format!("{}{ty}", eh_abi::CALL_INDIRECT_PREFIX),
                    params,
                    val_types(shift, t.results())?,
                )
            }
            HostNeed::CallExport(func) => {
                let defined = func - facts.imported_funcs;
                let ty = *facts
                    .func_types
                    .get(defined as usize)
                    .ok_or_else(|| RewriteError::new("invalid module: function index"))?;
                let t = func_type(ty)?;
                (
                    format!("{}{}", eh_abi::CALL_EXPORT_PREFIX, export_name(func)),
                    val_types(shift, t.params())?,
                    val_types(shift, t.results())?,
                )
            }
        };
        if entry.2.len() > 1 {
            return Err(RewriteError::new(
                "a call that may throw, inside a try, returns several values; \
                 hb_beamr's host calls return at most one",
            ));
        }
        out.push(entry);
    }
    Ok(out)
}

fn assemble(
    s: &Sections,
    facts: &Facts,
    hosts: &Hosts,
    shift: &mut Shift,
    code: &CodeSection,
) -> Result<Vec<u8>, RewriteError> {
    let mut module = wasm_encoder::Module::new();
    for custom in &s.leading_custom {
        module.section(&shift.custom_section(custom.clone())?);
    }
    let mut types = TypeSection::new();
    if let Some(reader) = s.types.clone() {
        shift.parse_type_section(&mut types, reader)?;
    }
    let signatures = host_signatures(facts, hosts, shift)?;
    let base_type = facts.types.len() as u32;
    for (_, params, results) in &signatures {
        types.ty().function(params.clone(), results.clone());
    }
    module.section(&types);

    let mut imports = ImportSection::new();
    if let Some(reader) = s.imports.clone() {
        shift.parse_import_section(&mut imports, reader)?;
    }
    for (i, (name, _, _)) in signatures.iter().enumerate() {
        imports.import(
            eh_abi::MODULE,
            name,
            EntityType::Function(base_type + i as u32),
        );
    }
    if !imports.is_empty() {
        module.section(&imports);
    }
    copy_section(
        &mut module,
        &s.functions,
        FunctionSection::new(),
        |section, reader| shift.parse_function_section(section, reader),
    )?;
    copy_section(
        &mut module,
        &s.tables,
        TableSection::new(),
        |section, reader| shift.parse_table_section(section, reader),
    )?;
    copy_section(
        &mut module,
        &s.memories,
        MemorySection::new(),
        |section, reader| shift.parse_memory_section(section, reader),
    )?;
    copy_section(
        &mut module,
        &s.globals,
        GlobalSection::new(),
        |section, reader| shift.parse_global_section(section, reader),
    )?;
    let mut exports = ExportSection::new();
    if let Some(reader) = s.exports.clone() {
        shift.parse_export_section(&mut exports, reader)?;
    }
    let mut table_needed = !facts.table0_exported;
    for need in hosts.needs() {
        let (name, kind, index) = match need {
            HostNeed::CallExport(func) => (
                export_name(*func),
                ExportKind::Func,
                shift.function_index(*func)?,
            ),
            HostNeed::CallIndirect(_) if table_needed => {
                table_needed = false;
                (
                    format!("{}table", eh_abi::EXPORT_PREFIX),
                    ExportKind::Table,
                    0,
                )
            }
            _ => continue,
        };
        if facts.export_names.contains(&name) {
            return Err(RewriteError::new(format!(
                "the module already exports {name}"
            )));
        }
        exports.export(&name, kind, index);
    }
    if !exports.is_empty() {
        module.section(&exports);
    }
    if let Some(func) = s.start {
        module.section(&StartSection {
            function_index: shift.function_index(func)?,
        });
    }
    copy_section(
        &mut module,
        &s.elements,
        ElementSection::new(),
        |section, reader| shift.parse_element_section(section, reader),
    )?;
    if let Some(count) = s.data_count {
        module.section(&DataCountSection { count });
    }
    if !s.bodies.is_empty() {
        module.section(code);
    }
    copy_section(
        &mut module,
        &s.data,
        DataSection::new(),
        |section, reader| shift.parse_data_section(section, reader),
    )?;
    for custom in &s.custom {
        match custom.as_known() {
            KnownCustom::Name(reader) => module.section(&names(shift, reader)?),
            _ => module.section(&CustomSection {
                name: custom.name().into(),
                data: custom.data().into(),
            }),
        };
    }
    Ok(module.finish())
}

/// Re-encodes a section of the input (if it has one) into `module`.
fn copy_section<R: Clone, S: Section>(
    module: &mut wasm_encoder::Module,
    reader: &Option<R>,
    mut section: S,
    parse: impl FnOnce(&mut S, R) -> Result<(), ReencodeError<Infallible>>,
) -> Result<(), RewriteError> {
    if let Some(reader) = reader.clone() {
        parse(&mut section, reader)?;
        module.section(&section);
    }
    Ok(())
}

/// The name section with function indices shifted; tag and label names
/// (which no longer apply) dropped.
fn names(
    shift: &mut Shift,
    reader: wasmparser::NameSectionReader,
) -> Result<NameSection, RewriteError> {
    let mut names = NameSection::new();
    for subsection in reader {
        match subsection? {
            Name::Tag(_) | Name::TagParameter(_) | Name::Label(_) => {}
            other => shift.parse_custom_name_subsection(&mut names, other)?,
        }
    }
    Ok(names)
}
