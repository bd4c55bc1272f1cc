// SPDX-License-Identifier: GPL-2.0

//! Error counters of one target, updated from any context without locks.

#![forbid(unsafe_code)]

use crate::module_state;
use core::sync::atomic::{AtomicU64, Ordering};

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

    /// Sets the error counters to zero (not the metadata state).
    pub(crate) fn clear(&self) {
        for c in [&self.read_errors, &self.write_errors, &self.spare_errors, &self.remap_failures] {
            c.store(0, Ordering::Relaxed);
        }
    }
}
