// SPDX-License-Identifier: GPL-2.0

//! Persistent metadata on the spare (format: `docs/metadata-format.md`, codec:
//! `remap_core::metadata`): the in-memory image of the on-disk remap array and pending list,
//! loading it at ctr (probe, choose a copy, check it block by block, repair the others) or
//! formatting a new spare, and commits.
//!
//! Commit protocol (model: dm-thin): the spare's cache is flushed first, so that the data of
//! every remap already recorded is durable; then the copies are written one after the other,
//! each with its changed blocks first and its superblock last, all with FUA. A crash tears at
//! most one copy, which the next load detects (a block newer than its superblock, or a bad
//! checksum) and repairs from the newest valid copy. A copy only receives the blocks that
//! changed since its own last complete write, so a commit after a few remaps writes a few
//! blocks per copy, however large the table.

#![forbid(unsafe_code)]

use crate::dm::{BioOp, DmDev, PageBuffer};
use crate::remap_core::metadata::{
    self, classify, decode_superblock, encode_block, encode_superblock, layout_for,
    probe_sectors, BlockKind, BlockPos, Classification, CopyChecker, Fed, Layout,
    MainFingerprint, RemapBlock, RemapEntry, Superblock, BLOCK_BYTES, COPIES, ENTRIES_PER_BLOCK,
};
use core::ffi::CStr;
use kernel::alloc::{flags::GFP_KERNEL, KBox, KVVec};
use kernel::prelude::*;

/// Why the spare's metadata could not be loaded or created: `ti->error` and the errno.
pub(crate) struct LoadError {
    pub(crate) message: &'static CStr,
    pub(crate) errno: Error,
}

fn refuse(message: &'static CStr) -> LoadError {
    LoadError { message, errno: EINVAL }
}

fn io_error(message: &'static CStr) -> LoadError {
    LoadError { message, errno: EIO }
}

fn no_memory(_: impl core::fmt::Debug) -> LoadError {
    LoadError { message: c"Cannot allocate metadata", errno: ENOMEM }
}

/// A 4 KiB block buffer, the page it is read into / written from, and room for one block's
/// entries. All on the heap: ctr and commits run deep in the kernel stack (16 KiB, no guard
/// page on many configurations), so no 4 KiB array may live on it.
struct BlockIo {
    block: KBox<[u8; BLOCK_BYTES]>,
    entries: KBox<[u64; ENTRIES_PER_BLOCK]>,
    page: PageBuffer,
}

impl BlockIo {
    fn new() -> Result<Self> {
        Ok(Self {
            // Zeroed in place (KBox::new would build the array on the stack first).
            block: KBox::init(crate::dm::compat::init_zeroed(), GFP_KERNEL)?,
            entries: KBox::init(crate::dm::compat::init_zeroed(), GFP_KERNEL)?,
            page: PageBuffer::new()?,
        })
    }

    /// Reads the block at `sector` of `dev` into `self.block`.
    fn read(&mut self, dev: &DmDev, sector: u64) -> Result {
        if !self.page.io(dev, sector, BLOCK_BYTES as u32, BioOp::Read, false).is_ok() {
            return Err(EIO);
        }
        self.page.copy_to(&mut self.block[..])
    }

    /// Writes `self.block` at `sector` of `dev`, durable on return (FUA).
    fn write(&mut self, dev: &DmDev, sector: u64) -> Result {
        self.page.copy_from(&self.block[..])?;
        if self.page.io(dev, sector, BLOCK_BYTES as u32, BioOp::Write, true).is_ok() {
            Ok(())
        } else {
            Err(EIO)
        }
    }
}

/// What a commit did.
#[derive(Clone, Copy, Default)]
pub(crate) struct CommitReport {
    /// Copies written completely.
    pub(crate) copies_ok: u32,
    /// Copies whose write failed (they are caught up by the next commit).
    pub(crate) copies_failed: u32,
}

