// SPDX-License-Identifier: GPL-2.0

//! Host tests of the remap table: unit tests, a model-based property test and (with
//! `RUSTFLAGS="--cfg loom"`) a loom model of one writer racing one reader.

extern crate std;

use super::*;

#[cfg(not(loom))]
mod plain {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    fn table(capacity: usize) -> Vec<Slot> {
        (0..capacity).map(|_| Slot::new()).collect()
    }

    fn remapped(spare: u64) -> Entry {
        Entry::Remapped { spare }
    }

    #[test]
    fn slot_is_16_bytes_and_zero_is_empty() {
        assert_eq!(core::mem::size_of::<Slot>(), 16);
        assert_eq!(core::mem::size_of::<Slot>(), SLOT_BYTES);
        let slots = table(4);
        assert_eq!(Counts::scan(&slots), Counts::new());
        assert_eq!(iter(&slots).count(), 0);
    }

    #[test]
    fn entry_encoding_round_trips() {
        for entry in [
            remapped(0),
            remapped(1),
            remapped(MAX_SPARE_UNIT),
            Entry::Pending,
            Entry::Moving { spare: 0 },
            Entry::Moving { spare: MAX_SPARE_UNIT },
        ] {
            let word = entry.encode().unwrap();
            assert_ne!(word, 0);
            assert_eq!(Entry::decode(word), Some(entry));
        }
        assert_eq!(remapped(MAX_SPARE_UNIT + 1).encode(), None);
        assert_eq!(remapped(u64::MAX).encode(), None);
        assert_eq!(Entry::Moving { spare: MAX_SPARE_UNIT + 1 }.encode(), None);
        assert_eq!(Entry::decode(0), None);
        assert_eq!(Entry::decode(u64::MAX), Some(Entry::Moving { spare: MAX_SPARE_UNIT }));
    }

    #[test]
    fn home_is_in_range() {
        for capacity in [1usize, 2, 3, 7, 16, 1000, usize::MAX] {
            for key in [1u64, 2, 3, 1 << 40, u64::MAX - 1] {
                assert!(home(key, capacity) < capacity);
            }
        }
        assert_eq!(home(12345, 1), 0);
    }

    #[test]
    fn empty_and_zero_length_tables() {
        let none: [Slot; 0] = [];
        let mut counts = Counts::new();
        assert_eq!(lookup(&none, 0), None);
        assert_eq!(
            insert_or_update(&none, &mut counts, 0, Entry::Pending),
            Err(TableError::Full)
        );
        assert_eq!(remove(&none, &mut counts, 0), None);
        assert_eq!(iter(&none).count(), 0);
        assert_eq!(needs_resize(counts, 0), Some(MIN_CAPACITY));

        let slots = table(8);
        for unit in [0, 1, 7, MAX_UNIT, u64::MAX] {
            assert_eq!(lookup(&slots, unit), None);
        }
    }

    #[test]
    fn insert_lookup_update_remove() {
        let slots = table(16);
        let mut counts = Counts::new();
        assert_eq!(
            insert_or_update(&slots, &mut counts, 5, Entry::Pending),
            Ok(InsertOutcome::Inserted)
        );
        assert_eq!(lookup(&slots, 5), Some(Entry::Pending));
        assert_eq!(lookup(&slots, 4), None);
        assert_eq!(
            insert_or_update(&slots, &mut counts, 5, remapped(9)),
            Ok(InsertOutcome::Updated {
                previous: Some(Entry::Pending)
            })
        );
        assert_eq!(lookup(&slots, 5), Some(remapped(9)));
        assert_eq!(counts.live(), 1);
        assert_eq!(remove(&slots, &mut counts, 5), Some(remapped(9)));
        assert_eq!(remove(&slots, &mut counts, 5), None);
        assert_eq!(lookup(&slots, 5), None);
        assert_eq!(counts.live(), 0);
        assert_eq!(counts.tombstones(), 1);
        assert_eq!(Counts::scan(&slots), counts);
        // Reinserting takes a new slot: the tombstone is not reused.
        assert_eq!(
            insert_or_update(&slots, &mut counts, 5, remapped(3)),
            Ok(InsertOutcome::Inserted)
        );
        assert_eq!(lookup(&slots, 5), Some(remapped(3)));
        assert_eq!(counts.occupied(), 2);
        assert_eq!(Counts::scan(&slots), counts);
    }

