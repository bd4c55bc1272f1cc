// SPDX-License-Identifier: GPL-2.0

//! The metadata mode of a dm-remap-v4 device (`docs/design.md`, "Metadata failure mode"):
//! whether the target may still record new state (remaps, pending units, frees) in its
//! metadata, after a commit failed or a load found the `needs_check` flag. Model: dm-thin's
//! pool modes and dm-cache's `CM_WRITE` / `CM_READ_ONLY` / `CM_FAIL` (`drivers/md`).
//!
//! The mode only ever gets worse in a running table ([`MetadataMode::after`]); a new table
//! starts from what the superblock says ([`MetadataMode::at_load`]).

/// The metadata mode, worst last (the derived order is the severity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum MetadataMode {
    /// Normal operation: failing units are remapped or marked pending, and committed.
    #[default]
    Write,
    /// A commit wrote no metadata copy (or the spare's `needs_check` flag was set when the
    /// device was created): no spare unit is consumed and no new state is recorded, I/O to
    /// existing remaps goes on, and every flush, FUA write and `commit` message retries the
    /// commit of what was recorded before. `needs_check` goes to the spare with the first
    /// commit that succeeds; only `dm-remap repair` clears it.
    ReadOnly,
    /// Reserved, worst: all I/O would fail. dm-remap never enters it (`docs/design.md` says
    /// why); it is here so that the order and the words are fixed for parsers.
    Fail,
}

/// What happened to the metadata, for [`MetadataMode::after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataEvent {
    /// A commit wrote at least one copy (possibly not all five).
    CommitSucceeded,
    /// A commit wrote no copy (spare flush or every copy write failed, or the sequence
    /// number is exhausted): the in-core and on-disk state may differ.
    CommitFailed,
}

impl MetadataMode {
    /// Every mode, best first.
    pub const ALL: [Self; 3] = [Self::Write, Self::ReadOnly, Self::Fail];

    /// The word printed in status and sysfs: `write`, `read_only` or `fail`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::ReadOnly => "read_only",
            Self::Fail => "fail",
        }
    }

    /// The mode whose [`MetadataMode::as_str`] is `word`; `None` for any other word.
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == word)
    }

    /// A compact code for lock-free storage (an atomic byte): 0, 1, 2 in order.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The mode of a [`MetadataMode::code`]; an unknown code is taken as the worst mode, so a
    /// corrupted byte can only make the target more careful.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Write,
            1 => Self::ReadOnly,
            _ => Self::Fail,
        }
    }

    /// The mode a new table starts in: `read_only` while the loaded superblock has
    /// `needs_check` set, else `write`.
    pub const fn at_load(needs_check: bool) -> Self {
        if needs_check {
            Self::ReadOnly
        } else {
            Self::Write
        }
    }

    /// The transition rule: the mode after `event`. A failed commit makes the mode at least
    /// `read_only`; nothing makes it better (a running table never goes back to `write`:
    /// the on-disk state may have differed from the in-core one, which only the offline
    /// check clears).
    pub fn after(self, event: MetadataEvent) -> Self {
        match event {
            MetadataEvent::CommitSucceeded => self,
            MetadataEvent::CommitFailed => self.max(Self::ReadOnly),
        }
    }

    /// Whether the target may record new state: consume spare units, mark units pending,
    /// remap, unremap or clear pending units. Only in `write`.
    pub const fn records_changes(self) -> bool {
        matches!(self, Self::Write)
    }

    /// Whether the superblock's `needs_check` flag must be set in this mode (every mode but
    /// `write`). Set when the mode is entered, so that the first commit that succeeds writes
    /// it to every copy.
    pub const fn needs_check(self) -> bool {
        !matches!(self, Self::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_order() {
        assert_eq!(MetadataMode::Write.as_str(), "write");
        assert_eq!(MetadataMode::ReadOnly.as_str(), "read_only");
        assert_eq!(MetadataMode::Fail.as_str(), "fail");
        assert!(MetadataMode::Write < MetadataMode::ReadOnly && MetadataMode::ReadOnly < MetadataMode::Fail);
        assert_eq!(MetadataMode::default(), MetadataMode::Write);
        for m in MetadataMode::ALL {
            assert_eq!(MetadataMode::from_word(m.as_str()), Some(m));
            assert_eq!(MetadataMode::from_code(m.code()), m);
        }
        assert_eq!(MetadataMode::from_word("readonly"), None);
        assert_eq!(MetadataMode::from_word(""), None);
        assert_eq!(MetadataMode::from_code(7), MetadataMode::Fail);
    }

    #[test]
    fn load_follows_needs_check() {
        assert_eq!(MetadataMode::at_load(false), MetadataMode::Write);
        assert_eq!(MetadataMode::at_load(true), MetadataMode::ReadOnly);
    }

    #[test]
    fn a_failed_commit_enters_read_only_and_nothing_leaves_it() {
        use MetadataEvent::*;
        use MetadataMode::*;
        assert_eq!(Write.after(CommitSucceeded), Write);
        assert_eq!(Write.after(CommitFailed), ReadOnly);
        assert_eq!(ReadOnly.after(CommitFailed), ReadOnly);
        assert_eq!(ReadOnly.after(CommitSucceeded), ReadOnly);
        assert_eq!(Fail.after(CommitSucceeded), Fail);
        assert_eq!(Fail.after(CommitFailed), Fail);
        // Monotone: whatever the events, the mode never gets better.
        let events = [CommitSucceeded, CommitFailed];
        for start in MetadataMode::ALL {
            for a in events {
                for b in events {
                    let m1 = start.after(a);
                    let m2 = m1.after(b);
                    assert!(m1 >= start && m2 >= m1, "{start:?} {a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn only_write_records_changes_and_the_others_need_a_check() {
        assert!(MetadataMode::Write.records_changes());
        assert!(!MetadataMode::ReadOnly.records_changes());
        assert!(!MetadataMode::Fail.records_changes());
        assert!(!MetadataMode::Write.needs_check());
        assert!(MetadataMode::ReadOnly.needs_check());
        assert!(MetadataMode::Fail.needs_check());
        for needs_check in [false, true] {
            assert_eq!(MetadataMode::at_load(needs_check).needs_check(), needs_check);
        }
    }
}
