// SPDX-License-Identifier: GPL-2.0

//! Allocator of spare-device units for remaps.
//!
//! # Rules
//! - Only units of the spare's data area `[data_start, data_end)` are ever handed out; the
//!   metadata area before `data_start` never is.
//! - Fresh units come from a high-water mark that only rises (bump allocation): every unit
//!   below it has been handed out at some point, every unit at or above it never has.
//! - Units returned with [`SpareAllocator::free`] (after an unremap) go onto a LIFO free list
//!   stored in caller-provided storage and are reused before the high-water mark moves. When
//!   that storage is full a freed unit is *leaked*: it is neither in use nor available until
//!   the next rebuild with [`SpareAllocator::from_used`], which finds it again as a gap.
//! - Units found bad ([`SpareAllocator::mark_bad`]) are never handed out again. A bad unit is
//!   simply never put back on the free list, so the caller must not `free` it; its metadata
//!   must keep it in the used set given to the next rebuild.
//! - Accounting: `available() = (data_end - high_water) + free-list length` and
//!   `used() = total() - available()` (units in use, bad or leaked).
//! - Exhaustion is the error [`SpareExhausted`], never a panic.
//!
//! The state needs no heap: the free list lives in `S`, anything that dereferences to
//! `[u64]` (`&mut [u64]` on the host, a boxed slice in the kernel); its length is the free
//! list's capacity.

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
    /// The unit is on the free list and will be handed out again.
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
    free_len: usize,
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

    /// Pushes `unit` on the free list; `Err(())` if it is full.
    fn push_free(&mut self, unit: u64) -> Result<(), ()> {
        let cell = self.free.get_mut(self.free_len).ok_or(())?;
        *cell = unit;
        self.free_len += 1;
        Ok(())
    }

    /// The free-list part of the storage that holds entries.
    fn free_list(&self) -> &[u64] {
        self.free.get(..self.free_len).unwrap_or(&[])
    }

    /// Position of `unit` in the free list, if it is on it (O(free list)).
    fn free_position(&self, unit: u64) -> Option<usize> {
        self.free_list().iter().position(|&u| u == unit)
    }

    /// Hands out a spare unit: the most recently freed one if any, else the unit at the
    /// high-water mark (which then rises by one).
    ///
    /// Errors: [`SpareExhausted`] when the free list is empty and the high-water mark has
    /// reached `data_end`.
    pub fn allocate(&mut self) -> Result<u64, SpareExhausted> {
        if let Some(last) = self.free_len.checked_sub(1) {
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

    /// Returns a unit that is no longer used (its remap was removed) for reuse. Must not be
    /// called for a unit that was marked bad. O(free list) to detect a double free.
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
        if self.push_free(unit).is_ok() {
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
    /// - A unit on the free list is taken off it.
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
            // Move the last entry into the hole; the list holds `unit`, so it is not empty.
            let last = self.free_len.saturating_sub(1);
            if let Some(&moved) = self.free.get(last) {
                if let Some(cell) = self.free.get_mut(position) {
                    *cell = moved;
                }
            }
            self.free_len = last;
        }
        self.bad = self.bad.saturating_add(1);
        Ok(())
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

    /// Number of units currently on the free list.
    pub const fn free_len(&self) -> usize {
        self.free_len
    }

    /// Capacity of the free list (the length of the storage).
    pub fn free_capacity(&self) -> usize {
        self.free.len()
    }
}
