// SPDX-License-Identifier: GPL-2.0

//! The superblock: block 0 of each copy.
//!
//! | bytes | type | field |
//! | --- | --- | --- |
//! | 0..8 | `[u8; 8]` | magic `DMREMAP4` |
//! | 8..12 | u32 | format version (1) |
//! | 12..16 | u32 | header bytes used (176) |
//! | 16..20 | u32 | copy index (0..5) |
//! | 20..24 | u32 | flags (bit 0: needs_check) |
//! | 24..40 | `[u8; 16]` | spare UUID |
//! | 40..48 | u64 | seq |
//! | 48..56 | u64 | main_sectors |
//! | 56..60 | u32 | main_block_size (bytes) |
//! | 60 | u8 | main_id_kind (0 = none) |
//! | 61..64 | | reserved, 0 |
//! | 64..80 | `[u8; 16]` | main_id |
//! | 80..84 | u32 | unit_sectors |
//! | 84..88 | | reserved, 0 |
//! | 88..96 | u64 | copy_sectors (C) |
//! | 96..104 | u64 | spare_sectors |
//! | 104..112 | u64 | data_start (units) |
//! | 112..120 | u64 | data_units |
//! | 120..128 | u64 | remap_blocks |
//! | 128..136 | u64 | pending_blocks |
//! | 136..144 | u64 | remap_count |
//! | 144..152 | u64 | bad_count |
//! | 152..160 | u64 | pending_count |
//! | 160..168 | u64 | high_water (units) |
//! | 168..176 | u64 | created_time (seconds since the Unix epoch, 0 = unknown) |
//! | 176..4092 | | reserved, 0 |
//! | 4092..4096 | u32 | CRC32C of bytes 0..4092 |

use super::super::crc32c::crc32c;
use super::{
    covered, is_zero, read_bytes, read_u32, read_u64, write_bytes, FormatError, Geometry, Layout,
    BLOCK_BYTES, COPIES, CRC_OFFSET, MAGIC, SECTOR_BYTES, VERSION,
};

/// Bytes of the superblock that carry fields (`header_bytes`); bytes 176..4092 are zero.
pub const HEADER_BYTES: u32 = 176;

/// Flag bit 0: the writer asks for a full verification of the metadata at the next load.
pub const FLAG_NEEDS_CHECK: u32 = 1;

/// Every flag this version knows; a superblock with any other bit set is refused.
pub const KNOWN_FLAGS: u32 = FLAG_NEEDS_CHECK;

/// `main_id_kind` value meaning "no identity recorded" (the `main_id` bytes are then 0).
pub const MAIN_ID_NONE: u8 = 0;

mod offset {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const HEADER_BYTES: usize = 12;
    pub const COPY_INDEX: usize = 16;
    pub const FLAGS: usize = 20;
    pub const UUID: usize = 24;
    pub const SEQ: usize = 40;
    pub const MAIN_SECTORS: usize = 48;
    pub const MAIN_BLOCK_SIZE: usize = 56;
    pub const MAIN_ID_KIND: usize = 60;
    pub const RESERVED_1: usize = 61;
    pub const MAIN_ID: usize = 64;
    pub const UNIT_SECTORS: usize = 80;
    pub const RESERVED_2: usize = 84;
    pub const COPY_SECTORS: usize = 88;
    pub const SPARE_SECTORS: usize = 96;
    pub const DATA_START: usize = 104;
    pub const DATA_UNITS: usize = 112;
    pub const REMAP_BLOCKS: usize = 120;
    pub const PENDING_BLOCKS: usize = 128;
    pub const REMAP_COUNT: usize = 136;
    pub const BAD_COUNT: usize = 144;
    pub const PENDING_COUNT: usize = 152;
    pub const HIGH_WATER: usize = 160;
    pub const CREATED_TIME: usize = 168;
}

const _: () = assert!(offset::CREATED_TIME + 8 == HEADER_BYTES as usize);

/// What identifies the main device the metadata belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainFingerprint {
    /// Size of the main device, in sectors.
    pub main_sectors: u64,
    /// Logical block size of the main device, in bytes (`unit_sectors * 512`).
    pub block_size: u32,
    /// What `id` is: [`MAIN_ID_NONE`] (0) when the kernel could read no identity; other values
    /// are defined by the writer and only compared for equality.
    pub id_kind: u8,
    /// An identity of the main device (all zero for kind 0).
    pub id: [u8; 16],
}

