// SPDX-License-Identifier: GPL-2.0

//! Host tests of the spare allocator: unit tests and a model-based property test.

extern crate std;

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::vec;
use std::vec::Vec;

type Alloc = SpareAllocator<Vec<u64>>;

fn alloc(start: u64, end: u64, free_capacity: usize) -> Alloc {
    SpareAllocator::new(start, end, vec![0; free_capacity]).unwrap()
}

#[test]
fn never_hands_out_metadata_area() {
    let mut a = alloc(8, 12, 4);
    assert_eq!(a.total(), 4);
    assert_eq!(a.available(), 4);
    let got: Vec<u64> = (0..4).map(|_| a.allocate().unwrap()).collect();
    assert_eq!(got, [8, 9, 10, 11]);
    assert_eq!(a.allocate(), Err(SpareExhausted));
    assert_eq!(a.used(), 4);
    assert_eq!(a.available(), 0);
    assert_eq!(a.high_water(), 12);
}

#[test]
fn invalid_layouts() {
    assert_eq!(
        SpareAllocator::new(5, 4, vec![0u64; 1]).unwrap_err(),
        SpareError::InvalidLayout
    );
    assert_eq!(
        SpareAllocator::from_used(0, 4, 5, vec![0u64; 1], []).unwrap_err(),
        SpareError::InvalidLayout
    );
    // An empty data area is valid and immediately exhausted.
    let mut a = alloc(7, 7, 0);
    assert_eq!(a.total(), 0);
    assert_eq!(a.allocate(), Err(SpareExhausted));
    assert_eq!(a.free(7), Err(SpareError::OutOfRange));
    assert_eq!(a.mark_bad(7), Err(SpareError::OutOfRange));
}

#[test]
fn data_area_at_top_of_range() {
    let mut a = alloc(u64::MAX - 2, u64::MAX, 2);
    assert_eq!(a.allocate(), Ok(u64::MAX - 2));
    assert_eq!(a.allocate(), Ok(u64::MAX - 1));
    assert_eq!(a.allocate(), Err(SpareExhausted));
    assert_eq!(a.free(u64::MAX), Err(SpareError::OutOfRange));
    assert_eq!(a.free(u64::MAX - 1), Ok(Freed::Reusable));
    assert_eq!(a.allocate(), Err(SpareExhausted)); // held until the free is committed
    a.committed();
    assert_eq!(a.allocate(), Ok(u64::MAX - 1));
    let b = SpareAllocator::from_used(u64::MAX - 2, u64::MAX, 0, vec![0u64; 0], [u64::MAX - 1])
        .unwrap();
    assert_eq!(b.high_water(), u64::MAX);
    assert_eq!(b.leaked(), 1);
}

#[test]
fn free_and_reuse() {
    let mut a = alloc(0, 10, 2);
    for expected in 0..5 {
        assert_eq!(a.allocate(), Ok(expected));
    }
    assert_eq!(a.free(1), Ok(Freed::Reusable));
    assert_eq!(a.free(1), Err(SpareError::AlreadyFree));
    assert_eq!(a.free(3), Ok(Freed::Reusable));
    assert_eq!(a.free(4), Ok(Freed::Leaked));
    assert_eq!(a.leaked(), 1);
    assert_eq!(a.free(5), Err(SpareError::NotAllocated));
    assert_eq!(a.free(10), Err(SpareError::OutOfRange));
    assert_eq!(a.used() + a.available(), a.total());
    assert_eq!(a.used(), 3); // 0, 2 in use; 4 leaked
    assert_eq!(a.held(), 2);
    // Held until the frees are committed: the high-water mark moves instead.
    assert_eq!(a.allocate(), Ok(5));
    a.committed();
    assert_eq!(a.held(), 0);
    // Then reused before the high-water mark moves.
    let mut reused = [a.allocate().unwrap(), a.allocate().unwrap()];
    reused.sort_unstable();
    assert_eq!(reused, [1, 3]);
    assert_eq!(a.allocate(), Ok(6));
}

