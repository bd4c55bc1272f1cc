// SPDX-License-Identifier: GPL-2.0

//! Allocator of spare-device units for remaps.
//!
//! # Rules
//! - Only units of the spare's data area `[data_start, data_end)` are ever handed out; the
//!   metadata area before `data_start` never is.
//! - Fresh units come from a high-water mark that only rises (bump allocation): every unit
//!   below it has been handed out at some point, every unit at or above it never has.
//! - Units returned with [`SpareAllocator::free`] (after an unremap) go onto a free list
//!   stored in caller-provided storage and are reused before the high-water mark moves.
//!   When that storage is full a freed unit is *leaked*: it is neither in use nor available
//!   until the next rebuild with [`SpareAllocator::from_used`], which finds it again as a gap.
//! - A unit is handed out again only when it is free in both the committed and the current
//!   state (persistent-data's rule, `drivers/md/persistent-data/dm-space-map-common.c`): a
//!   freed unit is *held* until the caller's next metadata commit, which records the free, has
//!   completed and the caller says so with [`SpareAllocator::committed`]. Until then the
//!   committed metadata may still map a main unit to it, and a crash would make that main unit
//!   read whatever a new owner wrote there. Units found free by a rebuild or skipped by
//!   [`SpareAllocator::mark_bad`] are free in the metadata too, so reusable at once.
//! - Units found bad ([`SpareAllocator::mark_bad`]) are never handed out again. A bad unit is
//!   simply never put back on the free list, so the caller must not `free` it; its metadata
//!   must keep it in the used set given to the next rebuild.
//! - Accounting: `available() = (data_end - high_water) + free-list length` (held units
//!   included: they are free, only not yet reusable) and `used() = total() - available()`
//!   (units in use, bad or leaked).
//! - Exhaustion is the error [`SpareExhausted`], never a panic.
//!
//! The state needs no heap: the free list lives in `S`, anything that dereferences to
//! `[u64]` (`&mut [u64]` on the host, a boxed slice in the kernel); its length is the free
//! list's capacity. The list's first [`SpareAllocator::held`] entries are the held units, the
//! rest the reusable ones (allocation pops the last entry).

#[cfg(test)]
mod tests;

use core::ops::DerefMut;

/// [`SpareAllocator::allocate`] found no unit left to hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpareExhausted;

/// Why an allocator operation other than `allocate` was refused; the state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpareError {
    /// `data_start > data_end`, or a high-water mark beyond `data_end`.
    InvalidLayout,
    /// The unit is outside the data area `[data_start, data_end)`.
    OutOfRange,
    /// `free`: the unit was never handed out (it is at or above the high-water mark).
    NotAllocated,
    /// `free`: the unit is already on the free list.
    AlreadyFree,
    /// `from_used`: the used units are not strictly ascending (unsorted or duplicated).
    NotAscending,
}

/// What [`SpareAllocator::free`] did with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freed {
    /// The unit is on the free list, held: it is handed out again after the next
    /// [`SpareAllocator::committed`].
    Reusable,
    /// The free list was full: the unit is leaked until the next rebuild.
    Leaked,
}

/// Spare-unit allocator over the data area `[data_start, data_end)` (units of the spare
/// device), with a free list kept in the caller's storage `S` (see the module documentation).
#[derive(Debug)]
pub struct SpareAllocator<S> {
    data_start: u64,
    data_end: u64,
    high_water: u64,
    free: S,
    /// Entries on the free list: `free[..held]` held, `free[held..free_len]` reusable.
    free_len: usize,
    /// Freed units whose free is not committed yet (the first entries of the list).
    held: usize,
    bad: u64,
    leaked: u64,
}

impl<S: DerefMut<Target = [u64]>> SpareAllocator<S> {
    /// An allocator for a spare whose data area is `[data_start, data_end)` units and of which
    /// nothing is in use yet. `free_storage` holds the free list (its length is the list's
    /// capacity; its contents are ignored).
    ///
    /// Errors: [`SpareError::InvalidLayout`] if `data_start > data_end`.
    pub fn new(data_start: u64, data_end: u64, free_storage: S) -> Result<Self, SpareError> {
        if data_start > data_end {
            return Err(SpareError::InvalidLayout);
        }
        Ok(SpareAllocator {
            data_start,
            data_end,
            high_water: data_start,
            free: free_storage,
            free_len: 0,
            held: 0,
            bad: 0,
            leaked: 0,
        })
    }