impl MainFingerprint {
    /// Whether the device described by `now` may be the one recorded in `self`: same size and
    /// block size, and, when both have an identity of the same kind, the same identity (an
    /// identity missing on either side, or of another kind, cannot be compared and does not
    /// refuse).
    pub fn matches(&self, now: &MainFingerprint) -> bool {
        let ids_comparable = self.id_kind != MAIN_ID_NONE && self.id_kind == now.id_kind;
        self.main_sectors == now.main_sectors
            && self.block_size == now.block_size
            && (!ids_comparable || self.id == now.id)
    }
}

/// The decoded contents of a superblock. Units: sizes in sectors, positions and counts of the
/// data area in spare units, main positions in main units (see [`Layout`]).
///
/// Only values that pass [`Superblock::check`] are encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Which copy this superblock heads (`< 5`); set it before encoding each copy.
    pub copy_index: u32,
    /// Flags ([`FLAG_NEEDS_CHECK`]); unknown bits are refused.
    pub flags: u32,
    /// Identity of the spare, random at format time, the same in all copies.
    pub uuid: [u8; 16],
    /// Sequence number of the commit this copy reflects (`>= 1`; 1 right after format).
    pub seq: u64,
    /// The main device the metadata belongs to.
    pub main: MainFingerprint,
    /// The geometry.
    pub layout: Layout,
    /// Remap-array entries that hold a main unit (neither free nor bad).
    pub remap_count: u64,
    /// Remap-array entries that are bad.
    pub bad_count: u64,
    /// Non-empty pending-list slots.
    pub pending_count: u64,
    /// The allocator's high-water mark, in spare units:
    /// `data_start <= high_water <= data_start + data_units`.
    pub high_water: u64,
    /// When the spare was formatted, in seconds since the Unix epoch (0 = unknown).
    /// Informational only.
    pub created_time: u64,
}

impl Superblock {
    /// The superblock of a freshly formatted spare: copy 0, no flags, `seq` 1, no entries,
    /// `high_water = data_start`, `created_time` 0 (set it if known). Every block of a fresh
    /// copy is then written with `seq` 1 and all entries 0.
    ///
    /// # Errors
    /// [`FormatError::BadFingerprint`] if `main` does not fit the layout (see
    /// [`Superblock::check`]).
    pub fn new_format(
        layout: Layout,
        uuid: [u8; 16],
        main: MainFingerprint,
    ) -> Result<Self, FormatError> {
        let superblock = Superblock {
            copy_index: 0,
            flags: 0,
            uuid,
            seq: 1,
            main,
            layout,
            remap_count: 0,
            bad_count: 0,
            pending_count: 0,
            high_water: layout.data_start(),
            created_time: 0,
        };
        superblock.check()?;
        Ok(superblock)
    }

    /// Main units of the main device: `main_sectors / unit_sectors`.
    pub const fn main_units(&self) -> u64 {
        self.main
            .main_sectors
            .wrapping_shr(self.layout.unit_shift())
    }

    /// Whether [`FLAG_NEEDS_CHECK`] is set.
    pub const fn needs_check(&self) -> bool {
        self.flags & FLAG_NEEDS_CHECK != 0
    }

    /// Where this superblock belongs: the first sector of copy `copy_index`.
    pub fn home_sector(&self) -> Option<u64> {
        self.layout
            .copy_start(usize::try_from(self.copy_index).ok()?)
    }

    /// Whether `other` describes the same state (every field equal except `copy_index`).
    pub fn same_state(&self, other: &Superblock) -> bool {
        Superblock {
            copy_index: other.copy_index,
            ..*self
        } == *other
    }

