// SPDX-License-Identifier: GPL-2.0

//! `dmsetup message` verbs of dm-remap-v4 (grammar in `remap_core::message`, documented in
//! `docs/messages.md`). Runs in process context: may sleep, take the table lock, do I/O.

#![forbid(unsafe_code)]

use crate::dm::{Arg, BioOp, NoIoScope, PageBuffer, ResultBuffer, TargetError, TargetInfo};
use crate::remap::Remap;
use crate::repair::PlaceError;
use crate::remap_core::inflight::Drain;
use crate::remap_core::message::{self, Message, MessageError, HELP};
use crate::remap_core::remap_table::Entry;
use crate::remap_core::status;
use crate::stats::Stats;
use core::ffi::CStr;
use core::fmt::Write;
use kernel::prelude::*;

/// How long a move (`remap`, `unremap`) waits for I/O already sent before giving up (a
/// SCSI command's default timeout: a write still out after it is lost to the device anyway).
const DRAIN_TIMEOUT_MS: u32 = 30_000;

fn refuse(e: MessageError) -> TargetError {
    TargetError::invalid(e.message())
}

fn failed(message: &'static CStr, errno: Error) -> TargetError {
    TargetError { message, errno }
}

impl Remap {
    /// Parses and runs one message; output goes to `out`.
    pub(crate) fn handle_message(
        &self,
        ti: &TargetInfo,
        args: &[Arg<'_>],
        out: &mut ResultBuffer<'_>,
    ) -> Result<(), TargetError> {
        let result = message::parse(args, ti.len()).map_err(refuse).and_then(|m| self.run(ti, m, out));
        self.check_health(ti);
        if let Err(e) = &result {
            if self.log_limit.allow() {
                // Debug formatting keeps CStr length arithmetic out of this crate (no panic path).
                pr_warn!("{}: message refused: {:?}\n", ti.device_name(), e.message);
            }
        }
        result
    }

    fn run(&self, ti: &TargetInfo, m: Message, out: &mut ResultBuffer<'_>) -> Result<(), TargetError> {
        // A full buffer makes dm retry with a larger one, so write errors are not failures.
        match m {
            Message::Remap { sector } => self.remap_unit(ti, self.layout.unit_of(sector), out),
            Message::Unremap { sector } => self.unremap_unit(ti, self.layout.unit_of(sector), out),
            Message::ClearPending { sector } => {
                let mut table = self.table.writer();
                self.require_writable(&table)?;
                let unit = self.layout.unit_of(sector);
                if table.lookup(unit) == Some(Entry::Pending) {
                    table.remove(unit);
                }
                Ok(())
            }
            Message::List { start, count } => {
                let _noio = NoIoScope::new();
                let entries = self
                    .table
                    .entries_from(self.layout.unit_of(start))
                    .map_err(|e| failed(c"Cannot allocate the list", e))?;
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                for &(unit, entry) in entries.as_slice().iter().take(count) {
                    let written = match entry {
                        Entry::Remapped { spare } | Entry::Moving { spare } => writeln!(out, "{} {}", self.layout.sector_of(unit), self.layout.sector_of(spare)),
                        Entry::Pending => writeln!(out, "{} pending", self.layout.sector_of(unit)),
                    };
                    if written.is_err() {
                        break;
                    }
                }
                Ok(())
            }
            Message::Scan(command) => {
                self.scan_command(ti, command);
                Ok(())
            }
            Message::Stats => {
                let _ = status::write_stats(out, &self.counters());
                Ok(())
            }
            Message::ClearStats => {
                self.stats.clear();
                Ok(())
            }
            Message::Commit => self
                .commit(ti)
                .map_err(|e| failed(c"Metadata commit failed", e)),
            Message::Help => {
                let _ = out.write_str(HELP);
                Ok(())
            }
        }
    }

    /// `remap`: moves main unit `unit` to a spare unit now, copying its data if main reads it,
    /// else leaves it pending. Output: `<sector> <spare_sector>` or `<sector> pending`.
    ///
    /// # Errors
    /// `EBUSY` if I/O in flight did not complete within [`DRAIN_TIMEOUT_MS`] or the device
    /// began suspending, or if the unit changed during the copy; `ENOSPC`, `EIO`, `ENOMEM` as
    /// [`Remap::place_on_spare`] fails.
    fn remap_unit(&self, ti: &TargetInfo, unit: u64, out: &mut ResultBuffer<'_>) -> Result<(), TargetError> {
        let sector = self.layout.sector_of(unit);
        let _noio = NoIoScope::new();
        let mover = self.inflight.begin_move();
        let before = {
            let mut table = self.table.writer();
            self.require_writable(&table)?;
            let before = table.lookup(unit);
            if let Some(Entry::Remapped { spare } | Entry::Moving { spare }) = before {
                let _ = writeln!(out, "{} {}", sector, self.layout.sector_of(spare));
                return Ok(());
            }
            // Pending sends new writes of the unit to the worker, which gives it a spare unit
            // with their data; then wait for I/O already sent, so that the copy of main is
            // the unit's final data.
            if before.is_none() {
                table.set(unit, Entry::Pending).map_err(|e| failed(c"Cannot record the remap", e))?;
            }
            before
        };
        if let Err(e) = drained(mover.wait_older(DRAIN_TIMEOUT_MS)) {
            if before.is_none() {
                let mut table = self.table.writer();
                if table.lookup(unit) == Some(Entry::Pending) {
                    table.remove(unit);
                }
            }
            return Err(e);
        }
        let mut page = PageBuffer::new().map_err(|e| failed(c"Cannot allocate a buffer", e))?;
        let bytes = self.layout.unit_sectors << 9;
        if !page.io(&self.main, sector, bytes, BioOp::Read, false).is_ok() {
            self.stats.read_error();
            let _ = writeln!(out, "{} pending", sector);
            return Ok(());
        }
        let mut table = self.table.writer();
        match table.lookup(unit) {
            Some(Entry::Pending) => {}
            // A write healed the unit during the copy: its data is newer than ours.
            Some(Entry::Remapped { spare } | Entry::Moving { spare }) => {
                let _ = writeln!(out, "{} {}", sector, self.layout.sector_of(spare));
                return Ok(());
            }
            // `clear_pending` ran during the copy.
            None => return Err(failed(c"Sector changed during the copy, try again", EBUSY)),
        }
        let write = |spare: u64| page.io(&self.spare, self.layout.sector_of(spare), bytes, BioOp::Write, true);
        match self.place_on_spare(ti, &mut table, unit, write) {
            Ok(spare) => {
                let _ = writeln!(out, "{} {}", sector, self.layout.sector_of(spare));
                Ok(())
            }
            Err(PlaceError::SpareFull) => Err(failed(c"Spare device full", ENOSPC)),
            Err(PlaceError::SpareFails(_)) => Err(failed(c"Spare device fails", EIO)),
            Err(PlaceError::NotRecorded) => Err(failed(c"Cannot record the remap", ENOMEM)),
            Err(PlaceError::ReadOnly) => Err(failed(c"Metadata is read-only after a failed commit", EROFS)),
        }
    }

    /// `unremap`: copies main unit `unit` back from its spare unit and drops the remap, if
    /// main accepts the write; the spare unit is freed. Output: `<sector>`.
    ///
    /// # Errors
    /// `EINVAL` if the unit is not remapped; `EBUSY` as for `remap`; `EIO` if the spare unit
    /// cannot be read or main does not take the write; `ENOMEM`. The remap stays on error.
    fn unremap_unit(&self, _ti: &TargetInfo, unit: u64, out: &mut ResultBuffer<'_>) -> Result<(), TargetError> {
        let sector = self.layout.sector_of(unit);
        let _noio = NoIoScope::new();
        let mover = self.inflight.begin_move();
        let spare = {
            let mut table = self.table.writer();
            self.require_writable(&table)?;
            let Some(Entry::Remapped { spare }) = table.lookup(unit) else {
                return Err(failed(c"Sector is not remapped", EINVAL));
            };
            // Moving sends all new I/O of the unit to the worker, which waits for the move
            // (the mover lock) to end; then wait for I/O already sent to the spare unit, so
            // that the copy is final and no read still uses the unit when it is freed.
            table.set(unit, Entry::Moving { spare }).map_err(|e| failed(c"Cannot record the change", e))?;
            spare
        };
        // Only the mover changes a `Moving` entry, so it is still ours; an update in place
        // cannot fail (no resize, a unit and spare unit the table holds): the unit never
        // stays `Moving`.
        let back_out = |message, errno| {
            let _ = self.table.writer().set(unit, Entry::Remapped { spare });
            Err(failed(message, errno))
        };
        if let Err(e) = drained(mover.wait_older(DRAIN_TIMEOUT_MS)) {
            return back_out(e.message, e.errno);
        }
        let Ok(mut page) = PageBuffer::new() else {
            return back_out(c"Cannot allocate a buffer", ENOMEM);
        };
        let bytes = self.layout.unit_sectors << 9;
        if !page.io(&self.spare, self.layout.sector_of(spare), bytes, BioOp::Read, false).is_ok() {
            Stats::count(&self.stats.spare_errors);
            return back_out(c"Cannot read the spare unit", EIO);
        }
        if !page.io(&self.main, sector, bytes, BioOp::Write, true).is_ok() {
            self.stats.write_error();
            return back_out(c"Main device still fails at this sector", EIO);
        }
        let mut table = self.table.writer();
        table.remove(unit);
        table.free(spare);
        let _ = writeln!(out, "{}", sector);
        Ok(())
    }
}

/// The refusal of a move whose wait for I/O in flight did not end in a drain.
fn drained(outcome: Drain) -> Result<(), TargetError> {
    match outcome {
        Drain::Drained => Ok(()),
        Drain::TimedOut => Err(failed(c"Writes in flight did not complete", EBUSY)),
        Drain::Cancelled => Err(failed(c"Device is suspending", EBUSY)),
    }
}
