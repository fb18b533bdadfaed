//! The snapshot format: an instance's whole state (linear memory and every
//! mutable global, exported or not) and the fingerprint of its module, so
//! that it restores into a fresh instance of the same module, in either
//! mode, on any machine; or a *delta*: only the 4 KiB units of memory that
//! differ from a base snapshot, the globals, and the base's state id, so
//! that a chain `[Full, Delta1, Delta2, ...]` restores the state at Delta's.
//!
//! Version 3 (the layout of version 2, a cheaper state id), all integers
//! little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 6 | magic `hbsnap` |
//! | 6 | 2 | format version (3; 2 is read) |
//! | 8 | 1 | kind: 0 full, 1 delta |
//! | 9 | 1 | how the changed units were found (informational, not state): 0 all memory (a full snapshot), 1 the kernel's dirty tracking, 2 page hashes, 3 compared with a full base |
//! | 10 | 2 | reserved, 0 |
//! | 12 | 4 | unit: 4096 |
//! | 16 | 32 | module fingerprint: SHA-256 of the module's bytecode |
//! | 48 | 32 | state id (see [`state_id`]) |
//! | 80 | 32 | delta: the base's state id; full: zeros |
//! | 112 | 8 | linear memory size in bytes (a multiple of the unit) |
//! | 120 | 4 | number of globals `n` |
//! | 124 | 13 × n | per mutable global: index (u32), value type (u8: `0x7F` i32, `0x7E` i64, `0x7D` f32, `0x7C` f64, the binary format's codes), value bits (u64, 32-bit types zero-extended) |
//! | 124 + 13n | | full: the linear memory (memory size bytes); delta: the number of units `m` (u32), `m` unit indices (u32, strictly ascending, below memory size / unit), then the `m` units' bytes |
//!
//! The state id is a hash of the state, not of the encoding: the SHA-256 of
//! the fingerprint, the memory size, the globals and the hash of every group
//! of [`GROUP`] units (the SHA-256 of their SHA-256s), so that the id of a
//! state a few units away from a known one costs the groups that changed,
//! not a hash of every unit's hash (8 MiB of them for 1 GiB of memory).
//! Version 2 hashed every unit's SHA-256 directly; its ids are checked so. A delta and a full snapshot of the same state have the
//! same id, a chain is checked link by link (each delta's base is the id
//! of the snapshot before it), and every snapshot's id is checked against its
//! contents before anything of it is restored. Units past the base's memory
//! that are zero are not carried (grown memory is zero).
//!
//! Version 1 (no kind, method, unit, ids; the globals at 52, the memory
//! after) is still read, as a full snapshot whose id is computed.

use crate::errors::Error;
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 6] = b"hbsnap";
pub const VERSION: u16 = 3;
/// Units per group of the state id: 1 MiB of memory.
pub const GROUP: usize = 256;
/// The unit of a delta, in bytes: one kernel page.
pub const UNIT: usize = 4096;
const HEADER_V1: usize = 52;
const HEADER: usize = 124;
const GLOBAL: usize = 13;

pub const I32: u8 = 0x7F;
pub const I64: u8 = 0x7E;
pub const F32: u8 = 0x7D;
pub const F64: u8 = 0x7C;

/// A unit's (or any bytes') SHA-256.
pub type Hash = [u8; 32];

/// One mutable global's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Global {
    pub index: u32,
    pub val_type: u8,
    pub bits: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Full,
    Delta,
}

/// How a snapshot's units were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// All of memory: a full snapshot.
    Full,
    /// The kernel said which pages were written (userfaultfd write-protect).
    Kernel,
    /// Every unit hashed and compared with the hashes of the last snapshot.
    Hash,
    /// Every unit compared with a full base given.
    Compare,
}

impl Method {
    fn code(self) -> u8 {
        match self {
            Method::Full => 0,
            Method::Kernel => 1,
            Method::Hash => 2,
            Method::Compare => 3,
        }
    }

    fn of_code(code: u8) -> Option<Method> {
        [Method::Full, Method::Kernel, Method::Hash, Method::Compare]
            .into_iter()
            .find(|m| m.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Full => "full",
            Method::Kernel => "kernel",
            Method::Hash => "hash",
            Method::Compare => "compare",
        }
    }
}

