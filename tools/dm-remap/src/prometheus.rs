// SPDX-License-Identifier: GPL-2.0

//! `status --prometheus`: the devices' figures in the Prometheus text exposition format, for
//! node_exporter's textfile collector (`docs/dm-remap.8.md`, "status").
//!
//! Naming follows Prometheus' conventions: prefix `dm_remap_`, base units in the name
//! (`_bytes`, `_units` for remap units, `_ratio` for fractions), `_total` for counters.
//! Every series has a `device` label (the /dev/mapper name); the health and the scan state are
//! state sets (one series per known word, 1 for the current one, 0 for the others; a word this
//! version does not know gets a series of its own).

use crate::status::DeviceStatus;
use std::fmt::Write;

/// The health words the module documents (`docs/status.md`).
const HEALTH_WORDS: [&str; 4] = ["ok", "degraded", "spare_low", "spare_full"];
/// The scan states the module documents (`docs/scan.md`).
const SCAN_WORDS: [&str; 3] = ["off", "idle", "scanning"];

/// A label value escaped as the exposition format requires (`\`, `"`, newline).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `{device="NAME",k="v",...}`.
fn labels(device: &str, extra: &[(&str, &str)]) -> String {
    let mut out = format!("{{device=\"{}\"", escape(device));
    for (key, value) in extra {
        let _ = write!(out, ",{key}=\"{}\"", escape(value));
    }
    out.push('}');
    out
}

/// One metric: its HELP and TYPE lines, then a sample per device that has a value.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, devices: &[DeviceStatus], value: impl Fn(&DeviceStatus) -> Option<f64>) {
    let samples: Vec<(String, f64)> = devices.iter().filter_map(|d| value(d).map(|v| (labels(&d.name, &[]), v))).collect();
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// A state set: a series per word of `known` (and the current word if it is not one of them),
/// 1 for the device's current word, 0 for the others. Devices without a word are skipped.
fn state_set(
    out: &mut String,
    name: &str,
    label: &str,
    help: &str,
    known: &[&str],
    devices: &[DeviceStatus],
    word: impl Fn(&DeviceStatus) -> Option<&str>,
) {
    let mut lines = String::new();
    for d in devices {
        let Some(current) = word(d) else { continue };
        let extra = (!known.contains(&current)).then_some(current);
        for w in known.iter().copied().chain(extra) {
            let _ = writeln!(lines, "{name}{} {}", labels(&d.name, &[(label, w)]), u8::from(w == current));
        }
    }
    if !lines.is_empty() {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{lines}");
    }
}

/// The stable name of a disk for a label: its first `/dev/disk/by-id` link, else its `/dev`
/// node, else `major:minor`.
fn disk_label(disk: Option<&crate::identity::Disk>) -> String {
    disk.map(|d| d.by_id.first().or(d.path.as_ref()).cloned().unwrap_or_else(|| d.devno.clone())).unwrap_or_default()
}

/// The metrics of `devices` (every metric's samples together, as the format requires). No
/// devices: only the `dm_remap_devices` gauge.
#[allow(clippy::cast_precision_loss)] // counts far below 2^53
pub fn metrics(devices: &[DeviceStatus]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP dm_remap_devices Active dm-remap-v4 devices.\n# TYPE dm_remap_devices gauge\ndm_remap_devices {}",
        devices.len()
    );
    let mut info = String::new();
    for d in devices {
        let main = disk_label(d.disks.main.as_ref());
        let spare = disk_label(d.disks.spare.as_ref());
        let uuid = d.disks.spare_uuid.clone().unwrap_or_default();
        let extra = [("kernel_name", d.kernel_name.as_str()), ("main", main.as_str()), ("spare", spare.as_str()), ("spare_uuid", uuid.as_str())];
        let _ = writeln!(info, "dm_remap_device_info{} 1", labels(&d.name, &extra));
    }
    if !info.is_empty() {
        let _ = write!(
            out,
            "# HELP dm_remap_device_info The device's disks: main and spare (stable names) and the spare's UUID.\n# TYPE dm_remap_device_info gauge\n{info}"
        );
    }
    let unit_bytes = |d: &DeviceStatus| f64::from(d.info.unit_sectors) * 512.0;
    metric(&mut out, "dm_remap_size_bytes", "gauge", "Size of the device.", devices, |d| Some(d.sectors as f64 * 512.0));
    metric(&mut out, "dm_remap_unit_bytes", "gauge", "Size of the remap unit (the main disk's logical block size).", devices, |d| Some(unit_bytes(d)));
    metric(&mut out, "dm_remap_remapped_units", "gauge", "Main units redirected to the spare.", devices, |d| Some(d.info.remaps as f64));
    metric(&mut out, "dm_remap_pending_units", "gauge", "Main units that failed a read and wait for a write.", devices, |d| Some(d.info.pending as f64));
    metric(&mut out, "dm_remap_spare_used_units", "gauge", "Spare data units in use.", devices, |d| Some(d.info.spare_used as f64));
    metric(&mut out, "dm_remap_spare_units", "gauge", "Spare data units in all.", devices, |d| Some(d.info.spare_total as f64));
    metric(&mut out, "dm_remap_read_errors_total", "counter", "Read errors seen from either disk (reset by clear_stats).", devices, |d| Some(d.info.read_errors as f64));
    metric(&mut out, "dm_remap_write_errors_total", "counter", "Write errors seen from either disk (reset by clear_stats).", devices, |d| Some(d.info.write_errors as f64));
    metric(&mut out, "dm_remap_remap_failures_total", "counter", "Errors that could not be remapped (reset by clear_stats).", devices, |d| Some(d.info.remap_failures as f64));
    state_set(&mut out, "dm_remap_health", "health", "Health of the device: 1 for the current state.", &HEALTH_WORDS, devices, |d| Some(d.info.health.as_str()));
    metric(&mut out, "dm_remap_metadata_seq", "gauge", "Sequence number of the last metadata commit.", devices, |d| Some(d.info.metadata_seq as f64));
    metric(&mut out, "dm_remap_metadata_copies", "gauge", "Metadata copies (of 5) holding the last commit.", devices, |d| Some(f64::from(d.info.metadata_copies)));
    metric(&mut out, "dm_remap_metadata_repairs_total", "counter", "Metadata copies found damaged or stale and rewritten.", devices, |d| Some(d.info.metadata_repairs as f64));
    metric(&mut out, "dm_remap_metadata_errors_total", "counter", "Failed metadata writes.", devices, |d| Some(d.info.metadata_errors as f64));
    state_set(&mut out, "dm_remap_scan_state", "state", "Background scan state: 1 for the current state.", &SCAN_WORDS, devices, |d| d.info.scan_state.as_deref());
    metric(&mut out, "dm_remap_scan_progress_ratio", "gauge", "Progress of the current scan pass (0 between passes).", devices, |d| d.info.scan_progress.map(|p| f64::from(p) / 100.0));
    out
}
