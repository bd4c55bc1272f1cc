// SPDX-License-Identifier: GPL-2.0

//! The on-disk metadata of the spare device: placement, encoding, decoding, validation and the
//! choice among the five copies. The format is specified in `docs/metadata-format.md`; this
//! module is its only implementation.
//!
//! # Units
//! - *sector*: 512 bytes ([`SECTOR_BYTES`]), whatever the devices' block sizes;
//! - *block*: a 4096-byte metadata block ([`BLOCK_BYTES`], [`BLOCK_SECTORS`] sectors);
//! - *unit*: the remap granularity, `unit_sectors` sectors (1, 2, 4 or 8); main units and
//!   spare units are numbered from 0 at the start of their device.
//!
//! # Overview
//! - [`layout_for`] / [`Layout::new`]: where everything lives on the spare
//!   (`[0, 9C)` sectors: five copies at `0, C, 2C, 4C, 8C`; the data area after it).
//! - [`encode_superblock`] / [`decode_superblock`]: block 0 of a copy ([`Superblock`]).
//! - [`encode_block`], [`set_entry`] + [`seal_block`] / [`decode_block`]: the remap-array and
//!   pending-list blocks ([`BlockView`]).
//! - [`CopyChecker`]: validates one copy block by block, in bounded memory, and hands every
//!   block's entries to the caller as it goes (the caller checks that no main unit appears
//!   twice, see [`CopyChecker`]).
//! - [`choose`]: which copy to load and which copies to rewrite; [`classify`]: what is on a
//!   spare before it is formatted; [`probe_sectors`]: where superblocks can be found when the
//!   geometry is not known yet.
//!
//! Nothing here allocates, uses `unsafe` or has a panic path on any input: a hostile spare
//! yields a [`FormatError`], and every size derived from a decoded superblock is bounded by
//! its checked geometry (see `docs/metadata-format.md`, "Bounds").

#[cfg(test)]
mod tests;

// Sub-modules are named by explicit paths: the kernel module includes this file with
// `#[path]`, where implicit sub-module paths would be resolved differently.
#[path = "metadata/block.rs"]
mod block;
#[path = "metadata/copy.rs"]
mod copy;
#[path = "metadata/layout.rs"]
mod layout;
#[path = "metadata/superblock.rs"]
mod superblock;

pub use block::{
    block_checksum, decode_block, encode_block, pending_from_raw, pending_to_raw, seal_block,
    set_entry, BlockKind, BlockView, RemapEntry,
};
pub use copy::{
    choose, classify, duplicate_unit, probe_sectors, Choice, Classification, CopyChecker,
    CopySummary, Fed, PendingBlock, RemapBlock,
};
pub use layout::{default_pending_blocks, layout_for, BlockPos, Layout};
pub use superblock::{
    decode_superblock, encode_superblock, MainFingerprint, Superblock, FLAG_NEEDS_CHECK,
    HEADER_BYTES, KNOWN_FLAGS, MAIN_ID_NONE,
};

/// Bytes per sector: every sector number and count in this module is in 512-byte sectors.
pub const SECTOR_BYTES: u64 = 512;

/// Bytes per metadata block (superblock, remap-array block, pending-list block).
pub const BLOCK_BYTES: usize = 4096;

/// Sectors per metadata block (4096 / 512).
pub const BLOCK_SECTORS: u64 = 8;

/// Number of metadata copies on the spare.
pub const COPIES: usize = 5;

/// Copy `i` starts at sector `COPY_FACTORS[i] * C`, where `C` is the copy size in sectors.
pub const COPY_FACTORS: [u64; COPIES] = [0, 1, 2, 4, 8];

/// The metadata area is `[0, AREA_FACTOR * C)` sectors (the last copy starts at `8C` and
/// spans at most `C` sectors).
pub const AREA_FACTOR: u64 = 9;

/// The smallest copy size `C`, in sectors (512 KiB, 128 blocks); also the design default.
pub const MIN_COPY_SECTORS: u64 = 1024;

/// 64-bit entries per remap-array or pending-list block (bytes 0..4080).
pub const ENTRIES_PER_BLOCK: usize = 510;

/// [`ENTRIES_PER_BLOCK`] as a `u64`, for unit arithmetic.
pub const ENTRIES_PER_BLOCK_U64: u64 = 510;

/// The first 8 bytes of every superblock.
pub const MAGIC: [u8; 8] = *b"DMREMAP4";

/// The format version this code reads and writes.
pub const VERSION: u32 = 1;

