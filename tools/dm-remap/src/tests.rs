// SPDX-License-Identifier: GPL-2.0

//! Host tests: argument handling of every subcommand; `check`, `dump` and `repair` on spare
//! images written with the core's codec, intact and damaged; the input parsers; the pairing
//! logic of `discover`; the status and list parsers.

use super::*;
use crate::discover::{pair, Active, BlockInfo, SpareInfo};
use crate::error::Kind;
use crate::spare::{inspect, CopyState};
use dm_remap_core::metadata::{
    encode_block, encode_superblock, layout_for, BlockKind, BlockPos, Layout, MainFingerprint,
    RemapEntry, Superblock, BLOCK_BYTES, COPIES, ENTRIES_PER_BLOCK, SECTOR_BYTES,
};
use std::path::{Path, PathBuf};

// ---- spare images ------------------------------------------------------------------------------

/// A spare image in a temporary file, written block by block with the core's encoders.
struct Image {
    path: PathBuf,
    layout: Layout,
    superblock: Superblock,
}

const MAIN_SECTORS: u64 = 1 << 19; // 256 MiB
const SPARE_SECTORS: u64 = 1 << 15; // 16 MiB

fn temp_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dm-remap-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(tag)
}

impl Image {
    /// 5 copies at `seq`, remapping `remaps` (main unit, data index) and `pending` main units.
    fn new(tag: &str, unit: u32, remaps: &[(u64, u64)], pending: &[u64], seq: u64) -> Self {
        let layout = layout_for(SPARE_SECTORS, unit, MAIN_SECTORS).unwrap();
        let main = MainFingerprint { main_sectors: MAIN_SECTORS, block_size: unit * 512, id_kind: 0, id: [0; 16] };
        let mut superblock = Superblock::new_format(layout, [0xab; 16], main).unwrap();
        superblock.seq = seq;
        superblock.remap_count = remaps.len() as u64;
        superblock.pending_count = pending.len() as u64;
        superblock.high_water = layout.data_start() + remaps.iter().map(|r| r.1 + 1).max().unwrap_or(0);
        let path = temp_path(tag);
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(SPARE_SECTORS * SECTOR_BYTES).unwrap();
        let image = Self { path, layout, superblock };
        for copy in 0..COPIES {
            image.write_copy(copy, remaps, pending, seq);
        }
        image
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    fn write_copy(&self, copy: usize, remaps: &[(u64, u64)], pending: &[u64], seq: u64) {
        let mut array = vec![0u64; self.layout.data_units() as usize];
        for &(main, index) in remaps {
            array[index as usize] = RemapEntry::Remapped(main).to_raw().unwrap();
        }
        let mut block = [0u8; BLOCK_BYTES];
        for (b, chunk) in array.chunks(ENTRIES_PER_BLOCK).enumerate() {
            encode_block(BlockKind::Remap, b as u64, seq, chunk, &mut block).unwrap();
            self.put(copy, BlockPos::Remap(b as u64), &block);
        }
        let raw: Vec<u64> = pending.iter().map(|u| u + 1).collect();
        for b in 0..self.layout.pending_blocks() {
            let chunk = raw.chunks(ENTRIES_PER_BLOCK).nth(b as usize).unwrap_or(&[]);
            encode_block(BlockKind::Pending, b, seq, chunk, &mut block).unwrap();
            self.put(copy, BlockPos::Pending(b), &block);
        }
        let sb = Superblock {
            copy_index: copy as u32,
            seq,
            remap_count: remaps.len() as u64,
            pending_count: pending.len() as u64,
            ..self.superblock
        };
        encode_superblock(&sb, &mut block).unwrap();
        self.put(copy, BlockPos::Superblock, &block);
    }

    fn put(&self, copy: usize, pos: BlockPos, block: &[u8; BLOCK_BYTES]) {
        let sector = self.layout.block_sector(copy, pos).unwrap();
        self.write_at(sector * SECTOR_BYTES, block);
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&self.path).unwrap();
        file.write_all_at(bytes, offset).unwrap();
    }

