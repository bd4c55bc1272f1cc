// SPDX-License-Identifier: GPL-2.0

//! `create` and `remove`: the table line built from the devices, checked first the way the
//! kernel's constructor checks it (`docs/table-line.md`), so that a refusal comes with the
//! kernel's own words and nothing reaches the kernel that it would refuse.

use crate::device::{read_attr, sysfs_dir, Access, Device};
use crate::dm::{Dm, TARGET};
use crate::error::{Error, Kind, Result};
use crate::spare::{probe, Probe};
use dm_remap_core::metadata::MainFingerprint;
use dm_remap_core::table_line::{validate_geometry, Geometry, TableError};

/// A checked table line for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The /dev/mapper name.
    pub name: String,
    /// Target length in sectors: main's size, rounded down to its logical block size.
    pub len: u64,
    /// The constructor arguments: `<main maj:min> <spare maj:min> [1 format]`.
    pub params: String,
    /// What the kernel will do with the spare: `format` or `load`.
    pub spare_action: &'static str,
}

impl Plan {
    /// The whole table line, as `dmsetup create --table` takes it.
    pub fn table_line(&self) -> String {
        format!("0 {} {TARGET} {}", self.len, self.params)
    }
}

fn refused(e: TableError) -> Error {
    Error::new(Kind::Refused, e.message().to_string_lossy().into_owned())
}

/// Whether a block device is marked read-only (its sysfs `ro` is 1, as after `blockdev
/// --setro`). False for an image file or when sysfs does not say: the kernel still checks.
fn marked_read_only(dev: &Device) -> bool {
    dev.devno.and_then(|devno| read_attr(&sysfs_dir(devno).join("ro"))).as_deref() == Some("1")
}

/// Checks main and spare as the kernel's constructor would and builds the table line.
///
/// # Errors
/// [`Kind::Refused`] with the kernel's message for every refusal it would make (geometry,
/// foreign data without `format`, no valid copy, another main device, another unit, a shrunk
/// spare); [`Kind::Device`] if a device cannot be opened or read.
pub fn plan(name: &str, main_path: &str, spare_path: &str, format: bool) -> Result<Plan> {
    let main = Device::open(main_path, Access::Read)?;
    let mut spare = Device::open(spare_path, Access::Read)?;
    for dev in [&main, &spare] {
        if dev.devno.is_none() {
            return Err(Error::new(Kind::Refused, format!("{}: not a block device", dev.path)));
        }
    }
    let unit = u64::from(main.block_size / 512).max(1);
    let len = main.sectors / unit * unit;
    let layout = validate_geometry(&Geometry {
        target_begin: 0,
        target_len: len,
        main_sectors: main.sectors,
        main_block_size: main.block_size,
        spare_sectors: spare.sectors,
        spare_block_size: spare.block_size,
        same_device: main.devno == spare.devno,
        // The tool's tables are read-write (it never passes `--readonly`).
        table_read_only: false,
        main_read_only: marked_read_only(&main),
        spare_read_only: marked_read_only(&spare),
    })
    .map_err(refused)?;
    let spare_action = match probe(&mut spare)? {
        Probe::Zeroed => "format",
        Probe::Foreign if format => "format",
        Probe::Foreign => {
            return Err(Error::new(Kind::Refused, "Spare holds foreign data (add the 'format' feature to overwrite it)"))
        }
        Probe::Ours(inspection) => {
            let Some((_, sb, _)) = inspection.chosen else {
                return Err(Error::new(Kind::Refused, "All metadata copies are invalid"));
            };
            // The kernel also compares the disk's unique id when both sides have one; the
            // tool cannot read it, so it checks size and block size (`docs/dm-remap.8.md`).
            let now = MainFingerprint { main_sectors: main.sectors, block_size: main.block_size, id_kind: 0, id: [0; 16] };
            if !sb.main.matches(&now) {
                return Err(Error::new(Kind::Refused, "Spare belongs to another main device"));
            }
            if sb.layout.unit_sectors() != layout.unit_sectors {
                return Err(Error::new(Kind::Refused, "Spare was formatted for another remap unit"));
            }
            if sb.layout.spare_sectors() > spare.sectors {
                return Err(Error::new(Kind::Refused, "Spare device is smaller than its metadata says"));
            }
            "load"
        }
    };
    let mut params = format!("{} {}", main.table_name(), spare.table_name());
    if format {
        params.push_str(" 1 format");
    }
    Ok(Plan { name: name.to_string(), len, params, spare_action })
}

/// Creates the device of `plan`.
///
/// # Errors
/// [`Kind::DeviceMapper`] (no module, the kernel refused), [`Kind::Refused`] for a name in use.
pub fn create(dm: &Dm, plan: &Plan) -> Result<String> {
    if !dm.has_target() {
        return Err(Error::new(Kind::DeviceMapper, format!("the {TARGET} target is not loaded (modprobe dm-remap)")));
    }
    if dm.remap_device(&plan.name).is_ok() {
        return Err(Error::new(Kind::Refused, format!("{}: a dm device of that name exists", plan.name)));
    }
    dm.create(&plan.name, plan.len, &plan.params)?;
    let verb = if plan.spare_action == "format" { "formatted" } else { "loaded" };
    Ok(format!("created /dev/mapper/{} ({}; spare {verb})\n", plan.name, plan.table_line()))
}

/// `remove NAME`: removes a dm-remap-v4 device (and only such a device).
///
/// # Errors
/// [`Kind::NotFound`], [`Kind::Busy`], [`Kind::DeviceMapper`].
pub fn remove(dm: &Dm, name: &str) -> Result<String> {
    dm.require_remap_device(name)?;
    dm.remove(name)?;
    Ok(format!("removed /dev/mapper/{name}\n"))
}
