// SPDX-License-Identifier: GPL-2.0

//! The bodies of the fuzz targets and the seed-corpus generator, shared by the cargo-fuzz
//! crate (each target includes this file as a module) and by the core's own tests
//! (`src/core/src/metadata/tests.rs` runs every body over seeded random and mutated inputs,
//! and checks that `corpus/` is what [`seed_corpus`] generates).
//!
//! The includer must have `md` (the `metadata` module) and `crc32c` (the `crc32c` module) in
//! scope of its parent module.
//!
//! Input formats (byte 0 is a mode byte; bit 0 set means "fix the checksums before decoding",
//! so that the fuzzer explores the semantic checks behind the CRC):
//! - `decode_superblock`: `[mode] ++ block` (the block is zero-padded or truncated to 4096);
//! - `decode_block`: `[mode] ++ index (u64 LE) ++ block`; mode bit 1 selects the kind
//!   (0 remap, 1 pending);
//! - `copy_checker`: `[mode] ++ superblock ++ block ++ block ...` (4096 bytes each, the last
//!   zero-padded); mode bit 1 means "claim copy `(mode >> 2) % 5`" instead of the superblock's
//!   own copy index.
//!
//! Every body asserts properties that must hold whatever the input: a decoded superblock or
//! block re-encodes to the very same bytes, derived geometry stays within its bounds, and a
//! copy the checker accepts has exactly the counts of the entries it handed back.

// Each includer uses only some of the bodies.
#![allow(dead_code)]

extern crate std;

use super::crc32c;
use super::md;
use std::collections::HashSet;
use std::string::String;
use std::vec::Vec;

const BLOCK: usize = md::BLOCK_BYTES;

/// The first 4096 bytes of `data`, zero-padded.
fn block_from(data: &[u8]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    let n = data.len().min(BLOCK);
    block[..n].copy_from_slice(&data[..n]);
    block
}

