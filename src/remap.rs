// SPDX-License-Identifier: GPL-2.0

//! The dm-remap-v4 target: constructor, bio routing, completion, status.
//!
//! Table line (see `docs/table-line.md`):
//!
//! ```text
//! <start> <len> dm-remap-v4 <main_dev> <spare_dev> [<#feature_args> <feature_arg>...]
//! ```
//!
//! Routing (`map`): target sector `s` is main sector `s` unless its unit is in the remap
//! table. A bio that touches no remapped unit goes to main whole; otherwise it is cut so that
//! each piece goes wholly to main or wholly to one spare unit. A write to a pending unit is
//! deferred to the worker, which gives it a spare unit. Flushes go to both devices.
//!
//! Errors (`end_io`, then the worker in `repair.rs`): a failed write is retried unit by unit
//! and the failing units are remapped; a failed read is narrowed to its failing units, which
//! are marked pending, and the error is returned. Only statuses that may mean the medium
//! failed (`BLK_STS_MEDIUM`, `BLK_STS_IOERR`) go that way; the others are returned as they are
//! (`remap_core::io_error`).

#![forbid(unsafe_code)]

use crate::dm::{
    Arg, Bio, BioOp, BioSet, BlkStatus, Claim, CtrContext, DeferredBio, DeviceVisitor, DmDev, EndIo,
    FileSpec, MapResult, DM_NAME_LEN, QueueLimits, RateLimit, RcuReadGuard, ResultBuffer, SharedClaim, StatusKind,
    Target, TargetError, TargetInfo,
};
use crate::health::HealthWatch;
use crate::module_state;
use crate::remap_core::summary::{self, DeviceNames};
use crate::remap_core::sysfs::{DeviceAttr, ModuleAttr, DEVICE_ATTRS, MODULE_ATTRS};
use crate::scan::Scanner;
use crate::inflight::Inflight;
use crate::remap_core::inflight::Epoch;
use crate::persist;
use crate::remap_core::metadata::MainFingerprint;
use crate::remap_core::remap_table::Entry;
use crate::remap_core::status::{self, Counters, Health};
use crate::remap_core::table_line::{self, Features, Geometry, Layout, TableError};
use crate::stats::Stats;
use crate::table::RemapTable;
use core::ffi::CStr;
use core::fmt::Write;
use kernel::ffi::c_int;
use kernel::prelude::*;

/// Clone index of the flush sent to the main device; the other one goes to the spare.
const FLUSH_BIO_MAIN: u32 = 0;

/// Most units `map` examines for one bio; the rest of a longer bio comes back in a new call.
/// Bounds the work of a huge discard in a region with remaps.
const MAX_UNITS_PER_MAP: u64 = 2048;

/// Clones the worker's bio set keeps in reserve.
const BIOSET_POOL: u32 = 16;

/// One dm-remap-v4 target instance.
pub(crate) struct Remap {
    pub(crate) main: DmDev,
    pub(crate) spare: DmDev,
    features: Features,
    pub(crate) layout: Layout,
    /// The spare's remap table, shared with the other table of this dm device that names the
    /// spare (the live one, or one loaded to replace it), and claiming the spare: no other
    /// dm-remap-v4 device may use it while we do.
    pub(crate) table: SharedClaim<RemapTable>,
    pub(crate) stats: Stats,
    /// The bios and worker I/O in flight, which moves of units wait for.
    pub(crate) inflight: Inflight,
    pub(crate) bioset: BioSet,
    pub(crate) log_limit: RateLimit,
    pub(crate) scan: Scanner,
    /// Health and spare use as last reported, for events.
    pub(crate) watch: HealthWatch,
    /// Log lines about health changes (rare, so not drowned by the per-remap lines).
    health_log: RateLimit,
    /// Length of the target in sectors (what the scan covers).
    target_len: u64,
}

/// The sysfs files of [`DEVICE_ATTRS`], as the DM layer takes them.
const DEVICE_FILES: [FileSpec; DEVICE_ATTRS.len()] = {
    let mut out = [FileSpec { name: c"", writable: false }; DEVICE_ATTRS.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = FileSpec { name: DEVICE_ATTRS[i].file_name(), writable: DEVICE_ATTRS[i].writable() };
        i += 1;
    }
    out
};

