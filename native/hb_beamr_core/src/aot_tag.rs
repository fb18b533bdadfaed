//! The target tag hb_beamr's compiler puts in the AOT files it makes: which
//! architecture, CPU and CPU features the code was compiled for. WAMR's AOT
//! format records the architecture but not the CPU, and code compiled for a
//! newer CPU than the one running it dies of an illegal instruction; the tag
//! lets `start(_, aot)` refuse such a file instead.
//!
//! The tag is a raw custom section (type 100, sub-type 0) appended to the
//! file; WAMR's loader skips raw custom sections, so a tagged file is still a
//! plain WAMR AOT file.

use crate::cpu_features::{self, Feature};

/// The custom section's name.
pub const SECTION_NAME: &str = "hb_beamr.target";

const AOT_HEADER_SIZE: usize = 8;
const AOT_SECTION_TYPE_CUSTOM: u32 = 100;
const AOT_CUSTOM_SECTION_RAW: u32 = 0;

/// What an AOT file was compiled for: the exact (CPU, features) pair the
/// compiler handed LLVM, so that the runtime checks what the code may use,
/// not what a CPU name suggests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetTag {
    pub arch: String,
    /// The CPU name given to LLVM (`x86-64` for `generic`).
    pub cpu: String,
    /// The feature string given to LLVM, verbatim (`+avx2,-avx512f,...`).
    /// `None` in tags written before hb_beamr passed features to LLVM
    /// (then the code may use whatever the CPU name implies).
    pub llvm_features: Option<String>,
}

impl TargetTag {
    /// A tag for code compiled with exactly `cpu` and `llvm_features`.
    pub fn new(arch: &str, cpu: &str, llvm_features: &str) -> TargetTag {
        TargetTag {
            arch: arch.to_string(),
            cpu: cpu.to_string(),
            llvm_features: Some(llvm_features.to_string()),
        }
    }

    /// The features the code may use: the ones the string enables.
    pub fn features(&self) -> Vec<String> {
        self.llvm_features
            .as_deref()
            .map(Self::enabled_features)
            .unwrap_or_default()
    }

    fn payload(&self) -> String {
        // `features=` (the enabled names) is what older runtimes read.
        let mut text = format!(
            "arch={}\ncpu={}\nfeatures={}\n",
            self.arch,
            self.cpu,
            self.features().join(",")
        );
        if let Some(string) = &self.llvm_features {
            text.push_str(&format!("llvm_features={string}\n"));
        }
        text
    }

