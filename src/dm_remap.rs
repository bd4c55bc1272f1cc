// SPDX-License-Identifier: GPL-2.0

//! dm-remap: a device-mapper target (`dm-remap-v4`) that keeps a disk with failing sectors
//! usable by redirecting failed units to a spare device.
//!
//! Layout: `dm/` is the safe abstraction over the kernel's device-mapper interface (all
//! `unsafe` lives there); `remap.rs` (routing), `repair.rs` (the worker), `messages.rs`,
//! `table.rs` (the RCU remap table) are the target, in safe Rust; `remap_core` is the pure
//! logic shared with the host crate in `src/core` (tested there with cargo).

use kernel::prelude::*;

mod dm;
mod health;
mod inflight;
mod messages;
mod module_state;
mod persist;
mod remap;
mod repair;
mod scan;
mod stats;
mod table;

/// The pure core (`src/core/src`), compiled into the module file by file.
#[forbid(unsafe_code)]
#[allow(unreachable_pub, dead_code, unused_imports)]
#[path = "core/src"]
mod remap_core {
    #[path = "crc32c.rs"]
    pub mod crc32c;
    #[path = "inflight.rs"]
    pub mod inflight;
    #[path = "io_error.rs"]
    pub mod io_error;
    #[path = "message.rs"]
    pub mod message;
    #[path = "metadata.rs"]
    pub mod metadata;
    #[path = "metadata_mode.rs"]
    pub mod metadata_mode;
    #[path = "region_map.rs"]
    pub mod region_map;
    #[path = "remap_table.rs"]
    pub mod remap_table;
    #[path = "scan.rs"]
    pub mod scan;
    #[path = "spare_alloc.rs"]
    pub mod spare_alloc;
    #[path = "status.rs"]
    pub mod status;
    #[path = "summary.rs"]
    pub mod summary;
    #[path = "sysfs.rs"]
    pub mod sysfs;
    #[path = "table_line.rs"]
    pub mod table_line;
}

compat_module! {
    type: DmRemapModule,
    name: "dm_remap",
    author: "dm-remap developers",
    description: "Device-mapper target remapping failing sectors to a spare device",
    license: "GPL",
    alias: ["dm-dm-remap-v4"],
}

modinfo!(DM_REMAP_MODINFO_VERSION, "version", "4.0.0");

struct DmRemapModule {
    _target: dm::Registration<remap::Remap>,
}

impl kernel::Module for DmRemapModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        Ok(Self { _target: dm::Registration::new(module)? })
    }
}
