// SPDX-License-Identifier: GPL-2.0

//! Bios a target keeps past `map` or `end_io` and completes later from its worker, and the
//! per-bio data that makes this possible without allocating in the I/O path.
//!
//! Pattern of `drivers/md/dm-raid1.c` and `dm-thin.c`: `end_io` returns `DM_ENDIO_INCOMPLETE`
//! (or `map` returns `DM_MAPIO_SUBMITTED`), the bio is queued to a `WQ_MEM_RECLAIM` workqueue
//! through a `work_struct` embedded in its per-bio data, and the worker finishes it with
//! `bio_endio`. dm counts such bios as in flight, so suspend and dtr wait for them.

use super::bindings;
use super::bio::{BioOp, BlkStatus};
use super::device::DmDev;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::ENOMEM, Result};
use kernel::types::Opaque;

/// What the layer keeps for every bio, in front of the target's own per-bio data `P`
/// (`ti->per_io_data_size = size_of::<PerBioData<P>>()`).
#[repr(C)]
pub(crate) struct PerBioData<P> {
    /// Initialised only when the bio is deferred.
    pub(crate) work: MaybeUninit<bindings::work_struct>,
    pub(crate) ti: *mut bindings::dm_target,
    /// The bio's iterator as `map` left it, restored before the worker sees the bio (a
    /// completed bio's iterator is consumed).
    pub(crate) iter: bindings::bvec_iter,
    /// First sector of the bio relative to the target's start.
    pub(crate) start: u64,
    /// The target took the bio; its next `end_io` is the final completion.
    pub(crate) taken: bool,
    pub(crate) target: P,
}

/// A bio the target took; the worker hands it to [`super::Target::work`].
///
/// Dropping it without [`DeferredBio::complete`] fails the bio with `BLK_STS_IOERR`, so a bio
/// can never be lost.
///
/// # Invariants
/// `bio` is a dm clone the target took (`taken` is set in `pb`), whose iterator was restored
/// from `pb.iter`; nothing else uses it until it is completed.
pub struct DeferredBio<'a, P> {
    bio: *mut bindings::bio,
    pb: *mut PerBioData<P>,
    _lifetime: PhantomData<&'a mut P>,
}

impl<P> DeferredBio<'_, P> {
    /// # Safety
    /// `bio` and `pb` belong together, the target took the bio, and it is not used elsewhere.
    pub(crate) unsafe fn from_raw(bio: *mut bindings::bio, pb: *mut PerBioData<P>) -> Self {
        // SAFETY: both are valid (caller's duty); restoring the iterator is ours to do.
        unsafe { (*bio).bi_iter = (*pb).iter };
        // INVARIANT: the iterator was just restored; the rest is the caller's guarantee.
        Self { bio, pb, _lifetime: PhantomData }
    }

    fn iter(&self) -> &bindings::bvec_iter {
        // SAFETY: `pb` is valid while we hold the bio (type invariant).
        unsafe { &(*self.pb).iter }
    }

    /// First sector of the bio, relative to the target's start.
    pub fn start(&self) -> u64 {
        // SAFETY: as above.
        unsafe { (*self.pb).start }
    }

    /// Size of the bio in sectors.
    pub fn sectors(&self) -> u32 {
        self.iter().bi_size >> 9
    }

    fn opf(&self) -> bindings::blk_opf_t {
        // SAFETY: `bio` is valid (type invariant); `bi_opf` does not change.
        unsafe { (*self.bio).bi_opf }
    }

    /// Read, write or other.
    pub fn op(&self) -> BioOp {
        match self.opf() & bindings::DMR_REQ_OP_MASK {
            x if x == bindings::DMR_REQ_OP_READ => BioOp::Read,
            x if x == bindings::DMR_REQ_OP_WRITE => BioOp::Write,
            _ => BioOp::Other,
        }
    }

    /// The bio is a `REQ_OP_WRITE_ZEROES` (one of [`BioOp::Other`]).
    pub fn is_write_zeroes(&self) -> bool {
        self.opf() & bindings::DMR_REQ_OP_MASK == bindings::DMR_REQ_OP_WRITE_ZEROES
    }

    /// The bio carries `REQ_FUA`: its data must be durable when it completes.
    pub fn is_fua(&self) -> bool {
        self.opf() & bindings::DMR_REQ_FUA != 0
    }

    /// The bio carries `REQ_PREFLUSH`: everything completed before it must be durable when
    /// it completes.
    pub fn is_preflush(&self) -> bool {
        self.opf() & bindings::DMR_REQ_PREFLUSH != 0
    }

    /// The target's own per-bio data, as `map` and `end_io` left it.
    pub fn per_bio(&self) -> &P {
        // SAFETY: `pb` is valid while we hold the bio (type invariant).
        unsafe { &(*self.pb).target }
    }

    /// Performs the bio's operation on part of its data and waits: sectors
    /// `[offset, offset + len)` of the bio go to (or come from) `sector` of `dev`.
    /// Allocates a clone from `bioset` (`GFP_NOIO`, never fails) and sleeps: worker only.
    ///
    /// Returns `BLK_STS_IOERR` without I/O if the range is not inside the bio.
    pub fn io_part(&self, bioset: &BioSet, offset: u32, len: u32, dev: &DmDev, sector: u64) -> BlkStatus {
        if len == 0 || offset.checked_add(len).map_or(true, |end| end > self.sectors()) {
            return BlkStatus::IOERR;
        }
        // SAFETY: `bio` is valid with its iterator restored (type invariant); the clone comes
        // from a live bioset, shares the bio's pages (which outlive it, as we complete the bio
        // only after this returns) and is freed here after the synchronous submission.
        unsafe {
            let clone = bindings::bio_alloc_clone(dev.bdev_ptr(), self.bio, bindings::DMR_GFP_NOIO, bioset.as_ptr());
            if clone.is_null() {
                return BlkStatus::RESOURCE;
            }
            bindings::bio_trim(clone, u64::from(offset), u64::from(len));
            (*clone).bi_iter.bi_sector = sector;
            // The clone is waited for, never polled: a polled bio (io_uring IOPOLL) keeps
            // REQ_POLLED on its dm clone, and a clone carrying it would complete only when
            // someone polls its queue (or fail with BLK_STS_NOTSUPP where the queue cannot
            // poll). As dm does for bios it resubmits (`bio_clear_polled`).
            (*clone).bi_opf &= !bindings::DMR_REQ_POLLED;
            bindings::submit_bio_wait(clone);
            let status = BlkStatus((*clone).bi_status);
            bindings::bio_put(clone);
            status
        }
    }

    /// Completes the bio with `status` (`bio_endio`).
    pub fn complete(self, status: BlkStatus) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: the bio is ours to complete (type invariant) and we give it up here.
        unsafe { end_bio(this.bio, status) };
    }
}