/// The unremap case of issue 15: a freed unit is not handed to the next relocation before the
/// commit that records its free; after the commit it is.
#[test]
fn freed_unit_is_held_until_committed() {
    let mut a = alloc(0, 10, 4);
    assert_eq!(a.allocate(), Ok(0));
    assert_eq!(a.allocate(), Ok(1));
    assert_eq!(a.free(0), Ok(Freed::Reusable));
    assert_eq!(a.held(), 1);
    assert_eq!(a.free_len(), 1);
    // Free, so not in use; only not reusable yet.
    assert_eq!(a.used(), 1);
    assert_eq!(a.available(), 9);
    assert_eq!(a.allocate(), Ok(2));
    assert_eq!(a.free(0), Err(SpareError::AlreadyFree));
    a.committed();
    assert_eq!(a.allocate(), Ok(0));
}

#[test]
fn only_held_units_left_needs_a_commit() {
    let mut a = alloc(0, 2, 2);
    assert_eq!(a.allocate(), Ok(0));
    assert_eq!(a.allocate(), Ok(1));
    a.free(1).unwrap();
    assert_eq!(a.allocate(), Err(SpareExhausted));
    assert_eq!(a.held(), 1);
    assert_eq!(a.available(), 1);
    a.committed();
    assert_eq!(a.allocate(), Ok(1));
    assert_eq!(a.allocate(), Err(SpareExhausted));
}

#[test]
fn frees_after_a_commit_are_held_again() {
    let mut a = alloc(0, 10, 4);
    for expected in 0..4 {
        assert_eq!(a.allocate(), Ok(expected));
    }
    a.free(0).unwrap();
    a.committed();
    a.free(1).unwrap(); // after the commit: held, while 0 stays reusable
    assert_eq!(a.held(), 1);
    assert_eq!(a.allocate(), Ok(0));
    assert_eq!(a.allocate(), Ok(4));
    a.committed();
    assert_eq!(a.allocate(), Ok(1));
}

#[test]
fn mark_bad_takes_held_and_reusable_units_off() {
    let mut a = alloc(0, 20, 8);
    for expected in 0..6 {
        assert_eq!(a.allocate(), Ok(expected));
    }
    a.free(1).unwrap();
    a.free(2).unwrap();
    a.committed(); // 1, 2 reusable
    a.free(3).unwrap();
    a.free(4).unwrap(); // 3, 4 held
    assert_eq!((a.held(), a.free_len()), (2, 4));
    a.mark_bad(3).unwrap(); // held
    assert_eq!((a.held(), a.free_len()), (1, 3));
    a.mark_bad(2).unwrap(); // reusable
    assert_eq!((a.held(), a.free_len()), (1, 2));
    assert_eq!(a.allocate(), Ok(1));
    assert_eq!(a.allocate(), Ok(6)); // 4 is held
    a.committed();
    assert_eq!(a.allocate(), Ok(4));
    assert_eq!(a.allocate(), Ok(7));
    assert_eq!(a.bad(), 2);
    assert_eq!(a.used() + a.available(), a.total());
}

#[test]
fn mark_bad_gap_is_reusable_at_once() {
    // Units skipped by mark_bad were never handed out: free in the metadata too.
    let mut a = alloc(0, 10, 4);
    assert_eq!(a.allocate(), Ok(0));
    a.free(0).unwrap();
    a.mark_bad(3).unwrap();
    assert_eq!(a.held(), 1);
    let mut got = [a.allocate().unwrap(), a.allocate().unwrap()];
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    assert_eq!(a.allocate(), Ok(4));
}

#[test]
fn rebuild_has_nothing_held() {
    // A rebuild reads the committed state: its gaps are free there.
    let a = SpareAllocator::from_used(0, 10, 6, vec![0u64; 4], [0, 2]).unwrap();
    assert_eq!(a.held(), 0);
    assert_eq!(a.free_len(), 4);
}

#[test]
fn zero_capacity_free_list_leaks() {
    let mut a = alloc(0, 3, 0);
    assert_eq!(a.allocate(), Ok(0));
    assert_eq!(a.free(0), Ok(Freed::Leaked));
    assert_eq!(a.free_capacity(), 0);
    assert_eq!(a.available(), 2);
}