    fn parse(payload: &[u8]) -> Option<TargetTag> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut tag = TargetTag {
            arch: String::new(),
            cpu: String::new(),
            llvm_features: None,
        };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("arch", v)) => tag.arch = v.to_string(),
                Some(("cpu", v)) => tag.cpu = v.to_string(),
                Some(("llvm_features", v)) => tag.llvm_features = Some(v.to_string()),
                _ => {}
            }
        }
        (!tag.arch.is_empty()).then_some(tag)
    }

    /// Keeps the features LLVM reports as enabled (`+avx2` → `avx2`).
    pub fn enabled_features(llvm_features: &str) -> Vec<String> {
        llvm_features
            .split(',')
            .filter_map(|f| f.strip_prefix('+'))
            .map(str::to_string)
            .collect()
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends the tag to an AOT file, as its last section.
pub fn append(aot: &mut Vec<u8>, tag: &TargetTag) {
    append_raw(aot, SECTION_NAME, tag.payload().as_bytes());
}

/// Appends a raw custom section named `name` to an AOT file.
fn append_raw(aot: &mut Vec<u8>, name: &str, payload: &[u8]) {
    let mut body = Vec::new();
    body.extend_from_slice(&AOT_CUSTOM_SECTION_RAW.to_le_bytes());
    body.extend_from_slice(&(name.len() as u16).to_le_bytes());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    aot.resize(align4(aot.len()), 0);
    aot.extend_from_slice(&AOT_SECTION_TYPE_CUSTOM.to_le_bytes());
    aot.extend_from_slice(&(body.len() as u32).to_le_bytes());
    aot.extend_from_slice(&body);
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Finds the tag in an AOT file. `None` for untagged files.
pub fn find(aot: &[u8]) -> Option<TargetTag> {
    TargetTag::parse(find_raw(aot, SECTION_NAME)?)
}

/// The payload of the raw custom section named `name`, walking the
/// sections as WAMR's loader does (each section header 4-byte aligned).
fn find_raw<'a>(aot: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut at = AOT_HEADER_SIZE;
    while at < aot.len() {
        at = align4(at);
        let section_type = u32_at(aot, at)?;
        let size = u32_at(aot, at + 4)? as usize;
        let body_start = at + 8;
        let body = aot.get(body_start..body_start.checked_add(size)?)?;
        if section_type == AOT_SECTION_TYPE_CUSTOM
            && u32_at(body, 0) == Some(AOT_CUSTOM_SECTION_RAW)
        {
            let name_len = u16_at(body, 4)? as usize;
            if body.get(6..6 + name_len)? == name.as_bytes() {
                return body.get(6 + name_len..);
            }
        }
        at = body_start + size;
    }
    None
}

/// The section that marks an AOT file compiled from a module whose NaNs
/// were canonicalized (`compile(Wasm, #{deterministic => true})`).
pub const DETERMINISTIC_SECTION_NAME: &str = "hb_beamr.deterministic";
const DETERMINISTIC_PAYLOAD: &[u8] = b"nans=canonical\n";

/// Marks an AOT file as compiled with deterministic floats.
pub fn mark_deterministic(aot: &mut Vec<u8>) {
    append_raw(aot, DETERMINISTIC_SECTION_NAME, DETERMINISTIC_PAYLOAD);
}

/// Whether an AOT file was compiled with deterministic floats.
pub fn is_deterministic(aot: &[u8]) -> bool {
    find_raw(aot, DETERMINISTIC_SECTION_NAME) == Some(DETERMINISTIC_PAYLOAD)
}

/// Why an AOT file cannot be started with `deterministic => true`, if it
/// cannot: it was compiled without the NaN rewrite.
pub fn deterministic_refusal(aot: &[u8]) -> Option<String> {
    (!is_deterministic(aot)).then(|| {
        "compiled without deterministic floats: recompile with \
         hb_beamr:compile(Wasm, #{deterministic => true})"
            .to_string()
    })
}

/// The section that marks an AOT file compiled from a metered module
/// (`hb_beamr_meter`): its payload is the bytecode's `hb_beamr.meter`
/// section (WAMR's compiler does not keep custom sections).
pub const METER_SECTION_NAME: &str = "hb_beamr.meter";

/// Marks an AOT file as compiled from a metered module, with its
/// `hb_beamr.meter` section's contents.
pub fn mark_metered(aot: &mut Vec<u8>, meter_section: &[u8]) {
    append_raw(aot, METER_SECTION_NAME, meter_section);
}

/// The `hb_beamr.meter` section's contents of the module an AOT file was
/// compiled from, if it was metered.
pub fn meter_section(aot: &[u8]) -> Option<&[u8]> {
    find_raw(aot, METER_SECTION_NAME)
}

/// The section that names the bytecode an AOT file was compiled from: the
/// SHA-256 of the module given to `compile` (before any rewrite), so that a
/// snapshot of a bytecode instance restores into an AOT instance of it.
pub const SOURCE_SECTION_NAME: &str = "hb_beamr.source";

/// Records the fingerprint of the bytecode an AOT file was compiled from.
pub fn mark_source(aot: &mut Vec<u8>, fingerprint: &[u8; 32]) {
    append_raw(aot, SOURCE_SECTION_NAME, fingerprint);
}

/// The fingerprint of the bytecode an AOT file was compiled from, if it
/// says.
pub fn source_fingerprint(aot: &[u8]) -> Option<[u8; 32]> {
    find_raw(aot, SOURCE_SECTION_NAME)?.try_into().ok()
}

/// Why this machine cannot run code compiled for `tag`, if it cannot: the
/// start-time gate. A feature the CPU lacks, a feature this runtime cannot
/// check, or a tag from before features were recorded: each refuses the
/// file, because running it could kill the node with SIGILL.
pub fn incompatibility(tag: &TargetTag) -> Option<String> {
    let arch = std::env::consts::ARCH;
    if tag.arch != arch {
        return Some(format!(
            "compiled for {} ({}), this machine is {arch}",
            tag.arch, tag.cpu
        ));
    }
    if tag.llvm_features.is_none() && tag.cpu != "generic" {
        return Some(format!(
            "compiled for CPU {} by an older hb_beamr that did not record the CPU \
             features the code uses; recompile it with hb_beamr:compile/1,2",
            tag.cpu
        ));
    }
    let features = tag.features();
    let lacking = |class: Feature| -> Vec<&str> {
        features
            .iter()
            .map(String::as_str)
            .filter(|f| cpu_features::check(f) == class)
            .collect()
    };
    let missing = lacking(Feature::Absent);
    if !missing.is_empty() {
        return Some(format!(
            "compiled for CPU {} with {}, which this CPU lacks; recompile with \
             target_cpu => host or generic",
            tag.cpu,
            missing.join(", ")
        ));
    }
    let unknown = lacking(Feature::Unknown);
    if !unknown.is_empty() {
        return Some(format!(
            "compiled for CPU {} with {}, which this runtime cannot check on this CPU; \
             recompile with target_cpu => host or generic",
            tag.cpu,
            unknown.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_aot() -> Vec<u8> {
        // header, then a target-info-like section of 5 bytes (forces padding)
        let mut aot = b"\0aot\x05\0\0\0".to_vec();
        aot.extend_from_slice(&0u32.to_le_bytes());
        aot.extend_from_slice(&5u32.to_le_bytes());
        aot.extend_from_slice(b"abcde");
        aot
    }

    fn tag(arch: &str, features: &[&str]) -> TargetTag {
        let string: Vec<String> = features.iter().map(|f| format!("+{f}")).collect();
        TargetTag::new(arch, "somecpu", &string.join(","))
    }

    #[test]
    fn appended_tag_is_found_again() {
        let mut aot = fake_aot();
        let t = tag("x86_64", &["sse2", "avx2"]);
        append(&mut aot, &t);
        assert_eq!(find(&aot), Some(t));
    }

    #[test]
    fn untagged_and_truncated_files_have_no_tag() {
        let aot = fake_aot();
        assert_eq!(find(&aot), None);
        let mut tagged = fake_aot();
        append(&mut tagged, &tag("x86_64", &[]));
        assert_eq!(find(&tagged[..tagged.len() - 3]), None);
        assert_eq!(find(b"\0aot"), None);
    }

    #[test]
    fn the_source_fingerprint_is_found_next_to_the_tag() {
        let mut aot = fake_aot();
        assert_eq!(source_fingerprint(&aot), None);
        append(&mut aot, &tag("x86_64", &["sse2"]));
        mark_source(&mut aot, &[9; 32]);
        assert_eq!(source_fingerprint(&aot), Some([9; 32]));
        assert_eq!(find(&aot), Some(tag("x86_64", &["sse2"])));
        assert_eq!(source_fingerprint(&aot[..aot.len() - 1]), None);
    }

    #[test]
    fn the_deterministic_mark_is_found_next_to_the_tag() {
        let mut aot = fake_aot();
        assert!(!is_deterministic(&aot));
        assert!(deterministic_refusal(&aot).is_some());
        append(&mut aot, &tag("x86_64", &["sse2"]));
        assert!(!is_deterministic(&aot));
        mark_deterministic(&mut aot);
        assert!(is_deterministic(&aot));
        assert_eq!(deterministic_refusal(&aot), None);
        assert_eq!(find(&aot), Some(tag("x86_64", &["sse2"])));
        // A truncated mark is no mark.
        assert!(!is_deterministic(&aot[..aot.len() - 1]));
    }

    #[test]
    fn enabled_features_keeps_the_plus_ones() {
        assert_eq!(
            TargetTag::enabled_features("+sse2,-avx512f,+avx2,+cx16"),
            vec!["sse2", "avx2", "cx16"]
        );
    }

    #[test]
    fn another_architecture_is_incompatible() {
        let other = if std::env::consts::ARCH == "x86_64" {
            "aarch64"
        } else {
            "x86_64"
        };
        assert!(incompatibility(&tag(other, &[])).is_some());
        assert_eq!(incompatibility(&tag(std::env::consts::ARCH, &[])), None);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn features_the_cpu_lacks_or_cannot_check_are_refused() {
        // Every x86_64 CPU has SSE2; tuning flags need no instruction.
        assert_eq!(
            incompatibility(&tag("x86_64", &["sse2", "slow-3ops-lea"])),
            None
        );
        let why = incompatibility(&tag("x86_64", &["sse2", "no-such-feature"])).unwrap_or_default();
        assert!(
            why.contains("no-such-feature") && why.contains("cannot check"),
            "{why}"
        );
        // No CPU has AMD's XOP and FMA4 (Bulldozer only) and Intel's AMX.
        let why = incompatibility(&tag("x86_64", &["xop", "fma4", "amx-tile", "amx-int8"]))
            .unwrap_or_default();
        assert!(why.contains("lacks"), "{why}");
    }

    #[test]
    fn disabled_features_are_not_required() {
        let t = TargetTag::new("x86_64", "znver4", "+sse2,-avx512f,-no-such-feature");
        assert_eq!(t.features(), vec!["sse2"]);
        assert_eq!(incompatibility(&t), None);
    }

    #[test]
    fn tags_without_the_feature_string_are_refused_unless_generic() {
        let mut aot = fake_aot();
        // The payload older compilers wrote.
        append_raw(
            &mut aot,
            SECTION_NAME,
            b"arch=x86_64\ncpu=znver4\nfeatures=sse2\n",
        );
        let old = find(&aot).unwrap_or_else(|| tag("none", &[]));
        assert_eq!(old.llvm_features, None);
        let why = incompatibility(&old).unwrap_or_default();
        assert!(why.contains("older hb_beamr"), "{why}");
        let mut generic = fake_aot();
        append_raw(
            &mut generic,
            SECTION_NAME,
            b"arch=x86_64\ncpu=generic\nfeatures=\n",
        );
        let old_generic = find(&generic).unwrap_or_else(|| tag("none", &[]));
        assert_eq!(incompatibility(&old_generic), None);
    }
}
