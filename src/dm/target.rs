// SPDX-License-Identifier: GPL-2.0

//! Device-mapper target types: the [`Target`] trait a target implements in safe Rust, the
//! registration of its `struct target_type`, and the `extern "C"` trampolines between them.
//!
//! C header: [`include/linux/device-mapper.h`](srctree/include/linux/device-mapper.h).

use super::bindings;
use super::bio::{Bio, BlkStatus};
use super::deferred::{DeferredBio, OwnedQueue, PerBioData};
use super::device::{DeviceVisitor, DmDev, QueueLimits};
use super::result_buffer::ResultBuffer;
use super::sysfs::{FileSpec, Folder, FolderKind, ProcFile, SeqWriter};
use core::ffi::{c_void, CStr};
use core::fmt;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::ffi::{c_char, c_int, c_uint};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::*, Error};
use kernel::prelude::*;
use kernel::types::Opaque;

/// Size of a dm device name buffer, NUL included (`DM_NAME_LEN`).
pub const DM_NAME_LEN: usize = 128;

/// What `map` decided for a bio (`DM_MAPIO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum MapResult {
    /// The bio was pointed at a device; dm submits it (`DM_MAPIO_REMAPPED`).
    Remapped = bindings::DM_MAPIO_REMAPPED as i32,
    /// Fail the bio with an I/O error (`DM_MAPIO_KILL`).
    Kill = bindings::DM_MAPIO_KILL as i32,
    /// Hand the bio to [`Target::work`] on the target's workqueue (`DM_MAPIO_SUBMITTED`).
    Defer = -1,
}

/// What `end_io` decided for a completed bio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndIo {
    /// Complete the bio upward with this status (`DM_ENDIO_DONE`).
    Done(BlkStatus),
    /// Hand the bio to [`Target::work`] on the target's workqueue (`DM_ENDIO_INCOMPLETE`).
    Defer,
}

/// Which status dm asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// `dmsetup status`: run-time state.
    Info,
    /// `dmsetup table`: the constructor arguments.
    Table,
    /// IMA measurement of the target's configuration.
    Ima,
}

/// A refused constructor or message: a short static message (`ti->error` for ctr, a
/// rate-limited log line for messages) and the errno returned.
#[derive(Debug, Clone, Copy)]
pub struct TargetError {
    /// Short, static message.
    pub message: &'static CStr,
    /// The error returned (usually `EINVAL`).
    pub errno: Error,
}

impl TargetError {
    /// An `-EINVAL` refusal with `message`.
    pub fn invalid(message: &'static CStr) -> Self {
        Self { message, errno: EINVAL }
    }
}

/// One constructor or message argument: a NUL-terminated string owned by dm.
///
/// # Invariants
/// Points to a NUL-terminated string valid for `'a`.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct Arg<'a> {
    ptr: *const c_char,
    _lifetime: PhantomData<&'a CStr>,
}

impl<'a> Arg<'a> {
    /// Views dm's `argc`/`argv` as a slice of arguments.
    ///
    /// # Safety
    /// `argv` points to `argc` valid NUL-terminated strings (or `argc` is 0), all valid for `'a`.
    unsafe fn slice_from_raw(argv: *mut *mut c_char, argc: c_uint) -> &'a [Arg<'a>] {
        if argc == 0 || argv.is_null() {
            return &[];
        }
        // SAFETY: `Arg` is a transparent pointer, and the caller guarantees `argc` of them.
        unsafe { core::slice::from_raw_parts(argv.cast::<Arg<'a>>(), argc as usize) }
    }

    /// The argument's bytes, without the NUL.
    pub fn as_bytes(&self) -> &'a [u8] {
        // SAFETY: by the type invariant this is a NUL-terminated string valid for `'a`, so
        // `strlen` bytes from `ptr` are readable and unchanged during `'a`.
        unsafe {
            let len = bindings::strlen(self.ptr);
            core::slice::from_raw_parts(self.ptr.cast::<u8>(), len)
        }
    }

    fn as_char_ptr(&self) -> *const c_char {
        self.ptr
    }
}

impl AsRef<[u8]> for Arg<'_> {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Read access to the `struct dm_target` a hook was called for.
///
/// # Invariants
/// `ti` is a live dm target for the duration of the hook call.
pub struct TargetInfo {
    ti: *mut bindings::dm_target,
}

impl TargetInfo {
    /// First sector of the target in the dm device.
    pub fn begin(&self) -> u64 {
        // SAFETY: `ti` is live (type invariant); `begin` does not change after ctr.
        unsafe { (*self.ti).begin }
    }

    /// Length of the target in sectors.
    pub fn len(&self) -> u64 {
        // SAFETY: as above.
        unsafe { (*self.ti).len }
    }

    /// The dm device's name as dm reports it (`major:minor`), for log lines.
    pub fn device_name(&self) -> &str {
        // SAFETY: `ti` and its table are live during the hook; dm_device_name returns the
        // mapped device's NUL-terminated name, which lives as long as the device, so `strlen`
        // bytes from it are readable.
        let name = unsafe {
            let md = bindings::dm_table_get_md((*self.ti).table);
            let name = bindings::dm_device_name(md);
            core::slice::from_raw_parts(name.cast::<u8>(), bindings::strlen(name))
        };
        core::str::from_utf8(name).unwrap_or("?")
    }

