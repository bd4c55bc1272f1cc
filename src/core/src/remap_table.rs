// SPDX-License-Identifier: GPL-2.0

//! Open-addressing hash table from a main-device unit to its remap [`Entry`], laid over a slot
//! array that the caller owns, built for lock-free readers under RCU.
//!
//! # Model
//! The caller (the kernel module) owns the memory: it allocates a `[Slot]` array (zero-filled:
//! an all-zero [`Slot`] is empty), publishes a pointer to it, and keeps a [`Counts`] beside it.
//! - **Readers** call [`lookup`] (or [`iter`]) with no lock at all, e.g. under
//!   `rcu_read_lock()`, possibly concurrently with one writer.
//! - **Writers** ([`insert_or_update`], [`remove`], [`rehash`]) must be serialised by the caller
//!   (a mutex); they never block readers.
//! - **Resize**: before an insert (and after a remove) the writer asks [`needs_resize`]; when it
//!   says so, it allocates a new zeroed array of the returned capacity, fills it with
//!   [`rehash`], publishes its pointer with a release store, waits for a grace period
//!   (`synchronize_rcu()`), then frees the old array. Between [`rehash`] and the publication the
//!   writer must not change the old array (its changes would be lost).
//!
//! # Layout
//! A [`Slot`] is 16 bytes: a key word then a value word, both `AtomicU64`.
//! - key word: `0` = empty, `u64::MAX` = tombstone (deleted), otherwise `main unit + 1`. Hence
//!   the units that can be stored are `0..=MAX_UNIT` (`u64::MAX - 2`).
//! - value word: bits 63..62 = state (`01` [`Entry::Remapped`], `10` [`Entry::Pending`], `11`
//!   [`Entry::Moving`], `00` invalid), bits 61..0 = spare unit (0 for `Pending`). Spare units are therefore
//!   limited to `0..=MAX_SPARE_UNIT` (`2^62 - 1`).
//!
//! The home slot of a key is `(h * capacity) >> 64` (128-bit product) where `h` is the
//! splitmix64 finalizer of the unit, so the capacity can be any non-zero length. Collisions are
//! resolved by linear probing (index + 1, wrapping), and every probe loop visits each slot at
//! most once, so it terminates even in a table that has no empty slot.
//!
//! # Publication protocol (memory ordering)
//! 1. An insert into an empty slot stores the value word (`Relaxed`) **then** the key word with
//!    `Release`. A reader loads the key word with `Acquire` and only then the value word, so a
//!    reader that sees the key also sees (at least) the value stored with it.
//! 2. A slot that once held a key is never given another key in the same array: a removal turns
//!    the key word into a tombstone (`Release` store) and the slot stays a tombstone until the
//!    caller rebuilds into a *new* array with [`rehash`]. So a reader can never pair a key with
//!    another key's value, and a probe chain never gets a new hole: a key present when a lookup
//!    starts is found unless it is removed meanwhile.
//! 3. An update of an existing key (e.g. `Pending` → `Remapped`, or a new spare unit after the
//!    old one went bad) is a single `Release` store of the value word; readers load it with
//!    `Acquire` and see either the old or the new entry, never a mix.
//! 4. Slots are only ever changed empty → key → tombstone within one array.
//!
//! Writers load with `Relaxed`: they are serialised by the caller's mutex, whose lock/unlock
//! orders them with respect to each other.
//!
//! # Sizing and memory
//! [`needs_resize`] keeps the occupancy (live keys + tombstones) at most 3/4 of the capacity
//! and every rebuild sizes the new array with [`capacity_for`] (`2 * live`, at least
//! [`MIN_CAPACITY`]), i.e. load 1/2. While the table grows the load therefore stays in
//! `[1/2, 3/4]`, which costs `16 / (1/2) = 32` down to `16 / (3/4) ≈ 21.3` bytes per live remap.
//! After removals the table is shrunk once fewer than 1/4 of the slots are live, so the worst
//! case is 64 bytes per live remap, back to 32 after the shrink. During a resize both arrays
//! exist until the grace period ends (transiently 1.5× to 2.5× the steady size).