    #[test]
    fn keys_near_u64_max() {
        let slots = table(16);
        let mut counts = Counts::new();
        assert_eq!(
            insert_or_update(&slots, &mut counts, MAX_UNIT, remapped(1)),
            Ok(InsertOutcome::Inserted)
        );
        assert_eq!(lookup(&slots, MAX_UNIT), Some(remapped(1)));
        for bad in [u64::MAX - 1, u64::MAX] {
            assert_eq!(
                insert_or_update(&slots, &mut counts, bad, remapped(1)),
                Err(TableError::UnitOutOfRange)
            );
            assert_eq!(lookup(&slots, bad), None);
            assert_eq!(remove(&slots, &mut counts, bad), None);
        }
        assert_eq!(
            insert_or_update(&slots, &mut counts, 0, remapped(MAX_SPARE_UNIT + 1)),
            Err(TableError::SpareOutOfRange)
        );
        assert_eq!(iter(&slots).collect::<Vec<_>>(), [(MAX_UNIT, remapped(1))]);
        assert_eq!(counts.live(), 1);
    }

    #[test]
    fn capacity_one() {
        let slots = table(1);
        let mut counts = Counts::new();
        assert_eq!(
            insert_or_update(&slots, &mut counts, 42, Entry::Pending),
            Ok(InsertOutcome::Inserted)
        );
        assert_eq!(
            insert_or_update(&slots, &mut counts, 43, Entry::Pending),
            Err(TableError::Full)
        );
        assert_eq!(lookup(&slots, 43), None);
        assert!(matches!(
            insert_or_update(&slots, &mut counts, 42, remapped(0)),
            Ok(InsertOutcome::Updated { .. })
        ));
        assert_eq!(remove(&slots, &mut counts, 42), Some(remapped(0)));
        // Only a tombstone left: still full, lookups still terminate.
        assert_eq!(
            insert_or_update(&slots, &mut counts, 42, Entry::Pending),
            Err(TableError::Full)
        );
        assert_eq!(lookup(&slots, 42), None);
    }

    #[test]
    fn full_table_terminates_and_keeps_working() {
        let slots = table(7);
        let mut counts = Counts::new();
        for unit in 0..7 {
            assert_eq!(
                insert_or_update(&slots, &mut counts, unit, remapped(unit)),
                Ok(InsertOutcome::Inserted)
            );
        }
        assert_eq!(
            insert_or_update(&slots, &mut counts, 100, Entry::Pending),
            Err(TableError::Full)
        );
        for unit in 0..7 {
            assert_eq!(lookup(&slots, unit), Some(remapped(unit)));
            assert!(insert_or_update(&slots, &mut counts, unit, remapped(unit + 10)).is_ok());
        }
        assert_eq!(lookup(&slots, 100), None);
        assert_eq!(remove(&slots, &mut counts, 100), None);
        for unit in 0..7 {
            assert_eq!(remove(&slots, &mut counts, unit), Some(remapped(unit + 10)));
        }
        // All tombstones: no empty slot anywhere.
        assert_eq!(lookup(&slots, 3), None);
        assert_eq!(counts.tombstones(), 7);
        assert_eq!(
            insert_or_update(&slots, &mut counts, 3, Entry::Pending),
            Err(TableError::Full)
        );
    }

    #[test]
    fn rehash_drops_tombstones() {
        let slots = table(32);
        let mut counts = Counts::new();
        for unit in 0..20 {
            insert_or_update(&slots, &mut counts, unit * 3, remapped(unit)).unwrap();
        }
        for unit in 0..15 {
            remove(&slots, &mut counts, unit * 3).unwrap();
        }
        assert_eq!(counts.live(), 5);
        assert_eq!(counts.tombstones(), 15);
        let new_capacity = needs_resize(counts, slots.len()).unwrap();
        assert_eq!(new_capacity, MIN_CAPACITY);
        let fresh = table(new_capacity);
        let new_counts = rehash(&slots, &fresh).unwrap();
        assert_eq!(new_counts.live(), 5);
        assert_eq!(new_counts.tombstones(), 0);
        assert_eq!(Counts::scan(&fresh), new_counts);
        for unit in 0..20 {
            let expected = (unit >= 15).then_some(remapped(unit));
            assert_eq!(lookup(&fresh, unit * 3), expected);
        }
        // The source is untouched.
        assert_eq!(Counts::scan(&slots), counts);
    }