    /// Flips one byte of block `pos` of `copy`.
    fn damage(&self, copy: usize, pos: BlockPos) {
        let sector = self.layout.block_sector(copy, pos).unwrap();
        let offset = sector * SECTOR_BYTES + 100;
        let mut byte = [0u8];
        use std::os::unix::fs::FileExt;
        std::fs::File::open(&self.path).unwrap().read_exact_at(&mut byte, offset).unwrap();
        self.write_at(offset, &[byte[0] ^ 0x40]);
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

const REMAPS: [(u64, u64); 3] = [(1000, 0), (5000, 1), (77777, 2)];
const PENDING: [u64; 1] = [90000];

fn states(path: &str) -> Vec<CopyState> {
    let mut dev = device::Device::open(path, device::Access::Read).unwrap();
    inspect(&mut dev).unwrap().copies.iter().map(|c| c.state).collect()
}

fn kind(outcome: &Outcome) -> Option<Kind> {
    outcome.1.as_ref().err().map(|e| e.kind)
}

// ---- check / dump / repair ---------------------------------------------------------------------

#[test]
fn a_clean_image_checks_and_dumps_its_entries() {
    let image = Image::new("clean", 1, &REMAPS, &PENDING, 7);
    let (text, result) = offline::check(image.path());
    assert!(result.is_ok(), "{text}");
    assert!(text.contains("metadata ok: 5 of 5 copies current"), "{text}");
    let (text, result) = offline::dump(image.path(), false);
    result.unwrap();
    let start = image.layout.data_start();
    // The entries in the `list` message's format, in sector order.
    let expected = format!("1000 {}\n5000 {}\n77777 {}\n90000 pending\n", start, start + 1, start + 2);
    assert!(text.ends_with(&expected), "{text}");
    assert!(text.contains("seq 7"), "{text}");
}

#[test]
fn dump_json_has_superblock_copies_and_entries() {
    let image = Image::new("json", 8, &[(10, 5)], &[3, 1], 2);
    let (text, result) = offline::dump(image.path(), true);
    result.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["chosen_copy"], 0);
    assert_eq!(doc["superblock"]["seq"], 2);
    assert_eq!(doc["superblock"]["uuid"], "abababab-abab-abab-abab-abababababab");
    assert_eq!(doc["superblock"]["unit_sectors"], 8);
    assert_eq!(doc["copies"].as_array().unwrap().len(), 5);
    assert!(doc["copies"].as_array().unwrap().iter().all(|c| c["state"] == "current"));
    let entries = doc["entries"].as_array().unwrap();
    let spare = (image.layout.data_start() + 5) * 8;
    assert_eq!(entries[0], serde_json::json!({"sector": 8, "spare_sector": null, "state": "pending"}));
    assert_eq!(entries[1], serde_json::json!({"sector": 24, "spare_sector": null, "state": "pending"}));
    assert_eq!(entries[2], serde_json::json!({"sector": 80, "spare_sector": spare, "state": "remapped"}));
}

#[test]
fn each_damaged_copy_is_found_and_repaired() {
    for copy in 0..COPIES {
        for pos in [BlockPos::Superblock, BlockPos::Remap(0), BlockPos::Pending(0)] {
            let image = Image::new(&format!("damage-{copy}-{pos:?}"), 1, &REMAPS, &PENDING, 4);
            image.damage(copy, pos);
            let got = states(image.path());
            for (i, state) in got.iter().enumerate() {
                let want = if i == copy { CopyState::Damaged } else { CopyState::Current };
                assert_eq!(*state, want, "copy {copy} {pos:?}: {got:?}");
            }
            let outcome = offline::check(image.path());
            assert_eq!(kind(&outcome), Some(Kind::Damaged), "{}", outcome.0);
            assert!(outcome.0.contains(&format!("copy {copy} at sector")), "{}", outcome.0);
            // The dump still gives the entries (from a valid copy).
            let (text, result) = offline::dump(image.path(), false);
            result.unwrap();
            assert!(text.contains("90000 pending"), "{text}");
            let report = offline::repair_cmd(image.path()).unwrap();
            assert!(report.contains(&format!("rewrote copies [{copy}]")), "{report}");
            let (text, result) = offline::check(image.path());
            assert!(result.is_ok(), "after repair: {text}");
        }
    }
}

#[test]
fn a_stale_copy_is_reported_and_brought_up_to_date() {
    let image = Image::new("stale", 1, &REMAPS, &PENDING, 9);
    // Copy 3 still holds commit 8, without the last remap (a torn commit's survivor).
    image.write_copy(3, &REMAPS[..2], &PENDING, 8);
    assert_eq!(states(image.path())[3], CopyState::Stale);
    let outcome = offline::check(image.path());
    assert_eq!(kind(&outcome), Some(Kind::Damaged));
    offline::repair_cmd(image.path()).unwrap();
    assert!(offline::check(image.path()).1.is_ok());
    let (text, _) = offline::dump(image.path(), false);
    assert!(text.contains("77777 "), "{text}");
}

#[test]
fn the_newest_valid_copy_wins() {
    let image = Image::new("newest", 1, &REMAPS[..1], &[], 3);
    // Copy 2 has a newer commit: the kernel loads it and rewrites the four others.
    image.write_copy(2, &REMAPS, &PENDING, 4);
    let mut dev = device::Device::open(image.path(), device::Access::Read).unwrap();
    let inspection = inspect(&mut dev).unwrap();
    assert_eq!(inspection.chosen.as_ref().unwrap().0, 2);
    assert_eq!(inspection.to_rewrite(), vec![0, 1, 3, 4]);
    drop(dev);
    offline::repair_cmd(image.path()).unwrap();
    let (text, _) = offline::dump(image.path(), false);
    assert!(text.contains("seq 4") && text.contains("90000 pending"), "{text}");
}

#[test]
fn all_copies_damaged_is_refused_and_nothing_is_written() {
    let image = Image::new("all", 1, &REMAPS, &PENDING, 5);
    for copy in 0..COPIES {
        image.damage(copy, if copy % 2 == 0 { BlockPos::Superblock } else { BlockPos::Remap(0) });
    }
    let outcome = offline::check(image.path());
    assert_eq!(kind(&outcome), Some(Kind::NoValidCopy), "{}", outcome.0);
    assert_eq!(outcome.0.matches("damaged").count(), 5, "{}", outcome.0);
    assert_eq!(kind(&offline::dump(image.path(), true)), Some(Kind::NoValidCopy));
    let before = image.bytes();
    let err = offline::repair_cmd(image.path()).unwrap_err();
    assert_eq!(err.kind, Kind::NoValidCopy);
    assert!(err.message.contains("nothing written"), "{}", err.message);
    assert!(before == image.bytes(), "repair wrote to a spare without a valid copy");
}

#[test]
fn every_superblock_lost_but_the_array_is_ours_is_no_valid_copy() {
    let image = Image::new("nosb", 1, &REMAPS, &PENDING, 5);
    for copy in 0..COPIES {
        let sector = image.layout.copy_start(copy).unwrap();
        image.write_at(sector * SECTOR_BYTES, &[0u8; BLOCK_BYTES]);
    }
    assert_eq!(kind(&offline::check(image.path())), Some(Kind::NoValidCopy));
}

#[test]
fn zeroed_and_foreign_devices_are_not_spares() {
    let path = temp_path("zeroed");
    std::fs::File::create(&path).unwrap().set_len(SPARE_SECTORS * SECTOR_BYTES).unwrap();
    let outcome = offline::check(path.to_str().unwrap());
    assert_eq!(kind(&outcome), Some(Kind::NotASpare));
    assert!(outcome.1.unwrap_err().message.contains("zeroed"));
    std::fs::write(&path, vec![0x55u8; 1 << 20]).unwrap();
    let err = offline::repair_cmd(path.to_str().unwrap()).unwrap_err();
    assert_eq!((err.kind, err.message.contains("foreign")), (Kind::NotASpare, true));
    assert_eq!(std::fs::read(&path).unwrap(), vec![0x55u8; 1 << 20]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(kind(&offline::check("/nonexistent/spare")), Some(Kind::Device));
}

/// Sets `needs_check` in every copy's superblock of `image` (as a kernel commit after a failed
/// one writes it).
fn set_needs_check(image: &Image) {
    for copy in 0..COPIES {
        let sb = Superblock {
            copy_index: copy as u32,
            flags: dm_remap_core::metadata::FLAG_NEEDS_CHECK,
            remap_count: REMAPS.len() as u64,
            pending_count: PENDING.len() as u64,
            ..image.superblock
        };
        let mut block = [0u8; BLOCK_BYTES];
        encode_superblock(&sb, &mut block).unwrap();
        image.put(copy, BlockPos::Superblock, &block);
    }
}

#[test]
fn needs_check_is_reported_dumped_and_cleared_by_repair_only() {
    let image = Image::new("needs-check", 1, &REMAPS, &PENDING, 6);
    set_needs_check(&image);
    assert!(states(image.path()).iter().all(|s| *s == CopyState::Current));
    let (text, result) = offline::check(image.path());
    assert_eq!(kind(&(text.clone(), result.clone())), Some(Kind::Damaged), "{text}");
    let message = result.unwrap_err().message;
    assert!(message.contains("needs_check") && message.contains("dm-remap repair"), "{message}");
    assert!(text.contains("needs_check set"), "{text}");
    let (text, result) = offline::dump(image.path(), false);
    result.unwrap();
    assert!(text.contains("needs_check set"), "{text}");
    let (text, _) = offline::dump(image.path(), true);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["superblock"]["needs_check"], true);
    let report = offline::repair_cmd(image.path()).unwrap();
    assert!(report.contains("needs_check cleared (seq 7)"), "{report}");
    let (text, result) = offline::check(image.path());
    assert!(result.is_ok(), "{text}");
    assert!(text.contains("needs_check clear") && text.contains("seq 7"), "{text}");
    // The entries are those of before.
    let (text, _) = offline::dump(image.path(), false);
    assert!(text.contains("90000 pending") && text.contains("77777 "), "{text}");
    assert!(offline::repair_cmd(image.path()).unwrap().contains("nothing written"));
}

#[test]
fn a_damaged_copy_and_needs_check_are_both_repaired() {
    let image = Image::new("needs-check-damaged", 1, &REMAPS, &PENDING, 3);
    set_needs_check(&image);
    image.damage(2, BlockPos::Remap(0));
    let (text, result) = offline::check(image.path());
    let message = result.unwrap_err().message;
    assert!(message.contains("damaged or stale") && message.contains("needs_check"), "{message} {text}");
    let report = offline::repair_cmd(image.path()).unwrap();
    assert!(report.contains("rewrote copies [2]") && report.contains("needs_check cleared (seq 4)"), "{report}");
    assert!(offline::check(image.path()).1.is_ok());
}

#[test]
fn repair_of_a_clean_spare_writes_nothing() {
    let image = Image::new("noop", 1, &REMAPS, &PENDING, 5);
    let before = image.bytes();
    assert!(offline::repair_cmd(image.path()).unwrap().contains("nothing written"));
    assert!(before == image.bytes());
}

// ---- arguments ---------------------------------------------------------------------------------

fn parse(args: &str) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("dm-remap").chain(args.split_whitespace()))
}