/// A snapshot's header and globals; the body follows them in the encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub method: Method,
    pub fingerprint: [u8; 32],
    /// `None` for a version 1 snapshot, and for a full snapshot taken
    /// while no delta was asked of the instance (encoded as zeros): its id
    /// would cost a hash of all of memory, so it is worked out only when
    /// the snapshot is used as a base.
    pub id: Option<Hash>,
    /// The base's state id (deltas).
    pub base: Hash,
    pub memory_size: u64,
    pub globals: Vec<Global>,
    pub version: u16,
}

/// What follows the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    Full(&'a [u8]),
    Delta { units: Vec<u32>, data: &'a [u8] },
}

/// A decoded snapshot, borrowing its memory from the encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot<'a> {
    pub header: Header,
    pub body: Body<'a>,
}

impl Header {
    /// A full snapshot's header.
    pub fn full(fingerprint: [u8; 32], id: Hash, memory_size: u64, globals: Vec<Global>) -> Self {
        Header {
            kind: Kind::Full,
            method: Method::Full,
            fingerprint,
            id: Some(id),
            base: [0; 32],
            memory_size,
            globals,
            version: VERSION,
        }
    }

    /// A full snapshot's header without an id (see [`Header::id`]).
    pub fn untracked(fingerprint: [u8; 32], memory_size: u64, globals: Vec<Global>) -> Self {
        Header {
            id: None,
            ..Header::full(fingerprint, [0; 32], memory_size, globals)
        }
    }

    /// The encoded header and globals (version 2); the body goes right
    /// after.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + GLOBAL * self.globals.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(match self.kind {
            Kind::Full => 0,
            Kind::Delta => 1,
        });
        out.push(self.method.code());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(UNIT as u32).to_le_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.id.unwrap_or([0; 32]));
        out.extend_from_slice(&self.base);
        out.extend_from_slice(&self.memory_size.to_le_bytes());
        out.extend_from_slice(&(self.globals.len() as u32).to_le_bytes());
        for g in &self.globals {
            out.extend_from_slice(&g.index.to_le_bytes());
            out.push(g.val_type);
            out.extend_from_slice(&g.bits.to_le_bytes());
        }
        out
    }
}

fn bad(why: &str) -> Error {
    Error::InvalidSnapshot(why.to_string())
}

fn mismatch(why: String) -> Error {
    Error::SnapshotMismatch(why)
}

/// Decodes a snapshot (version 1, 2 or 3), checking every length and field: a
/// snapshot is taken whole or not at all. Ids are checked by [`plan`].
pub fn decode(bytes: &[u8]) -> Result<Snapshot<'_>, Error> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(bad("not an hb_beamr snapshot"));
    }
    let version = u16::from_le_bytes([bytes[6], bytes[7]]);
    let (kind, method, id, base, fingerprint_at, size_at, globals_at) = match version {
        1 if bytes.len() >= HEADER_V1 => (Kind::Full, Method::Full, None, [0; 32], 8, 40, 48),
        2 | 3 if bytes.len() >= HEADER => {
            let kind = match bytes[8] {
                0 => Kind::Full,
                1 => Kind::Delta,
                k => return Err(Error::InvalidSnapshot(format!("unknown kind {k}"))),
            };
            let method = Method::of_code(bytes[9]).ok_or_else(|| bad("unknown method"))?;
            if bytes[10..12] != [0, 0] {
                return Err(bad("reserved bytes are not zero"));
            }
            if u32::from_le_bytes(array(&bytes[12..16])) != UNIT as u32 {
                return Err(bad("the unit is not 4096 bytes"));
            }
            let id: Hash = array(&bytes[48..80]);
            if id == [0; 32] && kind == Kind::Delta {
                return Err(bad("a delta without a state id"));
            }
            (
                kind,
                method,
                (id != [0; 32]).then_some(id),
                array(&bytes[80..112]),
                16,
                112,
                120,
            )
        }
        1..=3 => return Err(bad("truncated header")),
        _ => {
            return Err(Error::InvalidSnapshot(format!(
                "snapshot format version {version}; this hb_beamr reads versions 1 to {VERSION}"
            )))
        }
    };
    let fingerprint: [u8; 32] = array(&bytes[fingerprint_at..fingerprint_at + 32]);
    let memory_size = u64::from_le_bytes(array(&bytes[size_at..size_at + 8]));
    let count = u32::from_le_bytes(array(&bytes[globals_at..globals_at + 4])) as usize;
    let header_end = globals_at + 4;
    let globals_end = count
        .checked_mul(GLOBAL)
        .and_then(|n| n.checked_add(header_end))
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| bad("truncated globals"))?;
    let globals = bytes[header_end..globals_end]
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
    if version >= 2 && memory_size % UNIT as u64 != 0 {
        return Err(bad("the memory size is not a multiple of the unit"));
    }
    let rest = &bytes[globals_end..];
    let body = match kind {
        Kind::Full => {
            if rest.len() as u64 != memory_size {
                return Err(Error::InvalidSnapshot(format!(
                    "memory is {} bytes, the header says {memory_size}",
                    rest.len()
                )));
            }
            Body::Full(rest)
        }
        Kind::Delta => {
            if rest.len() < 4 {
                return Err(bad("truncated unit count"));
            }
            let m = u32::from_le_bytes(array(&rest[..4])) as usize;
            let data_at = m
                .checked_mul(4)
                .and_then(|n| n.checked_add(4))
                .filter(|end| *end <= rest.len())
                .ok_or_else(|| bad("truncated unit indices"))?;
            let units = rest[4..data_at]
                .chunks_exact(4)
                .map(|u| u32::from_le_bytes(array(u)))
                .collect::<Vec<_>>();
            let data = &rest[data_at..];
            if data.len() as u64 != m as u64 * UNIT as u64 {
                return Err(bad("the units' bytes do not match their count"));
            }
            let limit = memory_size / UNIT as u64;
            if units.windows(2).any(|w| w[0] >= w[1])
                || units.last().is_some_and(|u| *u as u64 >= limit)
            {
                return Err(bad("unit indices are not ascending within memory"));
            }
            Body::Delta { units, data }
        }
    };
    Ok(Snapshot {
        header: Header {
            kind,
            method,
            fingerprint,
            id,
            base,
            memory_size,
            globals,
            version,
        },
        body,
    })
}

