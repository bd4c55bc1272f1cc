// SPDX-License-Identifier: GPL-2.0

//! Writes a spare-device image that already holds many remaps, for benchmarks (`scripts/bench`):
//! creating a million remaps with `dmsetup message` takes most of an hour under TCG, writing
//! their metadata here takes a second.
//!
//! ```text
//! cargo run --release -p dm-remap-core --example make_spare -- \
//!     --spare FILE --main-sectors M --unit-sectors 1|2|4|8 --remaps COUNT \
//!     --first-main-unit U [--stride S] [--group G] [--spare-sectors N | --free F]
//! ```
//!
//! The image holds all five metadata copies (format version 1, `seq` 1, the layout
//! `layout_for` chooses for the spare's size, as the kernel's own format would) whose remap
//! array maps `COUNT` main units to the first `COUNT` spare data units, in order. Main unit of
//! remap `k`: `U + (k / G) * S + k % G` — runs of `G` consecutive units (default 1), one run
//! every `S` units (default `G`: one contiguous run). The main fingerprint is the main device
//! the target will see: `M` sectors, logical block size `unit_sectors * 512`, no unique id
//! (id kind 0, as for null_blk, virtio and loop devices).
//!
//! Without `--spare-sectors` the spare is the smallest whole number of MiB whose data area has
//! room for `COUNT` units plus `--free F` more (default 0; null_blk sizes are in MiB). The file is sparse: only the copies are
//! written. On success the tool prints shell assignments for the caller (`spare_sectors`,
//! `copy_sectors`, `data_units`, `remaps`, and `extents`: the byte ranges `offset:length` that
//! hold data, so that a copy onto a device can skip the holes).
//!
//! Test the logic with `cargo test -p dm-remap-core --example make_spare`.

use dm_remap_core::metadata::{
    encode_block, encode_superblock, layout_for, BlockKind, BlockPos, Layout, MainFingerprint,
    RemapEntry, Superblock, BLOCK_BYTES, COPIES, ENTRIES_PER_BLOCK, ENTRIES_PER_BLOCK_U64,
    MAIN_ID_NONE, SECTOR_BYTES,
};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::process::ExitCode;

/// Sectors per MiB: spare sizes chosen by the tool are whole MiB.
const MIB_SECTORS: u64 = 2048;

/// The smallest spare the target accepts (`docs/table-line.md`).
const MIN_SPARE_SECTORS: u64 = 10240;

/// What to write: the devices and which main units are remapped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// Size of the spare in sectors; `None`: the smallest whole MiB that fits `remaps`.
    spare_sectors: Option<u64>,
    /// Size of the main device in sectors (part of its fingerprint).
    main_sectors: u64,
    /// The remap unit in sectors: the main device's logical block size / 512.
    unit_sectors: u32,
    /// How many main units are remapped.
    remaps: u64,
    /// Main unit of remap 0.
    first_main_unit: u64,
    /// Distance between the starts of two runs, in units (`>= group`).
    stride: u64,
    /// Free data units to leave besides the remaps when the tool sizes the spare.
    free: u64,
    /// Consecutive units per run (`>= 1`).
    group: u64,
}

impl Plan {
    /// Main unit of remap `k` (`k < remaps`): `first + (k / group) * stride + k % group`.
    /// `None` on overflow.
    fn main_unit(&self, k: u64) -> Option<u64> {
        (k / self.group)
            .checked_mul(self.stride)?
            .checked_add(k % self.group)?
            .checked_add(self.first_main_unit)
    }

    /// Checks the pattern against the main device: runs do not overlap and the last remapped
    /// unit is on main.
    fn check(&self) -> Result<(), String> {
        if self.group == 0 || self.stride < self.group {
            return Err(format!(
                "--stride ({}) must be at least --group ({}), which must be at least 1",
                self.stride, self.group
            ));
        }
        let main_units = self.main_sectors / u64::from(self.unit_sectors.max(1));
        if self.remaps > 0 {
            let last = self
                .main_unit(self.remaps - 1)
                .ok_or("the remapped units overflow")?;
            if last >= main_units {
                return Err(format!(
                    "the last remapped unit ({last}) is beyond the main device ({main_units} units)"
                ));
            }
        }
        Ok(())
    }
}

