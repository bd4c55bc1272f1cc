// SPDX-License-Identifier: GPL-2.0

//! The live remap table of one target: the core's open-addressing slot array published to
//! lock-free readers with RCU, the coarse region map that lets the fast path skip lookups, and
//! the writer state (occupancy, spare allocator) behind a mutex.
//!
//! Readers (`map`) take only an [`RcuReadGuard`]. Writers ([`TableWriter`]) are serialised by
//! the mutex; they grow the array by building a larger one, publishing it and freeing the old
//! one after a grace period (see `docs/remap-table.md`).

#![forbid(unsafe_code)]

use crate::dm::{DmDev, RcuBox, RcuReadGuard};
use crate::persist::{CheckStart, CommitReport, Image};
use crate::remap_core::metadata::{Layout as MetadataLayout, MainFingerprint, RemapBlock, RemapEntry};
use crate::remap_core::metadata_mode::{MetadataEvent, MetadataMode};
use crate::remap_core::region_map::{self, RegionMap};
use crate::remap_core::remap_table::{self, Counts, Entry, InsertOutcome, Slot};
use crate::remap_core::spare_alloc::{SpareAllocator, SpareExhausted};
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KBox, KVVec};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{lock::Guard, Mutex};

/// Most bytes of region map per target (one bit per region of 2^k units).
const REGION_MAP_MAX_BYTES: usize = 64 * 1024;
/// Capacity of the spare allocator's free list (units given back by `unremap`).
const FREE_LIST_UNITS: usize = 1024;

/// One published slot array.
struct SlotArray {
    slots: KVVec<Slot>,
}

impl SlotArray {
    fn new(capacity: usize) -> Result<Self> {
        let mut slots = KVVec::with_capacity(capacity, GFP_KERNEL)?;
        for _ in 0..capacity {
            slots.push(Slot::new(), GFP_KERNEL)?;
        }
        Ok(Self { slots })
    }
}

/// Storage for the allocator's free list.
struct FreeList(KVVec<u64>);

impl Deref for FreeList {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.0
    }
}

impl DerefMut for FreeList {
    fn deref_mut(&mut self) -> &mut [u64] {
        &mut self.0
    }
}

/// State only the (single) writer touches.
struct Writer {
    counts: Counts,
    capacity: usize,
    spare: SpareAllocator<FreeList>,
    /// What the next commit writes to the spare.
    image: Image,
}

/// A target's remap table: main unit → [`Entry`].
pub(crate) struct RemapTable {
    slots: RcuBox<SlotArray>,
    region_words: KVVec<AtomicU64>,
    region_shift: u32,
    writer: Pin<KBox<Mutex<Writer>>>,
    remaps: AtomicU64,
    pending: AtomicU64,
    spare_used: AtomicU64,
    /// Changes wait for a commit (read lock-free by `end_io`).
    dirty: AtomicBool,
    /// The metadata mode ([`MetadataMode::code`]): here, not in the target, because the live
    /// table and one loaded to replace it share this table and must agree. Changed only under
    /// the writer lock; read lock-free.
    mode: AtomicU8,
}

