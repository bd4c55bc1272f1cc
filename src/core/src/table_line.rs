// SPDX-License-Identifier: GPL-2.0

//! The dm-remap-v4 table line: parsing of the constructor arguments and validation of the
//! device geometry they name.
//!
//! Grammar (the arguments after `<start> <len> dm-remap-v4`, as dm passes them to ctr):
//!
//! ```text
//! <main_dev> <spare_dev> [<#feature_args> <feature_arg>...]
//! ```
//!
//! Feature arguments follow the device-mapper convention (dm-flakey, dm-thin-pool): a decimal
//! count, then that many words. The one feature is `format`: a spare that holds data which is
//! not dm-remap metadata may be formatted (without it such a spare is refused). A spare holding
//! dm-remap metadata is always loaded, never reformatted, so the word is safe to keep in a
//! table line.
//!
//! Every refusal is a [`TableError`] whose message is what ctr puts in `ti->error`; ctr returns
//! `-EINVAL` for all of them except device-open failures, which keep the kernel's errno.

use core::ffi::CStr;
use core::num::{NonZeroU32, NonZeroU64};

/// Sectors are always 512 bytes, whatever the device's logical block size.
pub const SECTOR_SIZE: u32 = 512;

/// Sectors at the start of the spare reserved for the metadata copies (the last default copy
/// starts at sector 8192 and spans up to 1024 sectors). Spare units are never allocated here.
pub const SPARE_METADATA_SECTORS: u64 = 9216;

/// The smallest spare accepted, in sectors (5 MiB): the metadata area plus at least 1024
/// sectors of data area.
pub const MIN_SPARE_SECTORS: u64 = 10240;

/// A constructor argument that was refused.
///
/// Each variant has one short, distinct message for `ti->error` ([`TableError::message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// Fewer than the two device arguments.
    NotEnoughArguments,
    /// The feature count is not a decimal number or exceeds the remaining arguments.
    InvalidFeatureCount,
    /// Words remain after the feature arguments.
    TooManyArguments,
    /// A feature word this version does not know.
    UnknownFeature,
    /// A feature word given twice.
    DuplicateFeature,
    /// `dm_get_device` failed for the main device (ctr returns the kernel's errno).
    CannotOpenMain,
    /// `dm_get_device` failed for the spare device (ctr returns the kernel's errno).
    CannotOpenSpare,
    /// Main and spare resolve to the same block device.
    SameDevice,
    /// `start + len` of the target is beyond the end of the main device.
    TargetBeyondMain,
    /// The spare is smaller than [`MIN_SPARE_SECTORS`].
    SpareTooSmall,
    /// The target's start is not a whole number of the main device's logical blocks.
    StartMisaligned,
    /// The target's length is not a whole number of the main device's logical blocks.
    LengthMisaligned,
    /// The spare cannot hold a main unit at its own granularity.
    SpareBlockSizeTooLarge,
    /// A logical block size that is not a power of two between 512 and 4096 bytes.
    InvalidBlockSize,
    /// The table is read-only (`dmsetup create --readonly`): the target writes the spare's
    /// metadata at creation and on every remap, so it is not activated read-only.
    ReadOnlyTable,
    /// The main device is read-only (`blockdev --setro`) but the table is read-write.
    MainReadOnly,
    /// The spare device is read-only but the table is read-write.
    SpareReadOnly,
}

impl TableError {
    /// The message ctr stores in `ti->error` (a static, NUL-terminated string).
    pub fn message(self) -> &'static CStr {
        match self {
            Self::NotEnoughArguments => c"Not enough arguments",
            Self::InvalidFeatureCount => c"Invalid feature argument count",
            Self::TooManyArguments => c"Too many arguments",
            Self::UnknownFeature => c"Unknown feature argument",
            Self::DuplicateFeature => c"Feature argument given twice",
            Self::CannotOpenMain => c"Cannot open main device",
            Self::CannotOpenSpare => c"Cannot open spare device",
            Self::SameDevice => c"Main and spare are the same device",
            Self::TargetBeyondMain => c"Target does not fit on the main device",
            Self::SpareTooSmall => c"Spare device too small",
            Self::StartMisaligned => c"Target start is not a multiple of the logical block size",
            Self::LengthMisaligned => c"Target length is not a multiple of the logical block size",
            Self::SpareBlockSizeTooLarge => c"Spare logical block size is larger than main's",
            Self::InvalidBlockSize => c"Unsupported logical block size",
            Self::ReadOnlyTable => c"Read-only tables are not supported: the spare's metadata is written",
            Self::MainReadOnly => c"Main device is read-only",
            Self::SpareReadOnly => c"Spare device is read-only",
        }
    }
}