impl<P> Drop for DeferredBio<'_, P> {
    fn drop(&mut self) {
        // SAFETY: not completed (`complete` forgets `self`), so still ours to complete.
        unsafe { end_bio(self.bio, BlkStatus::IOERR) };
    }
}

/// # Safety
/// The caller owns `bio` (a taken dm clone) and gives it up.
unsafe fn end_bio(bio: *mut bindings::bio, status: BlkStatus) {
    // SAFETY: as the caller guarantees.
    unsafe {
        (*bio).bi_status = status.0;
        bindings::bio_endio(bio);
    }
}

/// A `bio_set` for clones made in the worker: mempool-backed, so allocation with `GFP_NOIO`
/// always succeeds eventually (each clone is freed before the next is allocated).
///
/// # Invariants
/// `set` was initialised by `bioset_init` and is exited on drop; the box keeps it in place.
pub struct BioSet {
    set: KBox<Opaque<bindings::bio_set>>,
}

// SAFETY: a bio_set is designed for concurrent use from any CPU.
unsafe impl Send for BioSet {}
// SAFETY: as above.
unsafe impl Sync for BioSet {}

impl BioSet {
    /// Creates a bio set whose pool holds `pool_size` clones.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub fn new(pool_size: u32) -> Result<Self> {
        let set = KBox::new(Opaque::<bindings::bio_set>::uninit(), GFP_KERNEL)?;
        // SAFETY: `set.get()` is writable memory that bioset_init fully initialises; it stays
        // in place (boxed) for the bio set's life.
        let ret = unsafe {
            set.get().write(core::mem::zeroed());
            bindings::bioset_init(set.get(), pool_size, 0, 0)
        };
        if ret != 0 {
            return Err(ENOMEM);
        }
        // INVARIANT: initialised just now.
        Ok(Self { set })
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::bio_set {
        self.set.get()
    }
}

impl Drop for BioSet {
    fn drop(&mut self) {
        // SAFETY: initialised (type invariant); every clone was freed before its user returned.
        unsafe { bindings::bioset_exit(self.set.get()) };
    }
}

/// A workqueue allocated with `WQ_MEM_RECLAIM`; destroyed (after draining) on drop.
///
/// # Invariants
/// `wq` is a live workqueue from `alloc_workqueue`.
pub(crate) struct OwnedQueue {
    wq: *mut bindings::workqueue_struct,
}

// SAFETY: workqueues are used from any CPU.
unsafe impl Send for OwnedQueue {}
// SAFETY: as above.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    pub(crate) fn new(name: &core::ffi::CStr) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; the function copies it.
        let wq = unsafe { bindings::dmr_alloc_reclaim_workqueue(name.as_ptr().cast()) };
        if wq.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: just allocated.
        Ok(Self { wq })
    }

    /// Queues `work` (already initialised).
    ///
    /// # Safety
    /// `work` is an initialised work item that stays valid until its function has run.
    pub(crate) unsafe fn queue(&self, work: *mut bindings::work_struct) {
        // SAFETY: `wq` is live (type invariant); `work` as the caller guarantees.
        unsafe { bindings::dmr_queue_work(self.wq, work) };
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: live (type invariant); destroy_workqueue runs every queued item first.
        unsafe { bindings::destroy_workqueue(self.wq) };
    }
}
