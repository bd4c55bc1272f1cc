// SPDX-License-Identifier: GPL-2.0

//! Devices a target holds open through its table (`dm_get_device`/`dm_put_device`), and the
//! callback through which dm asks a target which devices and areas it uses.

use super::bindings;
use super::target::TargetInfo;
use kernel::ffi::c_int;

/// A device opened by `dm_get_device` on behalf of one target; put back on drop.
///
/// # Invariants
/// `dev` was returned by `dm_get_device(ti, ...)` and has not been put; `ti` outlives `self`
/// (dm calls the target's dtr, which drops every `DmDev`, before it frees `ti`).
pub struct DmDev {
    ti: *mut bindings::dm_target,
    dev: *mut bindings::dm_dev,
}

// SAFETY: a `dm_dev` is only read after `dm_get_device` returns, and `dm_put_device` is safe
// from any thread; the target pointer is only used to put the device.
unsafe impl Send for DmDev {}
// SAFETY: see `Send`: shared use is read-only.
unsafe impl Sync for DmDev {}

impl DmDev {
    /// # Safety
    /// `dev` was just returned by a successful `dm_get_device(ti, ...)`, and `ti` outlives the
    /// returned value.
    pub(crate) unsafe fn from_raw(ti: *mut bindings::dm_target, dev: *mut bindings::dm_dev) -> Self {
        // INVARIANT: as the caller guarantees.
        Self { ti, dev }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::dm_dev {
        self.dev
    }

    pub(crate) fn bdev_ptr(&self) -> *mut bindings::block_device {
        // SAFETY: by the type invariant `dev` is live; `bdev` is set by dm_get_device.
        unsafe { (*self.dev).bdev }
    }

    /// dm's name for the device, `major:minor` (as `dmsetup table` prints it).
    pub fn name(&self) -> &str {
        // SAFETY: by the type invariant `dev` is live; `name` is a fixed array dm fills once.
        let raw = unsafe { &(*self.dev).name };
        let len = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        core::str::from_utf8(&raw[..len]).unwrap_or("?")
    }

    /// The device number (`dev_t`), identifying the block device whatever path named it.
    pub fn devt(&self) -> u32 {
        // SAFETY: the block device is held open (type invariant), so reading it is valid.
        unsafe { (*self.bdev_ptr()).bd_dev }
    }

    /// Size of the device in sectors (512 bytes).
    pub fn nr_sectors(&self) -> u64 {
        // SAFETY: the block device is held open (type invariant).
        unsafe { bindings::dmr_bdev_nr_sectors(self.bdev_ptr()) }
    }

    /// The disk's unique identifier if it reports one: (kind, id) with kind 3 = NAA,
    /// 2 = EUI-64, 1 = T10 (SPC designator types), or (0, zeros). Sleeps (may query the disk).
    pub fn unique_id(&self) -> (u8, [u8; 16]) {
        let mut id = [0u8; 16];
        // SAFETY: the block device is held open (type invariant); `id` has the 16 bytes the
        // helper writes.
        let kind = unsafe { bindings::dmr_bdev_unique_id(self.bdev_ptr(), id.as_mut_ptr()) };
        (u8::try_from(kind).unwrap_or(0), id)
    }

    /// Whether the device is marked read-only (`blockdev --setro`, a write-protected disk).
    pub fn read_only(&self) -> bool {
        // SAFETY: the block device is held open (type invariant).
        unsafe { bindings::dmr_bdev_read_only(self.bdev_ptr()) }
    }

    /// Logical block size of the device in bytes.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: the block device is held open (type invariant).
        unsafe { bindings::dmr_bdev_logical_block_size(self.bdev_ptr()) }
    }
}

impl DmDev {
    /// Flushes the device's volatile write cache and waits (`blkdev_issue_flush`). Sleeps.
    ///
    /// # Errors
    /// The device's error (`EIO`, ...).
    pub fn flush(&self) -> kernel::error::Result {
        // SAFETY: the block device is held open (type invariant); the caller may sleep.
        kernel::error::to_result(unsafe { bindings::blkdev_issue_flush(self.bdev_ptr()) })
    }
}

impl Drop for DmDev {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `dev` came from `dm_get_device(ti, ..)`, is put only
        // here, and `ti` is still alive.
        unsafe { bindings::dm_put_device(self.ti, self.dev) };
    }
}

/// The callout dm passes to `iterate_devices`; call [`DeviceVisitor::visit`] once per device.
pub struct DeviceVisitor {
    pub(crate) ti: *mut bindings::dm_target,
    pub(crate) callout: bindings::iterate_devices_callout_fn,
    pub(crate) data: *mut kernel::ffi::c_void,
}

impl DeviceVisitor {
    /// Reports that the target uses sectors `[start, start + len)` of `dev`. A non-zero result
    /// ends the iteration and must be returned from `iterate_devices`.
    pub fn visit(&mut self, _ti: &TargetInfo, dev: &DmDev, start: u64, len: u64) -> c_int {
        match self.callout {
            // SAFETY: dm gave us this callout with `ti` and `data` for this very call of
            // iterate_devices; `dev` is one of this target's live devices.
            Some(f) => unsafe { f(self.ti, dev.as_ptr(), start, len, self.data) },
            None => 0,
        }
    }
}

/// The queue limits dm computed for the device, for a target's `io_hints` to adjust.
#[repr(transparent)]
pub struct QueueLimits(bindings::queue_limits);

impl QueueLimits {
    /// # Safety
    /// `ptr` is valid and not otherwise accessed during `'a`.
    pub(crate) unsafe fn from_raw_mut<'a>(ptr: *mut bindings::queue_limits) -> &'a mut Self {
        // SAFETY: transparent wrapper; validity and exclusivity are the caller's duty.
        unsafe { &mut *ptr.cast::<Self>() }
    }

    /// Raises the logical (and with it physical and minimum I/O) size to at least `bytes`.
    pub fn raise_logical_block_size(&mut self, bytes: u32) {
        let l = &mut self.0;
        l.logical_block_size = l.logical_block_size.max(bytes);
        l.physical_block_size = l.physical_block_size.max(bytes);
        l.io_min = l.io_min.max(bytes);
    }
}
