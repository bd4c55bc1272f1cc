// SPDX-License-Identifier: GPL-2.0

//! `status [NAME] [--json | --prometheus]` and `list NAME [--json]`: the live state of
//! dm-remap-v4 devices, from the INFO status line (parsed by the core), the module's sysfs
//! folder and the table's disks ([`crate::identity`]). `status` exits by health
//! ([`health_exit_code`]).

use crate::device::read_attr;
use crate::dm::{Dm, RemapDevice};
use crate::error::{Error, Kind, Result};
use crate::identity::{disks, Disks, BY_ID_DIR};
use dm_remap_core::status_parse::{parse_info, InfoStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Where the module publishes one folder per live device, named after its kernel name.
pub const SYSFS_ROOT: &str = "/sys/kernel/dm-remap-v4";

/// The version of the `status --json` object: raised only when a key changes meaning or
/// goes away; keys are only ever added (`docs/dm-remap.8.md`).
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Exit status of `status` when the worst device is `degraded` (units pending, or a remap
/// failed).
pub const EXIT_DEGRADED: u8 = 20;
/// Exit status of `status` when the worst device is `spare_low` (90 % of the spare used).
pub const EXIT_SPARE_LOW: u8 = 21;
/// Exit status of `status` when the worst device is `spare_full`, or reports a health word
/// this version does not know (a newer module's failure state).
pub const EXIT_SPARE_FULL_OR_FAILED: u8 = 22;

/// The exit status for one health word: 0 for `ok`, else one of the `EXIT_*` constants
/// (20-22, a range no error of the tool uses).
pub fn health_exit_code(health: &str) -> u8 {
    match health {
        "ok" => 0,
        "degraded" => EXIT_DEGRADED,
        "spare_low" => EXIT_SPARE_LOW,
        _ => EXIT_SPARE_FULL_OR_FAILED,
    }
}

/// The exit status of one device: its health code, or [`EXIT_SPARE_FULL_OR_FAILED`] when
/// its metadata mode is not `write` (a commit failed: no new remaps until `dm-remap repair`,
/// docs/design.md "Metadata failure mode"), whatever its health word says.
pub fn device_exit_code(device: &DeviceStatus) -> u8 {
    let health = health_exit_code(&device.info.health);
    match device.info.metadata_mode.as_deref() {
        Some(mode) if mode != "write" => EXIT_SPARE_FULL_OR_FAILED,
        _ => health,
    }
}

/// The exit status of `status` for `devices`: the worst of their codes, 0 if none.
pub fn status_exit_code(devices: &[DeviceStatus]) -> u8 {
    devices.iter().map(device_exit_code).max().unwrap_or(0)
}

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table for people.
    Table,
    /// JSON ([`status_json`]).
    Json,
    /// node_exporter textfile metrics ([`crate::prometheus::metrics`]).
    Prometheus,
}

/// One device's state, as `status --json` prints it: the schema version, the names and
/// length, the disks, then the INFO fields inline (as [`InfoStatus`] declares them), then the
/// sysfs files.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DeviceStatus {
    /// [`JSON_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The /dev/mapper name.
    pub name: String,
    /// The kernel name, `dm-<minor>`.
    pub kernel_name: String,
    /// Target length in 512-byte sectors.
    pub sectors: u64,
    /// The main and spare disks and the spare's UUID (filled in by [`status`]).
    #[serde(flatten)]
    pub disks: Disks,
    /// The INFO status line, parsed (units as `docs/status.md` gives them).
    #[serde(flatten)]
    pub info: InfoStatus<String>,
    /// Every file of the device's sysfs folder (values as text), when the module has one.
    pub sysfs: Option<BTreeMap<String, String>>,
}

/// Reads every regular file of a sysfs folder (one value per file); `None` if it is absent.
fn read_sysfs_dir(dir: &Path) -> Option<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_file() {
            if let (Some(name), Some(value)) = (entry.file_name().to_str(), read_attr(&path)) {
                values.insert(name.to_string(), value);
            }
        }
    }
    Some(values)
}

/// The state of one device from its INFO line and the sysfs folder under `sysfs_root`.
///
/// # Errors
/// [`Kind::DeviceMapper`] if the status line does not parse.
pub fn device_status(dev: &RemapDevice, info_line: &str, sysfs_root: &Path) -> Result<DeviceStatus> {
    let info = parse_info(info_line)
        .map_err(|e| Error::new(Kind::DeviceMapper, format!("{}: {e}: '{info_line}'", dev.name)))?;
    let kernel_name = format!("dm-{}", dev.devno.1);
    Ok(DeviceStatus {
        schema_version: JSON_SCHEMA_VERSION,
        name: dev.name.clone(),
        sectors: dev.len,
        disks: Disks::default(),
        info: info.map(str::to_string),
        sysfs: read_sysfs_dir(&sysfs_root.join(&kernel_name)),
        kernel_name,
    })
}