#[test]
fn bad_units_are_never_reused() {
    let mut a = alloc(0, 10, 4);
    let u = a.allocate().unwrap();
    a.mark_bad(u).unwrap(); // write to a fresh unit failed
    assert_eq!(a.used(), 1);
    let v = a.allocate().unwrap();
    a.free(v).unwrap();
    a.mark_bad(v).unwrap(); // bad while on the free list: taken off
    assert_eq!(a.free_len(), 0);
    a.mark_bad(5).unwrap(); // above the high-water mark: skipped, gap 2..5 freed
    assert_eq!(a.high_water(), 6);
    assert_eq!(a.bad(), 3);
    let mut rest = Vec::new();
    while let Ok(unit) = a.allocate() {
        rest.push(unit);
    }
    rest.sort_unstable();
    assert_eq!(rest, [2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(a.used(), a.total());
}

#[test]
fn mark_bad_gap_overflows_free_list() {
    let mut a = alloc(0, 100, 2);
    a.mark_bad(10).unwrap();
    assert_eq!(a.free_len(), 2);
    assert_eq!(a.leaked(), 8);
    assert_eq!(a.available(), 89 + 2);
    assert_eq!(a.used() + a.available(), a.total());
}

#[test]
fn from_used_rebuilds_gaps() {
    let a = SpareAllocator::from_used(4, 20, 12, vec![0u64; 8], [4, 6, 7, 10]).unwrap();
    assert_eq!(a.high_water(), 12);
    assert_eq!(a.free_len(), 4); // 5, 8, 9, 11
    assert_eq!(a.used(), 4);
    let mut a = a;
    let mut got = Vec::new();
    while let Ok(unit) = a.allocate() {
        got.push(unit);
    }
    got.sort_unstable();
    assert_eq!(got, [5, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
}

#[test]
fn from_used_raises_stale_high_water() {
    let a = SpareAllocator::from_used(4, 20, 0, vec![0u64; 1], [9]).unwrap();
    assert_eq!(a.high_water(), 10);
    assert_eq!(a.free_len(), 1);
    assert_eq!(a.leaked(), 4); // 4..9 minus the one on the free list
    assert_eq!(a.used() + a.available(), a.total());
}

#[test]
fn from_used_rejects_bad_input() {
    let storage = || vec![0u64; 4];
    assert_eq!(
        SpareAllocator::from_used(4, 20, 4, storage(), [3]).unwrap_err(),
        SpareError::OutOfRange
    );
    assert_eq!(
        SpareAllocator::from_used(4, 20, 4, storage(), [20]).unwrap_err(),
        SpareError::OutOfRange
    );
    assert_eq!(
        SpareAllocator::from_used(4, 20, 4, storage(), [6, 5]).unwrap_err(),
        SpareError::NotAscending
    );
    assert_eq!(
        SpareAllocator::from_used(4, 20, 4, storage(), [6, 6]).unwrap_err(),
        SpareError::NotAscending
    );
    // A huge gap with a small free list terminates quickly.
    let a = SpareAllocator::from_used(0, u64::MAX, u64::MAX, storage(), []).unwrap();
    assert_eq!(a.free_len(), 4);
    assert_eq!(a.leaked(), u64::MAX - 4);
    assert_eq!(a.available(), 4);
}

#[test]
fn works_with_borrowed_storage() {
    let mut storage = [0u64; 3];
    let mut a = SpareAllocator::new(100, 200, &mut storage[..]).unwrap();
    let u = a.allocate().unwrap();
    assert_eq!(u, 100);
    a.free(u).unwrap();
    assert_eq!(a.free_len(), 1);
    assert_eq!(a.data_start(), 100);
    assert_eq!(a.data_end(), 200);
}

#[derive(Debug, Clone)]
enum Op {
    Allocate,
    /// Free the in-use unit at this index (modulo the number in use).
    Free(usize),
    /// Mark bad: an in-use unit (index), or an arbitrary unit.
    BadInUse(usize),
    BadAny(u64),
    /// Free an arbitrary unit (usually an error).
    FreeAny(u64),
    /// The caller's metadata commit completed.
    Commit,
    Rebuild,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Allocate),
        3 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::BadInUse),
        1 => (0u64..80).prop_map(Op::BadAny),
        1 => (0u64..80).prop_map(Op::FreeAny),
        2 => Just(Op::Commit),
        1 => Just(Op::Rebuild),
    ]
}

proptest! {
    #[test]
    fn allocator_invariants(
        start in 0u64..20,
        len in 0u64..40,
        free_capacity in 0usize..6,
        ops in proptest::collection::vec(op_strategy(), 1..150),
    ) {
        let end = start + len;
        let mut a = alloc(start, end, free_capacity);
        let mut in_use = BTreeSet::new();
        let mut bad = BTreeSet::new();
        // Freed since the last commit: still in use in the committed state.
        let mut uncommitted_frees = BTreeSet::new();
        for op in ops {
            match op {
                Op::Allocate => match a.allocate() {
                    Ok(unit) => {
                        prop_assert!((start..end).contains(&unit));
                        prop_assert!(!bad.contains(&unit), "bad unit {} handed out", unit);
                        prop_assert!(in_use.insert(unit), "unit {} handed out twice", unit);
                        prop_assert!(
                            !uncommitted_frees.contains(&unit),
                            "unit {} handed out before its free was committed", unit
                        );
                    }
                    Err(SpareExhausted) => prop_assert_eq!(a.available() - a.held() as u64, 0),
                },
                Op::Free(i) => {
                    if let Some(&unit) = in_use.iter().nth(i % in_use.len().max(1)) {
                        in_use.remove(&unit);
                        prop_assert!(a.free(unit).is_ok());
                        uncommitted_frees.insert(unit);
                    }
                }
                Op::Commit => {
                    a.committed();
                    uncommitted_frees.clear();
                }
                Op::BadInUse(i) => {
                    if let Some(&unit) = in_use.iter().nth(i % in_use.len().max(1)) {
                        in_use.remove(&unit);
                        bad.insert(unit);
                        prop_assert_eq!(a.mark_bad(unit), Ok(()));
                    }
                }
                Op::BadAny(unit) => {
                    // Reporting a unit in use as bad moves it out of use.
                    let result = a.mark_bad(unit);
                    if (start..end).contains(&unit) {
                        prop_assert_eq!(result, Ok(()));
                        in_use.remove(&unit);
                        bad.insert(unit);
                    } else {
                        prop_assert_eq!(result, Err(SpareError::OutOfRange));
                    }
                }
                Op::FreeAny(unit) => {
                    // Only check that foreign units are refused; freeing one in use is legal.
                    if !(start..end).contains(&unit) {
                        prop_assert_eq!(a.free(unit), Err(SpareError::OutOfRange));
                    } else if unit >= a.high_water() {
                        prop_assert_eq!(a.free(unit), Err(SpareError::NotAllocated));
                    }
                }
                Op::Rebuild => {
                    // A load reads a committed state: the frees are in it.
                    uncommitted_frees.clear();
                    let used: BTreeSet<u64> = in_use.union(&bad).copied().collect();
                    let high_water = a.high_water();
                    a = SpareAllocator::from_used(
                        start, end, high_water, vec![0; free_capacity], used.iter().copied(),
                    ).unwrap();
                    prop_assert_eq!(a.high_water(), high_water);
                }
            }
            prop_assert_eq!(a.used() + a.available(), a.total());
            prop_assert!(a.used() >= (in_use.len() + bad.len()) as u64);
            prop_assert!(a.held() <= a.free_len());
            prop_assert!(a.held() <= uncommitted_frees.len());
            prop_assert!(a.high_water() >= start && a.high_water() <= end);
        }
        // Drain: everything handed out is new, valid and good.
        a.committed();
        while let Ok(unit) = a.allocate() {
            prop_assert!((start..end).contains(&unit));
            prop_assert!(!bad.contains(&unit));
            prop_assert!(in_use.insert(unit));
        }
    }
}