/// The metadata image: what the next commit writes, and what each copy already holds.
pub(crate) struct Image {
    sb: Superblock,
    /// Raw on-disk entry of every spare data unit (see [`RemapEntry`]).
    array: KVVec<u64>,
    /// Per remap block: the sequence number of the commit that carries its last change.
    changed: KVVec<u64>,
    /// The sequence number of the commit that carries the pending list's last change.
    pending_changed: u64,
    /// Per copy: the sequence number of its last complete write (0: rewrite it whole).
    written: [u64; COPIES],
    dirty: bool,
    io: BlockIo,
}

impl Image {
    /// The spare layout (data area, capacities).
    pub(crate) fn layout(&self) -> &Layout {
        &self.sb.layout
    }

    /// The main device the metadata was made for.
    pub(crate) fn main(&self) -> &MainFingerprint {
        &self.sb.main
    }

    /// Sequence number of the last commit.
    pub(crate) fn seq(&self) -> u64 {
        self.sb.seq
    }

    /// Copies that hold the last committed state.
    pub(crate) fn copies_current(&self) -> u32 {
        self.written.iter().filter(|&&w| w == self.sb.seq).count() as u32
    }

    /// Changes wait for a commit.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether the superblock's `needs_check` flag is set (as loaded, or since
    /// [`Image::set_needs_check`]).
    pub(crate) fn needs_check(&self) -> bool {
        self.sb.needs_check()
    }

    /// Sets the superblock's `needs_check` flag; the next commit writes it to every copy it
    /// writes (a superblock is part of every copy write). The image becomes dirty if the flag
    /// was clear. Only the offline `dm-remap repair` clears it.
    pub(crate) fn set_needs_check(&mut self) {
        if !self.sb.needs_check() {
            self.sb.flags |= metadata::FLAG_NEEDS_CHECK;
            self.dirty = true;
        }
    }

    /// Allocator high-water mark recorded by the last load (units).
    pub(crate) fn high_water(&self) -> u64 {
        self.sb.high_water
    }