/// The human table: one line per device.
pub fn status_table(devices: &[DeviceStatus]) -> String {
    let mut out = format!(
        "{:<16} {:<10} {:>8} {:>8} {:>22} {:>13} {:<14} {:>10} {}\n",
        "NAME", "HEALTH", "REMAPS", "PENDING", "SPARE USED", "ERRORS R/W", "SCAN", "META SEQ", "META MODE"
    );
    for DeviceStatus { name, info: d, .. } in devices {
        let percent = if d.spare_total == 0 { 0.0 } else { 100.0 * d.spare_used as f64 / d.spare_total as f64 };
        let spare = format!("{}/{} ({percent:.1}%)", d.spare_used, d.spare_total);
        let errors = format!("{}/{}", d.read_errors, d.write_errors);
        let scan = match (&d.scan_state, d.scan_progress) {
            (Some(state), Some(p)) if state == "scanning" => format!("{state} {p}%"),
            (Some(state), _) => state.clone(),
            _ => "-".into(),
        };
        let meta = format!("{} {}/5", d.metadata_seq, d.metadata_copies);
        let mode = d.metadata_mode.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>8} {:>8} {:>22} {:>13} {:<14} {:>10} {}",
            name, d.health, d.remaps, d.pending, spare, errors, scan, meta, mode
        );
    }
    out
}

/// The `--json` output: the one device as an object when `single` (a NAME was given; `states`
/// then holds exactly that device), else an array of all; pretty-printed, ending in a newline.
/// Empty (just the newline) if `single` and `states` is empty.
pub fn status_json(states: &[DeviceStatus], single: bool) -> String {
    let text = match (single, states.first()) {
        (true, Some(state)) => serde_json::to_string_pretty(state),
        (true, None) => Ok(String::new()),
        (false, _) => serde_json::to_string_pretty(states),
    };
    text.unwrap_or_default() + "\n"
}

/// `status [NAME] [--json | --prometheus]`: the text and the exit status by health
/// ([`status_exit_code`]; 0 with `--prometheus`, whose metrics carry the health).
///
/// # Errors
/// [`Kind::NotFound`] for a NAME that is not a dm-remap-v4 device; dm errors.
pub fn status(dm: &Dm, name: Option<&str>, format: Format) -> Result<(String, u8)> {
    let devices = match name {
        Some(name) => vec![dm.require_remap_device(name)?],
        None => dm.remap_devices()?,
    };
    let mut states = Vec::with_capacity(devices.len());
    for dev in &devices {
        let mut state = device_status(dev, &dm.info_status(&dev.name)?, Path::new(SYSFS_ROOT))?;
        if format != Format::Table {
            state.disks = disks(&dm.table(&dev.name)?, Path::new(BY_ID_DIR));
        }
        states.push(state);
    }
    let code = status_exit_code(&states);
    Ok(match format {
        Format::Json => (status_json(&states, name.is_some()), code),
        Format::Prometheus => (crate::prometheus::metrics(&states), 0),
        Format::Table if states.is_empty() => ("no dm-remap-v4 devices\n".into(), code),
        Format::Table => (status_table(&states), code),
    })
}

/// One line of the `list` message's output.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ListEntry {
    /// First sector of the unit (target sectors).
    pub sector: u64,
    /// First spare sector of its spare unit; `None` when pending.
    pub spare_sector: Option<u64>,
    /// `remapped` or `pending`.
    pub state: &'static str,
}

/// Parses the `list` message's output (`<sector> <spare_sector>` or `<sector> pending`).
///
/// # Errors
/// [`Kind::DeviceMapper`] on a line of another form.
pub fn parse_list(text: &str) -> Result<Vec<ListEntry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || Error::new(Kind::DeviceMapper, format!("unexpected list line '{line}'"));
            let (sector, rest) = line.trim().split_once(' ').ok_or_else(bad)?;
            let sector = sector.parse().map_err(|_| bad())?;
            Ok(match rest {
                "pending" => ListEntry { sector, spare_sector: None, state: "pending" },
                spare => ListEntry { sector, spare_sector: Some(spare.parse().map_err(|_| bad())?), state: "remapped" },
            })
        })
        .collect()
}

/// `list NAME [--json]`.
///
/// # Errors
/// [`Kind::NotFound`], dm errors.
pub fn list(dm: &Dm, name: &str, json: bool) -> Result<String> {
    dm.require_remap_device(name)?;
    let text = dm.message(name, "list")?;
    if !json {
        return Ok(if text.is_empty() || text.ends_with('\n') { text } else { text + "\n" });
    }
    Ok(serde_json::to_string_pretty(&parse_list(&text)?).unwrap_or_default() + "\n")
}