/// The largest commit sequence number (`2^63 - 1`): a superblock with a higher `seq` is
/// invalid ([`FormatError::BadSequence`]). No device commits that often (2^63 commits take
/// 292 000 years at a million a second), so a higher value is damage or a hostile spare; were it
/// accepted, the next commits could not be numbered (see [`next_seq`]).
pub const MAX_SEQ: u64 = (1 << 63) - 1;

/// The sequence number of the commit after `seq`, or `None` once `seq` is [`MAX_SEQ`] (or
/// beyond): the caller refuses the commit rather than write a `seq` that would not load.
pub const fn next_seq(seq: u64) -> Option<u64> {
    if seq >= MAX_SEQ {
        None
    } else {
        Some(seq + 1)
    }
}

/// Byte offset of the CRC32C in every block (the checksum covers bytes `0..4092`).
pub const CRC_OFFSET: usize = 4092;

/// Which part of the geometry of a [`Layout`] (or of a superblock's copy of it) is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Geometry {
    /// `unit_sectors` is not 1, 2, 4 or 8.
    UnitSectors,
    /// The copy size `C` is not a power of two `>= 1024`, or `9C` overflows.
    CopySectors,
    /// The stored `data_start` is not `9C / unit_sectors`.
    DataStart,
    /// `data_units` is 0.
    DataUnits,
    /// The stored `remap_blocks` is not `ceil(data_units / 510)`.
    RemapBlocks,
    /// `pending_blocks` is 0, or its capacity overflows.
    PendingBlocks,
    /// `1 + remap_blocks + pending_blocks > C / 8`: a copy does not fit in `C` sectors.
    CopyFull,
    /// `9C + data_units * unit_sectors > spare_sectors`: the data area ends beyond the spare.
    SpareTooSmall,
}

impl Geometry {
    /// A short description of the inconsistency.
    pub const fn message(self) -> &'static str {
        match self {
            Self::UnitSectors => "unit size is not 1, 2, 4 or 8 sectors",
            Self::CopySectors => "copy size is not a power of two of at least 1024 sectors",
            Self::DataStart => "data area does not start right after the metadata area",
            Self::DataUnits => "data area is empty",
            Self::RemapBlocks => "remap array size does not match the data area",
            Self::PendingBlocks => "pending list size is invalid",
            Self::CopyFull => "a metadata copy does not fit in its copy size",
            Self::SpareTooSmall => "data area ends beyond the spare device",
        }
    }
}

/// Why metadata was refused (decoding, validation, encoding of inconsistent values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// A superblock does not start with [`MAGIC`].
    BadMagic,
    /// A superblock of another format version (the value found).
    BadVersion(u32),
    /// The CRC32C stored at bytes 4092..4096 does not match (for blocks: with the expected
    /// block index mixed in, so a block written at the wrong place fails here too).
    BadChecksum,
    /// A superblock's `header_bytes` is not [`HEADER_BYTES`].
    BadHeaderSize,
    /// A reserved byte (superblock padding and tail, block trailer bytes 4090..4092) is not 0.
    ReservedNotZero,
    /// A superblock flag this version does not know is set.
    UnknownFlags,
    /// A superblock's copy index is not below [`COPIES`].
    BadCopyIndex,
    /// A superblock's copy index is not the copy it was read as (it was found at another
    /// copy's place).
    WrongCopy,
    /// A sequence number is 0 (commits are numbered from 1) or above [`MAX_SEQ`].
    BadSequence,
    /// The geometry is inconsistent; which part is said.
    BadGeometry(Geometry),
    /// The main-device fingerprint is inconsistent: `main_block_size` is not
    /// `unit_sectors * 512`, the device has no whole unit, or id kind 0 with a non-zero id.
    BadFingerprint,
    /// A superblock count exceeds its capacity: `remap_count + bad_count > data_units`,
    /// `pending_count > pending capacity` or `remap_count + pending_count > main units`.
    BadCounts,
    /// `high_water` is outside `[data_start, data_start + data_units]`.
    BadHighWater,
    /// A block's `kind` field is not the kind expected at its place.
    BadBlockKind,
    /// A block's sequence number is above its copy's superblock's.
    BlockFromFuture,
    /// An entry is invalid: a main unit `>= main units`, `u64::MAX` in the pending list, or a
    /// non-zero remap entry past `data_units` in the last remap block.
    BadEntry,
    /// The entries of a copy do not add up to the superblock's `remap_count`, `bad_count` or
    /// `pending_count`.
    CountMismatch,
    /// A main unit appears twice in a copy (remap array and/or pending list). Reported by the
    /// caller's duplicate check (see [`CopyChecker`]), never by this module.
    DuplicateMainUnit,
    /// Encoding: more than [`ENTRIES_PER_BLOCK`] entries, or a slot `>= 510`.
    TooManyEntries,
    /// [`CopyChecker::feed`] after the copy's last block.
    UnexpectedBlock,
    /// [`CopyChecker::finish`] before the copy's last block was fed.
    MissingBlocks,
    /// [`choose`]: no copy is valid.
    NoValidCopy,
    /// [`Superblock::check_devices`]: the spare is now smaller than the recorded size.
    SpareShrunk,
    /// [`Superblock::check_devices`]: the main device's size, block size or identity is not
    /// the recorded one.
    MainMismatch,
}