#[test]
fn every_subcommand_parses_its_arguments() {
    let ok = [
        "create r0 /dev/vda /dev/vdb",
        "create r0 /dev/vda /dev/vdb --format --dry-run",
        "remove r0",
        "status",
        "status r0 --json",
        "list r0",
        "list r0 --json",
        "check /dev/vdb",
        "dump /dev/vdb --json",
        "repair /dev/vdb",
        "discover",
        "discover --json --create --remaptab /tmp/tab",
        "discover --create --listed-only",
        "import r0 --badblocks bb.txt",
        "import r0 --badblocks bb.txt --block-size 4096 --dry-run",
        "import r0 --ddrescue-map map",
        "status --prometheus",
        "-q status r0",
        "status r0 --quiet --json",
        "unremap r0 4096",
        "clear-pending r0 4096",
        "commit r0",
        "scan start r0",
        "scan stop r0",
        "scan now r0",
        "message r0",
        "message r0 remap 4096",
        "message r0 list 0 10",
    ];
    for args in ok {
        assert!(parse(args).is_ok(), "{args}: {:?}", parse(args).err());
    }
    let bad = [
        "",
        "frobnicate",
        "create r0 /dev/vda",
        "create r0 /dev/vda /dev/vdb extra",
        "remove",
        "status r0 r1",
        "list",
        "check",
        "dump",
        "repair",
        "repair /dev/a /dev/b",
        "discover extra",
        "import r0",
        "import r0 --badblocks a --ddrescue-map b",
        "import r0 --badblocks a --block-size x",
        "check /dev/vdb --json",
        "status --json --prometheus",
        "unremap r0",
        "unremap r0 -1",
        "unremap r0 x",
        "clear-pending r0",
        "commit",
        "commit r0 r1",
        "scan r0",
        "scan pause r0",
        "message",
    ];
    for args in bad {
        let err = parse(args).err().unwrap_or_else(|| panic!("{args}: accepted"));
        // clap's usage errors exit with 2, which no other error of the tool uses.
        assert!(err.exit_code() == 2 || args.is_empty(), "{args}: {}", err.exit_code());
    }
    // --block-size is for badblocks lists only; refused before any file is read.
    match parse("import r0 --ddrescue-map /nonexistent --block-size 4096").unwrap().command {
        Command::Import(a) => assert_eq!(run_import(&a).unwrap_err().kind, Kind::BadInput),
        other => panic!("{other:?}"),
    }
    match parse("message r0 list 0 10").unwrap().command {
        Command::Message { name, message } => assert_eq!((name.as_str(), message.join(" ").as_str()), ("r0", "list 0 10")),
        other => panic!("{other:?}"),
    }
    assert!(parse("-q commit r0").unwrap().quiet && parse("commit r0 --quiet").unwrap().quiet);
    match parse("import r0 --ddrescue-map m").unwrap().command {
        Command::Import(a) => assert_eq!((a.source.ddrescue_map.as_deref(), a.block_size), (Some("m"), None)),
        other => panic!("{other:?}"),
    }
}