    /// Every spare data unit's raw entry, in spare-unit order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u64, RemapEntry)> + '_ {
        let start = self.sb.layout.data_start();
        (0u64..).zip(self.array.iter()).map(move |(i, &raw)| (start.saturating_add(i), RemapEntry::from_raw(raw)))
    }

    fn next_seq(&self) -> u64 {
        self.sb.seq.saturating_add(1)
    }

    fn set(&mut self, spare_unit: u64, entry: RemapEntry) {
        let Some((block, slot)) = self.sb.layout.remap_slot(spare_unit) else {
            return;
        };
        let Some(raw) = entry.to_raw() else {
            return;
        };
        let index = usize::try_from(block).unwrap_or(usize::MAX).saturating_mul(ENTRIES_PER_BLOCK).saturating_add(slot);
        let next = self.next_seq();
        if let (Some(place), Some(changed)) =
            (self.array.get_mut(index), self.changed.get_mut(usize::try_from(block).unwrap_or(usize::MAX)))
        {
            let count = |e: RemapEntry| match e {
                RemapEntry::Remapped(_) => (1u64, 0u64),
                RemapEntry::Bad => (0, 1),
                RemapEntry::Free => (0, 0),
            };
            let (old_remaps, old_bad) = count(RemapEntry::from_raw(*place));
            let (new_remaps, new_bad) = count(entry);
            self.sb.remap_count = self.sb.remap_count.saturating_sub(old_remaps).saturating_add(new_remaps);
            self.sb.bad_count = self.sb.bad_count.saturating_sub(old_bad).saturating_add(new_bad);
            *place = raw;
            *changed = next;
            self.dirty = true;
        }
    }

    /// Records that spare unit `spare_unit` holds main unit `main_unit`.
    pub(crate) fn set_remap(&mut self, spare_unit: u64, main_unit: u64) {
        self.set(spare_unit, RemapEntry::Remapped(main_unit));
    }

    /// Records that spare unit `spare_unit` is free again.
    pub(crate) fn set_free(&mut self, spare_unit: u64) {
        self.set(spare_unit, RemapEntry::Free);
    }

    /// Records that spare unit `spare_unit` is bad.
    pub(crate) fn set_bad(&mut self, spare_unit: u64) {
        self.set(spare_unit, RemapEntry::Bad);
    }

    /// Records that the set of pending units changed (it is written whole).
    pub(crate) fn pending_changed(&mut self) {
        self.pending_changed = self.next_seq();
        self.dirty = true;
    }

    /// Writes the changes (and any copy that lags) to the spare. `pending` gives the pending
    /// main units (at most the pending capacity are kept), `high_water` the allocator's mark.
    /// Sleeps.
    ///
    /// # Errors
    /// `EIO` if the spare could not be flushed or no copy could be written; the image stays
    /// dirty and the next commit tries again. `ERANGE` if the sequence number is at
    /// `MAX_SEQ` (nothing is written).
    pub(crate) fn commit(
        &mut self,
        spare: &DmDev,
        pending: &mut dyn FnMut(&mut [u64]) -> usize,
        high_water: u64,
    ) -> Result<CommitReport> {
        if !self.dirty && self.copies_current() as usize == COPIES {
            return Ok(CommitReport { copies_ok: COPIES as u32, copies_failed: 0 });
        }
        // A loaded seq is at most MAX_SEQ (the codec refuses more), so this takes 2^63 commits;
        // refused rather than saturated: a repeated seq would hide every later change.
        let seq = metadata::next_seq(self.sb.seq).ok_or(ERANGE)?;
        // The data of every remap in this commit is on the spare: make it durable first.
        spare.flush()?;
        let mut sb = self.sb;
        sb.seq = seq;
        sb.high_water = high_water.clamp(sb.layout.data_start(), sb.layout.data_end());
        // The pending list is small: gather it once for all copies.
        let mut pending_units: KVVec<u64> = KVVec::from_elem(0, sb.layout.pending_capacity().try_into().unwrap_or(0), GFP_KERNEL)?;
        let count = pending(&mut pending_units[..]);
        sb.pending_count = count as u64;
        let mut report = CommitReport::default();
        for copy in 0..COPIES {
            match self.write_copy(spare, copy, &sb, &pending_units[..count.min(pending_units.len())]) {
                Ok(()) => {
                    self.written[copy] = seq;
                    report.copies_ok = report.copies_ok.saturating_add(1);
                }
                Err(_) => report.copies_failed = report.copies_failed.saturating_add(1),
            }
        }
        if report.copies_ok == 0 {
            return Err(EIO);
        }
        self.sb = sb;
        self.dirty = false;
        Ok(report)
    }

    /// Where a check of copy `copy` against the committed state starts, or `None` if there is
    /// nothing to check: changes wait for a commit (the copies are behind the image by
    /// design), or the copy does not hold the last commit (the next commit rewrites it).
    pub(crate) fn check_start(&self, copy: usize) -> Option<CheckStart> {
        let current = self.written.get(copy).is_some_and(|&w| w == self.sb.seq);
        (!self.dirty && current).then_some(CheckStart { copy, sb: self.sb })
    }

    /// Compares a remap block read from a copy with the image. `None` if the image moved on
    /// since `start` (a commit or a change came in between: the check is void).
    pub(crate) fn matches(&self, start: &CheckStart, block: &RemapBlock<'_>) -> Option<bool> {
        if self.dirty || self.sb.seq != start.sb.seq {
            return None;
        }
        let data_start = self.sb.layout.data_start();
        Some(block.entries().all(|(spare_unit, entry)| {
            let ours = spare_unit
                .checked_sub(data_start)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.array.get(i).copied());
            ours.is_some() && ours == entry.to_raw()
        }))
    }

    /// Marks the copy of `start` for a whole rewrite by the next commit (the image becomes
    /// dirty), if it still holds the commit the check started from. Returns whether it did.
    pub(crate) fn mark_damaged(&mut self, start: &CheckStart) -> bool {
        match self.written.get_mut(start.copy) {
            Some(w) if *w == start.sb.seq && self.sb.seq == start.sb.seq => {
                *w = 0;
                self.dirty = true;
                true
            }
            _ => false,
        }
    }

    fn write_copy(&mut self, spare: &DmDev, copy: usize, sb: &Superblock, pending: &[u64]) -> Result {
        let since = self.written.get(copy).copied().unwrap_or(0);
        let layout = sb.layout;
        for block in 0..layout.remap_blocks() {
            let b = usize::try_from(block).map_err(|_| EINVAL)?;
            if since != 0 && self.changed.get(b).copied().unwrap_or(u64::MAX) <= since {
                continue;
            }
            let first = b.saturating_mul(ENTRIES_PER_BLOCK);
            let end = first.saturating_add(ENTRIES_PER_BLOCK).min(self.array.len());
            let entries = self.array.get(first..end).ok_or(EINVAL)?;
            encode_block(BlockKind::Remap, block, sb.seq, entries, &mut self.io.block).map_err(|_| EINVAL)?;
            let sector = layout.block_sector(copy, BlockPos::Remap(block)).ok_or(EINVAL)?;
            self.io.write(spare, sector)?;
        }
        if since == 0 || self.pending_changed > since {
            for (block, chunk) in (0..layout.pending_blocks()).zip(PendingChunks::new(pending)) {
                let io = &mut self.io;
                io.entries.fill(0);
                for (place, &unit) in io.entries.iter_mut().zip(chunk) {
                    *place = metadata::pending_to_raw(unit).unwrap_or(0);
                }
                encode_block(BlockKind::Pending, block, sb.seq, &io.entries[..], &mut io.block).map_err(|_| EINVAL)?;
                let sector = layout.block_sector(copy, BlockPos::Pending(block)).ok_or(EINVAL)?;
                self.io.write(spare, sector)?;
            }
        }
        let mut copy_sb = *sb;
        copy_sb.copy_index = copy as u32;
        encode_superblock(&copy_sb, &mut self.io.block).map_err(|_| EINVAL)?;
        let sector = layout.block_sector(copy, BlockPos::Superblock).ok_or(EINVAL)?;
        self.io.write(spare, sector)
    }
}

