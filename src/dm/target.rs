// SPDX-License-Identifier: GPL-2.0

//! Device-mapper target types: the [`Target`] trait a target implements in safe Rust, the
//! registration of its `struct target_type`, and the `extern "C"` trampolines between them.
//!
//! C header: [`include/linux/device-mapper.h`](srctree/include/linux/device-mapper.h).

use super::bindings;
use super::bio::Bio;
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

/// A constructor failure: the `ti->error` message and the errno returned.
#[derive(Debug, Clone, Copy)]
pub struct CtrError {
    /// Short, static message for `ti->error`.
    pub message: &'static CStr,
    /// The error returned from ctr (usually `EINVAL`).
    pub errno: Error,
}

impl CtrError {
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

    /// Builds the target from its table-line arguments (after `<start> <len> <type>`).
    fn ctr(ctx: &mut CtrContext, args: &[Arg<'_>]) -> Result<Self, CtrError>;

    /// Routes a bio: point it at a device and sector, or take it.
    fn map(&self, ti: &TargetInfo, bio: &mut Bio) -> MapResult;

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

/// # Safety
/// `ti` is a live target whose `private` was set by [`ctr_callback::<T>`].
unsafe fn target_of<'a, T: Target>(ti: *mut bindings::dm_target) -> &'a T {
    // SAFETY: the caller guarantees `private` holds a `T` from `KBox::into_raw` that lives
    // until dtr.
    unsafe { &*(*ti).private.cast::<T>() }
}

unsafe extern "C" fn ctr_callback<T: Target>(
    ti: *mut bindings::dm_target,
    argc: c_uint,
    argv: *mut *mut c_char,
) -> c_int {
    // SAFETY: dm passes `argc` valid strings that live for the duration of ctr.
    let args = unsafe { Arg::slice_from_raw(argv, argc) };
    // INVARIANT: `ti` is the target being constructed, live during this call.
    let mut ctx = CtrContext { info: TargetInfo { ti } };
    let result = T::ctr(&mut ctx, args).and_then(|target| {
        KBox::new(target, GFP_KERNEL).map_err(|_| CtrError {
            message: c"Cannot allocate target context",
            errno: ENOMEM,
        })
    });
    match result {
        Ok(target) => {
            // SAFETY: `ti` is live; dtr reclaims the box.
            unsafe { (*ti).private = KBox::into_raw(target).cast() };
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
    // SAFETY: dtr is only called after a successful ctr, whose `private` is a `KBox<T>`
    // nothing else uses any more.
    drop(unsafe { KBox::from_raw((*ti).private.cast::<T>()) });
}

unsafe extern "C" fn map_callback<T: Target>(
    ti: *mut bindings::dm_target,
    bio: *mut bindings::bio,
) -> c_int {
    // SAFETY: map runs between ctr and dtr on a bio dm lends to this call only.
    let (target, bio) = unsafe { (target_of::<T>(ti), Bio::from_raw_mut(bio)) };
    target.map(&TargetInfo { ti }, bio) as c_int
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
    let (target, mut out) = unsafe { (target_of::<T>(ti), ResultBuffer::from_raw(result, maxlen)) };
    target.status(&TargetInfo { ti }, kind, &mut out);
}

unsafe extern "C" fn iterate_devices_callback<T: Target>(
    ti: *mut bindings::dm_target,
    callout: bindings::iterate_devices_callout_fn,
    data: *mut core::ffi::c_void,
) -> c_int {
    let mut visitor = DeviceVisitor { ti, callout, data };
    // SAFETY: iterate_devices runs between ctr and dtr.
    let target = unsafe { target_of::<T>(ti) };
    target.iterate_devices(&TargetInfo { ti }, &mut visitor)
}

unsafe extern "C" fn io_hints_callback<T: Target>(
    ti: *mut bindings::dm_target,
    limits: *mut bindings::queue_limits,
) {
    // SAFETY: io_hints runs between ctr and dtr with limits dm owns for this call.
    let (target, limits) = unsafe { (target_of::<T>(ti), QueueLimits::from_raw_mut(limits)) };
    target.io_hints(&TargetInfo { ti }, limits);
}
