//! Forked instances: a snapshot's memory prepared once as an [`Image`] (a
//! sealed memfd holding the bytes), which an instance then maps over its
//! linear memory copy-on-write ([`InstanceRef::adopt`]): no byte is copied
//! until it is written, so a fork costs the same at 64 MiB as at 1 GiB, and
//! every fork of one image shares the pages none of them wrote (they stay in
//! the memfd's page cache, once).
//!
//! How a fork is mapped: `mmap(MAP_FIXED | MAP_PRIVATE)` of the memfd over
//! the first `size` bytes of the instance's linear memory, exactly the
//! file's size (page aligned: linear memory is whole 64 KiB pages), never
//! beyond the file's end (a page past it would be `SIGBUS`). That is only
//! done where WAMR reserved the memory's maximum as address space and grows
//! it in place by `mprotect` (`hb_wamr_build`'s patch: a maximum of at most
//! 4 GiB, every 32-bit memory): growing then commits pages of the
//! anonymous reservation after the file mapping, and freeing unmaps the
//! whole reservation, both ranges. A memory WAMR grows with `mremap`
//! (memory64 with a maximum over 4 GiB) would extend the file mapping past
//! the file's end; there the image is copied in instead (`pread`: one copy,
//! the cost of a restore), with the same result.
//!
//! The result is the state `start` + `restore(Snap)` leaves, bit for bit:
//! the same checks (module, size, maximum, globals) in the same order, the
//! same memory, the same globals. Bounds checks are WAMR's, unchanged: the
//! memory's size and base do not change (the mapping replaces pages in
//! place).
//!
//! The kernel's dirty-page tracking (`dirty.rs`) works on the mapping as on
//! anonymous memory (asynchronous userfaultfd write-protection accepts any
//! memory): a page of a fork is written when the fork writes it (its
//! copy-on-write fault), never when it is read.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};

use hb_beamr_core::errors::Error;
use hb_beamr_core::snapshot::{Global, Tracked};

use crate::instance::InstanceRef;

const PAGE: u64 = 4096;
/// The largest maximum that WAMR reserves as address space (see the
/// module's documentation and `hb_wamr_build`'s `HB_BEAMR_RESERVES`).
const RESERVED_MAX: u64 = 4 << 30;

/// A snapshot's state, prepared for forks: its memory in a sealed memfd, its
/// globals and its module's fingerprint.
#[derive(Debug)]
pub struct Image {
    file: File,
    /// The memory's size in bytes (the file's size).
    size: u64,
    /// Where the last byte that is not zero ends (0: all zero): the part a
    /// smaller maximum may not cut off.
    nonzero_end: u64,
    pub fingerprint: [u8; 32],
    pub globals: Vec<Global>,
    /// The state's id and unit hashes where a restore of the same snapshots
    /// would know them (a chain; `None` for a lone full snapshot): the
    /// base of a fork's next delta.
    pub tracked: Option<Tracked>,
}

fn os_error(what: &str) -> Error {
    Error::SnapshotUnsupported(format!(
        "could not prepare the image: {what}: {}",
        std::io::Error::last_os_error()
    ))
}

impl Image {
    /// An image of a memory of `size` bytes made by `writes` (offset,
    /// bytes), in order, over zeros, as a restore of the same plan makes it.
    /// Units of 4 KiB that are zero in the first write are left as holes
    /// (fresh file pages are zero).
    pub fn build(
        fingerprint: [u8; 32],
        globals: Vec<Global>,
        size: u64,
        writes: &[(u64, &[u8])],
    ) -> Result<Image, Error> {
        // SAFETY: a NUL-terminated name and flags; the new fd is owned below.
        let fd = unsafe {
            libc::memfd_create(
                c"hb_beamr_image".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(os_error("memfd_create"));
        }
        // SAFETY: `fd` was just returned to us and nothing else owns it.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size)
            .map_err(|e| Error::SnapshotUnsupported(format!("could not prepare the image: {e}")))?;
        let mut nonzero_end = 0;
        for (i, (at, bytes)) in writes.iter().enumerate() {
            let n = size.saturating_sub(*at).min(bytes.len() as u64) as usize;
            let bytes = &bytes[..n];
            if let Some(last) = bytes.iter().rposition(|b| *b != 0) {
                nonzero_end = nonzero_end.max(at + last as u64 + 1);
            }
            let mut offset = 0;
            for chunk in bytes.chunks(PAGE as usize) {
                let skip = i == 0 && chunk.iter().all(|b| *b == 0);
                if !skip {
                    write_all_at(&file, chunk, at + offset)?;
                }
                offset += chunk.len() as u64;
            }
        }
        // Nobody may change the bytes forks map, nor shrink the file under
        // them (pages past its end would be SIGBUS). Private mappings may
        // still be written: their pages are copies.
        let seals =
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on our own memfd.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(os_error("sealing the memfd"));
        }
        Ok(Image {
            file,
            size,
            nonzero_end,
            fingerprint,
            globals,
            tracked: None,
        })
    }

