// SPDX-License-Identifier: GPL-2.0

//! Whole copies: block-by-block validation, the choice of the copy to load, and what a spare
//! holds before it is formatted.

use super::{
    decode_block, decode_superblock, pending_from_raw, BlockKind, BlockPos, BlockView, FormatError,
    RemapEntry, Superblock, BLOCK_BYTES, BLOCK_SECTORS, COPIES, ENTRIES_PER_BLOCK,
    ENTRIES_PER_BLOCK_U64, MAGIC, MIN_COPY_SECTORS,
};

/// Validates one copy block by block, in order, holding no block: the caller reads the
/// superblock, decodes it ([`super::decode_superblock`]), creates the checker, then reads the
/// blocks the checker asks for ([`CopyChecker::next_block`], [`CopyChecker::next_sector`])
/// and feeds them one at a time; [`CopyChecker::finish`] says whether the copy is valid.
///
/// Checked here: every block decodes at its place (kind, checksum seeded with its index,
/// reserved bytes, `1 <= seq <= superblock.seq`); every remap entry inside the data area is
/// free, bad or a main unit `< main_units`, and every entry past the data area is 0; every
/// pending slot is empty or a main unit `< main_units` (never `u64::MAX`); the numbers of
/// remapped, bad and pending entries equal the superblock's counts.
///
/// **Not** checked here: that no main unit appears twice (in the remap array, in the pending
/// list, or in both). That needs memory proportional to the entries, which the caller has
/// anyway: it gathers every unit handed back by [`CopyChecker::feed`] and checks them with
/// [`duplicate_unit`] before it trusts the copy (a duplicate makes the copy invalid, as
/// [`FormatError::DuplicateMainUnit`], and another copy is chosen). At
/// most `remap_count + pending_count <= main_units` entries are handed back, and
/// `remap_count + bad_count <= data_units`, `pending_count <= pending_capacity`.
///
/// After the first error the checker is spent: every later call returns that error.
#[derive(Debug, Clone)]
pub struct CopyChecker {
    superblock: Superblock,
    copy: usize,
    /// Position within the copy of the next block to feed (1 = the first remap block).
    next: u64,
    remap_count: u64,
    bad_count: u64,
    pending_count: u64,
    newest_block_seq: u64,
    failed: Option<FormatError>,
}

/// A block accepted by [`CopyChecker::feed`], with its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed<'b> {
    /// A remap-array block.
    Remap(RemapBlock<'b>),
    /// A pending-list block.
    Pending(PendingBlock<'b>),
}

/// A checked remap-array block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemapBlock<'b> {
    view: BlockView<'b>,
    /// Spare unit of slot 0.
    first_unit: u64,
    /// Slots inside the data area (the rest are 0).
    slots: usize,
}

impl<'b> RemapBlock<'b> {
    /// The decoded block.
    pub const fn view(&self) -> BlockView<'b> {
        self.view
    }

    /// `(spare unit, entry)` for every slot inside the data area, in order (free slots
    /// included); every `Remapped` main unit is `< main_units`.
    pub fn entries(&self) -> impl Iterator<Item = (u64, RemapEntry)> + 'b {
        let first_unit = self.first_unit;
        self.view
            .entries()
            .take(self.slots)
            .zip(0..ENTRIES_PER_BLOCK_U64)
            .map(move |(raw, slot)| (first_unit.saturating_add(slot), RemapEntry::from_raw(raw)))
    }
}

/// A checked pending-list block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingBlock<'b> {
    view: BlockView<'b>,
}

impl<'b> PendingBlock<'b> {
    /// The decoded block.
    pub const fn view(&self) -> BlockView<'b> {
        self.view
    }

    /// The main units of the non-empty slots, in slot order (each `< main_units`).
    pub fn units(&self) -> impl Iterator<Item = u64> + 'b {
        self.view.entries().filter_map(pending_from_raw)
    }
}

/// A copy found valid by [`CopyChecker::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySummary {
    /// The copy (0..5).
    pub copy: usize,
    /// Its superblock.
    pub superblock: Superblock,
    /// The highest `seq` of its remap and pending blocks (`<= superblock.seq`).
    pub newest_block_seq: u64,
}

