//! Which pages of an instance's linear memory were written since the last
//! look, asked of the kernel for that memory's range only.
//!
//! The method: userfaultfd write-protection in asynchronous mode
//! (`UFFD_FEATURE_WP_ASYNC`, Linux 6.7+). The memory is registered with a
//! userfaultfd of its own (`UFFDIO_REGISTER_MODE_WP`); the `PAGEMAP_SCAN`
//! ioctl on `/proc/self/pagemap` with `PM_SCAN_WP_MATCHING |
//! PM_SCAN_CHECK_WPASYNC` both reports the pages written since the last scan
//! (`PAGE_IS_WRITTEN`) and write-protects them again, atomically. A write
//! to a protected page is resolved by the kernel at once (no fault reaches
//! us: nothing to serve, nothing to wait on); it only clears the page's
//! protection bit, which is what the next scan reads. So tracking costs one
//! minor fault per page per snapshot interval, and a scan costs time in the
//! number of page-table entries, not bytes: memory is not read.
//!
//! Why not soft-dirty: clearing it (`/proc/self/clear_refs`) is
//! process-wide, so one instance's snapshot would wipe every other
//! instance's record in the same BEAM; and this kernel is built without it
//! (`CONFIG_MEM_SOFT_DIRTY` unset). userfaultfd is per range and per file
//! descriptor: instances do not see each other.
//!
//! Where the kernel cannot say (no userfaultfd, no `WP_ASYNC`, a page size
//! other than 4 KiB, memory that moved) [`DirtyTracker::take`] answers
//! `None`, and the caller hashes every unit instead.
//!
//! Each tracked instance holds one userfaultfd descriptor (opened at its
//! first snapshot); `/proc/self/pagemap` is opened once for all. Should
//! opening fail (the descriptor limit), that instance falls back to hashing.
//!
//! The descriptor is opened with `UFFD_USER_MODE_ONLY`, which needs no
//! privilege even when `vm.unprivileged_userfaultfd` is 0: asynchronous
//! write-protection never delivers a fault, so kernel-mode faults do not
//! matter. Pages grown after the last look lie outside the registered range
//! and are reported as written; they are registered then.

use std::fs::File;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::instance::InstanceRef;

const PAGE: usize = 4096;

// linux/userfaultfd.h (the features are newer than most installed headers).
const UFFD_API: u64 = 0xAA;
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
// _IOWR(0xAA, 0x3F, struct uffdio_api), _IOWR(0xAA, 0x00, struct uffdio_register)
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
// _IOWR(0xAA, 0x06, struct uffdio_writeprotect); mode 0 lifts the protection.
const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xC018_AA06;
/// A host write at least this large lifts the protection of its pages in
/// one call instead of taking a fault per page.
const LIFT_AT: usize = 64 * PAGE;
// linux/fs.h: _IOWR('f', 16, struct pm_scan_arg)
const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioWriteprotect {
    start: u64,
    len: u64,
    mode: u64,
}

#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `/proc/self/pagemap`, opened once for every tracker: `PAGEMAP_SCAN` keeps
/// no state in the file, so instances share it (one descriptor less each).
fn pagemap() -> Option<&'static File> {
    static PAGEMAP: std::sync::OnceLock<Option<File>> = std::sync::OnceLock::new();
    PAGEMAP
        .get_or_init(|| File::open("/proc/self/pagemap").ok())
        .as_ref()
}

/// The kernel side of tracking one memory.
struct Kernel {
    uffd: OwnedFd,
    /// Where the memory was when registered.
    base: usize,
    /// How many bytes from `base` are registered.
    registered: usize,
}

/// Tracks which pages of one instance's memory were written. Lives on the
/// instance's thread, next to the hashes of its last snapshot.
#[derive(Default)]
pub struct DirtyTracker {
    kernel: Option<Kernel>,
    /// The kernel said no once: not asked again.
    unsupported: bool,
}

impl DirtyTracker {
    pub fn new() -> DirtyTracker {
        DirtyTracker::default()
    }

    /// Whether the kernel is (or may yet be) tracking: false once it failed.
    pub fn kernel_available(&self) -> bool {
        !self.unsupported
    }

    /// The 4 KiB pages of `mem` (as page index ranges from its start)
    /// written since the last call, and from now on, tracking anew. `None`:
    /// the kernel cannot say (every page may have been written): it cannot
    /// track at all ([`DirtyTracker::kernel_available`] is then false), or
    /// this is the first call, or the memory moved since (WAMR grows memory
    /// with `mremap`, which may move it, and a moved range is no longer
    /// registered); tracking starts from here all the same. Pages grown in
    /// place since the last call are reported.
    pub fn take(&mut self, mem: InstanceRef) -> Option<Vec<Range<usize>>> {
        if self.unsupported {
            return None;
        }
        let (base, size) = mem.memory_region();
        let size = usize::try_from(size).ok()?;
        if base.is_null() || size == 0 {
            return Some(Vec::new());
        }
        match self.scan(base as usize, size) {
            Some(answer) => answer,
            None => {
                self.kernel = None;
                self.unsupported = true;
                None
            }
        }
    }

