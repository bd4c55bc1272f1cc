// SPDX-License-Identifier: GPL-2.0

//! Parsing of the INFO status line (`dmsetup status`, `docs/status.md`), for host tools: the
//! reverse of [`super::status::write_info`].
//!
//! Tolerant where the line may grow and strict where it may not: the layout `<format>` must be
//! 1, the thirteen fields of format 1 must be there and well formed; the fields appended
//! later (`<scan_state> <scan_progress>`, then `<metadata_mode>`) are optional, health,
//! scan-state and mode words this version does not know are kept as they are, and any further
//! appended fields are ignored.

use super::table_line::parse_decimal;

/// The INFO status line, parsed. Units as in `docs/status.md`: counts of remap units unless a
/// name says otherwise.
///
/// `S` holds the words (health, scan state): [`parse_info`] gives `&str` borrowed from the
/// line; [`InfoStatus::map`] turns them into another type (an owned `String` on the host).
/// With the `serde` feature it is `Serialize`, field names and order as declared here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct InfoStatus<S> {
    /// The remap unit in 512-byte sectors.
    pub unit_sectors: u32,
    /// Main units redirected to the spare.
    pub remaps: u64,
    /// Main units that failed a read and wait for a write.
    pub pending: u64,
    /// Spare data-area units in use.
    pub spare_used: u64,
    /// Spare data-area units in all.
    pub spare_total: u64,
    /// Read errors seen from either device.
    pub read_errors: u64,
    /// Write errors seen from either device.
    pub write_errors: u64,
    /// Errors that could not be remapped.
    pub remap_failures: u64,
    /// The health word as printed (`ok`, `degraded`, `spare_low`, `spare_full`, or a word of a
    /// newer module).
    pub health: S,
    /// Sequence number of the last metadata commit.
    pub metadata_seq: u64,
    /// Metadata copies (of 5) holding the last commit.
    pub metadata_copies: u32,
    /// Copies rewritten, when the device was created or by the scan's check of the copies.
    pub metadata_repairs: u64,
    /// Failed metadata writes.
    pub metadata_errors: u64,
    /// Background scan state (`off`, `idle`, `scanning`, or a newer word); `None` from a module
    /// that does not print it.
    pub scan_state: Option<S>,
    /// Progress of the current scan pass, per cent (0..=100); `None` when not printed.
    pub scan_progress: Option<u32>,
    /// Metadata mode (`write`, `read_only`, `fail`, or a newer word); `None` from a module
    /// that does not print it.
    pub metadata_mode: Option<S>,
}

impl<S> InfoStatus<S> {
    /// The same status with `f` applied to each word (health, then scan state and metadata
    /// mode if present).
    pub fn map<T>(self, mut f: impl FnMut(S) -> T) -> InfoStatus<T> {
        InfoStatus {
            unit_sectors: self.unit_sectors,
            remaps: self.remaps,
            pending: self.pending,
            spare_used: self.spare_used,
            spare_total: self.spare_total,
            read_errors: self.read_errors,
            write_errors: self.write_errors,
            remap_failures: self.remap_failures,
            health: f(self.health),
            metadata_seq: self.metadata_seq,
            metadata_copies: self.metadata_copies,
            metadata_repairs: self.metadata_repairs,
            metadata_errors: self.metadata_errors,
            scan_state: self.scan_state.map(&mut f),
            scan_progress: self.scan_progress,
            metadata_mode: self.metadata_mode.map(f),
        }
    }
}

/// Why an INFO line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusError {
    /// Fewer fields than format 1 has.
    MissingField,
    /// The layout version is not 1 (the value found, if it is a number).
    UnknownFormat,
    /// A field that must be a number (or `<a>/<b>`) is not; the 1-based field position.
    BadField(usize),
}

impl StatusError {
    /// A short description.
    pub const fn message(self) -> &'static str {
        match self {
            Self::MissingField => "status line has too few fields",
            Self::UnknownFormat => "status line has an unknown layout version",
            Self::BadField(_) => "status line has a malformed field",
        }
    }
}

