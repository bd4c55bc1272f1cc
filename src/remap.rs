// SPDX-License-Identifier: GPL-2.0

//! The dm-remap-v4 target: constructor, bio mapping, status.
//!
//! Table line (see `docs/table-line.md`):
//!
//! ```text
//! <start> <len> dm-remap-v4 <main_dev> <spare_dev> [<#feature_args> <feature_arg>...]
//! ```
//!
//! Target sector `s` (relative to `<start>`) is main sector `s`. Flushes go to both devices,
//! since remapped data lives on the spare; discards and write-zeroes go to main.

#![forbid(unsafe_code)]

use crate::dm::{
    Arg, Bio, CtrContext, CtrError, DeviceVisitor, DmDev, MapResult, QueueLimits, ResultBuffer,
    StatusKind, Target, TargetInfo,
};
use crate::remap_core::status::{self, Counters, Health};
use crate::remap_core::table_line::{self, Features, Geometry, Layout, TableError};
use core::ffi::CStr;
use kernel::ffi::c_int;
use core::fmt::Write;
use kernel::prelude::*;

/// Clone index of the flush sent to the main device; the other one goes to the spare.
const FLUSH_BIO_MAIN: u32 = 0;

/// One dm-remap-v4 target instance.
pub(crate) struct Remap {
    main: DmDev,
    spare: DmDev,
    features: Features,
    layout: Layout,
}

fn refuse(e: TableError) -> CtrError {
    CtrError::invalid(e.message())
}

fn open(ctx: &mut CtrContext, path: &Arg<'_>, e: TableError) -> Result<DmDev, CtrError> {
    ctx.get_device(path).map_err(|errno| CtrError { message: e.message(), errno })
}

#[vtable]
impl Target for Remap {
    const NAME: &'static CStr = c"dm-remap-v4";
    const VERSION: [u32; 3] = [4, 0, 0];

    fn ctr(ctx: &mut CtrContext, args: &[Arg<'_>]) -> Result<Self, CtrError> {
        let table = table_line::parse_args(args).map_err(refuse)?;
        // Devices are put back by DmDev's drop on every error path below.
        let main = open(ctx, table.main, TableError::CannotOpenMain)?;
        let spare = open(ctx, table.spare, TableError::CannotOpenSpare)?;
        let layout = table_line::validate_geometry(&Geometry {
            target_begin: ctx.info().begin(),
            target_len: ctx.info().len(),
            main_sectors: main.nr_sectors(),
            main_block_size: main.logical_block_size(),
            spare_sectors: spare.nr_sectors(),
            spare_block_size: spare.logical_block_size(),
            same_device: main.devt() == spare.devt(),
        })
        .map_err(refuse)?;
        ctx.set_num_flush_bios(2);
        ctx.set_num_discard_bios(1);
        ctx.set_num_write_zeroes_bios(1);
        Ok(Self { main, spare, features: table.features, layout })
    }

    fn map(&self, ti: &TargetInfo, bio: &mut Bio) -> MapResult {
        if bio.is_preflush() && bio.sectors() == 0 {
            let dev = if bio.target_bio_nr() == FLUSH_BIO_MAIN { &self.main } else { &self.spare };
            bio.set_dev(dev);
            return MapResult::Remapped;
        }
        // dm only hands us bios inside the target, so this cannot underflow; refuse if it did.
        let Some(sector) = bio.sector().checked_sub(ti.begin()) else {
            return MapResult::Kill;
        };
        bio.set_dev(&self.main);
        bio.set_sector(sector);
        MapResult::Remapped
    }

    fn status(&self, _ti: &TargetInfo, kind: StatusKind, out: &mut ResultBuffer<'_>) {
        // A full buffer cuts the line; dm asks again with a larger one, so the error is moot.
        let _ = match kind {
            StatusKind::Info => status::write_info(out, &self.counters()),
            StatusKind::Table => {
                status::write_table(out, self.main.name(), self.spare.name(), &self.features)
            }
            StatusKind::Ima => write!(
                out,
                "target_name={},target_version=4.0.0,main_device={},spare_device={};",
                "dm-remap-v4",
                self.main.name(),
                self.spare.name()
            ),
        };
    }

    fn iterate_devices(&self, ti: &TargetInfo, visitor: &mut DeviceVisitor) -> c_int {
        match visitor.visit(ti, &self.main, 0, ti.len()) {
            0 => visitor.visit(ti, &self.spare, 0, self.spare.nr_sectors()),
            stop => stop,
        }
    }

    fn io_hints(&self, _ti: &TargetInfo, limits: &mut QueueLimits) {
        // A bio must cover whole remap units so that no remap ever needs read-modify-write.
        limits.raise_logical_block_size(self.layout.unit_sectors.saturating_mul(table_line::SECTOR_SIZE));
    }
}

impl Remap {
    fn counters(&self) -> Counters {
        Counters {
            unit_sectors: self.layout.unit_sectors,
            remaps: 0,
            pending: 0,
            spare_used: 0,
            spare_total: self.layout.spare_units(),
            read_errors: 0,
            write_errors: 0,
            remap_failures: 0,
            health: Health::Ok,
        }
    }
}
