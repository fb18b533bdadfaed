//! The running CPU's features under LLVM's names, read from `cpuid` and
//! `xgetbv` the way LLVM 19's `sys::getHostCPUFeatures` reads them, so
//! that the runtime (which has no LLVM) judges an AOT file's target tag by
//! the same rules the compiler used to write it.
//!
//! A CPU's *name* is not evidence: cloud hypervisors hide features that
//! the name implies (an AMD `znver4` without AVX-512, seen in the field).
//! Only the bits read here count.
//!
//! Every LLVM x86 feature name falls in one of the [`Feature`] classes; a
//! name this module does not know is [`Feature::Unknown`], and a tag that
//! needs one is refused rather than trusted.

/// What the running CPU says of one LLVM feature name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// The CPU (and the OS, for register state) supports it.
    Present,
    /// The CPU or the OS does not: code that uses it dies of SIGILL.
    Absent,
    /// A tuning, hardening or mode flag: it changes which instructions the
    /// compiler prefers, never which ones the CPU must have.
    NoInstructions,
    /// A name this runtime cannot check.
    Unknown,
}

/// LLVM's x86 subtarget features that select no instruction of their own
/// (LLVM 19's `X86.td`: tuning, security hardening, and modes), plus the
/// x86-64 baseline that every 64-bit CPU has.
#[cfg(target_arch = "x86_64")]
const NO_INSTRUCTIONS: &[&str] = &[
    "16bit-mode",
    "32bit-mode",
    "64bit-mode",
    "allow-light-256-bit",
    "branch-hint",
    "branchfusion",
    "ermsb",
    "false-deps-getmant",
    "false-deps-lzcnt-tzcnt",
    "false-deps-mulc",
    "false-deps-mullq",
    "false-deps-perm",
    "false-deps-popcnt",
    "false-deps-range",
    "fast-11bytenop",
    "fast-15bytenop",
    "fast-7bytenop",
    "fast-bextr",
    "fast-dpwssd",
    "fast-gather",
    "fast-hops",
    "fast-imm16",
    "fast-lzcnt",
    "fast-movbe",
    "fast-scalar-fsqrt",
    "fast-scalar-shift-masks",
    "fast-shld-rotate",
    "fast-variable-crosslane-shuffle",
    "fast-variable-perlane-shuffle",
    "fast-vector-fsqrt",
    "fast-vector-shift-masks",
    "faster-shift-than-shuffle",
    "fsrm",
    "harden-sls-ijmp",
    "harden-sls-ret",
    "idivl-to-divb",
    "idivq-to-divl",
    "inline-asm-use-gpr32",
    "lea-sp",
    "lea-uses-ag",
    "lvi-cfi",
    "lvi-load-hardening",
    "macrofusion",
    "no-bypass-delay",
    "no-bypass-delay-blend",
    "no-bypass-delay-mov",
    "no-bypass-delay-shuffle",
    "pad-short-functions",
    "prefer-128-bit",
    "prefer-256-bit",
    "prefer-mask-registers",
    "prefer-movmsk-over-vtest",
    "prefer-no-gather",
    "prefer-no-scatter",
    "retpoline",
    "retpoline-external-thunk",
    "retpoline-indirect-branches",
    "retpoline-indirect-calls",
    "sbb-dep-breaking",
    "seses",
    "slow-3ops-lea",
    "slow-incdec",
    "slow-lea",
    "slow-pmaddwd",
    "slow-pmulld",
    "slow-shld",
    "slow-two-mem-ops",
    "slow-unaligned-mem-16",
    "slow-unaligned-mem-32",
    "soft-float",
    "tagged-globals",
    "tuning-fast-imm-vector-shift",
    "use-glm-div-sqrt-costs",
    "use-slm-arith-costs",
    "vzeroupper",
    // Baseline of every x86-64 CPU.
    "x87",
    "nopl",
];

/// Where a feature's bit is: `(name, leaf, subleaf, register, bit, state)`.
/// `state` is the register state the OS must save for it to be usable.
#[cfg(target_arch = "x86_64")]
type Bit = (&'static str, u32, u32, Reg, u32, State);

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Reg {
    Ebx,
    Ecx,
    Edx,
    Eax,
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq)]
enum State {
    /// General-purpose and x87/SSE state: always saved.
    None,
    /// YMM state (XCR0 bits 1-2).
    Avx,
    /// ZMM and opmask state (XCR0 bits 5-7).
    Avx512,
    /// AMX tile state (XCR0 bits 17-18).
    Amx,
}

#[cfg(target_arch = "x86_64")]
const EXT1: u32 = 0x8000_0001;
#[cfg(target_arch = "x86_64")]
const EXT8: u32 = 0x8000_0008;

