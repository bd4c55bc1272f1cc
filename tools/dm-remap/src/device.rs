// SPDX-License-Identifier: GPL-2.0

//! Block devices (and image files, for tests) as the tool sees them: size, logical block size,
//! device number, and 4 KiB metadata blocks read and written at sector offsets.
//!
//! Sizes come from sysfs (`/sys/dev/block/MAJ:MIN/size`, in 512-byte sectors, and
//! `queue/logical_block_size`), so no ioctl is needed; a regular file counts as a device with
//! 512-byte blocks.

use crate::error::{Error, Kind, Result};
use dm_remap_core::metadata::{BLOCK_BYTES, SECTOR_BYTES};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How a device is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only, shared: reading a device in use is allowed.
    Read,
    /// Read and write, exclusive (`O_EXCL` on a block device): refused with `EBUSY` while a
    /// table, a mount or another exclusive opener holds it.
    WriteExclusive,
}

/// An open device or image file.
#[derive(Debug)]
pub struct Device {
    /// The path as given.
    pub path: String,
    file: File,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// Logical block size in bytes (512 for a regular file).
    pub block_size: u32,
    /// `(major, minor)` of a block device; `None` for a regular file.
    pub devno: Option<(u32, u32)>,
}

/// `(major, minor)` of a block device node, `None` for anything else.
pub fn devno_of(path: &Path) -> Option<(u32, u32)> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let rdev = meta.rdev();
    Some((libc::major(rdev), libc::minor(rdev)))
}

/// The sysfs directory of block device `major:minor`.
pub fn sysfs_dir(devno: (u32, u32)) -> PathBuf {
    PathBuf::from(format!("/sys/dev/block/{}:{}", devno.0, devno.1))
}

/// Reads a sysfs attribute, trimmed.
pub fn read_attr(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Size (sectors) and logical block size (bytes) of block device `devno` from sysfs. A
/// partition has no `queue/`: its disk's (the parent directory) applies.
pub fn block_geometry(devno: (u32, u32)) -> Option<(u64, u32)> {
    let dir = sysfs_dir(devno);
    let sectors = read_attr(&dir.join("size"))?.parse().ok()?;
    let block = read_attr(&dir.join("queue/logical_block_size"))
        .or_else(|| read_attr(&dir.join("../queue/logical_block_size")))?
        .parse()
        .ok()?;
    Some((sectors, block))
}

impl Device {
    /// Opens `path` (a block device or a regular file).
    ///
    /// # Errors
    /// [`Kind::Device`] if it cannot be opened or sized, [`Kind::Busy`] if an exclusive open
    /// is refused with `EBUSY`.
    pub fn open(path: &str, access: Access) -> Result<Self> {
        let mut options = OpenOptions::new();
        options.read(true);
        if access == Access::WriteExclusive {
            options.write(true).custom_flags(libc::O_EXCL);
        }
        let file = options.open(path).map_err(|e| match (access, e.raw_os_error()) {
            (Access::WriteExclusive, Some(libc::EBUSY)) => Error::new(
                Kind::Busy,
                format!("{path}: device is in use (a live dm-remap table, a mount or another exclusive opener); nothing written"),
            ),
            _ => Error::io(path, "cannot open", &e),
        })?;
        let meta = file.metadata().map_err(|e| Error::io(path, "cannot stat", &e))?;
        let (sectors, block_size, devno) = if meta.file_type().is_block_device() {
            let rdev = meta.rdev();
            let devno = (libc::major(rdev), libc::minor(rdev));
            let (sectors, block) = block_geometry(devno)
                .ok_or_else(|| Error::new(Kind::Device, format!("{path}: cannot read its size from sysfs")))?;
            (sectors, block, Some(devno))
        } else if meta.file_type().is_file() {
            (meta.len() / SECTOR_BYTES, 512, None)
        } else {
            return Err(Error::new(Kind::Device, format!("{path}: not a block device or image file")));
        };
        Ok(Self { path: path.to_string(), file, sectors, block_size, devno })
    }

    /// `major:minor` for a table line; the path for an image file.
    pub fn table_name(&self) -> String {
        match self.devno {
            Some((major, minor)) => format!("{major}:{minor}"),
            None => self.path.clone(),
        }
    }

    /// Reads the 4 KiB block at `sector`.
    ///
    /// # Errors
    /// [`Kind::Device`] on a read error or a block past the end.
    pub fn read_block(&mut self, sector: u64) -> Result<[u8; BLOCK_BYTES]> {
        let mut block = [0u8; BLOCK_BYTES];
        let offset = sector.checked_mul(SECTOR_BYTES).ok_or_else(|| self.past_end(sector))?;
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut block))
            .map_err(|e| Error::io(&self.path, &format!("cannot read sector {sector}"), &e))?;
        Ok(block)
    }

    /// Writes the 4 KiB block at `sector` (not yet durable: see [`Device::sync`]).
    ///
    /// # Errors
    /// [`Kind::Device`] on a write error.
    pub fn write_block(&mut self, sector: u64, block: &[u8; BLOCK_BYTES]) -> Result<()> {
        let offset = sector.checked_mul(SECTOR_BYTES).ok_or_else(|| self.past_end(sector))?;
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(block))
            .map_err(|e| Error::io(&self.path, &format!("cannot write sector {sector}"), &e))
    }

    /// Makes every write so far durable (fsync: flushes the device's cache).
    ///
    /// # Errors
    /// [`Kind::Device`] if the flush fails.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io(&self.path, "cannot flush", &e))
    }

    fn past_end(&self, sector: u64) -> Error {
        Error::new(Kind::Device, format!("{}: sector {sector} is past the end", self.path))
    }
}
