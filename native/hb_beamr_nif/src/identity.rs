//! Binaries known by identity. A start reads every byte of the module it
//! is given at least twice before anything runs: the SHA-256 that keys the
//! shared module, and for an AOT file the HMAC of its seal (Erlang side).
//! For the AO module's 1.2 MB AOT file that was over 1 ms of a 2.7 ms
//! start, repeated for every process started from the same binary. What
//! was worked out about a binary's bytes is kept here, so that the next
//! start of the same binary reads none of them.
//!
//! Why the address and length of a binary name its content: an entry pins
//! the binary (a copy of its term in the entry's own `OwnedEnv` refers to
//! the same off-heap bytes and holds a reference to them), so those bytes
//! are neither freed nor reused while the entry lives, and the VM never
//! changes bytes a term already refers to (a binary still being appended
//! to is made read-only before a NIF sees its bytes). Only off-heap
//! binaries qualify: a heap binary (64 bytes or less) moves with its
//! process's heap, and is recognised by its pinned copy having other
//! bytes. Values are kept only for what is a pure function of the bytes
//! (and of the tag, which names everything else the value depends on).
//!
//! Bounded: at most [`MAX_ENTRIES`] binaries and [`MAX_PINNED`] bytes of
//! binaries no longer referenced elsewhere, the least recently used first
//! out. Pinning copies nothing: a binary the caller still holds costs the
//! entry only its bookkeeping.

use std::collections::HashMap;
use std::sync::Mutex;

use rustler::env::{OwnedEnv, SavedTerm};
use rustler::{Binary, Env, Term};

/// At most this many binaries are known.
pub const MAX_ENTRIES: usize = 64;
/// At most this many bytes of known binaries are pinned.
pub const MAX_PINNED: usize = 256 << 20;
/// At most this many values per binary (tags differ by options and keys).
const MAX_VALUES: usize = 8;

/// Where a binary's bytes are, and how many: its identity while pinned.
type Identity = (usize, usize);

struct Entry {
    env: OwnedEnv,
    /// The pinned copy of the binary's term (keeps its bytes alive).
    _pin: SavedTerm,
    fingerprint: Option<[u8; 32]>,
    values: Vec<(Vec<u8>, SavedTerm)>,
    last_use: u64,
}

#[derive(Default)]
struct Memo {
    entries: HashMap<Identity, Entry>,
    pinned: usize,
    clock: u64,
}

static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

fn identity(bytes: &[u8]) -> Identity {
    (bytes.as_ptr() as usize, bytes.len())
}

/// Runs `f` on the memo (a poisoned lock is still a consistent map: every
/// change below is one insert or remove).
fn with_memo<R>(f: impl FnOnce(&mut Memo) -> R) -> R {
    let mut guard = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Memo::default))
}

impl Memo {
    fn touch(&mut self, id: Identity) -> Option<&mut Entry> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entries.get_mut(&id)?;
        entry.last_use = clock;
        Some(entry)
    }

    /// The entry of `binary`, pinned now if it was not known; `None` when
    /// it cannot be known by identity (a heap binary) or is too large.
    fn entry<'a>(&mut self, term: Term<'a>, bytes: &[u8]) -> Option<&mut Entry> {
        let id = identity(bytes);
        if self.entries.contains_key(&id) {
            return self.touch(id);
        }
        if bytes.len() > MAX_PINNED || bytes.len() <= 64 {
            return None;
        }
        let env = OwnedEnv::new();
        let pin = env.save(term);
        // The pinned copy must be the same bytes, not a copy of them.
        let same =
            env.run(|e| Binary::from_term(pin.load(e)).is_ok_and(|b| identity(b.as_slice()) == id));
        if !same {
            return None;
        }
        while self.entries.len() >= MAX_ENTRIES || self.pinned + bytes.len() > MAX_PINNED {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_use)
                .map(|(k, _)| *k)?;
            self.entries.remove(&oldest);
            self.pinned -= oldest.1;
        }
        self.pinned += bytes.len();
        self.entries.insert(
            id,
            Entry {
                env,
                _pin: pin,
                fingerprint: None,
                values: Vec::new(),
                last_use: 0,
            },
        );
        self.touch(id)
    }
}

/// The SHA-256 of `binary`'s bytes: computed once per known binary.
pub fn fingerprint(term: Term, binary: &Binary) -> [u8; 32] {
    let bytes = binary.as_slice();
    let known = with_memo(|m| m.touch(identity(bytes)).and_then(|e| e.fingerprint));
    if let Some(sha256) = known {
        return sha256;
    }
    // Hashed outside the lock: other starts go on meanwhile.
    let sha256 = hb_beamr_core::snapshot::fingerprint(bytes);
    with_memo(|m| {
        if let Some(entry) = m.entry(term, bytes) {
            entry.fingerprint = Some(sha256);
        }
    });
    sha256
}

/// The value kept for `binary` under `tag`, copied into `env`.
pub fn get<'a>(env: Env<'a>, binary: &Binary, tag: &[u8]) -> Option<Term<'a>> {
    with_memo(|m| {
        let entry = m.touch(identity(binary.as_slice()))?;
        let (_, saved) = entry.values.iter().find(|(t, _)| t == tag)?;
        Some(entry.env.run(|e| saved.load(e).in_env(env)))
    })
}

/// Keeps `value` for `binary` under `tag` (replacing one under the same
/// tag); false when the binary cannot be known by identity.
pub fn put(term: Term, binary: &Binary, tag: &[u8], value: Term) -> bool {
    with_memo(|m| {
        let Some(entry) = m.entry(term, binary.as_slice()) else {
            return false;
        };
        let saved = entry.env.save(value);
        entry.values.retain(|(t, _)| t != tag);
        if entry.values.len() >= MAX_VALUES {
            entry.values.remove(0);
        }
        entry.values.push((tag.to_vec(), saved));
        true
    })
}

/// How many binaries are known, and how many bytes they pin.
pub fn stats() -> (usize, usize) {
    with_memo(|m| (m.entries.len(), m.pinned))
}
