// SPDX-License-Identifier: GPL-2.0

//! The files under `/sys/kernel/dm-remap-v4/` and what each holds (one value per file,
//! documented in `docs/sysfs.md`).
//!
//! Module-wide files sit at the top; each active device has a folder named after its dm
//! kernel name (`dm-3`) with the [`DeviceAttr`] files. Values are written followed by a
//! newline, as sysfs convention has it.

use super::scan::{parse_setting, INTERVAL_S_RANGE, RATE_KIB_RANGE};
use super::status::Counters;
use core::fmt::{self, Write};

/// A file in a device's folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAttr {
    /// The device's name under `/dev/mapper` (computed by the kernel side, not here).
    Name,
    /// Main units redirected to the spare.
    Remaps,
    /// Main units waiting for a write to be remapped.
    Pending,
    /// Spare units in use.
    SpareUsed,
    /// Spare units in all.
    SpareTotal,
    /// Read errors seen from either device.
    ReadErrors,
    /// Write errors seen from either device.
    WriteErrors,
    /// Errors that could not be remapped.
    RemapFailures,
    /// The health word (see [`super::status::Health`]).
    Health,
    /// Sequence number of the last metadata commit.
    MetadataSeq,
    /// The metadata mode word (see [`super::metadata_mode::MetadataMode`]).
    MetadataMode,
    /// `off`, `idle` or `scanning`.
    ScanState,
    /// Progress of the current pass in per cent.
    ScanProgress,
    /// Next sector the current pass reads.
    ScanPosition,
    /// Passes completed since activation.
    ScanPasses,
    /// Units the scan found failing since activation.
    ScanErrors,
    /// Duration of the last completed pass, in seconds.
    ScanLastPassS,
    /// Scan budget in KiB/s (writable).
    ScanRateKib,
    /// Interval between passes in seconds (writable).
    ScanIntervalS,
}

/// A device folder's files, in the order they are created.
pub const DEVICE_ATTRS: [DeviceAttr; 19] = [
    DeviceAttr::Name,
    DeviceAttr::Remaps,
    DeviceAttr::Pending,
    DeviceAttr::SpareUsed,
    DeviceAttr::SpareTotal,
    DeviceAttr::ReadErrors,
    DeviceAttr::WriteErrors,
    DeviceAttr::RemapFailures,
    DeviceAttr::Health,
    DeviceAttr::MetadataSeq,
    DeviceAttr::MetadataMode,
    DeviceAttr::ScanState,
    DeviceAttr::ScanProgress,
    DeviceAttr::ScanPosition,
    DeviceAttr::ScanPasses,
    DeviceAttr::ScanErrors,
    DeviceAttr::ScanLastPassS,
    DeviceAttr::ScanRateKib,
    DeviceAttr::ScanIntervalS,
];

/// A new value for a writable setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Scan budget in KiB/s.
    ScanRateKib(u32),
    /// Interval between scan passes in seconds.
    ScanIntervalS(u32),
    /// Whether scanning starts enabled (module-wide default only).
    ScanEnabled(bool),
}

impl DeviceAttr {
    /// The file name (a C string: it names a sysfs attribute).
    pub const fn file_name(self) -> &'static core::ffi::CStr {
        match self {
            Self::Name => c"name",
            Self::Remaps => c"remaps",
            Self::Pending => c"pending",
            Self::SpareUsed => c"spare_used",
            Self::SpareTotal => c"spare_total",
            Self::ReadErrors => c"read_errors",
            Self::WriteErrors => c"write_errors",
            Self::RemapFailures => c"remap_failures",
            Self::Health => c"health",
            Self::MetadataSeq => c"metadata_seq",
            Self::MetadataMode => c"metadata_mode",
            Self::ScanState => c"scan_state",
            Self::ScanProgress => c"scan_progress",
            Self::ScanPosition => c"scan_position",
            Self::ScanPasses => c"scan_passes",
            Self::ScanErrors => c"scan_errors",
            Self::ScanLastPassS => c"scan_last_pass_s",
            Self::ScanRateKib => c"scan_rate_kib",
            Self::ScanIntervalS => c"scan_interval_s",
        }
    }

    /// Whether root may write the file.
    pub const fn writable(self) -> bool {
        matches!(self, Self::ScanRateKib | Self::ScanIntervalS)
    }

    /// Writes the value and a newline (not for [`DeviceAttr::Name`], which only the kernel
    /// side knows: it writes nothing).
    pub fn write_value(self, w: &mut dyn Write, c: &Counters) -> fmt::Result {
        let s = &c.scan;
        match self {
            Self::Name => Ok(()),
            Self::Remaps => writeln!(w, "{}", c.remaps),
            Self::Pending => writeln!(w, "{}", c.pending),
            Self::SpareUsed => writeln!(w, "{}", c.spare_used),
            Self::SpareTotal => writeln!(w, "{}", c.spare_total),
            Self::ReadErrors => writeln!(w, "{}", c.read_errors),
            Self::WriteErrors => writeln!(w, "{}", c.write_errors),
            Self::RemapFailures => writeln!(w, "{}", c.remap_failures),
            Self::Health => writeln!(w, "{}", c.health.as_str()),
            Self::MetadataSeq => writeln!(w, "{}", c.metadata_seq),
            Self::MetadataMode => writeln!(w, "{}", c.metadata_mode.as_str()),
            Self::ScanState => writeln!(w, "{}", s.state.as_str()),
            Self::ScanProgress => writeln!(w, "{}", s.percent()),
            Self::ScanPosition => writeln!(w, "{}", s.position),
            Self::ScanPasses => writeln!(w, "{}", s.passes),
            Self::ScanErrors => writeln!(w, "{}", s.errors),
            Self::ScanLastPassS => writeln!(w, "{}", s.last_pass_s),
            Self::ScanRateKib => writeln!(w, "{}", s.rate_kib),
            Self::ScanIntervalS => writeln!(w, "{}", s.interval_s),
        }
    }

    /// Parses what was written to a writable file; `None` for a read-only file or a value
    /// that is not a decimal in the setting's range (the write fails with `EINVAL`).
    pub fn parse(self, input: &[u8]) -> Option<Setting> {
        match self {
            Self::ScanRateKib => parse_setting(input, RATE_KIB_RANGE).map(Setting::ScanRateKib),
            Self::ScanIntervalS => parse_setting(input, INTERVAL_S_RANGE).map(Setting::ScanIntervalS),
            _ => None,
        }
    }
}

