// SPDX-License-Identifier: GPL-2.0

//! Module-wide counters and the scan settings new devices start with: the files at the top
//! of `/sys/kernel/dm-remap-v4/` (see `docs/sysfs.md`).
//!
//! There are no module parameters: these defaults exist as soon as the module is loaded, so
//! boot-time assembly can write them before it creates any device.

#![forbid(unsafe_code)]

use crate::remap_core::scan::{DEFAULT_INTERVAL_S, DEFAULT_RATE_KIB};
use crate::remap_core::sysfs::{ModuleValues, Setting};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

/// The module's version, as `modinfo` and sysfs give it.
pub(crate) const VERSION: &str = "4.0.0";

/// Remaps made by all devices since the module was loaded.
pub(crate) static REMAPS_MADE: AtomicU64 = AtomicU64::new(0);
/// Read errors seen by all devices since load.
pub(crate) static READ_ERRORS: AtomicU64 = AtomicU64::new(0);
/// Write errors seen by all devices since load.
pub(crate) static WRITE_ERRORS: AtomicU64 = AtomicU64::new(0);
/// Errors no device could remap, since load.
pub(crate) static REMAP_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Whether new devices start with scanning enabled.
pub(crate) static SCAN_ENABLED: AtomicBool = AtomicBool::new(true);
/// Scan budget of new devices, KiB/s.
pub(crate) static SCAN_RATE_KIB: AtomicU32 = AtomicU32::new(DEFAULT_RATE_KIB);
/// Interval between scan passes of new devices, seconds.
pub(crate) static SCAN_INTERVAL_S: AtomicU32 = AtomicU32::new(DEFAULT_INTERVAL_S);

/// The values of the module-wide files.
pub(crate) fn values(devices: u32) -> ModuleValues<'static> {
    ModuleValues {
        version: VERSION,
        devices: u64::from(devices),
        remaps_made: REMAPS_MADE.load(Relaxed),
        read_errors: READ_ERRORS.load(Relaxed),
        write_errors: WRITE_ERRORS.load(Relaxed),
        remap_failures: REMAP_FAILURES.load(Relaxed),
        scan_enabled: SCAN_ENABLED.load(Relaxed),
        scan_rate_kib: SCAN_RATE_KIB.load(Relaxed),
        scan_interval_s: SCAN_INTERVAL_S.load(Relaxed),
    }
}

/// Applies a module-wide setting (already validated by the parser).
pub(crate) fn apply(setting: Setting) {
    match setting {
        Setting::ScanEnabled(on) => SCAN_ENABLED.store(on, Relaxed),
        Setting::ScanRateKib(kib) => SCAN_RATE_KIB.store(kib, Relaxed),
        Setting::ScanIntervalS(s) => SCAN_INTERVAL_S.store(s, Relaxed),
    }
}
