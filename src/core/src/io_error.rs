// SPDX-License-Identifier: GPL-2.0

//! Which I/O errors may consume spare: the block layer's completion statuses (`blk_status_t`,
//! `BLK_STS_*` in `include/linux/blk_types.h`, meanings in `block/blk-core.c`'s `blk_errors`)
//! classified into what the target does about them. The table, with the kernel's meaning of
//! each status, is in `docs/design.md` ("Which errors remap").
//!
//! # Rules
//! - Only a status that can mean *the medium at this place failed* may remap a unit (failed
//!   write) or mark it pending (failed read): [`BLK_STS_MEDIUM`] certainly, and
//!   [`BLK_STS_IOERR`], the generic status many drivers (virtio-blk, dm-dust, dm-flakey, loop on
//!   a failing file, ...) report a medium failure with. Both are [`ErrorClass::Medium`].
//! - Every other status — timeout, transport, offline, no space, resources, not supported,
//!   protection, reservation conflict, retry requests, zone limits, invalid, and any value this
//!   code does not know — is [`ErrorClass::Other`]: the error is returned to the caller and no
//!   spare unit is used, so that an outage of the path or of the device never burns spare.
//! - On the spare: a write to a spare unit that fails with an `Other` status gives the unit
//!   back (it is not bad); a `Medium` failure marks it bad, but only while fewer than
//!   [`MAX_BAD_IN_A_ROW`] spare writes in a row have failed: after that the spare *device* is
//!   taken as failing (an outage reports `IOERR` on every unit), units are given back and
//!   relocations stop at once, until a spare write succeeds again ([`SpareWriteRun`]).
//!
//! The values are the kernel's; the module checks at build time that the headers it is built
//! against agree (`src/dm/bio.rs`).

#[cfg(test)]
mod tests;

/// `BLK_STS_OK`: success.
pub const BLK_STS_OK: u8 = 0;
/// `BLK_STS_NOTSUPP` (`-EOPNOTSUPP`, "operation not supported").
pub const BLK_STS_NOTSUPP: u8 = 1;
/// `BLK_STS_TIMEOUT` (`-ETIMEDOUT`, "timeout").
pub const BLK_STS_TIMEOUT: u8 = 2;
/// `BLK_STS_NOSPC` (`-ENOSPC`, "critical space allocation"): thin provisioning out of space.
pub const BLK_STS_NOSPC: u8 = 3;
/// `BLK_STS_TRANSPORT` (`-ENOLINK`, "recoverable transport").
pub const BLK_STS_TRANSPORT: u8 = 4;
/// `BLK_STS_TARGET` (`-EREMOTEIO`, "critical target").
pub const BLK_STS_TARGET: u8 = 5;
/// `BLK_STS_RESV_CONFLICT` (`-EBADE`, "reservation conflict").
pub const BLK_STS_RESV_CONFLICT: u8 = 6;
/// `BLK_STS_MEDIUM` (`-ENODATA`, "critical medium").
pub const BLK_STS_MEDIUM: u8 = 7;
/// `BLK_STS_PROTECTION` (`-EILSEQ`, "protection"): integrity (T10 PI) check failed.
pub const BLK_STS_PROTECTION: u8 = 8;
/// `BLK_STS_RESOURCE` (`-ENOMEM`, "kernel resource").
pub const BLK_STS_RESOURCE: u8 = 9;
/// `BLK_STS_IOERR` (`-EIO`, "I/O"): everything not covered by another status.
pub const BLK_STS_IOERR: u8 = 10;
/// `BLK_STS_DM_REQUEUE` (`-EREMCHG`, "dm internal retry"): device-mapper only.
pub const BLK_STS_DM_REQUEUE: u8 = 11;
/// `BLK_STS_AGAIN` (`-EAGAIN`, "nonblocking retry"): a `REQ_NOWAIT` bio would block.
pub const BLK_STS_AGAIN: u8 = 12;
/// `BLK_STS_DEV_RESOURCE` (`-EBUSY`, "device resource").
pub const BLK_STS_DEV_RESOURCE: u8 = 13;
/// `BLK_STS_ZONE_OPEN_RESOURCE` (`-ETOOMANYREFS`, "open zones exceeded").
pub const BLK_STS_ZONE_OPEN_RESOURCE: u8 = 14;
/// `BLK_STS_ZONE_ACTIVE_RESOURCE` (`-EOVERFLOW`, "active zones exceeded").
pub const BLK_STS_ZONE_ACTIVE_RESOURCE: u8 = 15;
/// `BLK_STS_OFFLINE` (`-ENODEV`, "device offline").
pub const BLK_STS_OFFLINE: u8 = 16;
/// `BLK_STS_DURATION_LIMIT` (`-ETIME`, "duration limit exceeded").
pub const BLK_STS_DURATION_LIMIT: u8 = 17;
/// `BLK_STS_INVAL` (`-EINVAL`, "invalid"): invalid size or alignment.
pub const BLK_STS_INVAL: u8 = 19;

/// Most spare units marked bad while no spare write succeeds (see [`SpareWriteRun`]); also the
/// most spare units one relocation tries.
pub const MAX_BAD_IN_A_ROW: u32 = 3;

/// What a failed completion status says about the medium at the failed place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The medium may have failed there (`BLK_STS_MEDIUM`, `BLK_STS_IOERR`): a failed write
    /// may be remapped, a failed read marks the unit pending.
    Medium,
    /// Anything else (or success): the status is returned and no spare is used.
    Other,
}

/// Classifies completion status `status` (a `BLK_STS_*` value).
pub const fn classify(status: u8) -> ErrorClass {
    match status {
        BLK_STS_MEDIUM | BLK_STS_IOERR => ErrorClass::Medium,
        _ => ErrorClass::Other,
    }
}

/// Whether a unit whose I/O failed with `status` may be remapped (write) or marked pending
/// (read).
pub const fn may_be_medium(status: u8) -> bool {
    matches!(classify(status), ErrorClass::Medium)
}

/// What to do with a spare unit whose write just failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpareFailure {
    /// The unit's medium failed: mark it bad (never handed out again) and try another unit.
    MarkBad,
    /// Not the unit's fault (a non-medium status, or the spare device is failing as a whole):
    /// give the unit back unmarked and stop relocating; the write fails with the status.
    GiveBack,
}

/// The spare writes that failed in a row (reset by any spare write that succeeds), and the
/// decision it drives. The caller keeps the count (an atomic: successes are seen in `end_io`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpareWriteRun {
    /// Spare writes that failed since the last one that succeeded.
    pub failed: u32,
}

impl SpareWriteRun {
    /// Decides about a spare unit whose write failed with `status`, given the failures in a
    /// row *before* this one; returns the decision and the new count.
    pub const fn on_failure(self, status: u8) -> (SpareFailure, Self) {
        let next = Self { failed: self.failed.saturating_add(1) };
        let action = if may_be_medium(status) && next.failed <= MAX_BAD_IN_A_ROW {
            SpareFailure::MarkBad
        } else {
            SpareFailure::GiveBack
        };
        (action, next)
    }
}