/// Reads only the header of a snapshot (what `snapshot(W, #{base => B})`
/// needs of the base): no body is checked.
pub fn peek(bytes: &[u8]) -> Result<Header, Error> {
    decode(bytes).map(|s| s.header)
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

/// A module's fingerprint: the SHA-256 of its bytecode.
pub fn fingerprint(bytecode: &[u8]) -> [u8; 32] {
    Sha256::digest(bytecode).into()
}

/// The fingerprint (or an id) as text, for error messages.
pub fn hex(fingerprint: &[u8; 32]) -> String {
    fingerprint.iter().map(|b| format!("{b:02x}")).collect()
}

/// A unit's hash.
pub fn unit_hash(unit: &[u8]) -> Hash {
    Sha256::digest(unit).into()
}

/// The hash of a zero unit.
pub fn zero_unit_hash() -> Hash {
    static ZERO: std::sync::OnceLock<Hash> = std::sync::OnceLock::new();
    *ZERO.get_or_init(|| unit_hash(&[0; UNIT]))
}

/// The hash of every unit of `memory` (the last may be short in a
/// version 1 snapshot).
pub fn unit_hashes(memory: &[u8]) -> Vec<Hash> {
    memory.chunks(UNIT).map(unit_hash).collect()
}

/// The id of a state: the SHA-256 of a domain tag, the fingerprint, the
/// memory size, the globals (as encoded) and the hashes of the units'
/// groups ([`group_hashes`]).
pub fn state_id(
    fingerprint: &[u8; 32],
    memory_size: u64,
    globals: &[Global],
    units: &[Hash],
) -> Hash {
    state_id_of_groups(fingerprint, memory_size, globals, &group_hashes(units))
}

/// [`state_id`] from the groups' hashes.
pub fn state_id_of_groups(
    fingerprint: &[u8; 32],
    memory_size: u64,
    globals: &[Global],
    groups: &[Hash],
) -> Hash {
    tagged_state_id(
        b"hbsnap state 3\0\0",
        fingerprint,
        memory_size,
        globals,
        groups,
    )
}

/// A version 2 snapshot's state id: every unit's hash, ungrouped.
fn state_id_v2(
    fingerprint: &[u8; 32],
    memory_size: u64,
    globals: &[Global],
    units: &[Hash],
) -> Hash {
    tagged_state_id(
        b"hbsnap state 2\0\0",
        fingerprint,
        memory_size,
        globals,
        units,
    )
}

/// The SHA-256 of `tag`, the fingerprint, the memory size, the globals (as
/// encoded) and `hashes`.
fn tagged_state_id(
    tag: &[u8],
    fingerprint: &[u8; 32],
    memory_size: u64,
    globals: &[Global],
    hashes: &[Hash],
) -> Hash {
    let mut h = Sha256::new();
    h.update(tag);
    h.update(fingerprint);
    h.update(memory_size.to_le_bytes());
    h.update((globals.len() as u32).to_le_bytes());
    for g in globals {
        h.update(g.index.to_le_bytes());
        h.update([g.val_type]);
        h.update(g.bits.to_le_bytes());
    }
    for x in hashes {
        h.update(x);
    }
    h.finalize().into()
}

/// The hash of each group of [`GROUP`] unit hashes (the last may be short).
pub fn group_hashes(units: &[Hash]) -> Vec<Hash> {
    units.chunks(GROUP).map(group_hash).collect()
}

fn group_hash(units: &[Hash]) -> Hash {
    let mut h = Sha256::new();
    for u in units {
        h.update(u);
    }
    h.finalize().into()
}

/// Brings `groups` up to date with `units` (of which there were `before`)
/// after the units `changed` changed and any past `before` were added:
/// only those groups are hashed again.
pub fn regroup(groups: &mut Vec<Hash>, units: &[Hash], changed: &[u32], before: usize) {
    let count = units.len().div_ceil(GROUP);
    if before > units.len() || groups.len() != before.div_ceil(GROUP) {
        *groups = group_hashes(units);
        return;
    }
    groups.resize(count, [0; 32]);
    let mut stale: Vec<usize> = changed.iter().map(|u| *u as usize / GROUP).collect();
    // Added units: the group the old last unit was in, and every new one.
    if units.len() > before {
        stale.extend(before / GROUP..count);
    }
    stale.sort_unstable();
    stale.dedup();
    for g in stale.into_iter().filter(|g| *g < count) {
        groups[g] = group_hash(&units[g * GROUP..((g + 1) * GROUP).min(units.len())]);
    }
}

/// What the last snapshot (or restore) of an instance left: its state id,
/// the hash of every unit and of every group of them, the base of the next
/// delta.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    pub id: Hash,
    pub hashes: Vec<Hash>,
    pub groups: Vec<Hash>,
}