/// The sysfs files of [`MODULE_ATTRS`].
const MODULE_FILES: [FileSpec; MODULE_ATTRS.len()] = {
    let mut out = [FileSpec { name: c"", writable: false }; MODULE_ATTRS.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = FileSpec { name: MODULE_ATTRS[i].file_name(), writable: MODULE_ATTRS[i].writable() };
        i += 1;
    }
    out
};

/// Where `map` sent a bio, for `end_io` to know which device failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Route {
    /// To the main device.
    #[default]
    Main,
    /// To one unit of the spare device.
    Spare,
    /// An empty flush, to either device.
    Flush,
}

/// What the target keeps with each bio.
#[derive(Default)]
pub(crate) struct PerBio {
    route: Route,
    /// The epoch the bio was counted in ([`Inflight`]), until `end_io`.
    epoch: Option<Epoch>,
    /// A flush or FUA write that completed while metadata changes were not yet committed:
    /// the worker commits before completing it.
    pub(crate) needs_commit: bool,
}

fn refuse(e: TableError) -> TargetError {
    TargetError::invalid(e.message())
}

fn open(ctx: &mut CtrContext, path: &Arg<'_>, e: TableError) -> Result<DmDev, TargetError> {
    ctx.get_device(path).map_err(|errno| TargetError { message: e.message(), errno })
}

fn no_memory(_: Error) -> TargetError {
    TargetError { message: c"Cannot allocate remap table", errno: ENOMEM }
}

#[vtable]
impl Target for Remap {
    const NAME: &'static CStr = c"dm-remap-v4";
    const VERSION: [u32; 3] = [4, 0, 0];
    type PerBio = PerBio;

