//! The target tag hb_beamr's compiler puts in the AOT files it makes: which
//! architecture, CPU and CPU features the code was compiled for. WAMR's AOT
//! format records the architecture but not the CPU, and code compiled for a
//! newer CPU than the one running it dies of an illegal instruction; the tag
//! lets `start(_, aot)` refuse such a file instead.
//!
//! The tag is a raw custom section (type 100, sub-type 0) appended to the
//! file; WAMR's loader skips raw custom sections, so a tagged file is still a
//! plain WAMR AOT file.

/// The custom section's name.
pub const SECTION_NAME: &str = "hb_beamr.target";

const AOT_HEADER_SIZE: usize = 8;
const AOT_SECTION_TYPE_CUSTOM: u32 = 100;
const AOT_CUSTOM_SECTION_RAW: u32 = 0;

/// What an AOT file was compiled for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetTag {
    pub arch: String,
    pub cpu: String,
    /// LLVM feature names the code may use (`avx2`, `bmi2`, ...).
    pub features: Vec<String>,
}

impl TargetTag {
    fn payload(&self) -> String {
        format!(
            "arch={}\ncpu={}\nfeatures={}\n",
            self.arch,
            self.cpu,
            self.features.join(",")
        )
    }

    fn parse(payload: &[u8]) -> Option<TargetTag> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut tag = TargetTag {
            arch: String::new(),
            cpu: String::new(),
            features: Vec::new(),
        };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("arch", v)) => tag.arch = v.to_string(),
                Some(("cpu", v)) => tag.cpu = v.to_string(),
                Some(("features", v)) => {
                    tag.features = v
                        .split(',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_string)
                        .collect()
                }
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

/// Why this machine cannot run code compiled for `tag`, if it cannot.
pub fn incompatibility(tag: &TargetTag) -> Option<String> {
    let arch = std::env::consts::ARCH;
    if tag.arch != arch {
        return Some(format!(
            "compiled for {} ({}), this machine is {arch}",
            tag.arch, tag.cpu
        ));
    }
    let missing: Vec<&str> = tag
        .features
        .iter()
        .map(String::as_str)
        .filter(|f| host_has_feature(f) == Some(false))
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "compiled for CPU {}, which has {} that this CPU lacks; recompile with \
             target_cpu => host or generic",
            tag.cpu,
            missing.join(", ")
        ))
    }
}

/// Whether the running CPU has an LLVM-named feature; `None` when it cannot
/// be told (a feature std does not detect).
#[cfg(target_arch = "x86_64")]
pub fn host_has_feature(llvm_name: &str) -> Option<bool> {
    use std::arch::is_x86_feature_detected as has;
    Some(match llvm_name {
        "sse2" => has!("sse2"),
        "sse3" => has!("sse3"),
        "ssse3" => has!("ssse3"),
        "sse4.1" => has!("sse4.1"),
        "sse4.2" => has!("sse4.2"),
        "sse4a" => has!("sse4a"),
        "avx" => has!("avx"),
        "avx2" => has!("avx2"),
        "fma" => has!("fma"),
        "f16c" => has!("f16c"),
        "bmi" => has!("bmi1"),
        "bmi2" => has!("bmi2"),
        "lzcnt" => has!("lzcnt"),
        "popcnt" => has!("popcnt"),
        "movbe" => has!("movbe"),
        "aes" => has!("aes"),
        "pclmul" => has!("pclmulqdq"),
        "sha" => has!("sha"),
        "adx" => has!("adx"),
        "rdrnd" => has!("rdrand"),
        "rdseed" => has!("rdseed"),
        "cx16" => has!("cmpxchg16b"),
        "fxsr" => has!("fxsr"),
        "xsave" => has!("xsave"),
        "xsaveopt" => has!("xsaveopt"),
        "xsavec" => has!("xsavec"),
        "xsaves" => has!("xsaves"),
        "tbm" => has!("tbm"),
        "gfni" => has!("gfni"),
        "vaes" => has!("vaes"),
        "vpclmulqdq" => has!("vpclmulqdq"),
        "avx512f" => has!("avx512f"),
        "avx512cd" => has!("avx512cd"),
        "avx512bw" => has!("avx512bw"),
        "avx512dq" => has!("avx512dq"),
        "avx512vl" => has!("avx512vl"),
        "avx512ifma" => has!("avx512ifma"),
        "avx512vbmi" => has!("avx512vbmi"),
        "avx512vbmi2" => has!("avx512vbmi2"),
        "avx512vnni" => has!("avx512vnni"),
        "avx512bitalg" => has!("avx512bitalg"),
        "avx512vpopcntdq" => has!("avx512vpopcntdq"),
        "avx512bf16" => has!("avx512bf16"),
        "avx512fp16" => has!("avx512fp16"),
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
pub fn host_has_feature(_llvm_name: &str) -> Option<bool> {
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
        TargetTag {
            arch: arch.into(),
            cpu: "somecpu".into(),
            features: features.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn appended_tag_is_found_again() {
        let mut aot = fake_aot();
        let t = tag("x86_64", &["sse2", "avx2"]);
        append(&mut aot, &t);
        assert_eq!(aot.len() % 4, 0);
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
    fn features_the_cpu_lacks_are_named() {
        // Every x86_64 CPU has SSE2; unknown names are not held against a file.
        assert_eq!(host_has_feature("sse2"), Some(true));
        assert_eq!(host_has_feature("no-such-feature"), None);
        assert_eq!(
            incompatibility(&tag("x86_64", &["sse2", "no-such-feature"])),
            None
        );
        if !std::arch::is_x86_feature_detected!("avx512fp16") {
            let why = incompatibility(&tag("x86_64", &["avx512fp16"])).unwrap_or_default();
            assert!(why.contains("avx512fp16"), "{why}");
        }
    }
}
