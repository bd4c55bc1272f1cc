// SPDX-License-Identifier: GPL-2.0

//! Remap-array and pending-list blocks: 510 entries and a 16-byte trailer.
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4080 | 510 entries, `u64` LE each |
//! | 4080..4088 | `seq`: sequence number of the commit that last wrote the block |
//! | 4088..4090 | `kind`: 1 remap array, 2 pending list (`u16`) |
//! | 4090..4092 | reserved, 0 |
//! | 4092..4096 | CRC32C of `block_index.to_le_bytes() ++ bytes[0..4092]` |

use super::super::crc32c::Crc32c;
use super::{
    covered, is_zero, read_u16, read_u32, read_u64, write_bytes, FormatError, BLOCK_BYTES,
    CRC_OFFSET, ENTRIES_PER_BLOCK,
};

/// Byte offset of the trailer's `seq`.
const SEQ_OFFSET: usize = 4080;
/// Byte offset of the trailer's `kind`.
const KIND_OFFSET: usize = 4088;
/// Byte offset of the trailer's reserved `u16`.
const RESERVED_OFFSET: usize = 4090;

/// What a metadata block after the superblock holds (the trailer's `kind` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Part of the remap array (`kind` 1).
    Remap = 1,
    /// Part of the pending list (`kind` 2).
    Pending = 2,
}

impl BlockKind {
    /// The on-disk `kind` value.
    pub const fn code(self) -> u16 {
        self as u16
    }
}

/// A decoded remap-array entry (the entry of one spare unit of the data area).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemapEntry {
    /// Raw 0: the spare unit is free.
    Free,
    /// Raw `u64::MAX`: the spare unit is bad and is never used again.
    Bad,
    /// Raw `m + 1`: the spare unit holds main unit `m` (`m <= u64::MAX - 2`).
    Remapped(u64),
}

impl RemapEntry {
    /// Decodes a raw entry; every raw value has a meaning.
    pub const fn from_raw(raw: u64) -> Self {
        match raw {
            0 => Self::Free,
            u64::MAX => Self::Bad,
            _ => Self::Remapped(raw.wrapping_sub(1)),
        }
    }

    /// The raw entry; `None` for `Remapped(m)` with `m >= u64::MAX - 1`, which has no
    /// encoding.
    pub const fn to_raw(self) -> Option<u64> {
        match self {
            Self::Free => Some(0),
            Self::Bad => Some(u64::MAX),
            Self::Remapped(main_unit) => match main_unit.checked_add(1) {
                Some(u64::MAX) | None => None,
                raw => raw,
            },
        }
    }
}

/// Decodes a raw pending-list slot: `None` for an empty slot (0), else `Some(main_unit)`
/// (`raw - 1`). The raw value `u64::MAX` is invalid in a pending list ([`super::CopyChecker`]
/// refuses it); this function still returns `Some(u64::MAX - 1)` for it.
pub const fn pending_from_raw(raw: u64) -> Option<u64> {
    raw.checked_sub(1)
}

/// The raw pending-list slot of `main_unit` (`main_unit + 1`); `None` for
/// `main_unit >= u64::MAX - 1`, which has no encoding.
pub const fn pending_to_raw(main_unit: u64) -> Option<u64> {
    match main_unit.checked_add(1) {
        Some(u64::MAX) | None => None,
        raw => raw,
    }
}

/// The checksum a block must carry at bytes 4092..4096: the CRC32C of
/// `block_index.to_le_bytes()` followed by the block's bytes `0..4092`. `block_index` is the
/// block's index within its kind (remap block `b` or pending block `b`).
pub fn block_checksum(block: &[u8; BLOCK_BYTES], block_index: u64) -> u32 {
    Crc32c::new()
        .update(&block_index.to_le_bytes())
        .update(covered(block))
        .finish()
}

/// Sets entry `slot` (`< 510`) of a block to the raw value `raw`; the trailer is not touched,
/// so the block needs [`seal_block`] before it is written.
///
/// # Errors
/// [`FormatError::TooManyEntries`] if `slot >= 510` (nothing is written).
pub fn set_entry(block: &mut [u8; BLOCK_BYTES], slot: usize, raw: u64) -> Result<(), FormatError> {
    if slot >= ENTRIES_PER_BLOCK {
        return Err(FormatError::TooManyEntries);
    }
    let offset = slot.checked_mul(8).ok_or(FormatError::TooManyEntries)?;
    write_bytes(block, offset, raw.to_le_bytes());
    Ok(())
}

