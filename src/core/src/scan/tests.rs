// SPDX-License-Identifier: GPL-2.0

use super::*;
use proptest::prelude::*;

#[test]
fn a_run_reads_what_its_budget_allows() {
    // 16 MiB/s for 100 ms = 1.6 MiB = 25 chunks of 64 KiB.
    assert_eq!(chunks_per_run(16 * 1024), 25);
    // A slow budget still makes progress, one chunk at a time.
    assert_eq!(chunks_per_run(64), 1);
}

#[test]
fn waits_cost_the_bytes_read() {
    // 64 KiB at 64 KiB/s: a second.
    assert_eq!(delay_after_ms(128, 64, false), 1000);
    assert_eq!(delay_after_ms(128, 64, true), 4000);
    // Never zero: the work item always yields.
    assert_eq!(delay_after_ms(1, 1024 * 1024, false), 1);
}

#[test]
fn errors_shorten_the_interval_eightfold() {
    assert_eq!(delay_between_passes_ms(800, false), 800_000);
    assert_eq!(delay_between_passes_ms(800, true), 100_000);
    assert_eq!(delay_between_passes_ms(1, true), 1000);
    assert_eq!(delay_between_passes_ms(INTERVAL_S_RANGE.1, false), 2_592_000_000);
}

#[test]
fn chunks_are_aligned_and_end_at_the_target() {
    assert_eq!(next_chunk(0, 1000), Some((0, 128)));
    assert_eq!(next_chunk(100, 1000), Some((100, 128)));
    assert_eq!(next_chunk(896, 1000), Some((896, 1000)));
    assert_eq!(next_chunk(1000, 1000), None);
    assert_eq!(next_chunk(0, 0), None);
}

#[test]
fn settings_parse_as_echo_writes_them() {
    assert_eq!(parse_setting(b"4096\n", RATE_KIB_RANGE), Some(4096));
    assert_eq!(parse_setting(b"4096", RATE_KIB_RANGE), Some(4096));
    for bad in [&b""[..], b"\n", b"-1", b"12x", b" 12", b"12\n\n", b"63", b"99999999999", b"0x10"] {
        assert_eq!(parse_setting(bad, RATE_KIB_RANGE), None, "{:?}", core::str::from_utf8(bad));
    }
    assert_eq!(parse_setting(b"0", INTERVAL_S_RANGE), None);
    assert_eq!(parse_setting(b"2592001", INTERVAL_S_RANGE), None);
}

#[test]
fn percent_rounds_down_and_saturates() {
    assert_eq!(percent(0, 0), 0);
    assert_eq!(percent(1, 3), 33);
    assert_eq!(percent(5, 3), 100);
    assert_eq!(percent(u64::MAX, u64::MAX), 100);
}

proptest! {
    /// A pass visits every sector exactly once, in order.
    #[test]
    fn a_pass_covers_the_target(total in 0u64..100_000, start in 0u64..1000) {
        let mut position = start.min(total);
        let mut covered = position;
        while let Some((s, e)) = next_chunk(position, total) {
            prop_assert_eq!(s, covered);
            prop_assert!(e > s && e - s <= CHUNK_SECTORS);
            covered = e;
            position = e;
        }
        prop_assert_eq!(covered, total);
    }

    /// Reading `chunks_per_run` chunks then waiting `delay_after_ms` never exceeds the rate.
    #[test]
    fn the_budget_holds(rate in RATE_KIB_RANGE.0..=RATE_KIB_RANGE.1, busy: bool) {
        let sectors = chunks_per_run(rate) * CHUNK_SECTORS;
        let ms = u64::from(delay_after_ms(sectors, rate, busy));
        // KiB read per second of waiting, allowing the 1 ms rounding of the wait.
        prop_assert!(sectors / 2 * 1000 <= u64::from(rate) * (ms + 1));
    }
}

proptest! {
    /// The overflow-free comparison agrees with 128-bit arithmetic.
    #[test]
    fn at_least_percent_is_exact(part: u64, total: u64, pct in 0u64..=100) {
        let exact = u128::from(part) * 100 >= u128::from(total) * u128::from(pct);
        prop_assert_eq!(at_least_percent(part, total, pct), exact);
    }

    #[test]
    fn percent_matches_wide_arithmetic(done: u64, total in 1u64..=(1 << 56)) {
        let exact = u128::from(done.min(total)) * 100 / u128::from(total);
        prop_assert_eq!(u128::from(percent(done, total)), exact);
    }
}
