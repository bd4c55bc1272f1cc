// SPDX-License-Identifier: GPL-2.0

//! Scheduling of the background health scan (see `docs/scan.md`).
//!
//! The scan reads the main device from its first to its last sector in passes. Each run of
//! the scan's work item reads a few chunks of [`CHUNK_SECTORS`], then waits as long as those
//! bytes "cost" at the configured rate, so that the scan never reads faster than its budget;
//! when foreground I/O was seen since the previous run it waits [`BUSY_BACKOFF`] times longer.
//! Between passes it waits the configured interval, or an eighth of it
//! ([`ERROR_SPEEDUP`], as the original dm-remap design did) after a pass that found errors.
//!
//! Everything here is arithmetic on plain numbers; the kernel side (`src/scan.rs`) does the
//! I/O and keeps the state.

use super::table_line::parse_decimal;

/// Sectors (512 bytes) read by one scan I/O: 64 KiB.
pub const CHUNK_SECTORS: u64 = 128;
/// Milliseconds of budget one run of the work item spends at most (it reads as many chunks as
/// the rate allows in this time, at least one).
pub const RUN_BUDGET_MS: u64 = 100;
/// Factor by which the wait after a run grows when foreground I/O was seen during it.
pub const BUSY_BACKOFF: u64 = 4;
/// Factor by which the interval between passes shrinks after a pass that found errors.
pub const ERROR_SPEEDUP: u64 = 8;

/// Default scan rate in KiB/s (16 MiB/s: a 4 TB disk in about three days).
pub const DEFAULT_RATE_KIB: u32 = 16 * 1024;
/// Accepted scan rates in KiB/s.
pub const RATE_KIB_RANGE: (u32, u32) = (64, 1024 * 1024);
/// Default time from the end of one pass to the start of the next, in seconds (7 days).
pub const DEFAULT_INTERVAL_S: u32 = 7 * 24 * 3600;
/// Accepted intervals in seconds (1 s to 30 days; the delay is kept in milliseconds as `u32`).
pub const INTERVAL_S_RANGE: (u32, u32) = (1, 30 * 24 * 3600);
/// Time from a device's activation to its first pass, in seconds: lets boot-time I/O settle.
pub const FIRST_PASS_DELAY_S: u32 = 600;

/// What the scan of a device is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanState {
    /// Disabled (`scan stop`, or scanning is off for new devices); a pass in progress keeps its
    /// position for `scan start`.
    Off,
    /// Waiting for the next pass.
    Idle,
    /// A pass is in progress.
    Scanning,
}

impl ScanState {
    /// The word printed in status and sysfs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Idle => "idle",
            Self::Scanning => "scanning",
        }
    }
}

/// The scan's progress as status, sysfs and /proc report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    /// What the scan is doing.
    pub state: ScanState,
    /// Next sector the current (or interrupted) pass reads; 0 between passes.
    pub position: u64,
    /// Sectors a pass reads (the target's length).
    pub total: u64,
    /// Passes completed since the device was activated.
    pub passes: u64,
    /// Main units the scan found failing (marked pending), since activation.
    pub errors: u64,
    /// Duration of the last completed pass, in seconds.
    pub last_pass_s: u64,
    /// Budget in KiB/s.
    pub rate_kib: u32,
    /// Interval between passes in seconds.
    pub interval_s: u32,
}

impl ScanReport {
    /// Progress of the current pass in per cent (0 when none is in progress).
    pub fn percent(&self) -> u64 {
        percent(self.position, self.total)
    }
}

/// `done` of `total` in whole per cent, rounded down; 0 for an empty total. (No 128-bit
/// arithmetic: the kernel has no 128-bit division.)
pub fn percent(done: u64, total: u64) -> u64 {
    if total == 0 {
        return 0;
    }
    let done = done.min(total);
    match done.checked_mul(100) {
        Some(d) => d / total,
        // Only for totals above 2^57: per cent of a hundredth is exact enough.
        None => done.checked_div(total / 100).unwrap_or(100),
    }
}

/// Whether `part` is at least `pct` per cent of `total` (exact, without overflow).
pub fn at_least_percent(part: u64, total: u64, pct: u64) -> bool {
    let pct = pct.min(100);
    // Cannot overflow (needed <= total), but say so without a panic path.
    let needed = (total / 100).saturating_mul(pct).saturating_add((total % 100 * pct).div_ceil(100));
    part >= needed
}

/// Chunks one run reads at `rate_kib`: what [`RUN_BUDGET_MS`] of budget allows, at least one.
pub fn chunks_per_run(rate_kib: u32) -> u64 {
    let chunk_kib = CHUNK_SECTORS / 2;
    (u64::from(rate_kib) * RUN_BUDGET_MS / 1000 / chunk_kib).max(1)
}

/// Milliseconds to wait after reading `sectors` at `rate_kib` KiB/s (times [`BUSY_BACKOFF`] if
/// foreground I/O was `busy`), at least 1: the scan's average rate never exceeds its budget.
pub fn delay_after_ms(sectors: u64, rate_kib: u32, busy: bool) -> u32 {
    // sectors / 2 KiB, at rate_kib KiB per 1000 ms.
    let ms = sectors.saturating_mul(500) / u64::from(rate_kib.max(1));
    let ms = if busy { ms.saturating_mul(BUSY_BACKOFF) } else { ms };
    u32::try_from(ms).unwrap_or(u32::MAX).max(1)
}

/// Milliseconds from the end of a pass to the start of the next: the interval, or an
/// [`ERROR_SPEEDUP`]th of it (at least a second) if the pass found errors.
pub fn delay_between_passes_ms(interval_s: u32, found_errors: bool) -> u32 {
    let ms = u64::from(interval_s) * 1000;
    let ms = if found_errors { (ms / ERROR_SPEEDUP).max(1000) } else { ms };
    u32::try_from(ms).unwrap_or(u32::MAX)
}

/// The sectors `[start, end)` the next read of a pass covers, from `position` in a target of
/// `total` sectors; `None` when the pass is over. Reads are aligned to [`CHUNK_SECTORS`].
pub fn next_chunk(position: u64, total: u64) -> Option<(u64, u64)> {
    if position >= total {
        return None;
    }
    let end = (position / CHUNK_SECTORS + 1).saturating_mul(CHUNK_SECTORS).min(total);
    Some((position, end))
}

/// Parses a sysfs setting: a decimal number, optionally followed by one newline (as `echo`
/// writes it), within `range` (inclusive).
pub fn parse_setting(input: &[u8], range: (u32, u32)) -> Option<u32> {
    let digits = input.strip_suffix(b"\n").unwrap_or(input);
    let value = u32::try_from(parse_decimal(digits)?).ok()?;
    (range.0..=range.1).contains(&value).then_some(value)
}

#[cfg(test)]
mod tests;