/// The cpuid bits behind LLVM's host features (cpuid leaves as documented
/// by Intel and AMD; the same bits and register-state rules as LLVM 19).
#[cfg(target_arch = "x86_64")]
const BITS: &[Bit] = {
    use Reg::*;
    use State::{Amx, Avx, Avx512, None as Gpr};
    &[
        ("cx8", 1, 0, Edx, 8, Gpr),
        ("cmov", 1, 0, Edx, 15, Gpr),
        ("mmx", 1, 0, Edx, 23, Gpr),
        ("fxsr", 1, 0, Edx, 24, Gpr),
        ("sse", 1, 0, Edx, 25, Gpr),
        ("sse2", 1, 0, Edx, 26, Gpr),
        ("sse3", 1, 0, Ecx, 0, Gpr),
        ("pclmul", 1, 0, Ecx, 1, Gpr),
        ("ssse3", 1, 0, Ecx, 9, Gpr),
        ("fma", 1, 0, Ecx, 12, Avx),
        ("cx16", 1, 0, Ecx, 13, Gpr),
        ("sse4.1", 1, 0, Ecx, 19, Gpr),
        ("sse4.2", 1, 0, Ecx, 20, Gpr),
        ("crc32", 1, 0, Ecx, 20, Gpr),
        ("movbe", 1, 0, Ecx, 22, Gpr),
        ("popcnt", 1, 0, Ecx, 23, Gpr),
        ("aes", 1, 0, Ecx, 25, Gpr),
        ("xsave", 1, 0, Ecx, 26, Avx),
        ("avx", 1, 0, Ecx, 28, Avx),
        ("f16c", 1, 0, Ecx, 29, Avx),
        ("rdrnd", 1, 0, Ecx, 30, Gpr),
        ("sahf", EXT1, 0, Ecx, 0, Gpr),
        ("lzcnt", EXT1, 0, Ecx, 5, Gpr),
        ("sse4a", EXT1, 0, Ecx, 6, Gpr),
        // AMD's misaligned SSE mode: LLVM folds unaligned loads into SSE
        // operands, which fault elsewhere.
        ("sse-unaligned-mem", EXT1, 0, Ecx, 7, Gpr),
        ("prfchw", EXT1, 0, Ecx, 8, Gpr),
        ("xop", EXT1, 0, Ecx, 11, Avx),
        ("lwp", EXT1, 0, Ecx, 15, Gpr),
        ("fma4", EXT1, 0, Ecx, 16, Avx),
        ("tbm", EXT1, 0, Ecx, 21, Gpr),
        ("mwaitx", EXT1, 0, Ecx, 29, Gpr),
        ("64bit", EXT1, 0, Edx, 29, Gpr),
        ("clzero", EXT8, 0, Ebx, 0, Gpr),
        ("rdpru", EXT8, 0, Ebx, 4, Gpr),
        ("wbnoinvd", EXT8, 0, Ebx, 9, Gpr),
        ("fsgsbase", 7, 0, Ebx, 0, Gpr),
        ("sgx", 7, 0, Ebx, 2, Gpr),
        ("bmi", 7, 0, Ebx, 3, Gpr),
        ("avx2", 7, 0, Ebx, 5, Avx),
        ("bmi2", 7, 0, Ebx, 8, Gpr),
        ("invpcid", 7, 0, Ebx, 10, Gpr),
        ("rtm", 7, 0, Ebx, 11, Gpr),
        ("avx512f", 7, 0, Ebx, 16, Avx512),
        ("evex512", 7, 0, Ebx, 16, Avx512),
        ("avx512dq", 7, 0, Ebx, 17, Avx512),
        ("rdseed", 7, 0, Ebx, 18, Gpr),
        ("adx", 7, 0, Ebx, 19, Gpr),
        ("avx512ifma", 7, 0, Ebx, 21, Avx512),
        ("clflushopt", 7, 0, Ebx, 23, Gpr),
        ("clwb", 7, 0, Ebx, 24, Gpr),
        ("avx512cd", 7, 0, Ebx, 28, Avx512),
        ("sha", 7, 0, Ebx, 29, Gpr),
        ("avx512bw", 7, 0, Ebx, 30, Avx512),
        ("avx512vl", 7, 0, Ebx, 31, Avx512),
        ("avx512vbmi", 7, 0, Ecx, 1, Avx512),
        ("pku", 7, 0, Ecx, 4, Gpr),
        ("waitpkg", 7, 0, Ecx, 5, Gpr),
        ("avx512vbmi2", 7, 0, Ecx, 6, Avx512),
        ("shstk", 7, 0, Ecx, 7, Gpr),
        ("gfni", 7, 0, Ecx, 8, Gpr),
        ("vaes", 7, 0, Ecx, 9, Avx),
        ("vpclmulqdq", 7, 0, Ecx, 10, Avx),
        ("avx512vnni", 7, 0, Ecx, 11, Avx512),
        ("avx512bitalg", 7, 0, Ecx, 12, Avx512),
        ("avx512vpopcntdq", 7, 0, Ecx, 14, Avx512),
        ("rdpid", 7, 0, Ecx, 22, Gpr),
        ("kl", 7, 0, Ecx, 23, Gpr),
        ("cldemote", 7, 0, Ecx, 25, Gpr),
        ("movdiri", 7, 0, Ecx, 27, Gpr),
        ("movdir64b", 7, 0, Ecx, 28, Gpr),
        ("enqcmd", 7, 0, Ecx, 29, Gpr),
        ("uintr", 7, 0, Edx, 5, Gpr),
        ("avx512vp2intersect", 7, 0, Edx, 8, Avx512),
        ("serialize", 7, 0, Edx, 14, Gpr),
        ("tsxldtrk", 7, 0, Edx, 16, Gpr),
        ("pconfig", 7, 0, Edx, 18, Gpr),
        ("amx-bf16", 7, 0, Edx, 22, Amx),
        ("avx512fp16", 7, 0, Edx, 23, Avx512),
        ("amx-tile", 7, 0, Edx, 24, Amx),
        ("amx-int8", 7, 0, Edx, 25, Amx),
        ("sha512", 7, 1, Eax, 0, Gpr),
        ("sm3", 7, 1, Eax, 1, Gpr),
        ("sm4", 7, 1, Eax, 2, Gpr),
        ("raoint", 7, 1, Eax, 3, Gpr),
        ("avxvnni", 7, 1, Eax, 4, Avx),
        ("avx512bf16", 7, 1, Eax, 5, Avx512),
        ("cmpccxadd", 7, 1, Eax, 7, Gpr),
        ("amx-fp16", 7, 1, Eax, 21, Amx),
        ("hreset", 7, 1, Eax, 22, Gpr),
        ("avxifma", 7, 1, Eax, 23, Avx),
        ("avxvnniint8", 7, 1, Edx, 4, Avx),
        ("avxneconvert", 7, 1, Edx, 5, Avx),
        ("amx-complex", 7, 1, Edx, 8, Amx),
        ("avxvnniint16", 7, 1, Edx, 10, Avx),
        ("prefetchi", 7, 1, Edx, 14, Gpr),
        ("usermsr", 7, 1, Edx, 15, Gpr),
        ("avx10.1-256", 7, 1, Edx, 19, Gpr),
        // APX: one cpuid bit for all of its parts.
        ("egpr", 7, 1, Edx, 21, Gpr),
        ("push2pop2", 7, 1, Edx, 21, Gpr),
        ("ppx", 7, 1, Edx, 21, Gpr),
        ("ndd", 7, 1, Edx, 21, Gpr),
        ("ccmp", 7, 1, Edx, 21, Gpr),
        ("cf", 7, 1, Edx, 21, Gpr),
        ("nf", 7, 1, Edx, 21, Gpr),
        ("zu", 7, 1, Edx, 21, Gpr),
        ("xsaveopt", 0xd, 1, Eax, 0, Avx),
        ("xsavec", 0xd, 1, Eax, 1, Avx),
        ("xsaves", 0xd, 1, Eax, 3, Avx),
        ("ptwrite", 0x14, 0, Ebx, 4, Gpr),
        ("widekl", 0x19, 0, Ebx, 2, Gpr),
    ]
};

