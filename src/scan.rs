// SPDX-License-Identifier: GPL-2.0

//! The background health scan of one target (schedule and budget: `remap_core::scan`;
//! behaviour: `docs/scan.md`).
//!
//! Each run of the target's background work reads a few 64 KiB chunks of the main device
//! with synchronous reads, skipping remapped and pending units; a failing read is narrowed
//! to its units and each unit that fails is marked pending, as a failed foreground
//! read would. Remapped units are read on the spare instead, to find spare units that went
//! bad. At the end of a pass the metadata copies are compared with the in-memory state and
//! damaged ones rewritten.
//!
//! The control state sits behind a mutex held only for bookkeeping, never across I/O: a run
//! takes a snapshot, reads, and writes its progress back only if no message changed the state
//! meanwhile (the generation number says so).

#![forbid(unsafe_code)]

use crate::dm::{BioOp, NoIoScope, PageBuffer, RcuReadGuard, TargetInfo, MAX_BUFFER_PAGES};
use crate::persist::{CopyReader, Verdict};
use crate::remap::Remap;
use crate::remap_core::message::ScanCommand;
use crate::remap_core::metadata::COPIES;
use crate::remap_core::remap_table::Entry;
use crate::remap_core::scan::{self as plan, ScanReport, ScanState};
use crate::remap_core::sysfs::Setting;
use crate::module_state;
use crate::stats::Stats;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Wait before continuing a pass after the device resumed, in ms.
const RESUME_DELAY_MS: u32 = 1000;

/// What messages and the background work share.
struct Control {
    /// Scanning is enabled (`scan start`/`stop`, default from the module setting).
    enabled: bool,
    /// `scan now` asked for one pass while scanning is disabled.
    one_pass: bool,
    /// A pass is in progress (possibly paused by `scan stop`).
    in_pass: bool,
    /// The device is active (between resume and suspend).
    active: bool,
    /// Bumped by every message: a run that started before discards its progress.
    generation: u64,
    /// Next sector of the pass.
    position: u64,
    pass_started_ms: u64,
    /// Units the current pass found failing.
    pass_errors: u64,
    /// When the next pass starts (ms since boot), while idle.
    next_pass_ms: u64,
    passes: u64,
    last_pass_s: u64,
    rate_kib: u32,
    interval_s: u32,
}

/// One target's scan state.
pub(crate) struct Scanner {
    control: Pin<KBox<Mutex<Control>>>,
    /// Units the scan marked pending since activation (read lock-free by reports).
    errors: AtomicU64,
    /// Jiffies of the last foreground bio `map` saw (one store per jiffy at most).
    last_io: AtomicU64,
    /// `last_io` as the previous run saw it: a change means foreground I/O in between.
    seen_io: AtomicU64,
}

impl Scanner {
    /// A scanner with the module-wide defaults.
    ///
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn new() -> Result<Self> {
        let control = Control {
            enabled: module_state::SCAN_ENABLED.load(Relaxed),
            one_pass: false,
            in_pass: false,
            active: false,
            generation: 0,
            position: 0,
            pass_started_ms: 0,
            pass_errors: 0,
            next_pass_ms: 0,
            passes: 0,
            last_pass_s: 0,
            rate_kib: module_state::SCAN_RATE_KIB.load(Relaxed),
            interval_s: module_state::SCAN_INTERVAL_S.load(Relaxed),
        };
        Ok(Self {
            control: KBox::pin_init(new_mutex!(control, "dm_remap_scan"), GFP_KERNEL)?,
            errors: AtomicU64::new(0),
            last_io: AtomicU64::new(0),
            seen_io: AtomicU64::new(0),
        })
    }

    /// Notes foreground I/O (called by `map` for every bio): at most one store per jiffy.
    pub(crate) fn note_io(&self) {
        let now = crate::dm::jiffies();
        if self.last_io.load(Relaxed) != now {
            self.last_io.store(now, Relaxed);
        }
    }

    /// The scan's progress for status, sysfs and /proc; `total` is the target's length.
    pub(crate) fn report(&self, total: u64) -> ScanReport {
        let c = self.control.lock();
        let state = if c.in_pass && (c.enabled || c.one_pass) {
            ScanState::Scanning
        } else if c.enabled {
            ScanState::Idle
        } else {
            ScanState::Off
        };
        ScanReport {
            state,
            position: if c.in_pass { c.position } else { 0 },
            total,
            passes: c.passes,
            errors: self.errors.load(Relaxed),
            last_pass_s: c.last_pass_s,
            rate_kib: c.rate_kib,
            interval_s: c.interval_s,
        }
    }

    /// Applies a per-device setting.
    pub(crate) fn apply(&self, setting: Setting) {
        let mut c = self.control.lock();
        match setting {
            Setting::ScanRateKib(kib) => c.rate_kib = kib,
            Setting::ScanIntervalS(s) => c.interval_s = s,
            // Only a module-wide default.
            Setting::ScanEnabled(_) => {}
        }
    }
}

