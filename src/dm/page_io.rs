// SPDX-License-Identifier: GPL-2.0

//! Synchronous I/O of up to one page between a buffer page and a device, for work outside the
//! bio path (copying a unit for a manual remap, reading metadata). Sleeps: process context only.

use super::bindings;
use super::bio::{BioOp, BlkStatus};
use super::device::DmDev;
use core::mem::MaybeUninit;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{code::EINVAL, Result};
use kernel::page::{Page, PAGE_SIZE};

/// One page of memory for synchronous device I/O.
pub struct PageBuffer {
    page: Page,
}

impl PageBuffer {
    /// Allocates the page (`GFP_KERNEL`: call inside a [`NoIoScope`] on I/O paths).
    ///
    /// # Errors
    /// `ENOMEM`.
    pub fn new() -> Result<Self> {
        Ok(Self { page: Page::alloc_page(GFP_KERNEL)? })
    }

    /// Copies the first `out.len()` bytes of the page into `out` (at most a page).
    pub fn copy_to(&self, out: &mut [u8]) -> Result {
        if out.len() > PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `out` is valid for writing its length; `&self` excludes concurrent writers
        // of the page (its I/O takes `&mut self`).
        unsafe { self.page.read_raw(out.as_mut_ptr(), 0, out.len()) }
    }

    /// Copies `src` (at most a page) to the start of the page.
    pub fn copy_from(&mut self, src: &[u8]) -> Result {
        if src.len() > PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `src` is valid for reading its length; `&mut self` excludes other access.
        unsafe { self.page.write_raw(src.as_ptr(), 0, src.len()) }
    }

    /// Reads (`BioOp::Read`) or writes (`BioOp::Write`, with `REQ_FUA` if `fua`) the first
    /// `bytes` of the page at `sector` of `dev`, and waits. `bytes` must be a non-zero multiple
    /// of 512 up to a page; anything else (or another op) is refused with `BLK_STS_IOERR`.
    pub fn io(&mut self, dev: &DmDev, sector: u64, bytes: u32, op: BioOp, fua: bool) -> BlkStatus {
        let opf = match op {
            BioOp::Read => bindings::DMR_REQ_OP_READ,
            BioOp::Write if fua => bindings::DMR_REQ_OP_WRITE | bindings::DMR_REQ_SYNC | bindings::DMR_REQ_FUA,
            BioOp::Write => bindings::DMR_REQ_OP_WRITE | bindings::DMR_REQ_SYNC,
            BioOp::Other => return BlkStatus::IOERR,
        };
        if bytes == 0 || bytes % 512 != 0 || bytes as usize > PAGE_SIZE {
            return BlkStatus::IOERR;
        }
        let mut bio = MaybeUninit::<bindings::bio>::uninit();
        let mut bvec = MaybeUninit::<bindings::bio_vec>::uninit();
        // SAFETY: bio_init initialises the on-stack bio with room for the one on-stack bvec;
        // the page is ours and outlives the synchronous submission; bio_uninit releases what
        // the bio took before both go out of scope.
        unsafe {
            let bio = bio.as_mut_ptr();
            bindings::bio_init(bio, dev.bdev_ptr(), bvec.as_mut_ptr(), 1, opf);
            bindings::__bio_add_page(bio, self.page.as_ptr(), bytes, 0);
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
