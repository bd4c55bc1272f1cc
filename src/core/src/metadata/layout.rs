// SPDX-License-Identifier: GPL-2.0

//! Placement of the metadata copies and of the data area on the spare device.

use super::{
    BlockKind, FormatError, Geometry, AREA_FACTOR, BLOCK_SECTORS, COPY_FACTORS,
    ENTRIES_PER_BLOCK_U64, MIN_COPY_SECTORS,
};

/// Where a block of a copy lives: its position within the copy, in blocks, is 0 for the
/// superblock, `1 + b` for remap-array block `b`, `1 + remap_blocks + b` for pending-list
/// block `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockPos {
    /// Block 0 of the copy.
    Superblock,
    /// Remap-array block `b` (entries `[510 b, 510 b + 510)`), `b < remap_blocks`.
    Remap(u64),
    /// Pending-list block `b` (slots `[510 b, 510 b + 510)`), `b < pending_blocks`.
    Pending(u64),
}

impl BlockPos {
    /// The kind of a remap or pending block (`None` for the superblock).
    pub const fn kind(self) -> Option<BlockKind> {
        match self {
            Self::Superblock => None,
            Self::Remap(_) => Some(BlockKind::Remap),
            Self::Pending(_) => Some(BlockKind::Pending),
        }
    }

    /// The block's index within its kind (0 for the superblock).
    pub const fn index(self) -> u64 {
        match self {
            Self::Superblock => 0,
            Self::Remap(b) | Self::Pending(b) => b,
        }
    }
}

/// The checked geometry of a formatted spare. All sizes are bounded by construction:
///
/// - `unit_sectors` ∈ {1, 2, 4, 8}; `C = copy_sectors` is a power of two, `>= 1024`, with
///   `9C <= spare_sectors` (so `C <= 2^60`);
/// - metadata area `[0, 9C)` sectors, copy `i` in `[f_i C, f_i C + C)` with
///   `f = [0, 1, 2, 4, 8]`: the copies never overlap each other or the data area;
/// - data area: spare units `[data_start, data_start + data_units)` with
///   `data_start = 9C / unit_sectors`, `data_units >= 1` and
///   `9C + data_units * unit_sectors <= spare_sectors`;
/// - a copy has `1 + remap_blocks + pending_blocks <= C / 8` blocks, with
///   `remap_blocks = ceil(data_units / 510)` and `pending_blocks >= 1`: reading one copy reads
///   at most `C` sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    spare_sectors: u64,
    unit_sectors: u32,
    copy_sectors: u64,
    data_units: u64,
    pending_blocks: u64,
    data_start: u64,
    remap_blocks: u64,
}

/// `log2(unit_sectors)` for a valid unit size (1, 2, 4 or 8 sectors): at most 3, so shifts by
/// it are written `wrapping_shr` (the same value, without an overflow-check panic path).
fn unit_shift(unit_sectors: u32) -> Option<u32> {
    match unit_sectors {
        1 | 2 | 4 | 8 => Some(unit_sectors.trailing_zeros()),
        _ => None,
    }
}

/// The pending-list size [`layout_for`] chooses, in blocks: `remap_blocks / 8`, at most
/// enough for every main unit (`ceil(main_units / 510)`), at least 1.
pub fn default_pending_blocks(remap_blocks: u64, main_units: u64) -> u64 {
    (remap_blocks / 8)
        .min(main_units.div_ceil(ENTRIES_PER_BLOCK_U64))
        .max(1)
}

/// The layout of a spare of `spare_sectors` sectors for a main device of `main_sectors`
/// sectors remapped in units of `unit_sectors` sectors (1, 2, 4 or 8): the smallest copy size
/// `C = 1024 * 2^k` sectors such that a copy (superblock, `ceil(data_units / 510)` remap
/// blocks, [`default_pending_blocks`] pending blocks) fits in `C / 8` blocks, where
/// `data_units = spare_sectors / unit_sectors - 9C / unit_sectors` takes all the spare after
/// the metadata area.
///
/// `None` if `unit_sectors` is invalid, the main device has no whole unit, or the spare is too
/// small for any `C` (the data area would be empty). The smallest spare accepted is
/// `9216 + unit_sectors` sectors. At most 55 candidate sizes are tried; no overflow for any
/// input.
pub fn layout_for(spare_sectors: u64, unit_sectors: u32, main_sectors: u64) -> Option<Layout> {
    let shift = unit_shift(unit_sectors)?;
    let main_units = main_sectors.wrapping_shr(shift);
    if main_units == 0 {
        return None;
    }
    let spare_units = spare_sectors.wrapping_shr(shift);
    let mut copy_sectors = MIN_COPY_SECTORS;
    loop {
        let area_units = copy_sectors.checked_mul(AREA_FACTOR)?.wrapping_shr(shift);
        let data_units = spare_units.checked_sub(area_units).filter(|&n| n > 0)?;
        let remap_blocks = data_units.div_ceil(ENTRIES_PER_BLOCK_U64);
        let pending_blocks = default_pending_blocks(remap_blocks, main_units);
        if copy_fits(copy_sectors, remap_blocks, pending_blocks) {
            return Layout::new(
                spare_sectors,
                unit_sectors,
                copy_sectors,
                data_units,
                pending_blocks,
            )
            .ok();
        }
        copy_sectors = copy_sectors.checked_mul(2)?;
    }
}