/// Splits a pending list into the 510-entry chunks of the pending blocks, then empty chunks.
struct PendingChunks<'a> {
    rest: &'a [u64],
}

impl<'a> PendingChunks<'a> {
    fn new(units: &'a [u64]) -> Self {
        Self { rest: units }
    }
}

impl<'a> Iterator for PendingChunks<'a> {
    type Item = &'a [u64];
    fn next(&mut self) -> Option<&'a [u64]> {
        let n = self.rest.len().min(ENTRIES_PER_BLOCK);
        let (chunk, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(chunk)
    }
}

/// What [`open`] found and did.
pub(crate) struct Opened {
    pub(crate) image: Image,
    /// Pending main units from the metadata.
    pub(crate) pending: KVVec<u64>,
    /// Copies rewritten because they were damaged or stale.
    pub(crate) repaired: u32,
    /// The spare was formatted now.
    pub(crate) formatted: bool,
}

/// Loads the spare's metadata, repairing damaged or stale copies, or formats a zeroed spare
/// (or a foreign one if `format` is allowed). Nothing is written when the load is refused.
///
/// # Errors
/// A [`LoadError`] with the `ti->error` message: foreign data without `format`, no valid
/// copy, a spare made for another main device or unit, unreadable copies, no memory.
pub(crate) fn open(
    spare: &DmDev,
    main: MainFingerprint,
    unit_sectors: u32,
    uuid: [u8; 16],
    format_allowed: bool,
) -> Result<Opened, LoadError> {
    let mut io = BlockIo::new().map_err(no_memory)?;
    let spare_sectors = spare.nr_sectors();
    // Superblocks can only be at these sectors, whatever the layout.
    let mut heads: KVVec<KBox<[u8; BLOCK_BYTES]>> = KVVec::new();
    let mut found: [Option<Superblock>; COPIES] = [None; COPIES];
    for sector in probe_sectors(spare_sectors) {
        io.read(spare, sector).map_err(|_| io_error(c"Cannot read the spare device"))?;
        if let Ok(sb) = decode_superblock(&io.block) {
            if sb.home_sector() == Some(sector) {
                if let Some(slot) = found.get_mut(sb.copy_index as usize) {
                    // Several layouts may leave copies of the same index: keep the newest.
                    if slot.map_or(true, |old| sb.seq > old.seq) {
                        *slot = Some(sb);
                    }
                }
            }
        }
        // Copied on the heap: `KBox::new(*io.block)` would put 4 KiB on the stack.
        let mut head: KBox<[u8; BLOCK_BYTES]> = KBox::init(crate::dm::compat::init_zeroed(), GFP_KERNEL).map_err(no_memory)?;
        head.copy_from_slice(&io.block[..]);
        heads.push(head, GFP_KERNEL).map_err(no_memory)?;
    }
    let head_refs: KVVec<&[u8; BLOCK_BYTES]> = {
        let mut v = KVVec::with_capacity(heads.len(), GFP_KERNEL).map_err(no_memory)?;
        for h in heads.iter() {
            v.push(&**h, GFP_KERNEL).map_err(no_memory)?;
        }
        v
    };
    let classification = classify(&head_refs);
    drop(head_refs);
    drop(heads);
    if !matches!(classification, Classification::Ours { .. }) {
        // No superblock anywhere, yet copy 0's first remap block may still be ours: then every
        // copy was damaged, and formatting would throw away the remap table. Refuse.
        io.read(spare, metadata::BLOCK_SECTORS).map_err(|_| io_error(c"Cannot read the spare device"))?;
        if metadata::decode_block(&io.block, BlockKind::Remap, 0).is_ok() {
            return Err(refuse(c"All metadata copies are invalid"));
        }
    }
    match classification {
        Classification::Zeroed => return format(spare, io, main, unit_sectors, uuid),
        Classification::Foreign if format_allowed => return format(spare, io, main, unit_sectors, uuid),
        Classification::Foreign => {
            return Err(refuse(c"Spare holds foreign data (add the 'format' feature to overwrite it)"))
        }
        Classification::Ours { .. } => {}
    }
    load(spare, io, found, main, unit_sectors)
}