/// A module-wide file at the top of `/sys/kernel/dm-remap-v4/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleAttr {
    /// The module version.
    Version,
    /// Active devices (folders below).
    Devices,
    /// Remaps made by all devices since the module was loaded.
    RemapsMade,
    /// Read errors seen by all devices since load.
    ReadErrors,
    /// Write errors seen by all devices since load.
    WriteErrors,
    /// Errors no device could remap, since load.
    RemapFailures,
    /// Whether new devices start with scanning enabled, `1` or `0` (writable).
    ScanEnabled,
    /// Scan budget for new devices, KiB/s (writable).
    ScanRateKib,
    /// Interval between scan passes for new devices, seconds (writable).
    ScanIntervalS,
}

/// The module-wide files, in the order they are created.
pub const MODULE_ATTRS: [ModuleAttr; 9] = [
    ModuleAttr::Version,
    ModuleAttr::Devices,
    ModuleAttr::RemapsMade,
    ModuleAttr::ReadErrors,
    ModuleAttr::WriteErrors,
    ModuleAttr::RemapFailures,
    ModuleAttr::ScanEnabled,
    ModuleAttr::ScanRateKib,
    ModuleAttr::ScanIntervalS,
];

/// Module-wide values, as the kernel side keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleValues<'a> {
    /// Module version, e.g. `4.0.0`.
    pub version: &'a str,
    /// Active devices.
    pub devices: u64,
    /// Remaps made since load.
    pub remaps_made: u64,
    /// Read errors since load.
    pub read_errors: u64,
    /// Write errors since load.
    pub write_errors: u64,
    /// Remap failures since load.
    pub remap_failures: u64,
    /// Default scan enable for new devices.
    pub scan_enabled: bool,
    /// Default scan budget, KiB/s.
    pub scan_rate_kib: u32,
    /// Default interval between passes, seconds.
    pub scan_interval_s: u32,
}

impl ModuleAttr {
    /// The file name.
    pub const fn file_name(self) -> &'static core::ffi::CStr {
        match self {
            Self::Version => c"version",
            Self::Devices => c"devices",
            Self::RemapsMade => c"remaps_made",
            Self::ReadErrors => c"read_errors",
            Self::WriteErrors => c"write_errors",
            Self::RemapFailures => c"remap_failures",
            Self::ScanEnabled => c"scan_enabled",
            Self::ScanRateKib => c"scan_rate_kib",
            Self::ScanIntervalS => c"scan_interval_s",
        }
    }

    /// Whether root may write the file.
    pub const fn writable(self) -> bool {
        matches!(self, Self::ScanEnabled | Self::ScanRateKib | Self::ScanIntervalS)
    }

    /// Writes the value and a newline.
    pub fn write_value(self, w: &mut dyn Write, v: &ModuleValues<'_>) -> fmt::Result {
        match self {
            Self::Version => writeln!(w, "{}", v.version),
            Self::Devices => writeln!(w, "{}", v.devices),
            Self::RemapsMade => writeln!(w, "{}", v.remaps_made),
            Self::ReadErrors => writeln!(w, "{}", v.read_errors),
            Self::WriteErrors => writeln!(w, "{}", v.write_errors),
            Self::RemapFailures => writeln!(w, "{}", v.remap_failures),
            Self::ScanEnabled => writeln!(w, "{}", u8::from(v.scan_enabled)),
            Self::ScanRateKib => writeln!(w, "{}", v.scan_rate_kib),
            Self::ScanIntervalS => writeln!(w, "{}", v.scan_interval_s),
        }
    }

    /// Parses what was written to a writable file (see [`DeviceAttr::parse`]).
    pub fn parse(self, input: &[u8]) -> Option<Setting> {
        match self {
            Self::ScanEnabled => match parse_setting(input, (0, 1))? {
                0 => Some(Setting::ScanEnabled(false)),
                _ => Some(Setting::ScanEnabled(true)),
            },
            Self::ScanRateKib => parse_setting(input, RATE_KIB_RANGE).map(Setting::ScanRateKib),
            Self::ScanIntervalS => parse_setting(input, INTERVAL_S_RANGE).map(Setting::ScanIntervalS),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