/// The smallest spare, in whole MiB (and at least [`MIN_SPARE_SECTORS`]), whose layout (as
/// [`layout_for`] chooses it) has at least `data_units` data units.
fn smallest_spare(unit_sectors: u32, main_sectors: u64, data_units: u64) -> Option<u64> {
    let mut copy_sectors: u64 = 1024;
    // Try each copy size the layout could take; the first fit is the smallest spare, because a
    // larger copy size only makes the metadata area larger.
    for _ in 0..50 {
        let wanted = copy_sectors
            .checked_mul(9)?
            .checked_add(data_units.checked_mul(u64::from(unit_sectors))?)?
            .max(MIN_SPARE_SECTORS);
        let spare = wanted.div_ceil(MIB_SECTORS).checked_mul(MIB_SECTORS)?;
        if let Some(layout) = layout_for(spare, unit_sectors, main_sectors) {
            if layout.data_units() >= data_units {
                return Some(spare);
            }
        }
        copy_sectors = copy_sectors.checked_mul(2)?;
    }
    None
}

/// One copy of the metadata, as bytes, plus where the copies go.
struct Image {
    /// The superblock of copy 0 (the others differ only in `copy_index`).
    superblock: Superblock,
    /// Copy 0: superblock, remap array, pending list (`blocks_per_copy` blocks).
    copy: Vec<u8>,
}

impl Image {
    /// Encodes the metadata of `plan`.
    fn build(plan: &Plan, uuid: [u8; 16], created_time: u64) -> Result<Self, String> {
        plan.check()?;
        let spare_sectors = match plan.spare_sectors {
            Some(n) => n,
            None => {
                let units = plan
                    .remaps
                    .checked_add(plan.free)
                    .ok_or("--free overflows")?;
                smallest_spare(plan.unit_sectors, plan.main_sectors, units)
                    .ok_or("no spare size fits")?
            }
        };
        let layout: Layout = layout_for(spare_sectors, plan.unit_sectors, plan.main_sectors)
            .ok_or("no metadata layout for these sizes (spare too small or bad unit size?)")?;
        if plan.remaps > layout.data_units() {
            return Err(format!(
                "{} remaps do not fit in the spare's {} data units",
                plan.remaps,
                layout.data_units()
            ));
        }
        let main = MainFingerprint {
            main_sectors: plan.main_sectors,
            block_size: plan.unit_sectors * SECTOR_BYTES as u32,
            id_kind: MAIN_ID_NONE,
            id: [0; 16],
        };
        let mut superblock =
            Superblock::new_format(layout, uuid, main).map_err(|e| format!("superblock: {e}"))?;
        superblock.remap_count = plan.remaps;
        superblock.high_water = layout.data_start() + plan.remaps;
        superblock.created_time = created_time;

        let blocks = usize::try_from(layout.blocks_per_copy()).map_err(|e| e.to_string())?;
        let mut copy = vec![0u8; blocks * BLOCK_BYTES];
        let mut block = [0u8; BLOCK_BYTES];
        let mut entries = Vec::with_capacity(ENTRIES_PER_BLOCK);
        for b in 0..layout.remap_blocks() {
            entries.clear();
            // Data unit i = 510 b + slot holds remap i (if i < remaps); the rest stay free.
            let first = b * ENTRIES_PER_BLOCK_U64;
            let end = (first + ENTRIES_PER_BLOCK_U64).min(plan.remaps);
            for k in first..end {
                let unit = plan.main_unit(k).ok_or("main unit overflow")?;
                let raw = RemapEntry::Remapped(unit)
                    .to_raw()
                    .ok_or("main unit too large")?;
                entries.push(raw);
            }
            encode_block(BlockKind::Remap, b, 1, &entries, &mut block)
                .map_err(|e| format!("remap block {b}: {e}"))?;
            put(&mut copy, &layout, BlockPos::Remap(b), &block)?;
        }
        for b in 0..layout.pending_blocks() {
            encode_block(BlockKind::Pending, b, 1, &[], &mut block)
                .map_err(|e| format!("pending block {b}: {e}"))?;
            put(&mut copy, &layout, BlockPos::Pending(b), &block)?;
        }
        encode_superblock(&superblock, &mut block).map_err(|e| format!("superblock: {e}"))?;
        put(&mut copy, &layout, BlockPos::Superblock, &block)?;
        Ok(Image { superblock, copy })
    }

