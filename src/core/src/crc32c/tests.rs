// SPDX-License-Identifier: GPL-2.0

//! Host tests of CRC32C: the catalogue's check value, and agreement with the `crc` crate's
//! CRC-32/ISCSI (a bytewise reference implementation) on random data of every length and
//! alignment and with arbitrary splits.

extern crate std;

use super::*;
use proptest::prelude::*;
use std::vec::Vec;

const REFERENCE: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Deterministic test data (splitmix64).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

#[test]
fn check_value() {
    assert_eq!(crc32c(b"123456789"), CHECK);
    assert_eq!(CHECK, 0xE306_9283);
    assert_eq!(REFERENCE.checksum(b"123456789"), CHECK);
}

#[test]
fn empty_and_known_vectors() {
    assert_eq!(crc32c(b""), 0);
    // RFC 3720 (iSCSI), appendix B.4.
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    let ascending: Vec<u8> = (0..32).collect();
    assert_eq!(crc32c(&ascending), 0x46DD_794E);
    let descending: Vec<u8> = (0..32).rev().collect();
    assert_eq!(crc32c(&descending), 0x113F_DB5C);
}

#[test]
fn every_length_and_offset_matches_reference() {
    let data = bytes(1, 300);
    for start in 0..9 {
        for end in start..data.len() {
            let piece = &data[start..end];
            assert_eq!(crc32c(piece), REFERENCE.checksum(piece), "{start}..{end}");
        }
    }
}

#[test]
fn many_random_blocks_match_reference() {
    for seed in 0..200 {
        let data = bytes(seed, 4096);
        assert_eq!(crc32c(&data), REFERENCE.checksum(&data));
    }
}

#[test]
fn default_is_new() {
    assert_eq!(Crc32c::default(), Crc32c::new());
    assert_eq!(Crc32c::new().finish(), 0);
}

proptest! {
    #[test]
    fn matches_reference(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
        prop_assert_eq!(crc32c(&data), REFERENCE.checksum(&data));
    }

    #[test]
    fn incremental_equals_one_shot(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut crc = Crc32c::new();
        let mut last = 0;
        for cut in cuts {
            crc = crc.update(&data[last..cut]);
            last = cut;
        }
        crc = crc.update(&data[last..]);
        prop_assert_eq!(crc.finish(), crc32c(&data));
    }
}
