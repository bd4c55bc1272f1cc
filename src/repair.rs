// SPDX-License-Identifier: GPL-2.0

//! The worker's side of the target: finishing bios that `map` or `end_io` deferred, one unit
//! at a time, with synchronous I/O (pattern: `narrow_write_error()` in `drivers/md/raid1.c`).
//!
//! - Write: each unit goes where the table says; a unit that fails on main, or on its spare
//!   unit, gets a new spare unit, its data is written there, and only then is the remap
//!   recorded. Only failing units consume spare. The bio succeeds if every unit landed.
//! - Read: each unit is read again from where the table says; units that fail on main are
//!   marked pending and the bio fails (never invented data). If every unit reads on retry the
//!   data is genuine and the bio succeeds.

#![forbid(unsafe_code)]

use crate::dm::{BioOp, BlkStatus, DeferredBio, NoIoScope, RcuReadGuard, TargetInfo};
use crate::remap::{PerBio, Remap};
use crate::remap_core::remap_table::Entry;
use crate::stats::Stats;
use crate::table::TableWriter;
use kernel::prelude::*;

/// Spare units tried for one main unit before giving up (each failing one is marked bad).
const RELOCATE_ATTEMPTS: u32 = 3;

/// Why [`Remap::place_on_spare`] could not give a unit a spare unit.
pub(crate) enum PlaceError {
    /// No spare unit is left.
    SpareFull,
    /// Every spare unit tried failed its write.
    SpareFails,
    /// The remap could not be recorded in the table (no memory to grow it).
    NotRecorded,
}

impl Remap {
    /// Finishes a deferred bio unit by unit and completes it. A bio with `REQ_FUA` or
    /// `REQ_PREFLUSH` completes only once the remaps it caused are committed; if the commit
    /// fails it completes with `BLK_STS_IOERR` (its data is on the devices, but the caller
    /// must not believe it durable).
    pub(crate) fn finish_deferred(&self, ti: &TargetInfo, bio: DeferredBio<'_, PerBio>) {
        let _noio = NoIoScope::new();
        let first = self.layout.unit_of(bio.start());
        let units = u32::try_from(self.layout.unit_of(u64::from(bio.sectors()))).unwrap_or(0);
        let op = bio.op();
        let mut status = BlkStatus::OK;
        for i in 0..units {
            let offset = i.wrapping_shl(self.layout.unit_shift);
            let unit = first.saturating_add(u64::from(i));
            let result = match op {
                BioOp::Write => self.write_unit(ti, &bio, offset, unit),
                BioOp::Read => self.read_unit(ti, &bio, offset, unit),
                BioOp::Other => self.other_unit(&bio, offset, unit),
            };
            if !result.is_ok() {
                status = result;
            }
        }
        // A remap made above set the table dirty under the writer lock in this thread; it
        // reads clean again only once a commit (ours or another's) holds it.
        if (bio.is_fua() || bio.is_preflush()) && self.table.is_dirty() && self.commit(ti).is_err() {
            status = BlkStatus::IOERR;
        }
        bio.complete(status);
    }

    /// The entry of `unit` once no move of it is in progress: a `Moving` entry belongs to a
    /// table writer (a message) that holds the writer lock until the move ends, so taking the
    /// lock once waits for it.
    fn entry(&self, unit: u64) -> Option<Entry> {
        let lookup = || {
            let guard = RcuReadGuard::new();
            self.table.lookup(&guard, unit)
        };
        match lookup() {
            Some(Entry::Moving { .. }) => {
                drop(self.table.writer());
                lookup()
            }
            entry => entry,
        }
    }