/// Every error kind of the tool, for the exit-code tests.
const ALL_KINDS: [Kind; 11] = [
        Kind::Device,
        Kind::Refused,
        Kind::Damaged,
        Kind::NoValidCopy,
        Kind::NotASpare,
        Kind::Busy,
        Kind::DeviceMapper,
        Kind::NotFound,
        Kind::BadInput,
        Kind::NotAssembled,
        Kind::Incomplete,
];

#[test]
fn exit_codes_are_distinct_and_not_clap_s() {
    let kinds = ALL_KINDS;
    let codes: std::collections::HashSet<u8> = kinds.iter().map(|k| k.exit_code()).collect();
    assert_eq!(codes.len(), kinds.len());
    assert!(!codes.contains(&0) && !codes.contains(&1) && !codes.contains(&2));
}

#[test]
fn create_refuses_image_files_before_the_kernel() {
    let image = Image::new("create", 1, &REMAPS, &PENDING, 5);
    let err = create::plan("r0", "/dev/null", image.path(), false).unwrap_err();
    assert_eq!(err.kind, Kind::Device, "{}", err.message);
    let err = create::plan("r0", image.path(), image.path(), false).unwrap_err();
    assert_eq!(err.kind, Kind::Refused);
    assert!(err.message.contains("not a block device"), "{}", err.message);
}

// ---- input files -------------------------------------------------------------------------------

#[test]
fn badblocks_lists_become_sector_ranges() {
    assert_eq!(import::parse_badblocks("f", "10\n\n 11 \n", 1024).unwrap(), vec![(20, 22), (22, 24)]);
    assert_eq!(import::parse_badblocks("f", "3\n", 4096).unwrap(), vec![(24, 32)]);
    let err = import::parse_badblocks("f", "1\nx\n", 1024).unwrap_err();
    assert_eq!((err.kind, err.message.as_str()), (Kind::BadInput, "f:2: not a block number"));
    assert!(import::parse_badblocks("f", "1\n", 1000).is_err());
    assert!(import::parse_badblocks("f", "99999999999999999999\n", 512).is_err());
}