    /// Checks every field that is not a matter of encoding (the geometry itself is checked
    /// when the [`Layout`] is built):
    ///
    /// - [`FormatError::BadCopyIndex`]: `copy_index >= 5`;
    /// - [`FormatError::UnknownFlags`];
    /// - [`FormatError::BadSequence`]: `seq == 0` or `seq > MAX_SEQ`;
    /// - [`FormatError::BadFingerprint`]: `main.block_size != unit_sectors * 512`, no whole
    ///   main unit, or kind 0 with a non-zero id;
    /// - [`FormatError::BadCounts`]: `remap_count + bad_count > data_units`,
    ///   `pending_count > pending_capacity`, or `remap_count + pending_count > main_units`;
    /// - [`FormatError::BadHighWater`]: outside `[data_start, data_start + data_units]`.
    pub fn check(&self) -> Result<(), FormatError> {
        if usize::try_from(self.copy_index).map_or(true, |copy| copy >= COPIES) {
            return Err(FormatError::BadCopyIndex);
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(FormatError::UnknownFlags);
        }
        if self.seq == 0 || self.seq > super::MAX_SEQ {
            return Err(FormatError::BadSequence);
        }
        let unit_bytes = u64::from(self.layout.unit_sectors()).saturating_mul(SECTOR_BYTES);
        if u64::from(self.main.block_size) != unit_bytes
            || self.main_units() == 0
            || (self.main.id_kind == MAIN_ID_NONE && self.main.id != [0; 16])
        {
            return Err(FormatError::BadFingerprint);
        }
        let spare_used = self.remap_count.checked_add(self.bad_count);
        let main_used = self.remap_count.checked_add(self.pending_count);
        if spare_used.map_or(true, |n| n > self.layout.data_units())
            || self.pending_count > self.layout.pending_capacity()
            || main_used.map_or(true, |n| n > self.main_units())
        {
            return Err(FormatError::BadCounts);
        }
        if self.high_water < self.layout.data_start() || self.high_water > self.layout.data_end() {
            return Err(FormatError::BadHighWater);
        }
        Ok(())
    }

    /// Checks the devices found at load time against the recorded ones: the spare must not
    /// have shrunk below `spare_sectors` (growing is harmless: the extra space is unused), and
    /// the main device must match ([`MainFingerprint::matches`]).
    ///
    /// # Errors
    /// [`FormatError::SpareShrunk`], [`FormatError::MainMismatch`].
    pub fn check_devices(
        &self,
        spare_sectors_now: u64,
        main_now: &MainFingerprint,
    ) -> Result<(), FormatError> {
        if spare_sectors_now < self.layout.spare_sectors() {
            return Err(FormatError::SpareShrunk);
        }
        if !self.main.matches(main_now) {
            return Err(FormatError::MainMismatch);
        }
        Ok(())
    }
}

/// Encodes `superblock` into `out` (all 4096 bytes: fields, zero padding, CRC32C).
///
/// # Errors
/// Any error of [`Superblock::check`]: an inconsistent superblock is never written (it could
/// not be read back). `out` is untouched on error.
pub fn encode_superblock(
    superblock: &Superblock,
    out: &mut [u8; BLOCK_BYTES],
) -> Result<(), FormatError> {
    superblock.check()?;
    let sb = superblock;
    let layout = &sb.layout;
    *out = [0; BLOCK_BYTES];
    write_bytes(out, offset::MAGIC, MAGIC);
    write_bytes(out, offset::VERSION, VERSION.to_le_bytes());
    write_bytes(out, offset::HEADER_BYTES, HEADER_BYTES.to_le_bytes());
    write_bytes(out, offset::COPY_INDEX, sb.copy_index.to_le_bytes());
    write_bytes(out, offset::FLAGS, sb.flags.to_le_bytes());
    write_bytes(out, offset::UUID, sb.uuid);
    write_bytes(out, offset::SEQ, sb.seq.to_le_bytes());
    write_bytes(
        out,
        offset::MAIN_SECTORS,
        sb.main.main_sectors.to_le_bytes(),
    );
    write_bytes(
        out,
        offset::MAIN_BLOCK_SIZE,
        sb.main.block_size.to_le_bytes(),
    );
    write_bytes(out, offset::MAIN_ID_KIND, [sb.main.id_kind]);
    write_bytes(out, offset::MAIN_ID, sb.main.id);
    write_bytes(
        out,
        offset::UNIT_SECTORS,
        layout.unit_sectors().to_le_bytes(),
    );
    let u64_fields = [
        (offset::COPY_SECTORS, layout.copy_sectors()),
        (offset::SPARE_SECTORS, layout.spare_sectors()),
        (offset::DATA_START, layout.data_start()),
        (offset::DATA_UNITS, layout.data_units()),
        (offset::REMAP_BLOCKS, layout.remap_blocks()),
        (offset::PENDING_BLOCKS, layout.pending_blocks()),
        (offset::REMAP_COUNT, sb.remap_count),
        (offset::BAD_COUNT, sb.bad_count),
        (offset::PENDING_COUNT, sb.pending_count),
        (offset::HIGH_WATER, sb.high_water),
        (offset::CREATED_TIME, sb.created_time),
    ];
    for (at, value) in u64_fields {
        write_bytes(out, at, value.to_le_bytes());
    }
    let crc = crc32c(covered(out));
    write_bytes(out, CRC_OFFSET, crc.to_le_bytes());
    Ok(())
}