/// One snapshot of the CPU's answers.
#[cfg(target_arch = "x86_64")]
struct Cpuid {
    max_leaf: u32,
    max_ext_leaf: u32,
    max_leaf7_subleaf: u32,
    xcr0: u64,
    osxsave: bool,
}

#[cfg(target_arch = "x86_64")]
impl Cpuid {
    fn read() -> Cpuid {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        let leaf0 = __cpuid(0);
        let ext0 = __cpuid(0x8000_0000);
        let max_leaf7_subleaf = if leaf0.eax >= 7 {
            __cpuid_count(7, 0).eax
        } else {
            0
        };
        let leaf1 = __cpuid(1);
        let osxsave = (leaf1.ecx >> 27) & 1 == 1;
        let xcr0 = if osxsave { read_xcr0() } else { 0 };
        Cpuid {
            max_leaf: leaf0.eax,
            max_ext_leaf: ext0.eax,
            max_leaf7_subleaf,
            xcr0,
            osxsave,
        }
    }

    fn state_saved(&self, state: State) -> bool {
        let avx = self.osxsave && self.xcr0 & 0x6 == 0x6;
        match state {
            State::None => true,
            State::Avx => avx,
            State::Avx512 => avx && self.xcr0 & 0xe0 == 0xe0,
            State::Amx => self.osxsave && self.xcr0 & (0b11 << 17) == (0b11 << 17),
        }
    }

