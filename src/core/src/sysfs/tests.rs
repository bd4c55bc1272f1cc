// SPDX-License-Identifier: GPL-2.0

use super::*;
use crate::status::sample_counters;
use std::collections::BTreeSet;
use std::string::String;

fn value(attr: DeviceAttr) -> String {
    let mut s = String::new();
    attr.write_value(&mut s, &sample_counters()).unwrap();
    s
}

#[test]
fn every_device_file_holds_one_value_and_a_newline() {
    let expected = [
        ("remaps", "3"),
        ("pending", "1"),
        ("spare_used", "4"),
        ("spare_total", "1000"),
        ("read_errors", "5"),
        ("write_errors", "6"),
        ("remap_failures", "7"),
        ("health", "degraded"),
        ("metadata_seq", "42"),
        ("metadata_mode", "read_only"),
        ("scan_state", "scanning"),
        ("scan_progress", "50"),
        ("scan_position", "500"),
        ("scan_passes", "2"),
        ("scan_errors", "11"),
        ("scan_last_pass_s", "12"),
        ("scan_rate_kib", "4096"),
        ("scan_interval_s", "86400"),
    ];
    for (name, v) in expected {
        let attr = DEVICE_ATTRS.iter().find(|a| a.file_name().to_str().unwrap() == name).unwrap();
        assert_eq!(value(*attr), format!("{v}\n"), "{name}");
    }
    assert_eq!(value(DeviceAttr::Name), "");
}

#[test]
fn names_are_unique() {
    let device: BTreeSet<_> = DEVICE_ATTRS.iter().map(|a| a.file_name()).collect();
    assert_eq!(device.len(), DEVICE_ATTRS.len());
    let module: BTreeSet<_> = MODULE_ATTRS.iter().map(|a| a.file_name()).collect();
    assert_eq!(module.len(), MODULE_ATTRS.len());
}

#[test]
fn only_settings_are_writable_and_they_validate() {
    for attr in DEVICE_ATTRS {
        assert_eq!(attr.writable(), attr.parse(b"100\n").is_some(), "{attr:?}");
        assert_eq!(attr.parse(b"garbage"), None);
    }
    assert_eq!(DeviceAttr::ScanRateKib.parse(b"8192\n"), Some(Setting::ScanRateKib(8192)));
    assert_eq!(DeviceAttr::ScanIntervalS.parse(b"0"), None);
    assert_eq!(ModuleAttr::ScanEnabled.parse(b"0\n"), Some(Setting::ScanEnabled(false)));
    assert_eq!(ModuleAttr::ScanEnabled.parse(b"1"), Some(Setting::ScanEnabled(true)));
    assert_eq!(ModuleAttr::ScanEnabled.parse(b"2"), None);
    assert_eq!(ModuleAttr::Devices.parse(b"1"), None);
    for attr in MODULE_ATTRS {
        assert_eq!(attr.writable(), attr.parse(b"1\n").is_some() || attr.parse(b"64\n").is_some(), "{attr:?}");
    }
}

#[test]
fn module_values() {
    let v = ModuleValues {
        version: "4.0.0",
        devices: 2,
        remaps_made: 3,
        read_errors: 4,
        write_errors: 5,
        remap_failures: 6,
        scan_enabled: true,
        scan_rate_kib: 100,
        scan_interval_s: 7,
    };
    let out: Vec<String> = MODULE_ATTRS
        .iter()
        .map(|a| {
            let mut s = String::new();
            a.write_value(&mut s, &v).unwrap();
            s
        })
        .collect();
    assert_eq!(out, ["4.0.0\n", "2\n", "3\n", "4\n", "5\n", "6\n", "1\n", "100\n", "7\n"]);
}
