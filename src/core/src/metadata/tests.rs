// SPDX-License-Identifier: GPL-2.0

//! Host tests of the metadata format: layout, superblock, blocks, copy checking, choice,
//! classification; property tests; the fuzz-target bodies over seeded random and mutated
//! inputs; the seed corpus on disk.

extern crate std;

use super::*;
use proptest::prelude::*;
use std::collections::HashSet;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

// The fuzz bodies refer to `super::md` and `super::crc32c`.
use super as md;
use super::super::crc32c;

#[path = "../../fuzz/bodies.rs"]
mod fuzz_bodies;

use fuzz_bodies::{assert_layout_bounds, encode_copy};

const REFERENCE_CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

type Block = [u8; BLOCK_BYTES];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for byte in bytes {
            *byte = self.next() as u8;
        }
    }
}

fn main_for(layout: &Layout, main_units: u64) -> MainFingerprint {
    MainFingerprint {
        main_sectors: main_units * u64::from(layout.unit_sectors()),
        block_size: layout.unit_sectors() * 512,
        id_kind: MAIN_ID_NONE,
        id: [0; 16],
    }
}

/// The smallest layout with 2 remap blocks: spare 9216 + 600 sectors, 512-byte units, a main
/// device of 2000 units.
fn small_layout() -> Layout {
    layout_for(9216 + 600, 1, 2000).unwrap()
}

fn small_superblock() -> Superblock {
    let layout = small_layout();
    Superblock::new_format(layout, [7; 16], main_for(&layout, 2000)).unwrap()
}

fn encode_sb(superblock: &Superblock) -> Block {
    let mut block = [0u8; BLOCK_BYTES];
    encode_superblock(superblock, &mut block).unwrap();
    block
}

/// Overwrites bytes at `offset` and recomputes the superblock CRC (with the reference CRC).
fn patch_sb(block: &Block, offset: usize, bytes: &[u8]) -> Block {
    let mut patched = *block;
    patched[offset..offset + bytes.len()].copy_from_slice(bytes);
    let crc = REFERENCE_CRC.checksum(&patched[..CRC_OFFSET]);
    patched[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
    patched
}

fn decode_patched(
    superblock: &Superblock,
    offset: usize,
    bytes: &[u8],
) -> Result<Superblock, FormatError> {
    decode_superblock(&patch_sb(&encode_sb(superblock), offset, bytes))
}

/// Recomputes a block's CRC for `index` (with the reference CRC).
fn reseal(block: &mut Block, index: u64) {
    let mut digest = REFERENCE_CRC.digest();
    digest.update(&index.to_le_bytes());
    digest.update(&block[..CRC_OFFSET]);
    let crc = digest.finalize();
    block[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
}

/// A checked copy: its summary, the `(spare unit, main unit)` remaps and the pending main units.
type Checked = (CopySummary, Vec<(u64, u64)>, Vec<u64>);

/// Runs a checker over `blocks` (superblock first) as the kernel would, including the
/// caller's duplicate check; returns the summary and the entries handed back.
fn check_copy(copy: usize, blocks: &[Block]) -> Result<Checked, FormatError> {
    let superblock = decode_superblock(&blocks[0])?;
    let mut checker = CopyChecker::new(copy, &superblock)?;
    let mut seen = HashSet::new();
    let mut remaps = Vec::new();
    let mut pending = Vec::new();
    for block in &blocks[1..] {
        match checker.feed(block)? {
            Fed::Remap(remap) => {
                for (spare_unit, entry) in remap.entries() {
                    if let RemapEntry::Remapped(main_unit) = entry {
                        if !seen.insert(main_unit) {
                            return Err(FormatError::DuplicateMainUnit);
                        }
                        remaps.push((spare_unit, main_unit));
                    }
                }
            }
            Fed::Pending(block) => {
                for main_unit in block.units() {
                    if !seen.insert(main_unit) {
                        return Err(FormatError::DuplicateMainUnit);
                    }
                    pending.push(main_unit);
                }
            }
        }
    }
    Ok((checker.finish()?, remaps, pending))
}

/// A copy of the small layout with 3 remaps, 1 bad unit and 2 pending units at seq 5.
fn busy() -> (Superblock, Vec<(u64, u64)>, Vec<u64>) {
    let mut sb = small_superblock();
    sb.seq = 5;
    sb.remap_count = 3;
    sb.bad_count = 1;
    sb.pending_count = 2;
    sb.high_water = sb.layout.data_start() + 600;
    let remaps = vec![(0, 1 + 10), (3, u64::MAX), (509, 1 + 11), (599, 1 + 1999)];
    let pending = vec![0, 1 + 12, 1 + 13];
    (sb, remaps, pending)
}

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

#[test]
fn smallest_spare() {
    assert_eq!(layout_for(9216, 1, 1000), None);
    let layout = layout_for(9217, 1, 1000).unwrap();
    assert_eq!(layout.copy_sectors(), 1024);
    assert_eq!(layout.data_start(), 9216);
    assert_eq!(layout.data_units(), 1);
    assert_eq!(layout.data_end(), 9217);
    assert_eq!(layout.remap_blocks(), 1);
    assert_eq!(layout.pending_blocks(), 1);
    assert_eq!(layout.blocks_per_copy(), 3);
    assert_eq!(layout.metadata_sectors(), 9216);
    let starts: Vec<u64> = (0..COPIES).map(|c| layout.copy_start(c).unwrap()).collect();
    assert_eq!(starts, [0, 1024, 2048, 4096, 8192]);
    assert_layout_bounds(&layout);
    // Unit 8: data_start in 4096-byte units, one whole unit needed after the area.
    assert_eq!(layout_for(9216 + 7, 8, 8), None);
    let layout = layout_for(9216 + 8, 8, 8).unwrap();
    assert_eq!((layout.data_start(), layout.data_units()), (1152, 1));
    assert_eq!(layout.unit_shift(), 3);
    assert_layout_bounds(&layout);
}

#[test]
fn invalid_unit_or_main() {
    for unit in [0, 3, 5, 16, 4096, u32::MAX] {
        assert_eq!(layout_for(1 << 30, unit, 1 << 30), None, "{unit}");
    }
    assert_eq!(layout_for(1 << 30, 1, 0), None);
    assert_eq!(layout_for(1 << 30, 8, 7), None);
    assert!(layout_for(1 << 30, 8, 8).is_some());
    assert!(layout_for(1 << 30, 2, 2).is_some());
    assert!(layout_for(1 << 30, 4, 4).is_some());
}

#[test]
fn copy_size_grows_exactly_when_needed() {
    // C = 1024 holds 128 blocks: 1 + 113 remap + 14 pending, i.e. 113 * 510 = 57630 units.
    let main = 1 << 40;
    let full = layout_for(9216 + 57_630, 1, main).unwrap();
    assert_eq!(full.copy_sectors(), 1024);
    assert_eq!((full.remap_blocks(), full.pending_blocks()), (113, 14));
    assert_eq!(full.blocks_per_copy(), 128);
    let over = layout_for(9216 + 57_631, 1, main).unwrap();
    assert_eq!(over.copy_sectors(), 2048);
    assert_eq!(over.data_start(), 18_432);
    assert_eq!(over.data_units(), 9216 + 57_631 - 18_432);
    assert_layout_bounds(&over);
    // A small main device caps the pending list.
    let capped = layout_for(9216 + 57_630, 1, 700).unwrap();
    assert_eq!(capped.pending_blocks(), 2);
    assert_eq!(default_pending_blocks(0, 0), 1);
    assert_eq!(default_pending_blocks(800, 1), 1);
    assert_eq!(default_pending_blocks(800, 1 << 30), 100);
}

#[test]
fn huge_spares_do_not_overflow() {
    for unit in [1u32, 2, 4, 8] {
        for spare in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 60) * 9, 1 << 50] {
            let layout = layout_for(spare, unit, u64::MAX).unwrap();
            assert_layout_bounds(&layout);
            assert!(layout.copy_sectors() <= 1 << 60);
            assert_eq!(
                layout.data_units(),
                spare / u64::from(unit) - layout.data_start()
            );
        }
    }
    // The largest copy size whose area fits in u64.
    let layout = Layout::new(u64::MAX, 1, 1 << 60, 1, 1).unwrap();
    assert_eq!(layout.metadata_sectors(), 9 << 60);
    assert_eq!(layout.copy_start(4), Some(8 << 60));
    assert_eq!(
        Layout::new(u64::MAX, 1, 1 << 61, 1, 1),
        Err(FormatError::BadGeometry(Geometry::CopySectors))
    );
}

