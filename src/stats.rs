// SPDX-License-Identifier: GPL-2.0

//! Error counters of one target, updated from any context without locks.

#![forbid(unsafe_code)]

use crate::module_state;
use crate::remap_core::io_error::{SpareFailure, SpareWriteRun};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Counts of errors seen since creation (or the last `clear_stats`).
#[derive(Default)]
pub(crate) struct Stats {
    /// Reads that failed on either device.
    pub(crate) read_errors: AtomicU64,
    /// Writes that failed on either device.
    pub(crate) write_errors: AtomicU64,
    /// I/O errors of the spare device.
    pub(crate) spare_errors: AtomicU64,
    /// Errors that could not be remapped (spare full or failing).
    pub(crate) remap_failures: AtomicU64,
    /// Metadata copies rewritten because they were damaged or stale.
    pub(crate) metadata_repairs: AtomicU64,
    /// Failed metadata writes (whole commits or single copies).
    pub(crate) metadata_errors: AtomicU64,
    /// Sequence number of the last commit and copies holding it, published for status.
    pub(crate) metadata_seq: AtomicU64,
    pub(crate) metadata_copies: AtomicU64,
    /// Spare writes that failed since the last one that succeeded (not a statistic: the state
    /// of the spare-outage rule, `remap_core::io_error::SpareWriteRun`; never cleared).
    spare_write_run: AtomicU32,
}

impl Stats {
    /// Adds one to `counter`.
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a read error here and module-wide.
    pub(crate) fn read_error(&self) {
        Self::count(&self.read_errors);
        Self::count(&module_state::READ_ERRORS);
    }

    /// Counts a write error here and module-wide.
    pub(crate) fn write_error(&self) {
        Self::count(&self.write_errors);
        Self::count(&module_state::WRITE_ERRORS);
    }

    /// Counts an error that could not be remapped, here and module-wide.
    pub(crate) fn remap_failure(&self) {
        Self::count(&self.remap_failures);
        Self::count(&module_state::REMAP_FAILURES);
    }

    /// Reads `counter`.
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A write to the spare succeeded: the spare is not failing as a whole. Any context.
    pub(crate) fn spare_write_ok(&self) {
        // Read first: successful spare writes are frequent, failures rare.
        if self.spare_write_run.load(Ordering::Relaxed) != 0 {
            self.spare_write_run.store(0, Ordering::Relaxed);
        }
    }

    /// A write to spare unit failed with `status` (a `BLK_STS_*` value): counts it in the run
    /// and says whether the unit is to be marked bad or given back. Any context.
    pub(crate) fn spare_write_failed(&self, status: u8) -> SpareFailure {
        let run = SpareWriteRun { failed: self.spare_write_run.load(Ordering::Relaxed) };
        let (action, next) = run.on_failure(status);
        // A success racing with this store is lost, which only makes the run one longer.
        self.spare_write_run.store(next.failed, Ordering::Relaxed);
        action
    }

    /// Sets the error counters to zero (not the metadata state).
    pub(crate) fn clear(&self) {
        for c in [&self.read_errors, &self.write_errors, &self.spare_errors, &self.remap_failures] {
            c.store(0, Ordering::Relaxed);
        }
    }
}
