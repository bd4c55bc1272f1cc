// SPDX-License-Identifier: GPL-2.0

//! Tracking of writes in flight in two epochs, so that a writer of the remap table can wait
//! until every write that may have been routed by the table's previous state has completed
//! (the idea of SRCU, reduced to two counters).
//!
//! `map` calls [`InflightWrites::enter`] before it looks the table up, `end_io` calls
//! [`InflightWrites::exit`]. A table writer changes the table, then calls
//! [`InflightWrites::wait_older`]: it flips the epoch and waits for the old epoch's count to
//! drain. All accesses are sequentially consistent, so a write either entered before the wait
//! read the old count (and is waited for) or looked the table up after the change.

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// Two epochs of in-flight write counts.
#[derive(Default)]
pub(crate) struct InflightWrites {
    epoch: AtomicU64,
    count: [AtomicU64; 2],
}

impl InflightWrites {
    /// Counts a write in the current epoch; returns the epoch to pass to `exit`.
    pub(crate) fn enter(&self) -> u8 {
        let epoch = (self.epoch.load(SeqCst) & 1) as u8;
        self.counter(epoch).fetch_add(1, SeqCst);
        epoch
    }

    /// Uncounts a write that entered in `epoch`.
    pub(crate) fn exit(&self, epoch: u8) {
        self.counter(epoch).fetch_sub(1, SeqCst);
    }

    fn counter(&self, epoch: u8) -> &AtomicU64 {
        if epoch & 1 == 0 {
            &self.count[0]
        } else {
            &self.count[1]
        }
    }

    /// Waits until every write counted before this call has exited, sleeping about 1 ms
    /// between looks, for at most `timeout_ms` milliseconds of wall time (a deadline on the
    /// monotonic clock: one `msleep(1)` lasts at least two jiffies, 8 ms at HZ=250, so a count
    /// of sleeps would wait many times longer). Callers serialise (the table writer lock).
    /// Returns whether the writes drained in time.
    pub(crate) fn wait_older(&self, timeout_ms: u32) -> bool {
        let old = (self.epoch.fetch_add(1, SeqCst) & 1) as u8;
        let deadline = crate::dm::now_ms().saturating_add(u64::from(timeout_ms));
        while self.counter(old).load(SeqCst) != 0 {
            if crate::dm::now_ms() >= deadline {
                return false;
            }
            crate::dm::sleep_ms(1);
        }
        true
    }
}