    fn layout(&self) -> &Layout {
        &self.superblock.layout
    }

    /// `(byte offset, bytes)` of each copy on the spare.
    fn copies(&self) -> Result<Vec<(u64, Vec<u8>)>, String> {
        let mut out = Vec::with_capacity(COPIES);
        for index in 0..COPIES {
            let start = self.layout().copy_start(index).ok_or("copy start")?;
            let mut bytes = self.copy.clone();
            let superblock = Superblock {
                copy_index: index as u32,
                ..self.superblock
            };
            let mut block = [0u8; BLOCK_BYTES];
            encode_superblock(&superblock, &mut block).map_err(|e| format!("superblock: {e}"))?;
            bytes[..BLOCK_BYTES].copy_from_slice(&block);
            out.push((start * SECTOR_BYTES, bytes));
        }
        Ok(out)
    }

    /// Writes the copies into `out` (a file of the spare's size, or anything seekable).
    fn write_to<W: Write + Seek>(&self, out: &mut W) -> Result<(), String> {
        for (offset, bytes) in self.copies()? {
            out.seek(SeekFrom::Start(offset))
                .map_err(|e| e.to_string())?;
            out.write_all(&bytes).map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())
    }

    /// Shell assignments describing the image (see the module documentation).
    fn describe(&self) -> String {
        let layout = self.layout();
        let extents: Vec<String> = (0..COPIES)
            .filter_map(|i| layout.copy_start(i))
            .map(|s| format!("{}:{}", s * SECTOR_BYTES, self.copy.len()))
            .collect();
        format!(
            "spare_sectors={}\ncopy_sectors={}\ndata_units={}\nremaps={}\nextents='{}'\n",
            layout.spare_sectors(),
            layout.copy_sectors(),
            layout.data_units(),
            self.superblock.remap_count,
            extents.join(" ")
        )
    }
}

/// Stores `block` at its place within copy 0's bytes.
fn put(
    copy: &mut [u8],
    layout: &Layout,
    pos: BlockPos,
    block: &[u8; BLOCK_BYTES],
) -> Result<(), String> {
    let position = layout.position_of(pos).ok_or("block position")?;
    let at = usize::try_from(position).map_err(|e| e.to_string())? * BLOCK_BYTES;
    copy.get_mut(at..at + BLOCK_BYTES)
        .ok_or("block outside the copy")?
        .copy_from_slice(block);
    Ok(())
}

/// A random-enough spare UUID (the format only asks that the copies agree).
fn uuid_now() -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut state = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    let mut uuid = [0u8; 16];
    for chunk in uuid.chunks_mut(8) {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes()[..chunk.len()]);
    }
    uuid
}

const USAGE: &str = "usage: make_spare --spare FILE --main-sectors M --unit-sectors 1|2|4|8 \
--remaps COUNT --first-main-unit U [--stride S] [--group G] [--spare-sectors N | --free F]";

