// SPDX-License-Identifier: GPL-2.0

//! The commands that act on a live device through its target messages (`docs/messages.md`):
//! `unremap`, `clear-pending`, `commit`, `scan start|stop|now`, and `message`, which passes
//! messages through as `dmsetup message` does, many per process (from standard input).
//!
//! A refused message is explained in the operator's words: the ioctl only returns an errno
//! (the kernel's own reason goes to its log), so the reason is derived from the errno, the
//! verb, and the core's message parser (the one the kernel runs).

use crate::dm::{Dm, MessageRefusal, RemapDevice};
use crate::error::{Error, Kind, Result};
use dm_remap_core::message::{parse, MessageError};
use dm_remap_core::status_parse::parse_info;
use std::io::{BufRead, Write};

/// What `scan` asks of the background scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanAction {
    /// Enable scanning: continue an interrupted pass, or start the first one now.
    Start,
    /// Disable scanning; a pass in progress keeps its position.
    Stop,
    /// Start a new pass from sector 0 now (one pass if scanning is disabled).
    Now,
}

impl ScanAction {
    /// The message's argument.
    const fn word(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Now => "now",
        }
    }
}

/// The core parser's reason for refusing `message` on a target of `sectors` sectors, in the
/// kernel's words (what it logs); `None` if the parser accepts it.
fn parse_refusal(message: &str, sectors: u64) -> Option<&'static str> {
    let words: Vec<&str> = message.split_ascii_whitespace().collect();
    parse(&words, sectors).err().map(|e: MessageError| e.message().to_str().unwrap_or("Invalid message"))
}

/// The error for `message` refused by device `dev`: the reason (from the errno, the verb and
/// the core parser) and a kind by errno — `EINVAL`, `ENOSPC`, `EROFS`: [`Kind::Refused`]; `EIO`:
/// [`Kind::Device`]; `EBUSY`: [`Kind::Busy`]; anything else: [`Kind::DeviceMapper`].
pub fn refusal_error(dev: &RemapDevice, message: &str, refusal: &MessageRefusal) -> Error {
    let verb = message.split_ascii_whitespace().next().unwrap_or("");
    let (kind, reason) = match refusal.errno {
        Some(libc::EINVAL) => (
            Kind::Refused,
            match (parse_refusal(message, dev.len), verb) {
                (Some(reason), _) => reason.to_string(),
                (None, "unremap") => "Sector is not remapped".into(),
                _ => "Invalid argument".into(),
            },
        ),
        Some(libc::ENOSPC) => (Kind::Refused, "Spare device full".into()),
        // A module with the metadata failure mode refuses changes to the table in `read_only`.
        Some(libc::EROFS) => (
            Kind::Refused,
            "Metadata is read-only after a failed commit: remove the device and run dm-remap repair on the spare".into(),
        ),
        Some(libc::EIO) => (
            Kind::Device,
            match verb {
                "unremap" => "Main device still fails at this sector, or the spare unit cannot be read; the remap stays".into(),
                "commit" => "Metadata commit failed: no copy could be written".into(),
                "remap" => "Spare device fails".into(),
                _ => "I/O error".into(),
            },
        ),
        Some(libc::EBUSY) => (
            Kind::Busy,
            "I/O in flight did not complete within 30 s, or the device is suspending; nothing changed, try again".into(),
        ),
        Some(libc::ENOMEM) => (Kind::DeviceMapper, "Out of memory in the kernel".into()),
        _ => (Kind::DeviceMapper, refusal.text.clone()),
    };
    let errno = refusal.text.split(':').next().filter(|_| refusal.errno.is_some());
    let errno = errno.map(|e| format!(" ({e})")).unwrap_or_default();
    Error::new(kind, format!("{}: '{message}' refused: {reason}{errno}", dev.name))
}

/// Sends `message` to `dev`, explaining a refusal ([`refusal_error`]).
///
/// # Errors
/// See [`refusal_error`].
fn send(dm: &Dm, dev: &RemapDevice, message: &str) -> Result<String> {
    dm.try_message(&dev.name, message).map_err(|r| refusal_error(dev, message, &r))
}

/// The device `name`, and a refusal in the kernel's words of `message`, before anything is
/// sent, if the core's parser refuses it.
fn checked(dm: &Dm, name: &str, message: &str) -> Result<RemapDevice> {
    let dev = dm.require_remap_device(name)?;
    match parse_refusal(message, dev.len) {
        Some(reason) => Err(Error::new(Kind::Refused, format!("{name}: '{message}' refused: {reason}"))),
        None => Ok(dev),
    }
}

