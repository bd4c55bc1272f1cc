// SPDX-License-Identifier: GPL-2.0

//! Which disks a live device is made of, for `status --json` and `status --prometheus`: the
//! main and spare devices of its table (device number, `/dev` node, stable
//! `/dev/disk/by-id` names) and the spare's UUID, read from its metadata (the one `dump`
//! prints and a remaptab can name as `UUID=`).

use crate::device::{devno_of, sysfs_dir, Access, Device};
use crate::offline::uuid_string;
use dm_remap_core::metadata::{decode_superblock, probe_sectors};
use serde::Serialize;
use std::path::Path;

/// Where udev makes the stable names of disks.
pub const BY_ID_DIR: &str = "/dev/disk/by-id";

/// One disk of a device.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Disk {
    /// `major:minor`, as the table names it.
    pub devno: String,
    /// `/dev/<kernel name>` (from sysfs), `None` if sysfs does not know the device.
    pub path: Option<String>,
    /// Every link in `/dev/disk/by-id` that points to the device, sorted (empty without udev).
    pub by_id: Vec<String>,
}

/// The disks of a device, as `status --json` prints them (all `null` when the table could
/// not be read).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Disks {
    /// The main (failing) disk.
    pub main: Option<Disk>,
    /// The spare.
    pub spare: Option<Disk>,
    /// The spare's UUID from its metadata, `None` if no superblock could be read.
    pub spare_uuid: Option<String>,
}

/// `major:minor` parsed.
fn parse_devno(word: &str) -> Option<(u32, u32)> {
    let (major, minor) = word.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The main and spare device numbers of a dm-remap-v4 TABLE status (`<main> <spare>
/// [<features>]`, devices as `major:minor`); `None` for anything else.
pub fn table_devices(table: &str) -> Option<((u32, u32), (u32, u32))> {
    let mut words = table.split_ascii_whitespace();
    Some((parse_devno(words.next()?)?, parse_devno(words.next()?)?))
}

/// `/dev/<DEVNAME>` of block device `devno`, from its sysfs `uevent`.
fn dev_path(devno: (u32, u32)) -> Option<String> {
    let uevent = std::fs::read_to_string(sysfs_dir(devno).join("uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(format!("/dev/{name}"))
}

/// The links in `by_id_dir` that resolve to block device `devno`, sorted.
pub fn by_id_links(devno: (u32, u32), by_id_dir: &Path) -> Vec<String> {
    let mut links: Vec<String> = std::fs::read_dir(by_id_dir)
        .map(|dir| {
            dir.flatten()
                .map(|entry| entry.path())
                .filter(|path| devno_of(path) == Some(devno))
                .filter_map(|path| path.to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    links.sort();
    links
}

/// The disk `devno`, its stable names looked up in `by_id_dir`.
pub fn disk(devno: (u32, u32), by_id_dir: &Path) -> Disk {
    Disk { devno: format!("{}:{}", devno.0, devno.1), path: dev_path(devno), by_id: by_id_links(devno, by_id_dir) }
}

/// The UUID in the first superblock found at its own place on `path` (every copy holds the
/// same UUID); `None` if the device cannot be read or holds none. Reads at most 55 blocks.
pub fn spare_uuid(path: &str) -> Option<String> {
    let mut dev = Device::open(path, Access::Read).ok()?;
    probe_sectors(dev.sectors).find_map(|sector| {
        let sb = decode_superblock(&dev.read_block(sector).ok()?).ok()?;
        (sb.home_sector() == Some(sector)).then(|| uuid_string(&sb.uuid))
    })
}

/// The disks named by TABLE status `table`, stable names from `by_id_dir`, the spare's UUID
/// read from its `/dev` node (`None` without one).
pub fn disks(table: &str, by_id_dir: &Path) -> Disks {
    let Some((main, spare)) = table_devices(table) else {
        return Disks::default();
    };
    let spare = disk(spare, by_id_dir);
    let spare_uuid = spare.path.as_deref().and_then(spare_uuid);
    Disks { main: Some(disk(main, by_id_dir)), spare: Some(spare), spare_uuid }
}