impl CopyChecker {
    /// Starts checking copy `copy`, headed by `superblock` (as returned by
    /// [`super::decode_superblock`] for the block read at that copy's first sector).
    ///
    /// # Errors
    /// [`FormatError::WrongCopy`] if `superblock.copy_index != copy` (this includes
    /// `copy >= 5`), or an error of [`Superblock::check`].
    pub fn new(copy: usize, superblock: &Superblock) -> Result<Self, FormatError> {
        superblock.check()?;
        if usize::try_from(superblock.copy_index).ok() != Some(copy) {
            return Err(FormatError::WrongCopy);
        }
        Ok(CopyChecker {
            superblock: *superblock,
            copy,
            next: 1,
            remap_count: 0,
            bad_count: 0,
            pending_count: 0,
            newest_block_seq: 0,
            failed: None,
        })
    }

    /// The copy's superblock.
    pub const fn superblock(&self) -> &Superblock {
        &self.superblock
    }

    /// The block [`CopyChecker::feed`] expects next; `None` when all were fed (or after an
    /// error).
    pub fn next_block(&self) -> Option<BlockPos> {
        if self.failed.is_some() {
            return None;
        }
        match self.superblock.layout.block_at(self.next)? {
            BlockPos::Superblock => None,
            pos => Some(pos),
        }
    }

    /// The spare sector where the next expected block starts (it spans [`BLOCK_SECTORS`]
    /// sectors); `None` when all were fed.
    pub fn next_sector(&self) -> Option<u64> {
        let pos = self.next_block()?;
        self.superblock.layout.block_sector(self.copy, pos)
    }

    /// Blocks still to feed (0 after an error).
    pub fn remaining(&self) -> u64 {
        if self.failed.is_some() {
            return 0;
        }
        self.superblock
            .layout
            .blocks_per_copy()
            .saturating_sub(self.next)
    }

    /// Checks the next block of the copy (the one [`CopyChecker::next_block`] names) and
    /// returns it with its entries, for the caller's table and duplicate check.
    ///
    /// # Errors
    /// [`FormatError::UnexpectedBlock`] (all blocks were fed), any error of
    /// [`super::decode_block`], [`FormatError::BlockFromFuture`], [`FormatError::BadEntry`],
    /// [`FormatError::CountMismatch`] (more entries of a sort than the superblock counts),
    /// or the error that spent the checker.
    pub fn feed<'b>(&mut self, block: &'b [u8; BLOCK_BYTES]) -> Result<Fed<'b>, FormatError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.check_block(block);
        match result {
            Ok(_) => self.next = self.next.saturating_add(1),
            Err(error) => self.failed = Some(error),
        }
        result
    }

    fn check_block<'b>(&mut self, block: &'b [u8; BLOCK_BYTES]) -> Result<Fed<'b>, FormatError> {
        let pos = self.next_block().ok_or(FormatError::UnexpectedBlock)?;
        let (kind, index) = match pos {
            BlockPos::Remap(index) => (BlockKind::Remap, index),
            BlockPos::Pending(index) => (BlockKind::Pending, index),
            BlockPos::Superblock => return Err(FormatError::UnexpectedBlock),
        };
        let view = decode_block(block, kind, index)?;
        if view.seq() > self.superblock.seq {
            return Err(FormatError::BlockFromFuture);
        }
        self.newest_block_seq = self.newest_block_seq.max(view.seq());
        match kind {
            BlockKind::Remap => self.check_remap(view).map(Fed::Remap),
            BlockKind::Pending => self.check_pending(view).map(Fed::Pending),
        }
    }

    fn check_remap<'b>(&mut self, view: BlockView<'b>) -> Result<RemapBlock<'b>, FormatError> {
        let layout = &self.superblock.layout;
        let main_units = self.superblock.main_units();
        // Index of slot 0 within the data area; below data_units since index < remap_blocks.
        let first = view
            .index()
            .checked_mul(ENTRIES_PER_BLOCK_U64)
            .ok_or(FormatError::BadEntry)?;
        let in_area = layout.data_units().saturating_sub(first);
        let slots =
            usize::try_from(in_area.min(ENTRIES_PER_BLOCK_U64)).unwrap_or(ENTRIES_PER_BLOCK);
        let (mut remapped, mut bad) = (0u64, 0u64);
        for (slot, raw) in (0..ENTRIES_PER_BLOCK).zip(view.entries()) {
            if slot >= slots {
                if raw != 0 {
                    return Err(FormatError::BadEntry);
                }
                continue;
            }
            match RemapEntry::from_raw(raw) {
                RemapEntry::Free => {}
                RemapEntry::Bad => bad = bad.saturating_add(1),
                RemapEntry::Remapped(main_unit) if main_unit < main_units => {
                    remapped = remapped.saturating_add(1);
                }
                RemapEntry::Remapped(_) => return Err(FormatError::BadEntry),
            }
        }
        self.remap_count = self.remap_count.saturating_add(remapped);
        self.bad_count = self.bad_count.saturating_add(bad);
        if self.remap_count > self.superblock.remap_count
            || self.bad_count > self.superblock.bad_count
        {
            return Err(FormatError::CountMismatch);
        }
        Ok(RemapBlock {
            view,
            first_unit: layout.data_start().saturating_add(first),
            slots,
        })
    }

    fn check_pending<'b>(&mut self, view: BlockView<'b>) -> Result<PendingBlock<'b>, FormatError> {
        let main_units = self.superblock.main_units();
        let mut pending = 0u64;
        for raw in view.entries() {
            match raw {
                0 => {}
                u64::MAX => return Err(FormatError::BadEntry),
                _ if raw.wrapping_sub(1) < main_units => pending = pending.saturating_add(1),
                _ => return Err(FormatError::BadEntry),
            }
        }
        self.pending_count = self.pending_count.saturating_add(pending);
        if self.pending_count > self.superblock.pending_count {
            return Err(FormatError::CountMismatch);
        }
        Ok(PendingBlock { view })
    }

    /// Ends the check: the copy is valid (duplicates aside, see [`CopyChecker`]) if every
    /// block was fed and accepted and the counts add up.
    ///
    /// # Errors
    /// The error that spent the checker, [`FormatError::MissingBlocks`] or
    /// [`FormatError::CountMismatch`].
    pub fn finish(self) -> Result<CopySummary, FormatError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        if self.next_block().is_some() {
            return Err(FormatError::MissingBlocks);
        }
        let sb = &self.superblock;
        if self.remap_count != sb.remap_count
            || self.bad_count != sb.bad_count
            || self.pending_count != sb.pending_count
        {
            return Err(FormatError::CountMismatch);
        }
        Ok(CopySummary {
            copy: self.copy,
            superblock: self.superblock,
            newest_block_seq: self.newest_block_seq,
        })
    }
}