    /// The host is about to write `len` bytes at `offset` of `mem` (a
    /// deserialize, a restore, a large `hb_beamr_io:write`). With tracking
    /// on, each protected page would take a minor fault on its first write:
    /// 16,384 of them for 64 MiB, which made a deserialize after a snapshot
    /// cost three copies. A large write lifts the protection of its pages
    /// in one call instead; they then read as written (they are about to
    /// be; the pages at its ends, maybe only in part, are reported whole,
    /// as any write to them would be). Small writes, or no tracking:
    /// nothing to do.
    pub fn will_write(&mut self, mem: InstanceRef, offset: u64, len: usize) {
        if len < LIFT_AT {
            return;
        }
        let Some(kernel) = self.kernel.as_ref() else {
            return;
        };
        let (base, _) = mem.memory_region();
        if base as usize != kernel.base {
            // Moved: not registered there; the next take starts anew.
            return;
        }
        let Ok(offset) = usize::try_from(offset) else {
            return;
        };
        let from = offset - offset % PAGE;
        let to = offset
            .saturating_add(len)
            .div_ceil(PAGE)
            .saturating_mul(PAGE);
        let to = to.min(kernel.registered);
        if from >= to {
            return;
        }
        let mut range = UffdioWriteprotect {
            start: (kernel.base + from) as u64,
            len: (to - from) as u64,
            mode: 0,
        };
        // Its result does not matter: pages it fails to lift keep their
        // protection, so the write takes its faults and is still seen.
        // SAFETY: a live userfaultfd and a valid uffdio_writeprotect over
        // a registered part of the instance's linear memory.
        unsafe { libc::ioctl(kernel.uffd.as_raw_fd(), UFFDIO_WRITEPROTECT, &mut range) };
    }

    /// `None`: the kernel failed; `Some(None)`: tracking starts here.
    fn scan(&mut self, base: usize, size: usize) -> Option<Option<Vec<Range<usize>>>> {
        if !base.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
            return None;
        }
        let fresh = match &self.kernel {
            Some(k) if k.base == base => false,
            // The memory moved (or was never tracked): the old range, if
            // any, is not ours any more.
            _ => {
                self.kernel = Some(Kernel::open(base)?);
                true
            }
        };
        let kernel = self.kernel.as_mut()?;
        if size > kernel.registered {
            kernel.register(kernel.registered, size)?;
        }
        let written = kernel.written(size)?;
        Some(if fresh { None } else { Some(written) })
    }
}

impl Kernel {
    fn open(base: usize) -> Option<Kernel> {
        // SAFETY: sysconf has no preconditions.
        if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } != PAGE as libc::c_long {
            return None;
        }
        let flags = libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY;
        // SAFETY: the userfaultfd syscall takes flags and returns a new fd.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just returned to us, and is owned from here.
        let uffd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
            ioctls: 0,
        };
        // SAFETY: a live userfaultfd and a valid uffdio_api.
        if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api) } != 0 {
            return None;
        }
        pagemap()?;
        Some(Kernel {
            uffd,
            base,
            registered: 0,
        })
    }

    /// Registers bytes `from..to` of the memory for write-protection.
    fn register(&mut self, from: usize, to: usize) -> Option<()> {
        let mut reg = UffdioRegister {
            start: (self.base + from) as u64,
            len: (to - from) as u64,
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: a live userfaultfd and a valid uffdio_register; the range
        // is the instance's mapped linear memory.
        if unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_REGISTER, &mut reg) } != 0 {
            return None;
        }
        self.registered = to;
        Some(())
    }

    /// The pages of the first `size` bytes written since the last scan,
    /// write-protecting them again.
    fn written(&mut self, size: usize) -> Option<Vec<Range<usize>>> {
        let mut regions = [PageRegion::default(); 256];
        let mut out: Vec<Range<usize>> = Vec::new();
        let end = (self.base + size) as u64;
        let mut start = self.base as u64;
        while start < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                start,
                end,
                walk_end: 0,
                vec: regions.as_mut_ptr() as u64,
                vec_len: regions.len() as u64,
                max_pages: 0,
                category_inverted: 0,
                category_mask: PAGE_IS_WRITTEN,
                category_anyof_mask: 0,
                return_mask: PAGE_IS_WRITTEN,
            };
            // SAFETY: the pagemap of our own process, a valid pm_scan_arg
            // whose vector has `vec_len` entries; the range is registered.
            let n = unsafe { libc::ioctl(pagemap()?.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
            if n < 0 {
                return None;
            }
            for r in &regions[..n as usize] {
                let range = (r.start - self.base as u64) as usize / PAGE
                    ..(r.end - self.base as u64) as usize / PAGE;
                match out.last_mut() {
                    Some(last) if last.end == range.start => last.end = range.end,
                    _ => out.push(range),
                }
            }
            if arg.walk_end <= start {
                return None;
            }
            start = arg.walk_end;
        }
        Some(out)
    }
}