impl core::fmt::Display for StatusError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadField(n) => write!(f, "{} (field {n})", self.message()),
            _ => f.write_str(self.message()),
        }
    }
}

/// Parses the target's INFO status (the part after `<start> <len> dm-remap-v4`).
///
/// # Errors
/// [`StatusError::MissingField`], [`StatusError::UnknownFormat`], [`StatusError::BadField`].
pub fn parse_info(line: &str) -> Result<InfoStatus<&str>, StatusError> {
    let mut fields = line.split_ascii_whitespace();
    let mut position = 0usize;
    let mut next = || {
        position = position.saturating_add(1);
        fields.next().map(|word| (position, word)).ok_or(StatusError::MissingField)
    };
    let number = |(at, word): (usize, &str)| parse_decimal(word.as_bytes()).ok_or(StatusError::BadField(at));
    let small = |(at, word): (usize, &str)| {
        parse_decimal(word.as_bytes()).and_then(|n| u32::try_from(n).ok()).ok_or(StatusError::BadField(at))
    };
    let pair = |(at, word): (usize, &str)| -> Result<(u64, u64), StatusError> {
        let (a, b) = word.split_once('/').ok_or(StatusError::BadField(at))?;
        Ok((number((at, a))?, number((at, b))?))
    };
    if number(next()?).ok() != Some(1) {
        return Err(StatusError::UnknownFormat);
    }
    let unit_sectors = small(next()?)?;
    let remaps = number(next()?)?;
    let pending = number(next()?)?;
    let (spare_used, spare_total) = pair(next()?)?;
    let read_errors = number(next()?)?;
    let write_errors = number(next()?)?;
    let remap_failures = number(next()?)?;
    let health = next()?.1;
    let metadata_seq = number(next()?)?;
    let copies_field = next()?;
    let (copies, of) = pair(copies_field)?;
    let metadata_copies = match (u32::try_from(copies), of) {
        (Ok(copies), 5) => copies,
        _ => return Err(StatusError::BadField(copies_field.0)),
    };
    let metadata_repairs = number(next()?)?;
    let metadata_errors = number(next()?)?;
    let (scan_state, scan_progress) = match (next().ok(), next().ok()) {
        (Some((_, state)), Some(progress)) => (Some(state), Some(small(progress)?)),
        (Some((at, _)), None) => return Err(StatusError::BadField(at.saturating_add(1))),
        _ => (None, None),
    };
    let metadata_mode = next().ok().map(|(_, word)| word);
    Ok(InfoStatus {
        unit_sectors,
        remaps,
        pending,
        spare_used,
        spare_total,
        read_errors,
        write_errors,
        remap_failures,
        health,
        metadata_seq,
        metadata_copies,
        metadata_repairs,
        metadata_errors,
        scan_state,
        scan_progress,
        metadata_mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example line (docs/status.md, as `write_info` prints it); a literal, so
    /// that new fields in `Counters` do not touch this test.
    #[test]
    fn parses_the_documented_line() {
        let info = parse_info("1 8 3 1 4/1000 5 6 7 spare_full 42 4/5 1 2").unwrap();
        assert_eq!(
            (info.unit_sectors, info.remaps, info.pending, info.spare_used, info.spare_total),
            (8, 3, 1, 4, 1000)
        );
        assert_eq!((info.read_errors, info.write_errors, info.remap_failures), (5, 6, 7));
        assert_eq!(info.health, "spare_full");
        assert_eq!((info.metadata_seq, info.metadata_copies), (42, 4));
        assert_eq!((info.metadata_repairs, info.metadata_errors), (1, 2));
        assert_eq!((info.scan_state, info.scan_progress, info.metadata_mode), (None, None, None));
    }

    #[test]
    fn accepts_scan_fields_unknown_words_and_later_fields() {
        let info = parse_info("1 1 0 0 0/112640 0 0 0 spare_low 1 5/5 0 0 scanning 37").unwrap();
        assert_eq!(info.health, "spare_low");
        assert_eq!((info.scan_state, info.scan_progress), (Some("scanning"), Some(37)));
        assert_eq!(info.metadata_mode, None);
        let info = parse_info("1 1 0 0 0/9 0 0 0 ok 1 5/5 0 0 idle 0 read_only").unwrap();
        assert_eq!(info.metadata_mode, Some("read_only"));
        let info = parse_info("1 1 0 0 0/9 0 0 0 newword 1 5/5 0 0 paused 0 77 more").unwrap();
        assert_eq!((info.health, info.scan_state, info.metadata_mode), ("newword", Some("paused"), Some("77")));
    }

    /// `Counters` (the module's view) and `InfoStatus` (a reader's) describe one line: what
    /// `write_info` prints parses back to the same values.
    #[test]
    fn parses_what_write_info_prints() {
        let c = crate::status::sample_counters();
        let mut line = std::string::String::new();
        crate::status::write_info(&mut line, &c).unwrap();
        let info = parse_info(&line).unwrap();
        assert_eq!(
            (info.unit_sectors, info.remaps, info.pending, info.spare_used, info.spare_total),
            (c.unit_sectors, c.remaps, c.pending, c.spare_used, c.spare_total)
        );
        assert_eq!(
            (info.read_errors, info.write_errors, info.remap_failures, info.health),
            (c.read_errors, c.write_errors, c.remap_failures, c.health.as_str())
        );
        assert_eq!(
            (info.metadata_seq, info.metadata_copies, info.metadata_repairs, info.metadata_errors),
            (c.metadata_seq, c.metadata_copies, c.metadata_repairs, c.metadata_errors)
        );
        assert_eq!((info.scan_state, info.scan_progress), (Some(c.scan.state.as_str()), Some(50)));
        assert_eq!(info.metadata_mode, Some(c.metadata_mode.as_str()));
    }

    #[test]
    fn map_changes_only_the_words() {
        let info = parse_info("1 8 3 1 4/1000 5 6 7 degraded 42 4/5 1 2 scanning 25 read_only").unwrap();
        let lengths = info.map(str::len);
        assert_eq!((lengths.health, lengths.scan_state, lengths.metadata_mode), (8, Some(8), Some(9)));
        assert_eq!(lengths.map(|_| ""), info.map(|_| ""));
        let old = parse_info("1 8 3 1 4/1000 5 6 7 ok 42 4/5 1 2").unwrap();
        assert_eq!((old.map(str::len).scan_state, old.map(str::len).metadata_mode), (None, None));
    }

    #[test]
    fn refuses_malformed_lines() {
        assert_eq!(parse_info(""), Err(StatusError::MissingField));
        assert_eq!(parse_info("2 1 0 0 0/9 0 0 0 ok 1 5/5 0 0"), Err(StatusError::UnknownFormat));
        assert_eq!(parse_info("1 1 0 0 0/9 0 0 0 ok 1 5/5 0"), Err(StatusError::MissingField));
        assert_eq!(parse_info("1 1 x 0 0/9 0 0 0 ok 1 5/5 0 0"), Err(StatusError::BadField(3)));
        assert_eq!(parse_info("1 1 0 0 09 0 0 0 ok 1 5/5 0 0"), Err(StatusError::BadField(5)));
        assert_eq!(parse_info("1 1 0 0 0/9 0 0 0 ok 1 5/4 0 0"), Err(StatusError::BadField(11)));
        assert_eq!(parse_info("1 1 0 0 0/9 0 0 0 ok 1 5/5 0 0 idle"), Err(StatusError::BadField(15)));
        assert_eq!(parse_info("1 1 0 0 0/9 0 0 0 ok 1 5/5 0 0 idle x"), Err(StatusError::BadField(15)));
        assert_eq!(format!("{}", StatusError::BadField(3)), "status line has a malformed field (field 3)");
    }
}
