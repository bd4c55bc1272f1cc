// SPDX-License-Identifier: GPL-2.0

//! Counting I/O in flight in two epochs, so that a writer of the remap table can wait until
//! every bio that may have been routed by the table's previous state has completed: the idea
//! of SRCU (`kernel/rcu/srcutree.c`), reduced to two counters and a wait bounded in time.
//!
//! A reader (`map`, or the worker before it looks a unit up) calls [`InflightIo::enter`]
//! before the lookup and [`InflightIo::exit`] once its I/O completed. A table writer changes
//! the table, then calls [`InflightIo::wait_older`]: it flips the epoch and waits for the old
//! epoch's count to drain. All accesses are sequentially consistent, so an I/O either entered
//! before the wait read the old count (and is waited for) or looked the table up after the
//! change.
//!
//! Two windows that a plain "load the epoch, count in it" scheme leaves open are closed here:
//! - a reader that loaded the epoch, then was overtaken by a flip before it counted itself,
//!   would count in an epoch that a later writer takes for the new one and not wait for
//!   (`enter` checks the epoch again after counting, and moves if it changed, as
//!   `srcu_read_lock` pairs with the grace period's flip);
//! - a wait that gave up leaves I/O counted in the old epoch, which the next flip makes the
//!   current one again (`wait_older` first waits for that epoch to drain, as SRCU's grace
//!   period waits for both of its indexes).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

/// The epoch an I/O was counted in, to give back to [`InflightIo::exit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u8);

/// How a [`InflightIo::wait_older`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every I/O counted before the call completed.
    Drained,
    /// The deadline passed first.
    TimedOut,
    /// [`InflightIo::cancel_waits`] asked waits to stop (the device is being suspended).
    Cancelled,
}

/// Time as the waiter sees it: a monotonic clock and a sleep.
pub trait Clock {
    /// Milliseconds on a monotonic clock.
    fn now_ms(&self) -> u64;
    /// Sleeps about one millisecond (at least; at most a few jiffies).
    fn sleep_a_little(&self);
}

/// Two epochs of in-flight I/O counts.
#[derive(Default)]
pub struct InflightIo {
    epoch: AtomicU64,
    count: [AtomicU64; 2],
    cancelled: AtomicBool,
}

impl InflightIo {
    /// Counts an I/O in the current epoch. Never blocks: it retries only when a writer
    /// flipped the epoch between its two looks, at most once per flip.
    pub fn enter(&self) -> Epoch {
        self.enter_observed(|| {})
    }

    /// [`Self::enter`], calling `between` after the epoch is read and before the count is
    /// taken (the window the re-check closes; tests run writers there).
    fn enter_observed(&self, mut between: impl FnMut()) -> Epoch {
        loop {
            let epoch = self.epoch.load(SeqCst);
            between();
            let counter = self.counter(epoch);
            counter.fetch_add(1, SeqCst);
            if self.epoch.load(SeqCst) == epoch {
                return Epoch(parity(epoch));
            }
            // A flip came in between: this count may be in the epoch a writer now waits on
            // or, worse, in the one the next writer will take for the current one.
            counter.fetch_sub(1, SeqCst);
        }
    }

    /// Uncounts an I/O that entered in `epoch`.
    pub fn exit(&self, epoch: Epoch) {
        self.counter(u64::from(epoch.0)).fetch_sub(1, SeqCst);
    }

    fn counter(&self, epoch: u64) -> &AtomicU64 {
        let [even, odd] = &self.count;
        if epoch & 1 == 0 {
            even
        } else {
            odd
        }
    }

    /// Waits until every I/O counted before this call has exited, sleeping between looks,
    /// for at most `timeout_ms` milliseconds of `clock` time (a deadline, not a count of
    /// sleeps: a sleep of "1 ms" lasts a jiffy or two). Callers serialise (one waiter at a
    /// time). Returns [`Drain::Cancelled`] early once [`Self::cancel_waits`] was called with
    /// `true` and I/O is still counted.
    pub fn wait_older(&self, clock: &impl Clock, timeout_ms: u32) -> Drain {
        let deadline = clock.now_ms().saturating_add(u64::from(timeout_ms));
        let current = self.epoch.load(SeqCst);
        // I/O left over from a wait that gave up still counts in the epoch the flip below
        // makes current again; it was routed by an older table state, so it is waited for.
        let leftover = self.wait_zero(self.counter(current.wrapping_add(1)), clock, deadline);
        if leftover != Drain::Drained {
            return leftover;
        }
        self.epoch.fetch_add(1, SeqCst);
        self.wait_zero(self.counter(current), clock, deadline)
    }

    fn wait_zero(&self, counter: &AtomicU64, clock: &impl Clock, deadline: u64) -> Drain {
        while counter.load(SeqCst) != 0 {
            if self.cancelled.load(SeqCst) {
                return Drain::Cancelled;
            }
            if clock.now_ms() >= deadline {
                return Drain::TimedOut;
            }
            clock.sleep_a_little();
        }
        Drain::Drained
    }

