// SPDX-License-Identifier: GPL-2.0

//! The I/O a target has in flight, and the moves of units (the `remap` and `unremap`
//! messages) that wait for it.
//!
//! Every data bio `map` routes, and every unit the worker sends, is counted from before its
//! table lookup until its I/O completed ([`InflightIo`], two epochs as in SRCU). A move
//! changes the unit's entry (`Pending` or `Moving`), then waits for the I/O counted before the
//! change ([`Mover::wait_older`]) before it copies the unit: every write the copy must carry
//! has landed, and no read still uses a spare unit about to be freed.
//!
//! A move holds the mover lock from start to end, but not the table writer lock while it
//! waits: flushes and commits go on meanwhile. Bios of a `Moving` unit wait for the move to
//! end on the mover lock ([`Inflight::wait_for_move`]).

#![forbid(unsafe_code)]

use crate::remap_core::inflight::{Clock, Drain, Epoch, InflightIo};
use core::pin::Pin;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{lock::mutex::MutexBackend, lock::Guard, Mutex};

/// The kernel's monotonic clock and `msleep(1)`.
struct KernelClock;

impl Clock for KernelClock {
    fn now_ms(&self) -> u64 {
        crate::dm::now_ms()
    }
    fn sleep_a_little(&self) {
        crate::dm::sleep_ms(1);
    }
}

/// In-flight I/O counts and the mover lock of one target.
pub(crate) struct Inflight {
    io: InflightIo,
    mover: Pin<KBox<Mutex<()>>>,
}

/// One counted I/O of the worker; uncounted when dropped.
pub(crate) struct Counted<'a> {
    io: &'a InflightIo,
    epoch: Epoch,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.io.exit(self.epoch);
    }
}

/// The right to move units, held for a whole move.
pub(crate) struct Mover<'a> {
    io: &'a InflightIo,
    _lock: Guard<'a, (), MutexBackend>,
}

impl Mover<'_> {
    /// Waits (sleeping) until every I/O counted before this call completed, for at most
    /// `timeout_ms` milliseconds of wall time, or until the device starts suspending.
    pub(crate) fn wait_older(&self, timeout_ms: u32) -> Drain {
        self.io.wait_older(&KernelClock, timeout_ms)
    }
}

impl Inflight {
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self { io: InflightIo::default(), mover: KBox::pin_init(new_mutex!((), "dm_remap_mover"), GFP_KERNEL)? })
    }

    /// Counts a bio routed by `map` (any context); give the epoch back to [`Self::exit`].
    pub(crate) fn enter(&self) -> Epoch {
        self.io.enter()
    }

    /// Uncounts a bio that entered in `epoch`.
    pub(crate) fn exit(&self, epoch: Epoch) {
        self.io.exit(epoch);
    }

    /// Counts one I/O of the worker until the returned value is dropped.
    pub(crate) fn count(&self) -> Counted<'_> {
        Counted { io: &self.io, epoch: self.io.enter() }
    }

    /// Takes the mover lock (sleeps while another move runs).
    pub(crate) fn begin_move(&self) -> Mover<'_> {
        Mover { io: &self.io, _lock: self.mover.lock() }
    }

    /// Sleeps until the move running now, if any, has ended.
    pub(crate) fn wait_for_move(&self) {
        drop(self.mover.lock());
    }

    /// Makes a move's wait give up at once (`true`: the device is suspending, and dm waits
    /// for a running message before it can), or wait again (`false`).
    pub(crate) fn cancel_waits(&self, cancel: bool) {
        self.io.cancel_waits(cancel);
    }
}
