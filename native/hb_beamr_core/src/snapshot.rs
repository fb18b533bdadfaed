//! The snapshot format: an instance's whole state (linear memory and every
//! mutable global, exported or not) and the fingerprint of its module, so
//! that it restores into a fresh instance of the same module, in either
//! mode, on any machine.
//!
//! Version 1, all integers little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 6 | magic `hbsnap` |
//! | 6 | 2 | format version (1) |
//! | 8 | 32 | module fingerprint: SHA-256 of the module's bytecode |
//! | 40 | 8 | linear memory size in bytes (a multiple of 64 KiB, or 0) |
//! | 48 | 4 | number of globals `n` |
//! | 52 | 13 × n | per mutable global: index (u32), value type (u8: `0x7F` i32, `0x7E` i64, `0x7D` f32, `0x7C` f64, the binary format's codes), value bits (u64, 32-bit types zero-extended) |
//! | 52 + 13n | memory size | the linear memory |

use crate::errors::Error;

pub const MAGIC: &[u8; 6] = b"hbsnap";
pub const VERSION: u16 = 1;
const HEADER: usize = 52;
const GLOBAL: usize = 13;

pub const I32: u8 = 0x7F;
pub const I64: u8 = 0x7E;
pub const F32: u8 = 0x7D;
pub const F64: u8 = 0x7C;

/// One mutable global's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Global {
    pub index: u32,
    pub val_type: u8,
    pub bits: u64,
}

/// A snapshot's header and globals; the memory follows them in the encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub fingerprint: [u8; 32],
    pub memory_size: u64,
    pub globals: Vec<Global>,
}

impl Header {
    /// The encoded header and globals; the memory goes right after.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + GLOBAL * self.globals.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.memory_size.to_le_bytes());
        out.extend_from_slice(&(self.globals.len() as u32).to_le_bytes());
        for g in &self.globals {
            out.extend_from_slice(&g.index.to_le_bytes());
            out.push(g.val_type);
            out.extend_from_slice(&g.bits.to_le_bytes());
        }
        out
    }

    /// Splits an encoded snapshot into its header and its memory, checking
    /// every length: a snapshot is taken whole or not at all.
    pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), Error> {
        let bad = |why: &str| Error::InvalidSnapshot(why.to_string());
        if bytes.len() < HEADER || &bytes[..6] != MAGIC {
            return Err(bad("not an hb_beamr snapshot"));
        }
        let version = u16::from_le_bytes([bytes[6], bytes[7]]);
        if version != VERSION {
            return Err(Error::InvalidSnapshot(format!(
                "snapshot format version {version}; this hb_beamr reads version {VERSION}"
            )));
        }
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(&bytes[8..40]);
        let memory_size = u64::from_le_bytes(array(&bytes[40..48]));
        let count = u32::from_le_bytes(array(&bytes[48..52])) as usize;
        let globals_end = count
            .checked_mul(GLOBAL)
            .and_then(|n| n.checked_add(HEADER))
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| bad("truncated globals"))?;
        let globals = bytes[HEADER..globals_end]
            .chunks_exact(GLOBAL)
            .map(|g| Global {
                index: u32::from_le_bytes(array(&g[0..4])),
                val_type: g[4],
                bits: u64::from_le_bytes(array(&g[5..13])),
            })
            .collect::<Vec<_>>();
        if let Some(g) = globals
            .iter()
            .find(|g| ![I32, I64, F32, F64].contains(&g.val_type))
        {
            return Err(Error::InvalidSnapshot(format!(
                "global {} has unknown value type 0x{:02x}",
                g.index, g.val_type
            )));
        }
        let memory = &bytes[globals_end..];
        if memory.len() as u64 != memory_size {
            return Err(Error::InvalidSnapshot(format!(
                "memory is {} bytes, the header says {memory_size}",
                memory.len()
            )));
        }
        Ok((
            Header {
                fingerprint,
                memory_size,
                globals,
            },
            memory,
        ))
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// A module's fingerprint: the SHA-256 of its bytecode.
pub fn fingerprint(bytecode: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytecode).into()
}

/// The fingerprint as text, for error messages.
pub fn hex(fingerprint: &[u8; 32]) -> String {
    fingerprint.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> (Header, Vec<u8>) {
        let header = Header {
            fingerprint: [7; 32],
            memory_size: 4,
            globals: vec![
                Global {
                    index: 0,
                    val_type: I32,
                    bits: 0xFFFF_FFF0,
                },
                Global {
                    index: 3,
                    val_type: F64,
                    bits: 0x7FF4_0000_0000_0001,
                },
            ],
        };
        let mut bytes = header.encode();
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        (header, bytes)
    }

    #[test]
    fn a_snapshot_decodes_to_what_was_encoded() {
        let (header, bytes) = sample();
        let (decoded, memory) = Header::decode(&bytes).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(memory, &[1, 2, 3, 4]);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let (_, bytes) = sample();
        for len in 0..bytes.len() {
            assert!(Header::decode(&bytes[..len]).is_err(), "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Header::decode(&longer).is_err());
    }

    #[test]
    fn another_version_or_magic_is_refused() {
        let (_, mut bytes) = sample();
        bytes[6] = 2;
        assert!(
            matches!(Header::decode(&bytes), Err(Error::InvalidSnapshot(m)) if m.contains("version 2"))
        );
        bytes[0] = b'x';
        assert!(Header::decode(&bytes).is_err());
    }

    #[test]
    fn unknown_value_types_are_refused() {
        let (_, mut bytes) = sample();
        bytes[HEADER + 4] = 0x70;
        assert!(Header::decode(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Header::decode(&bytes);
        }

        #[test]
        fn decoding_mutated_snapshots_never_panics(at in 0usize..60, byte in any::<u8>()) {
            let (_, mut bytes) = sample();
            if at < bytes.len() {
                bytes[at] = byte;
            }
            let _ = Header::decode(&bytes);
        }
    }
}
