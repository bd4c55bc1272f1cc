// SPDX-License-Identifier: GPL-2.0

//! `/etc/dm-remap/remaptab`: the devices to assemble at boot, one per line, like crypttab:
//!
//! ```text
//! # <name>  <main>                          <spare>                                      [<options>]
//! backup    /dev/disk/by-id/ata-OLD_DISK    UUID=6b1f0c2e-93a4-4c55-8e07-1d2f3a4b5c6d     -
//! ```
//!
//! - `<name>`: the /dev/mapper name.
//! - `<main>`: the main device, a path (a stable one: `/dev/disk/by-id/...`).
//! - `<spare>`: the spare device, a path or `UUID=<uuid>`, the spare UUID that `dm-remap dump`
//!   prints (it is in the spare's metadata, so it follows the spare wherever it is attached).
//! - `<options>`: `-` or a comma-separated list; `noauto`: not assembled at boot.
//!
//! Blank lines and everything after `#` are ignored.

use crate::error::{Error, Kind, Result};

/// The default location.
pub const DEFAULT_PATH: &str = "/etc/dm-remap/remaptab";

/// How an entry names its spare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpareRef {
    /// A device path.
    Path(String),
    /// The spare UUID from its metadata (lower-case, with dashes).
    Uuid(String),
}

/// One line of the remaptab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The /dev/mapper name.
    pub name: String,
    /// The main device's path.
    pub main: String,
    /// The spare.
    pub spare: SpareRef,
    /// `noauto`: listed, but not assembled by `discover --create`.
    pub noauto: bool,
    /// Line number, for messages.
    pub line: usize,
}

/// Whether `text` is a UUID in the 8-4-4-4-12 hex form.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]) && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Parses a remaptab; `file` names it in messages.
///
/// # Errors
/// [`Kind::BadInput`] naming the first malformed line, or a name used twice.
pub fn parse(file: &str, text: &str) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let bad = |what: String| Error::new(Kind::BadInput, format!("{file}:{line}: {what}"));
        let fields: Vec<&str> = raw.split('#').next().unwrap_or("").split_whitespace().collect();
        let (name, main, spare, options) = match fields[..] {
            [] => continue,
            [name, main, spare] => (name, main, spare, "-"),
            [name, main, spare, options] => (name, main, spare, options),
            _ => return Err(bad("expected '<name> <main> <spare> [<options>]'".into())),
        };
        if name.contains('/') || name.len() > 127 {
            return Err(bad(format!("invalid device name '{name}'")));
        }
        if entries.iter().any(|e| e.name == name) {
            return Err(bad(format!("name '{name}' is listed twice")));
        }
        let spare = match spare.strip_prefix("UUID=") {
            Some(uuid) if is_uuid(uuid) => SpareRef::Uuid(uuid.to_ascii_lowercase()),
            Some(uuid) => return Err(bad(format!("'{uuid}' is not a UUID"))),
            None if spare.starts_with('/') => SpareRef::Path(spare.to_string()),
            None => return Err(bad(format!("spare '{spare}' is neither a path nor UUID=..."))),
        };
        if !main.starts_with('/') {
            return Err(bad(format!("main '{main}' is not a path")));
        }
        let mut noauto = false;
        for option in options.split(',').filter(|o| *o != "-" && !o.is_empty()) {
            match option {
                "noauto" => noauto = true,
                other => return Err(bad(format!("unknown option '{other}'"))),
            }
        }
        entries.push(Entry { name: name.to_string(), main: main.to_string(), spare, noauto, line });
    }
    Ok(entries)
}

/// Reads and parses the remaptab at `path`; a missing file is an empty table.
///
/// # Errors
/// [`Kind::BadInput`] (malformed), [`Kind::Device`] (unreadable).
pub fn load(path: &str) -> Result<Vec<Entry>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(path, "cannot read", &e)),
    }
}