/// Parses the command line into the output path and the plan.
fn parse(args: &[String]) -> Result<(String, Plan), String> {
    let mut file = None;
    let (mut spare_sectors, mut main_sectors, mut unit_sectors) = (None, None, None);
    let (mut remaps, mut first, mut stride, mut group, mut free) = (None, None, None, 1u64, 0);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--spare" => file = Some(value.clone()),
            "--spare-sectors" => spare_sectors = Some(number()?),
            "--main-sectors" => main_sectors = Some(number()?),
            "--unit-sectors" => {
                unit_sectors = Some(u32::try_from(number()?).map_err(|e| e.to_string())?)
            }
            "--remaps" => remaps = Some(number()?),
            "--first-main-unit" => first = Some(number()?),
            "--stride" => stride = Some(number()?),
            "--group" => group = number()?,
            "--free" => free = number()?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let need = |v: Option<u64>, name: &str| v.ok_or_else(|| format!("{name} is required"));
    let plan = Plan {
        spare_sectors,
        main_sectors: need(main_sectors, "--main-sectors")?,
        unit_sectors: unit_sectors.ok_or("--unit-sectors is required")?,
        remaps: need(remaps, "--remaps")?,
        first_main_unit: need(first, "--first-main-unit")?,
        stride: stride.unwrap_or(group),
        free,
        group,
    };
    Ok((file.ok_or("--spare is required")?, plan))
}