    /// Signals a dm event (`dm_table_event`): `dmsetup wait` and dmeventd wake up. Process
    /// context only (dm takes a mutex).
    pub fn raise_event(&self) {
        // SAFETY: `ti` and its table are live during the hook.
        unsafe { bindings::dm_table_event((*self.ti).table) };
    }

    /// The device's name under `/dev/mapper` (`dm_copy_name_and_uuid`), `?` if it has none.
    /// Process context (dm takes its name lock).
    pub fn mapper_name<'a>(&self, buf: &'a mut [u8; DM_NAME_LEN]) -> &'a str {
        // SAFETY: `ti`, its table and mapped device are live during the hook; dm writes at
        // most DM_NAME_LEN bytes including the NUL into `buf` and accepts a null uuid.
        let ret = unsafe {
            let md = bindings::dm_table_get_md((*self.ti).table);
            bindings::dm_copy_name_and_uuid(md, buf.as_mut_ptr().cast(), core::ptr::null_mut())
        };
        if ret != 0 {
            return "?";
        }
        let len = buf.iter().position(|&b| b == 0).unwrap_or(0);
        buf.get(..len).and_then(|name| core::str::from_utf8(name).ok()).unwrap_or("?")
    }

    /// The dm device's kernel name (`dm-3`): its block device and sysfs folder name.
    pub fn kernel_name(&self) -> &str {
        // SAFETY: `ti`, its table and mapped device are live during the hook; the gendisk's
        // name is a NUL-terminated array that lives as long as the device.
        let name = unsafe {
            let name = bindings::dmr_dm_disk_name(self.ti);
            core::slice::from_raw_parts(name.cast::<u8>(), bindings::strlen(name))
        };
        core::str::from_utf8(name).unwrap_or("?")
    }

    /// The layer's state of a constructed target (null during ctr).
    fn common(&self) -> Option<&Common> {
        // SAFETY: `ti` is live; `private` is null until ctr_callback stores a boxed
        // `Instance`, whose first field (repr(C)) is its `Common`, live until dtr.
        unsafe { (*self.ti).private.cast::<Common>().as_ref() }
    }

    /// Runs [`Target::background`] in `ms` milliseconds (or moves a pending run there).
    /// Ignored while the device is suspended and during ctr: background work only runs
    /// between resume and suspend.
    pub fn schedule_background(&self, ms: u32) {
        if let Some(common) = self.common() {
            // SAFETY: `bg` was initialised in ctr_callback and lives until dtr, which disables
            // and waits for it; a disabled item ignores this.
            unsafe { bindings::dmr_background_reschedule(common.bg.get(), ms) };
        }
    }
}

/// What a constructor may do with its `struct dm_target`: open devices, set the target's
/// limits and counts.
///
/// # Invariants
/// `ti` is the target being constructed, for the duration of ctr.
pub struct CtrContext {
    info: TargetInfo,
}

impl CtrContext {
    /// The target's place in the dm device.
    pub fn info(&self) -> &TargetInfo {
        &self.info
    }

    fn ti(&self) -> *mut bindings::dm_target {
        self.info.ti
    }

    /// Whether the table is loaded read-write (its mode includes `BLK_OPEN_WRITE`).
    pub fn table_writable(&self) -> bool {
        // SAFETY: `ti` is the target under construction and its table is set.
        unsafe { bindings::dmr_table_writable(self.ti()) }
    }

    /// Opens `path` (a device path or `major:minor`) with the table's mode (`dm_get_device`).
    ///
    /// # Errors
    /// The kernel's errno from `dm_get_device` (e.g. `ENODEV`, `ENXIO`, `EBUSY`).
    pub fn get_device(&mut self, path: &Arg<'_>) -> Result<DmDev> {
        let ti = self.ti();
        let mut dev: *mut bindings::dm_dev = core::ptr::null_mut();
        // SAFETY: `ti` is the target under construction and its table is set; `path` is a
        // NUL-terminated string; `dev` is a valid out-pointer.
        let ret = unsafe {
            let mode = bindings::dm_table_get_mode((*ti).table);
            bindings::dm_get_device(ti, path.as_char_ptr(), mode, &mut dev)
        };
        kernel::error::to_result(ret)?;
        // SAFETY: `dev` was just returned by a successful `dm_get_device(ti, ..)`; dm frees
        // `ti` only after dtr, which drops the target and with it this device.
        Ok(unsafe { DmDev::from_raw(ti, dev) })
    }

    /// Claims `dev` for this target among the module's targets, with the state `T` that the
    /// claimants share (see [`SharedClaim`]): [`Claim::Joined`] if another table of this dm
    /// device (the live one, when a table is loaded to replace it) claimed `dev`, with its
    /// state; [`Claim::First`] otherwise, for the caller to give the state.
    ///
    /// # Errors
    /// `EBUSY` if a target of another dm device, or another target of this table, claimed
    /// it; `ENOMEM`.
    pub fn claim_device<T: Send + Sync>(&mut self, dev: &DmDev) -> Result<Claim<T>> {
        let mut claim = core::ptr::null_mut();
        let mut shared = core::ptr::null_mut();
        // SAFETY: `ti` is the target under construction with its table set; `claim` and
        // `shared` are valid out-pointers, written on success only.
        let ret = unsafe { bindings::dmr_claim_device(self.ti(), dev.devt(), &mut claim, &mut shared) };
        kernel::error::to_result(ret)?;
        // INVARIANT: a successful claim returned its handle; a group's state is set only by
        // `FirstClaim::share`, from a `KBox<T>` of the same `T` (one target type per module
        // claims through here).
        Ok(match NonNull::new(shared.cast::<T>()) {
            Some(shared) => Claim::Joined(SharedClaim { claim, shared }),
            None => Claim::First(FirstClaim { claim, _state: PhantomData }),
        })
    }