#[test]
fn ddrescue_mapfiles_give_their_failed_areas() {
    let map = "# Mapfile. Created by GNU ddrescue version 1.27\n\
               # current_pos  current_status  current_pass\n\
               0x00120000     +               1\n\
               #      pos        size  status\n\
               0x00000000  0x00100000  +\n\
               0x00100000  0x00000200  -\n\
               0x00100200  0x00000E00  *\n\
               0x00101000  0x00000100  /\n\
               0x00101100  0x00010000  ?\n\
               70000       1024        -   # decimal, and a comment\n";
    let ranges = import::parse_ddrescue_map("m", map).unwrap();
    assert_eq!(ranges, vec![(2048, 2049), (2049, 2056), (2056, 2057), (136, 139)]);
    assert_eq!(import::units_of(&ranges, 8, 1 << 20).unwrap(), vec![136, 2048, 2056]);
    assert_eq!(import::units_of(&ranges, 1, 1 << 20).unwrap().len(), 12);
    assert_eq!(import::units_of(&[(10, 12)], 1, 11).unwrap_err().kind, Kind::BadInput);
    for bad in ["", "# only comments\n", "0x0 + 1\n0x0 0x200\n", "0x0 + 1\n0x0 0x200 X\n", "0x0 + 1\nzz 0x200 -\n"] {
        assert_eq!(import::parse_ddrescue_map("m", bad).unwrap_err().kind, Kind::BadInput, "{bad:?}");
    }
}

#[test]
fn remaptab_lines() {
    let tab = remaptab::parse(
        "t",
        "# comment\n\nr0 /dev/disk/by-id/a UUID=6B1F0C2E-93a4-4c55-8e07-1d2f3a4b5c6d\n\
         r1 /dev/vda /dev/vdb noauto # trailing\n",
    )
    .unwrap();
    assert_eq!(tab.len(), 2);
    assert_eq!(tab[0].spare, remaptab::SpareRef::Uuid("6b1f0c2e-93a4-4c55-8e07-1d2f3a4b5c6d".into()));
    assert_eq!((tab[1].noauto, tab[1].line), (true, 4));
    for bad in [
        "r0 /dev/a\n",
        "r0 /dev/a /dev/b x y\n",
        "r0 /dev/a UUID=123\n",
        "r0 /dev/a vdb\n",
        "r0 vda /dev/b\n",
        "r0 /dev/a /dev/b bogus\n",
        "a/b /dev/a /dev/b\n",
        "r0 /dev/a /dev/b\nr0 /dev/c /dev/d\n",
    ] {
        assert_eq!(remaptab::parse("t", bad).unwrap_err().kind, Kind::BadInput, "{bad:?}");
    }
    assert!(remaptab::load("/nonexistent/remaptab").unwrap().is_empty());
}

// ---- discover pairing --------------------------------------------------------------------------

fn block(path: &str, devno: (u32, u32), sectors: u64) -> BlockInfo {
    BlockInfo { path: path.into(), devno, sectors, block_size: 512 }
}

fn spare_for(path: &str, devno: (u32, u32), main_sectors: u64) -> SpareInfo {
    let layout = layout_for(SPARE_SECTORS, 1, main_sectors).unwrap();
    let main = MainFingerprint { main_sectors, block_size: 512, id_kind: 0, id: [0; 16] };
    let mut sb = Superblock::new_format(layout, [devno.1 as u8; 16], main).unwrap();
    sb.seq = 3;
    SpareInfo { dev: block(path, devno, SPARE_SECTORS), superblock: Some(sb) }
}

#[test]
fn discover_pairs_unique_matches_and_reports_the_rest() {
    let devices = vec![
        block("/dev/vda", (254, 0), 1000),
        block("/dev/vdb", (254, 16), SPARE_SECTORS),
        block("/dev/vdc", (254, 32), 2000),
        block("/dev/vdd", (254, 48), 2000),
        block("/dev/vde", (254, 64), SPARE_SECTORS),
        block("/dev/vdf", (254, 80), SPARE_SECTORS),
    ];
    let spares = vec![
        spare_for("/dev/vdb", (254, 16), 1000), // one candidate: vda
        spare_for("/dev/vde", (254, 64), 2000), // two: vdc, vdd
        spare_for("/dev/vdf", (254, 80), 3000), // none
    ];
    let none = |_: &str| None;
    let found = pair(&spares, &devices, &[], &[], &none);
    let summary: Vec<(&str, Vec<String>)> = found.iter().map(|f| (f.state, f.main.clone())).collect();
    assert_eq!(
        summary,
        vec![
            ("ready", vec!["/dev/vda".to_string()]),
            ("ambiguous", vec!["/dev/vdc".to_string(), "/dev/vdd".to_string()]),
            ("no_main", vec![]),
        ]
    );
    assert_eq!(found[0].name.as_deref(), Some("remap-10101010"));
    assert!(found.iter().all(|f| !f.listed));

    // The remaptab settles the ambiguous pair; a wrong main there is a mismatch.
    let resolve = |p: &str| devices.iter().find(|d| d.path == p).map(|d| d.devno);
    let uuid = offline::uuid_string(&spares[1].superblock.unwrap().uuid);
    let tab = remaptab::parse("t", &format!("big /dev/vdd UUID={uuid}\nsmall /dev/vdc /dev/vdb\nlost /dev/vda /dev/sdz\n")).unwrap();
    let found = pair(&spares, &devices, &[], &tab, &resolve);
    assert_eq!((found[0].state, found[0].name.as_deref()), ("mismatch", Some("small")));
    assert_eq!((found[1].state, found[1].name.as_deref(), found[1].main[0].as_str()), ("ready", Some("big"), "/dev/vdd"));
    assert_eq!((found[3].state, found[3].name.as_deref()), ("missing", Some("lost")));
    assert_eq!(found.iter().map(|f| f.listed).collect::<Vec<_>>(), vec![true, true, false, true]);

    // A spare in a live table is active; its main is no candidate for anyone.
    let active = [Active { name: "r0".into(), main: (254, 0), spare: (254, 16) }];
    let found = pair(&spares, &devices, &active, &[], &none);
    assert_eq!((found[0].state, found[0].name.as_deref()), ("active", Some("r0")));

    // No valid copy: reported, never paired.
    let damaged = SpareInfo { superblock: None, ..spares[0].clone() };
    assert_eq!(pair(&[damaged], &devices, &[], &[], &none)[0].state, "damaged");
}

