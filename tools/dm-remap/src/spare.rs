// SPDX-License-Identifier: GPL-2.0

//! Offline reading, checking and repair of a spare's metadata (`docs/metadata-format.md`),
//! through the core's codec only.
//!
//! The copies are found as the kernel finds them (`src/persist.rs`): every sector of
//! [`probe_sectors`] is read, a superblock counts where its `home_sector` is, the newest per
//! copy index is kept. Unlike the kernel, which checks only the copy it loads, every copy is
//! checked in full ([`CopyChecker`] plus the duplicate check the checker leaves to its caller),
//! so that `check` can say which copies are valid. The copy chosen and the copies marked for
//! rewrite are those the kernel would choose and rewrite ([`choose`], then the remap arrays
//! of the up-to-date copies compared with the chosen one's).

use crate::device::Device;
use crate::error::{Error, Kind, Result};
use dm_remap_core::metadata::{
    choose, classify, decode_block, decode_superblock, encode_superblock, next_seq,
    probe_sectors, BlockKind, BlockPos, Classification, CopyChecker, Fed, FormatError,
    RemapEntry, Superblock, BLOCK_BYTES, BLOCK_SECTORS, COPIES, FLAG_NEEDS_CHECK,
};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::Hasher;

/// The state of one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyState {
    /// Valid and holding the chosen state (the chosen copy itself included).
    Current,
    /// Valid, but an older state or other contents: rewritten by `repair` (and by the kernel).
    Stale,
    /// Invalid or missing: rewritten by `repair` (and by the kernel).
    Damaged,
}

/// What was found for one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The copy (0..5).
    pub copy: usize,
    /// Where it was examined (first sector), if known.
    pub sector: Option<u64>,
    /// Its state.
    pub state: CopyState,
    /// Its superblock's sequence number, if it decodes.
    pub seq: Option<u64>,
    /// Why it is damaged.
    pub error: Option<String>,
}

/// The entries of the chosen copy. Units are remap units (`unit_sectors` sectors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    /// `(main unit, spare unit)` per remap, in main-unit order.
    pub remaps: Vec<(u64, u64)>,
    /// Spare units marked bad, ascending.
    pub bad: Vec<u64>,
    /// Pending main units, ascending.
    pub pending: Vec<u64>,
}

/// The result of reading a spare.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// One report per copy.
    pub copies: Vec<CopyReport>,
    /// The copy the kernel would load, its superblock and entries; `None` if no copy is valid.
    pub chosen: Option<(usize, Superblock, Entries)>,
}

impl Inspection {
    /// Whether every copy is current.
    pub fn is_clean(&self) -> bool {
        self.copies.iter().all(|c| c.state == CopyState::Current)
    }

    /// The copies `repair` (and the kernel's next load) rewrites.
    pub fn to_rewrite(&self) -> Vec<usize> {
        self.copies.iter().filter(|c| c.state != CopyState::Current).map(|c| c.copy).collect()
    }
}

/// A copy that passed every check.
struct ValidCopy {
    superblock: Superblock,
    /// Digest of the raw remap array, to compare copies as the kernel does.
    digest: u64,
    entries: Entries,
}

/// What a device holds at the places where metadata can be.
#[derive(Debug, Clone)]
pub enum Probe {
    /// All zero: the kernel formats it at the first create.
    Zeroed,
    /// Something that is not dm-remap metadata: the kernel refuses it without `format`.
    Foreign,
    /// dm-remap metadata, checked copy by copy.
    Ours(Box<Inspection>),
}

/// Reads and checks every copy on `dev`.
///
/// # Errors
/// [`Kind::NotASpare`] when no dm-remap metadata is there (zeroed or foreign data),
/// [`Kind::Device`] on a read error. A spare whose copies are all invalid is not an error
/// here: `chosen` is `None`.
pub fn inspect(dev: &mut Device) -> Result<Inspection> {
    match probe(dev)? {
        Probe::Ours(inspection) => Ok(*inspection),
        other => {
            let what = if matches!(other, Probe::Zeroed) { "zeroed" } else { "foreign data" };
            Err(Error::new(Kind::NotASpare, format!("{}: no dm-remap metadata ({what})", dev.path)))
        }
    }
}