    fn has(&self, &(_, leaf, subleaf, reg, bit, state): &Bit) -> bool {
        let in_range = if leaf >= 0x8000_0000 {
            leaf <= self.max_ext_leaf
        } else {
            leaf <= self.max_leaf && (leaf != 7 || subleaf <= self.max_leaf7_subleaf)
        };
        if !in_range || !self.state_saved(state) {
            return false;
        }
        // A leaf the CPU reports as supported.
        let r = std::arch::x86_64::__cpuid_count(leaf, subleaf);
        let value = match reg {
            Reg::Eax => r.eax,
            Reg::Ebx => r.ebx,
            Reg::Ecx => r.ecx,
            Reg::Edx => r.edx,
        };
        (value >> bit) & 1 == 1
    }
}

#[cfg(target_arch = "x86_64")]
fn read_xcr0() -> u64 {
    let (eax, edx): (u32, u32);
    // SAFETY: only called when CPUID.1:ECX.OSXSAVE is set, which makes
    // xgetbv with ECX=0 valid; it reads a register and touches no memory.
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") eax, out("edx") edx,
                        options(nomem, nostack, preserves_flags));
    }
    (u64::from(edx) << 32) | u64::from(eax)
}

/// The features of the running CPU, by LLVM's names, in table order.
#[cfg(target_arch = "x86_64")]
pub fn present() -> Vec<&'static str> {
    let cpu = Cpuid::read();
    let mut out: Vec<&'static str> = BITS.iter().filter(|b| cpu.has(b)).map(|b| b.0).collect();
    // AVX10.1/512 also needs leaf 0x24's 512-bit bit.
    if out.contains(&"avx10.1-256") && cpu.max_leaf >= 0x24 && cpu.state_saved(State::Avx512) {
        let leaf24 = std::arch::x86_64::__cpuid_count(0x24, 0);
        if (leaf24.ebx >> 18) & 1 == 1 {
            out.push("avx10.1-512");
        }
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
pub fn present() -> Vec<&'static str> {
    Vec::new()
}

/// What the running CPU says of `name` (cached after the first call).
pub fn check(name: &str) -> Feature {
    static PRESENT: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let present = PRESENT.get_or_init(present);
    classify(name, present)
}

#[cfg(target_arch = "x86_64")]
fn classify(name: &str, present: &[&str]) -> Feature {
    if present.contains(&name) {
        Feature::Present
    } else if BITS.iter().any(|b| b.0 == name) || name == "avx10.1-512" {
        Feature::Absent
    } else if NO_INSTRUCTIONS.contains(&name) {
        Feature::NoInstructions
    } else {
        Feature::Unknown
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn classify(_name: &str, _present: &[&str]) -> Feature {
    // Only x86-64 is mapped; elsewhere the tag's arch check is the gate.
    Feature::NoInstructions
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_is_present() {
        for name in ["sse", "sse2", "cx8", "cmov", "fxsr", "mmx", "64bit"] {
            assert_eq!(check(name), Feature::Present, "{name}");
        }
    }

    #[test]
    fn every_name_has_one_class() {
        assert_eq!(check("x87"), Feature::NoInstructions);
        assert_eq!(check("slow-3ops-lea"), Feature::NoInstructions);
        assert_eq!(check("no-such-feature"), Feature::Unknown);
        for bit in BITS {
            assert!(
                !NO_INSTRUCTIONS.contains(&bit.0),
                "{} in both tables",
                bit.0
            );
            assert!(matches!(check(bit.0), Feature::Present | Feature::Absent));
        }
    }

    #[test]
    fn register_state_gates_vector_features() {
        let present = present();
        // AVX-512 without AVX, or AVX2 without AVX, would mean the OS state
        // check is skipped for one of them.
        if present.contains(&"avx512f") {
            assert!(present.contains(&"avx2") && present.contains(&"avx"));
        }
        if present.contains(&"avx2") {
            assert!(present.contains(&"avx"));
        }
        // No real CPU has both AMD's SSE4a and Intel's AMX.
        assert!(!(present.contains(&"sse4a") && present.contains(&"amx-tile")));
    }
}
