// SPDX-License-Identifier: GPL-2.0

//! A bio as a target sees it in `map`: read its operation and position, point it at another
//! device and sector.
//!
//! C header: [`include/linux/blk_types.h`](srctree/include/linux/blk_types.h).

use super::bindings;
use super::device::DmDev;
use crate::remap_core::io_error;
use kernel::types::Opaque;

/// A block-layer completion status (`blk_status_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlkStatus(pub(crate) bindings::blk_status_t);

impl BlkStatus {
    /// Success (`BLK_STS_OK`).
    pub const OK: Self = Self(bindings::DMR_BLK_STS_OK);
    /// An I/O error (`BLK_STS_IOERR`, `-EIO`).
    pub const IOERR: Self = Self(bindings::DMR_BLK_STS_IOERR);
    /// Out of a resource such as memory (`BLK_STS_RESOURCE`).
    pub const RESOURCE: Self = Self(bindings::DMR_BLK_STS_RESOURCE);

    /// The I/O succeeded.
    pub fn is_ok(self) -> bool {
        self == Self::OK
    }

    /// The failure may mean that the medium failed at the place of the I/O (`BLK_STS_MEDIUM`,
    /// `BLK_STS_IOERR`): only then may a unit be remapped or marked pending (see
    /// `remap_core::io_error`). False for success and for every other status.
    pub fn may_be_medium(self) -> bool {
        io_error::may_be_medium(self.0)
    }

    /// The raw `BLK_STS_*` value.
    pub fn raw(self) -> u8 {
        self.0
    }
}

/// The core classifies statuses by their values: the kernel's headers must agree with it
/// (checked when the module is built; a kernel that renumbers them fails the build).
const _: () = {
    use bindings as b;
    let pairs: [(bindings::blk_status_t, u8); 19] = [
        (b::DMR_BLK_STS_OK, io_error::BLK_STS_OK),
        (b::DMR_BLK_STS_NOTSUPP, io_error::BLK_STS_NOTSUPP),
        (b::DMR_BLK_STS_TIMEOUT, io_error::BLK_STS_TIMEOUT),
        (b::DMR_BLK_STS_NOSPC, io_error::BLK_STS_NOSPC),
        (b::DMR_BLK_STS_TRANSPORT, io_error::BLK_STS_TRANSPORT),
        (b::DMR_BLK_STS_TARGET, io_error::BLK_STS_TARGET),
        (b::DMR_BLK_STS_RESV_CONFLICT, io_error::BLK_STS_RESV_CONFLICT),
        (b::DMR_BLK_STS_MEDIUM, io_error::BLK_STS_MEDIUM),
        (b::DMR_BLK_STS_PROTECTION, io_error::BLK_STS_PROTECTION),
        (b::DMR_BLK_STS_RESOURCE, io_error::BLK_STS_RESOURCE),
        (b::DMR_BLK_STS_IOERR, io_error::BLK_STS_IOERR),
        (b::DMR_BLK_STS_DM_REQUEUE, io_error::BLK_STS_DM_REQUEUE),
        (b::DMR_BLK_STS_AGAIN, io_error::BLK_STS_AGAIN),
        (b::DMR_BLK_STS_DEV_RESOURCE, io_error::BLK_STS_DEV_RESOURCE),
        (b::DMR_BLK_STS_ZONE_OPEN_RESOURCE, io_error::BLK_STS_ZONE_OPEN_RESOURCE),
        (b::DMR_BLK_STS_ZONE_ACTIVE_RESOURCE, io_error::BLK_STS_ZONE_ACTIVE_RESOURCE),
        (b::DMR_BLK_STS_OFFLINE, io_error::BLK_STS_OFFLINE),
        (b::DMR_BLK_STS_DURATION_LIMIT, io_error::BLK_STS_DURATION_LIMIT),
        (b::DMR_BLK_STS_INVAL, io_error::BLK_STS_INVAL),
    ];
    let mut i = 0;
    while i < pairs.len() {
        assert!(pairs[i].0 == pairs[i].1, "a BLK_STS_* value differs from remap_core::io_error");
        i += 1;
    }
};

/// The direction of a data bio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BioOp {
    /// `REQ_OP_READ`.
    Read,
    /// `REQ_OP_WRITE`.
    Write,
    /// Anything else: flushes, discards, write-zeroes, ...
    Other,
}