// `cfg(loom)` (set with RUSTFLAGS="--cfg loom") swaps in loom's atomics for the loom model test.

#[cfg(test)]
mod tests;

#[cfg(not(all(loom, test)))]
use core::sync::atomic::AtomicU64;
#[cfg(all(loom, test))]
use loom::sync::atomic::AtomicU64;

use core::sync::atomic::Ordering;

/// Key word of an empty slot.
const EMPTY: u64 = 0;
/// Key word of a slot whose key was removed (never reused in the same array).
const TOMBSTONE: u64 = u64::MAX;

/// Largest main unit that can be a key (`u64::MAX - 2`): the key word is `unit + 1` and must be
/// neither `0` (empty) nor `u64::MAX` (tombstone).
pub const MAX_UNIT: u64 = u64::MAX - 2;

/// Number of low bits of the value word that hold the spare unit.
const SPARE_BITS: u32 = 62;
/// Largest spare unit an [`Entry::Remapped`] can hold (`2^62 - 1`).
pub const MAX_SPARE_UNIT: u64 = (1 << SPARE_BITS) - 1;
/// State field (bits 63..62) of a `Remapped` value word.
const STATE_REMAPPED: u64 = 1 << SPARE_BITS;
/// State field (bits 63..62) of a `Pending` value word.
const STATE_PENDING: u64 = 2 << SPARE_BITS;
/// State field (bits 63..62) of a `Moving` value word.
const STATE_MOVING: u64 = 3 << SPARE_BITS;
/// Mask of the state field.
const STATE_MASK: u64 = 3 << SPARE_BITS;

/// Size of one [`Slot`] in bytes: the array for `capacity` slots takes `capacity * SLOT_BYTES`
/// bytes.
pub const SLOT_BYTES: usize = 16;

/// Smallest capacity (in slots) that [`capacity_for`] returns: 16 slots = 256 bytes.
pub const MIN_CAPACITY: usize = 16;

/// One slot of the table: a key word and a value word, 16 bytes, `repr(C)`.
///
/// An all-zero slot is empty, so a zero-filled allocation (`kvzalloc`) is a valid empty
/// table. See the [module documentation](self) for the encoding and the publication protocol.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Slot {
    key: AtomicU64,
    value: AtomicU64,
}

#[cfg(not(all(loom, test)))]
const _: () = assert!(core::mem::size_of::<Slot>() == SLOT_BYTES);

impl Slot {
    /// An empty slot (both words zero).
    #[cfg(not(all(loom, test)))]
    pub const fn new() -> Self {
        Slot {
            key: AtomicU64::new(EMPTY),
            value: AtomicU64::new(0),
        }
    }

    /// An empty slot (both words zero).
    #[cfg(all(loom, test))]
    pub fn new() -> Self {
        Slot {
            key: AtomicU64::new(EMPTY),
            value: AtomicU64::new(0),
        }
    }
}

/// What the table knows about one main unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entry {
    /// The unit's data lives at spare unit `spare` (a unit number on the spare device,
    /// `0..=MAX_SPARE_UNIT`); all I/O to the unit goes there.
    Remapped {
        /// Unit on the spare device holding this main unit's data.
        spare: u64,
    },
    /// The unit failed a read and has no spare unit yet; the next write to it should allocate
    /// one and turn the entry into `Remapped`.
    Pending,
    /// A table writer is copying the unit between main and spare unit `spare` (where its data
    /// lives until the move ends); all I/O to the unit must wait for that writer.
    Moving {
        /// Unit on the spare device holding the data during the move.
        spare: u64,
    },
}

impl Entry {
    /// Encodes the value word, or `None` if the spare unit exceeds [`MAX_SPARE_UNIT`].
    const fn encode(self) -> Option<u64> {
        match self {
            Entry::Remapped { spare } if spare <= MAX_SPARE_UNIT => Some(STATE_REMAPPED | spare),
            Entry::Remapped { .. } => None,
            Entry::Pending => Some(STATE_PENDING),
            Entry::Moving { spare } if spare <= MAX_SPARE_UNIT => Some(STATE_MOVING | spare),
            Entry::Moving { .. } => None,
        }
    }