impl FormatError {
    /// A short description for logs.
    pub const fn message(self) -> &'static str {
        match self {
            Self::BadMagic => "not a dm-remap superblock (bad magic)",
            Self::BadVersion(_) => "unsupported metadata format version",
            Self::BadChecksum => "checksum mismatch",
            Self::BadHeaderSize => "unexpected superblock header size",
            Self::ReservedNotZero => "reserved bytes are not zero",
            Self::UnknownFlags => "unknown superblock flags",
            Self::BadCopyIndex => "copy index out of range",
            Self::WrongCopy => "superblock belongs to another copy",
            Self::BadSequence => "sequence number is zero or too large",
            Self::BadGeometry(geometry) => geometry.message(),
            Self::BadFingerprint => "inconsistent main device fingerprint",
            Self::BadCounts => "superblock counts exceed their capacity",
            Self::BadHighWater => "allocator high-water mark outside the data area",
            Self::BadBlockKind => "metadata block of the wrong kind",
            Self::BlockFromFuture => "metadata block newer than its superblock",
            Self::BadEntry => "invalid entry",
            Self::CountMismatch => "entries do not match the superblock counts",
            Self::DuplicateMainUnit => "main unit recorded twice",
            Self::TooManyEntries => "too many entries for one block",
            Self::UnexpectedBlock => "block past the end of the copy",
            Self::MissingBlocks => "copy is incomplete",
            Self::NoValidCopy => "no valid metadata copy",
            Self::SpareShrunk => "spare device is smaller than at format time",
            Self::MainMismatch => "main device does not match the metadata",
        }
    }
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadVersion(version) => write!(f, "{} ({version})", self.message()),
            _ => f.write_str(self.message()),
        }
    }
}

/// The little-endian `u64` at `offset` of a block (0 if it does not fit, which the constant
/// offsets used here never do).
fn read_u64(block: &[u8; BLOCK_BYTES], offset: usize) -> u64 {
    block
        .get(offset..)
        .and_then(|tail| tail.first_chunk::<8>())
        .map_or(0, |bytes| u64::from_le_bytes(*bytes))
}

/// The little-endian `u32` at `offset` of a block (0 if it does not fit).
fn read_u32(block: &[u8; BLOCK_BYTES], offset: usize) -> u32 {
    block
        .get(offset..)
        .and_then(|tail| tail.first_chunk::<4>())
        .map_or(0, |bytes| u32::from_le_bytes(*bytes))
}

/// The little-endian `u16` at `offset` of a block (0 if it does not fit).
fn read_u16(block: &[u8; BLOCK_BYTES], offset: usize) -> u16 {
    block
        .get(offset..)
        .and_then(|tail| tail.first_chunk::<2>())
        .map_or(0, |bytes| u16::from_le_bytes(*bytes))
}

/// `N` bytes at `offset` of a block (zeros if they do not fit).
fn read_bytes<const N: usize>(block: &[u8; BLOCK_BYTES], offset: usize) -> [u8; N] {
    block
        .get(offset..)
        .and_then(|tail| tail.first_chunk::<N>())
        .copied()
        .unwrap_or([0; N])
}

/// Writes `bytes` at `offset` of a block (nothing if they do not fit).
fn write_bytes<const N: usize>(block: &mut [u8; BLOCK_BYTES], offset: usize, bytes: [u8; N]) {
    if let Some(dest) = block
        .get_mut(offset..)
        .and_then(|tail| tail.first_chunk_mut::<N>())
    {
        *dest = bytes;
    }
}

/// Whether bytes `start..end` of a block are all zero (true for an empty or invalid range).
fn is_zero(block: &[u8; BLOCK_BYTES], start: usize, end: usize) -> bool {
    block
        .get(start..end)
        .map_or(true, |bytes| bytes.iter().all(|&b| b == 0))
}

/// The checksummed part of a block: bytes `0..4092`.
fn covered(block: &[u8; BLOCK_BYTES]) -> &[u8; CRC_OFFSET] {
    match block.first_chunk::<CRC_OFFSET>() {
        Some(bytes) => bytes,
        None => &[0; CRC_OFFSET],
    }
}