/// Check 5 of a valid copy (docs/metadata-format.md): a main unit that `units` holds twice,
/// if any. `units` is every main unit a copy records, remapped and pending, in any order; it
/// is sorted in place. O(n log n), no allocation, no panic path.
pub fn duplicate_unit(units: &mut [u64]) -> Option<u64> {
    units.sort_unstable();
    units.windows(2).find_map(|pair| match pair {
        [a, b] if a == b => Some(*a),
        _ => None,
    })
}

/// The outcome of [`choose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The copy to load (0..5).
    pub copy: usize,
    /// Its superblock.
    pub superblock: Superblock,
    /// Copies that are valid but do not hold the chosen state (a lower `seq`, or the same
    /// `seq` with other contents): rewrite them from the chosen one.
    pub stale: [bool; COPIES],
    /// Copies that are invalid (absent from the input, or whose superblock is not at its
    /// place): rewrite them from the chosen one.
    pub damaged: [bool; COPIES],
}

impl Choice {
    /// Whether copy `copy` must be rewritten (stale or damaged); false for the chosen copy,
    /// for up-to-date copies and for `copy >= 5`.
    pub fn needs_rewrite(&self, copy: usize) -> bool {
        self.stale.get(copy).copied().unwrap_or(false)
            || self.damaged.get(copy).copied().unwrap_or(false)
    }

    /// Number of copies that hold the chosen state (the chosen copy included).
    pub fn up_to_date(&self) -> usize {
        (0..COPIES).fold(0, |n, copy| {
            if self.needs_rewrite(copy) {
                n
            } else {
                n.saturating_add(1)
            }
        })
    }
}