/// Whether `1 + remap_blocks + pending_blocks <= copy_sectors / 8`.
fn copy_fits(copy_sectors: u64, remap_blocks: u64, pending_blocks: u64) -> bool {
    remap_blocks
        .checked_add(pending_blocks)
        .and_then(|n| n.checked_add(1))
        .is_some_and(|blocks| blocks <= copy_sectors / BLOCK_SECTORS)
}

impl Layout {
    /// A layout with the given free parameters (sizes in sectors, `data_units` in units,
    /// `pending_blocks` in blocks); `data_start` and `remap_blocks` are derived.
    ///
    /// # Errors
    /// [`FormatError::BadGeometry`] with [`Geometry::UnitSectors`], [`Geometry::CopySectors`],
    /// [`Geometry::DataUnits`] (0), [`Geometry::PendingBlocks`] (0, or `510 * pending_blocks`
    /// overflows), [`Geometry::SpareTooSmall`] or [`Geometry::CopyFull`], checked in that
    /// order.
    pub fn new(
        spare_sectors: u64,
        unit_sectors: u32,
        copy_sectors: u64,
        data_units: u64,
        pending_blocks: u64,
    ) -> Result<Self, FormatError> {
        let bad = FormatError::BadGeometry;
        let shift = unit_shift(unit_sectors).ok_or(bad(Geometry::UnitSectors))?;
        if !copy_sectors.is_power_of_two() || copy_sectors < MIN_COPY_SECTORS {
            return Err(bad(Geometry::CopySectors));
        }
        let area = copy_sectors
            .checked_mul(AREA_FACTOR)
            .ok_or(bad(Geometry::CopySectors))?;
        if data_units == 0 {
            return Err(bad(Geometry::DataUnits));
        }
        if pending_blocks == 0 || pending_blocks.checked_mul(ENTRIES_PER_BLOCK_U64).is_none() {
            return Err(bad(Geometry::PendingBlocks));
        }
        let end = data_units
            .checked_mul(u64::from(unit_sectors))
            .and_then(|data| data.checked_add(area))
            .ok_or(bad(Geometry::SpareTooSmall))?;
        if end > spare_sectors {
            return Err(bad(Geometry::SpareTooSmall));
        }
        let remap_blocks = data_units.div_ceil(ENTRIES_PER_BLOCK_U64);
        if !copy_fits(copy_sectors, remap_blocks, pending_blocks) {
            return Err(bad(Geometry::CopyFull));
        }
        Ok(Layout {
            spare_sectors,
            unit_sectors,
            copy_sectors,
            data_units,
            pending_blocks,
            data_start: area.wrapping_shr(shift),
            remap_blocks,
        })
    }

    /// Size of the spare device at format time, in sectors.
    pub const fn spare_sectors(&self) -> u64 {
        self.spare_sectors
    }

    /// The remap unit, in sectors (1, 2, 4 or 8).
    pub const fn unit_sectors(&self) -> u32 {
        self.unit_sectors
    }

    /// `log2(unit_sectors)`: `unit = sector >> unit_shift`.
    pub const fn unit_shift(&self) -> u32 {
        self.unit_sectors.trailing_zeros()
    }

    /// The copy size `C`, in sectors (a power of two, `>= 1024`).
    pub const fn copy_sectors(&self) -> u64 {
        self.copy_sectors
    }

    /// Size of the metadata area `[0, 9C)`, in sectors.
    pub const fn metadata_sectors(&self) -> u64 {
        // 9C <= spare_sectors was checked by `new`.
        self.copy_sectors.saturating_mul(AREA_FACTOR)
    }

    /// First spare unit of the data area: `9C / unit_sectors`.
    pub const fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Number of spare units in the data area (`>= 1`).
    pub const fn data_units(&self) -> u64 {
        self.data_units
    }