    /// How many clones of each flush (empty `REQ_PREFLUSH` bio) `map` receives; tell them
    /// apart with [`Bio::target_bio_nr`].
    pub fn set_num_flush_bios(&mut self, n: u32) {
        // SAFETY: ctr may set these fields of its own target.
        unsafe { (*self.ti()).num_flush_bios = n };
    }

    /// How many clones of each discard `map` receives (0: discards not supported).
    pub fn set_num_discard_bios(&mut self, n: u32) {
        // SAFETY: as above.
        unsafe { (*self.ti()).num_discard_bios = n };
    }

    /// How many clones of each write-zeroes `map` receives (0: not supported).
    pub fn set_num_write_zeroes_bios(&mut self, n: u32) {
        // SAFETY: as above.
        unsafe { (*self.ti()).num_write_zeroes_bios = n };
    }
}

/// The result of [`CtrContext::claim_device`].
pub enum Claim<T: Send + Sync> {
    /// Another table of this dm device claimed the device first: its shared state.
    Joined(SharedClaim<T>),
    /// The first claim: the caller builds the state and hands it over with
    /// [`FirstClaim::share`].
    First(FirstClaim<T>),
}

/// A first claim of a device whose shared state is not set yet; released on drop.
///
/// # Invariants
/// `claim` is a live handle from `dmr_claim_device` whose group has no state yet.
pub struct FirstClaim<T: Send + Sync> {
    claim: *mut c_void,
    _state: PhantomData<KBox<T>>,
}

impl<T: Send + Sync> FirstClaim<T> {
    /// Makes `state` the state shared by the claims of this device's group.
    pub fn share(self, state: KBox<T>) -> SharedClaim<T> {
        let claim = self.claim;
        core::mem::forget(self);
        let shared = KBox::into_raw(state);
        // SAFETY: a live handle without a state (type invariant); the state is a leaked
        // `KBox<T>`, freed by the last `SharedClaim` of the group.
        unsafe { bindings::dmr_claim_set_shared(claim, shared.cast()) };
        // SAFETY: `KBox::into_raw` never returns null.
        let shared = unsafe { NonNull::new_unchecked(shared) };
        SharedClaim { claim, shared }
    }
}

impl<T: Send + Sync> Drop for FirstClaim<T> {
    fn drop(&mut self) {
        // SAFETY: a live handle (type invariant), released once; its group has no state, so
        // the call returns null and there is nothing to free.
        unsafe { bindings::dmr_release_device(self.claim) };
    }
}

/// A device claimed by the targets of one dm device, at most one per table, with the state
/// they share: a spare must not be used by two dm devices (two remap tables would be written
/// to the same metadata), while the live table and a table loaded to replace it must see one
/// remap table (dm-thin's tables share their pool the same way). The state lives until the
/// last claim of the group is released, by whichever target drops last.
///
/// # Invariants
/// `claim` is a live handle from `dmr_claim_device`; `shared` is the group's state, a leaked
/// `KBox<T>` that stays valid while any claim of the group is held.
pub struct SharedClaim<T: Send + Sync> {
    claim: *mut c_void,
    shared: NonNull<T>,
}

impl<T: Send + Sync> core::ops::Deref for SharedClaim<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: valid while this claim is held (type invariant); only shared references
        // are ever made to the state.
        unsafe { self.shared.as_ref() }
    }
}

impl<T: Send + Sync> Drop for SharedClaim<T> {
    fn drop(&mut self) {
        // SAFETY: a live handle (type invariant), released once.
        let last = unsafe { bindings::dmr_release_device(self.claim) };
        if !last.is_null() {
            // SAFETY: the last claim of the group is gone: nobody else can reach the state,
            // which `FirstClaim::share` leaked from a `KBox<T>`.
            drop(unsafe { KBox::from_raw(last.cast::<T>()) });
        }
    }
}

// SAFETY: the handle is used under the C side's lock; the state is `Send + Sync`, and it is
// freed by whichever thread drops the last claim.
unsafe impl<T: Send + Sync> Send for SharedClaim<T> {}
// SAFETY: `&SharedClaim` gives only `&T`, and `T: Sync`.
unsafe impl<T: Send + Sync> Sync for SharedClaim<T> {}
// SAFETY: the handle is used under the C side's lock; no state is reachable through it.
unsafe impl<T: Send + Sync> Send for FirstClaim<T> {}

/// A device-mapper target type, implemented in safe Rust.
///
/// The target's value is created by `ctr`, shared by all other hooks (which run concurrently
/// on many CPUs, hence `&self` and `Sync`), and dropped by dtr.
#[vtable]
pub trait Target: Sized + Send + Sync {
    /// The target type name used in table lines.
    const NAME: &'static CStr;
    /// `target_type.version`: major, minor, patch.
    const VERSION: [u32; 3];

    /// Data the target keeps with every bio, from `map` to the final `end_io` (initialised
    /// with `Default` before `map`). Lives in dm's per-bio data: no allocation per bio.
    type PerBio: Default + Send;