/// Chooses the copy to load. `copies[i]` is the superblock of copy `i` if that copy is valid,
/// `None` if it is not (unreadable, undecodable, or refused by a [`CopyChecker`]).
///
/// The chosen copy is the one with the highest `seq` among the slots whose superblock passes
/// [`Superblock::check`] and says it is copy `i`; ties go to the lowest copy index. Every other
/// copy is up to date (same state, [`Superblock::same_state`]), stale or damaged.
///
/// To check as little as possible, a loader can pass the superblocks that merely decode,
/// run a [`CopyChecker`] on the chosen copy only, and on failure set its slot to `None` and
/// choose again (at most 5 rounds).
///
/// # Errors
/// [`FormatError::NoValidCopy`] if no slot qualifies.
pub fn choose(copies: &[Option<Superblock>; COPIES]) -> Result<Choice, FormatError> {
    let valid = |copy: usize| -> Option<Superblock> {
        let superblock = copies.get(copy).copied().flatten()?;
        let at_home = usize::try_from(superblock.copy_index).ok() == Some(copy);
        (at_home && superblock.check().is_ok()).then_some(superblock)
    };
    let mut best: Option<(usize, Superblock)> = None;
    for copy in 0..COPIES {
        if let Some(superblock) = valid(copy) {
            if best.map_or(true, |(_, b)| superblock.seq > b.seq) {
                best = Some((copy, superblock));
            }
        }
    }
    let (chosen, superblock) = best.ok_or(FormatError::NoValidCopy)?;
    let mut stale = [false; COPIES];
    let mut damaged = [false; COPIES];
    for ((copy, stale), damaged) in (0..COPIES).zip(stale.iter_mut()).zip(damaged.iter_mut()) {
        match valid(copy) {
            None => *damaged = true,
            Some(other) => *stale = copy != chosen && !other.same_state(&superblock),
        }
    }
    Ok(Choice {
        copy: chosen,
        superblock,
        stale,
        damaged,
    })
}

/// What a spare holds, judged from the first 4096 bytes at each copy start (see [`classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Every byte examined is 0: safe to format.
    Zeroed,
    /// At least one block starts with a dm-remap magic (`DMREMAP` followed by any version
    /// byte): formatted before, by this or another format version.
    Ours {
        /// How many of the examined blocks start with a dm-remap magic.
        with_magic: usize,
        /// The decodable superblock with the highest `seq` among them, if any.
        newest: Option<Superblock>,
    },
    /// Something else (a file system, a partition table, old data): formatting would destroy
    /// it.
    Foreign,
}

/// Classifies a spare from the blocks at the copy starts of the intended layout (or at
/// [`probe_sectors`]); any number of blocks may be given (none: `Zeroed`).
pub fn classify(heads: &[&[u8; BLOCK_BYTES]]) -> Classification {
    let mut with_magic = 0usize;
    let mut newest: Option<Superblock> = None;
    let mut nonzero = false;
    for head in heads {
        if head.first_chunk::<7>() == MAGIC.first_chunk::<7>() {
            with_magic = with_magic.saturating_add(1);
            if let Ok(superblock) = decode_superblock(head) {
                if newest.map_or(true, |n| superblock.seq > n.seq) {
                    newest = Some(superblock);
                }
            }
        } else if head.iter().any(|&b| b != 0) {
            nonzero = true;
        }
    }
    if with_magic > 0 {
        Classification::Ours { with_magic, newest }
    } else if nonzero {
        Classification::Foreign
    } else {
        Classification::Zeroed
    }
}

/// Every sector where a superblock of any layout can start on a spare of `spare_sectors`
/// sectors, ascending: 0, then `1024 * 2^j` for every `j` whose block ends within the spare.
/// (Copy `i > 0` of a layout with copy size `C = 1024 * 2^k` starts at `2^(i-1) C`, a power of
/// two times 1024.) At most 55 sectors. A superblock found at sector `s` belongs there only if
/// its [`Superblock::home_sector`] is `s`.
pub fn probe_sectors(spare_sectors: u64) -> impl Iterator<Item = u64> {
    let fits = move |sector: &u64| {
        sector
            .checked_add(BLOCK_SECTORS)
            .is_some_and(|end| end <= spare_sectors)
    };
    // 1024 << 53 = 2^63 is the largest power of two times 1024 that fits.
    let powers = (0u32..54).filter_map(|shift| MIN_COPY_SECTORS.checked_shl(shift));
    core::iter::once(0u64).chain(powers).take_while(fits)
}
