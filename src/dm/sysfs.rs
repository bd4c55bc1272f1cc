// SPDX-License-Identifier: GPL-2.0

//! Sysfs folders and a /proc summary file (C side: `kobj.c`), used by the target layer in
//! `target.rs`: a folder under `/sys/kernel/` for the module, one below it per active device,
//! and `/proc/<name>` walking the device folders.

use super::bindings;
use core::ffi::{c_void, CStr};
use core::fmt;
use core::ptr::NonNull;
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{code::ENOMEM, Result};

/// One file of a folder: its name and whether root may write it (mode 0644, else 0444).
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    /// File name.
    pub name: &'static CStr,
    /// Writable by root.
    pub writable: bool,
}

/// Reads a file: the owner given to [`Folder::add`], the file's index, a `PAGE_SIZE` buffer.
pub(crate) type ShowFn = unsafe extern "C" fn(*mut c_void, u32, *mut kernel::ffi::c_char) -> isize;
/// Writes a file: owner, index, the bytes written and their count.
pub(crate) type StoreFn = unsafe extern "C" fn(*mut c_void, u32, *const kernel::ffi::c_char, usize) -> isize;
/// Writes the /proc header, given the number of folders.
pub(crate) type ProcHeaderFn = unsafe extern "C" fn(*mut bindings::seq_file, u32);
/// Writes one folder's /proc lines, given its owner.
pub(crate) type ProcFolderFn = unsafe extern "C" fn(*mut c_void, *mut bindings::seq_file);

/// A kind of folder: the files each folder of it has, and their callbacks.
///
/// # Invariants
/// `raw` is a live `dmr_folder_kind`, freed on drop.
pub(crate) struct FolderKind {
    raw: NonNull<bindings::dmr_folder_kind>,
}

impl FolderKind {
    /// Creates the kind.
    ///
    /// # Safety
    /// `show` and `store` accept every owner pointer later given to [`Folder::add`] with this
    /// kind, and every index below `files.len()`.
    pub(crate) unsafe fn new(files: &[FileSpec], show: ShowFn, store: StoreFn) -> Result<Self> {
        let mut specs = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        for f in files {
            specs.push(bindings::dmr_file_spec { name: f.name.as_ptr().cast(), writable: f.writable }, GFP_KERNEL)?;
        }
        let n = u32::try_from(files.len()).map_err(|_| ENOMEM)?;
        // SAFETY: `specs` holds `n` valid entries whose names are static; C copies what it keeps.
        let raw = unsafe { bindings::dmr_folder_kind_new(specs.as_ptr(), n, Some(show), Some(store)) };
        // INVARIANT: a non-null return is a live kind.
        Ok(Self { raw: NonNull::new(raw).ok_or(ENOMEM)? })
    }

    /// Folders of this kind that exist now.
    pub(crate) fn count(&self) -> u32 {
        // SAFETY: the kind is live (type invariant).
        unsafe { bindings::dmr_folder_kind_count(self.raw.as_ptr()) }
    }
}

impl Drop for FolderKind {
    fn drop(&mut self) {
        // SAFETY: live (type invariant); every folder of the kind borrowed it and is gone.
        unsafe { bindings::dmr_folder_kind_free(self.raw.as_ptr()) };
    }
}

// SAFETY: the kind is only read after creation, and its list is protected by its C mutex.
unsafe impl Send for FolderKind {}
// SAFETY: as above.
unsafe impl Sync for FolderKind {}

/// A folder in sysfs, removed on drop.
///
/// # Invariants
/// `raw` is a live `dmr_folder`.
pub(crate) struct Folder {
    raw: NonNull<bindings::dmr_folder>,
}