    #[test]
    fn rehash_errors() {
        let slots = table(16);
        let mut counts = Counts::new();
        for unit in 0..4 {
            insert_or_update(&slots, &mut counts, unit, Entry::Pending).unwrap();
        }
        let too_small = table(3);
        assert_eq!(rehash(&slots, &too_small), Err(TableError::Full));
        let dirty = table(8);
        let mut dirty_counts = Counts::new();
        insert_or_update(&dirty, &mut dirty_counts, 99, Entry::Pending).unwrap();
        assert_eq!(rehash(&slots, &dirty), Err(TableError::TargetNotEmpty));
        let exact = table(4);
        assert_eq!(rehash(&slots, &exact).unwrap().live(), 4);
        let none: [Slot; 0] = [];
        assert_eq!(rehash(&none, &exact), Err(TableError::TargetNotEmpty));
        assert_eq!(rehash(&none, &none), Ok(Counts::new()));
    }

    #[test]
    fn sizing_policy() {
        assert_eq!(capacity_for(0), MIN_CAPACITY);
        assert_eq!(capacity_for(8), MIN_CAPACITY);
        assert_eq!(capacity_for(9), 18);
        assert_eq!(capacity_for(1_000_000), 2_000_000);
        assert_eq!(capacity_for(usize::MAX), usize::MAX);

        let counts = |live, tombstones| Counts { live, tombstones };
        // 16 slots hold 12 occupied at most (3/4).
        assert_eq!(needs_resize(counts(11, 0), 16), None);
        assert_eq!(needs_resize(counts(12, 0), 16), Some(26));
        assert_eq!(needs_resize(counts(6, 6), 16), Some(MIN_CAPACITY));
        assert_eq!(needs_resize(counts(0, 0), 16), None);
        // Shrink when fewer than 1/4 live.
        assert_eq!(needs_resize(counts(250, 0), 1000), None);
        assert_eq!(needs_resize(counts(249, 0), 1000), Some(498));
        assert_eq!(needs_resize(counts(100, 400), 1000), Some(200));
        assert_eq!(needs_resize(counts(0, 0), 1000), Some(MIN_CAPACITY));
        // Capacity 1 is never enough for an insert.
        assert_eq!(needs_resize(counts(0, 0), 1), Some(MIN_CAPACITY));
        // Saturating, no overflow.
        assert!(needs_resize(counts(usize::MAX, usize::MAX), usize::MAX).is_some());
        assert_eq!(
            Counts {
                live: usize::MAX,
                tombstones: 1
            }
            .occupied(),
            usize::MAX
        );
    }

    /// An update of an existing unit (the `unremap` back-out `Moving` -> `Remapped`, `Pending`
    /// -> `Remapped`) never resizes, so it cannot fail for memory and leave a unit `Moving`;
    /// an insert still resizes when the policy says so.
    #[test]
    fn update_of_existing_unit_never_resizes() {
        // At the shrink threshold: 4 live of 1000 slots.
        let slots = table(1000);
        let mut counts = Counts::new();
        for unit in 0..4 {
            insert_or_update(&slots, &mut counts, unit, Entry::Moving { spare: 100 + unit }).unwrap();
        }
        assert!(needs_resize(counts, 1000).is_some());
        assert_eq!(resize_before_set(&slots, counts, 1000, 2), None, "update in place");
        assert_eq!(resize_before_set(&slots, counts, 1000, 7), needs_resize(counts, 1000), "insert");
        // At the grow threshold: 12 occupied of 16.
        let slots = table(16);
        let mut counts = Counts::new();
        for unit in 0..12 {
            insert_or_update(&slots, &mut counts, unit, remapped(unit)).unwrap();
        }
        assert!(needs_resize(counts, 16).is_some());
        assert_eq!(resize_before_set(&slots, counts, 16, 11), None, "update in place");
        assert!(resize_before_set(&slots, counts, 16, 12).is_some(), "insert");
    }

