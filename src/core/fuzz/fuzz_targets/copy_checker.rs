// SPDX-License-Identifier: GPL-2.0

//! Fuzz target `copy_checker`: see `bodies.rs` for the input format and the properties checked.

#![no_main]

use dm_remap_core::{crc32c, metadata as md};
use libfuzzer_sys::fuzz_target;

#[path = "../bodies.rs"]
mod bodies;

fuzz_target!(|data: &[u8]| {
    let _ = bodies::copy_checker(data);
});