#[test]
fn overhead_table() {
    // The numbers of docs/metadata-format.md.
    let rows = [
        (64u64 << 20, 1u32, 2048u64, 112_640u64),
        (64 << 20, 8, 1024, 15_232),
        (1 << 30, 1, 32_768, 1_802_240),
        (1 << 30, 8, 8192, 252_928),
        (100 << 30, 1, 1 << 22, 171_966_464),
        (100 << 30, 8, 1 << 19, 25_624_576),
    ];
    for (bytes, unit, copy_sectors, data_units) in rows {
        let layout = layout_for(bytes / 512, unit, u64::MAX).unwrap();
        assert_eq!(
            (layout.copy_sectors(), layout.data_units()),
            (copy_sectors, data_units),
            "{bytes} {unit}"
        );
    }
    // The smallest C with room for 1M remaps: 32768 sectors (16 MiB per copy).
    let layout = layout_for(9 * 32_768 + (1 << 20), 1, u64::MAX).unwrap();
    assert_eq!(layout.copy_sectors(), 32_768);
    assert!(layout.data_units() >= 1 << 20);
    let smaller = Layout::new(u64::MAX, 1, 16_384, 1 << 20, 1);
    assert_eq!(smaller, Err(FormatError::BadGeometry(Geometry::CopyFull)));
}

#[test]
fn layout_new_errors() {
    let geometry = |g| Err(FormatError::BadGeometry(g));
    assert_eq!(
        Layout::new(1 << 30, 3, 1024, 10, 1),
        geometry(Geometry::UnitSectors)
    );
    assert_eq!(
        Layout::new(1 << 30, 1, 512, 10, 1),
        geometry(Geometry::CopySectors)
    );
    assert_eq!(
        Layout::new(1 << 30, 1, 1536, 10, 1),
        geometry(Geometry::CopySectors)
    );
    assert_eq!(
        Layout::new(1 << 30, 1, 0, 10, 1),
        geometry(Geometry::CopySectors)
    );
    assert_eq!(
        Layout::new(1 << 30, 1, 1024, 0, 1),
        geometry(Geometry::DataUnits)
    );
    assert_eq!(
        Layout::new(1 << 30, 1, 1024, 10, 0),
        geometry(Geometry::PendingBlocks)
    );
    assert_eq!(
        Layout::new(u64::MAX, 1, 1 << 60, 1, u64::MAX / 8),
        geometry(Geometry::PendingBlocks)
    );
    assert_eq!(
        Layout::new(9216 + 9, 1, 1024, 10, 1),
        geometry(Geometry::SpareTooSmall)
    );
    assert_eq!(
        Layout::new(9216, 1, 1024, 1, 1),
        geometry(Geometry::SpareTooSmall)
    );
    assert_eq!(
        Layout::new(u64::MAX, 8, 1024, u64::MAX / 4, 1),
        geometry(Geometry::SpareTooSmall)
    );
    assert_eq!(
        Layout::new(1 << 30, 1, 1024, 510 * 126 + 1, 1),
        geometry(Geometry::CopyFull)
    );
    assert_eq!(
        Layout::new(1 << 30, 1, 1024, 510 * 126, 1)
            .unwrap()
            .blocks_per_copy(),
        128
    );
    assert_eq!(
        Layout::new(1 << 30, 1, 1024, 1, 127),
        geometry(Geometry::CopyFull)
    );
    // A data area smaller than the spare allows is fine.
    let layout = Layout::new(1 << 30, 4, 4096, 100, 3).unwrap();
    assert_eq!((layout.data_start(), layout.remap_blocks()), (9216, 1));
    assert_eq!(
        (layout.remap_capacity(), layout.pending_capacity()),
        (510, 1530)
    );
}

#[test]
fn block_positions() {
    let layout = Layout::new(1 << 30, 1, 2048, 1200, 2).unwrap(); // 3 remap blocks
    let expected = [
        BlockPos::Superblock,
        BlockPos::Remap(0),
        BlockPos::Remap(1),
        BlockPos::Remap(2),
        BlockPos::Pending(0),
        BlockPos::Pending(1),
    ];
    for (position, &pos) in expected.iter().enumerate() {
        assert_eq!(layout.block_at(position as u64), Some(pos));
        assert_eq!(layout.position_of(pos), Some(position as u64));
        for copy in 0..COPIES {
            let start = layout.copy_start(copy).unwrap();
            assert_eq!(
                layout.block_sector(copy, pos),
                Some(start + 8 * position as u64)
            );
        }
        assert_eq!(layout.block_sector(5, pos), None);
    }
    assert_eq!(layout.block_at(6), None);
    assert_eq!(layout.block_at(u64::MAX), None);
    assert_eq!(layout.position_of(BlockPos::Remap(3)), None);
    assert_eq!(layout.position_of(BlockPos::Pending(2)), None);
    assert_eq!(layout.position_of(BlockPos::Pending(u64::MAX)), None);
    assert_eq!(layout.copy_start(4), Some(8 * 2048));
    assert_eq!(BlockPos::Superblock.kind(), None);
    assert_eq!(BlockPos::Superblock.index(), 0);
    assert_eq!(BlockPos::Pending(1).kind(), Some(BlockKind::Pending));
    assert_eq!(BlockPos::Remap(2).index(), 2);
}

#[test]
fn unit_slots() {
    let layout = Layout::new(1 << 30, 1, 2048, 1200, 2).unwrap();
    let start = layout.data_start();
    assert_eq!(start, 18_432);
    assert_eq!(layout.remap_slot(start - 1), None);
    assert_eq!(layout.remap_slot(start), Some((0, 0)));
    assert_eq!(layout.remap_slot(start + 509), Some((0, 509)));
    assert_eq!(layout.remap_slot(start + 510), Some((1, 0)));
    assert_eq!(layout.remap_slot(start + 1199), Some((2, 179)));
    assert_eq!(layout.remap_slot(start + 1200), None);
    assert_eq!(layout.remap_slot(u64::MAX), None);
    assert_eq!(layout.spare_unit_at(2, 179), Some(start + 1199));
    assert_eq!(layout.spare_unit_at(2, 180), None);
    assert_eq!(layout.spare_unit_at(0, 510), None);
    assert_eq!(layout.spare_unit_at(u64::MAX, 0), None);
    assert_eq!(layout.spare_unit_at(0, usize::MAX), None);
    assert_eq!(layout.pending_slot(0), Some((0, 0)));
    assert_eq!(layout.pending_slot(1019), Some((1, 509)));
    assert_eq!(layout.pending_slot(1020), None);
}

// ---------------------------------------------------------------------------------------------
// Superblock
// ---------------------------------------------------------------------------------------------