/// The unit size (sectors) of device `name`, from its INFO status.
fn unit_sectors(dm: &Dm, name: &str) -> Result<u64> {
    let info = dm.info_status(name)?;
    parse_info(&info)
        .map(|s| u64::from(s.unit_sectors).max(1))
        .map_err(|e| Error::new(Kind::DeviceMapper, format!("{name}: {e}")))
}

/// `unremap NAME SECTOR`: copies the unit back to main and drops its remap.
///
/// # Errors
/// [`Kind::Refused`] (out of range, not remapped), [`Kind::Device`] (main still fails),
/// [`Kind::Busy`], dm errors.
pub fn unremap(dm: &Dm, name: &str, sector: u64) -> Result<String> {
    let message = format!("unremap {sector}");
    let dev = checked(dm, name, &message)?;
    let out = send(dm, &dev, &message)?;
    let first = out.trim();
    Ok(format!(
        "{name}: unit at sector {first} copied back to main and unremapped (its spare unit is reused after the next commit)\n"
    ))
}

/// `clear-pending NAME SECTOR`: forgets that the unit failed a read; says so if it was not
/// pending (the message then changes nothing).
///
/// # Errors
/// [`Kind::Refused`] (out of range), dm errors.
pub fn clear_pending(dm: &Dm, name: &str, sector: u64) -> Result<String> {
    let message = format!("clear_pending {sector}");
    let dev = checked(dm, name, &message)?;
    let unit = unit_sectors(dm, name)?;
    let first = sector - sector % unit;
    let listed = send(dm, &dev, &format!("list {first} 1"))?;
    let was_pending = listed.trim() == format!("{first} pending");
    send(dm, &dev, &message)?;
    Ok(if was_pending {
        format!("{name}: unit at sector {first} is no longer pending (its next write goes to main)\n")
    } else {
        format!("{name}: unit at sector {first} was not pending; nothing changed\n")
    })
}

/// `commit NAME`: writes the device's metadata changes to the spare now.
///
/// # Errors
/// [`Kind::Device`] if no copy could be written, dm errors.
pub fn commit(dm: &Dm, name: &str) -> Result<String> {
    let dev = dm.require_remap_device(name)?;
    send(dm, &dev, "commit")?;
    let info = dm.info_status(name)?;
    Ok(match parse_info(&info) {
        Ok(s) => format!("{name}: metadata committed (sequence {}, {}/5 copies)\n", s.metadata_seq, s.metadata_copies),
        Err(_) => format!("{name}: metadata committed\n"),
    })
}

/// `scan start|stop|now NAME`: controls the background scan; prints its state after.
///
/// # Errors
/// dm errors.
pub fn scan(dm: &Dm, name: &str, action: ScanAction) -> Result<String> {
    let dev = dm.require_remap_device(name)?;
    send(dm, &dev, &format!("scan {}", action.word()))?;
    let done = match action {
        ScanAction::Start => "scanning enabled",
        ScanAction::Stop => "scanning disabled",
        ScanAction::Now => "a new pass started from sector 0",
    };
    let state = dm.info_status(name).ok().and_then(|info| {
        let s = parse_info(&info).ok()?;
        Some(format!(" (scan state: {} {}%)", s.scan_state?, s.scan_progress?))
    });
    Ok(format!("{name}: {done}{}\n", state.unwrap_or_default()))
}

/// `message NAME [MESSAGE...]`: sends MESSAGE (its words joined by spaces), or without one,
/// every non-blank line of `input` in turn, through one control-device connection; writes
/// each message's output to `out` as the kernel gave it (a newline added if it lacks one).
/// Stops at the first refused message.
///
/// # Errors
/// The refusal ([`refusal_error`], with how many messages went through before it),
/// [`Kind::BadInput`] for input that is not text, [`Kind::NotFound`].
pub fn message(dm: &Dm, name: &str, words: &[String], input: &mut dyn BufRead, out: &mut dyn Write) -> Result<()> {
    let dev = dm.require_remap_device(name)?;
    let mut emit = |text: &str| {
        // A closed output (`| head`) is not a failure of the messages.
        let _ = out.write_all(text.as_bytes());
        if !text.is_empty() && !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    };
    if !words.is_empty() {
        emit(&send(dm, &dev, &words.join(" "))?);
        return Ok(());
    }
    let mut sent = 0usize;
    for (index, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::new(Kind::BadInput, format!("standard input, line {}: {e}", index + 1)))?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let reply = send(dm, &dev, text).map_err(|e| {
            Error::new(e.kind, format!("{} (line {}; {sent} messages before it were sent)", e.message, index + 1))
        })?;
        emit(&reply);
        sent += 1;
    }
    Ok(())
}