// ---- status and list ---------------------------------------------------------------------------

/// Device r0 (dm-3, 256 MiB) and a sysfs root (a temporary folder named after `tag`) whose
/// dm-3 folder holds `health` and `scan_progress`.
fn sysfs_with_r0(tag: &str) -> (PathBuf, dm::RemapDevice) {
    let root = temp_path(tag);
    std::fs::create_dir_all(root.join("dm-3")).unwrap();
    std::fs::write(root.join("dm-3/health"), "degraded\n").unwrap();
    std::fs::write(root.join("dm-3/scan_progress"), "42\n").unwrap();
    (root, dm::RemapDevice { name: "r0".into(), devno: (253, 3), start: 0, len: 524288 })
}

#[test]
fn status_merges_the_info_line_and_sysfs() {
    let (root, dev) = sysfs_with_r0("sysfs");
    let line = "1 1 2 1 3/112640 4 5 0 degraded 9 5/5 0 0 scanning 42 read_only";
    let st = status::device_status(&dev, line, &root).unwrap();
    assert_eq!(st.info.metadata_mode.as_deref(), Some("read_only"));
    assert_eq!((st.kernel_name.as_str(), st.info.remaps, st.info.pending, st.info.spare_used), ("dm-3", 2, 1, 3));
    assert_eq!((st.info.scan_state.as_deref(), st.info.scan_progress), (Some("scanning"), Some(42)));
    let sysfs = st.sysfs.as_ref().unwrap();
    assert_eq!(sysfs.get("health").map(String::as_str), Some("degraded"));
    let table = status::status_table(&[st]);
    assert!(table.contains("r0") && table.contains("scanning 42%") && table.contains("3/112640"), "{table}");
    assert!(table.contains("META MODE") && table.lines().nth(1).unwrap().ends_with(" read_only"), "{table}");
    // An older module: no scan fields, no sysfs folder.
    let st = status::device_status(&dev, "1 8 0 0 0/100 0 0 0 ok 1 5/5 0 0", Path::new("/nonexistent")).unwrap();
    assert_eq!((st.info.scan_state, st.sysfs), (None, None));
    assert_eq!(status::device_status(&dev, "garbage", &root).unwrap_err().kind, Kind::DeviceMapper);
    std::fs::remove_dir_all(&root).unwrap();
}

/// The exact `status --json` text (keys, their order, values): scripts read it.
#[test]
fn status_json_is_pinned() {
    let (root, dev) = sysfs_with_r0("sysfs-json");
    let line = "1 8 2 1 3/112640 4 5 6 degraded 9 4/5 7 8 scanning 42 read_only";
    let st = status::device_status(&dev, line, &root).unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    let expected = r#"{
  "schema_version": 1,
  "name": "r0",
  "kernel_name": "dm-3",
  "sectors": 524288,
  "main": null,
  "spare": null,
  "spare_uuid": null,
  "unit_sectors": 8,
  "remaps": 2,
  "pending": 1,
  "spare_used": 3,
  "spare_total": 112640,
  "read_errors": 4,
  "write_errors": 5,
  "remap_failures": 6,
  "health": "degraded",
  "metadata_seq": 9,
  "metadata_copies": 4,
  "metadata_repairs": 7,
  "metadata_errors": 8,
  "scan_state": "scanning",
  "scan_progress": 42,
  "metadata_mode": "read_only",
  "sysfs": {
    "health": "degraded",
    "scan_progress": "42"
  }
}
"#;
    assert_eq!(status::status_json(std::slice::from_ref(&st), true), expected);
    // An older module: no scan fields, no sysfs folder; all devices: an array.
    let old = status::device_status(&dev, "1 1 0 0 0/100 0 0 0 ok 1 5/5 0 0", Path::new("/nonexistent")).unwrap();
    let expected = r#"[
  {
    "schema_version": 1,
    "name": "r0",
    "kernel_name": "dm-3",
    "sectors": 524288,
    "main": null,
    "spare": null,
    "spare_uuid": null,
    "unit_sectors": 1,
    "remaps": 0,
    "pending": 0,
    "spare_used": 0,
    "spare_total": 100,
    "read_errors": 0,
    "write_errors": 0,
    "remap_failures": 0,
    "health": "ok",
    "metadata_seq": 1,
    "metadata_copies": 5,
    "metadata_repairs": 0,
    "metadata_errors": 0,
    "scan_state": null,
    "scan_progress": null,
    "metadata_mode": null,
    "sysfs": null
  }
]
"#;
    assert_eq!(status::status_json(&[old], false), expected);
    assert_eq!(status::status_json(&[], false), "[]\n");
}

