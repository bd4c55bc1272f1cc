// SPDX-License-Identifier: GPL-2.0

//! Synchronous I/O between buffer pages and a device, for work outside the bio path (copying a
//! unit for a manual remap, reading metadata, the background scan). Sleeps: process context
//! only.

use super::bindings;
use super::bio::{BioOp, BlkStatus};
use super::device::DmDev;
use core::mem::MaybeUninit;
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{code::EINVAL, Result};
use kernel::page::{Page, PAGE_SIZE};

/// Most pages one buffer (and so one synchronous bio) holds: 64 KiB.
pub const MAX_BUFFER_PAGES: usize = 16;

/// Pages of memory for synchronous device I/O (the first page is the one `copy_*` use).
///
/// # Invariants
/// `pages` holds between 1 and [`MAX_BUFFER_PAGES`] pages.
pub struct PageBuffer {
    pages: KVec<Page>,
}

impl PageBuffer {
    /// Allocates one page (`GFP_KERNEL`: call inside a [`NoIoScope`] on I/O paths).
    ///
    /// # Errors
    /// `ENOMEM`.
    pub fn new() -> Result<Self> {
        Self::with_pages(1)
    }

    /// Allocates `n` pages, 1 to [`MAX_BUFFER_PAGES`] (as [`PageBuffer::new`]).
    ///
    /// # Errors
    /// `ENOMEM`, `EINVAL` for another `n`.
    pub fn with_pages(n: usize) -> Result<Self> {
        if n == 0 || n > MAX_BUFFER_PAGES {
            return Err(EINVAL);
        }
        let mut pages = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            pages.push(Page::alloc_page(GFP_KERNEL)?, GFP_KERNEL)?;
        }
        // INVARIANT: 1 <= n <= MAX_BUFFER_PAGES pages.
        Ok(Self { pages })
    }

    /// Bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.pages.len().saturating_mul(PAGE_SIZE)
    }

    fn first(&self) -> Result<&Page> {
        self.pages.first().ok_or(EINVAL)
    }

    /// Copies the first `out.len()` bytes of the first page into `out` (at most a page).
    pub fn copy_to(&self, out: &mut [u8]) -> Result {
        if out.len() > PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `out` is valid for writing its length; `&self` excludes concurrent writers
        // of the page (its I/O takes `&mut self`).
        unsafe { self.first()?.read_raw(out.as_mut_ptr(), 0, out.len()) }
    }

    /// Copies `src` (at most a page) to the start of the first page.
    pub fn copy_from(&mut self, src: &[u8]) -> Result {
        if src.len() > PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `src` is valid for reading its length; `&mut self` excludes other access.
        unsafe { self.first()?.write_raw(src.as_ptr(), 0, src.len()) }
    }

    /// Reads (`BioOp::Read`) or writes (`BioOp::Write`, with `REQ_FUA` if `fua`) the first
    /// `bytes` of the buffer at `sector` of `dev` as one bio, and waits. `bytes` must be a
    /// non-zero multiple of 512 up to [`PageBuffer::capacity`]; anything else (or another op)
    /// is refused with `BLK_STS_IOERR`.
    pub fn io(&mut self, dev: &DmDev, sector: u64, bytes: u32, op: BioOp, fua: bool) -> BlkStatus {
        let opf = match op {
            BioOp::Read => bindings::DMR_REQ_OP_READ,
            BioOp::Write if fua => bindings::DMR_REQ_OP_WRITE | bindings::DMR_REQ_SYNC | bindings::DMR_REQ_FUA,
            BioOp::Write => bindings::DMR_REQ_OP_WRITE | bindings::DMR_REQ_SYNC,
            BioOp::Other => return BlkStatus::IOERR,
        };
        if bytes == 0 || bytes % 512 != 0 || bytes as usize > self.capacity() {
            return BlkStatus::IOERR;
        }
        let mut bio = MaybeUninit::<bindings::bio>::uninit();
        let mut bvecs = MaybeUninit::<[bindings::bio_vec; MAX_BUFFER_PAGES]>::uninit();
        // SAFETY: bio_init initialises the on-stack bio with room for the on-stack bvecs, one
        // per page added (at most MAX_BUFFER_PAGES, the pages' count by the type invariant);
        // the pages are ours and outlive the synchronous submission; bio_uninit releases what
        // the bio took before both go out of scope.
        unsafe {
            let bio = bio.as_mut_ptr();
            bindings::bio_init(bio, dev.bdev_ptr(), bvecs.as_mut_ptr().cast(), MAX_BUFFER_PAGES as u16, opf);
            let mut left = bytes as usize;
            for page in self.pages.iter() {
                if left == 0 {
                    break;
                }
                let len = left.min(PAGE_SIZE);
                bindings::__bio_add_page(bio, page.as_ptr(), len as u32, 0);
                left = left.saturating_sub(len);
            }
            (*bio).bi_iter.bi_sector = sector;
            bindings::submit_bio_wait(bio);
            let status = BlkStatus((*bio).bi_status);
            bindings::bio_uninit(bio);
            status
        }
    }
}

/// While alive, every allocation of this task behaves as `GFP_NOIO` (`memalloc_noio_save`),
/// so that memory reclaim cannot recurse into I/O on the devices we serve.
pub struct NoIoScope {
    saved: u32,
    // Not Send: the scope belongs to the current task.
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl NoIoScope {
    /// Enters the scope.
    pub fn new() -> Self {
        // SAFETY: always allowed in task context; restored in drop.
        let saved = unsafe { bindings::dmr_memalloc_noio_save() };
        Self { saved, _not_send: core::marker::PhantomData }
    }
}

impl Drop for NoIoScope {
    fn drop(&mut self) {
        // SAFETY: restores what `new` saved, on the same task.
        unsafe { bindings::dmr_memalloc_noio_restore(self.saved) };
    }
}
