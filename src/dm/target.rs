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
use core::ffi::CStr;
use kernel::ffi::{c_char, c_int, c_uint};
use core::marker::PhantomData;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::*, Error};
use kernel::prelude::*;
use kernel::types::Opaque;

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

    /// Signals a dm event (`dm_table_event`): `dmsetup wait` and dmeventd wake up.
    pub fn raise_event(&self) {
        // SAFETY: `ti` and its table are live during the hook.
        unsafe { bindings::dm_table_event((*self.ti).table) };
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
}

/// A registered target type; unregistered on drop.
///
/// # Invariants
/// `tt` is registered with dm and stays at the same address (boxed) until unregistered.
pub struct Registration<T: Target> {
    tt: KBox<Opaque<bindings::target_type>>,
    _target: PhantomData<T>,
}

// SAFETY: the registration only holds the target_type, which dm reads from any CPU.
unsafe impl<T: Target> Send for Registration<T> {}
// SAFETY: as above; `&Registration` gives no access to it.
unsafe impl<T: Target> Sync for Registration<T> {}

impl<T: Target> Registration<T> {
    /// Registers `T` with device-mapper (`dm_register_target`).
    ///
    /// # Errors
    /// `ENOMEM`, or dm's error (e.g. `EEXIST` if the name is taken).
    pub fn new(module: &'static ThisModule) -> Result<Self> {
        let tt = KBox::new(Opaque::<bindings::target_type>::uninit(), GFP_KERNEL)?;
        let p = tt.get();
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
            if T::HAS_IO_HINTS {
                (*p).io_hints = Some(io_hints_callback::<T>);
            }
            if T::HAS_END_IO {
                (*p).end_io = Some(end_io_callback::<T>);
            }
            if T::HAS_MESSAGE {
                (*p).message = Some(message_callback::<T>);
            }
            if T::HAS_POSTSUSPEND {
                (*p).postsuspend = Some(postsuspend_callback::<T>);
            }
        }
        // SAFETY: `p` is a fully initialised target_type at a stable address that lives
        // until `drop` unregisters it.
        kernel::error::to_result(unsafe { bindings::dm_register_target(p) })?;
        // INVARIANT: registered just now; the box keeps its address.
        Ok(Self { tt, _target: PhantomData })
    }
}

impl<T: Target> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new` (type invariant). dm refuses module unload while any
        // table uses the type, so no hook can run after this.
        unsafe { bindings::dm_unregister_target(self.tt.get()) };
    }
}

/// What `ti->private` points to: the target and what the layer keeps for it. Fields drop in
/// order: the workqueue first (draining deferred bios, which use the target), then the target.
struct Instance<T: Target> {
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
        KBox::new(Instance { queue, target }, GFP_KERNEL).map_err(|_| TargetError {
            message: c"Cannot allocate target context",
            errno: ENOMEM,
        })
    });
    match result {
        Ok(instance) => {
            // SAFETY: `ti` is live; dtr reclaims the box.
            unsafe { (*ti).private = KBox::into_raw(instance).cast() };
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
    // `KBox<Instance<T>>` nothing else uses any more (dm waited for in-flight bios).
    drop(unsafe { KBox::from_raw((*ti).private.cast::<Instance<T>>()) });
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

unsafe extern "C" fn postsuspend_callback<T: Target>(ti: *mut bindings::dm_target) {
    // SAFETY: postsuspend runs between ctr and dtr, in process context.
    let target = unsafe { &instance_of::<T>(ti).target };
    target.postsuspend(&TargetInfo { ti });
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
