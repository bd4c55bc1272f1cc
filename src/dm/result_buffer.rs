// SPDX-License-Identifier: GPL-2.0

//! The `result`/`maxlen` buffer dm gives `status` and `message`, as a [`core::fmt::Write`].

use kernel::ffi::c_char;
use core::fmt;

/// Text output into a dm result buffer, always NUL-terminated.
///
/// Output that does not fit is cut and the buffer left full (`maxlen - 1` bytes), which is how
/// dm's ioctl layer recognises a full buffer and asks again with a larger one.
///
/// # Invariants
/// `buf` points to `maxlen` writable bytes for the life of `self`; `pos < maxlen` whenever
/// `maxlen > 0`, and `buf[pos] == 0`.
pub struct ResultBuffer<'a> {
    buf: *mut c_char,
    maxlen: usize,
    pos: usize,
    _lifetime: core::marker::PhantomData<&'a mut [u8]>,
}

impl ResultBuffer<'_> {
    /// # Safety
    /// `buf` points to `maxlen` bytes writable during `'a`.
    pub(crate) unsafe fn from_raw(buf: *mut c_char, maxlen: u32) -> Self {
        let maxlen = maxlen as usize;
        if maxlen > 0 {
            // SAFETY: `buf` has at least one byte.
            unsafe { *buf = 0 };
        }
        // INVARIANT: pos = 0 and buf[0] = 0.
        Self { buf, maxlen, pos: 0, _lifetime: core::marker::PhantomData }
    }
}

impl ResultBuffer<'_> {
    /// Nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Bytes written (without the NUL).
    pub fn len(&self) -> usize {
        self.pos
    }
}

impl fmt::Write for ResultBuffer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.maxlen == 0 {
            return Err(fmt::Error);
        }
        // pos < maxlen (type invariant), so neither subtraction saturates.
        let room = self.maxlen.saturating_sub(1).saturating_sub(self.pos);
        let n = s.len().min(room);
        // SAFETY: `pos + n <= maxlen - 1`, within the buffer (type invariant); `s` cannot
        // overlap a buffer we hold exclusively.
        unsafe {
            core::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.pos).cast(), n);
            *self.buf.add(self.pos).add(n) = 0;
        }
        // INVARIANT: pos + n <= maxlen - 1 and that byte was just set to 0.
        self.pos = self.pos.saturating_add(n);
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}