impl Remap {
    /// Device resumed: scanning continues (or the first pass is scheduled).
    pub(crate) fn scan_resume(&self, ti: &TargetInfo) {
        let delay = {
            let mut c = self.scan.control.lock();
            c.active = true;
            c.generation = c.generation.wrapping_add(1);
            let now = crate::dm::now_ms();
            if c.next_pass_ms == 0 {
                c.next_pass_ms = now.saturating_add(u64::from(plan::FIRST_PASS_DELAY_S) * 1000);
            }
            if c.in_pass {
                RESUME_DELAY_MS
            } else {
                ms_until(c.next_pass_ms, now)
            }
        };
        ti.schedule_background(delay);
    }

    /// Device suspending: the layer has stopped the background work already.
    pub(crate) fn scan_suspend(&self) {
        let mut c = self.scan.control.lock();
        c.active = false;
        c.generation = c.generation.wrapping_add(1);
    }

    /// Runs a `scan` message.
    pub(crate) fn scan_command(&self, ti: &TargetInfo, command: ScanCommand) {
        let run_now = {
            let mut c = self.scan.control.lock();
            c.generation = c.generation.wrapping_add(1);
            match command {
                ScanCommand::Start => {
                    c.enabled = true;
                    if !c.in_pass && c.passes == 0 {
                        c.next_pass_ms = crate::dm::now_ms();
                    }
                }
                ScanCommand::Stop => {
                    c.enabled = false;
                    c.one_pass = false;
                }
                ScanCommand::Now => {
                    c.in_pass = true;
                    c.one_pass = !c.enabled;
                    c.position = 0;
                    c.pass_errors = 0;
                    c.pass_started_ms = crate::dm::now_ms();
                }
            }
            c.active && (c.enabled || c.one_pass)
        };
        if run_now {
            ti.schedule_background(0);
        }
    }

    /// One run of the background scan; returns the milliseconds until the next run.
    pub(crate) fn scan_run(&self, ti: &TargetInfo) -> Option<u32> {
        let now = crate::dm::now_ms();
        let (generation, start, rate) = {
            let mut c = self.scan.control.lock();
            if !c.active {
                return None;
            }
            if !c.in_pass {
                if !c.enabled {
                    return None;
                }
                if now < c.next_pass_ms {
                    return Some(ms_until(c.next_pass_ms, now));
                }
                c.in_pass = true;
                c.position = 0;
                c.pass_errors = 0;
                c.pass_started_ms = now;
            }
            if !(c.enabled || c.one_pass) {
                return None;
            }
            (c.generation, c.position, c.rate_kib)
        };
        let last_io = self.scan.last_io.load(Relaxed);
        let busy = self.scan.seen_io.swap(last_io, Relaxed) != last_io;
        let chunks = if busy { 1 } else { plan::chunks_per_run(rate) };
        let total = ti.len();
        let mut position = start;
        let mut found = 0u64;
        {
            let _noio = NoIoScope::new();
            let Ok(mut buf) = PageBuffer::with_pages(MAX_BUFFER_PAGES) else {
                return Some(RESUME_DELAY_MS);
            };
            for _ in 0..chunks {
                let Some((from, to)) = plan::next_chunk(position, total) else { break };
                found = found.saturating_add(self.scan_chunk(ti, &mut buf, from, to));
                position = to;
            }
        }
        if found > 0 {
            // Pending units are durable before the scan moves on.
            let _ = self.commit(ti);
            self.check_health(ti);
        }
        let pass_over = position >= total;
        if pass_over {
            self.verify_metadata(ti);
        }
        let mut c = self.scan.control.lock();
        if c.generation != generation {
            // A message changed the state during this run; it scheduled what comes next.
            return Some(RESUME_DELAY_MS);
        }
        c.pass_errors = c.pass_errors.saturating_add(found);
        c.position = position;
        if !pass_over {
            return Some(plan::delay_after_ms(position.saturating_sub(start), rate, busy));
        }
        let end = crate::dm::now_ms();
        c.in_pass = false;
        c.one_pass = false;
        c.position = 0;
        c.passes = c.passes.saturating_add(1);
        c.last_pass_s = end.saturating_sub(c.pass_started_ms) / 1000;
        let delay = plan::delay_between_passes_ms(c.interval_s, c.pass_errors > 0);
        c.next_pass_ms = end.saturating_add(u64::from(delay));
        pr_info!(
            "{}: scan pass {} done in {} s, {} failing units found\n",
            ti.device_name(),
            c.passes,
            c.last_pass_s,
            c.pass_errors
        );
        c.enabled.then_some(delay)
    }

