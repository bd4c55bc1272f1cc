// SPDX-License-Identifier: GPL-2.0

//! What differs between the kernel series the module supports (6.12 and 7.x), in one place.
//!
//! The module is built from the same source for both; Kbuild passes `--cfg dmr_kernel_7` when
//! the kernel's VERSION is 7 or more. Everything else in the module uses the names here, never
//! the series-specific ones; docs/kernels.md lists the differences and why each exists. The C
//! side's counterpart is `compat.h`.

/// Declares the module (`module!`) with one author: 6.12's macro takes `author: "..."`, 7.x's
/// takes `authors: ["..."]` (the singular field is gone); the other fields are the same, in this
/// order. Tokens pass through unparsed (`tt`), as the proc macro wants them, and the invocation
/// for the other series is removed by its `cfg` before it is expanded.
#[macro_export]
macro_rules! compat_module {
    (type: $type:ident, name: $name:tt, author: $author:tt, description: $desc:tt,
     license: $license:tt, alias: [$($alias:tt),*] $(,)?) => {
        #[cfg(not(dmr_kernel_7))]
        kernel::prelude::module! {
            type: $type, name: $name, author: $author, description: $desc, license: $license,
            alias: [$($alias),*],
        }
        #[cfg(dmr_kernel_7)]
        kernel::prelude::module! {
            type: $type, name: $name, authors: [$author], description: $desc, license: $license,
            alias: [$($alias),*],
        }
    };
}

/// The `*mut` container of a `*mut` field pointer. The kernel crate's `container_of!` returns a
/// `*const` in 6.12 and keeps the field pointer's mutability in 7.x, where it also insists that
/// the pointer has exactly the field's type (6.12 takes any pointer): cast to it first.
///
/// # Safety
///
/// As for `container_of!`: the field pointer must point to that field of a live container; the
/// macro must be used inside an `unsafe` block.
#[cfg(not(dmr_kernel_7))]
macro_rules! container_of_mut {
    ($ptr:expr, $type:ty, $field:ident) => {
        kernel::container_of!($ptr, $type, $field).cast_mut()
    };
}

/// See the 6.12 variant above.
#[cfg(dmr_kernel_7)]
macro_rules! container_of_mut {
    ($ptr:expr, $type:ty, $field:ident) => {
        kernel::container_of!($ptr, $type, $field)
    };
}
pub(crate) use container_of_mut;

/// An initialiser that zeroes a `Zeroable` value in place: `kernel::init::zeroed` in 6.12,
/// `pin_init::init_zeroed` in 7.x (the kernel crate no longer re-exports it).
#[cfg(not(dmr_kernel_7))]
pub(crate) use kernel::init::zeroed as init_zeroed;
/// See the 6.12 variant above.
#[cfg(dmr_kernel_7)]
pub(crate) use pin_init::init_zeroed;