/// Finds out what `dev` holds, checking every metadata copy if it is a spare.
///
/// # Errors
/// [`Kind::Device`] on a read error.
pub fn probe(dev: &mut Device) -> Result<Probe> {
    let spare_sectors = dev.sectors;
    let mut found: [Option<Superblock>; COPIES] = [None; COPIES];
    let mut heads = Vec::new();
    for sector in probe_sectors(spare_sectors) {
        let block = dev.read_block(sector)?;
        if let Ok(sb) = decode_superblock(&block) {
            if sb.home_sector() == Some(sector) {
                if let Some(slot) = found.get_mut(sb.copy_index as usize) {
                    if slot.map_or(true, |old| sb.seq > old.seq) {
                        *slot = Some(sb);
                    }
                }
            }
        }
        heads.push(block);
    }
    let head_refs: Vec<&[u8; BLOCK_BYTES]> = heads.iter().collect();
    match classify(&head_refs) {
        Classification::Ours { .. } => {}
        other => {
            // As the kernel: copy 0's first remap block still ours means every copy is lost.
            let ours = spare_sectors >= 2 * BLOCK_SECTORS
                && decode_block(&dev.read_block(BLOCK_SECTORS)?, BlockKind::Remap, 0).is_ok();
            if !ours {
                return Ok(if other == Classification::Zeroed { Probe::Zeroed } else { Probe::Foreign });
            }
        }
    }
    check_all(dev, &found).map(|i| Probe::Ours(Box::new(i)))
}

/// Checks every copy whose superblock was found and chooses among the valid ones.
fn check_all(dev: &mut Device, found: &[Option<Superblock>; COPIES]) -> Result<Inspection> {
    let mut valid: Vec<Option<ValidCopy>> = Vec::with_capacity(COPIES);
    let mut errors: Vec<Option<String>> = Vec::with_capacity(COPIES);
    for (copy, sb) in found.iter().enumerate() {
        match sb.map(|sb| check_copy(dev, copy, &sb)).transpose()? {
            Some(Ok(v)) => {
                valid.push(Some(v));
                errors.push(None);
            }
            Some(Err(e)) => {
                valid.push(None);
                errors.push(Some(e.to_string()));
            }
            None => {
                valid.push(None);
                errors.push(None);
            }
        }
    }
    let superblocks: [Option<Superblock>; COPIES] =
        core::array::from_fn(|i| valid.get(i).and_then(|v| v.as_ref()).map(|v| v.superblock));
    let Ok(choice) = choose(&superblocks) else {
        let copies = (0..COPIES)
            .map(|copy| CopyReport {
                copy,
                sector: found[copy].and_then(|sb| sb.home_sector()),
                state: CopyState::Damaged,
                seq: found[copy].map(|sb| sb.seq),
                error: Some(errors[copy].clone().unwrap_or_else(|| "no superblock found".into())),
            })
            .collect();
        return Ok(Inspection { copies, chosen: None });
    };
    let chosen_digest = valid[choice.copy].as_ref().map(|v| v.digest);
    let layout = choice.superblock.layout;
    let mut copies = Vec::with_capacity(COPIES);
    for copy in 0..COPIES {
        let sector = layout.copy_start(copy);
        let this = valid[copy].as_ref();
        let (state, error) = if choice.damaged[copy] {
            let error = match &errors[copy] {
                Some(e) => e.clone(),
                None => describe_missing(dev, sector)?,
            };
            (CopyState::Damaged, Some(error))
        } else if choice.stale[copy] || this.map(|v| v.digest) != chosen_digest {
            (CopyState::Stale, None)
        } else {
            (CopyState::Current, None)
        };
        let seq = this.map(|v| v.superblock.seq).or(found[copy].map(|sb| sb.seq));
        copies.push(CopyReport { copy, sector, state, seq, error });
    }
    let entries = valid[choice.copy].take().map(|v| v.entries).unwrap_or_default();
    Ok(Inspection { copies, chosen: Some((choice.copy, choice.superblock, entries)) })
}

/// Why no valid superblock of copy `i` was found at `sector` (the chosen layout's place).
fn describe_missing(dev: &mut Device, sector: Option<u64>) -> Result<String> {
    let Some(sector) = sector.filter(|s| s.saturating_add(BLOCK_SECTORS) <= dev.sectors) else {
        return Ok("outside the device".into());
    };
    Ok(match decode_superblock(&dev.read_block(sector)?) {
        Ok(sb) if sb.home_sector() != Some(sector) => FormatError::WrongCopy.to_string(),
        Ok(_) => "superblock of another layout".into(),
        Err(e) => format!("superblock: {e}"),
    })
}