    fn ctr(ctx: &mut CtrContext, args: &[Arg<'_>]) -> Result<Self, TargetError> {
        let line = table_line::parse_args(args).map_err(refuse)?;
        // Devices are put back by DmDev's drop on every error path below.
        let main = open(ctx, line.main, TableError::CannotOpenMain)?;
        let spare = open(ctx, line.spare, TableError::CannotOpenSpare)?;
        // Before anything is read or written on the spare.
        let claim = ctx.claim_device::<RemapTable>(&spare).map_err(|errno| TargetError {
            message: c"Spare device is in use by another dm-remap-v4 target",
            errno,
        })?;
        let layout = table_line::validate_geometry(&Geometry {
            target_begin: ctx.info().begin(),
            target_len: ctx.info().len(),
            main_sectors: main.nr_sectors(),
            main_block_size: main.logical_block_size(),
            spare_sectors: spare.nr_sectors(),
            spare_block_size: spare.logical_block_size(),
            same_device: main.devt() == spare.devt(),
            table_read_only: !ctx.table_writable(),
            main_read_only: main.read_only(),
            spare_read_only: spare.read_only(),
        })
        .map_err(refuse)?;
        let (id_kind, id) = main.unique_id();
        let fingerprint = MainFingerprint {
            main_sectors: main.nr_sectors(),
            block_size: main.logical_block_size(),
            id_kind,
            id,
        };
        let (table, metadata, repaired) = match claim {
            // A table loaded to replace this device's live one: the live table's in-core state
            // is the truth (it may have remapped since the spare was last committed), and the
            // spare is not read or written here (docs/design.md, "Table reload").
            Claim::Joined(table) => {
                let (metadata, made_for) = table.writer().metadata_identity();
                if !made_for.matches(&fingerprint) {
                    return Err(TargetError::invalid(c"Spare belongs to another main device"));
                }
                if metadata.unit_sectors() != layout.unit_sectors {
                    return Err(TargetError::invalid(c"Spare was formatted for another remap unit"));
                }
                if line.features.format {
                    return Err(TargetError::invalid(c"Cannot format a spare the live table uses"));
                }
                (table, metadata, 0)
            }
            Claim::First(claim) => {
                let mut uuid = [0u8; 16];
                crate::dm::random_bytes(&mut uuid);
                let opened = persist::open(&spare, fingerprint, layout.unit_sectors, uuid, line.features.format)
                    .map_err(|e| TargetError { message: e.message, errno: e.errno })?;
                if opened.formatted {
                    pr_info!("{}: formatted the spare's metadata\n", ctx.info().device_name());
                } else if opened.repaired > 0 {
                    pr_warn!(
                        "{}: rewrote {} damaged or stale metadata copies\n",
                        ctx.info().device_name(),
                        opened.repaired
                    );
                }
                let metadata = *opened.image.layout();
                if opened.image.needs_check() {
                    pr_warn!(
                        "{}: spare {} has needs_check set (a metadata commit failed): metadata mode read_only; remove the device and run `dm-remap repair /dev/block/{}`\n",
                        ctx.info().device_name(),
                        spare.name(),
                        spare.name()
                    );
                }
                let main_units = layout.unit_of(main.nr_sectors());
                let remap_table = RemapTable::new(main_units, opened.image, &opened.pending)
                    .map_err(|_| TargetError::invalid(c"Metadata names a unit twice or beyond main"))?;
                let remap_table = KBox::new(remap_table, GFP_KERNEL).map_err(|_| no_memory(ENOMEM))?;
                (claim.share(remap_table), metadata, u64::from(opened.repaired))
            }
        };
        // The data area is where the metadata says it is (it scales with the spare).
        let layout = Layout {
            spare_data_start: metadata.data_start(),
            spare_data_end: metadata.data_end(),
            ..layout
        };
        let bioset = BioSet::new(BIOSET_POOL).map_err(no_memory)?;
        let log_limit = RateLimit::new().map_err(no_memory)?;
        let scan = Scanner::new().map_err(no_memory)?;
        let health_log = RateLimit::new().map_err(no_memory)?;
        ctx.set_num_flush_bios(2);
        ctx.set_num_discard_bios(1);
        ctx.set_num_write_zeroes_bios(1);
        let target = Self {
            main,
            spare,
            features: line.features,
            layout,
            table,
            stats: Stats::default(),
            inflight: Inflight::new().map_err(no_memory)?,
            bioset,
            log_limit,
            scan,
            watch: HealthWatch::default(),
            health_log,
            target_len: ctx.info().len(),
        };
        target.stats.metadata_repairs.store(repaired, core::sync::atomic::Ordering::Relaxed);
        target.publish_metadata_state(&target.table.writer());
        target.watch.prime(&target.counters());
        Ok(target)
    }

    fn map(&self, ti: &TargetInfo, bio: &mut Bio, pb: &mut PerBio) -> MapResult {
        if bio.is_preflush() && bio.sectors() == 0 {
            pb.route = Route::Flush;
            let dev = if bio.target_bio_nr() == FLUSH_BIO_MAIN { &self.main } else { &self.spare };
            bio.set_dev(dev);
            return MapResult::Remapped;
        }
        // dm only hands us bios inside the target, so this cannot underflow; refuse if it did.
        let Some(start) = bio.sector().checked_sub(ti.begin()) else {
            return MapResult::Kill;
        };
        self.scan.note_io();
        let op = bio.op();
        // Counted before the lookup, reads too (a read of a spare unit must end before an
        // `unremap` frees the unit): see `Inflight`.
        pb.epoch = Some(self.inflight.enter());
        let first = self.layout.unit_of(start);
        let units = self.layout.unit_of(u64::from(bio.sectors())).max(1);
        // A write-zeroes writes like a write: it heals a pending unit too.
        let writes = op == BioOp::Write || bio.is_write_zeroes();
        match self.route(first, units, writes) {
            Routing::Main(n) => {
                if n < units {
                    // n < units <= sectors, so the sector count fits.
                    bio.accept_partial(u32::try_from(self.layout.sector_of(n)).unwrap_or(u32::MAX));
                }
                pb.route = Route::Main;
                bio.set_dev(&self.main);
                bio.set_sector(start);
                MapResult::Remapped
            }
            Routing::Spare(spare_unit) => {
                bio.accept_partial(self.layout.unit_sectors);
                pb.route = Route::Spare;
                bio.set_dev(&self.spare);
                bio.set_sector(self.layout.sector_of(spare_unit));
                MapResult::Remapped
            }
            Routing::Worker => {
                bio.accept_partial(self.layout.unit_sectors);
                // The worker counts its own I/O; stop counting the bio.
                if let Some(epoch) = pb.epoch.take() {
                    self.inflight.exit(epoch);
                }
                MapResult::Defer
            }
        }
    }

    fn end_io(&self, ti: &TargetInfo, bio: &mut Bio, status: BlkStatus, pb: &mut PerBio) -> EndIo {
        if let Some(epoch) = pb.epoch.take() {
            self.inflight.exit(epoch);
        }
        if status.is_ok() {
            if pb.route == Route::Spare && bio.op() == BioOp::Write {
                self.stats.spare_write_ok();
            }
            // Remaps made before a flush or FUA write completes must be durable when it does.
            let durable_point = pb.route == Route::Flush || (bio.is_fua() && bio.op() == BioOp::Write);
            if durable_point && self.table.is_dirty() {
                pb.needs_commit = true;
                return EndIo::Defer;
            }
            return EndIo::Done(status);
        }
        let op = bio.op();
        match op {
            BioOp::Read => self.stats.read_error(),
            _ => self.stats.write_error(),
        }
        // Only a status that may mean the medium failed is the worker's: the others (timeout,
        // transport, offline, no space, ...) are returned as they are and use no spare
        // (`remap_core::io_error`, docs/design.md "Which errors remap").
        if !status.may_be_medium() {
            if pb.route == Route::Spare {
                Stats::count(&self.stats.spare_errors);
                if op == BioOp::Write {
                    let _ = self.stats.spare_write_failed(status.raw());
                }
            }
            return EndIo::Done(status);
        }
        match (pb.route, op) {
            // A failed write is never failed upward before the worker tried to remap it.
            (Route::Main | Route::Spare, BioOp::Write) => EndIo::Defer,
            // A failed read of main: the worker narrows it to the failing units.
            (Route::Main, BioOp::Read) => EndIo::Defer,
            (Route::Spare, _) => {
                Stats::count(&self.stats.spare_errors);
                if self.log_limit.allow() {
                    pr_err!("{}: spare device read error at sector {}\n", ti.device_name(), bio.sector());
                }
                EndIo::Done(status)
            }
            _ => EndIo::Done(status),
        }
    }

    fn work(&self, ti: &TargetInfo, bio: DeferredBio<'_, PerBio>) {
        if bio.per_bio().needs_commit {
            let status = if self.commit(ti).is_ok() { BlkStatus::OK } else { BlkStatus::IOERR };
            bio.complete(status);
        } else {
            self.finish_deferred(ti, bio);
            self.check_health(ti);
        }
    }

    fn presuspend(&self, _ti: &TargetInfo) {
        // dm waits for a running message before it suspends: a move waiting for I/O gives up.
        self.inflight.cancel_waits(true);
    }

    fn presuspend_undo(&self, _ti: &TargetInfo) {
        self.inflight.cancel_waits(false);
    }

    fn postsuspend(&self, ti: &TargetInfo) {
        // The layer stopped the scan; the device is quiesced: make everything durable
        // (dm-thin does the same).
        self.scan_suspend();
        let _ = self.commit(ti);
    }

    fn resume(&self, ti: &TargetInfo) {
        self.inflight.cancel_waits(false);
        self.scan_resume(ti);
    }

    fn background(&self, ti: &TargetInfo) -> Option<u32> {
        self.scan_run(ti)
    }

    const DEVICE_FILES: &'static [FileSpec] = &DEVICE_FILES;
    const MODULE_FILES: &'static [FileSpec] = &MODULE_FILES;

    fn show(&self, ti: &TargetInfo, index: usize, out: &mut ResultBuffer<'_>) {
        // A page always holds one value; a write error cannot happen.
        let _ = match DEVICE_ATTRS.get(index) {
            Some(DeviceAttr::Name) => writeln!(out, "{}", ti.mapper_name(&mut [0; DM_NAME_LEN])),
            Some(attr) => attr.write_value(out, &self.counters()),
            None => Ok(()),
        };
    }

    fn store(&self, _ti: &TargetInfo, index: usize, input: &[u8]) -> Result<(), Error> {
        let setting = DEVICE_ATTRS.get(index).and_then(|a| a.parse(input)).ok_or(EINVAL)?;
        self.scan.apply(setting);
        Ok(())
    }

    fn module_show(index: usize, devices: u32, out: &mut ResultBuffer<'_>) {
        if let Some(attr) = MODULE_ATTRS.get(index) {
            let _ = attr.write_value(out, &module_state::values(devices));
        }
    }

    fn module_store(index: usize, input: &[u8]) -> Result<(), Error> {
        let setting = MODULE_ATTRS.get(index).and_then(|a: &ModuleAttr| a.parse(input)).ok_or(EINVAL)?;
        module_state::apply(setting);
        Ok(())
    }

    fn proc_header(devices: u32, out: &mut dyn Write) {
        let _ = summary::write_header(out, module_state::VERSION, u64::from(devices));
    }

    fn proc_device(&self, ti: &TargetInfo, out: &mut dyn Write) {
        let mut name = [0; DM_NAME_LEN];
        let names = DeviceNames {
            name: ti.mapper_name(&mut name),
            kernel_name: ti.kernel_name(),
            main: self.main.name(),
            spare: self.spare.name(),
        };
        let _ = summary::write_device(out, &names, &self.counters());
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
                "target_name=dm-remap-v4,target_version=4.0.0,main_device={},spare_device={};",
                self.main.name(),
                self.spare.name()
            ),
        };
    }

    fn message(&self, ti: &TargetInfo, args: &[Arg<'_>], out: &mut ResultBuffer<'_>) -> Result<(), TargetError> {
        self.handle_message(ti, args, out)
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

/// Where the first units of a bio go.
enum Routing {
    /// This many units (from the first) go to main.
    Main(u64),
    /// The first unit goes to this spare unit.
    Spare(u64),
    /// The first unit needs the worker (a write to a pending unit, any I/O to a moving one).
    Worker,
}

impl Remap {
    /// Decides where the first of the bio's `units` go: lock-free, no allocation, at most
    /// [`MAX_UNITS_PER_MAP`] lookups. `writes`: the bio writes data (a write or a
    /// write-zeroes), so a pending unit goes to the worker, which heals it.
    fn route(&self, first: u64, units: u64, writes: bool) -> Routing {
        if !self.table.any_in(first, first.saturating_add(units)) {
            return Routing::Main(units);
        }
        let units = units.min(MAX_UNITS_PER_MAP);
        let guard = RcuReadGuard::new();
        let needs_own_route = |entry: Option<Entry>| match entry {
            Some(Entry::Remapped { .. } | Entry::Moving { .. }) => true,
            Some(Entry::Pending) => writes,
            None => false,
        };
        match self.table.lookup(&guard, first) {
            Some(Entry::Remapped { spare }) => return Routing::Spare(spare),
            // A pending unit gets its spare unit from the worker; a moving one waits there.
            Some(Entry::Pending) if writes => return Routing::Worker,
            Some(Entry::Moving { .. }) => return Routing::Worker,
            _ => {}
        }
        let mut n = 1;
        while n < units {
            let unit = first.saturating_add(n);
            // The region bitmap answers for most units without a hash lookup (it is exact when
            // a region is one unit, as on devices up to 256 GiB with 512-byte units).
            if self.table.any_in(unit, unit.saturating_add(1)) && needs_own_route(self.table.lookup(&guard, unit)) {
                break;
            }
            n += 1;
        }
        Routing::Main(n)
    }

    /// The INFO status counters.
    pub(crate) fn counters(&self) -> Counters {
        let spare_total = self.layout.spare_units();
        let spare_used = self.table.spare_used();
        let pending = self.table.pending();
        let remap_failures = Stats::get(&self.stats.remap_failures);
        Counters {
            unit_sectors: self.layout.unit_sectors,
            remaps: self.table.remaps(),
            pending,
            spare_used,
            spare_total,
            read_errors: Stats::get(&self.stats.read_errors),
            write_errors: Stats::get(&self.stats.write_errors),
            remap_failures,
            spare_errors: Stats::get(&self.stats.spare_errors),
            health: Health::derive(pending, remap_failures, spare_used, spare_total),
            metadata_seq: Stats::get(&self.stats.metadata_seq),
            metadata_copies: u32::try_from(Stats::get(&self.stats.metadata_copies)).unwrap_or(0),
            metadata_repairs: Stats::get(&self.stats.metadata_repairs),
            metadata_errors: Stats::get(&self.stats.metadata_errors),
            scan: self.scan.report(self.target_len),
            metadata_mode: self.table.metadata_mode(),
        }
    }

    /// Commits metadata changes to the spare (process context; sleeps). A failure is counted,
    /// logged and signalled with a dm event; the changes stay for the next commit. A commit
    /// that writes no copy puts the device in metadata mode `read_only` (docs/design.md,
    /// "Metadata failure mode"): the change of mode raises a dm event and logs one line.
    ///
    /// # Errors
    /// `EIO` if no metadata copy could be written.
    pub(crate) fn commit(&self, ti: &TargetInfo) -> Result {
        let mut table = self.table.writer();
        self.commit_locked(ti, &mut table)
    }

    /// [`Remap::commit`] for a caller that holds the table writer.
    ///
    /// # Errors
    /// `EIO` if no metadata copy could be written.
    pub(crate) fn commit_locked(&self, ti: &TargetInfo, table: &mut crate::table::TableWriter<'_>) -> Result {
        let _noio = crate::dm::NoIoScope::new();
        let before = table.mode();
        let result = table.commit(&self.spare);
        let after = table.mode();
        if after != before {
            if self.health_log.allow() {
                pr_err!(
                    "{}: metadata mode {} (was {}): no new remaps or pending units until `dm-remap repair` of the spare; flushes retry the commit\n",
                    ti.device_name(),
                    after.as_str(),
                    before.as_str()
                );
            }
            ti.raise_event();
        }
        match result {
            Ok(report) if report.copies_failed > 0 => {
                self.stats.metadata_errors.fetch_add(u64::from(report.copies_failed), core::sync::atomic::Ordering::Relaxed);
                if self.log_limit.allow() {
                    pr_err!("{}: {} metadata copies could not be written\n", ti.device_name(), report.copies_failed);
                }
                ti.raise_event();
            }
            Ok(_) => {}
            Err(_) => {
                Stats::count(&self.stats.metadata_errors);
                if self.log_limit.allow() {
                    pr_err!("{}: metadata commit failed\n", ti.device_name());
                }
                ti.raise_event();
            }
        }
        self.publish_metadata_state(table);
        result.map(|_| ())
    }

    /// Refuses to record new state in metadata mode `read_only` (docs/design.md, "Metadata
    /// failure mode"): for the `remap`, `unremap` and `clear_pending` messages, whose caller
    /// holds `table`.
    ///
    /// # Errors
    /// `EROFS` with a `ti->error` message naming the repair, unless the mode is `write`.
    pub(crate) fn require_writable(&self, table: &crate::table::TableWriter<'_>) -> Result<(), TargetError> {
        if table.records_changes() {
            return Ok(());
        }
        Err(TargetError {
            message: c"Metadata is read-only after a failed commit: remove the device and run dm-remap repair on the spare",
            errno: EROFS,
        })
    }

    /// Counts and logs (rate-limited) an error at main unit `unit` that is not remapped, and
    /// not marked pending, because the metadata mode is `read_only`.
    pub(crate) fn not_recorded_read_only(&self, ti: &TargetInfo, unit: u64) {
        self.stats.remap_failure();
        if self.log_limit.allow() {
            pr_err!(
                "{}: metadata read_only, error at sector {} not remapped\n",
                ti.device_name(),
                self.layout.sector_of(unit)
            );
        }
    }

    /// Raises a dm event and logs a line when health or the spare-use band changed since the
    /// last call (process context: `dm_table_event` sleeps).
    pub(crate) fn check_health(&self, ti: &TargetInfo) {
        let c = self.counters();
        if let Some((health, band)) = self.watch.changed(&c) {
            ti.raise_event();
            if self.health_log.allow() {
                pr_warn!(
                    "{}: health {}, spare {}/{} units used ({}% band), {} pending\n",
                    ti.device_name(),
                    health.as_str(),
                    c.spare_used,
                    c.spare_total,
                    band,
                    c.pending
                );
            }
        }
    }

    fn publish_metadata_state(&self, table: &crate::table::TableWriter<'_>) {
        let (seq, copies) = table.metadata_state();
        self.stats.metadata_seq.store(seq, core::sync::atomic::Ordering::Relaxed);
        self.stats.metadata_copies.store(u64::from(copies), core::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Remap {
    fn drop(&mut self) {
        // dtr: the device is suspended (postsuspend committed); this catches what remains.
        if self.table.is_dirty() {
            let _noio = crate::dm::NoIoScope::new();
            let _ = self.table.writer().commit(&self.spare);
        }
    }
}
