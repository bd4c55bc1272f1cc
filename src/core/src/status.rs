// SPDX-License-Identifier: GPL-2.0

//! The `dmsetup status` lines of a dm-remap-v4 target.
//!
//! INFO (`dmsetup status`), positional, separated by single spaces, documented in
//! `docs/status.md`:
//!
//! ```text
//! <format> <unit_sectors> <remaps> <pending> <spare_used>/<spare_total> <read_errors> <write_errors> <remap_failures> <health> <metadata_seq> <metadata_copies>/5 <metadata_repairs> <metadata_errors> <scan_state> <scan_progress> <metadata_mode>
//! ```
//!
//! `<format>` is the version of this line's layout (1). New fields are only ever appended;
//! the format number changes only if an existing field changes meaning.
//!
//! TABLE (`dmsetup table`): the constructor arguments, such that feeding the line back to
//! `dmsetup create` gives the same device:
//!
//! ```text
//! <main_dev> <spare_dev> [<#feature_args> <feature_arg>...]
//! ```

use super::metadata_mode::MetadataMode;
use super::scan::{at_least_percent, ScanReport};
use super::table_line::Features;
use core::fmt::{self, Write};

/// Layout version of the INFO status line.
pub const INFO_FORMAT: u32 = 1;

/// Spare use (per cent) from which health is `spare_low`.
pub const SPARE_LOW_PERCENT: u64 = 90;

/// Spare use thresholds (per cent) whose crossing raises a dm event.
pub const SPARE_EVENT_PERCENTS: [u64; 4] = [50, 75, 90, 100];

/// The overall state of a device, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// No unresolved errors, spare available (remaps alone are normal operation).
    Ok,
    /// Units are pending (failed reads not yet rewritten) or an error could not be remapped.
    Degraded,
    /// At least [`SPARE_LOW_PERCENT`] of the spare is used: replace the main disk soon.
    SpareLow,
    /// No spare unit is left: further write errors fail as they would without dm-remap.
    SpareFull,
}

impl Health {
    /// The word printed in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::SpareLow => "spare_low",
            Self::SpareFull => "spare_full",
        }
    }

    /// The rule, worst first: `spare_full` when no spare unit is available; `spare_low` when
    /// at least [`SPARE_LOW_PERCENT`] of the spare is used; `degraded` when units are pending
    /// or a remap failed; else `ok`.
    pub fn derive(pending: u64, remap_failures: u64, spare_used: u64, spare_total: u64) -> Self {
        if spare_used >= spare_total {
            Self::SpareFull
        } else if at_least_percent(spare_used, spare_total, SPARE_LOW_PERCENT) {
            Self::SpareLow
        } else if pending > 0 || remap_failures > 0 {
            Self::Degraded
        } else {
            Self::Ok
        }
    }
}

/// The highest of [`SPARE_EVENT_PERCENTS`] that `used` of `total` spare units reaches, or 0.
/// A change of this value is an event.
pub fn spare_band(used: u64, total: u64) -> u64 {
    SPARE_EVENT_PERCENTS.iter().rev().copied().find(|&p| at_least_percent(used, total, p)).unwrap_or(0)
}

/// The counters INFO status reports. Units are remap units unless a name says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// The remap unit in 512-byte sectors.
    pub unit_sectors: u32,
    /// Main units currently redirected to the spare.
    pub remaps: u64,
    /// Main units that failed a read and wait for a write to be remapped.
    pub pending: u64,
    /// Spare units in use.
    pub spare_used: u64,
    /// Spare units in the data area.
    pub spare_total: u64,
    /// Read errors seen from either device.
    pub read_errors: u64,
    /// Write errors seen from either device.
    pub write_errors: u64,
    /// Errors that could not be remapped (spare full or failing).
    pub remap_failures: u64,
    /// I/O errors of the spare device (in the `stats` message, not in INFO).
    pub spare_errors: u64,
    /// Overall state.
    pub health: Health,
    /// Sequence number of the last metadata commit.
    pub metadata_seq: u64,
    /// Metadata copies (of 5) that hold the last commit.
    pub metadata_copies: u32,
    /// Metadata copies rewritten because they were damaged or stale.
    pub metadata_repairs: u64,
    /// Failed metadata writes (commits or copies).
    pub metadata_errors: u64,
    /// The background scan.
    pub scan: ScanReport,
    /// Whether the target still records new state in its metadata (`write`), or not since a
    /// commit failed or the spare needs a check (`read_only`).
    pub metadata_mode: MetadataMode,
}

/// Writes the INFO status line.
pub fn write_info(w: &mut dyn Write, c: &Counters) -> fmt::Result {
    write!(
        w,
        "{} {} {} {} {}/{} {} {} {} {} {} {}/5 {} {} {} {} {}",
        INFO_FORMAT,
        c.unit_sectors,
        c.remaps,
        c.pending,
        c.spare_used,
        c.spare_total,
        c.read_errors,
        c.write_errors,
        c.remap_failures,
        c.health.as_str(),
        c.metadata_seq,
        c.metadata_copies,
        c.metadata_repairs,
        c.metadata_errors,
        c.scan.state.as_str(),
        c.scan.percent(),
        c.metadata_mode.as_str()
    )
}

