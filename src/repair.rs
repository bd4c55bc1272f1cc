// SPDX-License-Identifier: GPL-2.0

//! The worker's side of the target: finishing bios that `map` or `end_io` deferred, one unit
//! at a time, with synchronous I/O (pattern: `narrow_write_error()` in `drivers/md/raid1.c`).
//!
//! - Write: each unit goes where the table says; a unit that fails on main, or on its spare
//!   unit, with a status that may mean the medium failed (`remap_core::io_error`) gets a new
//!   spare unit, its data is written there, and only then is the remap recorded. Only such
//!   failing units consume spare; other statuses are returned. The bio succeeds if every unit
//!   landed.
//! - Read: each unit is read again from where the table says; units that fail on main with a
//!   medium status are marked pending and the bio fails (never invented data). If every unit
//!   reads on retry the data is genuine and the bio succeeds.
//! - Spare outage: a spare unit whose write fails is marked bad only for a medium status and
//!   while fewer than `MAX_BAD_IN_A_ROW` spare writes in a row failed; otherwise it is given
//!   back and the relocation stops (`remap_core::io_error::SpareWriteRun`).

#![forbid(unsafe_code)]

use crate::dm::{BioOp, BlkStatus, DeferredBio, NoIoScope, RcuReadGuard, TargetInfo};
use crate::inflight::Counted;
use crate::remap::{PerBio, Remap};
use crate::remap_core::io_error::{SpareFailure, MAX_BAD_IN_A_ROW};
use crate::remap_core::remap_table::Entry;
use crate::stats::Stats;
use crate::table::TableWriter;
use kernel::prelude::*;

/// Spare units tried for one main unit before giving up (each failing one is marked bad).
const RELOCATE_ATTEMPTS: u32 = MAX_BAD_IN_A_ROW;

/// Why [`Remap::place_on_spare`] could not give a unit a spare unit.
pub(crate) enum PlaceError {
    /// No spare unit is left.
    SpareFull,
    /// Every spare unit tried failed its write, or the spare is failing as a whole; the
    /// status of the last failed write.
    SpareFails(BlkStatus),
    /// The remap could not be recorded in the table (no memory to grow it).
    NotRecorded,
    /// The metadata mode is `read_only`: no spare unit may be consumed.
    ReadOnly,
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
                BioOp::Other => self.other_unit(ti, &bio, offset, unit),
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

    /// The entry of `unit` once no move of it is in progress, and the count that keeps the
    /// I/O the caller sends by it in flight for movers ([`crate::inflight`]): counted before
    /// the lookup, as `map` does. A `Moving` entry belongs to a move, which holds the mover
    /// lock until it ends: wait for that (uncounted, or the move would wait for us) and look
    /// again.
    fn entry(&self, unit: u64) -> (Option<Entry>, Counted<'_>) {
        loop {
            let counted = self.inflight.count();
            let entry = {
                let guard = RcuReadGuard::new();
                self.table.lookup(&guard, unit)
            };
            if let Some(Entry::Moving { .. }) = entry {
                drop(counted);
                self.inflight.wait_for_move();
                continue;
            }
            return (entry, counted);
        }
    }