    /// End (exclusive) of the data area, in spare units: `data_start + data_units`.
    pub const fn data_end(&self) -> u64 {
        // Both are bounded by spare_sectors (checked by `new`).
        self.data_start.saturating_add(self.data_units)
    }

    /// Blocks of the remap array per copy: `ceil(data_units / 510)`.
    pub const fn remap_blocks(&self) -> u64 {
        self.remap_blocks
    }

    /// Blocks of the pending list per copy (`>= 1`).
    pub const fn pending_blocks(&self) -> u64 {
        self.pending_blocks
    }

    /// Blocks per copy: `1 + remap_blocks + pending_blocks` (`<= C / 8`).
    pub const fn blocks_per_copy(&self) -> u64 {
        self.remap_blocks
            .saturating_add(self.pending_blocks)
            .saturating_add(1)
    }

    /// Entries the remap array can hold: `510 * remap_blocks` (`>= data_units`; the entries
    /// past `data_units` must stay 0).
    pub const fn remap_capacity(&self) -> u64 {
        self.remap_blocks.saturating_mul(ENTRIES_PER_BLOCK_U64)
    }

    /// Main units the pending list can hold: `510 * pending_blocks` (no overflow: checked by
    /// `new`).
    pub const fn pending_capacity(&self) -> u64 {
        self.pending_blocks.saturating_mul(ENTRIES_PER_BLOCK_U64)
    }

    /// First sector of copy `copy` (`0, C, 2C, 4C, 8C`); `None` if `copy >= 5`.
    pub fn copy_start(&self, copy: usize) -> Option<u64> {
        COPY_FACTORS
            .get(copy)
            .and_then(|&factor| factor.checked_mul(self.copy_sectors))
    }

    /// What lives at block position `position` of a copy (0 = superblock); `None` past the
    /// copy's last block.
    pub fn block_at(&self, position: u64) -> Option<BlockPos> {
        if position == 0 {
            return Some(BlockPos::Superblock);
        }
        let index = position.checked_sub(1)?;
        if index < self.remap_blocks {
            return Some(BlockPos::Remap(index));
        }
        let index = index.checked_sub(self.remap_blocks)?;
        if index < self.pending_blocks {
            return Some(BlockPos::Pending(index));
        }
        None
    }

    /// The position within a copy, in blocks, of `pos`; `None` if its index is out of range.
    pub fn position_of(&self, pos: BlockPos) -> Option<u64> {
        match pos {
            BlockPos::Superblock => Some(0),
            BlockPos::Remap(b) if b < self.remap_blocks => b.checked_add(1),
            BlockPos::Pending(b) if b < self.pending_blocks => {
                b.checked_add(1)?.checked_add(self.remap_blocks)
            }
            _ => None,
        }
    }

    /// The first sector of block `pos` of copy `copy`; `None` if `copy >= 5` or the block
    /// index is out of range. The block spans [`BLOCK_SECTORS`] sectors.
    pub fn block_sector(&self, copy: usize, pos: BlockPos) -> Option<u64> {
        let offset = self.position_of(pos)?.checked_mul(BLOCK_SECTORS)?;
        self.copy_start(copy)?.checked_add(offset)
    }

    /// Where the remap-array entry of spare unit `spare_unit` is: `(block, slot)` with
    /// `slot < 510`; `None` outside the data area.
    pub fn remap_slot(&self, spare_unit: u64) -> Option<(u64, usize)> {
        let index = spare_unit.checked_sub(self.data_start)?;
        if index >= self.data_units {
            return None;
        }
        let slot = usize::try_from(index % ENTRIES_PER_BLOCK_U64).ok()?;
        Some((index / ENTRIES_PER_BLOCK_U64, slot))
    }

    /// The spare unit whose entry is at `slot` of remap-array block `block`; `None` if that
    /// entry is past the data area.
    pub fn spare_unit_at(&self, block: u64, slot: usize) -> Option<u64> {
        let slot = u64::try_from(slot)
            .ok()
            .filter(|&s| s < ENTRIES_PER_BLOCK_U64)?;
        let index = block
            .checked_mul(ENTRIES_PER_BLOCK_U64)?
            .checked_add(slot)?;
        if index >= self.data_units {
            return None;
        }
        self.data_start.checked_add(index)
    }

    /// Where pending-list slot `n` (`n < pending_capacity`) is: `(block, slot)`.
    pub fn pending_slot(&self, n: u64) -> Option<(u64, usize)> {
        if n >= self.pending_capacity() {
            return None;
        }
        let slot = usize::try_from(n % ENTRIES_PER_BLOCK_U64).ok()?;
        Some((n / ENTRIES_PER_BLOCK_U64, slot))
    }
}