fn fix_superblock_crc(block: &mut [u8; BLOCK]) {
    let crc = crc32c::crc32c(&block[..md::CRC_OFFSET]);
    block[md::CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
}

fn fix_block_crc(block: &mut [u8; BLOCK], index: u64) {
    let crc = md::block_checksum(block, index);
    block[md::CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
}

/// The bounds every checked layout keeps (see `docs/metadata-format.md`, "Bounds").
pub fn assert_layout_bounds(layout: &md::Layout) {
    let c = layout.copy_sectors();
    assert!(c.is_power_of_two() && c >= md::MIN_COPY_SECTORS);
    let area = layout.metadata_sectors();
    assert_eq!(area, 9 * c);
    assert!(area <= layout.spare_sectors());
    let unit = u64::from(layout.unit_sectors());
    assert!(matches!(unit, 1 | 2 | 4 | 8));
    assert_eq!(layout.data_start() * unit, area);
    assert!(layout.data_units() >= 1);
    assert!(area + layout.data_units() * unit <= layout.spare_sectors());
    assert!(layout.remap_capacity() >= layout.data_units());
    assert!(layout.remap_capacity() < layout.data_units() + 510);
    assert!(layout.pending_blocks() >= 1);
    assert!(layout.blocks_per_copy() * md::BLOCK_SECTORS <= c);
    for copy in 0..md::COPIES {
        let start = layout.copy_start(copy).unwrap();
        assert!(start + c <= area);
        let last = md::BlockPos::Pending(layout.pending_blocks() - 1);
        assert!(layout.block_sector(copy, last).unwrap() + md::BLOCK_SECTORS <= start + c);
    }
    assert_eq!(layout.copy_start(md::COPIES), None);
}

/// Input: `[mode] ++ block`.
pub fn decode_superblock(data: &[u8]) {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut block = block_from(rest);
    if mode & 1 == 1 {
        fix_superblock_crc(&mut block);
    }
    if let Ok(superblock) = md::decode_superblock(&block) {
        let mut again = [0u8; BLOCK];
        md::encode_superblock(&superblock, &mut again).expect("a decoded superblock encodes");
        assert!(again == block, "superblock encoding is not canonical");
        assert_layout_bounds(&superblock.layout);
        assert!(superblock.remap_count + superblock.bad_count <= superblock.layout.data_units());
        assert!(superblock.pending_count <= superblock.layout.pending_capacity());
        assert!(superblock.remap_count + superblock.pending_count <= superblock.main_units());
        let copy = superblock.copy_index as usize;
        let mut copies = [None; md::COPIES];
        copies[copy] = Some(superblock);
        let choice = md::choose(&copies).expect("a decoded superblock can be chosen");
        assert_eq!(choice.copy, copy);
        assert_eq!(choice.up_to_date(), 1);
        assert!(matches!(
            md::classify(&[&block]),
            md::Classification::Ours {
                newest: Some(_),
                ..
            }
        ));
    } else {
        let _ = md::classify(&[&block]);
    }
}

/// Input: `[mode] ++ index (u64 LE) ++ block`.
pub fn decode_block(data: &[u8]) {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let index_bytes = block_from(rest);
    let index = u64::from_le_bytes(index_bytes[..8].try_into().unwrap());
    let mut block = block_from(rest.get(8..).unwrap_or(&[]));
    let kind = if mode & 2 == 0 {
        md::BlockKind::Remap
    } else {
        md::BlockKind::Pending
    };
    if mode & 1 == 1 {
        fix_block_crc(&mut block, index);
    }
    if let Ok(view) = md::decode_block(&block, kind, index) {
        assert_eq!((view.kind(), view.index()), (kind, index));
        let entries: Vec<u64> = view.entries().collect();
        assert_eq!(entries.len(), md::ENTRIES_PER_BLOCK);
        let mut copied = [0u64; md::ENTRIES_PER_BLOCK];
        view.copy_entries(&mut copied);
        assert_eq!(&copied[..], &entries[..]);
        let mut again = [0u8; BLOCK];
        md::encode_block(kind, index, view.seq(), &entries, &mut again).unwrap();
        assert!(again == block, "block encoding is not canonical");
        // Anywhere else, or as the other kind, the block is refused.
        assert!(md::decode_block(&block, kind, index.wrapping_add(1)).is_err());
        let other = match kind {
            md::BlockKind::Remap => md::BlockKind::Pending,
            md::BlockKind::Pending => md::BlockKind::Remap,
        };
        assert!(md::decode_block(&block, other, index).is_err());
    }
}

/// Input: `[mode] ++ superblock ++ blocks...`. Returns whether the copy was found valid
/// (duplicates included in the check), for the tests.
pub fn copy_checker(data: &[u8]) -> bool {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut chunks = rest.chunks(BLOCK);
    let mut superblock_bytes = block_from(chunks.next().unwrap_or(&[]));
    if mode & 1 == 1 {
        fix_superblock_crc(&mut superblock_bytes);
    }
    let Ok(superblock) = md::decode_superblock(&superblock_bytes) else {
        return false;
    };
    let copy = if mode & 2 == 2 {
        usize::from(mode >> 2) % md::COPIES
    } else {
        superblock.copy_index as usize
    };
    let Ok(mut checker) = md::CopyChecker::new(copy, &superblock) else {
        assert_ne!(copy, superblock.copy_index as usize);
        return false;
    };
    let layout = superblock.layout;
    let mut seen = HashSet::new();
    let mut duplicate = false;
    let (mut remapped, mut bad, mut pending) = (0u64, 0u64, 0u64);
    let mut fed = 0u64;
    for chunk in chunks {
        let mut block = block_from(chunk);
        let expected = checker.next_block();
        let expected_sector = checker.next_sector();
        if mode & 1 == 1 {
            if let Some(pos) = expected {
                fix_block_crc(&mut block, pos.index());
            }
        }
        let remaining = checker.remaining();
        match checker.feed(&block) {
            Ok(md::Fed::Remap(remap)) => {
                let pos = expected.unwrap();
                assert_eq!(pos, md::BlockPos::Remap(remap.view().index()));
                assert_eq!(expected_sector, layout.block_sector(copy, pos));
                for (spare_unit, entry) in remap.entries() {
                    let (b, slot) = layout.remap_slot(spare_unit).unwrap();
                    assert_eq!(b, remap.view().index());
                    assert_eq!(layout.spare_unit_at(b, slot), Some(spare_unit));
                    match entry {
                        md::RemapEntry::Free => {}
                        md::RemapEntry::Bad => bad += 1,
                        md::RemapEntry::Remapped(main_unit) => {
                            assert!(main_unit < superblock.main_units());
                            remapped += 1;
                            duplicate |= !seen.insert(main_unit);
                        }
                    }
                }
                assert_eq!(checker.remaining(), remaining - 1);
                fed += 1;
            }
            Ok(md::Fed::Pending(block)) => {
                assert_eq!(expected, Some(md::BlockPos::Pending(block.view().index())));
                for main_unit in block.units() {
                    assert!(main_unit < superblock.main_units());
                    pending += 1;
                    duplicate |= !seen.insert(main_unit);
                }
                fed += 1;
            }
            Err(error) => {
                // A spent checker stays spent.
                assert_eq!(checker.feed(&block).err(), Some(error));
                assert_eq!(checker.next_block(), None);
                assert_eq!(checker.remaining(), 0);
                assert_eq!(checker.clone().finish().err(), Some(error));
                return false;
            }
        }
        // The caller's bounded memory: never more entries than the superblock promised.
        assert!(seen.len() as u64 <= superblock.remap_count + superblock.pending_count);
    }
    match checker.finish() {
        Ok(summary) => {
            assert_eq!(fed + 1, layout.blocks_per_copy());
            assert_eq!(summary.copy, copy);
            assert_eq!(summary.superblock, superblock);
            assert!(summary.newest_block_seq <= superblock.seq);
            assert_eq!(
                (remapped, bad, pending),
                (
                    superblock.remap_count,
                    superblock.bad_count,
                    superblock.pending_count
                )
            );
            !duplicate
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Seed corpus
// ---------------------------------------------------------------------------------------------

/// A main device fitting `layout`, of `main_units` units.
fn main_device(layout: &md::Layout, main_units: u64, id_kind: u8) -> md::MainFingerprint {
    md::MainFingerprint {
        main_sectors: main_units * u64::from(layout.unit_sectors()),
        block_size: layout.unit_sectors() * 512,
        id_kind,
        id: if id_kind == 0 {
            [0; 16]
        } else {
            *b"main-device-id-0"
        },
    }
}

/// The blocks of one copy: superblock, then remap and pending blocks, every block written at
/// `seq` unless `block_seq` says otherwise. `remaps` are `(data-area index, raw entry)`,
/// `pending` the raw pending slots in order.
pub fn encode_copy(
    superblock: &md::Superblock,
    copy: usize,
    remaps: &[(u64, u64)],
    pending: &[u64],
    block_seq: impl Fn(md::BlockPos) -> u64,
) -> Vec<[u8; BLOCK]> {
    let layout = superblock.layout;
    let mut sb = *superblock;
    sb.copy_index = copy as u32;
    let mut out = Vec::new();
    let mut block = [0u8; BLOCK];
    md::encode_superblock(&sb, &mut block).unwrap();
    out.push(block);
    for b in 0..layout.remap_blocks() {
        let mut entries = [0u64; md::ENTRIES_PER_BLOCK];
        for &(index, raw) in remaps.iter().filter(|(i, _)| i / 510 == b) {
            entries[(index % 510) as usize] = raw;
        }
        md::encode_block(
            md::BlockKind::Remap,
            b,
            block_seq(md::BlockPos::Remap(b)),
            &entries,
            &mut block,
        )
        .unwrap();
        out.push(block);
    }
    for b in 0..layout.pending_blocks() {
        let start = (b * 510) as usize;
        let slots = pending.get(start..).unwrap_or(&[]);
        let slots = &slots[..slots.len().min(510)];
        md::encode_block(
            md::BlockKind::Pending,
            b,
            block_seq(md::BlockPos::Pending(b)),
            slots,
            &mut block,
        )
        .unwrap();
        out.push(block);
    }
    out
}

fn with_mode(mode: u8, blocks: &[[u8; BLOCK]]) -> Vec<u8> {
    let mut input = std::vec![mode];
    for block in blocks {
        input.extend_from_slice(block);
    }
    input
}

/// The seed corpus: `(target, file name, contents)`, deterministic. File names start with
/// `seed-` (the fuzzer's own finds are named by hash and ignored by git).
pub fn seed_corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut corpus = Vec::new();
    let small = md::layout_for(9216 + 600, 1, 2000).unwrap(); // 2 remap blocks, 1 pending
    let unit8 = md::layout_for(9216 + 8 * 40, 8, 8 * 5000).unwrap();
    let bigger = md::layout_for(9216 + 60_000, 1, 1 << 20).unwrap(); // C = 2048
    let mut sbs = Vec::new();
    for (name, layout, main_units, id_kind) in [
        ("small", small, 2000, 0),
        ("unit8", unit8, 5000, 3),
        ("c2048", bigger, 1 << 20, 1),
    ] {
        let mut sb = md::Superblock::new_format(
            layout,
            *b"spare-uuid-01234",
            main_device(&layout, main_units, id_kind),
        )
        .unwrap();
        sb.created_time = 1_700_000_000;
        sbs.push((name, sb));
    }
    // decode_superblock: fresh ones, and one with counts and flags.
    for &(name, sb) in &sbs {
        for copy in [0usize, 4] {
            let blocks = encode_copy(&sb, copy, &[], &[], |_| 1);
            corpus.push((
                "decode_superblock",
                std::format!("seed-{name}-copy{copy}"),
                with_mode(0, &blocks[..1]),
            ));
        }
    }
    let (_, small_sb) = sbs[0];
    let mut busy = small_sb;
    busy.seq = 42;
    busy.flags = md::FLAG_NEEDS_CHECK;
    busy.remap_count = 3;
    busy.bad_count = 1;
    busy.pending_count = 2;
    busy.high_water = busy.layout.data_start() + 521;
    let remaps = [(0, 1 + 7), (1, u64::MAX), (2, 1 + 1999), (520, 1 + 100)];
    let pending = [0, 1 + 5, 0, 1 + 6];
    let busy_copy = encode_copy(&busy, 2, &remaps, &pending, |pos| match pos {
        md::BlockPos::Remap(0) => 40,
        md::BlockPos::Remap(_) => 42,
        _ => 17,
    });
    corpus.push((
        "decode_superblock",
        String::from("seed-busy-copy2"),
        with_mode(0, &busy_copy[..1]),
    ));
    corpus.push((
        "decode_superblock",
        String::from("seed-busy-fixcrc"),
        with_mode(1, &busy_copy[..1]),
    ));
    // decode_block: [mode] ++ index ++ block.
    for (name, mode, index, block) in [
        ("remap0", 0u8, 0u64, busy_copy[1]),
        ("remap1", 0, 1, busy_copy[2]),
        ("pending0", 2, 0, busy_copy[3]),
        ("remap1-fixcrc", 1, 1, busy_copy[2]),
    ] {
        let mut input = std::vec![mode];
        input.extend_from_slice(&index.to_le_bytes());
        input.extend_from_slice(&block);
        corpus.push(("decode_block", std::format!("seed-{name}"), input));
    }
    // copy_checker: whole copies.
    for &(name, sb) in &sbs[..2] {
        let blocks = encode_copy(&sb, 1, &[], &[], |_| 1);
        corpus.push((
            "copy_checker",
            std::format!("seed-{name}-fresh"),
            with_mode(0, &blocks),
        ));
    }
    corpus.push((
        "copy_checker",
        String::from("seed-busy"),
        with_mode(0, &busy_copy),
    ));
    corpus.push((
        "copy_checker",
        String::from("seed-busy-fixcrc"),
        with_mode(1, &busy_copy),
    ));
    corpus
}
