// SPDX-License-Identifier: GPL-2.0

//! Device-mapper ioctls through the `devicemapper` crate: create, remove, status, table,
//! messages, and the `/dev/mapper` node when no udev makes it.

use crate::error::{Error, Kind, Result};
use devicemapper::{DevId, DmFlags, DmName, DmOptions, DM};
use std::path::Path;

/// The target name in table lines.
pub const TARGET: &str = "dm-remap-v4";

/// A connection to `/dev/mapper/control`.
pub struct Dm {
    dm: DM,
}

/// A dm-remap-v4 device: its name, device number and its one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemapDevice {
    /// The /dev/mapper name.
    pub name: String,
    /// `(major, minor)`; the kernel name is `dm-<minor>`.
    pub devno: (u32, u32),
    /// Target start and length, in sectors.
    pub start: u64,
    /// Target length in sectors.
    pub len: u64,
}

fn dm_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(Kind::DeviceMapper, format!("{what}: {e}"))
}

fn name(name: &str) -> Result<&DmName> {
    DmName::new(name).map_err(|e| Error::new(Kind::Refused, format!("invalid device name '{name}': {e}")))
}

/// Whether udev manages /dev/mapper (as libdevmapper decides: its control socket exists).
fn udev_running() -> bool {
    Path::new("/run/udev/control").exists()
}

impl Dm {
    /// Opens the control device.
    ///
    /// # Errors
    /// [`Kind::DeviceMapper`] if device-mapper is not available (no permission, no dm-mod).
    pub fn open() -> Result<Self> {
        DM::new().map(|dm| Self { dm }).map_err(|_| control_error())
    }

    /// Whether the kernel knows the dm-remap-v4 target (the module is loaded).
    pub fn has_target(&self) -> bool {
        self.dm.list_versions().map(|v| v.iter().any(|t| t.0 == TARGET)).unwrap_or(false)
    }