    /// Decodes a value word; `None` for an invalid state field (never written by this module).
    const fn decode(word: u64) -> Option<Entry> {
        match word & STATE_MASK {
            STATE_REMAPPED => Some(Entry::Remapped {
                spare: word & MAX_SPARE_UNIT,
            }),
            STATE_PENDING => Some(Entry::Pending),
            STATE_MOVING => Some(Entry::Moving {
                spare: word & MAX_SPARE_UNIT,
            }),
            _ => None,
        }
    }
}

/// Occupancy of one slot array, kept by the (serialised) writer next to the array.
///
/// `live` counts slots holding a key, `tombstones` counts removed keys still occupying a slot.
/// A fresh zeroed array has `Counts::default()`; [`Counts::scan`] recomputes them from an array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    live: usize,
    tombstones: usize,
}

impl Counts {
    /// Counts of an empty array.
    pub const fn new() -> Self {
        Counts {
            live: 0,
            tombstones: 0,
        }
    }

    /// Recounts live keys and tombstones of `slots` (O(capacity)). Use it if the counts were
    /// lost or to check them.
    pub fn scan(slots: &[Slot]) -> Self {
        let mut counts = Counts::new();
        for slot in slots {
            match slot.key.load(Ordering::Relaxed) {
                EMPTY => {}
                TOMBSTONE => counts.tombstones = counts.tombstones.saturating_add(1),
                _ => counts.live = counts.live.saturating_add(1),
            }
        }
        counts
    }

    /// Number of slots holding a key (= number of entries).
    pub const fn live(&self) -> usize {
        self.live
    }

    /// Number of tombstones (removed keys whose slot is not reusable before a rebuild).
    pub const fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// Slots that are not empty: `live + tombstones` (saturating).
    pub const fn occupied(&self) -> usize {
        self.live.saturating_add(self.tombstones)
    }
}

/// Why a table write was refused. Nothing was changed in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// The main unit is above [`MAX_UNIT`] and cannot be a key.
    UnitOutOfRange,
    /// The spare unit of an [`Entry::Remapped`] is above [`MAX_SPARE_UNIT`].
    SpareOutOfRange,
    /// No empty slot is left (or the array has length 0): resize first.
    Full,
    /// [`rehash`] was given a target array that is not entirely empty.
    TargetNotEmpty,
}

/// Result of a successful [`insert_or_update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The unit was not in the table; it now occupies a formerly empty slot.
    Inserted,
    /// The unit was in the table; its value word was replaced. `previous` is the old entry
    /// (`None` only if the old value word was invalid, which this module never writes).
    Updated {
        /// Entry before the update.
        previous: Option<Entry>,
    },
}

/// The splitmix64 finalizer: a bijective 64-bit mixer, so that sequential units spread over
/// the whole table.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Home slot index of `key` in an array of `capacity` slots (`capacity > 0`): multiply-shift
/// range reduction of the hash, always `< capacity`.
fn home(key: u64, capacity: usize) -> usize {
    ((u128::from(mix(key)) * capacity as u128) >> 64) as usize
}

/// Key word of `unit`, or `None` if the unit cannot be a key.
const fn key_of(unit: u64) -> Option<u64> {
    if unit <= MAX_UNIT {
        Some(unit + 1)
    } else {
        None
    }
}

/// Where a probe for a key ended.
enum Probe {
    /// The key is in the slot at this index.
    Found(usize),
    /// The key is absent; this is the first empty slot of its chain.
    Vacant(usize),
    /// The key is absent and the array has no empty slot.
    Full,
}

/// Probes for `key` (a valid key word), visiting each slot at most once. Writer side
/// (`Relaxed` loads).
fn probe(slots: &[Slot], key: u64) -> Probe {
    let capacity = slots.len();
    if capacity == 0 {
        return Probe::Full;
    }
    let mut index = home(key, capacity);
    for _ in 0..capacity {
        let Some(slot) = slots.get(index) else {
            return Probe::Full;
        };
        match slot.key.load(Ordering::Relaxed) {
            k if k == key => return Probe::Found(index),
            EMPTY => return Probe::Vacant(index),
            _ => {}
        }
        index += 1;
        if index == capacity {
            index = 0;
        }
    }
    Probe::Full
}