impl Tracked {
    /// The tracked state with `hashes` (its groups hashed here).
    pub fn new(id: Hash, hashes: Vec<Hash>) -> Tracked {
        let groups = group_hashes(&hashes);
        Tracked { id, hashes, groups }
    }
}

/// Which units of `memory` differ from the state whose unit hashes are
/// `hashes`, looking only at `candidates` (unit ranges the kernel says were
/// written; `None`: all of them). `hashes` becomes the hashes of `memory`.
/// Units past the old memory count as zero before. Memory never shrinks: a
/// smaller memory is the caller's bug, answered as all units changed.
pub fn diff(
    hashes: &mut Vec<Hash>,
    memory: &[u8],
    candidates: Option<&[std::ops::Range<usize>]>,
) -> Vec<u32> {
    let count = memory.len().div_ceil(UNIT);
    if hashes.len() > count {
        hashes.clear();
    }
    hashes.resize(count, zero_unit_hash());
    let whole = 0..count;
    let all = std::slice::from_ref(&whole);
    let ranges = candidates.unwrap_or(all);
    let mut changed = Vec::new();
    for range in ranges {
        for u in range.start..range.end.min(count) {
            let h = unit_hash(&memory[u * UNIT..((u + 1) * UNIT).min(memory.len())]);
            if h != hashes[u] {
                hashes[u] = h;
                changed.push(u as u32);
            }
        }
    }
    changed.sort_unstable();
    changed.dedup();
    changed
}

/// Which units of `memory` differ from `base` (a full snapshot's memory),
/// by comparing bytes; zero units past the base are not changes.
pub fn compare(base: &[u8], memory: &[u8]) -> Vec<u32> {
    (0..memory.len().div_ceil(UNIT))
        .filter(|u| {
            let range = u * UNIT..((u + 1) * UNIT).min(memory.len());
            let now = &memory[range.clone()];
            match base.get(range) {
                Some(then) => then != now,
                None => now.iter().any(|b| *b != 0),
            }
        })
        .map(|u| u as u32)
        .collect()
}