    /// Every dm device whose table is one dm-remap-v4 target.
    ///
    /// # Errors
    /// [`Kind::DeviceMapper`] if the devices cannot be listed.
    pub fn remap_devices(&self) -> Result<Vec<RemapDevice>> {
        let mut out = Vec::new();
        for (dm_name, device, _) in self.dm.list_devices().map_err(|e| dm_error("cannot list dm devices", e))? {
            if let Ok(Some(dev)) = self.remap_device(&dm_name.to_string()) {
                if dev.devno == (device.major, device.minor) {
                    out.push(dev);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Device `name` if it is a dm-remap-v4 device, `None` if it has another table.
    ///
    /// # Errors
    /// [`Kind::NotFound`] if there is no such device.
    pub fn remap_device(&self, dev_name: &str) -> Result<Option<RemapDevice>> {
        let id = DevId::Name(name(dev_name)?);
        let (info, table) = self
            .dm
            .table_status(&id, DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE))
            .map_err(|_| Error::new(Kind::NotFound, format!("{dev_name}: no such dm device")))?;
        Ok(match table.as_slice() {
            [(start, len, target, _)] if target == TARGET => Some(RemapDevice {
                name: dev_name.to_string(),
                devno: (info.device().major, info.device().minor),
                start: *start,
                len: *len,
            }),
            _ => None,
        })
    }

    /// Like [`Dm::remap_device`], but a device with another table is an error.
    ///
    /// # Errors
    /// [`Kind::NotFound`].
    pub fn require_remap_device(&self, dev_name: &str) -> Result<RemapDevice> {
        self.remap_device(dev_name)?
            .ok_or_else(|| Error::new(Kind::NotFound, format!("{dev_name}: not a {TARGET} device")))
    }

    /// The target's INFO status (after `<start> <len> dm-remap-v4`).
    ///
    /// # Errors
    /// [`Kind::NotFound`] or [`Kind::DeviceMapper`].
    pub fn info_status(&self, dev_name: &str) -> Result<String> {
        self.status(dev_name, DmOptions::default())
    }

    /// The target's TABLE status (its constructor arguments, devices as `major:minor`).
    ///
    /// # Errors
    /// [`Kind::NotFound`] or [`Kind::DeviceMapper`].
    pub fn table(&self, dev_name: &str) -> Result<String> {
        self.status(dev_name, DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE))
    }

    fn status(&self, dev_name: &str, options: DmOptions) -> Result<String> {
        let id = DevId::Name(name(dev_name)?);
        let (_, lines) = self.dm.table_status(&id, options).map_err(|e| dm_error(&format!("{dev_name}: status"), e))?;
        match lines.as_slice() {
            [(_, _, target, params)] if target == TARGET => Ok(params.clone()),
            _ => Err(Error::new(Kind::NotFound, format!("{dev_name}: not a {TARGET} device"))),
        }
    }

    /// Sends a target message (`dmsetup message NAME 0 MESSAGE`) and returns its output.
    ///
    /// # Errors
    /// [`Kind::DeviceMapper`] with the errno when the target refuses the message.
    pub fn message(&self, dev_name: &str, message: &str) -> Result<String> {
        self.try_message(dev_name, message)
            .map_err(|e| dm_error(&format!("{dev_name}: message '{message}' refused"), e.text))
    }

    /// Like [`Dm::message`], but a refusal keeps its errno, so that the caller can say what it
    /// means for that message.
    ///
    /// # Errors
    /// The refusal: its errno (if the ioctl gave one) and a short text.
    pub fn try_message(&self, dev_name: &str, message: &str) -> std::result::Result<String, MessageRefusal> {
        let id = DevId::Name(name(dev_name).map_err(|e| MessageRefusal { errno: None, text: e.message })?);
        self.dm
            .target_msg(&id, None, message)
            .map(|(_, out)| out.unwrap_or_default())
            .map_err(|e| MessageRefusal { errno: errno_of(&e), text: errno_text(&e) })
    }

    /// Creates device `dev_name` with one dm-remap-v4 target `0 len dm-remap-v4 params` and
    /// activates it; on failure nothing is left behind.
    ///
    /// # Errors
    /// [`Kind::DeviceMapper`] (the kernel's reason is in its log: `dmesg | grep dm-remap-v4`).
    pub fn create(&self, dev_name: &str, len: u64, params: &str) -> Result<RemapDevice> {
        let dm_name = name(dev_name)?;
        let id = DevId::Name(dm_name);
        let info = self
            .dm
            .device_create(dm_name, None, DmOptions::default())
            .map_err(|e| dm_error(&format!("{dev_name}: cannot create the device"), errno_text(&e)))?;
        let table = [(0u64, len, TARGET.to_string(), params.to_string())];
        let loaded = self
            .dm
            .table_load(&id, &table, DmOptions::default())
            .and_then(|_| self.dm.device_suspend(&id, DmOptions::default()));
        if let Err(e) = loaded {
            let _ = self.dm.device_remove(&id, DmOptions::default());
            return Err(dm_error(
                &format!("{dev_name}: the kernel refused the table (its reason: dmesg | grep {TARGET})"),
                errno_text(&e),
            ));
        }
        let devno = (info.device().major, info.device().minor);
        if !udev_running() {
            make_node(dev_name, devno)?;
        }
        Ok(RemapDevice { name: dev_name.to_string(), devno, start: 0, len })
    }

    /// Removes device `dev_name` (its metadata is committed by the target's dtr).
    ///
    /// # Errors
    /// [`Kind::Busy`] while it is open (mounted, ...), [`Kind::NotFound`], [`Kind::DeviceMapper`].
    pub fn remove(&self, dev_name: &str) -> Result<()> {
        let id = DevId::Name(name(dev_name)?);
        self.dm.device_remove(&id, DmOptions::default()).map_err(|e| {
            let text = errno_text(&e);
            if text.contains("EBUSY") {
                Error::new(Kind::Busy, format!("{dev_name}: device is in use (mounted or open); not removed"))
            } else {
                dm_error(&format!("{dev_name}: cannot remove"), text)
            }
        })?;
        if !udev_running() {
            let _ = std::fs::remove_file(format!("/dev/mapper/{dev_name}"));
        }
        Ok(())
    }
}

/// A message the kernel (or the ioctl) refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRefusal {
    /// The errno (`libc::EINVAL`, ...) when the ioctl failed with one.
    pub errno: Option<i32>,
    /// The errno as a short text (`EINVAL: Invalid argument`), else the error's own text.
    pub text: String,
}

/// The errno of a failed ioctl.
fn errno_of(e: &devicemapper::DmError) -> Option<i32> {
    use devicemapper::{errors, DmError};
    match e {
        DmError::Core(errors::Error::Ioctl(_, _, _, errno)) => Some(**errno as i32),
        _ => None,
    }
}

/// The errno of a failed ioctl as a short text (`EINVAL`, ...), else the error's own text
/// without the crate's prefixes.
fn errno_text(e: &devicemapper::DmError) -> String {
    use devicemapper::{errors, DmError};
    match e {
        DmError::Core(errors::Error::Ioctl(_, _, _, errno)) => format!("{errno:?}: {}", errno.desc()),
        DmError::Core(other) => other.to_string(),
        other => other.to_string(),
    }
}

/// Why `/dev/mapper/control` cannot be opened, in the operator's words (the crate only says
/// "DM context not initialized").
fn control_error() -> Error {
    const CONTROL: &str = "/dev/mapper/control";
    let e = match std::fs::File::open(CONTROL) {
        Ok(_) => return Error::new(Kind::DeviceMapper, format!("{CONTROL}: cannot be used as the device-mapper control device")),
        Err(e) => e,
    };
    let text = match e.raw_os_error() {
        Some(libc::ENOENT) => format!("device-mapper is not available: {CONTROL} does not exist (load it: modprobe dm_mod)"),
        Some(libc::EACCES | libc::EPERM) => format!("{CONTROL}: permission denied (device-mapper needs root)"),
        Some(libc::ENODEV | libc::ENXIO) => format!("device-mapper is not available: {CONTROL} has no driver (load it: modprobe dm_mod)"),
        _ => format!("{CONTROL}: cannot open: {e}"),
    };
    Error::new(Kind::DeviceMapper, text)
}

/// Makes `/dev/mapper/NAME` for `devno` (what udev, or dmsetup without udev, does).
fn make_node(dev_name: &str, devno: (u32, u32)) -> Result<()> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let path = format!("/dev/mapper/{dev_name}");
    let _ = std::fs::remove_file(&path);
    let dev = makedev(u64::from(devno.0), u64::from(devno.1));
    mknod(path.as_str(), SFlag::S_IFBLK, Mode::from_bits_truncate(0o600), dev)
        .map_err(|e| Error::io(&path, "cannot create the device node", &std::io::Error::from(e)))
}