    /// Rebuilds the state at load time from the units in use, i.e. every spare unit that the
    /// metadata references (remap targets and known-bad units), given in strictly ascending
    /// order.
    ///
    /// The high-water mark becomes `max(high_water, last used unit + 1)` (a persisted mark may
    /// lag behind the entries; one below `data_start` counts as `data_start`). Every unit below
    /// it that is not used goes onto the free list while `free_storage` has room; the rest are
    /// leaked (see [`SpareAllocator::leaked`]). Bad units are counted only when the caller
    /// reports them with [`SpareAllocator::mark_bad`] afterwards. Cost: O(used + free list).
    ///
    /// Errors: [`SpareError::InvalidLayout`] (`data_start > data_end` or
    /// `high_water > data_end`), [`SpareError::OutOfRange`] (a used unit outside the data area),
    /// [`SpareError::NotAscending`] (unsorted or duplicate used units).
    pub fn from_used<I: IntoIterator<Item = u64>>(
        data_start: u64,
        data_end: u64,
        high_water: u64,
        free_storage: S,
        used: I,
    ) -> Result<Self, SpareError> {
        if high_water > data_end {
            return Err(SpareError::InvalidLayout);
        }
        let mut alloc = Self::new(data_start, data_end, free_storage)?;
        // `next` is the lowest unit not yet classified as used or free.
        let mut next = data_start;
        for unit in used {
            if unit < data_start || unit >= data_end {
                return Err(SpareError::OutOfRange);
            }
            if unit < next {
                return Err(SpareError::NotAscending);
            }
            alloc.add_gap(next, unit);
            next = unit.saturating_add(1); // unit < data_end <= u64::MAX: never saturates
        }
        let high_water = high_water.max(next);
        alloc.add_gap(next, high_water);
        alloc.high_water = high_water;
        Ok(alloc)
    }

    /// Puts the units `[start, end)` on the free list as far as it has room, counting the rest
    /// as leaked.
    fn add_gap(&mut self, start: u64, end: u64) {
        let mut unit = start;
        while unit < end {
            if self.push_free(unit).is_err() {
                self.leaked = self.leaked.saturating_add(end - unit);
                return;
            }
            unit += 1;
        }
    }

    /// Pushes `unit` on the free list, reusable; `Err(())` if it is full.
    fn push_free(&mut self, unit: u64) -> Result<(), ()> {
        let cell = self.free.get_mut(self.free_len).ok_or(())?;
        *cell = unit;
        self.free_len += 1;
        Ok(())
    }

    /// Puts `unit` on the free list, held; `Err(())` if it is full. The first reusable entry
    /// (if any) moves to the end of the list to make room at the end of the held part.
    fn push_held(&mut self, unit: u64) -> Result<(), ()> {
        let end = self.free_len;
        let first_reusable = self.free.get(self.held).copied();
        let cell = self.free.get_mut(end).ok_or(())?;
        // held <= free_len; when they are equal the cell at `held` is the new one.
        *cell = if self.held < end { first_reusable.unwrap_or(unit) } else { unit };
        if let Some(cell) = self.free.get_mut(self.held) {
            *cell = unit;
        }
        self.free_len += 1;
        // held < free_len after the push above: never saturates.
        self.held = self.held.saturating_add(1);
        Ok(())
    }

    /// Moves the entry at `from` of the storage to `to` (both within the list).
    fn move_entry(&mut self, from: usize, to: usize) {
        if let Some(&unit) = self.free.get(from) {
            if let Some(cell) = self.free.get_mut(to) {
                *cell = unit;
            }
        }
    }

    /// Takes the entry at `position` off the free list, keeping the held part first.
    fn remove_at(&mut self, position: usize) {
        let Some(last) = self.free_len.checked_sub(1) else {
            return;
        };
        if position < self.held {
            // The last held entry fills the hole, the last reusable one the held part's end.
            let last_held = self.held.saturating_sub(1); // position < held
            self.move_entry(last_held, position);
            self.move_entry(last, last_held);
            self.held = last_held;
        } else {
            self.move_entry(last, position);
        }
        self.free_len = last;
    }

    /// The free-list part of the storage that holds entries.
    fn free_list(&self) -> &[u64] {
        self.free.get(..self.free_len).unwrap_or(&[])
    }

    /// Position of `unit` in the free list, if it is on it (O(free list)).
    fn free_position(&self, unit: u64) -> Option<usize> {
        self.free_list().iter().position(|&u| u == unit)
    }

    /// Hands out a spare unit: the last reusable one on the free list if any, else the unit at
    /// the high-water mark (which then rises by one). Held units are never handed out.
    ///
    /// Errors: [`SpareExhausted`] when no unit is reusable and the high-water mark has reached
    /// `data_end`. If [`SpareAllocator::held`] is not 0, a commit followed by
    /// [`SpareAllocator::committed`] makes units reusable again.
    pub fn allocate(&mut self) -> Result<u64, SpareExhausted> {
        if self.free_len > self.held {
            let last = self.free_len.saturating_sub(1); // free_len > held >= 0
            if let Some(&unit) = self.free.get(last) {
                self.free_len = last;
                return Ok(unit);
            }
        }
        if self.high_water < self.data_end {
            let unit = self.high_water;
            self.high_water += 1;
            return Ok(unit);
        }
        Err(SpareExhausted)
    }