impl Folder {
    /// Adds folder `name` of `kind` under `parent` (`/sys/kernel` if `None`).
    ///
    /// # Safety
    /// `name` is a NUL-terminated string (the kobject core copies it); `owner` stays valid
    /// for the kind's callbacks until the folder is dropped; the folder is dropped before
    /// `kind` and `parent`.
    pub(crate) unsafe fn add(kind: &FolderKind, parent: Option<&Folder>, name: *const kernel::ffi::c_char, owner: *mut c_void) -> Option<Self> {
        let parent = parent.map_or(core::ptr::null_mut(), |p| p.raw.as_ptr());
        // SAFETY: `kind` and `parent` are live; `name` is NUL-terminated (caller's duty).
        let raw = unsafe { bindings::dmr_folder_add(kind.raw.as_ptr(), parent, name, owner) };
        // INVARIANT: a non-null return is a live folder.
        NonNull::new(raw).map(|raw| Self { raw })
    }

    /// Gives up ownership (for storage in an atomic pointer); see [`Folder::from_raw`].
    pub(crate) fn into_raw(self) -> *mut bindings::dmr_folder {
        let raw = self.raw.as_ptr();
        core::mem::forget(self);
        raw
    }

    /// Takes back a folder from [`Folder::into_raw`]; `None` for null.
    ///
    /// # Safety
    /// `raw` is null or came from `into_raw` and was not taken back before.
    pub(crate) unsafe fn from_raw(raw: *mut bindings::dmr_folder) -> Option<Self> {
        // INVARIANT: the caller returns a live folder we owned.
        NonNull::new(raw).map(|raw| Self { raw })
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        // SAFETY: live (type invariant). After this, no callback runs for its owner.
        unsafe { bindings::dmr_folder_remove(self.raw.as_ptr()) };
    }
}

// SAFETY: a folder is a handle to a kobject, usable from any thread.
unsafe impl Send for Folder {}
// SAFETY: `&Folder` gives no access to the kobject.
unsafe impl Sync for Folder {}

/// `/proc/<name>`, removed on drop.
///
/// # Invariants
/// `raw` is a live proc entry.
pub(crate) struct ProcFile {
    raw: NonNull<bindings::proc_dir_entry>,
}

impl ProcFile {
    /// Creates `/proc/<name>` showing `header`, then `folder` for each folder of `kind`.
    ///
    /// # Safety
    /// `folder` accepts the owners of `kind`'s folders; the file is dropped before `kind`.
    pub(crate) unsafe fn new(name: &CStr, kind: &FolderKind, header: ProcHeaderFn, folder: ProcFolderFn) -> Result<Self> {
        // SAFETY: `name` is static for our use (dm target names are); `kind` outlives the file.
        let raw = unsafe { bindings::dmr_proc_create(name.as_ptr().cast(), kind.raw.as_ptr(), Some(header), Some(folder)) };
        // INVARIANT: a non-null return is a live entry.
        Ok(Self { raw: NonNull::new(raw).ok_or(ENOMEM)? })
    }
}

impl Drop for ProcFile {
    fn drop(&mut self) {
        // SAFETY: live (type invariant); waits for readers in progress.
        unsafe { bindings::dmr_proc_remove(self.raw.as_ptr()) };
    }
}

// SAFETY: a handle to a proc entry, usable from any thread.
unsafe impl Send for ProcFile {}
// SAFETY: `&ProcFile` gives no access to it.
unsafe impl Sync for ProcFile {}

/// Text output into a `seq_file` (a /proc read).
///
/// # Invariants
/// `m` is the live seq_file of the read in progress.
pub struct SeqWriter {
    m: *mut bindings::seq_file,
}

impl SeqWriter {
    /// # Safety
    /// `m` is the seq_file of a read in progress, for the writer's life.
    pub(crate) unsafe fn from_raw(m: *mut bindings::seq_file) -> Self {
        Self { m }
    }
}

impl fmt::Write for SeqWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `m` is live (type invariant); `s` is readable for its length. A full
        // buffer makes seq_file retry the whole show with a larger one.
        match unsafe { bindings::seq_write(self.m, s.as_ptr().cast(), s.len()) } {
            0 => Ok(()),
            _ => Err(fmt::Error),
        }
    }
}