#[test]
fn superblock_round_trip_and_byte_layout() {
    let layout = Layout::new(1 << 24, 8, 2048, 1000, 2).unwrap();
    let mut sb = Superblock::new_format(
        layout,
        *b"0123456789abcdef",
        MainFingerprint {
            main_sectors: 1 << 23,
            block_size: 4096,
            id_kind: 2,
            id: [0xA5; 16],
        },
    )
    .unwrap();
    assert_eq!((sb.seq, sb.copy_index, sb.flags), (1, 0, 0));
    assert_eq!(sb.high_water, layout.data_start());
    assert_eq!((sb.remap_count, sb.bad_count, sb.pending_count), (0, 0, 0));
    sb.copy_index = 3;
    sb.flags = FLAG_NEEDS_CHECK;
    sb.seq = 0x1122_3344_5566_7788;
    sb.remap_count = 10;
    sb.bad_count = 2;
    sb.pending_count = 5;
    sb.high_water = layout.data_start() + 20;
    sb.created_time = 1_700_000_000;
    let block = encode_sb(&sb);
    assert_eq!(decode_superblock(&block), Ok(sb));
    let le64 = |at: usize| u64::from_le_bytes(block[at..at + 8].try_into().unwrap());
    let le32 = |at: usize| u32::from_le_bytes(block[at..at + 4].try_into().unwrap());
    assert_eq!(&block[0..8], b"DMREMAP4");
    assert_eq!(le32(8), 1);
    assert_eq!(le32(12), 176);
    assert_eq!(le32(16), 3);
    assert_eq!(le32(20), 1);
    assert_eq!(&block[24..40], b"0123456789abcdef");
    assert_eq!(le64(40), 0x1122_3344_5566_7788);
    assert_eq!(le64(48), 1 << 23);
    assert_eq!(le32(56), 4096);
    assert_eq!(block[60], 2);
    assert_eq!(&block[64..80], &[0xA5; 16]);
    assert_eq!(le32(80), 8);
    assert_eq!(le64(88), 2048);
    assert_eq!(le64(96), 1 << 24);
    assert_eq!(le64(104), 2304);
    assert_eq!(le64(112), 1000);
    assert_eq!(le64(120), 2);
    assert_eq!(le64(128), 2);
    assert_eq!(le64(136), 10);
    assert_eq!(le64(144), 2);
    assert_eq!(le64(152), 5);
    assert_eq!(le64(160), 2324);
    assert_eq!(le64(168), 1_700_000_000);
    assert!(block[61..64]
        .iter()
        .chain(&block[84..88])
        .chain(&block[176..4092])
        .all(|&b| b == 0));
    assert_eq!(le32(4092), REFERENCE_CRC.checksum(&block[..4092]));
    // Accessors.
    assert!(sb.needs_check());
    assert_eq!(sb.main_units(), 1 << 20);
    assert_eq!(sb.home_sector(), Some(4 * 2048));
    let mut other = sb;
    other.copy_index = 0;
    assert!(sb.same_state(&other));
    other.seq += 1;
    assert!(!sb.same_state(&other));
}

#[test]
fn superblock_header_errors() {
    let sb = small_superblock();
    let block = encode_sb(&sb);
    let mut bad = block;
    bad[3] ^= 1;
    assert_eq!(decode_superblock(&bad), Err(FormatError::BadMagic));
    assert_eq!(
        decode_superblock(&[0; BLOCK_BYTES]),
        Err(FormatError::BadMagic)
    );
    let mut bad = block;
    bad[8] = 2;
    assert_eq!(decode_superblock(&bad), Err(FormatError::BadVersion(2)));
    // Version is checked before the checksum: a future format with its CRC elsewhere is
    // reported as such.
    assert_eq!(
        decode_patched(&sb, 8, &0u32.to_le_bytes()),
        Err(FormatError::BadVersion(0))
    );
    let mut bad = block;
    bad[100] ^= 0x10;
    assert_eq!(decode_superblock(&bad), Err(FormatError::BadChecksum));
    let mut bad = block;
    bad[4095] ^= 0x80;
    assert_eq!(decode_superblock(&bad), Err(FormatError::BadChecksum));
    assert_eq!(
        decode_patched(&sb, 12, &180u32.to_le_bytes()),
        Err(FormatError::BadHeaderSize)
    );
    for at in [61, 63, 84, 87, 176, 2000, 4091] {
        assert_eq!(
            decode_patched(&sb, at, &[1]),
            Err(FormatError::ReservedNotZero),
            "{at}"
        );
    }
    assert_eq!(
        decode_patched(&sb, 20, &2u32.to_le_bytes()),
        Err(FormatError::UnknownFlags)
    );
    assert_eq!(
        decode_patched(&sb, 20, &1u32.to_le_bytes()).map(|s| s.flags),
        Ok(FLAG_NEEDS_CHECK)
    );
    assert_eq!(
        decode_patched(&sb, 16, &5u32.to_le_bytes()),
        Err(FormatError::BadCopyIndex)
    );
    assert_eq!(
        decode_patched(&sb, 16, &4u32.to_le_bytes()).map(|s| s.copy_index),
        Ok(4)
    );
    assert_eq!(
        decode_patched(&sb, 40, &0u64.to_le_bytes()),
        Err(FormatError::BadSequence)
    );
}

#[test]
fn superblock_geometry_errors() {
    let sb = small_superblock(); // C 1024, unit 1, data_units 600, 2 remap + 1 pending blocks
    let geometry = |g| Err(FormatError::BadGeometry(g));
    let u32le = |v: u32| v.to_le_bytes();
    let u64le = |v: u64| v.to_le_bytes();
    assert_eq!(
        decode_patched(&sb, 80, &u32le(3)),
        geometry(Geometry::UnitSectors)
    );
    assert_eq!(
        decode_patched(&sb, 80, &u32le(0)),
        geometry(Geometry::UnitSectors)
    );
    assert_eq!(
        decode_patched(&sb, 88, &u64le(1023)),
        geometry(Geometry::CopySectors)
    );
    assert_eq!(
        decode_patched(&sb, 88, &u64le(1 << 63)),
        geometry(Geometry::CopySectors)
    );
    assert_eq!(
        decode_patched(&sb, 104, &u64le(9215)),
        geometry(Geometry::DataStart)
    );
    assert_eq!(
        decode_patched(&sb, 112, &u64le(0)),
        geometry(Geometry::DataUnits)
    );
    assert_eq!(
        decode_patched(&sb, 112, &u64le(601)),
        geometry(Geometry::SpareTooSmall)
    );
    assert_eq!(
        decode_patched(&sb, 96, &u64le(9815)),
        geometry(Geometry::SpareTooSmall)
    );
    // A data area smaller than the spare allows is accepted...
    let smaller = patch_sb(&encode_sb(&sb), 112, &u64le(510));
    let smaller = patch_sb(&smaller, 120, &u64le(1));
    assert_eq!(
        decode_superblock(&smaller).map(|s| s.layout.data_units()),
        Ok(510)
    );
    // ...but then remap_blocks must follow it.
    assert_eq!(
        decode_patched(&sb, 112, &u64le(509)),
        geometry(Geometry::RemapBlocks)
    );
    assert_eq!(
        decode_patched(&sb, 120, &u64le(3)),
        geometry(Geometry::RemapBlocks)
    );
    assert_eq!(
        decode_patched(&sb, 128, &u64le(0)),
        geometry(Geometry::PendingBlocks)
    );
    assert_eq!(
        decode_patched(&sb, 128, &u64le(126)),
        geometry(Geometry::CopyFull)
    );
    assert_eq!(
        decode_patched(&sb, 128, &u64le(125)).map(|s| s.layout.blocks_per_copy()),
        Ok(128)
    );
    // Unit 2 with a consistent data_start and the same main device (block size 1024 needed).
    let mut block = patch_sb(&encode_sb(&sb), 80, &u32le(2));
    block = patch_sb(&block, 104, &u64le(4608));
    block = patch_sb(&block, 112, &u64le(300));
    block = patch_sb(&block, 120, &u64le(1));
    assert_eq!(decode_superblock(&block), Err(FormatError::BadFingerprint));
    block = patch_sb(&block, 56, &u32le(1024));
    block = patch_sb(&block, 160, &u64le(4608));
    let decoded = decode_superblock(&block).unwrap();
    assert_eq!(
        (decoded.layout.unit_sectors(), decoded.main_units()),
        (2, 1000)
    );
}

