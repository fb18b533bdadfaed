//! Where an instance's module comes from, decided by the start NIF (which
//! keys the bytes and finds a shared module) and used on the instance's
//! thread (`calls::instantiate` loads it). A leaf: it depends on no other
//! module of this crate.

use hb_beamr_engine::{Bounds, Mode, ModuleKey, SharedModule, MODULES};

/// Where an instance's module comes from: the one its siblings share (found
/// by the start NIF), or the bytes, to load (or find loaded by then) on the
/// instance's thread.
pub enum ModuleSource {
    Shared(SharedModule),
    Bytes {
        key: ModuleKey,
        bytes: Vec<u8>,
    },
    /// Sharing is off (`module_sharing`): loaded for this instance alone.
    Own {
        key: ModuleKey,
        bytes: Vec<u8>,
    },
}

impl ModuleSource {
    /// Keys the bytes by content (`sha256`, their SHA-256, which is also
    /// the fingerprint of bytecode, so it is computed once), the mode and the
    /// rewrite flags, and takes a lease on a loaded module of that key; the
    /// bytes are copied only when it is not loaded. `bounds` bound the
    /// registry from now on. Without `share`, the module is the instance's
    /// own, as before sharing (for comparison, and as a way out).
    pub fn of(
        bytes: &[u8],
        sha256: [u8; 32],
        mode: Mode,
        (deterministic, metered): (bool, bool),
        bounds: Bounds,
        share: bool,
    ) -> ModuleSource {
        MODULES.set_bounds(bounds);
        let key = ModuleKey {
            sha256,
            aot: mode == Mode::Aot,
            flags: u32::from(deterministic) | u32::from(metered) << 1,
        };
        if !share {
            return ModuleSource::Own {
                key,
                bytes: bytes.to_vec(),
            };
        }
        match MODULES.lease_loaded(&key) {
            Some(lease) => ModuleSource::Shared(lease),
            None => ModuleSource::Bytes {
                key,
                bytes: bytes.to_vec(),
            },
        }
    }
}