/// A bio owned by device-mapper and lent to a target's `map`.
///
/// # Invariants
/// The wrapped `struct bio` is valid and not used by anyone else for as long as the reference
/// to this `Bio` lives (dm core hands a clone to exactly one target call at a time).
#[repr(transparent)]
pub struct Bio(Opaque<bindings::bio>);

impl Bio {
    /// Borrows a `Bio` from a raw pointer.
    ///
    /// # Safety
    /// `ptr` is a valid bio that nothing else accesses during `'a`.
    pub(crate) unsafe fn from_raw_mut<'a>(ptr: *mut bindings::bio) -> &'a mut Self {
        // SAFETY: `Bio` is a transparent wrapper of `bio`; validity and exclusivity are the
        // caller's duty.
        unsafe { &mut *ptr.cast::<Self>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::bio {
        self.0.get()
    }

    fn opf(&self) -> bindings::blk_opf_t {
        // SAFETY: by the type invariant the bio is valid; `bi_opf` is a plain integer.
        unsafe { (*self.as_ptr()).bi_opf }
    }

    /// The operation: read, write or other.
    pub fn op(&self) -> BioOp {
        match self.opf() & bindings::DMR_REQ_OP_MASK {
            x if x == bindings::DMR_REQ_OP_READ => BioOp::Read,
            x if x == bindings::DMR_REQ_OP_WRITE => BioOp::Write,
            _ => BioOp::Other,
        }
    }

    /// The bio is a `REQ_OP_WRITE_ZEROES` (one of [`BioOp::Other`]): it writes, like a write.
    pub fn is_write_zeroes(&self) -> bool {
        self.opf() & bindings::DMR_REQ_OP_MASK == bindings::DMR_REQ_OP_WRITE_ZEROES
    }

    /// The bio carries `REQ_PREFLUSH`: caches must be flushed before it.
    pub fn is_preflush(&self) -> bool {
        self.opf() & bindings::DMR_REQ_PREFLUSH != 0
    }

    /// The bio carries `REQ_FUA`: its data must be durable when it completes.
    pub fn is_fua(&self) -> bool {
        self.opf() & bindings::DMR_REQ_FUA != 0
    }

    /// First sector (512 bytes) the bio addresses, on the device it currently targets.
    pub fn sector(&self) -> u64 {
        // SAFETY: by the type invariant the bio is valid.
        unsafe { (*self.as_ptr()).bi_iter.bi_sector }
    }

    /// Size of the bio in sectors (512 bytes); 0 for an empty flush.
    pub fn sectors(&self) -> u32 {
        // SAFETY: by the type invariant the bio is valid.
        unsafe { (*self.as_ptr()).bi_iter.bi_size >> 9 }
    }

    /// Points the bio at `sector` (512-byte units) of the device it targets.
    pub fn set_sector(&mut self, sector: u64) {
        // SAFETY: by the type invariant the bio is valid and ours to modify.
        unsafe { (*self.as_ptr()).bi_iter.bi_sector = sector };
    }

    /// Points the bio at `dev` (`bio_set_dev`).
    pub fn set_dev(&mut self, dev: &DmDev) {
        // SAFETY: the bio is valid and ours (type invariant); `dev.bdev_ptr()` is a live block
        // device held open by the table for at least as long as this bio is in flight.
        unsafe { bindings::dmr_bio_set_dev(self.as_ptr(), dev.bdev_ptr()) };
    }

    /// Keeps only the first `sectors` of the bio for this target call; dm sends the rest in a
    /// new bio (`dm_accept_partial_bio`). `sectors` must be non-zero and less than
    /// [`Bio::sectors`]; other values are ignored.
    pub fn accept_partial(&mut self, sectors: u32) {
        if sectors > 0 && sectors < self.sectors() {
            // SAFETY: the bio is in this target's map (type invariant), where dm allows it, and
            // the length is within the bio.
            unsafe { bindings::dm_accept_partial_bio(self.as_ptr(), sectors) };
        }
    }

    /// Which of the target's `num_flush_bios` (or discard/write-zeroes) clones this is.
    pub fn target_bio_nr(&self) -> u32 {
        // SAFETY: the bio is a dm clone (it was passed to a target's map).
        unsafe { bindings::dm_bio_get_target_bio_nr(self.as_ptr()) }
    }
}
