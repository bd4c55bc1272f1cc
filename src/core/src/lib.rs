// SPDX-License-Identifier: GPL-2.0

//! Pure logic of the dm-remap-v4 target: everything that can be decided without touching a
//! kernel object.
//!
//! The same source files are compiled twice: by cargo on the host (this crate, where they are
//! unit- and property-tested) and into the kernel module, which includes each file below as a
//! submodule of its own `remap_core` module (see `src/dm_remap.rs`). Two rules follow:
//! - files refer to each other as `super::name`, never `crate::name`;
//! - nothing here allocates or depends on `std`: storage is always provided by the caller.

// Tests run with std on the host; the library itself never uses it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod table_line;
pub mod message;
pub mod status;
pub mod status_parse;
pub mod remap_table;
pub mod spare_alloc;
pub mod region_map;
pub mod crc32c;
pub mod metadata;
pub mod scan;
pub mod sysfs;
pub mod summary;
pub mod io_error;
pub mod inflight;
pub mod metadata_mode;
