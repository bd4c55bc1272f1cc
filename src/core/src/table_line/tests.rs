// SPDX-License-Identifier: GPL-2.0

use super::*;
use proptest::prelude::*;

fn args(words: &[&'static str]) -> Result<TableArgs<'static, &'static str>, TableError> {
    let words: &'static [&'static str] = Box::leak(words.to_vec().into_boxed_slice());
    parse_args(words)
}

#[test]
fn accepts_two_devices() {
    let a = args(&["/dev/vda", "/dev/vdb"]).unwrap();
    assert_eq!(*a.main, "/dev/vda");
    assert_eq!(*a.spare, "/dev/vdb");
    assert_eq!(a.features, Features::default());
}

#[test]
fn accepts_zero_feature_count() {
    assert!(args(&["8:0", "8:16", "0"]).is_ok());
}

#[test]
fn refuses_missing_devices() {
    assert_eq!(args(&[]), Err(TableError::NotEnoughArguments));
    assert_eq!(args(&["/dev/vda"]), Err(TableError::NotEnoughArguments));
}

#[test]
fn refuses_bad_feature_counts() {
    for count in ["x", "-1", "+1", "1", "2", " 0", "0x1", "", "99999999999999999999999"] {
        assert_eq!(args(&["a", "b", count]), Err(TableError::InvalidFeatureCount), "{count:?}");
    }
}

#[test]
fn refuses_unknown_feature() {
    assert_eq!(args(&["a", "b", "1", "foo"]), Err(TableError::UnknownFeature));
}

#[test]
fn accepts_format_once() {
    assert_eq!(args(&["a", "b", "1", "format"]).unwrap().features, Features { format: true });
    assert_eq!(args(&["a", "b", "2", "format", "format"]), Err(TableError::DuplicateFeature));
}

#[test]
fn refuses_trailing_words() {
    assert_eq!(args(&["a", "b", "0", "extra"]), Err(TableError::TooManyArguments));
}

#[test]
fn every_error_has_a_distinct_message() {
    use TableError::*;
    let all = [
        NotEnoughArguments, InvalidFeatureCount, TooManyArguments, UnknownFeature, DuplicateFeature, CannotOpenMain,
        CannotOpenSpare, SameDevice, TargetBeyondMain, SpareTooSmall, StartMisaligned,
        LengthMisaligned, SpareBlockSizeTooLarge, InvalidBlockSize, ReadOnlyTable, MainReadOnly,
        SpareReadOnly,
    ];
    for (i, a) in all.iter().enumerate() {
        assert!(!a.message().to_bytes().is_empty());
        for b in &all[i + 1..] {
            assert_ne!(a.message(), b.message());
        }
    }
}

#[test]
fn parse_decimal_is_strict() {
    assert_eq!(parse_decimal(b"0"), Some(0));
    assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_decimal(b"18446744073709551616"), None);
    assert_eq!(parse_decimal(b""), None);
    assert_eq!(parse_decimal(b"1 "), None);
    assert_eq!(parse_decimal(b"1a"), None);
}

fn geometry() -> Geometry {
    Geometry {
        target_begin: 0,
        target_len: 1 << 20,
        main_sectors: 1 << 20,
        main_block_size: 512,
        spare_sectors: 1 << 17,
        spare_block_size: 512,
        same_device: false,
        table_read_only: false,
        main_read_only: false,
        spare_read_only: false,
    }
}

#[test]
fn layout_reserves_the_metadata_area() {
    let l = validate_geometry(&geometry()).unwrap();
    assert_eq!(l.unit_sectors, 1);
    assert_eq!(l.spare_data_start, SPARE_METADATA_SECTORS);
    assert_eq!(l.spare_data_end, 1 << 17);
}

#[test]
fn layout_of_a_4k_main_counts_in_4k_units() {
    let g = Geometry { main_block_size: 4096, spare_block_size: 4096, ..geometry() };
    let l = validate_geometry(&g).unwrap();
    assert_eq!(l.unit_sectors, 8);
    assert_eq!(l.unit_shift, 3);
    assert_eq!(l.spare_data_start, SPARE_METADATA_SECTORS / 8);
    assert_eq!(l.spare_data_end, (1 << 17) / 8);
    // A 512-byte spare under a 4096-byte main is fine: it can address whole units.
    let g = Geometry { main_block_size: 4096, ..geometry() };
    assert!(validate_geometry(&g).is_ok());
}

#[test]
fn geometry_refusals() {
    let cases = [
        (Geometry { same_device: true, ..geometry() }, TableError::SameDevice),
        (Geometry { table_read_only: true, ..geometry() }, TableError::ReadOnlyTable),
        (Geometry { main_read_only: true, ..geometry() }, TableError::MainReadOnly),
        (Geometry { spare_read_only: true, ..geometry() }, TableError::SpareReadOnly),
        (Geometry { table_read_only: true, spare_read_only: true, ..geometry() }, TableError::ReadOnlyTable),
        (Geometry { target_len: (1 << 20) + 1, ..geometry() }, TableError::TargetBeyondMain),
        (Geometry { target_len: 0, ..geometry() }, TableError::LengthMisaligned),
        (Geometry { spare_sectors: MIN_SPARE_SECTORS - 1, ..geometry() }, TableError::SpareTooSmall),
        (Geometry { spare_block_size: 4096, ..geometry() }, TableError::SpareBlockSizeTooLarge),
        (Geometry { main_block_size: 4096, target_begin: 4, ..geometry() }, TableError::StartMisaligned),
        (Geometry { main_block_size: 4096, target_len: 12, ..geometry() }, TableError::LengthMisaligned),
        (Geometry { main_block_size: 1000, ..geometry() }, TableError::InvalidBlockSize),
        (Geometry { spare_block_size: 0, ..geometry() }, TableError::InvalidBlockSize),
        (Geometry { main_block_size: 8192, ..geometry() }, TableError::InvalidBlockSize),
    ];
    for (g, want) in cases {
        assert_eq!(validate_geometry(&g), Err(want), "{g:?}");
    }
}

proptest! {
    #[test]
    fn parse_never_panics(words in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 0..8)) {
        let refs: Vec<&[u8]> = words.iter().map(|w| w.as_slice()).collect();
        let _ = parse_args(&refs);
    }

    #[test]
    fn decimal_round_trips(n in any::<u64>()) {
        prop_assert_eq!(parse_decimal(n.to_string().as_bytes()), Some(n));
    }

    #[test]
    fn accepted_layouts_are_consistent(
        begin in 0u64..1 << 40, len in 0u64..1 << 40, main in 0u64..1 << 40,
        main_bs_log in 8u32..14, spare in 0u64..1 << 40, spare_bs_log in 8u32..14,
    ) {
        let g = Geometry {
            target_begin: begin, target_len: len, main_sectors: main, main_block_size: 1 << main_bs_log,
            spare_sectors: spare, spare_block_size: 1 << spare_bs_log, ..geometry()
        };
        if let Ok(l) = validate_geometry(&g) {
            let unit = u64::from(l.unit_sectors);
            prop_assert!(len <= main && len % unit == 0 && begin % unit == 0);
            prop_assert_eq!(1u64 << l.unit_shift, unit);
            prop_assert!(l.spare_data_start * unit >= SPARE_METADATA_SECTORS);
            prop_assert!(l.spare_data_end * unit <= spare);
            prop_assert!(l.spare_units() > 0);
        }
    }
}