/// Looks `unit` up; reader side, lock-free and safe to run concurrently with one writer.
///
/// Returns the entry for `unit`, or `None` if it has none (including units above
/// [`MAX_UNIT`] and an empty `slots`). Cost: one probe chain, at most `slots.len()` slots.
#[must_use]
pub fn lookup(slots: &[Slot], unit: u64) -> Option<Entry> {
    let key = key_of(unit)?;
    let capacity = slots.len();
    if capacity == 0 {
        return None;
    }
    let mut index = home(key, capacity);
    for _ in 0..capacity {
        let slot = slots.get(index)?;
        match slot.key.load(Ordering::Acquire) {
            k if k == key => return Entry::decode(slot.value.load(Ordering::Acquire)),
            EMPTY => return None,
            _ => {}
        }
        index += 1;
        if index == capacity {
            index = 0;
        }
    }
    None
}

/// Iterates over the live entries of `slots` as `(main unit, entry)`, in slot order (not
/// sorted). Reader side: may run concurrently with a writer, in which case it sees each slot
/// either before or after each change.
pub fn iter(slots: &[Slot]) -> impl Iterator<Item = (u64, Entry)> + '_ {
    slots.iter().filter_map(|slot| {
        let key = slot.key.load(Ordering::Acquire);
        if key == EMPTY || key == TOMBSTONE {
            return None;
        }
        // key is neither EMPTY (0) nor TOMBSTONE here, so the subtraction cannot wrap.
        Entry::decode(slot.value.load(Ordering::Acquire)).map(|entry| (key.wrapping_sub(1), entry))
    })
}

/// Sets the entry of `unit` to `entry`: updates it in place if the unit is present, otherwise
/// publishes it in the first empty slot of its chain. Writer side (calls must be serialised).
///
/// `counts` must be the counts of `slots`; `live` grows by one on [`InsertOutcome::Inserted`].
/// Errors ([`TableError::UnitOutOfRange`], [`TableError::SpareOutOfRange`],
/// [`TableError::Full`]) leave the table unchanged. This function does not enforce the load
/// limit (an insert succeeds as long as an empty slot exists); ask [`needs_resize`] first.
pub fn insert_or_update(
    slots: &[Slot],
    counts: &mut Counts,
    unit: u64,
    entry: Entry,
) -> Result<InsertOutcome, TableError> {
    let key = key_of(unit).ok_or(TableError::UnitOutOfRange)?;
    let value = entry.encode().ok_or(TableError::SpareOutOfRange)?;
    match probe(slots, key) {
        Probe::Found(index) => {
            let slot = slots.get(index).ok_or(TableError::Full)?;
            let previous = Entry::decode(slot.value.load(Ordering::Relaxed));
            slot.value.store(value, Ordering::Release);
            Ok(InsertOutcome::Updated { previous })
        }
        Probe::Vacant(index) => {
            let slot = slots.get(index).ok_or(TableError::Full)?;
            // The slot is empty, so no reader looks at its value word before it sees the key.
            slot.value.store(value, Ordering::Relaxed);
            slot.key.store(key, Ordering::Release);
            counts.live = counts.live.saturating_add(1);
            Ok(InsertOutcome::Inserted)
        }
        Probe::Full => Err(TableError::Full),
    }
}

/// Removes `unit`, leaving a tombstone in its slot; returns its entry, or `None` if it was
/// absent (or above [`MAX_UNIT`]). Writer side (calls must be serialised).
///
/// `counts`: `live` shrinks and `tombstones` grows by one on success. The slot stays unusable
/// until a [`rehash`] into a new array; readers that already found the key may still return
/// the old entry (ordinary RCU semantics).
pub fn remove(slots: &[Slot], counts: &mut Counts, unit: u64) -> Option<Entry> {
    let key = key_of(unit)?;
    let Probe::Found(index) = probe(slots, key) else {
        return None;
    };
    let slot = slots.get(index)?;
    let previous = Entry::decode(slot.value.load(Ordering::Relaxed));
    slot.key.store(TOMBSTONE, Ordering::Release);
    counts.live = counts.live.saturating_sub(1);
    counts.tombstones = counts.tombstones.saturating_add(1);
    previous
}