    /// Makes waits give up (`true`, the device is being suspended: dm waits for a running
    /// message before it can suspend) or wait again (`false`, on resume).
    pub fn cancel_waits(&self, cancel: bool) {
        self.cancelled.store(cancel, SeqCst);
    }
}

fn parity(epoch: u64) -> u8 {
    (epoch & 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    /// A clock that advances 1 ms per sleep and never really sleeps.
    #[derive(Default)]
    struct FakeClock {
        now: Cell<u64>,
    }

    impl Clock for FakeClock {
        fn now_ms(&self) -> u64 {
            self.now.get()
        }
        fn sleep_a_little(&self) {
            self.now.set(self.now.get() + 1);
        }
    }

    #[test]
    fn no_io_drains_at_once() {
        let io = InflightIo::default();
        let clock = FakeClock::default();
        assert_eq!(io.wait_older(&clock, 0), Drain::Drained);
        assert_eq!(clock.now_ms(), 0);
    }

    #[test]
    fn io_entered_before_is_waited_for_until_the_deadline() {
        let io = InflightIo::default();
        let clock = FakeClock::default();
        let _e = io.enter();
        assert_eq!(io.wait_older(&clock, 30), Drain::TimedOut);
        assert_eq!(clock.now_ms(), 30);
    }

    /// While a wait sleeps, the old I/O completes and new I/O starts: the new I/O looked the
    /// table up after the change, so the wait ends.
    #[test]
    fn io_entered_during_the_wait_is_not_waited_for() {
        struct Traffic<'a> {
            io: &'a InflightIo,
            old: Cell<Option<Epoch>>,
            new: Cell<Option<Epoch>>,
            now: Cell<u64>,
        }
        impl Clock for Traffic<'_> {
            fn now_ms(&self) -> u64 {
                self.now.get()
            }
            fn sleep_a_little(&self) {
                self.now.set(self.now.get() + 1);
                if let Some(e) = self.old.take() {
                    self.io.exit(e);
                    self.new.set(Some(self.io.enter()));
                }
            }
        }
        let io = InflightIo::default();
        let traffic = Traffic { io: &io, old: Cell::new(Some(io.enter())), new: Cell::new(None), now: Cell::new(0) };
        assert_eq!(io.wait_older(&traffic, 100), Drain::Drained);
        assert_eq!(traffic.now_ms(), 1);
        assert!(traffic.new.get().is_some());
    }

    #[test]
    fn exited_io_no_longer_counts() {
        let io = InflightIo::default();
        let clock = FakeClock::default();
        let e = io.enter();
        io.exit(e);
        assert_eq!(io.wait_older(&clock, 0), Drain::Drained);
    }

    /// A reader overtaken by a flip between reading the epoch and counting itself must still
    /// be waited for by the next writer (the reader may look the table up before that
    /// writer's change).
    #[test]
    fn reader_overtaken_by_a_flip_is_waited_for_by_the_next_writer() {
        let io = InflightIo::default();
        let clock = FakeClock::default();
        let mut flipped = false;
        let _reader = io.enter_observed(|| {
            if !flipped {
                flipped = true;
                // A first writer flips and finds nothing to wait for.
                assert_eq!(io.wait_older(&clock, 0), Drain::Drained);
            }
        });
        assert_eq!(io.wait_older(&clock, 10), Drain::TimedOut, "the second writer must wait for the reader");
    }

    /// I/O left in flight by a wait that timed out is still waited for by the next wait,
    /// whose flip makes its epoch current again.
    #[test]
    fn leftover_of_a_timed_out_wait_is_waited_for() {
        let io = InflightIo::default();
        let clock = FakeClock::default();
        let straggler = io.enter();
        assert_eq!(io.wait_older(&clock, 3), Drain::TimedOut);
        assert_eq!(io.wait_older(&clock, 3), Drain::TimedOut, "the straggler was routed by an old state");
        io.exit(straggler);
        assert_eq!(io.wait_older(&clock, 3), Drain::Drained);
    }

    #[test]
    fn cancelled_waits_give_up_but_an_empty_epoch_still_drains() {
        let io = InflightIo::default();
        let clock = FakeClock::default();
        io.cancel_waits(true);
        assert_eq!(io.wait_older(&clock, 1000), Drain::Drained, "nothing in flight");
        let e = io.enter();
        assert_eq!(io.wait_older(&clock, 1000), Drain::Cancelled);
        assert_eq!(clock.now_ms(), 0, "gave up without sleeping");
        io.cancel_waits(false);
        io.exit(e);
        assert_eq!(io.wait_older(&clock, 1000), Drain::Drained);
    }

    #[test]
    fn many_flips_keep_the_counts_balanced() {
        let io = InflightIo::default();
        let clock = FakeClock::default();
        for round in 0..100u64 {
            let epochs: [Epoch; 3] = [io.enter(), io.enter(), io.enter()];
            if round % 3 == 0 {
                assert_eq!(io.wait_older(&clock, 1), Drain::TimedOut);
            }
            for e in epochs {
                io.exit(e);
            }
            assert_eq!(io.wait_older(&clock, 1), Drain::Drained);
        }
    }
}