    /// Scans target sectors `[from, to)` (at most a chunk); returns the units newly marked
    /// pending. Runs of units without an entry are read from main as one bio; a run that fails
    /// is narrowed to its units.
    fn scan_chunk(&self, ti: &TargetInfo, buf: &mut PageBuffer, from: u64, to: u64) -> u64 {
        let (first, last) = (self.layout.unit_of(from), self.layout.unit_of(to));
        if !self.table.any_in(first, last) {
            if self.read_main(buf, from, to) {
                return 0;
            }
        }
        let mut found: u64 = 0;
        let mut unit = first;
        while unit < last {
            if self.scan_entry(unit).is_some() {
                self.check_entry(ti, buf, unit);
                unit = unit.saturating_add(1);
                continue;
            }
            let mut end = unit.saturating_add(1);
            while end < last && self.scan_entry(end).is_none() {
                end = end.saturating_add(1);
            }
            if !self.read_main(buf, self.layout.sector_of(unit), self.layout.sector_of(end)) {
                for u in unit..end {
                    if self.scan_unit(ti, buf, u) {
                        found = found.saturating_add(1);
                    }
                }
            }
            unit = end;
        }
        found
    }

    fn scan_entry(&self, unit: u64) -> Option<Entry> {
        if !self.table.any_in(unit, unit.saturating_add(1)) {
            return None;
        }
        let guard = RcuReadGuard::new();
        self.table.lookup(&guard, unit)
    }

    fn read_main(&self, buf: &mut PageBuffer, from: u64, to: u64) -> bool {
        let bytes = u32::try_from(to.saturating_sub(from).saturating_mul(512)).unwrap_or(0);
        buf.io(&self.main, from, bytes, BioOp::Read, false).is_ok()
    }

    /// A remapped unit is read on the spare (a failing spare unit is counted and logged; the
    /// next write to it relocates it); pending and moving units are left alone. Counted in
    /// flight from before the lookup, so that an `unremap` does not free the spare unit under
    /// the read (which would then see another unit's data or none).
    fn check_entry(&self, ti: &TargetInfo, buf: &mut PageBuffer, unit: u64) {
        let _counted = self.inflight.count();
        let Some(Entry::Remapped { spare }) = self.scan_entry(unit) else { return };
        let bytes = self.layout.unit_sectors.saturating_mul(512);
        if buf.io(&self.spare, self.layout.sector_of(spare), bytes, BioOp::Read, false).is_ok() {
            return;
        }
        Stats::count(&self.stats.spare_errors);
        if self.log_limit.allow() {
            pr_err!(
                "{}: scan: spare read error at sector {} (remap of sector {})\n",
                ti.device_name(),
                self.layout.sector_of(spare),
                self.layout.sector_of(unit)
            );
        }
    }

    /// Reads one unit without an entry on main; marks it pending if that fails with a status
    /// that may mean the medium failed (`remap_core::io_error`). Returns whether it was newly
    /// marked.
    fn scan_unit(&self, ti: &TargetInfo, buf: &mut PageBuffer, unit: u64) -> bool {
        let bytes = self.layout.unit_sectors.saturating_mul(512);
        let status = buf.io(&self.main, self.layout.sector_of(unit), bytes, BioOp::Read, false);
        if status.is_ok() {
            return false;
        }
        self.stats.read_error();
        if !status.may_be_medium() {
            // A path or device outage, not this unit's medium.
            return false;
        }
        let mut table = self.table.writer();
        // A write may have remapped it meanwhile.
        // In metadata mode read_only nothing new is recorded (the error is still counted).
        if !table.records_changes() || table.lookup(unit).is_some() || table.set(unit, Entry::Pending).is_err() {
            return false;
        }
        self.scan.errors.fetch_add(1, Relaxed);
        if self.log_limit.allow() {
            pr_warn!("{}: scan: read error, sector {} pending\n", ti.device_name(), self.layout.sector_of(unit));
        }
        true
    }

    /// Compares the metadata copies with the committed state; rewrites damaged ones. The
    /// copies are read without the table lock, which each block's comparison takes: a flush
    /// that must commit meanwhile waits for one comparison (`persist::CopyReader`). A commit
    /// during the check voids it for the copies not yet done.
    fn verify_metadata(&self, ti: &TargetInfo) {
        let _noio = NoIoScope::new();
        let Ok(mut reader) = CopyReader::new() else { return };
        let mut damaged: u64 = 0;
        for copy in 0..COPIES {
            let start = {
                let mut table = self.table.writer();
                if self.table.is_dirty() && self.commit_locked(ti, &mut table).is_err() {
                    return;
                }
                table.check_start(copy)
            };
            let Some(start) = start else { continue };
            let verdict = reader.check(&self.spare, &start, |block| self.table.writer().matches(&start, block));
            if let Verdict::Damaged = verdict {
                if self.table.writer().mark_damaged(&start) {
                    damaged = damaged.saturating_add(1);
                }
            }
        }
        if damaged > 0 {
            self.stats.metadata_repairs.fetch_add(damaged, Relaxed);
            pr_warn!("{}: scan: rewriting {} damaged metadata copies\n", ti.device_name(), damaged);
            let _ = self.commit(ti);
        }
    }
}

/// Milliseconds from `now` to `at`, within `u32` (at least 1).
fn ms_until(at: u64, now: u64) -> u32 {
    u32::try_from(at.saturating_sub(now)).unwrap_or(u32::MAX).max(1)
}