#[test]
fn superblock_fingerprint_counts_and_high_water() {
    let sb = small_superblock(); // main 2000 units, data_units 600, pending capacity 510
    let u64le = |v: u64| v.to_le_bytes();
    assert_eq!(
        decode_patched(&sb, 56, &4096u32.to_le_bytes()),
        Err(FormatError::BadFingerprint)
    );
    assert_eq!(
        decode_patched(&sb, 48, &u64le(0)),
        Err(FormatError::BadFingerprint)
    );
    assert_eq!(
        decode_patched(&sb, 64, &[1]),
        Err(FormatError::BadFingerprint)
    );
    assert_eq!(
        decode_patched(&decode_patched(&sb, 60, &[9]).unwrap(), 64, &[1]).map(|s| s.main.id[0]),
        Ok(1)
    );
    assert_eq!(
        decode_patched(&sb, 136, &u64le(601)),
        Err(FormatError::BadCounts)
    );
    assert_eq!(
        decode_patched(&sb, 144, &u64le(601)),
        Err(FormatError::BadCounts)
    );
    assert_eq!(
        decode_patched(&sb, 144, &u64le(u64::MAX)),
        Err(FormatError::BadCounts)
    );
    assert_eq!(
        decode_patched(&sb, 152, &u64le(511)),
        Err(FormatError::BadCounts)
    );
    let mut full = sb;
    full.remap_count = 300;
    full.bad_count = 300;
    full.pending_count = 510;
    full.main.main_sectors = 810;
    assert!(encode_superblock(&full, &mut [0; BLOCK_BYTES]).is_ok());
    full.main.main_sectors = 809; // remap + pending > main units
    assert_eq!(
        encode_superblock(&full, &mut [0; BLOCK_BYTES]),
        Err(FormatError::BadCounts)
    );
    assert_eq!(
        decode_patched(&sb, 160, &u64le(9215)),
        Err(FormatError::BadHighWater)
    );
    assert_eq!(
        decode_patched(&sb, 160, &u64le(9817)),
        Err(FormatError::BadHighWater)
    );
    assert_eq!(
        decode_patched(&sb, 160, &u64le(9816)).map(|s| s.high_water),
        Ok(9816)
    );
}

#[test]
fn encode_refuses_inconsistent_superblocks() {
    let sb = small_superblock();
    let untouched = [0x5Au8; BLOCK_BYTES];
    type Spoil = fn(&mut Superblock);
    let cases: [(Spoil, FormatError); 6] = [
        (|s| s.copy_index = 5, FormatError::BadCopyIndex),
        (|s| s.flags = 0x8000_0000, FormatError::UnknownFlags),
        (|s| s.seq = 0, FormatError::BadSequence),
        (|s| s.main.block_size = 4096, FormatError::BadFingerprint),
        (|s| s.pending_count = 511, FormatError::BadCounts),
        (|s| s.high_water = 0, FormatError::BadHighWater),
    ];
    for (spoil, error) in cases {
        let mut bad = sb;
        spoil(&mut bad);
        let mut out = untouched;
        assert_eq!(encode_superblock(&bad, &mut out), Err(error));
        assert_eq!(out, untouched);
        assert_eq!(bad.check(), Err(error));
    }
    let layout = small_layout();
    let mut main = main_for(&layout, 100);
    main.block_size = 512 * 8;
    assert_eq!(
        Superblock::new_format(layout, [0; 16], main),
        Err(FormatError::BadFingerprint)
    );
}

#[test]
fn device_checks() {
    let layout = small_layout();
    let mut recorded = main_for(&layout, 2000);
    recorded.id_kind = 1;
    recorded.id = [3; 16];
    let sb = Superblock::new_format(layout, [0; 16], recorded).unwrap();
    assert_eq!(sb.check_devices(9816, &recorded), Ok(()));
    assert_eq!(sb.check_devices(1 << 40, &recorded), Ok(()));
    assert_eq!(
        sb.check_devices(9815, &recorded),
        Err(FormatError::SpareShrunk)
    );
    let mut now = recorded;
    now.main_sectors += 1;
    assert_eq!(sb.check_devices(9816, &now), Err(FormatError::MainMismatch));
    let mut now = recorded;
    now.block_size = 4096;
    assert_eq!(sb.check_devices(9816, &now), Err(FormatError::MainMismatch));
    let mut now = recorded;
    now.id[15] = 4;
    assert_eq!(sb.check_devices(9816, &now), Err(FormatError::MainMismatch));
    // Identities that cannot be compared do not refuse.
    now.id_kind = 2;
    assert_eq!(sb.check_devices(9816, &now), Ok(()));
    now.id_kind = MAIN_ID_NONE;
    now.id = [0; 16];
    assert_eq!(sb.check_devices(9816, &now), Ok(()));
    assert!(main_for(&layout, 2000).matches(&recorded));
}

// ---------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------

#[test]
fn block_round_trip_and_byte_layout() {
    let entries: Vec<u64> = (0..510u64).map(|i| i * 0x0101_0101_0101 + 1).collect();
    let mut block = [0u8; BLOCK_BYTES];
    encode_block(BlockKind::Pending, 77, 9, &entries, &mut block).unwrap();
    let view = decode_block(&block, BlockKind::Pending, 77).unwrap();
    assert_eq!(
        (view.kind(), view.index(), view.seq()),
        (BlockKind::Pending, 77, 9)
    );
    assert_eq!(view.entries().collect::<Vec<_>>(), entries);
    assert_eq!(view.entry(509), Some(entries[509]));
    assert_eq!(view.entry(510), None);
    assert_eq!(view.bytes(), &block);
    let mut copied = [0u64; ENTRIES_PER_BLOCK];
    view.copy_entries(&mut copied);
    assert_eq!(&copied[..], &entries[..]);
    // Bytes: entries, seq, kind, reserved, CRC seeded with the index.
    assert_eq!(
        u64::from_le_bytes(block[8..16].try_into().unwrap()),
        entries[1]
    );
    assert_eq!(u64::from_le_bytes(block[4080..4088].try_into().unwrap()), 9);
    assert_eq!(u16::from_le_bytes(block[4088..4090].try_into().unwrap()), 2);
    assert_eq!(&block[4090..4092], &[0, 0]);
    let mut expected = block;
    reseal(&mut expected, 77);
    assert_eq!(expected, block);
    assert_eq!(
        block_checksum(&block, 77),
        u32::from_le_bytes(block[4092..].try_into().unwrap())
    );
    // Short entry lists are zero-padded; set_entry + seal_block build the same block.
    let mut short = [0xFFu8; BLOCK_BYTES];
    encode_block(BlockKind::Remap, 0, 1, &[5, 6], &mut short).unwrap();
    let mut built = [0u8; BLOCK_BYTES];
    set_entry(&mut built, 1, 6).unwrap();
    set_entry(&mut built, 0, 5).unwrap();
    seal_block(&mut built, BlockKind::Remap, 0, 1).unwrap();
    assert_eq!(built, short);
    let view = decode_block(&short, BlockKind::Remap, 0).unwrap();
    assert_eq!(view.entries().filter(|&e| e != 0).count(), 2);
    assert_eq!(BlockKind::Remap.code(), 1);
}

#[test]
fn block_errors() {
    let mut block = [0u8; BLOCK_BYTES];
    encode_block(BlockKind::Remap, 4, 3, &[1, 2, 3], &mut block).unwrap();
    assert!(decode_block(&block, BlockKind::Remap, 4).is_ok());
    // Written at the wrong place: another index fails the checksum.
    assert_eq!(
        decode_block(&block, BlockKind::Remap, 5).err(),
        Some(FormatError::BadChecksum)
    );
    assert_eq!(
        decode_block(&block, BlockKind::Remap, 4 + (1 << 32)).err(),
        Some(FormatError::BadChecksum)
    );
    // The same index of the other kind fails on the kind.
    assert_eq!(
        decode_block(&block, BlockKind::Pending, 4).err(),
        Some(FormatError::BadBlockKind)
    );
    let mut bad = block;
    bad[10] ^= 4;
    assert_eq!(
        decode_block(&bad, BlockKind::Remap, 4).err(),
        Some(FormatError::BadChecksum)
    );
    let mut bad = block;
    bad[4088] = 3;
    reseal(&mut bad, 4);
    assert_eq!(
        decode_block(&bad, BlockKind::Remap, 4).err(),
        Some(FormatError::BadBlockKind)
    );
    let mut bad = block;
    bad[4091] = 1;
    reseal(&mut bad, 4);
    assert_eq!(
        decode_block(&bad, BlockKind::Remap, 4).err(),
        Some(FormatError::ReservedNotZero)
    );
    let mut bad = block;
    bad[4080..4088].fill(0);
    reseal(&mut bad, 4);
    assert_eq!(
        decode_block(&bad, BlockKind::Remap, 4).err(),
        Some(FormatError::BadSequence)
    );
    assert_eq!(
        decode_block(&[0; BLOCK_BYTES], BlockKind::Remap, 0).err(),
        Some(FormatError::BadChecksum)
    );
    // Encoding errors leave the output untouched.
    let mut out = [9u8; BLOCK_BYTES];
    assert_eq!(
        encode_block(BlockKind::Remap, 0, 1, &[0; 511], &mut out),
        Err(FormatError::TooManyEntries)
    );
    assert_eq!(
        encode_block(BlockKind::Remap, 0, 0, &[], &mut out),
        Err(FormatError::BadSequence)
    );
    assert_eq!(
        set_entry(&mut out, 510, 1),
        Err(FormatError::TooManyEntries)
    );
    assert_eq!(
        set_entry(&mut out, usize::MAX, 1),
        Err(FormatError::TooManyEntries)
    );
    assert_eq!(
        seal_block(&mut out, BlockKind::Remap, 0, 0),
        Err(FormatError::BadSequence)
    );
    assert_eq!(out, [9u8; BLOCK_BYTES]);
}