    /// Sends the bio's unit at `offset` of another operation (write-zeroes, discard) where the
    /// table says, without remapping on failure.
    fn other_unit(&self, bio: &DeferredBio<'_, PerBio>, offset: u32, unit: u64) -> BlkStatus {
        let len = self.layout.unit_sectors;
        match self.entry(unit) {
            Some(Entry::Remapped { spare } | Entry::Moving { spare }) => {
                bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare))
            }
            _ => bio.io_part(&self.bioset, offset, len, &self.main, self.layout.sector_of(unit)),
        }
    }

    /// Writes the bio's unit at `offset` (sectors) for main unit `unit`.
    fn write_unit(&self, ti: &TargetInfo, bio: &DeferredBio<'_, PerBio>, offset: u32, unit: u64) -> BlkStatus {
        let len = self.layout.unit_sectors;
        match self.entry(unit) {
            None => {
                if bio.io_part(&self.bioset, offset, len, &self.main, self.layout.sector_of(unit)).is_ok() {
                    return BlkStatus::OK;
                }
                self.relocate(ti, bio, offset, unit, None)
            }
            Some(Entry::Remapped { spare } | Entry::Moving { spare }) => {
                if bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare)).is_ok() {
                    return BlkStatus::OK;
                }
                Stats::count(&self.stats.spare_errors);
                self.relocate(ti, bio, offset, unit, Some(spare))
            }
            Some(Entry::Pending) => self.relocate(ti, bio, offset, unit, None),
        }
    }

    /// Gives main unit `unit` a new spare unit holding the bio's data at `offset`, replacing
    /// `failed` (a spare unit that just failed, if any), and records the remap.
    fn relocate(
        &self,
        ti: &TargetInfo,
        bio: &DeferredBio<'_, PerBio>,
        offset: u32,
        unit: u64,
        failed: Option<u64>,
    ) -> BlkStatus {
        let len = self.layout.unit_sectors;
        let mut table = self.table.writer();
        // Another worker (or a message) may have remapped the unit while we waited.
        if let Some(Entry::Remapped { spare }) = table.lookup(unit) {
            if Some(spare) != failed {
                return bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare));
            }
        }
        let write = |spare: u64| bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare)).is_ok();
        match self.place_on_spare(ti, &mut table, unit, write) {
            Ok(_) => {
                if let Some(bad) = failed {
                    table.mark_bad(bad);
                }
                BlkStatus::OK
            }
            Err(_) => BlkStatus::IOERR,
        }
    }

    /// Gives main unit `unit` a new spare unit: allocates one, lets `write` put the unit's data
    /// there (given the spare unit, true on success), then records the remap. A spare unit whose
    /// write fails is marked bad and another is tried, up to [`RELOCATE_ATTEMPTS`]. Counts,
    /// logs (rate-limited) and raises a dm event when the spare is or becomes full. The caller
    /// holds the table writer; used by the worker and by the `remap` message.
    pub(crate) fn place_on_spare(
        &self,
        ti: &TargetInfo,
        table: &mut TableWriter<'_>,
        unit: u64,
        mut write: impl FnMut(u64) -> bool,
    ) -> Result<u64, PlaceError> {
        for _ in 0..RELOCATE_ATTEMPTS {
            let mut allocated = table.allocate();
            if allocated.is_err() && table.frees_held() > 0 {
                // The only free units are ones whose frees are not committed yet (never
                // reused before: a crash would map their old main units to our data). One
                // commit makes them reusable; if it fails they stay held.
                if self.commit_locked(ti, table).is_ok() {
                    allocated = table.allocate();
                }
            }
            let Ok(spare) = allocated else {
                self.stats.remap_failure();
                if self.log_limit.allow() {
                    pr_err!("{}: spare full, cannot remap sector {}\n", ti.device_name(), self.layout.sector_of(unit));
                }
                ti.raise_event();
                return Err(PlaceError::SpareFull);
            };
            if write(spare) {
                if table.set(unit, Entry::Remapped { spare }).is_err() {
                    table.free(spare);
                    self.stats.remap_failure();
                    return Err(PlaceError::NotRecorded);
                }
                if self.log_limit.allow() {
                    pr_warn!(
                        "{}: remapped sector {} to spare sector {}\n",
                        ti.device_name(),
                        self.layout.sector_of(unit),
                        self.layout.sector_of(spare)
                    );
                }
                crate::stats::Stats::count(&crate::module_state::REMAPS_MADE);
                return Ok(spare);
            }
            Stats::count(&self.stats.spare_errors);
            table.mark_bad(spare);
        }
        self.stats.remap_failure();
        Err(PlaceError::SpareFails)
    }

    /// Reads the bio's unit at `offset` for main unit `unit`; marks it pending if main fails.
    fn read_unit(&self, ti: &TargetInfo, bio: &DeferredBio<'_, PerBio>, offset: u32, unit: u64) -> BlkStatus {
        let len = self.layout.unit_sectors;
        if let Some(Entry::Remapped { spare } | Entry::Moving { spare }) = self.entry(unit) {
            let status = bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare));
            if !status.is_ok() {
                Stats::count(&self.stats.spare_errors);
            }
            return status;
        }
        let status = bio.io_part(&self.bioset, offset, len, &self.main, self.layout.sector_of(unit));
        if !status.is_ok() {
            let mut table = self.table.writer();
            if table.lookup(unit).is_none() && table.set(unit, Entry::Pending).is_ok() && self.log_limit.allow() {
                pr_warn!("{}: read error, sector {} pending\n", ti.device_name(), self.layout.sector_of(unit));
            }
        }
        status
    }
}