    /// Growing by the policy keeps the load in [1/2, 3/4]: at most 32 bytes per entry once
    /// past the minimum capacity.
    #[test]
    fn growth_keeps_memory_budget() {
        let mut slots = table(MIN_CAPACITY);
        let mut counts = Counts::new();
        for unit in 0..10_000u64 {
            if let Some(capacity) = needs_resize(counts, slots.len()) {
                let fresh = table(capacity);
                counts = rehash(&slots, &fresh).unwrap();
                slots = fresh;
            }
            insert_or_update(&slots, &mut counts, unit, remapped(unit)).unwrap();
            let bytes = slots.len() * SLOT_BYTES;
            if slots.len() > MIN_CAPACITY {
                assert!(bytes <= 32 * counts.live(), "{bytes} bytes for {counts:?}");
            }
            assert!(counts.occupied() * 4 <= slots.len() * 3);
        }
        for unit in 0..10_000u64 {
            assert_eq!(lookup(&slots, unit), Some(remapped(unit)));
        }
    }

    #[test]
    fn sequential_units_spread() {
        // With a strong hash, sequential units have short probe chains at load 1/2.
        let slots = table(2048);
        let mut counts = Counts::new();
        for unit in 0..1024 {
            insert_or_update(&slots, &mut counts, unit, Entry::Pending).unwrap();
        }
        let longest = (0..1024u64)
            .map(|unit| {
                let key = unit + 1;
                let mut index = home(key, slots.len());
                let mut steps = 1;
                while slots[index].key.load(Ordering::Relaxed) != key {
                    index = (index + 1) % slots.len();
                    steps += 1;
                }
                steps
            })
            .max()
            .unwrap();
        assert!(longest < 32, "longest probe chain {longest}");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, Entry),
        Remove(u64),
        Resize,
    }

    fn unit_strategy() -> impl Strategy<Value = u64> {
        prop_oneof![
            6 => 0u64..64,
            1 => (MAX_UNIT - 4)..=u64::MAX,
            1 => any::<u64>(),
        ]
    }

    fn entry_strategy() -> impl Strategy<Value = Entry> {
        prop_oneof![
            Just(Entry::Pending),
            (0u64..1000).prop_map(remapped),
            (0u64..1000).prop_map(|spare| Entry::Moving { spare }),
            Just(remapped(MAX_SPARE_UNIT)),
            Just(remapped(MAX_SPARE_UNIT + 1)),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (unit_strategy(), entry_strategy()).prop_map(|(u, e)| Op::Insert(u, e)),
            3 => unit_strategy().prop_map(Op::Remove),
            1 => Just(Op::Resize),
        ]
    }

    fn check_against_model(
        slots: &[Slot],
        counts: Counts,
        model: &BTreeMap<u64, Entry>,
        absent: &[u64],
    ) {
        for (&unit, &entry) in model {
            assert_eq!(lookup(slots, unit), Some(entry));
        }
        for &unit in absent {
            if !model.contains_key(&unit) {
                assert_eq!(lookup(slots, unit), None);
            }
        }
        let mut listed: Vec<(u64, Entry)> = iter(slots).collect();
        listed.sort_by_key(|&(unit, _)| unit);
        let expected: Vec<(u64, Entry)> = model.iter().map(|(&u, &e)| (u, e)).collect();
        assert_eq!(listed, expected);
        assert_eq!(Counts::scan(slots), counts);
        assert_eq!(counts.live(), model.len());
    }

    proptest! {
        #[test]
        fn table_matches_btreemap(
            initial_capacity in 0usize..40,
            ops in proptest::collection::vec(op_strategy(), 1..120),
            absent in proptest::collection::vec(unit_strategy(), 8),
        ) {
            let mut slots = table(initial_capacity);
            let mut counts = Counts::new();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(unit, entry) => {
                        let result = insert_or_update(&slots, &mut counts, unit, entry);
                        if unit > MAX_UNIT {
                            prop_assert_eq!(result, Err(TableError::UnitOutOfRange));
                        } else if matches!(entry, Entry::Remapped { spare } if spare > MAX_SPARE_UNIT) {
                            prop_assert_eq!(result, Err(TableError::SpareOutOfRange));
                        } else {
                            match (result, model.get(&unit).copied()) {
                                (Ok(InsertOutcome::Updated { previous }), Some(old)) => {
                                    prop_assert_eq!(previous, Some(old));
                                    model.insert(unit, entry);
                                }
                                (Ok(InsertOutcome::Inserted), None) => {
                                    model.insert(unit, entry);
                                }
                                (Err(TableError::Full), None) => {
                                    prop_assert_eq!(
                                        slots.iter().filter(|s| s.key.load(Ordering::Relaxed) == EMPTY).count(),
                                        0
                                    );
                                }
                                (result, old) => prop_assert!(false, "{:?} with model {:?}", result, old),
                            }
                        }
                    }
                    Op::Remove(unit) => {
                        prop_assert_eq!(remove(&slots, &mut counts, unit), model.remove(&unit));
                    }
                    Op::Resize => {
                        if let Some(capacity) = needs_resize(counts, slots.len()) {
                            prop_assert!(capacity >= MIN_CAPACITY);
                            prop_assert!((counts.live() + 1) * 4 <= capacity * 3);
                            let fresh = table(capacity);
                            counts = rehash(&slots, &fresh).unwrap();
                            slots = fresh;
                        }
                    }
                }
                check_against_model(&slots, counts, &model, &absent);
            }
        }
    }
}