/// Writes the output of the `stats` message: the counters as `key=value` words, one line.
pub fn write_stats(w: &mut dyn Write, c: &Counters) -> fmt::Result {
    writeln!(
        w,
        "remaps={} pending={} spare_used={} spare_total={} read_errors={} write_errors={} \
         spare_errors={} remap_failures={} health={}",
        c.remaps,
        c.pending,
        c.spare_used,
        c.spare_total,
        c.read_errors,
        c.write_errors,
        c.spare_errors,
        c.remap_failures,
        c.health.as_str()
    )
}

/// Writes the TABLE status line from the devices' names (as dm reports them, `major:minor`)
/// and the features. The feature count is written only when there are features.
pub fn write_table(w: &mut dyn Write, main: &str, spare: &str, features: &Features) -> fmt::Result {
    write!(w, "{main} {spare}")?;
    let count = features.word_count();
    if count > 0 {
        write!(w, " {count}")?;
        features.write_words(w)?;
    }
    Ok(())
}

/// The one [`Counters`] fixture of the core's tests: a distinct value in nearly every field (so
/// that a field printed in the wrong place shows), a degraded device (one unit pending) half-way
/// through its third scan pass.
#[cfg(test)]
pub(crate) fn sample_counters() -> Counters {
    use super::scan::ScanState;
    Counters {
        unit_sectors: 8,
        remaps: 3,
        pending: 1,
        spare_used: 4,
        spare_total: 1000,
        read_errors: 5,
        write_errors: 6,
        remap_failures: 7,
        spare_errors: 9,
        health: Health::Degraded,
        metadata_seq: 42,
        metadata_copies: 5,
        metadata_repairs: 1,
        metadata_errors: 2,
        scan: ScanReport {
            state: ScanState::Scanning,
            position: 500,
            total: 1000,
            passes: 2,
            errors: 11,
            last_pass_s: 12,
            rate_kib: 4096,
            interval_s: 86400,
        },
        metadata_mode: MetadataMode::ReadOnly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[test]
    fn info_line_has_documented_fields() {
        let mut s = String::new();
        write_info(&mut s, &sample_counters()).unwrap();
        assert_eq!(s, "1 8 3 1 4/1000 5 6 7 degraded 42 5/5 1 2 scanning 50 read_only");
    }

    #[test]
    fn stats_line_names_every_counter() {
        let mut s = String::new();
        write_stats(&mut s, &sample_counters()).unwrap();
        assert_eq!(
            s,
            "remaps=3 pending=1 spare_used=4 spare_total=1000 read_errors=5 write_errors=6 \
             spare_errors=9 remap_failures=7 health=degraded\n"
        );
    }

    #[test]
    fn health_rule() {
        assert_eq!(Health::derive(0, 0, 0, 10), Health::Ok);
        assert_eq!(Health::derive(0, 0, 8, 10), Health::Ok);
        assert_eq!(Health::derive(1, 0, 0, 10), Health::Degraded);
        assert_eq!(Health::derive(0, 1, 0, 10), Health::Degraded);
        assert_eq!(Health::derive(1, 0, 9, 10), Health::SpareLow);
        assert_eq!(Health::derive(5, 5, 10, 10), Health::SpareFull);
        assert_eq!(Health::derive(0, 0, 0, 0), Health::SpareFull);
    }

    #[test]
    fn spare_bands() {
        assert_eq!(spare_band(0, 100), 0);
        assert_eq!(spare_band(49, 100), 0);
        assert_eq!(spare_band(50, 100), 50);
        assert_eq!(spare_band(89, 100), 75);
        assert_eq!(spare_band(90, 100), 90);
        assert_eq!(spare_band(100, 100), 100);
        assert_eq!(spare_band(0, 0), 100);
        assert_eq!(spare_band(u64::MAX, u64::MAX), 100);
    }

    #[test]
    fn table_line_without_features_has_no_count() {
        let mut s = String::new();
        write_table(&mut s, "253:0", "253:1", &Features::default()).unwrap();
        assert_eq!(s, "253:0 253:1");
    }

    #[test]
    fn table_line_with_format_round_trips() {
        let mut s = String::new();
        write_table(&mut s, "8:0", "8:16", &Features { format: true }).unwrap();
        assert_eq!(s, "8:0 8:16 1 format");
        let words: std::vec::Vec<&str> = s.split(' ').collect();
        let args = super::super::table_line::parse_args(&words).unwrap();
        assert!(args.features.format);
    }

    #[test]
    fn table_line_parses_back() {
        let mut s = String::new();
        write_table(&mut s, "8:0", "8:16", &Features::default()).unwrap();
        let words: std::vec::Vec<&str> = s.split(' ').collect();
        let args = super::super::table_line::parse_args(&words).unwrap();
        assert_eq!(*args.main, "8:0");
        assert_eq!(*args.spare, "8:16");
    }
}