/// Checks copy `copy` headed by `sb` block by block, and that no main unit appears twice.
/// The outer result is an I/O error, the inner one the reason the copy is invalid.
fn check_copy(
    dev: &mut Device,
    copy: usize,
    sb: &Superblock,
) -> Result<std::result::Result<ValidCopy, FormatError>> {
    let mut checker = match CopyChecker::new(copy, sb) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    if sb.layout.spare_sectors() > dev.sectors {
        return Ok(Err(FormatError::SpareShrunk));
    }
    let mut hasher = DefaultHasher::new();
    let mut entries = Entries::default();
    let mut seen = HashSet::new();
    while let Some(sector) = checker.next_sector() {
        let block = dev.read_block(sector)?;
        match checker.feed(&block) {
            Ok(Fed::Remap(b)) => {
                for (spare_unit, entry) in b.entries() {
                    hasher.write_u64(entry.to_raw().unwrap_or(0));
                    match entry {
                        RemapEntry::Free => {}
                        RemapEntry::Bad => entries.bad.push(spare_unit),
                        RemapEntry::Remapped(main) => {
                            if !seen.insert(main) {
                                return Ok(Err(FormatError::DuplicateMainUnit));
                            }
                            entries.remaps.push((main, spare_unit));
                        }
                    }
                }
            }
            Ok(Fed::Pending(p)) => {
                for main in p.units() {
                    if !seen.insert(main) {
                        return Ok(Err(FormatError::DuplicateMainUnit));
                    }
                    entries.pending.push(main);
                }
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    if let Err(e) = checker.finish() {
        return Ok(Err(e));
    }
    entries.remaps.sort_unstable();
    entries.pending.sort_unstable();
    Ok(Ok(ValidCopy { superblock: *sb, digest: hasher.finish(), entries }))
}

/// Rewrites every stale or damaged copy from the chosen one, block by block (checked again as
/// it is copied), each copy's blocks first, then its superblock, each step made durable before
/// the next, like a kernel commit. Returns the copies rewritten.
///
/// # Errors
/// [`Kind::NoValidCopy`] (nothing written), [`Kind::Device`] on an I/O error,
/// [`Kind::Damaged`] if the chosen copy changed under the tool.
pub fn repair(dev: &mut Device, inspection: &Inspection) -> Result<Vec<usize>> {
    let Some((chosen, sb, _)) = &inspection.chosen else {
        return Err(Error::new(
            Kind::NoValidCopy,
            format!("{}: no valid metadata copy to repair from; nothing written", dev.path),
        ));
    };
    let layout = sb.layout;
    let targets = inspection.to_rewrite();
    for &copy in &targets {
        let mut checker = CopyChecker::new(*chosen, sb).map_err(|e| changed(dev, e))?;
        while let Some(pos) = checker.next_block() {
            let from = layout.block_sector(*chosen, pos).ok_or_else(|| changed(dev, FormatError::UnexpectedBlock))?;
            let to = layout.block_sector(copy, pos).ok_or_else(|| changed(dev, FormatError::UnexpectedBlock))?;
            let block = dev.read_block(from)?;
            checker.feed(&block).map_err(|e| changed(dev, e))?;
            dev.write_block(to, &block)?;
        }
        checker.finish().map_err(|e| changed(dev, e))?;
        dev.sync()?;
        let mut block = [0u8; BLOCK_BYTES];
        encode_superblock(&Superblock { copy_index: copy as u32, ..*sb }, &mut block)
            .map_err(|e| changed(dev, e))?;
        let at = layout.block_sector(copy, BlockPos::Superblock).ok_or_else(|| changed(dev, FormatError::BadCopyIndex))?;
        dev.write_block(at, &block)?;
        dev.sync()?;
    }
    Ok(targets)
}

/// Clears the `needs_check` flag of a spare whose five copies are all current (checked by
/// the caller's `inspection`): writes each copy's superblock again, the flag cleared and the
/// sequence number one higher, copy after copy, each made durable before the next, as a kernel
/// commit writes them. The blocks stay as they are (a block older than its superblock is
/// valid). A crash in between leaves copies at the old and the new number: the newest (flag
/// clear) is chosen and the others are stale, rewritten by the next load or `repair`. Returns
/// the new sequence number.
///
/// # Errors
/// [`Kind::Damaged`] if a copy is not current or the sequence number is exhausted (nothing
/// written), [`Kind::NoValidCopy`], [`Kind::Device`] on an I/O error.
pub fn clear_needs_check(dev: &mut Device, inspection: &Inspection) -> Result<u64> {
    let Some((_, sb, _)) = &inspection.chosen else {
        return Err(Error::new(Kind::NoValidCopy, format!("{}: no valid metadata copy; nothing written", dev.path)));
    };
    if !inspection.is_clean() {
        return Err(Error::new(
            Kind::Damaged,
            format!("{}: copies {:?} not current; needs_check left set", dev.path, inspection.to_rewrite()),
        ));
    }
    let seq = next_seq(sb.seq)
        .ok_or_else(|| Error::new(Kind::Damaged, format!("{}: sequence number exhausted; nothing written", dev.path)))?;
    let layout = sb.layout;
    for copy in 0..COPIES {
        let mut block = [0u8; BLOCK_BYTES];
        let cleared = Superblock { copy_index: copy as u32, seq, flags: sb.flags & !FLAG_NEEDS_CHECK, ..*sb };
        encode_superblock(&cleared, &mut block).map_err(|e| changed(dev, e))?;
        let at = layout.block_sector(copy, BlockPos::Superblock).ok_or_else(|| changed(dev, FormatError::BadCopyIndex))?;
        dev.write_block(at, &block)?;
        dev.sync()?;
    }
    Ok(seq)
}

fn changed(dev: &Device, e: FormatError) -> Error {
    Error::new(Kind::Damaged, format!("{}: the chosen copy no longer checks ({e}); stopped", dev.path))
}