/// Writes the trailer of a block whose entries (bytes 0..4080) are already in place: `seq`,
/// `kind`, reserved 0 and the checksum seeded with `block_index`.
///
/// # Errors
/// [`FormatError::BadSequence`] if `seq` is 0 (nothing is written).
pub fn seal_block(
    block: &mut [u8; BLOCK_BYTES],
    kind: BlockKind,
    block_index: u64,
    seq: u64,
) -> Result<(), FormatError> {
    if seq == 0 {
        return Err(FormatError::BadSequence);
    }
    write_bytes(block, SEQ_OFFSET, seq.to_le_bytes());
    write_bytes(block, KIND_OFFSET, kind.code().to_le_bytes());
    write_bytes(block, RESERVED_OFFSET, [0u8; 2]);
    let crc = block_checksum(block, block_index);
    write_bytes(block, CRC_OFFSET, crc.to_le_bytes());
    Ok(())
}

/// Encodes a whole block: `entries` (raw values, at most 510) in slots `0..entries.len()`,
/// zeros in the remaining slots, then the trailer ([`seal_block`]).
///
/// # Errors
/// [`FormatError::TooManyEntries`] (more than 510 entries) or [`FormatError::BadSequence`]
/// (`seq` 0); `out` is untouched on error.
pub fn encode_block(
    kind: BlockKind,
    block_index: u64,
    seq: u64,
    entries: &[u64],
    out: &mut [u8; BLOCK_BYTES],
) -> Result<(), FormatError> {
    if entries.len() > ENTRIES_PER_BLOCK {
        return Err(FormatError::TooManyEntries);
    }
    if seq == 0 {
        return Err(FormatError::BadSequence);
    }
    *out = [0; BLOCK_BYTES];
    for (slot, &raw) in (0..ENTRIES_PER_BLOCK).zip(entries) {
        write_bytes(out, slot.wrapping_mul(8), raw.to_le_bytes());
    }
    seal_block(out, kind, block_index, seq)
}

/// Decodes a block read at the place of block `block_index` of kind `kind`.
///
/// Checks, in order: the checksum (seeded with `block_index`), `kind`, the reserved bytes,
/// `seq != 0`. Entries are not interpreted here (see [`super::CopyChecker`]).
///
/// # Errors
/// [`FormatError::BadChecksum`], [`FormatError::BadBlockKind`],
/// [`FormatError::ReservedNotZero`], [`FormatError::BadSequence`].
pub fn decode_block(
    block: &[u8; BLOCK_BYTES],
    kind: BlockKind,
    block_index: u64,
) -> Result<BlockView<'_>, FormatError> {
    if read_u32(block, CRC_OFFSET) != block_checksum(block, block_index) {
        return Err(FormatError::BadChecksum);
    }
    if read_u16(block, KIND_OFFSET) != kind.code() {
        return Err(FormatError::BadBlockKind);
    }
    if !is_zero(block, RESERVED_OFFSET, CRC_OFFSET) {
        return Err(FormatError::ReservedNotZero);
    }
    let seq = read_u64(block, SEQ_OFFSET);
    if seq == 0 {
        return Err(FormatError::BadSequence);
    }
    Ok(BlockView {
        block,
        kind,
        index: block_index,
        seq,
    })
}

/// A decoded block, borrowing its 4096 bytes: the entries are read in place (no copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockView<'a> {
    block: &'a [u8; BLOCK_BYTES],
    kind: BlockKind,
    index: u64,
    seq: u64,
}

impl<'a> BlockView<'a> {
    /// The block's kind.
    pub const fn kind(&self) -> BlockKind {
        self.kind
    }

    /// The block's index within its kind.
    pub const fn index(&self) -> u64 {
        self.index
    }

    /// Sequence number of the commit that last wrote the block (`>= 1`).
    pub const fn seq(&self) -> u64 {
        self.seq
    }

    /// The raw entry at `slot`; `None` if `slot >= 510`.
    pub fn entry(&self, slot: usize) -> Option<u64> {
        if slot >= ENTRIES_PER_BLOCK {
            return None;
        }
        Some(read_u64(self.block, slot.checked_mul(8)?))
    }

    /// The 510 raw entries, in slot order.
    pub fn entries(&self) -> impl Iterator<Item = u64> + 'a {
        let block: &'a [u8; BLOCK_BYTES] = self.block;
        // slot < 510, so slot * 8 + 8 <= 4080: no wrap, always inside the block.
        (0..ENTRIES_PER_BLOCK).map(move |slot| read_u64(block, slot.wrapping_mul(8)))
    }

    /// Copies the 510 raw entries into `out`.
    pub fn copy_entries(&self, out: &mut [u64; ENTRIES_PER_BLOCK]) {
        for (dest, raw) in out.iter_mut().zip(self.entries()) {
            *dest = raw;
        }
    }

    /// The block's bytes.
    pub const fn bytes(&self) -> &'a [u8; BLOCK_BYTES] {
        self.block
    }
}