    /// The memory's size in bytes.
    pub fn memory_size(&self) -> u64 {
        self.size
    }

    /// Whether forks of an instance like `inst` map the image (rather than
    /// copy it in): see the module's documentation.
    pub fn maps_into(inst: InstanceRef) -> bool {
        let (base, size) = inst.memory_region();
        let max = inst.max_memory_size();
        if base.is_null() || max == 0 || max > RESERVED_MAX || max < size {
            return false;
        }
        if !(base as u64).is_multiple_of(PAGE) || !max.is_multiple_of(PAGE) {
            return false;
        }
        // The reservation is there: its last page is mapped (PROT_NONE
        // until grown). mincore fails with ENOMEM on unmapped memory.
        let mut vec = [0u8; 1];
        // Not dereferenced: an address for the kernel to look up, which
        // may lie outside any mapping (wrapping_add makes no claim).
        let last = base.wrapping_add((max - PAGE) as usize);
        // SAFETY: a page-aligned address and one page; `vec` has room for
        // one page's entry. mincore only reads the page tables (ENOMEM if
        // nothing is mapped there).
        let mapped =
            unsafe { libc::mincore(last as *mut libc::c_void, PAGE as usize, vec.as_mut_ptr()) };
        mapped == 0
    }

    /// Puts the image's first `len` bytes (at most its size, whole pages
    /// when mapped) over the first `len` bytes of `inst`'s linear memory,
    /// which must be at least that large: copy-on-write where
    /// [`Image::maps_into`], else copied.
    fn place(&self, inst: InstanceRef, len: u64) -> Result<(), Error> {
        let (base, size) = inst.memory_region();
        if len > size || len > self.size {
            return Err(Error::SnapshotMismatch(
                "the image does not fit this instance's memory".into(),
            ));
        }
        if len == 0 {
            return Ok(());
        }
        if Image::maps_into(inst) && len.is_multiple_of(PAGE) {
            // SAFETY: `base..base + len` is this instance's committed
            // linear memory (len <= size, checked above), page aligned
            // (maps_into); no WebAssembly runs (the instance's thread,
            // between calls), and no slice of it is held. The mapping
            // replaces those pages in place (MAP_FIXED), covering exactly
            // the file's first `len` bytes (len <= its size: no page past
            // its end). The reservation after it is untouched.
            let mapped = unsafe {
                libc::mmap(
                    base as *mut libc::c_void,
                    len as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    self.file.as_raw_fd(),
                    0,
                )
            };
            if mapped == libc::MAP_FAILED || mapped as *mut u8 != base {
                // The range may be unmapped now: the caller drops the
                // instance (a failed fork leaves nothing behind).
                return Err(os_error("mapping the image"));
            }
            return Ok(());
        }
        // SAFETY: as above, `len` bytes of committed linear memory at
        // `base`, written only by this thread while no WebAssembly runs.
        let memory = unsafe { std::slice::from_raw_parts_mut(base, len as usize) };
        read_exact_at(&self.file, memory, 0)
    }
}

impl InstanceRef {
    /// Makes this instance's state `image`'s, as `restore` of its snapshot
    /// would (the caller has checked the module): memory grown to its size,
    /// its bytes mapped copy-on-write (or copied, see [`Image::maps_into`]),
    /// its globals set. Every check comes first, in `restore`'s order and
    /// with its errors; memory may have grown when a later one fails. An
    /// error after the first mapping step leaves memory undefined: the
    /// caller must drop the instance.
    pub fn adopt(&self, image: &Image) -> Result<(), Error> {
        self.check_state_size(image.size)?;
        let globals = self.check_globals(&image.globals)?;
        let len = self.grow_for_state(image.size, |max| image.nonzero_end <= max)?;
        image.place(*self, len)?;
        self.set_globals(globals);
        Ok(())
    }
}

/// `pwrite` of all of `bytes` at `offset`.
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> Result<(), Error> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(bytes, offset)
        .map_err(|e| Error::SnapshotUnsupported(format!("could not prepare the image: {e}")))
}

/// `pread` of exactly `into.len()` bytes at `offset`.
fn read_exact_at(file: &File, into: &mut [u8], offset: u64) -> Result<(), Error> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(into, offset)
        .map_err(|e| Error::SnapshotUnsupported(format!("could not copy the image in: {e}")))
}