fn run(args: &[String]) -> Result<String, String> {
    let (path, plan) = parse(args)?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let image = Image::build(&plan, uuid_now(), created)?;
    let mut file = File::create(&path).map_err(|e| format!("{path}: {e}"))?;
    file.set_len(image.layout().spare_sectors() * SECTOR_BYTES)
        .map_err(|e| format!("{path}: {e}"))?;
    image
        .write_to(&mut file)
        .map_err(|e| format!("{path}: {e}"))?;
    file.sync_all().map_err(|e| format!("{path}: {e}"))?;
    Ok(image.describe())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(description) => {
            print!("{description}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make_spare: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_remap_core::metadata::{choose, decode_superblock, CopyChecker, Fed, BLOCK_SECTORS};
    use std::collections::HashMap;
    use std::io::Cursor;

    fn plan(remaps: u64, first: u64, stride: u64, group: u64) -> Plan {
        Plan {
            spare_sectors: None,
            main_sectors: 1 << 20,
            unit_sectors: 1,
            remaps,
            first_main_unit: first,
            stride,
            free: 0,
            group,
        }
    }

    fn block_at(disk: &[u8], sector: u64) -> [u8; BLOCK_BYTES] {
        let at = (sector * SECTOR_BYTES) as usize;
        disk[at..at + BLOCK_BYTES].try_into().unwrap()
    }

    /// Writes the image into memory and reads it back the way the kernel does: every copy
    /// through the codec's `CopyChecker`, then `choose`. Returns main unit -> spare unit.
    fn load(plan: &Plan) -> (Layout, HashMap<u64, u64>) {
        let image = Image::build(plan, [7; 16], 0).unwrap();
        let layout = *image.layout();
        let mut disk = Cursor::new(Vec::new());
        image.write_to(&mut disk).unwrap();
        let mut disk = disk.into_inner();
        disk.resize((layout.spare_sectors() * SECTOR_BYTES) as usize, 0);
        let mut found = [None; COPIES];
        let mut first_map = None;
        for copy in 0..COPIES {
            let start = layout.copy_start(copy).unwrap();
            let sb = decode_superblock(&block_at(&disk, start)).unwrap();
            assert_eq!(sb.home_sector(), Some(start));
            let mut checker = CopyChecker::new(copy, &sb).unwrap();
            let mut map = HashMap::new();
            while let Some(sector) = checker.next_sector() {
                let block = block_at(&disk, sector);
                match checker.feed(&block).unwrap() {
                    Fed::Remap(b) => {
                        for (spare, entry) in b.entries() {
                            if let RemapEntry::Remapped(main) = entry {
                                assert!(map.insert(main, spare).is_none(), "duplicate main unit");
                            }
                        }
                    }
                    Fed::Pending(p) => assert_eq!(p.units().count(), 0),
                }
            }
            let summary = checker.finish().unwrap();
            assert_eq!(summary.newest_block_seq, 1);
            found[copy] = Some(sb);
            match &first_map {
                None => first_map = Some(map),
                Some(m) => assert_eq!(m, &map, "copy {copy} differs"),
            }
        }
        let choice = choose(&found).unwrap();
        assert_eq!(choice.copy, 0);
        assert_eq!(choice.up_to_date(), COPIES);
        (layout, first_map.unwrap())
    }

    #[test]
    fn copies_pass_the_codec_checks_and_hold_the_planned_remaps() {
        for p in [
            plan(0, 0, 1, 1),
            plan(1, 5, 1, 1),
            plan(1000, 4096, 1, 1),
            plan(2000, 8, 16, 1),
            plan(8 * 37 + 3, 0, 1600, 8),
        ] {
            let (layout, map) = load(&p);
            assert_eq!(map.len() as u64, p.remaps, "{p:?}");
            for k in 0..p.remaps {
                let main = p.main_unit(k).unwrap();
                assert_eq!(
                    map.get(&main),
                    Some(&(layout.data_start() + k)),
                    "{p:?} remap {k}"
                );
            }
            assert!(layout.data_units() >= p.remaps);
            assert_eq!(layout.spare_sectors() % MIB_SECTORS, 0);
        }
    }

    #[test]
    fn large_images_use_the_layout_the_kernel_would_choose() {
        // 200k remaps of 512-byte units need C = 4096 (393 remap + 49 pending blocks + 1 <= 512).
        let p = Plan {
            main_sectors: 1 << 24,
            ..plan(200_000, 1 << 22, 1, 1)
        };
        let (layout, map) = load(&p);
        assert_eq!(map.len(), 200_000);
        assert_eq!(Some(layout), layout_for(layout.spare_sectors(), 1, 1 << 24));
        assert_eq!(layout.copy_sectors(), 4096);
        // The smallest such spare: one MiB less has too few data units.
        let smaller = layout_for(layout.spare_sectors() - MIB_SECTORS, 1, 1 << 24).unwrap();
        assert!(smaller.data_units() < 200_000);
    }

    #[test]
    fn unit_size_and_explicit_spare_size_are_honoured() {
        let p = Plan {
            spare_sectors: Some(64 * MIB_SECTORS),
            unit_sectors: 8,
            ..plan(100, 10, 3, 2)
        };
        let (layout, map) = load(&p);
        assert_eq!(layout.spare_sectors(), 64 * MIB_SECTORS);
        assert_eq!(layout.unit_sectors(), 8);
        assert_eq!(map.len(), 100);
        assert!(map.contains_key(&10) && map.contains_key(&11) && map.contains_key(&13));
        assert!(!map.contains_key(&12));
        assert_eq!(BLOCK_SECTORS, 8);
    }

    #[test]
    fn free_units_are_left_when_the_tool_sizes_the_spare() {
        let p = Plan {
            free: 20_000,
            ..plan(1000, 0, 1, 1)
        };
        let (layout, map) = load(&p);
        assert_eq!(map.len(), 1000);
        assert!(layout.data_units() >= 21_000);
    }

    #[test]
    fn bad_plans_are_refused() {
        // Overlapping runs, units beyond main, more remaps than the given spare holds.
        assert!(Image::build(&plan(10, 0, 4, 8), [0; 16], 0).is_err());
        assert!(Image::build(&plan(10, (1 << 20) - 5, 1, 1), [0; 16], 0).is_err());
        let tiny = Plan {
            spare_sectors: Some(10240),
            ..plan(5000, 0, 1, 1)
        };
        assert!(Image::build(&tiny, [0; 16], 0).is_err());
        assert!(Image::build(&plan(1, 0, 1, 0), [0; 16], 0).is_err());
    }

    #[test]
    fn command_line() {
        let args: Vec<String> = "--spare f --main-sectors 100 --unit-sectors 1 --remaps 4 \
                                 --first-main-unit 2 --group 2 --stride 5"
            .split_whitespace()
            .map(String::from)
            .collect();
        let (file, p) = parse(&args).unwrap();
        assert_eq!(file, "f");
        assert_eq!(
            (p.main_unit(0), p.main_unit(1), p.main_unit(2)),
            (Some(2), Some(3), Some(7))
        );
        assert!(parse(&args[..args.len() - 1]).is_err());
        assert!(parse(&["--remaps".into(), "x".into()]).is_err());
    }
}