/// Optional behaviour selected by feature arguments, kept so that the table status can
/// re-emit exactly what was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    /// `format`: a spare holding foreign data (neither zeroed nor dm-remap metadata) may be
    /// formatted.
    pub format: bool,
}

impl Features {
    /// The number of feature words [`Features::write_words`] emits.
    pub fn word_count(&self) -> usize {
        usize::from(self.format)
    }

    /// Writes the feature words, each preceded by a space.
    pub fn write_words(&self, w: &mut dyn core::fmt::Write) -> core::fmt::Result {
        if self.format {
            w.write_str(" format")?;
        }
        Ok(())
    }
}

/// The parsed constructor arguments. Device arguments are borrowed as given (a path or
/// `major:minor`); the caller opens them with `dm_get_device`.
#[derive(Debug, PartialEq, Eq)]
pub struct TableArgs<'a, A> {
    /// The main (failing) device, as given.
    pub main: &'a A,
    /// The spare device, as given.
    pub spare: &'a A,
    /// Feature arguments.
    pub features: Features,
}

/// Parses the constructor arguments (`argv` without the start, length and target name); each
/// argument is anything that views as bytes (dm's C strings in the kernel).
///
/// # Errors
/// [`TableError::NotEnoughArguments`], [`TableError::InvalidFeatureCount`],
/// [`TableError::UnknownFeature`], [`TableError::DuplicateFeature`] or
/// [`TableError::TooManyArguments`].
pub fn parse_args<A: AsRef<[u8]>>(argv: &[A]) -> Result<TableArgs<'_, A>, TableError> {
    let (main, spare, rest) = match argv {
        [main, spare, rest @ ..] => (main, spare, rest),
        _ => return Err(TableError::NotEnoughArguments),
    };
    let mut features = Features::default();
    if let Some((count, rest)) = rest.split_first() {
        let count = parse_decimal(count.as_ref()).ok_or(TableError::InvalidFeatureCount)?;
        let count = usize::try_from(count).map_err(|_| TableError::InvalidFeatureCount)?;
        if count > rest.len() {
            return Err(TableError::InvalidFeatureCount);
        }
        let (words, extra) = rest.split_at(count);
        for word in words {
            parse_feature(&mut features, word.as_ref())?;
        }
        if !extra.is_empty() {
            return Err(TableError::TooManyArguments);
        }
    }
    Ok(TableArgs {
        main,
        spare,
        features,
    })
}

fn parse_feature(features: &mut Features, word: &[u8]) -> Result<(), TableError> {
    match word {
        b"format" if features.format => Err(TableError::DuplicateFeature),
        b"format" => {
            features.format = true;
            Ok(())
        }
        _ => Err(TableError::UnknownFeature),
    }
}

/// Parses a plain unsigned decimal number: digits only, no sign, no spaces, no overflow.
pub fn parse_decimal(word: &[u8]) -> Option<u64> {
    if word.is_empty() {
        return None;
    }
    word.iter().try_fold(0u64, |acc, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// What ctr learns about the two devices and the target before accepting them.
/// All sizes in 512-byte sectors, block sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// `ti->begin`: where the target starts in the dm device.
    pub target_begin: u64,
    /// `ti->len`: the target's length.
    pub target_len: u64,
    /// Size of the main device.
    pub main_sectors: u64,
    /// Logical block size of the main device.
    pub main_block_size: u32,
    /// Size of the spare device.
    pub spare_sectors: u64,
    /// Logical block size of the spare device.
    pub spare_block_size: u32,
    /// Main and spare are the same block device (same `dev_t`).
    pub same_device: bool,
    /// The table was loaded read-only (its mode lacks write).
    pub table_read_only: bool,
    /// The main device is marked read-only (`bdev_read_only`).
    pub main_read_only: bool,
    /// The spare device is marked read-only.
    pub spare_read_only: bool,
}

/// The accepted layout: the remap unit and the spare's data area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The remap unit in sectors: the main device's logical block size / 512 (1 or 8 usually).
    pub unit_sectors: u32,
    /// `log2(unit_sectors)`: sector → unit is `sector >> unit_shift`.
    pub unit_shift: u32,
    /// First spare unit of the data area (after the metadata area), in units.
    pub spare_data_start: u64,
    /// One past the last usable spare unit, in units.
    pub spare_data_end: u64,
}