    /// Returns a unit that is no longer used (its remap was removed) for reuse once the free
    /// is committed: the unit is held until the next [`SpareAllocator::committed`]. Must not
    /// be called for a unit that was marked bad. O(free list) to detect a double free.
    ///
    /// Returns [`Freed::Reusable`], or [`Freed::Leaked`] if the free list is full.
    /// Errors: [`SpareError::OutOfRange`], [`SpareError::NotAllocated`] (at or above the
    /// high-water mark), [`SpareError::AlreadyFree`].
    pub fn free(&mut self, unit: u64) -> Result<Freed, SpareError> {
        if unit < self.data_start || unit >= self.data_end {
            return Err(SpareError::OutOfRange);
        }
        if unit >= self.high_water {
            return Err(SpareError::NotAllocated);
        }
        if self.free_position(unit).is_some() {
            return Err(SpareError::AlreadyFree);
        }
        if self.push_held(unit).is_ok() {
            Ok(Freed::Reusable)
        } else {
            self.leaked = self.leaked.saturating_add(1);
            Ok(Freed::Leaked)
        }
    }

    /// Records that `unit` is bad: it is never handed out again.
    ///
    /// - A unit in use (the usual case: a write to a freshly allocated unit failed) just stays
    ///   unavailable; the caller must not `free` it.
    /// - A unit on the free list (held or reusable) is taken off it.
    /// - A unit above the high-water mark moves the mark past it; the units skipped between
    ///   the old mark and it go onto the free list as far as it has room, the rest are leaked.
    ///
    /// Errors: [`SpareError::OutOfRange`] (outside the data area).
    pub fn mark_bad(&mut self, unit: u64) -> Result<(), SpareError> {
        if unit < self.data_start || unit >= self.data_end {
            return Err(SpareError::OutOfRange);
        }
        if unit >= self.high_water {
            let old = self.high_water;
            self.high_water = unit + 1; // unit < data_end
            self.add_gap(old, unit);
        } else if let Some(position) = self.free_position(unit) {
            self.remove_at(position);
        }
        self.bad = self.bad.saturating_add(1);
        Ok(())
    }

    /// The caller's metadata commit that records every free made so far has completed: the
    /// held units become reusable. Call it only then (a commit that failed, or one that began
    /// before the last `free`, does not count). O(1).
    pub fn committed(&mut self) {
        self.held = 0;
    }

    /// Freed units held until the next [`SpareAllocator::committed`] (on the free list, not
    /// handed out).
    pub const fn held(&self) -> usize {
        self.held
    }

    /// Size of the data area in units: `data_end - data_start`.
    pub const fn total(&self) -> u64 {
        // data_start <= data_end (checked by the constructors); saturating keeps the kernel
        // build free of an overflow-panic path.
        self.data_end.saturating_sub(self.data_start)
    }

    /// Units that can still be handed out: `(data_end - high_water) + free-list length`.
    pub fn available(&self) -> u64 {
        let free = u64::try_from(self.free_len).unwrap_or(u64::MAX);
        // high_water <= data_end is an invariant; saturating only avoids a panic path.
        self.data_end.saturating_sub(self.high_water).saturating_add(free)
    }

    /// Units not available: in use, bad or leaked. `used() + available() == total()`.
    pub fn used(&self) -> u64 {
        self.total().saturating_sub(self.available())
    }

    /// Number of [`SpareAllocator::mark_bad`] calls accepted (bad units, if each was reported
    /// once).
    pub const fn bad(&self) -> u64 {
        self.bad
    }

    /// Units freed (or found as gaps by a rebuild) that did not fit in the free list; they are
    /// recovered by the next rebuild.
    pub const fn leaked(&self) -> u64 {
        self.leaked
    }

    /// The high-water mark: the lowest unit never handed out. Persist it with the metadata and
    /// pass it back to [`SpareAllocator::from_used`].
    pub const fn high_water(&self) -> u64 {
        self.high_water
    }

    /// First unit of the data area.
    pub const fn data_start(&self) -> u64 {
        self.data_start
    }

    /// End (exclusive) of the data area.
    pub const fn data_end(&self) -> u64 {
        self.data_end
    }

    /// Number of units currently on the free list, held ones included.
    pub const fn free_len(&self) -> usize {
        self.free_len
    }

    /// Capacity of the free list (the length of the storage).
    pub fn free_capacity(&self) -> usize {
        self.free.len()
    }
}
