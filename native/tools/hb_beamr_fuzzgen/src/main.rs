//! `hb_beamr_fuzzgen OUT_DIR COUNT SEED [SEED_FILES...]` writes COUNT
//! modules into OUT_DIR, deterministic for a seed:
//! - `smith-N.wasm`: valid modules from wasm-smith, with the proposals
//!   hb_beamr's runtime supports, loops bounded by fuel (so AOT code ends);
//! - `smithloop-N.wasm`: the same without fuel and without start functions
//!   (loops may never end: the stress run interrupts calls with timeouts);
//! - `random-N.wasm`: random bytes behind a valid header;
//! - `mutant-N.wasm`: one of SEED_FILES with a few bytes changed.

use std::path::PathBuf;

use arbitrary::Unstructured;

/// xorshift64*: enough randomness for test input, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn config(fuel: bool) -> wasm_smith::Config {
    wasm_smith::Config {
        // A start function runs inside instantiation, where nothing can
        // interrupt it: unbounded ones are left out (a known limitation).
        allow_start_export: fuel,
        max_memories: 1,
        max_tables: 2,
        max_imports: 4,
        max_funcs: 12,
        max_instructions: 300,
        memory64_enabled: true,
        bulk_memory_enabled: true,
        reference_types_enabled: true,
        tail_call_enabled: true,
        multi_value_enabled: true,
        exceptions_enabled: false,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        gc_enabled: false,
        custom_page_sizes_enabled: false,
        compact_imports_enabled: false,
        extended_const_enabled: false,
        wide_arithmetic_enabled: false,
        max_memory32_bytes: 1 << 24,
        max_memory64_bytes: 1 << 24,
        export_everything: true,
        canonicalize_nans: false,
        disallow_traps: false,
        ..wasm_smith::Config::default()
    }
}

fn smith(rng: &mut Rng, fuel: bool) -> Option<Vec<u8>> {
    let data = rng.bytes(4096);
    let mut u = Unstructured::new(&data);
    let mut module = wasm_smith::Module::new(config(fuel), &mut u).ok()?;
    if fuel {
        // Loops and calls bounded by fuel, so that even AOT code returns.
        module.ensure_termination(1000).ok()?;
    }
    Some(module.to_bytes())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: hb_beamr_fuzzgen OUT_DIR COUNT SEED [SEED_FILES...]");
        std::process::exit(2);
    }
    let out = PathBuf::from(&args[1]);
    let count: usize = args[2].parse().unwrap_or(100);
    let seed: u64 = args[3].parse().unwrap_or(1);
    let seeds: Vec<Vec<u8>> = args[4..]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("hb_beamr_fuzzgen: {}: {e}", out.display());
        std::process::exit(1);
    }
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut written = 0usize;
    for n in 0..count {
        let (name, bytes) = match n % 4 {
            0 => ("smith", smith(&mut rng, true)),
            1 => ("smithloop", smith(&mut rng, false)),
            2 => {
                let len = rng.below(512);
                let mut b = b"\0asm\x01\0\0\0".to_vec();
                b.extend(rng.bytes(len));
                ("random", Some(b))
            }
            _ => {
                let Some(base) = (!seeds.is_empty()).then(|| &seeds[rng.below(seeds.len())]) else {
                    continue;
                };
                let mut b = base.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(b.len());
                    if let Some(byte) = b.get_mut(at) {
                        *byte = rng.next() as u8;
                    }
                }
                ("mutant", Some(b))
            }
        };
        let Some(bytes) = bytes else { continue };
        let path = out.join(format!("{name}-{n:05}.wasm"));
        if std::fs::write(&path, bytes).is_ok() {
            written += 1;
        }
    }
    println!(
        "hb_beamr_fuzzgen: wrote {written} modules to {}",
        out.display()
    );
}