fn format(
    spare: &DmDev,
    io: BlockIo,
    main: MainFingerprint,
    unit_sectors: u32,
    uuid: [u8; 16],
) -> Result<Opened, LoadError> {
    let layout = layout_for(spare.nr_sectors(), unit_sectors, main.main_sectors)
        .ok_or_else(|| refuse(c"Spare device too small"))?;
    let sb = Superblock::new_format(layout, uuid, main).map_err(|_| refuse(c"Main device does not fit the format"))?;
    let mut image = new_image(sb, io)?;
    // A fresh spare: every block of every copy is written (seq 1, all entries zero).
    image.sb.seq = 0;
    image.dirty = true;
    image.commit(spare, &mut |_| 0, layout.data_start()).map_err(|_| io_error(c"Cannot write metadata to the spare"))?;
    if image.copies_current() as usize != COPIES {
        return Err(io_error(c"Cannot write every metadata copy to the spare"));
    }
    Ok(Opened { image, pending: KVVec::new(), repaired: 0, formatted: true })
}

fn new_image(sb: Superblock, io: BlockIo) -> Result<Image, LoadError> {
    let units = usize::try_from(sb.layout.data_units()).map_err(no_memory)?;
    let blocks = usize::try_from(sb.layout.remap_blocks()).map_err(no_memory)?;
    Ok(Image {
        sb,
        array: KVVec::from_elem(0, units, GFP_KERNEL).map_err(no_memory)?,
        changed: KVVec::from_elem(0, blocks, GFP_KERNEL).map_err(no_memory)?,
        pending_changed: 0,
        written: [0; COPIES],
        dirty: false,
        io,
    })
}

