// SPDX-License-Identifier: GPL-2.0

//! Rate limiting of log lines on I/O paths (`struct ratelimit_state`, the default interval
//! and burst of `printk_ratelimited`).

use super::bindings;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::Result;
use kernel::types::Opaque;

/// A rate limit: [`RateLimit::allow`] says whether the next log line may be printed.
///
/// # Invariants
/// `state` was initialised by `ratelimit_state_init` and stays in place (boxed).
pub struct RateLimit {
    state: KBox<Opaque<bindings::ratelimit_state>>,
}

// SAFETY: ratelimit_state has its own lock for use from any context.
unsafe impl Send for RateLimit {}
// SAFETY: as above.
unsafe impl Sync for RateLimit {}

impl RateLimit {
    /// A rate limit with the kernel's default interval (5 s) and burst (10).
    ///
    /// # Errors
    /// `ENOMEM`.
    pub fn new() -> Result<Self> {
        let state = KBox::new(Opaque::<bindings::ratelimit_state>::uninit(), GFP_KERNEL)?;
        // SAFETY: the helper initialises every field of the boxed state.
        unsafe { bindings::dmr_ratelimit_init(state.get()) };
        // INVARIANT: initialised just now.
        Ok(Self { state })
    }

    /// Whether a line may be printed now; counts the ones suppressed. Callable from any
    /// context, including interrupts.
    pub fn allow(&self) -> bool {
        // SAFETY: initialised (type invariant); `___ratelimit` takes the state's own lock.
        unsafe { bindings::___ratelimit(self.state.get(), c"dm-remap".as_ptr().cast()) != 0 }
    }
}
