// SPDX-License-Identifier: GPL-2.0

//! Read-copy-update: read-side critical sections and a pointer published to RCU readers.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h).

use super::bindings;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::alloc::KBox;

/// An RCU read-side critical section, from creation to drop. The holder must not sleep.
pub struct RcuReadGuard {
    // Not Send: the section must end on the CPU (task) that began it.
    _not_send: PhantomData<*mut ()>,
}

impl RcuReadGuard {
    /// Enters a read-side critical section (`rcu_read_lock`).
    pub fn new() -> Self {
        // SAFETY: always allowed; paired with the unlock in drop.
        unsafe { bindings::dmr_rcu_read_lock() };
        Self { _not_send: PhantomData }
    }
}

impl Drop for RcuReadGuard {
    fn drop(&mut self) {
        // SAFETY: pairs with the lock taken in `new` by this same guard.
        unsafe { bindings::dmr_rcu_read_unlock() };
    }
}

/// A boxed value that readers reach without locks under an [`RcuReadGuard`] and that a writer
/// replaces as a whole; the old value is freed only after a grace period.
///
/// # Invariants
/// `ptr` always comes from `KBox::into_raw` and is owned by `self`.
pub struct RcuBox<T> {
    ptr: AtomicPtr<T>,
}

// SAFETY: the value is shared with readers on any CPU (`T: Sync`) and dropped by whoever
// replaces it (`T: Send`).
unsafe impl<T: Send + Sync> Send for RcuBox<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for RcuBox<T> {}

impl<T> RcuBox<T> {
    /// Publishes `value`.
    pub fn new(value: KBox<T>) -> Self {
        // INVARIANT: from KBox::into_raw.
        Self { ptr: AtomicPtr::new(KBox::into_raw(value)) }
    }

    /// The current value, valid for the read-side critical section.
    pub fn get<'a>(&'a self, _guard: &'a RcuReadGuard) -> &'a T {
        // SAFETY: the pointer is valid (type invariant) and, while the guard lives, a value
        // replaced concurrently is not freed (`replace` waits for a grace period first).
        unsafe { &*self.ptr.load(Ordering::Acquire) }
    }

    /// Publishes `value` in place of the current one, waits until no reader can still see the
    /// old one (`synchronize_rcu`, sleeps) and returns it. Concurrent replacers each get back
    /// a distinct old value.
    pub fn replace(&self, value: KBox<T>) -> KBox<T> {
        let old = self.ptr.swap(KBox::into_raw(value), Ordering::AcqRel);
        // SAFETY: may sleep; callers are in process context (documented above).
        unsafe { bindings::synchronize_rcu() };
        // SAFETY: `old` came from KBox::into_raw (type invariant), was unpublished by the swap,
        // and after the grace period no reader holds it.
        unsafe { KBox::from_raw(old) }
    }
}

impl<T> Drop for RcuBox<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self` means no reader borrows the value; the pointer is ours.
        drop(unsafe { KBox::from_raw(*self.ptr.get_mut()) });
    }
}
