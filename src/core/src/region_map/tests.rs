// SPDX-License-Identifier: GPL-2.0

//! Host tests of the region map: unit tests and a no-false-negative property test.

extern crate std;

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::vec::Vec;

fn words(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

#[test]
fn words_for_sizes() {
    assert_eq!(words_for(0, 0), Some(0));
    assert_eq!(words_for(1, 0), Some(1));
    assert_eq!(words_for(64, 0), Some(1));
    assert_eq!(words_for(65, 0), Some(2));
    assert_eq!(words_for(64 * 8, 3), Some(1));
    assert_eq!(words_for(64 * 8 + 1, 3), Some(2));
    assert_eq!(words_for(u64::MAX, 63), Some(1));
    assert_eq!(words_for(u64::MAX, 64), None);
    // 2 TiB of 512-byte units with 1 MiB regions: 2^21 regions, 2^15 words = 256 KiB.
    assert_eq!(words_for(1 << 32, 11), Some(1 << 15));
}

#[test]
fn shift_for_budget() {
    assert_eq!(shift_for(0, 0), 0);
    assert_eq!(shift_for(64, 8), 0);
    assert_eq!(shift_for(65, 8), 1);
    assert_eq!(shift_for(1 << 32, 64 * 1024), 13);
    assert_eq!(words_for(1 << 32, 13).unwrap() * 8, 64 * 1024);
    assert_eq!(shift_for(u64::MAX, 0), MAX_REGION_SHIFT);
    assert_eq!(shift_for(u64::MAX, 8), 58);
    for units in [1u64, 1000, 1 << 20, 1 << 40, u64::MAX] {
        for budget in [8usize, 64, 4096, 65536] {
            let shift = shift_for(units, budget);
            assert!(words_for(units, shift).unwrap() * 8 <= budget);
            if shift > 0 {
                assert!(words_for(units, shift - 1).unwrap() * 8 > budget);
            }
        }
    }
}

#[test]
fn rejects_large_shift() {
    let w = words(1);
    assert_eq!(
        RegionMap::new(&w, 64).unwrap_err(),
        RegionMapError::ShiftTooLarge
    );
    assert!(RegionMap::new(&w, 63).is_ok());
}

#[test]
fn empty_map_says_maybe() {
    let w = words(0);
    let map = RegionMap::new(&w, 4).unwrap();
    assert_eq!(map.regions(), 0);
    assert_eq!(map.mark(0), Err(RegionMapError::UnitOutOfRange));
    assert!(map.any_in(0, 1));
    assert!(map.is_marked(0));
    assert!(!map.any_in(5, 5));
    assert!(!map.any_in(6, 5));
}

#[test]
fn mark_and_query_boundaries() {
    let w = words(2); // 128 regions of 8 units: units 0..1024
    let map = RegionMap::new(&w, 3).unwrap();
    assert_eq!(map.regions(), 128);
    assert!(!map.any_in(0, 1024));
    map.mark(8 * 63 + 7).unwrap(); // region 63, last bit of word 0
    assert!(map.is_marked(8 * 63));
    assert!(!map.is_marked(8 * 63 - 1));
    assert!(!map.is_marked(8 * 64));
    assert!(map.any_in(8 * 63, 8 * 63 + 1));
    assert!(map.any_in(0, 1024));
    assert!(!map.any_in(0, 8 * 63));
    assert!(!map.any_in(8 * 64, 1024));
    assert!(map.any_in(8 * 63 + 7, 8 * 64 + 1));
    map.mark(8 * 64).unwrap(); // region 64, first bit of word 1
    assert!(map.any_in(8 * 64, 8 * 64 + 1));
    assert!(!map.any_in(8 * 65, 1024));
    map.mark(1023).unwrap(); // last region
    assert!(map.any_in(1016, 1024));
    assert!(!map.any_in(8 * 65, 1016));
    assert_eq!(map.mark(1024), Err(RegionMapError::UnitOutOfRange));
    assert_eq!(map.mark(u64::MAX), Err(RegionMapError::UnitOutOfRange));
    // Ranges reaching beyond the map are "maybe".
    assert!(map.any_in(1000, 1025));
    assert!(map.any_in(2000, u64::MAX));
    assert!(map.is_marked(u64::MAX));
}

#[test]
fn huge_shift_covers_everything() {
    let w = words(1);
    let map = RegionMap::new(&w, 63).unwrap();
    assert!(!map.any_in(0, u64::MAX));
    map.mark(u64::MAX).unwrap();
    assert!(map.any_in(1 << 63, u64::MAX));
    assert!(!map.any_in(0, 1 << 63));
}

#[test]
fn large_bio_spans_words() {
    // 2048-unit bio over regions of 16 units: 128 regions, 3 words touched when misaligned.
    let w = words(8);
    let map = RegionMap::new(&w, 4).unwrap();
    assert!(!map.any_in(100, 100 + 2048));
    map.mark(100 + 2047).unwrap();
    assert!(map.any_in(100, 100 + 2048));
    assert!(!map.any_in(100, 100 + 2047 - 16));
}

proptest! {
    #[test]
    fn no_false_negatives(
        shift in 0u32..6,
        nwords in 0usize..5,
        marked in proptest::collection::vec(0u64..1500, 0..20),
        queries in proptest::collection::vec((0u64..1600, 0u64..600), 30),
    ) {
        let w = words(nwords);
        let map = RegionMap::new(&w, shift).unwrap();
        let covered = (nwords as u64 * 64) << shift;
        let mut set = BTreeSet::new();
        for &unit in &marked {
            let result = map.mark(unit);
            if unit < covered {
                prop_assert_eq!(result, Ok(()));
                set.insert(unit);
            } else {
                prop_assert_eq!(result, Err(RegionMapError::UnitOutOfRange));
            }
        }
        for &(start, len) in &queries {
            let end = start + len;
            let truth = set.range(start..end).next().is_some();
            let answer = map.any_in(start, end);
            if truth {
                prop_assert!(answer);
            }
            // Exact at region granularity inside the map.
            if end <= covered && start < end {
                let first = start >> shift;
                let last = (end - 1) >> shift;
                let region_truth = set.iter().any(|&u| (first..=last).contains(&(u >> shift)));
                prop_assert_eq!(answer, region_truth);
            }
            prop_assert_eq!(map.is_marked(start), start >= covered || set.iter().any(|&u| u >> shift == start >> shift));
        }
    }
}