/// Loom model: one writer inserts a key as `Pending`, updates it to `Remapped`, inserts a
/// second key that collides with it (capacity 2) and removes the first, while a reader looks both
/// up twice. The reader may see a key absent or any value published for that key, never a value
/// word that was not published (a stale zero) nor another key's value, and never goes back from
/// `Remapped` to `Pending`.
///
/// The writer runs on the model's main thread and the reader is spawned: loom's DPOR remembers
/// only the last access to each atomic, so a reader that runs first would have its load masked
/// by the writer's own probe load and the interleavings would not be explored.
///
/// Run with `RUSTFLAGS="--cfg loom" cargo test -p dm-remap-core --release --lib loom`.
#[cfg(loom)]
mod loom_model {
    use super::*;
    use loom::sync::Arc;
    use std::vec::Vec;

    /// Checks the protocol on raw words: a visible key always comes with a valid value.
    fn check_published(slots: &[Slot]) {
        for slot in slots {
            let key = slot.key.load(Ordering::Acquire);
            if key != EMPTY && key != TOMBSTONE {
                let value = slot.value.load(Ordering::Acquire);
                assert!(
                    Entry::decode(value).is_some(),
                    "key {key} with value {value:#x}"
                );
            }
        }
    }

    #[test]
    fn reader_never_sees_unpublished_value() {
        static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        loom::model(|| {
            EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let slots: Arc<Vec<Slot>> = Arc::new((0..2).map(|_| Slot::new()).collect());
            let reader_slots = Arc::clone(&slots);
            let reader = loom::thread::spawn(move || {
                let mut seen = Vec::new();
                for _ in 0..2 {
                    check_published(&reader_slots);
                    let found_7 = lookup(&reader_slots, 7);
                    assert!(
                        matches!(
                            found_7,
                            None | Some(Entry::Pending) | Some(Entry::Remapped { spare: 3 })
                        ),
                        "{found_7:?}"
                    );
                    let found_8 = lookup(&reader_slots, 8);
                    assert!(
                        matches!(found_8, None | Some(Entry::Remapped { spare: 4 })),
                        "{found_8:?}"
                    );
                    seen.push(found_7);
                }
                seen
            });
            let mut counts = Counts::new();
            insert_or_update(&slots, &mut counts, 7, Entry::Pending).unwrap();
            insert_or_update(&slots, &mut counts, 7, Entry::Remapped { spare: 3 }).unwrap();
            insert_or_update(&slots, &mut counts, 8, Entry::Remapped { spare: 4 }).unwrap();
            assert_eq!(
                remove(&slots, &mut counts, 7),
                Some(Entry::Remapped { spare: 3 })
            );
            let seen = reader.join().unwrap();
            // Monotonic for one reader: Remapped is never followed by Pending.
            if seen.first() == Some(&Some(Entry::Remapped { spare: 3 })) {
                assert_ne!(seen.get(1), Some(&Some(Entry::Pending)));
            }
            assert_eq!(lookup(&slots, 7), None);
            assert_eq!(lookup(&slots, 8), Some(Entry::Remapped { spare: 4 }));
        });
        // Guard against the model silently exploring a single interleaving.
        let executions = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
        std::println!("loom explored {executions} executions");
        assert!(executions > 100);
    }
}