// Out of line: inlined, its frame adds to ctr's into one above scripts/check-stack's limit.
#[inline(never)]
fn load(
    spare: &DmDev,
    io: BlockIo,
    mut found: [Option<Superblock>; COPIES],
    main: MainFingerprint,
    unit_sectors: u32,
) -> Result<Opened, LoadError> {
    let mut io = Some(io);
    // Check the chosen copy block by block; if it fails, drop it and choose again.
    for _ in 0..COPIES {
        let choice = metadata::choose(&found).map_err(|_| refuse(c"All metadata copies are invalid"))?;
        let sb = choice.superblock;
        if !sb.main.matches(&main) {
            return Err(refuse(c"Spare belongs to another main device"));
        }
        if sb.layout.unit_sectors() != unit_sectors {
            return Err(refuse(c"Spare was formatted for another remap unit"));
        }
        if sb.layout.spare_sectors() > spare.nr_sectors() {
            return Err(refuse(c"Spare device is smaller than its metadata says"));
        }
        let mut image = new_image(sb, io.take().ok_or_else(|| no_memory(()))?)?;
        let mut pending = KVVec::new();
        // A copy that passes every checksum may still record a main unit twice: invalid too,
        // found before any other copy is rewritten from it.
        match read_copy(spare, &mut image, choice.copy, &mut pending).and_then(|()| check_units(&image, &pending)) {
            Ok(()) => {
                // Every other copy: up to date, or to be rewritten whole by the commit below.
                let mut repaired: u32 = 0;
                let mut reader = CopyReader::new().map_err(no_memory)?;
                for copy in 0..COPIES {
                    let start = CheckStart { copy, sb };
                    let current = copy == choice.copy
                        || (!choice.needs_rewrite(copy)
                            && matches!(reader.check(spare, &start, |block| image.matches(&start, block)), Verdict::Intact));
                    image.written[copy] = if current { sb.seq } else { 0 };
                    if !current {
                        repaired = repaired.saturating_add(1);
                    }
                }
                if repaired > 0 {
                    image.dirty = true;
                    let pending_list = &pending;
                    image
                        .commit(spare, &mut |out| copy_pending(pending_list, out), sb.high_water)
                        .map_err(|_| io_error(c"Cannot repair the metadata copies"))?;
                }
                return Ok(Opened { image, pending, repaired, formatted: false });
            }
            Err(_) => {
                if let Some(slot) = found.get_mut(choice.copy) {
                    *slot = None;
                }
                io = Some(image.io);
            }
        }
    }
    Err(refuse(c"All metadata copies are invalid"))
}

/// Check 5 of a valid copy: no main unit recorded twice, in the remap array, the pending
/// list or both. `EINVAL` if one is; `ENOMEM` for the sorted list of units (8 bytes each).
fn check_units(image: &Image, pending: &[u64]) -> Result {
    let remapped = image.entries().filter_map(|(_, entry)| match entry {
        RemapEntry::Remapped(unit) => Some(unit),
        _ => None,
    });
    let expected = usize::try_from(image.sb.remap_count).unwrap_or(0).saturating_add(pending.len());
    let mut units: KVVec<u64> = KVVec::with_capacity(expected, GFP_KERNEL)?;
    for unit in Iterator::chain(remapped, pending.iter().copied()) {
        units.push(unit, GFP_KERNEL)?;
    }
    match metadata::duplicate_unit(&mut units) {
        Some(_) => Err(EINVAL),
        None => Ok(()),
    }
}

