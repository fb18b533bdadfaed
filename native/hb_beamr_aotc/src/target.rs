//! What code is compiled for: one [`Target`], resolved once from the
//! user's [`Cpu`] choice, is both what LLVM is given and what the file's
//! tag records, so the start-time gate checks exactly what the code may
//! use.

use std::fmt;

use hb_beamr_core::aot_tag::TargetTag;

use crate::llvm;

/// Which CPU to generate code for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cpu {
    /// The machine compiling: its CPU name *and* the features it really
    /// has (a VM may hide features its CPU's name implies).
    Host,
    /// The baseline of the architecture: runs on any CPU of it.
    Generic,
    /// An LLVM CPU name of the host architecture (`skylake`, `znver3`, ...).
    Named(String),
}

impl Cpu {
    /// A named CPU, if LLVM knows the name for this architecture.
    pub fn named(name: &str) -> Option<Cpu> {
        let plausible = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        (plausible && llvm::cpu_is_valid(name)).then(|| Cpu::Named(name.to_string()))
    }

    /// `host`, `generic` or a CPU name.
    pub fn parse(text: &str) -> Option<Cpu> {
        match text {
            "host" => Some(Cpu::Host),
            "generic" => Some(Cpu::Generic),
            name => Cpu::named(name),
        }
    }
}

/// The (architecture, CPU, feature string) given to LLVM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub arch: String,
    pub cpu: String,
    pub features: String,
}

impl Target {
    /// Resolves `cpu` on this machine. For `Host` the features are LLVM's
    /// reading of this CPU (what `-march=native` uses); for a name they are
    /// the ones LLVM gives that name, spelled out so the tag can list them.
    pub fn resolve(cpu: &Cpu) -> Result<Target, TargetError> {
        let arch = std::env::consts::ARCH.to_string();
        let (cpu, features) = match cpu {
            Cpu::Host => llvm::host_cpu().ok_or(TargetError::HostUnreadable)?,
            Cpu::Generic => {
                let name = generic_cpu(&arch);
                (name.to_string(), named_features(name)?)
            }
            Cpu::Named(name) => (name.clone(), named_features(name)?),
        };
        Ok(Target {
            arch,
            cpu,
            features,
        })
    }

    /// The tag recording this target.
    pub fn tag(&self) -> TargetTag {
        TargetTag::new(&self.arch, &self.cpu, &self.features)
    }
}

/// Why a [`Cpu`] did not resolve to a [`Target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// LLVM could not read the CPU of the machine compiling.
    HostUnreadable,
    /// LLVM gives no features for this CPU name.
    UnknownCpu(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::HostUnreadable => f.write_str("LLVM cannot read this machine's CPU"),
            TargetError::UnknownCpu(name) => write!(f, "LLVM does not know the CPU {name:?}"),
        }
    }
}

impl std::error::Error for TargetError {}

/// LLVM's baseline CPU of an architecture.
fn generic_cpu(arch: &str) -> &'static str {
    match arch {
        "x86_64" => "x86-64",
        _ => "generic",
    }
}

fn named_features(name: &str) -> Result<String, TargetError> {
    llvm::cpu_features(name).ok_or_else(|| TargetError::UnknownCpu(name.to_string()))
}