impl RemapTable {
    /// The table of a target whose main device has `main_units` units, filled from the
    /// metadata `image` and the `pending` main units loaded with it; the image moves into the
    /// writer. The spare data area is the image's.
    ///
    /// # Errors
    /// `ENOMEM`, or `EINVAL` if the metadata names a main unit twice or one beyond main.
    pub(crate) fn new(main_units: u64, image: Image, pending: &[u64]) -> Result<Self> {
        let region_shift = region_map::shift_for(main_units, REGION_MAP_MAX_BYTES);
        let words = region_map::words_for(main_units, region_shift).ok_or(EINVAL)?;
        let mut region_words = KVVec::with_capacity(words, GFP_KERNEL)?;
        for _ in 0..words {
            region_words.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        let layout = *image.layout();
        let entries = image.entries().filter(|(_, e)| *e != RemapEntry::Free).count();
        let capacity = remap_table::capacity_for(entries.saturating_add(pending.len()));
        let slots = RcuBox::new(KBox::new(SlotArray::new(capacity)?, GFP_KERNEL)?);
        let free = FreeList(KVVec::from_elem(0, FREE_LIST_UNITS, GFP_KERNEL)?);
        let used = image.entries().filter(|(_, e)| *e != RemapEntry::Free).map(|(spare, _)| spare);
        let mut spare = SpareAllocator::from_used(layout.data_start(), layout.data_end(), image.high_water(), free, used)
            .map_err(|_| EINVAL)?;
        let mut counts = Counts::new();
        let (mut remaps, mut pending_count) = (0u64, 0u64);
        {
            let guard = RcuReadGuard::new();
            let table = &slots.get(&guard).slots;
            let map = RegionMap::new(&region_words, region_shift).map_err(|_| EINVAL)?;
            let mut add = |unit: u64, entry: Entry| -> Result {
                if unit >= main_units || remap_table::lookup(table, unit).is_some() {
                    return Err(EINVAL);
                }
                map.mark(unit).map_err(|_| EINVAL)?;
                remap_table::insert_or_update(table, &mut counts, unit, entry).map_err(|_| EINVAL)?;
                Ok(())
            };
            for (spare_unit, entry) in image.entries() {
                match entry {
                    RemapEntry::Remapped(unit) => {
                        add(unit, Entry::Remapped { spare: spare_unit })?;
                        remaps = remaps.saturating_add(1);
                    }
                    RemapEntry::Bad => {
                        let _ = spare.mark_bad(spare_unit);
                    }
                    RemapEntry::Free => {}
                }
            }
            for &unit in pending {
                add(unit, Entry::Pending)?;
                pending_count = pending_count.saturating_add(1);
            }
        }
        let spare_used = spare.used();
        let mode = MetadataMode::at_load(image.needs_check());
        let writer = KBox::pin_init(
            new_mutex!(Writer { counts, capacity, spare, image }, "dm_remap_table_writer"),
            GFP_KERNEL,
        )?;
        Ok(Self {
            slots,
            region_words,
            region_shift,
            writer,
            remaps: AtomicU64::new(remaps),
            pending: AtomicU64::new(pending_count),
            spare_used: AtomicU64::new(spare_used),
            dirty: AtomicBool::new(false),
            mode: AtomicU8::new(mode.code()),
        })
    }

    /// The metadata mode. Lock-free: a writer that must act on it reads
    /// [`TableWriter::mode`] under the lock instead.
    pub(crate) fn metadata_mode(&self) -> MetadataMode {
        MetadataMode::from_code(self.mode.load(Ordering::Acquire))
    }

    /// Changes wait for a commit. Lock-free.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    fn region_map(&self) -> Option<RegionMap<'_>> {
        RegionMap::new(&self.region_words, self.region_shift).ok()
    }

    /// Whether any unit in `[start, end)` may have an entry (no false negatives). Lock-free.
    pub(crate) fn any_in(&self, start: u64, end: u64) -> bool {
        self.region_map().map_or(true, |m| m.any_in(start, end))
    }

    /// The entry of `unit`, if any. Lock-free; the caller holds an RCU read-side section.
    pub(crate) fn lookup(&self, guard: &RcuReadGuard, unit: u64) -> Option<Entry> {
        remap_table::lookup(&self.slots.get(guard).slots, unit)
    }

    /// Main units redirected to the spare.
    pub(crate) fn remaps(&self) -> u64 {
        self.remaps.load(Ordering::Relaxed)
    }

    /// Main units waiting for a write to be remapped.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Spare units in use (remaps, bad units, leaked ones).
    pub(crate) fn spare_used(&self) -> u64 {
        self.spare_used.load(Ordering::Relaxed)
    }

    /// Takes the writer lock (sleeps).
    pub(crate) fn writer(&self) -> TableWriter<'_> {
        TableWriter { table: self, w: self.writer.lock() }
    }

    /// Copies the entries with units at or after `start_unit` into a vector sorted by unit
    /// (for `list`). Allocates: process context only.
    pub(crate) fn entries_from(&self, start_unit: u64) -> Result<Snapshot> {
        // Allocation may sleep, which a read-side section forbids: count, allocate, then copy
        // (entries added in between are left out, which a snapshot may do).
        let wanted = {
            let guard = RcuReadGuard::new();
            remap_table::iter(&self.slots.get(&guard).slots).filter(|(u, _)| *u >= start_unit).count()
        };
        let mut out = KVVec::with_capacity(wanted, GFP_KERNEL)?;
        {
            let guard = RcuReadGuard::new();
            let from = remap_table::iter(&self.slots.get(&guard).slots).filter(|(u, _)| *u >= start_unit);
            for item in from.take(wanted) {
                // Within the capacity reserved above: no allocation happens.
                out.push(item, GFP_NOWAIT)?;
            }
        }
        let filled = out.len();
        let mut snapshot = Snapshot { entries: out, len: filled };
        snapshot.as_mut_slice().sort_unstable_by_key(|(unit, _)| *unit);
        Ok(snapshot)
    }
}

/// A sorted copy of (part of) the table: `(unit, entry)` pairs.
pub(crate) struct Snapshot {
    entries: KVVec<(u64, Entry)>,
    len: usize,
}