#[test]
fn entry_encodings() {
    assert_eq!(RemapEntry::from_raw(0), RemapEntry::Free);
    assert_eq!(RemapEntry::from_raw(u64::MAX), RemapEntry::Bad);
    assert_eq!(RemapEntry::from_raw(1), RemapEntry::Remapped(0));
    assert_eq!(
        RemapEntry::from_raw(u64::MAX - 1),
        RemapEntry::Remapped(u64::MAX - 2)
    );
    for entry in [
        RemapEntry::Free,
        RemapEntry::Bad,
        RemapEntry::Remapped(0),
        RemapEntry::Remapped(u64::MAX - 2),
    ] {
        assert_eq!(RemapEntry::from_raw(entry.to_raw().unwrap()), entry);
    }
    assert_eq!(RemapEntry::Remapped(u64::MAX - 1).to_raw(), None);
    assert_eq!(RemapEntry::Remapped(u64::MAX).to_raw(), None);
    assert_eq!(pending_from_raw(0), None);
    assert_eq!(pending_from_raw(8), Some(7));
    assert_eq!(pending_to_raw(7), Some(8));
    assert_eq!(pending_to_raw(u64::MAX - 2), Some(u64::MAX - 1));
    assert_eq!(pending_to_raw(u64::MAX - 1), None);
    assert_eq!(pending_to_raw(u64::MAX), None);
}

// ---------------------------------------------------------------------------------------------
// Copies
// ---------------------------------------------------------------------------------------------

#[test]
fn fresh_copies_are_valid() {
    for (spare, unit, main) in [
        (9217, 1, 10),
        (9216 + 600, 1, 2000),
        (1 << 20, 8, 1 << 30),
        (200_000, 2, 1 << 20),
    ] {
        let layout = layout_for(spare, unit, main).unwrap();
        let sb = Superblock::new_format(layout, [1; 16], main_for(&layout, main / u64::from(unit)))
            .unwrap();
        for copy in 0..COPIES {
            let blocks = encode_copy(&sb, copy, &[], &[], |_| 1);
            assert_eq!(blocks.len() as u64, layout.blocks_per_copy());
            let (summary, remaps, pending) = check_copy(copy, &blocks).unwrap();
            assert_eq!(summary.copy, copy);
            assert_eq!(summary.newest_block_seq, 1);
            assert!(remaps.is_empty() && pending.is_empty());
        }
    }
}

#[test]
fn checker_walks_the_copy_in_order() {
    let (sb, remaps, pending) = busy();
    let mut sb = sb;
    sb.copy_index = 2;
    let blocks = encode_copy(&sb, 2, &remaps, &pending, |_| 4);
    let mut checker = CopyChecker::new(2, &sb).unwrap();
    assert_eq!(checker.superblock(), &sb);
    let expected = [
        (BlockPos::Remap(0), 2048 + 8),
        (BlockPos::Remap(1), 2048 + 16),
        (BlockPos::Pending(0), 2048 + 24),
    ];
    for (i, (pos, sector)) in expected.into_iter().enumerate() {
        assert_eq!(checker.remaining(), 3 - i as u64);
        assert_eq!(checker.next_block(), Some(pos));
        assert_eq!(checker.next_sector(), Some(sector));
        checker.feed(&blocks[i + 1]).unwrap();
    }
    assert_eq!(
        (
            checker.next_block(),
            checker.next_sector(),
            checker.remaining()
        ),
        (None, None, 0)
    );
    let summary = checker.clone().finish().unwrap();
    assert_eq!(summary.newest_block_seq, 4);
    assert_eq!(
        checker.feed(&blocks[1]).err(),
        Some(FormatError::UnexpectedBlock)
    );
    assert_eq!(checker.finish().err(), Some(FormatError::UnexpectedBlock));
    // What the caller gets back.
    let (_, got_remaps, got_pending) = check_copy(2, &blocks).unwrap();
    let start = sb.layout.data_start();
    assert_eq!(
        got_remaps,
        [(start, 10), (start + 509, 11), (start + 599, 1999)]
    );
    assert_eq!(got_pending, [12, 13]);
}

#[test]
fn checker_errors() {
    let (sb, remaps, pending) = busy();
    let good = encode_copy(&sb, 0, &remaps, &pending, |_| 5);
    assert!(check_copy(0, &good).is_ok());
    // The superblock of copy 0 read as copy 1.
    assert_eq!(check_copy(1, &good).err(), Some(FormatError::WrongCopy));
    assert_eq!(CopyChecker::new(7, &sb).err(), Some(FormatError::WrongCopy));
    let mut spoiled = sb;
    spoiled.seq = 0;
    assert_eq!(
        CopyChecker::new(0, &spoiled).err(),
        Some(FormatError::BadSequence)
    );
    // Missing and extra blocks.
    assert_eq!(
        check_copy(0, &good[..3]).err(),
        Some(FormatError::MissingBlocks)
    );
    let mut extra = good.clone();
    extra.push(good[3]);
    assert_eq!(
        check_copy(0, &extra).err(),
        Some(FormatError::UnexpectedBlock)
    );
    // Blocks swapped: each is at another index's place.
    let mut swapped = good.clone();
    swapped.swap(1, 2);
    assert_eq!(
        check_copy(0, &swapped).err(),
        Some(FormatError::BadChecksum)
    );
    // A pending block where a remap block belongs.
    let mut wrong_kind = good.clone();
    wrong_kind[1] = good[3];
    assert_eq!(
        check_copy(0, &wrong_kind).err(),
        Some(FormatError::BadBlockKind)
    );
    // A block newer than its superblock (a commit interrupted before the superblock).
    let newer = encode_copy(&sb, 0, &remaps, &pending, |pos| {
        if pos == BlockPos::Remap(1) {
            6
        } else {
            5
        }
    });
    assert_eq!(
        check_copy(0, &newer).err(),
        Some(FormatError::BlockFromFuture)
    );
    // Counts.
    let mut sb_more = sb;
    sb_more.remap_count = 4;
    let more = encode_copy(&sb_more, 0, &remaps, &pending, |_| 1);
    assert_eq!(check_copy(0, &more).err(), Some(FormatError::CountMismatch));
    let mut sb_less = sb;
    sb_less.bad_count = 0;
    let less = encode_copy(&sb_less, 0, &remaps, &pending, |_| 1);
    assert_eq!(check_copy(0, &less).err(), Some(FormatError::CountMismatch));
    let mut sb_pending = sb;
    sb_pending.pending_count = 1;
    let fewer = encode_copy(&sb_pending, 0, &remaps, &pending, |_| 1);
    assert_eq!(
        check_copy(0, &fewer).err(),
        Some(FormatError::CountMismatch)
    );
    let mut sb_pending = sb;
    sb_pending.pending_count = 3;
    let more_pending = encode_copy(&sb_pending, 0, &remaps, &pending, |_| 1);
    assert_eq!(
        check_copy(0, &more_pending).err(),
        Some(FormatError::CountMismatch)
    );
    // Bad entries.
    let bad_entry = |remaps: &[(u64, u64)], pending: &[u64]| {
        check_copy(0, &encode_copy(&sb, 0, remaps, pending, |_| 1)).err()
    };
    let mut main_too_big = remaps.clone();
    main_too_big[0] = (0, 1 + 2000);
    assert_eq!(
        bad_entry(&main_too_big, &pending),
        Some(FormatError::BadEntry)
    );
    let mut tail = remaps.clone();
    tail.push((600, 0)); // zero past the data area is fine
    assert!(bad_entry(&tail, &pending).is_none());
    tail.push((1019, u64::MAX)); // anything else is not
    assert_eq!(bad_entry(&tail, &pending), Some(FormatError::BadEntry));
    assert_eq!(
        bad_entry(&remaps, &[1 + 12, u64::MAX]),
        Some(FormatError::BadEntry)
    );
    assert_eq!(
        bad_entry(&remaps, &[1 + 12, 1 + 2000]),
        Some(FormatError::BadEntry)
    );
    // Duplicates are the caller's check.
    let mut dup = remaps.clone();
    dup[2] = (509, 1 + 12); // main 12 is also pending
    assert_eq!(
        bad_entry(&dup, &pending),
        Some(FormatError::DuplicateMainUnit)
    );
    let mut dup = remaps.clone();
    dup[2] = (509, 1 + 10); // twice in the remap array
    assert_eq!(
        bad_entry(&dup, &pending),
        Some(FormatError::DuplicateMainUnit)
    );
    assert_eq!(
        bad_entry(&remaps, &[1 + 12, 1 + 12]),
        Some(FormatError::DuplicateMainUnit)
    );
}

