// SPDX-License-Identifier: GPL-2.0

//! Errors of the tool: one line of text and a distinct exit status per kind
//! (documented in `docs/dm-remap.8.md`, "EXIT STATUS").

use std::fmt;

/// What went wrong, which fixes the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A device or file could not be opened, read or written (3).
    Device,
    /// The request was refused before anything was written, for the reason the kernel would
    /// give (table line, devices, spare contents) (4).
    Refused,
    /// `check`: some metadata copies are damaged or stale, but one is valid (5).
    Damaged,
    /// No metadata copy is valid (6).
    NoValidCopy,
    /// The device holds no dm-remap metadata at all (7).
    NotASpare,
    /// The device is in use (held open exclusively, by a live table or a mount) (8).
    Busy,
    /// A device-mapper ioctl failed (module not loaded, kernel refused the table, ...) (9).
    DeviceMapper,
    /// No such dm device, or not a dm-remap-v4 device (10).
    NotFound,
    /// An input file (remaptab, badblocks list, ddrescue mapfile) is malformed (11).
    BadInput,
    /// `discover`: some spares were not assembled (mismatched, ambiguous, damaged) (12).
    NotAssembled,
    /// `import`: the spare filled up or a message failed part way (13).
    Incomplete,
}

impl Kind {
    /// The process exit status.
    pub const fn exit_code(self) -> u8 {
        match self {
            Self::Device => 3,
            Self::Refused => 4,
            Self::Damaged => 5,
            Self::NoValidCopy => 6,
            Self::NotASpare => 7,
            Self::Busy => 8,
            Self::DeviceMapper => 9,
            Self::NotFound => 10,
            Self::BadInput => 11,
            Self::NotAssembled => 12,
            Self::Incomplete => 13,
        }
    }
}

/// An error: its kind and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The kind (exit status).
    pub kind: Kind,
    /// What happened, one line, without the program name.
    pub message: String,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// An I/O error on `path`; `EBUSY` becomes [`Kind::Busy`].
    pub fn io(path: &str, what: &str, error: &std::io::Error) -> Self {
        let kind = if error.raw_os_error() == Some(libc::EBUSY) { Kind::Busy } else { Kind::Device };
        Self::new(kind, format!("{path}: {what}: {error}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The tool's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// What a command prints on standard output, and how it ends (printed even when it fails,
/// e.g. `check` lists the copies before saying that some are damaged).
pub type Outcome = (String, Result<()>);

/// Turns a command's result into an [`Outcome`] with nothing printed on failure.
pub fn outcome(result: Result<String>) -> Outcome {
    match result {
        Ok(text) => (text, Ok(())),
        Err(e) => (String::new(), Err(e)),
    }
}