impl Snapshot {
    /// The entries, sorted by unit.
    pub(crate) fn as_slice(&self) -> &[(u64, Entry)] {
        self.entries.get(..self.len).unwrap_or(&[])
    }

    fn as_mut_slice(&mut self) -> &mut [(u64, Entry)] {
        self.entries.get_mut(..self.len).unwrap_or(&mut [])
    }
}

/// Exclusive access to a table's writer side. Holding it sleeps others; never hold it in an
/// RCU read-side section.
pub(crate) struct TableWriter<'a> {
    table: &'a RemapTable,
    w: Guard<'a, Writer, kernel::sync::lock::mutex::MutexBackend>,
}

impl TableWriter<'_> {
    /// The entry of `unit` (the writer sees its own changes).
    pub(crate) fn lookup(&self, unit: u64) -> Option<Entry> {
        let guard = RcuReadGuard::new();
        self.table.lookup(&guard, unit)
    }

    /// Hands out a free spare unit: never one whose free is not committed yet (see
    /// [`TableWriter::frees_held`]).
    pub(crate) fn allocate(&mut self) -> Result<u64, SpareExhausted> {
        let unit = self.w.spare.allocate()?;
        self.table.spare_used.store(self.w.spare.used(), Ordering::Relaxed);
        Ok(unit)
    }

    /// Never hands out spare unit `spare` again (it failed); recorded in the metadata.
    pub(crate) fn mark_bad(&mut self, spare: u64) {
        let _ = self.w.spare.mark_bad(spare);
        self.w.image.set_bad(spare);
        self.changed();
        self.table.spare_used.store(self.w.spare.used(), Ordering::Relaxed);
    }

    /// Gives spare unit `spare` back for reuse; recorded in the metadata. The unit is held
    /// (not handed out) until a commit records the free: until then the committed metadata
    /// may still map a main unit to it.
    pub(crate) fn free(&mut self, spare: u64) {
        let _ = self.w.spare.free(spare);
        self.w.image.set_free(spare);
        self.changed();
        self.table.spare_used.store(self.w.spare.used(), Ordering::Relaxed);
    }

    /// Spare units freed since the last commit, held until the next one.
    pub(crate) fn frees_held(&self) -> usize {
        self.w.spare.held()
    }

    fn changed(&self) {
        self.table.dirty.store(true, Ordering::Release);
    }

    /// The metadata mode; stable while the lock is held (only a commit under it changes it).
    pub(crate) fn mode(&self) -> MetadataMode {
        self.table.metadata_mode()
    }

    /// Whether new state may be recorded now (remaps, pending units, frees): see
    /// [`MetadataMode::records_changes`].
    pub(crate) fn records_changes(&self) -> bool {
        self.mode().records_changes()
    }

    /// Applies the mode transition rule for `event`; entering a mode that needs a check sets
    /// `needs_check` in the image, so that the first commit that succeeds writes it. Returns
    /// the new mode.
    fn mode_after(&mut self, event: MetadataEvent) -> MetadataMode {
        let mode = self.mode().after(event);
        if mode.needs_check() && !self.w.image.needs_check() {
            self.w.image.set_needs_check();
            self.changed();
        }
        self.table.mode.store(mode.code(), Ordering::Release);
        mode
    }

    /// Writes the changes to the spare's metadata copies (see `persist.rs`). Sleeps. Once a
    /// copy holds them, the spare units freed before it are reusable. A commit that writes no
    /// copy puts the table in `read_only` mode ([`MetadataMode::after`]).
    ///
    /// # Errors
    /// `EIO` if no copy could be written (the changes stay pending for the next commit, the
    /// freed units stay held), `ERANGE` if the sequence number is exhausted.
    pub(crate) fn commit(&mut self, spare: &DmDev) -> Result<CommitReport> {
        let result = self.commit_image(spare);
        let event = if result.is_ok() { MetadataEvent::CommitSucceeded } else { MetadataEvent::CommitFailed };
        self.mode_after(event);
        result
    }

    fn commit_image(&mut self, spare: &DmDev) -> Result<CommitReport> {
        let high_water = self.w.spare.high_water();
        let table = self.table;
        let mut pending = |out: &mut [u64]| {
            let guard = RcuReadGuard::new();
            let units = remap_table::iter(&table.slots.get(&guard).slots)
                .filter(|(_, e)| *e == Entry::Pending)
                .map(|(u, _)| u);
            out.iter_mut().zip(units).map(|(place, unit)| *place = unit).count()
        };
        let report = self.w.image.commit(spare, &mut pending, high_water)?;
        // The lock is held since the last free: this commit recorded every one of them.
        self.w.spare.committed();
        self.table.dirty.store(self.w.image.is_dirty(), Ordering::Release);
        Ok(report)
    }

    /// Where a check of metadata copy `copy` starts (see [`Image::check_start`]).
    pub(crate) fn check_start(&self, copy: usize) -> Option<CheckStart> {
        self.w.image.check_start(copy)
    }

    /// Compares a remap block of a copy with the committed state (see [`Image::matches`]).
    pub(crate) fn matches(&self, start: &CheckStart, block: &RemapBlock<'_>) -> Option<bool> {
        self.w.image.matches(start, block)
    }

    /// Marks a copy found damaged for a whole rewrite by the next commit (see
    /// [`Image::mark_damaged`]). Returns whether it did.
    pub(crate) fn mark_damaged(&mut self, start: &CheckStart) -> bool {
        let marked = self.w.image.mark_damaged(start);
        if marked {
            self.changed();
        }
        marked
    }

    /// The spare layout of the metadata this table commits to, and the main device it was
    /// made for.
    pub(crate) fn metadata_identity(&self) -> (MetadataLayout, MainFingerprint) {
        (*self.w.image.layout(), *self.w.image.main())
    }

    /// Sequence number of the last commit, and how many copies hold it.
    pub(crate) fn metadata_state(&self) -> (u64, u32) {
        (self.w.image.seq(), self.w.image.copies_current())
    }

    /// Sets the entry of `unit`, growing the array first if needed (may sleep for a grace
    /// period). Readers see the entry once this returns. An update of a unit that has an entry
    /// never resizes, so it never fails for memory (the `unremap` back-out relies on it).
    ///
    /// # Errors
    /// `ENOMEM` if growing failed (inserts only), `EINVAL` for a unit or spare unit the table
    /// cannot hold.
    pub(crate) fn set(&mut self, unit: u64, entry: Entry) -> Result {
        self.grow_if_needed(unit)?;
        // The region bit goes first: a reader that finds it clear behaves as if it ran before
        // this insert, which is allowed; one that finds it set then looks the unit up.
        if let Some(map) = self.table.region_map() {
            map.mark(unit).map_err(|_| EINVAL)?;
        }
        let outcome = {
            let guard = RcuReadGuard::new();
            let slots = &self.table.slots.get(&guard).slots;
            remap_table::insert_or_update(slots, &mut self.w.counts, unit, entry)
        }
        .map_err(|_| EINVAL)?;
        let previous = match outcome {
            InsertOutcome::Inserted => None,
            InsertOutcome::Updated { previous } => previous,
        };
        self.account(previous, Some(entry));
        self.record(previous, Some(entry), unit);
        Ok(())
    }

    /// Mirrors a table change into the metadata image. `Moving` is transient (a message holds
    /// the lock for the whole move) and never persisted.
    fn record(&mut self, old: Option<Entry>, new: Option<Entry>, unit: u64) {
        if let Some(Entry::Remapped { spare }) = new {
            self.w.image.set_remap(spare, unit);
            self.changed();
        }
        if old == Some(Entry::Pending) || new == Some(Entry::Pending) {
            self.w.image.pending_changed();
            self.changed();
        }
    }

    /// Drops the entry of `unit`; returns what it was.
    pub(crate) fn remove(&mut self, unit: u64) -> Option<Entry> {
        let previous = {
            let guard = RcuReadGuard::new();
            let slots = &self.table.slots.get(&guard).slots;
            remap_table::remove(slots, &mut self.w.counts, unit)
        };
        self.account(previous, None);
        self.record(previous, None, unit);
        previous
    }

    fn account(&self, old: Option<Entry>, new: Option<Entry>) {
        let counter = |e: Option<Entry>| match e {
            Some(Entry::Remapped { .. } | Entry::Moving { .. }) => Some(&self.table.remaps),
            Some(Entry::Pending) => Some(&self.table.pending),
            None => None,
        };
        if let Some(c) = counter(old) {
            c.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(c) = counter(new) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Resizes the array before `unit`'s entry is set, if the policy says so (never for an
    /// update of an existing entry).
    fn grow_if_needed(&mut self, unit: u64) -> Result {
        let resize = {
            let guard = RcuReadGuard::new();
            remap_table::resize_before_set(&self.table.slots.get(&guard).slots, self.w.counts, self.w.capacity, unit)
        };
        let Some(capacity) = resize else {
            return Ok(());
        };
        let bigger = KBox::new(SlotArray::new(capacity)?, GFP_KERNEL)?;
        let counts = {
            let guard = RcuReadGuard::new();
            remap_table::rehash(&self.table.slots.get(&guard).slots, &bigger.slots)
        }
        .map_err(|_| ENOMEM)?;
        drop(self.table.slots.replace(bigger));
        self.w.counts = counts;
        self.w.capacity = capacity;
        Ok(())
    }
}