#[test]
fn spent_checker_stays_spent() {
    let (sb, remaps, pending) = busy();
    let good = encode_copy(&sb, 0, &remaps, &pending, |_| 5);
    let mut checker = CopyChecker::new(0, &sb).unwrap();
    assert_eq!(checker.feed(&good[2]).err(), Some(FormatError::BadChecksum));
    assert_eq!(checker.next_block(), None);
    assert_eq!(checker.remaining(), 0);
    assert_eq!(checker.feed(&good[1]).err(), Some(FormatError::BadChecksum));
    assert_eq!(checker.finish().err(), Some(FormatError::BadChecksum));
}

// ---------------------------------------------------------------------------------------------
// Choice, classification, probing
// ---------------------------------------------------------------------------------------------

fn copies_of(sb: &Superblock, seqs: [Option<u64>; COPIES]) -> [Option<Superblock>; COPIES] {
    let mut copies = [None; COPIES];
    for (copy, seq) in seqs.into_iter().enumerate() {
        copies[copy] = seq.map(|seq| Superblock {
            copy_index: copy as u32,
            seq,
            ..*sb
        });
    }
    copies
}

#[test]
fn choose_the_newest_copy() {
    let sb = small_superblock();
    let all = choose(&copies_of(&sb, [Some(3); COPIES])).unwrap();
    assert_eq!(
        (all.copy, all.superblock.seq, all.superblock.copy_index),
        (0, 3, 0)
    );
    assert_eq!((all.stale, all.damaged), ([false; COPIES], [false; COPIES]));
    assert_eq!(all.up_to_date(), 5);
    assert!(!all.needs_rewrite(5));

    let mixed = choose(&copies_of(&sb, [Some(3), None, Some(4), Some(4), Some(2)])).unwrap();
    assert_eq!((mixed.copy, mixed.superblock.seq), (2, 4));
    assert_eq!(mixed.stale, [true, false, false, false, true]);
    assert_eq!(mixed.damaged, [false, true, false, false, false]);
    assert_eq!(mixed.up_to_date(), 2);
    assert!(mixed.needs_rewrite(0) && mixed.needs_rewrite(1) && !mixed.needs_rewrite(3));

    assert_eq!(choose(&[None; COPIES]), Err(FormatError::NoValidCopy));
}

#[test]
fn choose_rejects_misplaced_and_conflicting_copies() {
    let sb = small_superblock();
    let mut copies = copies_of(&sb, [Some(3), Some(3), Some(9), Some(3), Some(3)]);
    copies[2].as_mut().unwrap().copy_index = 0; // copy 0's superblock found at copy 2
    let choice = choose(&copies).unwrap();
    assert_eq!((choice.copy, choice.superblock.seq), (0, 3));
    assert_eq!(choice.damaged, [false, false, true, false, false]);
    // Same seq, other contents: the lowest copy wins, the other is rewritten.
    let mut copies = copies_of(&sb, [None, Some(3), Some(3), Some(3), None]);
    copies[2].as_mut().unwrap().uuid = [9; 16];
    let choice = choose(&copies).unwrap();
    assert_eq!(choice.copy, 1);
    assert_eq!(choice.stale, [false, false, true, false, false]);
    assert_eq!(choice.damaged, [true, false, false, false, true]);
    // A superblock that fails its own check is never chosen.
    let mut copies = copies_of(&sb, [Some(3), Some(8), None, None, None]);
    copies[1].as_mut().unwrap().high_water = 0;
    assert_eq!(choose(&copies).unwrap().copy, 0);
}

#[test]
fn classification() {
    let zero = [0u8; BLOCK_BYTES];
    assert_eq!(classify(&[]), Classification::Zeroed);
    assert_eq!(classify(&[&zero; COPIES]), Classification::Zeroed);
    let mut foreign = zero;
    foreign[1080] = 0x53; // e.g. an ext4 superblock's magic
    assert_eq!(classify(&[&zero, &foreign, &zero]), Classification::Foreign);
    let sb = small_superblock();
    let ours_old = encode_sb(&Superblock { seq: 2, ..sb });
    let ours_new = encode_sb(&Superblock {
        seq: 7,
        copy_index: 1,
        ..sb
    });
    match classify(&[&ours_old, &ours_new, &foreign]) {
        Classification::Ours { with_magic, newest } => {
            assert_eq!(with_magic, 2);
            assert_eq!(newest.map(|s| (s.seq, s.copy_index)), Some((7, 1)));
        }
        other => panic!("{other:?}"),
    }
    let mut older_format = zero;
    older_format[..8].copy_from_slice(b"DMREMAP3");
    assert_eq!(
        classify(&[&older_format, &zero]),
        Classification::Ours {
            with_magic: 1,
            newest: None
        }
    );
}

#[test]
fn probing() {
    assert_eq!(probe_sectors(0).count(), 0);
    assert_eq!(probe_sectors(7).count(), 0);
    assert_eq!(probe_sectors(8).collect::<Vec<_>>(), [0]);
    assert_eq!(
        probe_sectors(9216).collect::<Vec<_>>(),
        [0, 1024, 2048, 4096, 8192]
    );
    assert_eq!(
        probe_sectors(8199).collect::<Vec<_>>(),
        [0, 1024, 2048, 4096]
    );
    let all: Vec<u64> = probe_sectors(u64::MAX).collect();
    assert_eq!(all.len(), 55);
    assert_eq!(all.last(), Some(&(1 << 63)));
    for spare in [9217, 1 << 20, 1 << 35, u64::MAX] {
        let layout = layout_for(spare, 1, u64::MAX).unwrap();
        let probes: HashSet<u64> = probe_sectors(spare).collect();
        for copy in 0..COPIES {
            assert!(probes.contains(&layout.copy_start(copy).unwrap()));
        }
    }
}

#[test]
fn error_messages_are_distinct() {
    let errors = [
        FormatError::BadMagic,
        FormatError::BadVersion(3),
        FormatError::BadChecksum,
        FormatError::BadHeaderSize,
        FormatError::ReservedNotZero,
        FormatError::UnknownFlags,
        FormatError::BadCopyIndex,
        FormatError::WrongCopy,
        FormatError::BadSequence,
        FormatError::BadGeometry(Geometry::UnitSectors),
        FormatError::BadGeometry(Geometry::CopySectors),
        FormatError::BadGeometry(Geometry::DataStart),
        FormatError::BadGeometry(Geometry::DataUnits),
        FormatError::BadGeometry(Geometry::RemapBlocks),
        FormatError::BadGeometry(Geometry::PendingBlocks),
        FormatError::BadGeometry(Geometry::CopyFull),
        FormatError::BadGeometry(Geometry::SpareTooSmall),
        FormatError::BadFingerprint,
        FormatError::BadCounts,
        FormatError::BadHighWater,
        FormatError::BadBlockKind,
        FormatError::BlockFromFuture,
        FormatError::BadEntry,
        FormatError::CountMismatch,
        FormatError::DuplicateMainUnit,
        FormatError::TooManyEntries,
        FormatError::UnexpectedBlock,
        FormatError::MissingBlocks,
        FormatError::NoValidCopy,
        FormatError::SpareShrunk,
        FormatError::MainMismatch,
    ];
    let messages: HashSet<&str> = errors.iter().map(|e| e.message()).collect();
    assert_eq!(messages.len(), errors.len());
    assert_eq!(
        format!("{}", FormatError::BadVersion(3)),
        "unsupported metadata format version (3)"
    );
    assert_eq!(
        format!("{}", FormatError::BadMagic),
        FormatError::BadMagic.message()
    );
}