#[test]
fn list_output_parses() {
    let list = status::parse_list("8 9216\n16 pending\n").unwrap();
    assert_eq!(list[0], status::ListEntry { sector: 8, spare_sector: Some(9216), state: "remapped" });
    assert_eq!(list[1], status::ListEntry { sector: 16, spare_sector: None, state: "pending" });
    assert!(status::parse_list("8\n").is_err());
    assert!(status::parse_list("8 x\n").is_err());
}

// ---- exit by health, metrics, identities, messages ---------------------------------------------

/// The status of r0 (dm-3) from INFO line `line`, without sysfs.
fn status_of(line: &str) -> status::DeviceStatus {
    let dev = dm::RemapDevice { name: "r0".into(), devno: (253, 3), start: 0, len: 524288 };
    status::device_status(&dev, line, Path::new("/nonexistent")).unwrap()
}

#[test]
fn status_exits_by_the_worst_health_outside_the_error_codes() {
    let errors: Vec<u8> = ALL_KINDS.iter().map(|k| k.exit_code()).collect();
    let codes: Vec<u8> = ["ok", "degraded", "spare_low", "spare_full", "some_newer_word"]
        .iter()
        .map(|w| status::health_exit_code(w))
        .collect();
    assert_eq!(codes, [0, 20, 21, 22, 22]);
    assert!(codes.iter().all(|c| *c == 0 || (!errors.contains(c) && *c != 2 && *c >= 20)));
    let ok = status_of("1 1 0 0 0/100 0 0 0 ok 1 5/5 0 0 idle 0");
    let pending = status_of("1 1 0 1 0/100 1 0 0 degraded 1 5/5 0 0 idle 0");
    let full = status_of("1 1 100 0 100/100 0 1 1 spare_full 3 5/5 0 0 idle 0");
    assert_eq!(status::status_exit_code(&[]), 0);
    assert_eq!(status::status_exit_code(std::slice::from_ref(&ok)), 0);
    assert_eq!(status::status_exit_code(&[ok, pending]), 20);
    assert_eq!(status::status_exit_code(std::slice::from_ref(&full)), 22);
}

/// A device whose metadata is read-only (a commit failed) is not "ok" for a script, whatever
/// its health word: it makes no new remaps until `dm-remap repair`.
#[test]
fn status_exit_code_counts_read_only_metadata_as_failed() {
    let write = status_of("1 1 0 0 0/100 0 0 0 ok 1 5/5 0 0 idle 0 write");
    let read_only = status_of("1 1 0 0 0/100 0 0 0 ok 2 5/5 0 1 idle 0 read_only");
    let degraded_read_only = status_of("1 1 0 1 0/100 1 0 0 degraded 2 5/5 0 1 idle 0 read_only");
    assert_eq!(status::status_exit_code(std::slice::from_ref(&write)), 0);
    assert_eq!(status::status_exit_code(std::slice::from_ref(&read_only)), 22);
    assert_eq!(status::status_exit_code(std::slice::from_ref(&degraded_read_only)), 22);
}

#[test]
fn prometheus_metrics_name_each_figure_with_device_and_health_labels() {
    let mut st = status_of("1 8 2 1 3/112640 4 5 6 degraded 9 4/5 7 8 scanning 42 write");
    st.name = "we\"ird\\name".into();
    st.disks = identity::Disks {
        main: Some(identity::Disk { devno: "8:16".into(), path: Some("/dev/sdb".into()), by_id: vec!["/dev/disk/by-id/ata-OLD".into()] }),
        spare: Some(identity::Disk { devno: "8:32".into(), path: Some("/dev/sdc".into()), by_id: vec![] }),
        spare_uuid: Some("abababab-abab-abab-abab-abababababab".into()),
    };
    let text = prometheus::metrics(std::slice::from_ref(&st));
    let device = r#"device="we\"ird\\name""#;
    for line in [
        "dm_remap_devices 1".to_string(),
        format!("dm_remap_device_info{{{device},kernel_name=\"dm-3\",main=\"/dev/disk/by-id/ata-OLD\",spare=\"/dev/sdc\",spare_uuid=\"abababab-abab-abab-abab-abababababab\"}} 1"),
        format!("dm_remap_size_bytes{{{device}}} 268435456"),
        format!("dm_remap_unit_bytes{{{device}}} 4096"),
        format!("dm_remap_remapped_units{{{device}}} 2"),
        format!("dm_remap_pending_units{{{device}}} 1"),
        format!("dm_remap_spare_used_units{{{device}}} 3"),
        format!("dm_remap_spare_units{{{device}}} 112640"),
        format!("dm_remap_read_errors_total{{{device}}} 4"),
        format!("dm_remap_write_errors_total{{{device}}} 5"),
        format!("dm_remap_remap_failures_total{{{device}}} 6"),
        format!("dm_remap_health{{{device},health=\"ok\"}} 0"),
        format!("dm_remap_health{{{device},health=\"degraded\"}} 1"),
        format!("dm_remap_health{{{device},health=\"spare_full\"}} 0"),
        format!("dm_remap_metadata_seq{{{device}}} 9"),
        format!("dm_remap_metadata_copies{{{device}}} 4"),
        format!("dm_remap_metadata_repairs_total{{{device}}} 7"),
        format!("dm_remap_metadata_errors_total{{{device}}} 8"),
        format!("dm_remap_scan_state{{{device},state=\"scanning\"}} 1"),
        format!("dm_remap_scan_state{{{device},state=\"idle\"}} 0"),
        format!("dm_remap_scan_progress_ratio{{{device}}} 0.42"),
        "# TYPE dm_remap_read_errors_total counter".to_string(),
        "# TYPE dm_remap_health gauge".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line} in:\n{text}");
    }
    // Every sample follows its own HELP and TYPE lines, once per metric name.
    let mut typed = std::collections::HashSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            current = rest.split(' ').next().unwrap().to_string();
            assert!(typed.insert(current.clone()), "{current} typed twice");
        } else if !line.starts_with("# HELP ") {
            assert!(line.starts_with(&current), "{line} outside its metric {current}");
        }
    }
    // A health word of a newer module gets its own series; an older module has no scan series.
    let newer = status_of("1 1 0 0 0/100 0 0 0 failing 1 5/5 0 0");
    let text = prometheus::metrics(&[newer]);
    assert!(text.contains("dm_remap_health{device=\"r0\",health=\"failing\"} 1"), "{text}");
    assert!(!text.contains("dm_remap_scan"), "{text}");
    assert_eq!(prometheus::metrics(&[]), "# HELP dm_remap_devices Active dm-remap-v4 devices.\n# TYPE dm_remap_devices gauge\ndm_remap_devices 0\n");
}

