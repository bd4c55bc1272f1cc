// SPDX-License-Identifier: GPL-2.0

//! A small safe abstraction over the kernel's device-mapper target interface.
//!
//! Every `unsafe` block of the module lives in this folder, each with a `// SAFETY:` comment;
//! targets are written against [`Target`] in safe Rust. Shaped after the in-tree Rust block
//! abstractions (`rust/kernel/block/mq.rs`): a `#[vtable]` trait, `extern "C"` trampolines,
//! RAII wrappers for what dm lends or hands over.

// Written as a library API (as it would be in the kernel crate), used by one target here.
#![allow(unreachable_pub)]

mod bindings;
pub(crate) mod compat;
pub mod bio;
pub mod deferred;
pub mod device;
pub mod page_io;
pub mod ratelimit;
pub mod rcu;
pub mod result_buffer;
pub mod sysfs;
pub mod target;

pub use bio::{Bio, BioOp, BlkStatus};
pub use deferred::{BioSet, DeferredBio};
pub use device::{DeviceVisitor, DmDev, QueueLimits};
pub use page_io::{NoIoScope, PageBuffer, MAX_BUFFER_PAGES};
pub use ratelimit::RateLimit;
pub use rcu::{RcuBox, RcuReadGuard};
pub use result_buffer::ResultBuffer;
pub use sysfs::FileSpec;
pub use target::{
    Arg, Claim, CtrContext, EndIo, MapResult, Registration, SharedClaim, StatusKind, Target, TargetError, TargetInfo,
    DM_NAME_LEN,
};

/// Fills `out` with random bytes from the kernel's CSPRNG (`get_random_bytes`).
pub fn random_bytes(out: &mut [u8]) {
    // SAFETY: `out` is valid for writing its length.
    unsafe { bindings::get_random_bytes(out.as_mut_ptr().cast(), out.len()) };
}

/// Jiffies now (a cheap clock for "did anything happen since", not for durations). Read in
/// place, as C's `jiffies` macro does: `map` calls this for every bio.
pub fn jiffies() -> u64 {
    // SAFETY: `jiffies` is a word-sized global the timer interrupt updates; a volatile read of
    // it is what C's `READ_ONCE(jiffies)` does, and a torn value cannot occur on 64-bit.
    (unsafe { core::ptr::read_volatile(&raw const kernel::bindings::jiffies) }) as u64
}

/// Monotonic milliseconds since boot (`ktime_get`).
pub fn now_ms() -> u64 {
    // SAFETY: callable from any context.
    unsafe { bindings::dmr_now_ms() }
}

/// Sleeps for at least `ms` milliseconds (`msleep`). Process context only.
pub fn sleep_ms(ms: u32) {
    // SAFETY: msleep may be called from any sleepable context, which the caller guarantees.
    unsafe { bindings::msleep(ms) };
}

/// Adds a `field=value` string to the module's `.modinfo` section (what `modinfo` prints),
/// for fields the kernel crate's `module!` macro does not offer, such as `version`.
#[macro_export]
macro_rules! modinfo {
    ($name:ident, $field:literal, $value:expr) => {
        #[link_section = ".modinfo"]
        #[used]
        static $name: [u8; concat!($field, "=", $value, "\0").len()] = {
            const TEXT: &[u8] = concat!($field, "=", $value, "\0").as_bytes();
            let mut out = [0u8; TEXT.len()];
            let mut i = 0;
            while i < TEXT.len() {
                out[i] = TEXT[i];
                i += 1;
            }
            out
        };
    };
}