// ---------------------------------------------------------------------------------------------
// Fuzz bodies and seed corpus
// ---------------------------------------------------------------------------------------------

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        if input.is_empty() {
            input.push(0);
        }
        let at = rng.below(input.len() as u64) as usize;
        match rng.below(5) {
            0 => input[at] ^= 1 << rng.below(8),
            1 => input[at] = rng.next() as u8,
            // Small integers in fields: a little-endian u64 of a small value.
            2 => {
                let bits = rng.below(24) + 1;
                let value = rng.below(1 << bits).to_le_bytes();
                let end = (at + 8).min(input.len());
                input[at..end].copy_from_slice(&value[..end - at]);
            }
            3 => input.truncate(at),
            _ => input[0] = rng.next() as u8, // the mode byte
        }
    }
}

#[test]
fn fuzz_bodies_on_random_inputs() {
    let mut rng = Rng(0x5EED);
    for _ in 0..3000 {
        let len = rng.below(3 * BLOCK_BYTES as u64 + 20) as usize;
        let mut input = vec![0u8; len];
        rng.fill(&mut input);
        fuzz_bodies::decode_superblock(&input);
        fuzz_bodies::decode_block(&input);
        assert!(!fuzz_bodies::copy_checker(&input));
    }
}

#[test]
fn fuzz_bodies_on_mutated_seeds() {
    let corpus = fuzz_bodies::seed_corpus();
    let mut rng = Rng(0xF00D);
    let mut valid_copies = 0;
    for (target, _, seed) in &corpus {
        let body: fn(&[u8]) = match *target {
            "decode_superblock" => fuzz_bodies::decode_superblock,
            "decode_block" => fuzz_bodies::decode_block,
            _ => |input| {
                fuzz_bodies::copy_checker(input);
            },
        };
        body(seed);
        for _ in 0..300 {
            let mut input = seed.clone();
            mutate(&mut rng, &mut input);
            body(&input);
            if *target == "copy_checker" && fuzz_bodies::copy_checker(&input) {
                valid_copies += 1;
            }
        }
    }
    // Some mutations (e.g. of unused bytes with the checksums fixed) keep a copy valid.
    assert!(valid_copies > 0);
}

#[test]
fn seed_copies_are_valid() {
    for (target, name, input) in fuzz_bodies::seed_corpus() {
        if target == "copy_checker" {
            assert!(fuzz_bodies::copy_checker(&input), "{name}");
        }
    }
}