    /// Builds the target from its table-line arguments (after `<start> <len> <type>`).
    fn ctr(ctx: &mut CtrContext, args: &[Arg<'_>]) -> Result<Self, TargetError>;

    /// Routes a bio: point it at a device and sector, kill it, or defer it to [`Target::work`].
    /// Runs on any CPU, must not sleep.
    fn map(&self, ti: &TargetInfo, bio: &mut Bio, per_bio: &mut Self::PerBio) -> MapResult;

    /// Sees every completed bio the target mapped (not those it completed itself): pass the
    /// status on, change it, or defer the bio to [`Target::work`]. May run in interrupt
    /// context: must not sleep.
    fn end_io(&self, _ti: &TargetInfo, _bio: &mut Bio, _status: BlkStatus, _per_bio: &mut Self::PerBio) -> EndIo {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Finishes a deferred bio, in process context on the target's `WQ_MEM_RECLAIM` workqueue
    /// (may sleep; allocate only inside a `NoIoScope`). Dropping `bio` fails it.
    fn work(&self, _ti: &TargetInfo, _bio: DeferredBio<'_, Self::PerBio>) {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Runs when a suspend starts, before dm waits for the device's I/O and for running
    /// messages (process context). A target whose message may wait for I/O makes it give up
    /// here, as dm-thin's pool stops its worker.
    fn presuspend(&self, _ti: &TargetInfo) {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Runs when a suspend that [`Target::presuspend`] saw start failed, and the device stays
    /// live (process context).
    fn presuspend_undo(&self, _ti: &TargetInfo) {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Runs after the device was suspended and all its I/O completed (dm-thin commits here).
    fn postsuspend(&self, _ti: &TargetInfo) {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Handles `dmsetup message` (process context, may sleep). Text written to `out` is
    /// returned to the caller.
    fn message(&self, _ti: &TargetInfo, _args: &[Arg<'_>], _out: &mut ResultBuffer<'_>) -> Result<(), TargetError> {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Writes the status line of `kind` into `out`.
    fn status(&self, ti: &TargetInfo, kind: StatusKind, out: &mut ResultBuffer<'_>);

    /// Reports every device the target uses through `visitor`; returns the first non-zero
    /// value a visit returned, or 0.
    fn iterate_devices(&self, ti: &TargetInfo, visitor: &mut DeviceVisitor) -> c_int;

    /// Adjusts the queue limits dm stacked from the devices.
    fn io_hints(&self, _ti: &TargetInfo, _limits: &mut QueueLimits) {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Runs when the device resumes (its table becomes live), in process context, after the
    /// layer re-enabled background work and added the sysfs folder.
    fn resume(&self, _ti: &TargetInfo) {
        kernel::build_error!(kernel::error::VTABLE_DEFAULT_ERROR)
    }

    /// Background work, scheduled with [`TargetInfo::schedule_background`]; runs in process
    /// context on `system_long_wq`, never while the device is suspended, never after dtr.
    /// Returns the milliseconds until the next run, or `None` to stop.
    fn background(&self, _ti: &TargetInfo) -> Option<u32> {
        None
    }

    /// Files in each active device's sysfs folder, `/sys/kernel/<NAME>/<dm-N>/`.
    const DEVICE_FILES: &'static [FileSpec] = &[];
    /// Files in the module's sysfs folder, `/sys/kernel/<NAME>/`.
    const MODULE_FILES: &'static [FileSpec] = &[];

    /// Writes the value of `DEVICE_FILES[index]` (at most a page).
    fn show(&self, _ti: &TargetInfo, _index: usize, _out: &mut ResultBuffer<'_>) {}

    /// Takes a value written to `DEVICE_FILES[index]`.
    ///
    /// # Errors
    /// `EINVAL` (the write fails) for a value the file does not accept.
    fn store(&self, _ti: &TargetInfo, _index: usize, _input: &[u8]) -> Result<(), Error> {
        Err(EINVAL)
    }

    /// Writes the value of `MODULE_FILES[index]`; `devices` is the number of device folders.
    fn module_show(_index: usize, _devices: u32, _out: &mut ResultBuffer<'_>) {}

    /// Takes a value written to `MODULE_FILES[index]`.
    ///
    /// # Errors
    /// `EINVAL` for a value the file does not accept.
    fn module_store(_index: usize, _input: &[u8]) -> Result<(), Error> {
        Err(EINVAL)
    }

    /// Writes the header of `/proc/<NAME>`, given the number of active devices.
    fn proc_header(_devices: u32, _out: &mut dyn fmt::Write) {}

    /// Writes this device's lines of `/proc/<NAME>`.
    fn proc_device(&self, _ti: &TargetInfo, _out: &mut dyn fmt::Write) {}
}

/// A registered target type with its module-wide sysfs folder and /proc file. Fields drop
/// in order: the type is unregistered first (no device can exist after that), then the
/// /proc file, the module folder, and the folder kinds.
///
/// # Invariants
/// `tt` is registered with dm and stays at the same address (boxed) until unregistered.
#[repr(C)]
struct RegisteredType {
    /// First field: a target's `ti->type` points here, and so to the whole.
    tt: Opaque<bindings::target_type>,
    proc: Option<ProcFile>,
    root: Option<Folder>,
    device_kind: Option<FolderKind>,
    module_kind: Option<FolderKind>,
}

/// A registered target type; unregistered on drop.
pub struct Registration<T: Target> {
    reg: KBox<RegisteredType>,
    _target: PhantomData<T>,
}

// SAFETY: the registration only holds the target_type, which dm reads from any CPU, and
// handles to sysfs and proc entries.
unsafe impl<T: Target> Send for Registration<T> {}
// SAFETY: as above; `&Registration` gives no access to them.
unsafe impl<T: Target> Sync for Registration<T> {}

impl<T: Target> Registration<T> {
    /// Registers `T` with device-mapper (`dm_register_target`), after creating
    /// `/sys/kernel/<NAME>/` with `T::MODULE_FILES` and `/proc/<NAME>` (if `T` has
    /// `DEVICE_FILES`).
    ///
    /// # Errors
    /// `ENOMEM` (also when the sysfs folder or /proc file cannot be created, e.g. because the
    /// name exists), or dm's error (e.g. `EEXIST` if the name is taken).
    pub fn new(module: &'static ThisModule) -> Result<Self> {
        let mut reg = KBox::new(
            RegisteredType {
                tt: Opaque::uninit(),
                proc: None,
                root: None,
                device_kind: None,
                module_kind: None,
            },
            GFP_KERNEL,
        )?;
        if !T::DEVICE_FILES.is_empty() || !T::MODULE_FILES.is_empty() {
            // SAFETY: the callbacks take the owners given below: the RegisteredType for the
            // module folder, `Instance<T>` for device folders (see `add_folder`).
            unsafe {
                reg.module_kind = Some(FolderKind::new(T::MODULE_FILES, module_show_callback::<T>, module_store_callback::<T>)?);
                reg.device_kind = Some(FolderKind::new(T::DEVICE_FILES, device_show_callback::<T>, device_store_callback::<T>)?);
            }
            let owner: *mut RegisteredType = &mut *reg;
            if let Some(kind) = &reg.module_kind {
                // SAFETY: the box outlives the folder (a field of it, dropped before the kinds).
                reg.root = Some(unsafe { Folder::add(kind, None, T::NAME.as_ptr().cast(), owner.cast()) }.ok_or(ENOMEM)?);
            }
            if let Some(kind) = &reg.device_kind {
                // SAFETY: the proc callbacks take device folders' owners; dropped before the kind.
                reg.proc = Some(unsafe { ProcFile::new(T::NAME, kind, proc_header_callback::<T>, proc_device_callback::<T>)? });
            }
        }
        let p = reg.tt.get();
        // SAFETY: `p` points to memory we own; every field is written before dm sees it.
        unsafe {
            p.write(core::mem::zeroed());
            (*p).name = T::NAME.as_ptr().cast();
            (*p).module = module.as_ptr();
            (*p).version = T::VERSION;
            (*p).ctr = Some(ctr_callback::<T>);
            (*p).dtr = Some(dtr_callback::<T>);
            (*p).map = Some(map_callback::<T>);
            (*p).status = Some(status_callback::<T>);
            (*p).iterate_devices = Some(iterate_devices_callback::<T>);
            (*p).postsuspend = Some(postsuspend_callback::<T>);
            (*p).resume = Some(resume_callback::<T>);
            if T::HAS_PRESUSPEND {
                (*p).presuspend = Some(presuspend_callback::<T>);
            }
            if T::HAS_PRESUSPEND_UNDO {
                (*p).presuspend_undo = Some(presuspend_undo_callback::<T>);
            }
            if T::HAS_IO_HINTS {
                (*p).io_hints = Some(io_hints_callback::<T>);
            }
            if T::HAS_END_IO {
                (*p).end_io = Some(end_io_callback::<T>);
            }
            if T::HAS_MESSAGE {
                (*p).message = Some(message_callback::<T>);
            }
        }
        // SAFETY: `p` is a fully initialised target_type at a stable address that lives
        // until `drop` unregisters it.
        kernel::error::to_result(unsafe { bindings::dm_register_target(p) })?;
        // INVARIANT: registered just now; the box keeps its address.
        Ok(Self { reg, _target: PhantomData })
    }
}

impl<T: Target> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new` (type invariant). dm refuses module unload while any
        // table uses the type, so no hook can run after this.
        unsafe { bindings::dm_unregister_target(self.reg.tt.get()) };
    }
}

/// What the layer keeps for every constructed target, at the start of its `Instance` so that
/// non-generic code ([`TargetInfo`]) can reach it through `ti->private`.
#[repr(C)]
struct Common {
    /// The target's background work item ([`Target::background`]); disabled while suspended.
    bg: Opaque<bindings::delayed_work>,
    ti: *mut bindings::dm_target,
    /// The sysfs folder while the device is active (a [`Folder`] from `into_raw`), else null.
    folder: AtomicPtr<bindings::dmr_folder>,
}

/// What `ti->private` points to: the target and what the layer keeps for it. Fields drop in
/// order: the workqueue first (draining deferred bios, which use the target), then the target
/// (dtr disables the background work and removes the folder before).
#[repr(C)]
struct Instance<T: Target> {
    common: Common,
    queue: Option<OwnedQueue>,
    target: T,
}

impl<T: Target> Instance<T> {
    const PER_BIO_SIZE: usize = core::mem::size_of::<PerBioData<T::PerBio>>();

    /// Queues a taken bio to the target's worker, or fails it if the target has none.
    ///
    /// # Safety
    /// `bio` is a dm clone of this target with per-bio data `pb` filled by `map_callback`, and
    /// the target took it (it is completed only through the worker).
    unsafe fn defer(&self, bio: *mut bindings::bio, pb: *mut PerBioData<T::PerBio>) {
        // SAFETY: `pb` is this bio's per-bio data (caller's duty).
        unsafe { (*pb).taken = true };
        match &self.queue {
            // SAFETY: the work item lives in the per-bio data, valid until the bio completes,
            // which only the worker does.
            Some(queue) => unsafe {
                bindings::dmr_init_work((*pb).work.as_mut_ptr(), Some(work_callback::<T>));
                queue.queue((*pb).work.as_mut_ptr());
            },
            // SAFETY: the bio is ours to complete (caller's duty).
            None => drop(unsafe { DeferredBio::from_raw(bio, pb) }),
        }
    }
}

/// # Safety
/// `ti` is a live target whose `private` was set by [`ctr_callback::<T>`].
unsafe fn instance_of<'a, T: Target>(ti: *mut bindings::dm_target) -> &'a Instance<T> {
    // SAFETY: the caller guarantees `private` holds an `Instance<T>` from `KBox::into_raw`
    // that lives until dtr.
    unsafe { &*(*ti).private.cast::<Instance<T>>() }
}

/// # Safety
/// `bio` is a dm clone sent to a target of type `T`.
unsafe fn per_bio_of<T: Target>(bio: *mut bindings::bio) -> *mut PerBioData<T::PerBio> {
    // SAFETY: dm reserved `per_io_data_size` (set in ctr) bytes for this bio.
    unsafe { bindings::dm_per_bio_data(bio, Instance::<T>::PER_BIO_SIZE).cast() }
}

unsafe extern "C" fn ctr_callback<T: Target>(
    ti: *mut bindings::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
) -> c_int {
    // SAFETY: dm passes `argc` valid strings that live for the duration of ctr.
    let args = unsafe { Arg::slice_from_raw(argv, argc) };
    // SAFETY: ctr may set the per-bio data size of its target.
    unsafe { (*ti).per_io_data_size = Instance::<T>::PER_BIO_SIZE as c_uint };
    // INVARIANT: `ti` is the target being constructed, live during this call.
    let mut ctx = CtrContext { info: TargetInfo { ti } };
    let queue = if T::HAS_WORK {
        match OwnedQueue::new(T::NAME) {
            Ok(q) => Some(q),
            Err(errno) => {
                // SAFETY: `ti` is live; dm only reads `error`, and the message is static.
                unsafe { (*ti).error = c"Cannot allocate workqueue".as_ptr().cast_mut().cast() };
                return errno.to_errno();
            }
        }
    } else {
        None
    };
    let result = T::ctr(&mut ctx, args).and_then(|target| {
        let common = Common { bg: Opaque::uninit(), ti, folder: AtomicPtr::new(core::ptr::null_mut()) };
        KBox::new(Instance { common, queue, target }, GFP_KERNEL).map_err(|_| TargetError {
            message: c"Cannot allocate target context",
            errno: ENOMEM,
        })
    });
    match result {
        Ok(instance) => {
            let instance = KBox::into_raw(instance);
            // SAFETY: the work item is initialised at its final address, then disabled until
            // the first resume enables it; `ti` is live and dtr reclaims the box.
            unsafe {
                let bg = (*instance).common.bg.get();
                bindings::dmr_init_delayed_work(bg, Some(background_callback::<T>));
                bindings::disable_delayed_work(bg);
                (*ti).private = instance.cast();
            }
            0
        }
        Err(e) => {
            // SAFETY: `ti` is live; dm only reads `error`, and the message is static.
            unsafe { (*ti).error = e.message.as_ptr().cast_mut().cast() };
            e.errno.to_errno()
        }
    }
}

unsafe extern "C" fn dtr_callback<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: dtr is only called after a successful ctr, whose `private` is a
    // `KBox<Instance<T>>` nothing else uses any more (dm waited for in-flight bios) but the
    // background work and sysfs/proc readers, which are stopped and drained first.
    unsafe {
        let instance = (*ti).private.cast::<Instance<T>>();
        bindings::disable_delayed_work_sync((*instance).common.bg.get());
        drop(Folder::from_raw((*instance).common.folder.swap(core::ptr::null_mut(), Ordering::AcqRel)));
        drop(KBox::from_raw(instance));
    }
}

unsafe extern "C" fn map_callback<T: Target>(
    ti: *mut bindings::dm_target,
    bio: *mut bindings::bio,
) -> c_int {
    // SAFETY: map runs between ctr and dtr on a bio dm lends to this call only; its per-bio
    // data is ours to initialise (the work item stays uninitialised until deferral).
    unsafe {
        let instance = instance_of::<T>(ti);
        let pb = per_bio_of::<T>(bio);
        let start = (*bio).bi_iter.bi_sector.wrapping_sub((*ti).begin);
        core::ptr::addr_of_mut!((*pb).ti).write(ti);
        core::ptr::addr_of_mut!((*pb).start).write(start);
        core::ptr::addr_of_mut!((*pb).taken).write(false);
        core::ptr::addr_of_mut!((*pb).target).write(T::PerBio::default());
        let result = instance.target.map(&TargetInfo { ti }, Bio::from_raw_mut(bio), &mut (*pb).target);
        // After map: the size reflects any accept_partial; the worker restores this iterator.
        core::ptr::addr_of_mut!((*pb).iter).write((*bio).bi_iter);
        match result {
            MapResult::Defer => {
                instance.defer(bio, pb);
                bindings::DM_MAPIO_SUBMITTED as c_int
            }
            other => other as c_int,
        }
    }
}

unsafe extern "C" fn end_io_callback<T: Target>(
    ti: *mut bindings::dm_target,
    bio: *mut bindings::bio,
    error: *mut bindings::blk_status_t,
) -> c_int {
    // SAFETY: end_io runs between ctr and dtr for a bio this target mapped, whose per-bio
    // data map_callback filled; `error` is dm's status for it.
    unsafe {
        let pb = per_bio_of::<T>(bio);
        if (*pb).taken {
            // The final completion of a bio the worker finished: its status is already set.
            return bindings::DM_ENDIO_DONE as c_int;
        }
        let instance = instance_of::<T>(ti);
        let status = BlkStatus(*error);
        match instance.target.end_io(&TargetInfo { ti }, Bio::from_raw_mut(bio), status, &mut (*pb).target) {
            EndIo::Done(status) => {
                *error = status.0;
                bindings::DM_ENDIO_DONE as c_int
            }
            EndIo::Defer => {
                instance.defer(bio, pb);
                bindings::DM_ENDIO_INCOMPLETE as c_int
            }
        }
    }
}

unsafe extern "C" fn work_callback<T: Target>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the work item of a deferred bio's per-bio data (see `defer`), so the
    // containing PerBioData, its bio and target are live; the bio is ours until completed.
    unsafe {
        let work = work.cast::<core::mem::MaybeUninit<bindings::work_struct>>();
        let pb = super::compat::container_of_mut!(work, PerBioData<T::PerBio>, work);
        let ti = (*pb).ti;
        let bio = bindings::dm_bio_from_per_bio_data(pb.cast(), Instance::<T>::PER_BIO_SIZE);
        let instance = instance_of::<T>(ti);
        instance.target.work(&TargetInfo { ti }, DeferredBio::from_raw(bio, pb));
    }
}

/// # Safety
/// dm calls it with a target built by `ctr_callback::<T>` and not yet destroyed.
unsafe extern "C" fn presuspend_callback<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: presuspend runs between ctr and dtr (the caller's guarantee), in process context.
    let instance = unsafe { instance_of::<T>(ti) };
    instance.target.presuspend(&TargetInfo { ti });
}

/// # Safety
/// dm calls it with a target built by `ctr_callback::<T>` and not yet destroyed.
unsafe extern "C" fn presuspend_undo_callback<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: presuspend_undo runs between ctr and dtr (the caller's guarantee).
    let instance = unsafe { instance_of::<T>(ti) };
    instance.target.presuspend_undo(&TargetInfo { ti });
}

unsafe extern "C" fn postsuspend_callback<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: postsuspend runs between ctr and dtr, in process context.
    let instance = unsafe { instance_of::<T>(ti) };
    // Background work stops (and its run in progress ends) before the target's hook.
    // SAFETY: initialised in ctr; disable nests with the enable in resume.
    unsafe { bindings::disable_delayed_work_sync(instance.common.bg.get()) };
    // SAFETY: the pointer came from `Folder::into_raw` in resume and is taken back once.
    drop(unsafe { Folder::from_raw(instance.common.folder.swap(core::ptr::null_mut(), Ordering::AcqRel)) });
    if T::HAS_POSTSUSPEND {
        instance.target.postsuspend(&TargetInfo { ti });
    }
}

unsafe extern "C" fn resume_callback<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: resume runs between ctr and dtr, in process context, serialised with suspend.
    let instance = unsafe { instance_of::<T>(ti) };
    let info = TargetInfo { ti };
    // SAFETY: initialised (and disabled) in ctr; each suspend disabled it once more.
    unsafe { bindings::enable_delayed_work(instance.common.bg.get()) };
    add_folder::<T>(instance, &info);
    if T::HAS_RESUME {
        instance.target.resume(&info);
    }
}

/// Adds the device's sysfs folder, named after its kernel name (with `-<start sector>` for a
/// target not at the start of its table). Failure (no memory, name taken) is logged, not
/// fatal: the device works without it.
fn add_folder<T: Target>(instance: &Instance<T>, info: &TargetInfo) {
    // SAFETY: `ti` is live; its type is the `tt` field of our boxed RegisteredType (repr(C),
    // first field), which outlives every target of the type.
    let reg = unsafe { &*(*info.ti).type_.cast::<RegisteredType>() };
    let Some(kind) = &reg.device_kind else { return };
    let name = if info.begin() == 0 {
        kernel::str::CString::try_from_fmt(core::format_args!("{}", info.kernel_name()))
    } else {
        kernel::str::CString::try_from_fmt(core::format_args!("{}-{}", info.kernel_name(), info.begin()))
    };
    let owner: *const Instance<T> = instance;
    // SAFETY: the folder is removed (postsuspend or dtr) before the instance is freed, and
    // before the registration (the device holds a reference on the module).
    let folder = name.ok().and_then(|name| unsafe { Folder::add(kind, reg.root.as_ref(), name.as_char_ptr(), owner.cast_mut().cast()) });
    match folder {
        Some(folder) => {
            // SAFETY: a previous folder (none expected) is taken back and removed.
            drop(unsafe { Folder::from_raw(instance.common.folder.swap(folder.into_raw(), Ordering::AcqRel)) });
        }
        None => pr_warn!("{}: cannot add the sysfs folder\n", info.device_name()),
    }
}

unsafe extern "C" fn background_callback<T: Target>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` field of the delayed work in an `Instance<T>`'s `Common`
    // (its first field, repr(C), as is `bg` in `Common`); the instance lives until dtr, which
    // waits for this callback to return.
    unsafe {
        let dwork = super::compat::container_of_mut!(work, bindings::delayed_work, work);
        let instance = &*dwork.cast::<Instance<T>>();
        let ti = instance.common.ti;
        if let Some(ms) = instance.target.background(&TargetInfo { ti }) {
            bindings::dmr_background_queue(dwork, ms);
        }
    }
}

unsafe extern "C" fn device_show_callback<T: Target>(owner: *mut c_void, index: u32, buf: *mut c_char) -> isize {
    // SAFETY: `owner` is the live `Instance<T>` of the folder (see `add_folder`); sysfs gives
    // a page-sized buffer.
    let (instance, mut out) = unsafe { (&*owner.cast::<Instance<T>>(), ResultBuffer::from_raw(buf, kernel::page::PAGE_SIZE as u32)) };
    instance.target.show(&TargetInfo { ti: instance.common.ti }, index as usize, &mut out);
    out.len() as isize
}

unsafe extern "C" fn device_store_callback<T: Target>(owner: *mut c_void, index: u32, buf: *const c_char, len: usize) -> isize {
    // SAFETY: as in `device_show_callback`; sysfs gives `len` readable bytes.
    let (instance, input) = unsafe { (&*owner.cast::<Instance<T>>(), core::slice::from_raw_parts(buf.cast::<u8>(), len)) };
    match instance.target.store(&TargetInfo { ti: instance.common.ti }, index as usize, input) {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

unsafe extern "C" fn module_show_callback<T: Target>(owner: *mut c_void, index: u32, buf: *mut c_char) -> isize {
    // SAFETY: `owner` is the live RegisteredType (see `Registration::new`); sysfs gives a
    // page-sized buffer.
    let (reg, mut out) = unsafe { (&*owner.cast::<RegisteredType>(), ResultBuffer::from_raw(buf, kernel::page::PAGE_SIZE as u32)) };
    let devices = reg.device_kind.as_ref().map_or(0, FolderKind::count);
    T::module_show(index as usize, devices, &mut out);
    out.len() as isize
}

unsafe extern "C" fn module_store_callback<T: Target>(_owner: *mut c_void, index: u32, buf: *const c_char, len: usize) -> isize {
    // SAFETY: sysfs gives `len` readable bytes.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    match T::module_store(index as usize, input) {
        Ok(()) => len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

unsafe extern "C" fn proc_header_callback<T: Target>(m: *mut bindings::seq_file, devices: u32) {
    // SAFETY: `m` is the seq_file of the read in progress.
    let mut out = unsafe { SeqWriter::from_raw(m) };
    T::proc_header(devices, &mut out);
}

unsafe extern "C" fn proc_device_callback<T: Target>(owner: *mut c_void, m: *mut bindings::seq_file) {
    // SAFETY: `owner` is a device folder's live `Instance<T>` (the walk holds the kind's lock,
    // which folder removal takes); `m` is the read's seq_file.
    let (instance, mut out) = unsafe { (&*owner.cast::<Instance<T>>(), SeqWriter::from_raw(m)) };
    instance.target.proc_device(&TargetInfo { ti: instance.common.ti }, &mut out);
}

unsafe extern "C" fn message_callback<T: Target>(
    ti: *mut bindings::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
    result: *mut c_char,
    maxlen: c_uint,
) -> c_int {
    // SAFETY: message runs between ctr and dtr with `argc` valid strings and `maxlen` writable
    // bytes at `result`.
    let (target, args, mut out) = unsafe {
        (&instance_of::<T>(ti).target, Arg::slice_from_raw(argv, argc), ResultBuffer::from_raw(result, maxlen))
    };
    match target.message(&TargetInfo { ti }, args, &mut out) {
        // 1 tells dm that `result` holds output for the caller.
        Ok(()) if out.is_empty() => 0,
        Ok(()) => 1,
        Err(e) => e.errno.to_errno(),
    }
}

unsafe extern "C" fn status_callback<T: Target>(
    ti: *mut bindings::dm_target,
    kind: bindings::status_type_t,
    _flags: c_uint,
    result: *mut c_char,
    maxlen: c_uint,
) {
    let kind = match kind {
        bindings::status_type_t_STATUSTYPE_INFO => StatusKind::Info,
        bindings::status_type_t_STATUSTYPE_TABLE => StatusKind::Table,
        _ => StatusKind::Ima,
    };
    // SAFETY: status runs between ctr and dtr; `result` has `maxlen` writable bytes.
    let (target, mut out) = unsafe { (&instance_of::<T>(ti).target, ResultBuffer::from_raw(result, maxlen)) };
    target.status(&TargetInfo { ti }, kind, &mut out);
}

unsafe extern "C" fn iterate_devices_callback<T: Target>(
    ti: *mut bindings::dm_target,
    callout: bindings::iterate_devices_callout_fn,
    data: *mut core::ffi::c_void,
) -> c_int {
    let mut visitor = DeviceVisitor { ti, callout, data };
    // SAFETY: iterate_devices runs between ctr and dtr.
    let target = unsafe { &instance_of::<T>(ti).target };
    target.iterate_devices(&TargetInfo { ti }, &mut visitor)
}

unsafe extern "C" fn io_hints_callback<T: Target>(
    ti: *mut bindings::dm_target,
    limits: *mut bindings::queue_limits,
) {
    // SAFETY: io_hints runs between ctr and dtr with limits dm owns for this call.
    let (target, limits) = unsafe { (&instance_of::<T>(ti).target, QueueLimits::from_raw_mut(limits)) };
    target.io_hints(&TargetInfo { ti }, limits);
}
