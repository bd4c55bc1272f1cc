// SPDX-License-Identifier: GPL-2.0

//! Error counters of one target, updated from any context without locks.

#![forbid(unsafe_code)]

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
}

impl Stats {
    /// Adds one to `counter`.
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Sets every counter to zero.
    pub(crate) fn clear(&self) {
        for c in [&self.read_errors, &self.write_errors, &self.spare_errors, &self.remap_failures] {
            c.store(0, Ordering::Relaxed);
        }
    }
}