fn copy_pending(units: &[u64], out: &mut [u64]) -> usize {
    out.iter_mut().zip(units).map(|(place, &unit)| *place = unit).count()
}

/// Reads copy `copy` of the image's superblock into the image, checking every block.
fn read_copy(spare: &DmDev, image: &mut Image, copy: usize, pending: &mut KVVec<u64>) -> Result {
    let sb = image.sb;
    let mut checker = CopyChecker::new(copy, &sb).map_err(|_| EINVAL)?;
    while let Some(sector) = checker.next_sector() {
        image.io.read(spare, sector)?;
        match checker.feed(&image.io.block).map_err(|_| EINVAL)? {
            Fed::Remap(block) => {
                for (spare_unit, entry) in block.entries() {
                    let index = spare_unit.checked_sub(sb.layout.data_start()).ok_or(EINVAL)?;
                    let place = image.array.get_mut(usize::try_from(index).map_err(|_| EINVAL)?).ok_or(EINVAL)?;
                    *place = entry.to_raw().ok_or(EINVAL)?;
                }
            }
            Fed::Pending(block) => {
                for unit in block.units() {
                    pending.push(unit, GFP_KERNEL)?;
                }
            }
        }
    }
    checker.finish().map_err(|_| EINVAL)?;
    Ok(())
}

/// What a check of one copy compares against: the copy and the committed superblock.
pub(crate) struct CheckStart {
    copy: usize,
    sb: Superblock,
}

/// How a check of one copy ended.
pub(crate) enum Verdict {
    /// The copy holds the committed state.
    Intact,
    /// The copy differs, fails its checksums or cannot be read.
    Damaged,
    /// The image changed during the check; nothing can be said.
    Overtaken,
}

/// Reads metadata copies for a check, with buffers of its own: the reads happen without the
/// table lock, and only each block's comparison with the image takes it (so a flush that must
/// commit waits for one comparison, not for five copies to be read).
pub(crate) struct CopyReader {
    io: BlockIo,
}

impl CopyReader {
    /// # Errors
    /// `ENOMEM`.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self { io: BlockIo::new()? })
    }

    /// Reads the copy of `start` block by block and checks it: its superblock states the
    /// committed state, every block passes the codec's checks, and `compare` (given each remap
    /// block; it locks the image and calls [`Image::matches`]) finds every entry equal. Sleeps.
    pub(crate) fn check(
        &mut self,
        spare: &DmDev,
        start: &CheckStart,
        mut compare: impl FnMut(&RemapBlock<'_>) -> Option<bool>,
    ) -> Verdict {
        let damaged = |_| Verdict::Damaged;
        let Some(sector) = start.sb.layout.block_sector(start.copy, BlockPos::Superblock) else {
            return Verdict::Damaged;
        };
        if self.io.read(spare, sector).is_err() {
            return Verdict::Damaged;
        }
        let theirs = match decode_superblock(&self.io.block) {
            Ok(sb) if sb.same_state(&start.sb) => sb,
            _ => return Verdict::Damaged,
        };
        let mut checker = match CopyChecker::new(start.copy, &theirs) {
            Ok(checker) => checker,
            Err(e) => return damaged(e),
        };
        while let Some(sector) = checker.next_sector() {
            if self.io.read(spare, sector).is_err() {
                return Verdict::Damaged;
            }
            match checker.feed(&self.io.block) {
                Ok(Fed::Remap(block)) => match compare(&block) {
                    Some(true) => {}
                    Some(false) => return Verdict::Damaged,
                    None => return Verdict::Overtaken,
                },
                Ok(Fed::Pending(_)) => {}
                Err(e) => return damaged(e),
            }
        }
        match checker.finish() {
            Ok(_) => Verdict::Intact,
            Err(e) => damaged(e),
        }
    }
}
