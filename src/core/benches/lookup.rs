// SPDX-License-Identifier: GPL-2.0

//! Nanoseconds per remap-table lookup (hit and miss) at 1k, 100k and 1M entries, at load 1/2
//! (right after a resize) and 3/4 (just before the next one), plus one region-map query for a
//! 1 MiB bio. Run with `cargo bench -p dm-remap-core --bench lookup`.

use core::sync::atomic::AtomicU64;
use core::time::Duration;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dm_remap_core::region_map::{shift_for, words_for, RegionMap};
use dm_remap_core::remap_table::{capacity_for, insert_or_update, lookup, Counts, Entry, Slot};

/// Deterministic pseudo-random units (xorshift64*), spread over a 4 TiB device of 512-byte
/// units, clustered in runs of 8 like failing sectors tend to be.
fn units(count: usize, seed: u64) -> Vec<u64> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let base = state.wrapping_mul(0x2545_f491_4f6c_dd1d) % (1 << 33);
        for offset in 0..8 {
            if out.len() < count {
                out.push(base + offset);
            }
        }
    }
    out
}

/// A table holding `count` entries at the given load (slots = count / load).
fn table(count: usize, load: f64) -> (Vec<Slot>, Vec<u64>) {
    let capacity = ((count as f64 / load) as usize).max(capacity_for(0));
    let slots: Vec<Slot> = (0..capacity).map(|_| Slot::new()).collect();
    let mut counts = Counts::new();
    let mut present = Vec::with_capacity(count);
    for unit in units(count * 2, 0x1234_5678) {
        if present.len() == count {
            break;
        }
        if lookup(&slots, unit).is_none() {
            insert_or_update(
                &slots,
                &mut counts,
                unit,
                Entry::Remapped {
                    spare: unit & 0xffff,
                },
            )
            .unwrap();
            present.push(unit);
        }
    }
    // Visit the keys in an order unrelated to insertion.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..present.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        present.swap(i, (state >> 33) as usize % (i + 1));
    }
    (slots, present)
}

fn bench_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("remap_table_lookup");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for &count in &[1_000usize, 100_000, 1_000_000] {
        for &(load, name) in &[(0.5, "load_1_2"), (0.75, "load_3_4")] {
            let (slots, present) = table(count, load);
            // As many absent units as present ones, so that misses touch as much memory.
            let absent: Vec<u64> = units(count.max(4096), 0xdead_beef)
                .into_iter()
                .map(|u| u + (1 << 34))
                .collect();
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new(format!("hit_{name}"), count), |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    let unit = present[i % present.len()];
                    black_box(lookup(black_box(&slots), unit))
                })
            });
            let mut j = 0usize;
            group.bench_function(BenchmarkId::new(format!("miss_{name}"), count), |b| {
                b.iter(|| {
                    j = j.wrapping_add(1);
                    let unit = absent[j % absent.len()];
                    black_box(lookup(black_box(&slots), unit))
                })
            });
        }
    }
    group.finish();
}

fn bench_region_map(c: &mut Criterion) {
    // 4 TiB of 512-byte units in a 64 KiB map; 1k marked units; a 2048-unit (1 MiB) bio.
    let device_units = 1u64 << 33;
    let shift = shift_for(device_units, 64 * 1024);
    let words: Vec<AtomicU64> = (0..words_for(device_units, shift).unwrap())
        .map(|_| AtomicU64::new(0))
        .collect();
    let map = RegionMap::new(&words, shift).unwrap();
    for unit in units(1000, 0x1234_5678) {
        map.mark(unit).unwrap();
    }
    let starts = units(4096, 0xfeed);
    let mut i = 0usize;
    c.bench_function("region_map_any_in_1MiB_bio", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let start = starts[i % starts.len()];
            black_box(map.any_in(start, start + 2048))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench_lookup, bench_region_map
}
criterion_main!(benches);