    /// The table writer once no move of `unit` is in progress (see [`Self::entry`]).
    fn writer_unmoved(&self, unit: u64) -> TableWriter<'_> {
        loop {
            let table = self.table.writer();
            if let Some(Entry::Moving { .. }) = table.lookup(unit) {
                drop(table);
                self.inflight.wait_for_move();
                continue;
            }
            return table;
        }
    }

    /// Sends the bio's unit at `offset` of another operation (write-zeroes, discard) where the
    /// table says, without remapping on failure. A write-zeroes heals a pending unit as a write
    /// does: the unit gets a spare unit, zeroed by the bio.
    fn other_unit(&self, ti: &TargetInfo, bio: &DeferredBio<'_, PerBio>, offset: u32, unit: u64) -> BlkStatus {
        let len = self.layout.unit_sectors;
        let (entry, counted) = self.entry(unit);
        match entry {
            Some(Entry::Remapped { spare } | Entry::Moving { spare }) => {
                bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare))
            }
            // In metadata mode read_only the unit stays pending and is zeroed on main.
            Some(Entry::Pending) if bio.is_write_zeroes() && self.table.metadata_mode().records_changes() => {
                drop(counted);
                self.relocate(ti, bio, offset, unit, None)
            }
            _ => bio.io_part(&self.bioset, offset, len, &self.main, self.layout.sector_of(unit)),
        }
    }

    /// Writes the bio's unit at `offset` (sectors) for main unit `unit`.
    fn write_unit(&self, ti: &TargetInfo, bio: &DeferredBio<'_, PerBio>, offset: u32, unit: u64) -> BlkStatus {
        let len = self.layout.unit_sectors;
        let (entry, counted) = self.entry(unit);
        // Uncounted before `relocate` takes the table writer: it revalidates the entry there.
        match entry {
            None => {
                let status = bio.io_part(&self.bioset, offset, len, &self.main, self.layout.sector_of(unit));
                drop(counted);
                if status.is_ok() || !status.may_be_medium() {
                    // Not the medium (timeout, transport, offline, no space, ...): no spare.
                    return status;
                }
                if !self.table.metadata_mode().records_changes() {
                    // Metadata read_only: the error is returned as it is (rechecked under the
                    // lock by `place_on_spare`).
                    self.not_recorded_read_only(ti, unit);
                    return status;
                }
                self.relocate(ti, bio, offset, unit, None)
            }
            Some(Entry::Remapped { spare } | Entry::Moving { spare }) => {
                let status = bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare));
                drop(counted);
                if status.is_ok() {
                    self.stats.spare_write_ok();
                    return status;
                }
                Stats::count(&self.stats.spare_errors);
                // Counted in the run of failed spare writes; the unit itself is only replaced
                // (and marked bad) once a new one holds the data.
                let _ = self.stats.spare_write_failed(status.raw());
                if !status.may_be_medium() {
                    return status;
                }
                self.relocate(ti, bio, offset, unit, Some(spare))
            }
            Some(Entry::Pending) if !self.table.metadata_mode().records_changes() => {
                // Metadata read_only: the unit stays pending and its data goes to main.
                let status = bio.io_part(&self.bioset, offset, len, &self.main, self.layout.sector_of(unit));
                drop(counted);
                if !status.is_ok() && status.may_be_medium() {
                    self.not_recorded_read_only(ti, unit);
                }
                status
            }
            Some(Entry::Pending) => {
                drop(counted);
                self.relocate(ti, bio, offset, unit, None)
            }
        }
    }

    /// Gives main unit `unit` a new spare unit holding the bio's data at `offset`, replacing
    /// `failed` (a spare unit that just failed, if any), and records the remap. The entry is
    /// looked at again under the table writer: it may have changed since the caller's I/O
    /// (another worker's or a message's remap, an `unremap`).
    fn relocate(
        &self,
        ti: &TargetInfo,
        bio: &DeferredBio<'_, PerBio>,
        offset: u32,
        unit: u64,
        failed: Option<u64>,
    ) -> BlkStatus {
        let len = self.layout.unit_sectors;
        let mut table = self.writer_unmoved(unit);
        let now = table.lookup(unit);
        // Another worker (or a message) may have remapped the unit while we waited.
        if let Some(Entry::Remapped { spare }) = now {
            if Some(spare) != failed {
                return bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare));
            }
        }
        // An `unremap` gave `failed` back to main (and freed it: it is no longer ours to mark
        // bad). The unit lives on main again: write there first, as for any unit.
        if failed.is_some() && now.is_none() {
            let status = bio.io_part(&self.bioset, offset, len, &self.main, self.layout.sector_of(unit));
            if status.is_ok() || !status.may_be_medium() {
                return status;
            }
        }
        let failed = failed.filter(|&f| now == Some(Entry::Remapped { spare: f }));
        let write = |spare: u64| bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare));
        match self.place_on_spare(ti, &mut table, unit, write) {
            Ok(_) => {
                if let Some(bad) = failed {
                    table.mark_bad(bad);
                }
                BlkStatus::OK
            }
            Err(PlaceError::SpareFails(status)) if !status.may_be_medium() => status,
            Err(_) => BlkStatus::IOERR,
        }
    }

    /// Gives main unit `unit` a new spare unit: allocates one, lets `write` put the unit's data
    /// there (given the spare unit, returns the write's status), then records the remap. A
    /// spare unit whose write fails is marked bad and another is tried, up to
    /// [`RELOCATE_ATTEMPTS`] — unless the status is not a medium failure or the spare fails as
    /// a whole (`Stats::spare_write_failed`): then the unit is given back and the relocation
    /// stops. Counts, logs (rate-limited) and raises a dm event when the spare is or becomes
    /// full. The caller holds the table writer; used by the worker and by the `remap` message.
    pub(crate) fn place_on_spare(
        &self,
        ti: &TargetInfo,
        table: &mut TableWriter<'_>,
        unit: u64,
        mut write: impl FnMut(u64) -> BlkStatus,
    ) -> Result<u64, PlaceError> {
        if !table.records_changes() {
            self.not_recorded_read_only(ti, unit);
            return Err(PlaceError::ReadOnly);
        }
        let mut last = BlkStatus::IOERR;
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
            let status = write(spare);
            if status.is_ok() {
                self.stats.spare_write_ok();
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
            last = status;
            match self.stats.spare_write_failed(status.raw()) {
                SpareFailure::MarkBad => table.mark_bad(spare),
                SpareFailure::GiveBack => {
                    // Not this unit's medium: it stays usable, nothing is recorded.
                    table.free(spare);
                    break;
                }
            }
        }
        self.stats.remap_failure();
        Err(PlaceError::SpareFails(last))
    }

    /// Reads the bio's unit at `offset` for main unit `unit`; marks it pending if main fails.
    fn read_unit(&self, ti: &TargetInfo, bio: &DeferredBio<'_, PerBio>, offset: u32, unit: u64) -> BlkStatus {
        let len = self.layout.unit_sectors;
        let (entry, counted) = self.entry(unit);
        if let Some(Entry::Remapped { spare } | Entry::Moving { spare }) = entry {
            let status = bio.io_part(&self.bioset, offset, len, &self.spare, self.layout.sector_of(spare));
            if !status.is_ok() {
                Stats::count(&self.stats.spare_errors);
            }
            return status;
        }
        let status = bio.io_part(&self.bioset, offset, len, &self.main, self.layout.sector_of(unit));
        drop(counted);
        // Only a failure that may be the medium's marks the unit pending.
        if status.may_be_medium() {
            let mut table = self.table.writer();
            // In metadata mode read_only nothing new is recorded: the error is returned only.
            if table.records_changes()
                && table.lookup(unit).is_none()
                && table.set(unit, Entry::Pending).is_ok()
                && self.log_limit.allow()
            {
                pr_warn!("{}: read error, sector {} pending\n", ti.device_name(), self.layout.sector_of(unit));
            }
        }
        status
    }
}