/// The corpus under `src/core/fuzz/corpus/` is what `seed_corpus` generates. Regenerate with
/// `src/core/fuzz/gen-corpus.sh` (which sets `UPDATE_FUZZ_CORPUS=1`).
#[test]
fn fuzz_seed_corpus_is_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let update = std::env::var_os("UPDATE_FUZZ_CORPUS").is_some();
    let mut stale: Vec<String> = Vec::new();
    for (target, name, contents) in fuzz_bodies::seed_corpus() {
        let path = root.join(target).join(&name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &contents).unwrap();
        } else if std::fs::read(&path).ok().as_ref() != Some(&contents) {
            stale.push(format!("{target}/{name}"));
        }
    }
    assert!(
        stale.is_empty(),
        "stale seed corpus (run src/core/fuzz/gen-corpus.sh): {stale:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/// Valid layouts: any copy size up to 2^20 sectors, unit, data area and pending list that
/// fit, on a spare at least that large.
fn arb_layout() -> impl Strategy<Value = Layout> {
    arb_layout_up_to(11, u64::MAX)
}

/// Valid layouts with `C < 1024 * 2^k_end` and at most `blocks` remap or pending blocks.
fn arb_layout_up_to(k_end: u32, blocks: u64) -> impl Strategy<Value = Layout> {
    (
        0u32..k_end,
        0u32..4,
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_filter_map(
            "layout",
            move |(k, unit_log, data_seed, pending_seed, slack)| {
                let copy_sectors = 1024u64 << k;
                let unit = 1u32 << unit_log;
                let max_blocks = (copy_sectors / 8 - 2).min(blocks); // remap + pending
                let remap_blocks = 1 + data_seed % max_blocks;
                let data_units = (remap_blocks - 1) * 510 + 1 + (data_seed >> 32) % 510;
                let pending_blocks = 1 + pending_seed % (max_blocks + 1 - remap_blocks);
                let spare = 9 * copy_sectors + data_units * u64::from(unit) + slack % (1 << 40);
                Layout::new(spare, unit, copy_sectors, data_units, pending_blocks).ok()
            },
        )
}

fn arb_superblock() -> impl Strategy<Value = Superblock> {
    arb_superblock_of(arb_layout())
}

fn arb_superblock_of(layout: impl Strategy<Value = Layout>) -> impl Strategy<Value = Superblock> {
    (
        layout,
        any::<[u64; 8]>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<bool>(),
    )
        .prop_map(|(layout, r, uuid, id, needs_check)| {
            let data_units = layout.data_units();
            let remap_count = r[0] % (data_units + 1);
            let bad_count = r[1] % (data_units - remap_count + 1);
            let pending_count = r[2] % (layout.pending_capacity() + 1);
            let main_units = (remap_count + pending_count).max(1) + r[3] % (1 << 40);
            let id_kind = (r[4] % 4) as u8;
            Superblock {
                copy_index: (r[5] % 5) as u32,
                flags: u32::from(needs_check),
                uuid,
                seq: 1 + r[6] % md::MAX_SEQ,
                main: MainFingerprint {
                    main_sectors: main_units * u64::from(layout.unit_sectors())
                        + r[7] % u64::from(layout.unit_sectors()),
                    block_size: layout.unit_sectors() * 512,
                    id_kind,
                    id: if id_kind == 0 { [0; 16] } else { id },
                },
                layout,
                remap_count,
                bad_count,
                pending_count,
                high_water: layout.data_start() + r[7] % (data_units + 1),
                created_time: r[3],
            }
        })
}

fn arb_kind() -> impl Strategy<Value = BlockKind> {
    prop_oneof![Just(BlockKind::Remap), Just(BlockKind::Pending)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn superblock_encode_decode_is_identity(sb in arb_superblock()) {
        prop_assert_eq!(sb.check(), Ok(()));
        let block = encode_sb(&sb);
        prop_assert_eq!(decode_superblock(&block), Ok(sb));
        prop_assert_eq!(u32::from_le_bytes(block[4092..].try_into().unwrap()), REFERENCE_CRC.checksum(&block[..4092]));
        assert_layout_bounds(&sb.layout);
    }

    #[test]
    fn superblock_bit_flips_are_detected(sb in arb_superblock(), bit in 0usize..BLOCK_BYTES * 8) {
        let mut block = encode_sb(&sb);
        block[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(decode_superblock(&block).is_err());
    }

    #[test]
    fn block_encode_decode_is_identity(
        kind in arb_kind(),
        index in any::<u64>(),
        seq in 1u64..,
        entries in proptest::collection::vec(any::<u64>(), 0..=ENTRIES_PER_BLOCK),
    ) {
        let mut block = [0u8; BLOCK_BYTES];
        encode_block(kind, index, seq, &entries, &mut block).unwrap();
        let view = decode_block(&block, kind, index).unwrap();
        prop_assert_eq!((view.kind(), view.index(), view.seq()), (kind, index, seq));
        let decoded: Vec<u64> = view.entries().collect();
        prop_assert_eq!(&decoded[..entries.len()], &entries[..]);
        prop_assert!(decoded[entries.len()..].iter().all(|&e| e == 0));
    }

    #[test]
    fn block_bit_flips_are_detected(
        kind in arb_kind(),
        index in any::<u64>(),
        seq in 1u64..,
        entries in proptest::collection::vec(any::<u64>(), 0..=ENTRIES_PER_BLOCK),
        bit in 0usize..BLOCK_BYTES * 8,
        other_index in any::<u64>(),
    ) {
        let mut block = [0u8; BLOCK_BYTES];
        encode_block(kind, index, seq, &entries, &mut block).unwrap();
        if other_index != index {
            prop_assert_eq!(decode_block(&block, kind, other_index).err(), Some(FormatError::BadChecksum));
        }
        block[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(decode_block(&block, kind, index).is_err());
    }

    #[test]
    fn random_bytes_never_decode(bytes in proptest::collection::vec(any::<u8>(), BLOCK_BYTES), index in any::<u64>()) {
        let mut block: Block = bytes.try_into().unwrap();
        prop_assert!(decode_block(&block, BlockKind::Remap, index).is_err());
        prop_assert!(decode_block(&block, BlockKind::Pending, index).is_err());
        prop_assert!(decode_superblock(&block).is_err());
        // Even with the magic and version right, the checksum refuses it.
        block[..8].copy_from_slice(&MAGIC);
        block[8..12].copy_from_slice(&VERSION.to_le_bytes());
        prop_assert_eq!(decode_superblock(&block), Err(FormatError::BadChecksum));
        // With a right checksum too, the other checks refuse random fields.
        let crc = REFERENCE_CRC.checksum(&block[..4092]);
        block[4092..].copy_from_slice(&crc.to_le_bytes());
        prop_assert!(decode_superblock(&block).is_err());
    }

    #[test]
    fn layout_for_invariants(
        spare_log in 13u32..64,
        spare_bits in any::<u64>(),
        unit_log in 0u32..4,
        main in any::<u64>(),
    ) {
        let spare = (1u64 << spare_log) | (spare_bits >> (64 - spare_log));
        let unit = 1u32 << unit_log;
        match layout_for(spare, unit, main) {
            Some(layout) => {
                assert_layout_bounds(&layout);
                prop_assert_eq!(layout.spare_sectors(), spare);
                prop_assert_eq!(layout.data_units(), spare / u64::from(unit) - layout.data_start());
                let main_units = main / u64::from(unit);
                prop_assert_eq!(
                    layout.pending_blocks(),
                    default_pending_blocks(layout.remap_blocks(), main_units)
                );
                // C is the smallest that fits: half of it does not.
                let half = layout.copy_sectors() / 2;
                if half >= MIN_COPY_SECTORS {
                    let data_units = (spare / u64::from(unit)).saturating_sub(9 * half / u64::from(unit));
                    let remap_blocks = data_units.div_ceil(510);
                    let pending = default_pending_blocks(remap_blocks, main_units);
                    prop_assert!(data_units == 0 || 1 + remap_blocks + pending > half / 8);
                }
                // The data area is disjoint from every copy.
                for copy in 0..COPIES {
                    let start = layout.copy_start(copy).unwrap();
                    prop_assert!(start + layout.copy_sectors() <= layout.data_start() * u64::from(unit));
                }
            }
            None => {
                prop_assert!(main / u64::from(unit) == 0 || spare / u64::from(unit) <= 9216 / u64::from(unit));
            }
        }
    }

    #[test]
    fn random_copies_check_and_round_trip(
        sb in arb_superblock_of(arb_layout_up_to(3, 12)),
        seeds in proptest::collection::vec(any::<u64>(), 0..64),
        copy in 0usize..COPIES,
    ) {
        // Fill entries consistent with the superblock's geometry, then fix its counts.
        let layout = sb.layout;
        let main_units = sb.main_units();
        let mut used = HashSet::new();
        let mut remaps = Vec::new();
        let mut pending = vec![0u64; layout.pending_capacity().min(4096) as usize];
        let (mut remapped, mut bad, mut pend) = (0, 0, 0);
        let mut taken = HashSet::new();
        for seed in seeds {
            let main_unit = (seed >> 8) % main_units;
            match seed % 3 {
                0 if !used.contains(&main_unit) => {
                    let index = (seed >> 20) % layout.data_units();
                    if taken.insert(index) {
                        used.insert(main_unit);
                        remaps.push((index, main_unit + 1));
                        remapped += 1;
                    }
                }
                1 => {
                    let index = (seed >> 20) % layout.data_units();
                    if taken.insert(index) {
                        remaps.push((index, u64::MAX));
                        bad += 1;
                    }
                }
                _ if !used.contains(&main_unit) && !pending.is_empty() => {
                    let slot = ((seed >> 40) as usize) % pending.len();
                    if pending[slot] == 0 {
                        used.insert(main_unit);
                        pending[slot] = main_unit + 1;
                        pend += 1;
                    }
                }
                _ => {}
            }
        }
        let sb = Superblock { remap_count: remapped, bad_count: bad, pending_count: pend, ..sb };
        let blocks = encode_copy(&sb, copy, &remaps, &pending, |_| sb.seq);
        let (summary, got_remaps, got_pending) = check_copy(copy, &blocks).unwrap();
        prop_assert_eq!(summary.superblock.copy_index as usize, copy);
        prop_assert_eq!(got_remaps.len() as u64, remapped);
        prop_assert_eq!(got_pending.len() as u64, pend);
        for (spare_unit, main_unit) in got_remaps {
            prop_assert!(remaps.contains(&(spare_unit - layout.data_start(), main_unit + 1)));
        }
        // The same copy run through the fuzz body with mode 0 is valid too.
        let mut input = vec![0u8];
        for block in &blocks {
            input.extend_from_slice(block);
        }
        prop_assert!(fuzz_bodies::copy_checker(&input));
    }
}

#[test]
fn duplicate_unit_finds_a_unit_recorded_twice() {
    assert_eq!(md::duplicate_unit(&mut []), None);
    assert_eq!(md::duplicate_unit(&mut [7]), None);
    assert_eq!(md::duplicate_unit(&mut [3, 1, 2, u64::MAX, 0]), None);
    assert_eq!(md::duplicate_unit(&mut [9, 4, 1, 4]), Some(4));
    assert_eq!(md::duplicate_unit(&mut [u64::MAX, 0, u64::MAX]), Some(u64::MAX));
    let mut units = [5, 5, 5];
    assert_eq!(md::duplicate_unit(&mut units), Some(5));
}

proptest! {
    #[test]
    fn duplicate_unit_agrees_with_a_set(units in proptest::collection::vec(0u64..64, 0..40)) {
        let distinct = units.iter().collect::<HashSet<_>>().len() == units.len();
        let mut sorted = units.clone();
        let found = md::duplicate_unit(&mut sorted);
        prop_assert_eq!(found.is_none(), distinct);
        if let Some(unit) = found {
            prop_assert!(units.iter().filter(|&&u| u == unit).count() >= 2);
        }
    }
}

/// A hostile `seq` near `u64::MAX` (checksum fixed) must not load: a commit could not number
/// its successor, and a saturating counter would stop writing changed blocks.
#[test]
fn superblock_seq_near_u64_max_is_refused() {
    let sb = small_superblock();
    for seq in [u64::MAX, u64::MAX - 1, 1u64 << 63] {
        assert_eq!(
            decode_patched(&sb, 40, &seq.to_le_bytes()).map(|s| s.seq),
            Err(FormatError::BadSequence),
            "seq {seq:#x}"
        );
    }
    // The largest valid seq still loads (2^63 - 1 commits: 292 000 years at a million a second).
    assert_eq!(decode_patched(&sb, 40, &md::MAX_SEQ.to_le_bytes()).map(|s| s.seq), Ok(md::MAX_SEQ));
}

/// Commits number their successor with `next_seq`, which refuses to step past `MAX_SEQ`
/// instead of saturating (a saturated seq freezes commits: no block is newer than its copy).
#[test]
fn next_seq_stops_at_max_seq() {
    assert_eq!(md::next_seq(1), Some(2));
    assert_eq!(md::next_seq(md::MAX_SEQ - 1), Some(md::MAX_SEQ));
    assert_eq!(md::next_seq(md::MAX_SEQ), None);
    assert_eq!(md::next_seq(u64::MAX), None);
}