impl Layout {
    /// The unit containing `sector`.
    pub fn unit_of(&self, sector: u64) -> u64 {
        // unit_shift < 64 by construction; wrapping_shr only avoids a panic path.
        sector.wrapping_shr(self.unit_shift)
    }

    /// The first sector of `unit`.
    pub fn sector_of(&self, unit: u64) -> u64 {
        unit.wrapping_shl(self.unit_shift)
    }

    /// Number of spare units available for remaps.
    pub fn spare_units(&self) -> u64 {
        self.spare_data_end.saturating_sub(self.spare_data_start)
    }
}

/// Checks the devices and target against each other and derives the [`Layout`].
///
/// The target maps its sector `s` (relative to `target_begin`) to main sector `s`, so the
/// target must fit on main; the unit is main's logical block size, so the target must be
/// aligned to it, and the spare must address that unit (its block size no larger). Both
/// devices are written (the spare's metadata at once), so the table and both devices must be
/// writable.
///
/// # Errors
/// [`TableError::SameDevice`], [`TableError::ReadOnlyTable`], [`TableError::MainReadOnly`],
/// [`TableError::SpareReadOnly`], [`TableError::InvalidBlockSize`],
/// [`TableError::StartMisaligned`], [`TableError::LengthMisaligned`],
/// [`TableError::TargetBeyondMain`], [`TableError::SpareBlockSizeTooLarge`] or
/// [`TableError::SpareTooSmall`].
pub fn validate_geometry(g: &Geometry) -> Result<Layout, TableError> {
    if g.same_device {
        return Err(TableError::SameDevice);
    }
    // Before anything is written: a read-only device would take the writes (the block layer
    // only warns), against the administrator's setting.
    if g.table_read_only {
        return Err(TableError::ReadOnlyTable);
    }
    if g.main_read_only {
        return Err(TableError::MainReadOnly);
    }
    if g.spare_read_only {
        return Err(TableError::SpareReadOnly);
    }
    let unit_sectors = block_size_sectors(g.main_block_size)?;
    block_size_sectors(g.spare_block_size)?;
    // Division by a NonZero cannot fail: no panic path in the kernel build.
    let unit = NonZeroU64::from(unit_sectors);
    if g.target_begin % unit != 0 {
        return Err(TableError::StartMisaligned);
    }
    if g.target_len == 0 || g.target_len % unit != 0 {
        return Err(TableError::LengthMisaligned);
    }
    if g.target_len > g.main_sectors {
        return Err(TableError::TargetBeyondMain);
    }
    if g.spare_block_size > g.main_block_size {
        return Err(TableError::SpareBlockSizeTooLarge);
    }
    if g.spare_sectors < MIN_SPARE_SECTORS {
        return Err(TableError::SpareTooSmall);
    }
    let spare_data_start = SPARE_METADATA_SECTORS / unit + u64::from(SPARE_METADATA_SECTORS % unit != 0);
    let spare_data_end = g.spare_sectors / unit;
    if spare_data_end <= spare_data_start {
        return Err(TableError::SpareTooSmall);
    }
    Ok(Layout {
        unit_sectors: unit_sectors.get(),
        unit_shift: unit_sectors.trailing_zeros(),
        spare_data_start,
        spare_data_end,
    })
}

/// The largest remap unit, in bytes: one page, so that a unit can be copied through one page.
pub const MAX_UNIT_BYTES: u32 = 4096;

/// A logical block size in sectors, if it is a power of two from 512 to [`MAX_UNIT_BYTES`].
fn block_size_sectors(bytes: u32) -> Result<NonZeroU32, TableError> {
    if bytes.is_power_of_two() && (SECTOR_SIZE..=MAX_UNIT_BYTES).contains(&bytes) {
        NonZeroU32::new(bytes / SECTOR_SIZE).ok_or(TableError::InvalidBlockSize)
    } else {
        Err(TableError::InvalidBlockSize)
    }
}

#[cfg(test)]
mod tests;