#[test]
fn identities_come_from_the_table_and_the_spare_s_metadata() {
    assert_eq!(identity::table_devices("8:16 8:32"), Some(((8, 16), (8, 32))));
    assert_eq!(identity::table_devices("8:16 253:1 1 format"), Some(((8, 16), (253, 1))));
    assert_eq!(identity::table_devices("8:16"), None);
    assert_eq!(identity::table_devices("sdb sdc"), None);
    assert_eq!(identity::disks("garbage", Path::new("/nonexistent")), identity::Disks::default());
    let image = Image::new("uuid", 8, &[(3, 0)], &[], 2);
    assert_eq!(identity::spare_uuid(image.path()).as_deref(), Some("abababab-abab-abab-abab-abababababab"));
    // Copy 0's superblock lost: another copy still names the spare.
    let zero = [0u8; BLOCK_BYTES];
    let file = std::fs::OpenOptions::new().write(true).open(image.path()).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &zero, 0).unwrap();
    assert_eq!(identity::spare_uuid(image.path()).as_deref(), Some("abababab-abab-abab-abab-abababababab"));
    let blank = temp_path("blank");
    std::fs::write(&blank, vec![0u8; 1 << 20]).unwrap();
    assert_eq!(identity::spare_uuid(blank.to_str().unwrap()), None);
    assert_eq!(identity::spare_uuid("/nonexistent"), None);
    // No by-id folder (no udev): no stable names, not an error.
    assert!(identity::by_id_links((8, 16), Path::new("/nonexistent")).is_empty());
}

#[test]
fn refused_messages_are_explained_in_the_operator_s_words() {
    let dev = dm::RemapDevice { name: "r0".into(), devno: (253, 3), start: 0, len: 1000 };
    let refusal = |errno| dm::MessageRefusal { errno: Some(errno), text: "EINVAL: Invalid argument".into() };
    let e = ops::refusal_error(&dev, "unremap 5000", &refusal(libc::EINVAL));
    assert_eq!((e.kind, e.message.as_str()), (Kind::Refused, "r0: 'unremap 5000' refused: Sector beyond the end of the target (EINVAL)"));
    let e = ops::refusal_error(&dev, "unremap 8", &refusal(libc::EINVAL));
    assert_eq!(e.message, "r0: 'unremap 8' refused: Sector is not remapped (EINVAL)");
    let e = ops::refusal_error(&dev, "frobnicate", &refusal(libc::EINVAL));
    assert_eq!(e.message, "r0: 'frobnicate' refused: Unknown message verb (try 'help') (EINVAL)");
    assert_eq!(ops::refusal_error(&dev, "unremap 8", &refusal(libc::EIO)).kind, Kind::Device);
    assert_eq!(ops::refusal_error(&dev, "remap 8", &refusal(libc::EBUSY)).kind, Kind::Busy);
    let full = dm::MessageRefusal { errno: Some(libc::ENOSPC), text: "ENOSPC: No space left on device".into() };
    assert_eq!(ops::refusal_error(&dev, "remap 8", &full).message, "r0: 'remap 8' refused: Spare device full (ENOSPC)");
    let read_only = dm::MessageRefusal { errno: Some(libc::EROFS), text: "EROFS: Read-only file system".into() };
    let e = ops::refusal_error(&dev, "clear_pending 8", &read_only);
    assert_eq!((e.kind, e.message.as_str()), (Kind::Refused, "r0: 'clear_pending 8' refused: Metadata is read-only after a failed commit: remove the device and run dm-remap repair on the spare (EROFS)"));
    let other = dm::MessageRefusal { errno: None, text: "no such device".into() };
    assert_eq!(ops::refusal_error(&dev, "list", &other).message, "r0: 'list' refused: no such device");
}