/// Encodes a delta: `header` (its kind is set to delta) and the `units` of
/// `memory`.
pub fn encode_delta(header: &Header, units: &[u32], memory: &[u8]) -> Vec<u8> {
    let header = Header {
        kind: Kind::Delta,
        ..header.clone()
    };
    let mut out = header.encode();
    out.reserve(4 + units.len() * (4 + UNIT));
    out.extend_from_slice(&(units.len() as u32).to_le_bytes());
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
    for u in units {
        let at = *u as usize * UNIT;
        out.extend_from_slice(&memory[at..at + UNIT]);
    }
    out
}

/// What restoring a chain does, worked out (and every check made) before
/// anything is written.
#[derive(Debug)]
pub struct Plan<'a> {
    pub memory_size: u64,
    pub globals: Vec<Global>,
    /// Writes in order, each at an offset of linear memory.
    pub writes: Vec<(u64, &'a [u8])>,
    /// The restored state, the base of the next delta: `None` for a lone
    /// full snapshot, whose id is not worked out (restoring one costs a
    /// copy, not a hash of all of memory).
    pub tracked: Option<Tracked>,
}

/// Checks a chain `[Full, Delta1, ...]` of snapshots of module `ours` and
/// works out its restore: every snapshot decodes, is of `ours`, has the id
/// its contents give, the first is full and each delta's base is the
/// snapshot before it. Errors: bytes that are not a snapshot, or whose id
/// does not match them, are `InvalidSnapshot`; another module, a chain out
/// of order or a delta without its base are `SnapshotMismatch`; a delta
/// whose memory is larger than `max_memory` (what the instance can grow to)
/// is `SnapshotTooLarge` (a full snapshot's size is checked by its writes).
pub fn plan<'a>(chain: &[&'a [u8]], ours: &[u8; 32], max_memory: u64) -> Result<Plan<'a>, Error> {
    let snaps = chain
        .iter()
        .map(|bytes| decode(bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = snaps.first() else {
        return Err(bad("an empty chain"));
    };
    for s in &snaps {
        if s.header.fingerprint != *ours {
            return Err(mismatch(format!(
                "the snapshot is of module {}, this instance runs module {}",
                hex(&s.header.fingerprint),
                hex(ours)
            )));
        }
    }
    let Body::Full(memory) = first.body else {
        return Err(mismatch(format!(
            "a delta (of base {}) restores only after its base: give the chain [Full, Delta, ...]",
            hex(&first.header.base)
        )));
    };
    if snaps.len() == 1 {
        return Ok(Plan {
            memory_size: first.header.memory_size,
            globals: first.header.globals.clone(),
            writes: vec![(0, memory)],
            tracked: None,
        });
    }
    let mut hashes = unit_hashes(memory);
    let mut writes = vec![(0, memory)];
    let mut id = checked_id(&first.header, &hashes, 0)?;
    let mut size = first.header.memory_size;
    for (i, s) in snaps.iter().enumerate().skip(1) {
        let Body::Delta { units, data } = &s.body else {
            return Err(mismatch(format!(
                "snapshot {i} of the chain is full: only its first may be"
            )));
        };
        if s.header.base != id {
            return Err(mismatch(format!(
                "delta {i} of the chain has base {}, the state before it is {}: the chain is out \
                 of order or another's",
                hex(&s.header.base),
                hex(&id)
            )));
        }
        if s.header.memory_size < size {
            return Err(bad("a delta's memory is smaller than its base's"));
        }
        if s.header.memory_size > max_memory {
            return Err(Error::SnapshotTooLarge {
                size: s.header.memory_size,
                max: max_memory,
            });
        }
        size = s.header.memory_size;
        hashes.resize(size as usize / UNIT, zero_unit_hash());
        for (u, bytes) in units.iter().zip(data.chunks_exact(UNIT)) {
            hashes[*u as usize] = unit_hash(bytes);
            writes.push((*u as u64 * UNIT as u64, bytes));
        }
        id = checked_id(&s.header, &hashes, i)?;
    }
    let last = &snaps[snaps.len() - 1].header;
    Ok(Plan {
        memory_size: size,
        globals: last.globals.clone(),
        writes,
        tracked: Some(Tracked::new(id, hashes)),
    })
}

/// The tracked state of a full snapshot (its units' hashes and its id,
/// checked against the one it carries): what a delta against it needs.
pub fn tracked(full: &[u8]) -> Result<Tracked, Error> {
    let snap = decode(full)?;
    let Body::Full(memory) = snap.body else {
        return Err(bad("a delta is not a full snapshot"));
    };
    let hashes = unit_hashes(memory);
    let id = checked_id(&snap.header, &hashes, 0)?;
    Ok(Tracked::new(id, hashes))
}

/// The id of the state `header` and `hashes` describe, checked against the
/// one the header carries (by its version's definition).
fn checked_id(header: &Header, hashes: &[Hash], at: usize) -> Result<Hash, Error> {
    let id_of = if header.version == 2 {
        state_id_v2
    } else {
        state_id
    };
    let id = id_of(
        &header.fingerprint,
        header.memory_size,
        &header.globals,
        hashes,
    );
    match header.id {
        Some(carried) if carried != id => Err(Error::InvalidSnapshot(format!(
            "snapshot {at} of the chain says state {}, its contents are state {}",
            hex(&carried),
            hex(&id)
        ))),
        _ => Ok(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FP: [u8; 32] = [7; 32];
    const MAX: u64 = 1 << 30;

    fn globals(seed: u64) -> Vec<Global> {
        vec![
            Global {
                index: 0,
                val_type: I32,
                bits: seed & 0xFFFF_FFFF,
            },
            Global {
                index: 3,
                val_type: F64,
                bits: 0x7FF4_0000_0000_0001 ^ seed,
            },
        ]
    }

    fn full(memory: &[u8], globals: Vec<Global>) -> Vec<u8> {
        let id = state_id(&FP, memory.len() as u64, &globals, &unit_hashes(memory));
        let mut bytes = Header::full(FP, id, memory.len() as u64, globals).encode();
        bytes.extend_from_slice(memory);
        bytes
    }

    fn delta(
        tracked: &mut Tracked,
        memory: &[u8],
        globals: Vec<Global>,
        candidates: Option<&[std::ops::Range<usize>]>,
    ) -> Vec<u8> {
        let units = diff(&mut tracked.hashes, memory, candidates);
        let id = state_id(&FP, memory.len() as u64, &globals, &tracked.hashes);
        let header = Header {
            kind: Kind::Delta,
            method: Method::Hash,
            base: tracked.id,
            ..Header::full(FP, id, memory.len() as u64, globals)
        };
        tracked.id = id;
        encode_delta(&header, &units, memory)
    }

    fn apply(plan: &Plan) -> Vec<u8> {
        let mut memory = vec![0; plan.memory_size as usize];
        for (at, bytes) in &plan.writes {
            memory[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
        }
        memory
    }

    fn memory(units: usize) -> Vec<u8> {
        let mut m = vec![0; units * UNIT];
        for (i, b) in m.iter_mut().enumerate().step_by(4001) {
            *b = i as u8;
        }
        m
    }

    #[test]
    fn a_snapshot_decodes_to_what_was_encoded() {
        let m = memory(2);
        let bytes = full(&m, globals(1));
        let s = decode(&bytes).unwrap();
        assert_eq!(s.header.globals, globals(1));
        assert_eq!(s.header.kind, Kind::Full);
        assert_eq!(s.body, Body::Full(&m[..]));
    }

    #[test]
    fn version_1_still_decodes_and_restores() {
        let mut bytes = b"hbsnap".to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&FP);
        bytes.extend_from_slice(&4u64.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        let plan = plan(&[&bytes], &FP, MAX).unwrap();
        assert_eq!(apply(&plan), vec![1, 2, 3, 4]);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn version_2_ids_are_checked_as_version_2_and_chain_with_version_3() {
        let m = memory(300);
        let g = globals(1);
        let hashes = unit_hashes(&m);
        let id2 = state_id_v2(&FP, m.len() as u64, &g, &hashes);
        let id3 = state_id(&FP, m.len() as u64, &g, &hashes);
        assert_ne!(id2, id3);
        let mut full2 = full(&m, g.clone());
        full2[6..8].copy_from_slice(&2u16.to_le_bytes());
        full2[48..80].copy_from_slice(&id2);
        assert_eq!(tracked(&full2).unwrap().id, id2);
        // A version 3 id in a version 2 snapshot is not its state.
        let mut wrong = full2.clone();
        wrong[48..80].copy_from_slice(&id3);
        assert!(tracked(&wrong).is_err());
        // A version 3 delta on the version 2 snapshot chains.
        let mut tracked = Tracked::new(id2, hashes);
        let mut m2 = m.clone();
        m2[5000] ^= 1;
        m2.extend_from_slice(&[9; UNIT]);
        let d = delta(&mut tracked, &m2, globals(2), None);
        let p = plan(&[&full2, &d], &FP, MAX).unwrap();
        assert_eq!(apply(&p), m2);
    }

    proptest! {
        #[test]
        fn regrouping_what_changed_is_grouping_anew(
            count in 0usize..1200,
            changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..20),
            grow in 0usize..700,
        ) {
            let unit = |i: usize, salt: u8| {
                let mut h = [0u8; 32];
                h[..8].copy_from_slice(&(i as u64).to_le_bytes());
                h[8] = salt;
                h
            };
            let mut units: Vec<Hash> = (0..count).map(|i| unit(i, 0)).collect();
            let mut groups = group_hashes(&units);
            units.extend((count..count + grow).map(|i| unit(i, 0)));
            let total = units.len();
            let mut changed = Vec::new();
            if total > 0 {
                for (at, salt) in &changes {
                    let at = at % total;
                    units[at] = unit(at, salt.wrapping_add(1));
                    changed.push(at as u32);
                }
            }
            changed.sort_unstable();
            changed.dedup();
            // Grown units are not "changed" (zero before): regroup finds them.
            changed.retain(|u| (*u as usize) < count);
            regroup(&mut groups, &units, &changed, count);
            prop_assert_eq!(groups, group_hashes(&units));
        }
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let m = memory(2);
        let base = full(&m, globals(1));
        let mut tracked = tracked(&base).unwrap();
        let mut m2 = m.clone();
        m2[5000] ^= 1;
        let d = delta(&mut tracked, &m2, globals(2), None);
        for bytes in [base, d] {
            for len in 0..bytes.len() {
                assert!(decode(&bytes[..len]).is_err(), "length {len}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode(&longer).is_err());
        }
    }

    #[test]
    fn another_version_magic_or_type_is_refused() {
        let mut bytes = full(&memory(1), globals(0));
        bytes[HEADER + 4] = 0x70;
        assert!(decode(&bytes).is_err());
        bytes[6] = 4;
        assert!(
            matches!(decode(&bytes), Err(Error::InvalidSnapshot(m)) if m.contains("version 4"))
        );
        bytes[0] = b'x';
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn bad_chains_are_refused() {
        let m0 = memory(3);
        let f = full(&m0, globals(0));
        let mut t = tracked(&f).unwrap();
        let mut m1 = m0.clone();
        m1[0] = 99;
        let d1 = delta(&mut t, &m1, globals(1), None);
        let mut m2 = m1.clone();
        m2.extend_from_slice(&[5; UNIT]);
        let d2 = delta(&mut t, &m2, globals(2), None);
        assert!(plan(&[&f, &d1, &d2], &FP, MAX).is_ok());
        let refused = |chain: &[&[u8]]| match plan(chain, &FP, MAX) {
            Err(Error::SnapshotMismatch(_)) => true,
            other => panic!("{other:?}"),
        };
        assert!(refused(&[&f, &d2, &d1]));
        assert!(refused(&[&f, &d2]));
        assert!(refused(&[&d1, &d2]));
        assert!(refused(&[&d1]));
        assert!(refused(&[&f, &f]));
        assert!(matches!(
            plan(&[&f], &[8; 32], MAX),
            Err(Error::SnapshotMismatch(_))
        ));
        let mut corrupt = d2.clone();
        let at = corrupt.len() - 1;
        corrupt[at] ^= 1;
        assert!(matches!(
            plan(&[&f, &d1, &corrupt], &FP, MAX),
            Err(Error::InvalidSnapshot(_))
        ));
        assert!(matches!(
            plan(&[], &FP, MAX),
            Err(Error::InvalidSnapshot(_))
        ));
    }

    /// One step of a process: memory grows by some units, some bytes are
    /// written, the globals change.
    /// Units grown, writes (offset, byte), the globals' seed.
    type Step = (usize, Vec<(usize, u8)>, u64);

    fn steps() -> impl Strategy<Value = (usize, Vec<Step>)> {
        let step = (
            0usize..3,
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..12),
            any::<u64>(),
        );
        (0usize..5, proptest::collection::vec(step, 1..5))
    }

    #[test]
    fn untracked_full_snapshots_carry_no_id_and_restore_without_one() {
        let m = memory(3);
        let mut bytes = Header::untracked(FP, m.len() as u64, globals(1)).encode();
        bytes.extend_from_slice(&m);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.header.id, None);
        let p = plan(&[&bytes], &FP, MAX).unwrap();
        assert_eq!(p.tracked, None);
        assert_eq!(apply(&p), m);
        // As a base, its id is worked out from its contents.
        let t = tracked(&bytes).unwrap();
        assert_eq!(
            t.id,
            state_id(&FP, m.len() as u64, &globals(1), &unit_hashes(&m))
        );
        // A delta always names its state.
        let mut d = delta(&mut t.clone(), &m, globals(1), None);
        d[48..80].fill(0);
        assert!(matches!(decode(&d), Err(Error::InvalidSnapshot(_))));
    }

    proptest! {
        #[test]
        fn a_chain_restores_the_state_a_full_snapshot_has(
            (initial, steps) in steps(),
            extra in proptest::collection::vec(0usize..16, 0..6),
        ) {
            let mut m = memory(initial);
            let f = full(&m, globals(0));
            let mut chain = vec![f];
            let mut t = tracked(&chain[0][..]).unwrap();
            let mut kernel_like = t.clone();
            let mut g = globals(0);
            for (grow, writes, seed) in steps {
                m.resize(m.len() + grow * UNIT, 0);
                let mut written = Vec::new();
                for (at, byte) in writes {
                    if !m.is_empty() {
                        let at = at % m.len();
                        m[at] = byte;
                        written.push(at / UNIT..at / UNIT + 1);
                    }
                }
                g = globals(seed);
                // What the kernel says: the units written, some more, and
                // memory past what it tracked (grown since).
                let tracked_units = kernel_like.hashes.len();
                written.extend(extra.iter().map(|u| *u..*u + 1));
                written.push(tracked_units..m.len() / UNIT);
                let by_kernel = delta(&mut kernel_like, &m, g.clone(), Some(&written));
                let by_hash = delta(&mut t, &m, g.clone(), None);
                prop_assert_eq!(&by_kernel, &by_hash);
                chain.push(by_hash);
            }
            let refs = chain.iter().map(|c| &c[..]).collect::<Vec<_>>();
            let p = plan(&refs, &FP, MAX).unwrap();
            prop_assert_eq!(apply(&p), m.clone());
            prop_assert_eq!(&p.globals, &g);
            let whole = full(&m, g);
            let direct = tracked(&whole).unwrap();
            // A lone full snapshot restores untracked: its state is its own.
            let pt = p.tracked.clone().unwrap_or_else(|| tracked(&chain[0]).unwrap());
            prop_assert_eq!(&pt, &direct);
            prop_assert_eq!(&decode(&whole).unwrap().header.id, &Some(pt.id));
        }

        #[test]
        fn compare_finds_what_hashes_find(
            initial in 0usize..4,
            grow in 0usize..3,
            writes in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..12),
        ) {
            let base = memory(initial);
            let mut m = base.clone();
            m.resize(m.len() + grow * UNIT, 0);
            for (at, byte) in writes {
                if !m.is_empty() {
                    let at = at % m.len();
                    m[at] = byte;
                }
            }
            let mut hashes = unit_hashes(&base);
            prop_assert_eq!(diff(&mut hashes, &m, None), compare(&base, &m));
        }

        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
            let _ = plan(&[&bytes], &FP, MAX);
        }

        #[test]
        fn planning_mutated_chains_never_panics(
            which in 0usize..2,
            at in 0usize..200,
            byte in any::<u8>(),
        ) {
            let m0 = memory(1);
            let f = full(&m0, globals(0));
            let mut t = tracked(&f).unwrap();
            let mut m1 = m0.clone();
            m1[1] = 1;
            let d = delta(&mut t, &m1, globals(1), None);
            let mut chain = [f, d];
            let target = &mut chain[which];
            if at < target.len() {
                target[at] = byte;
            }
            let _ = plan(&[&chain[0], &chain[1]], &FP, MAX);
        }
    }
}