/// Decodes and fully validates a superblock.
///
/// Checks, in order: magic, version, CRC32C, `header_bytes`, reserved bytes, the geometry
/// ([`Layout::new`], then the stored `data_start` and `remap_blocks` against the derived
/// ones), then [`Superblock::check`]. Whether the superblock was read at its own copy's place
/// is the caller's check ([`Superblock::home_sector`], [`super::CopyChecker::new`]).
///
/// # Errors
/// [`FormatError::BadMagic`], [`FormatError::BadVersion`], [`FormatError::BadChecksum`],
/// [`FormatError::BadHeaderSize`], [`FormatError::ReservedNotZero`],
/// [`FormatError::BadGeometry`], then those of [`Superblock::check`].
pub fn decode_superblock(block: &[u8; BLOCK_BYTES]) -> Result<Superblock, FormatError> {
    if read_bytes::<8>(block, offset::MAGIC) != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = read_u32(block, offset::VERSION);
    if version != VERSION {
        return Err(FormatError::BadVersion(version));
    }
    if read_u32(block, CRC_OFFSET) != crc32c(covered(block)) {
        return Err(FormatError::BadChecksum);
    }
    if read_u32(block, offset::HEADER_BYTES) != HEADER_BYTES {
        return Err(FormatError::BadHeaderSize);
    }
    if !is_zero(block, offset::RESERVED_1, offset::MAIN_ID)
        || !is_zero(block, offset::RESERVED_2, offset::COPY_SECTORS)
        || !is_zero(block, offset::CREATED_TIME + 8, CRC_OFFSET)
    {
        return Err(FormatError::ReservedNotZero);
    }
    let layout = Layout::new(
        read_u64(block, offset::SPARE_SECTORS),
        read_u32(block, offset::UNIT_SECTORS),
        read_u64(block, offset::COPY_SECTORS),
        read_u64(block, offset::DATA_UNITS),
        read_u64(block, offset::PENDING_BLOCKS),
    )?;
    if read_u64(block, offset::DATA_START) != layout.data_start() {
        return Err(FormatError::BadGeometry(Geometry::DataStart));
    }
    if read_u64(block, offset::REMAP_BLOCKS) != layout.remap_blocks() {
        return Err(FormatError::BadGeometry(Geometry::RemapBlocks));
    }
    let [id_kind] = read_bytes::<1>(block, offset::MAIN_ID_KIND);
    let superblock = Superblock {
        copy_index: read_u32(block, offset::COPY_INDEX),
        flags: read_u32(block, offset::FLAGS),
        uuid: read_bytes(block, offset::UUID),
        seq: read_u64(block, offset::SEQ),
        main: MainFingerprint {
            main_sectors: read_u64(block, offset::MAIN_SECTORS),
            block_size: read_u32(block, offset::MAIN_BLOCK_SIZE),
            id_kind,
            id: read_bytes(block, offset::MAIN_ID),
        },
        layout,
        remap_count: read_u64(block, offset::REMAP_COUNT),
        bad_count: read_u64(block, offset::BAD_COUNT),
        pending_count: read_u64(block, offset::PENDING_COUNT),
        high_water: read_u64(block, offset::HIGH_WATER),
        created_time: read_u64(block, offset::CREATED_TIME),
    };
    superblock.check()?;
    Ok(superblock)
}