/// Copies every live entry of `from` into `to`, dropping tombstones; returns the counts of `to`.
/// Writer side (serialised with all other writes to `from`).
///
/// `to` must be entirely empty (e.g. freshly zero-allocated, not yet visible to readers) and
/// large enough: use `capacity_for(counts.live())` or the value of [`needs_resize`].
/// Errors: [`TableError::TargetNotEmpty`] (nothing written), [`TableError::Full`] (`to` too
/// small; `to` is then partially filled and must be discarded). `from` is never modified.
pub fn rehash(from: &[Slot], to: &[Slot]) -> Result<Counts, TableError> {
    if to
        .iter()
        .any(|slot| slot.key.load(Ordering::Relaxed) != EMPTY)
    {
        return Err(TableError::TargetNotEmpty);
    }
    let mut counts = Counts::new();
    for slot in from {
        let key = slot.key.load(Ordering::Relaxed);
        if key == EMPTY || key == TOMBSTONE {
            continue;
        }
        let value = slot.value.load(Ordering::Relaxed);
        if Entry::decode(value).is_none() {
            continue;
        }
        match probe(to, key) {
            Probe::Vacant(index) => {
                let target = to.get(index).ok_or(TableError::Full)?;
                target.value.store(value, Ordering::Relaxed);
                target.key.store(key, Ordering::Release);
                counts.live = counts.live.saturating_add(1);
            }
            // Keys are unique in `from`, so this only happens if `from` was corrupted; keep
            // the first copy.
            Probe::Found(_) => {}
            Probe::Full => return Err(TableError::Full),
        }
    }
    Ok(counts)
}

/// Capacity (in slots) for a new array holding `live` entries: `2 * live` (load 1/2, i.e. 32
/// bytes per entry), at least [`MIN_CAPACITY`], saturating at `usize::MAX`.
#[must_use]
pub const fn capacity_for(live: usize) -> usize {
    let capacity = live.saturating_mul(2);
    if capacity < MIN_CAPACITY {
        MIN_CAPACITY
    } else {
        capacity
    }
}

/// Sizing policy: returns `Some(new capacity)` when the writer should rebuild `slots` (of
/// length `capacity`) into a new array of that many slots with [`rehash`], else `None`.
///
/// Call it before an insert (it reserves room for one more key) and after a remove:
/// - grow (or rebuild at the same size when tombstones dominate) if one more key would push
///   `live + tombstones` above 3/4 of `capacity`;
/// - shrink if fewer than 1/4 of the slots are live and [`capacity_for`] gives a smaller array.
///
/// The new capacity is `capacity_for(live + 1)` when growing, `capacity_for(live)` when
/// shrinking. A table of capacity 0 always needs a resize.
#[must_use]
pub fn needs_resize(counts: Counts, capacity: usize) -> Option<usize> {
    // 4 * (occupied + 1) <= 3 * capacity  <=>  occupied + 1 <= capacity - ceil(capacity / 4).
    let quarter = capacity.div_ceil(4);
    if counts.occupied().saturating_add(1) > capacity.saturating_sub(quarter) {
        return Some(capacity_for(counts.live.saturating_add(1)));
    }
    // 4 * live < capacity  <=>  live < ceil(capacity / 4).
    if counts.live < quarter {
        let shrunk = capacity_for(counts.live);
        if shrunk < capacity {
            return Some(shrunk);
        }
    }
    None
}

/// [`needs_resize`] for setting the entry of `unit` in `slots` (occupancy `counts`, `capacity`
/// slots): `None` when `unit` already has a key, because an update is one store of its value
/// word in place and changes no occupancy. So an update never allocates and cannot fail for
/// memory (the `unremap` back-out relies on it). Writer side: serialised by the caller.
pub fn resize_before_set(slots: &[Slot], counts: Counts, capacity: usize, unit: u64) -> Option<usize> {
    if lookup(slots, unit).is_some() {
        return None;
    }
    needs_resize(counts, capacity)
}
