// SPDX-License-Identifier: GPL-2.0

//! Coarse "may this region contain a remapped or pending unit?" bitmap, so that the I/O fast
//! path can skip the remap table for a large bio that touches no remapped unit.
//!
//! # Layout
//! The main device's units are grouped into regions of `2^region_shift` units; region `r`
//! covers units `[r << region_shift, (r + 1) << region_shift)`. Region `r` is bit `r % 64` of
//! word `r / 64` of a caller-owned `[AtomicU64]` (zero-filled = nothing marked). A map for a
//! device of `n` units needs [`words_for`]`(n, region_shift)` words (8 bytes each);
//! [`shift_for`] picks the smallest shift that fits a byte budget.
//!
//! # Rules
//! - Bits are only ever set ([`RegionMap::mark`]); they are cleared only by rebuilding into a
//!   new zeroed array (marking every unit still in the table) and publishing that, like the
//!   remap table. A set bit for a region whose units were all unremapped is harmless (a false
//!   positive costs lookups, never correctness).
//! - The writer marks a unit's region **before** publishing its table entry; `mark` is a
//!   `Release` read-modify-write and [`RegionMap::any_in`] loads with `Acquire`, so a reader
//!   that could find the entry also sees the bit.
//! - No false negatives: any range touching a unit outside the map (or a map of 0 words, e.g.
//!   when the caller could not allocate one) is reported as "maybe" (`true`), so the caller
//!   falls back to table lookups.

#[cfg(test)]
mod tests;

use core::sync::atomic::{AtomicU64, Ordering};

/// Largest accepted region shift: regions of `2^63` units.
pub const MAX_REGION_SHIFT: u32 = 63;

/// Why a region map operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionMapError {
    /// `region_shift` is above [`MAX_REGION_SHIFT`].
    ShiftTooLarge,
    /// The unit lies beyond the regions covered by the words given.
    UnitOutOfRange,
}

/// Number of `u64` words a map for `device_units` units with regions of `2^region_shift` units
/// needs: `ceil(ceil(device_units / 2^region_shift) / 64)`. `None` if `region_shift` exceeds
/// [`MAX_REGION_SHIFT`] or the count does not fit in `usize`.
#[must_use]
pub fn words_for(device_units: u64, region_shift: u32) -> Option<usize> {
    if region_shift > MAX_REGION_SHIFT {
        return None;
    }
    // Shifts and masks instead of div_ceil: no division or overflow-panic path in the kernel.
    let ceil_shift = |n: u64, shift: u32| {
        let mask = (1u64 << shift).wrapping_sub(1);
        (n >> shift).saturating_add(u64::from(n & mask != 0))
    };
    usize::try_from(ceil_shift(ceil_shift(device_units, region_shift), 6)).ok()
}

/// Smallest region shift such that the map for `device_units` units takes at most `max_bytes`
/// bytes (`words_for * 8`). Returns [`MAX_REGION_SHIFT`] if even that does not fit (the map then
/// has one word, or zero words for an empty device).
#[must_use]
pub fn shift_for(device_units: u64, max_bytes: usize) -> u32 {
    let max_words = max_bytes / 8;
    (0..MAX_REGION_SHIFT)
        .find(|&shift| words_for(device_units, shift).is_some_and(|words| words <= max_words))
        .unwrap_or(MAX_REGION_SHIFT)
}

/// A view of a caller-owned bitmap with its region size; cheap to create (two words).
///
/// Reader side ([`RegionMap::any_in`], [`RegionMap::is_marked`]) is lock-free; [`RegionMap::mark`]
/// may run concurrently with readers and with other markers (it is an atomic `fetch_or`).
#[derive(Debug, Clone, Copy)]
pub struct RegionMap<'a> {
    words: &'a [AtomicU64],
    region_shift: u32,
}

impl<'a> RegionMap<'a> {
    /// Views `words` as a map with regions of `2^region_shift` units. It covers units
    /// `[0, words.len() * 64 << region_shift)` (saturating at `u64::MAX`).
    ///
    /// Errors: [`RegionMapError::ShiftTooLarge`] if `region_shift > MAX_REGION_SHIFT`.
    pub fn new(words: &'a [AtomicU64], region_shift: u32) -> Result<Self, RegionMapError> {
        if region_shift > MAX_REGION_SHIFT {
            return Err(RegionMapError::ShiftTooLarge);
        }
        Ok(RegionMap {
            words,
            region_shift,
        })
    }

    /// The region shift: regions are `2^region_shift` units.
    pub const fn region_shift(&self) -> u32 {
        self.region_shift
    }

    /// Number of regions covered (`words.len() * 64`, saturating).
    pub fn regions(&self) -> u64 {
        u64::try_from(self.words.len())
            .unwrap_or(u64::MAX)
            .saturating_mul(64)
    }

    /// Region index of `unit`.
    pub const fn region_of(&self, unit: u64) -> u64 {
        // region_shift <= MAX_REGION_SHIFT (checked in `new`); wrapping avoids a panic path.
        unit.wrapping_shr(self.region_shift)
    }

    /// Word and bit mask of `region`, or `None` if it is beyond the map.
    fn locate(&self, region: u64) -> Option<(&AtomicU64, u64)> {
        let word = self.words.get(usize::try_from(region / 64).ok()?)?;
        Some((word, 1u64 << (region % 64)))
    }

    /// Marks the region containing `unit` as possibly holding a remapped or pending unit.
    /// Call it before publishing the unit's table entry.
    ///
    /// Errors: [`RegionMapError::UnitOutOfRange`] if the unit lies beyond the map (nothing is
    /// changed; [`RegionMap::any_in`] reports such units as "maybe" anyway).
    pub fn mark(&self, unit: u64) -> Result<(), RegionMapError> {
        let (word, mask) = self
            .locate(self.region_of(unit))
            .ok_or(RegionMapError::UnitOutOfRange)?;
        word.fetch_or(mask, Ordering::Release);
        Ok(())
    }

    /// Whether the region containing `unit` is marked; `true` for a unit beyond the map.
    #[must_use]
    pub fn is_marked(&self, unit: u64) -> bool {
        match self.locate(self.region_of(unit)) {
            Some((word, mask)) => word.load(Ordering::Acquire) & mask != 0,
            None => true,
        }
    }

    /// Whether any unit in `[start_unit, end_unit)` may be remapped or pending: `false` only
    /// if every region the range touches is unmarked. An empty range (`start_unit >=
    /// end_unit`) gives `false`; a range reaching beyond the map gives `true`. Cost: one load
    /// per 64 regions touched.
    #[must_use]
    pub fn any_in(&self, start_unit: u64, end_unit: u64) -> bool {
        if start_unit >= end_unit {
            return false;
        }
        let first = self.region_of(start_unit);
        let last = self.region_of(end_unit - 1);
        if last >= self.regions() {
            return true;
        }
        // Both are < regions() <= words.len() * 64, so the word indices fit in usize.
        let (Ok(first_word), Ok(last_word)) =
            (usize::try_from(first / 64), usize::try_from(last / 64))
        else {
            return true;
        };
        let Some(words) = self.words.get(first_word..=last_word) else {
            return true;
        };
        let count = words.len();
        words.iter().enumerate().any(|(i, word)| {
            let mut mask = u64::MAX;
            if i == 0 {
                mask &= u64::MAX << (first % 64);
            }
            if i + 1 == count {
                mask &= u64::MAX >> (63 - last % 64);
            }
            word.load(Ordering::Acquire) & mask != 0
        })
    }
}
