//! hb_beamr's AOT compiler, without the BEAM: WebAssembly bytes to a WAMR
//! AOT file that says what it needs of the CPU.
//!
//! The types, in the order a compile uses them:
//! - [`Cpu`]: the user's choice (`host`, `generic`, a CPU name);
//! - [`Target`]: that choice resolved on this machine to the (CPU, feature
//!   string) pair LLVM is given, the only source of truth for both the
//!   code and the tag (`hb_beamr_core::aot_tag`);
//! - [`Options`] and [`compile`]: the rewrites (exception handling, NaNs),
//!   WAMR's compiler, then the tag and marks; [`Compiled`] also carries what
//!   LLVM's target machine reports, for tests.
//!
//! Used by the compiler NIF (`hb_beamr_compiler`) and by the
//! `hb_beamr_aotc` command (`scripts/cpu-check.sh` runs it under an
//! emulated CPU). Modules: `llvm` (the C shim) ← `target` ← `compile`.

mod compile;
mod llvm;
mod target;

pub use compile::{compile, CompileError, Compiled, Options};
pub use target::{Cpu, Target, TargetError};

#[cfg(test)]
mod tests {
    use super::*;
    use hb_beamr_core::aot_tag;

    /// `(func (export "f") (param f64) (result f64) (select ...))`: the
    /// smallest module that got AVX-512 code on a VM whose CPU name implied
    /// AVX-512 and whose CPU had none.
    const SELECT_F64: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x06, 0x01, 0x60, 0x01, 0x7c, 0x01, 0x7c, // type (f64) -> f64
        0x03, 0x02, 0x01, 0x00, // func 0: type 0
        0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, // export "f"
        0x0a, 0x15, 0x01, 0x13, 0x00, // code: 1 body, no locals
        0x20, 0x00, // local.get 0
        0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // f64.const 1
        0x20, 0x00, 0x20, 0x00, 0x61, // f64.eq (local 0) (local 0)
        0x1b, 0x0b, // select, end
    ];

    fn compile_for(cpu: Cpu) -> Compiled {
        let options = Options {
            cpu,
            ..Options::default()
        };
        match compile(SELECT_F64, &options) {
            Ok(compiled) => compiled,
            Err(why) => panic!("{why}"),
        }
    }

    #[test]
    fn llvm_gets_exactly_the_target_the_tag_records() {
        for cpu in [Cpu::Host, Cpu::Generic, Cpu::Named("haswell".into())] {
            let compiled = compile_for(cpu.clone());
            let tag = aot_tag::find(&compiled.aot);
            assert_eq!(tag, Some(compiled.target.tag()), "{cpu:?}");
            let (llvm_cpu, llvm_features) = &compiled.llvm_target;
            assert_eq!(llvm_cpu, &compiled.target.cpu, "{cpu:?}");
            assert_eq!(llvm_features, &compiled.target.features, "{cpu:?}");
            assert!(
                !llvm_features.is_empty(),
                "{cpu:?}: features left to the name"
            );
        }
    }

    #[test]
    fn host_code_passes_the_start_time_gate_here() {
        let tag = aot_tag::find(&compile_for(Cpu::Host).aot);
        assert_eq!(tag.as_ref().and_then(aot_tag::incompatibility), None);
    }

    #[test]
    fn the_host_target_is_llvms_reading_of_this_cpu() {
        let target = Target::resolve(&Cpu::Host).unwrap_or_else(|why| panic!("{why}"));
        let (name, features) = llvm::host_cpu().unwrap_or_default();
        assert_eq!((target.cpu, target.features), (name, features));
    }

    /// The runtime reads the CPU without LLVM: on this machine it must find
    /// every feature LLVM finds (else host-compiled files are refused), and
    /// more only where LLVM 19's reading leaves a feature out.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_runtime_reads_the_cpu_as_llvm_does() {
        let (_, features) = llvm::host_cpu().unwrap_or_default();
        let by_llvm = aot_tag::TargetTag::enabled_features(&features);
        let by_runtime = hb_beamr_core::cpu_features::present();
        for feature in &by_llvm {
            assert!(by_runtime.contains(&feature.as_str()), "{feature}");
        }
        let left_out_by_llvm = ["avx10.1-512", "sse-unaligned-mem", "nf", "zu"];
        for feature in by_runtime {
            assert!(
                by_llvm.iter().any(|f| f == feature) || left_out_by_llvm.contains(&feature),
                "{feature}"
            );
        }
    }

    #[test]
    fn every_feature_a_named_cpu_implies_is_classified() {
        use hb_beamr_core::cpu_features::{check, Feature};
        for name in [
            "x86-64",
            "haswell",
            "skylake-avx512",
            "znver4",
            "sapphirerapids",
        ] {
            let Some(Cpu::Named(name)) = Cpu::named(name) else {
                continue;
            };
            let target =
                Target::resolve(&Cpu::Named(name.clone())).unwrap_or_else(|why| panic!("{why}"));
            for feature in target.tag().features() {
                assert_ne!(check(&feature), Feature::Unknown, "{name}: {feature}");
            }
        }
    }

    #[test]
    fn unknown_cpu_names_are_refused() {
        assert_eq!(Cpu::parse("no-such-cpu"), None);
        assert_eq!(Cpu::parse("i386"), None, "32-bit only: LLVM would abort");
        assert_eq!(Cpu::parse("bad name"), None);
        assert_eq!(Cpu::parse("host"), Some(Cpu::Host));
    }

    #[test]
    fn target_errors_keep_their_words() {
        assert_eq!(
            TargetError::UnknownCpu("no-such-cpu".into()).to_string(),
            "LLVM does not know the CPU \"no-such-cpu\""
        );
        assert_eq!(
            TargetError::HostUnreadable.to_string(),
            "LLVM cannot read this machine's CPU"
        );
        let failed: CompileError = TargetError::HostUnreadable.into();
        assert_eq!(
            failed,
            CompileError::Failed("LLVM cannot read this machine's CPU".into())
        );
    }

    #[test]
    fn not_wasm_is_an_error() {
        let err = compile(b"nope", &Options::default()).err();
        assert!(matches!(err, Some(CompileError::InvalidWasm(_))), "{err:?}");
    }
}
