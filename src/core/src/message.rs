// SPDX-License-Identifier: GPL-2.0

//! `dmsetup message <dev> 0 <verb> [<args>]`: the verbs dm-remap-v4 understands.
//!
//! Sectors are 512-byte sectors relative to the target's start; a sector names the remap unit
//! that contains it. See `docs/messages.md` for each verb's output.

use super::table_line::parse_decimal;
use core::ffi::CStr;

/// One parsed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// `remap <sector>`: move the unit to the spare now (copy its data if main can read it,
    /// otherwise mark it pending).
    Remap {
        /// Any sector of the unit.
        sector: u64,
    },
    /// `unremap <sector>`: copy the unit back to main and drop the remap.
    Unremap {
        /// Any sector of the unit.
        sector: u64,
    },
    /// `clear_pending <sector>`: forget that the unit failed a read.
    ClearPending {
        /// Any sector of the unit.
        sector: u64,
    },
    /// `list [<start> [<count>]]`: remapped and pending units from sector `start`, at most
    /// `count` of them.
    List {
        /// First sector to list from (0 if absent).
        start: u64,
        /// Most lines to return (all if absent).
        count: u64,
    },
    /// `stats`: the counters as `key=value` words.
    Stats,
    /// `clear_stats`: reset the error counters.
    ClearStats,
    /// `commit`: write pending metadata changes to the spare now.
    Commit,
    /// `help`: the verbs and their arguments.
    Help,
    /// `scan start|stop|now`: control the background scan.
    Scan(ScanCommand),
}

/// What `scan` asks of the background scan (see `docs/scan.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanCommand {
    /// Enable scanning: continue an interrupted pass, or start one now if none ran yet.
    Start,
    /// Disable scanning; a pass in progress stops and keeps its position.
    Stop,
    /// Start a new pass from sector 0 now (also when scanning is disabled: one pass).
    Now,
}

/// A message that was refused; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// No verb at all.
    Empty,
    /// A verb this version does not know.
    UnknownVerb,
    /// Missing, extra or malformed arguments for the verb.
    BadArguments,
    /// A sector beyond the end of the target.
    SectorOutOfRange,
}

impl MessageError {
    /// A short message for the kernel log.
    pub fn message(self) -> &'static CStr {
        match self {
            Self::Empty => c"Empty message",
            Self::UnknownVerb => c"Unknown message verb (try 'help')",
            Self::BadArguments => c"Invalid message arguments (try 'help')",
            Self::SectorOutOfRange => c"Sector beyond the end of the target",
        }
    }
}

/// What `help` returns.
pub const HELP: &str = "remap <sector>\n\
unremap <sector>\n\
clear_pending <sector>\n\
list [<start_sector> [<count>]]\n\
stats\n\
clear_stats\n\
commit\n\
scan start|stop|now\n\
help\n";

/// Parses a message for a target of `target_sectors` sectors.
///
/// # Errors
/// [`MessageError`] for an empty message, an unknown verb, bad arguments or a sector at or
/// beyond `target_sectors`.
pub fn parse<A: AsRef<[u8]>>(argv: &[A], target_sectors: u64) -> Result<Message, MessageError> {
    let (verb, args) = argv.split_first().ok_or(MessageError::Empty)?;
    let sector = |args: &[A]| -> Result<u64, MessageError> {
        match args {
            [s] => {
                let s = parse_decimal(s.as_ref()).ok_or(MessageError::BadArguments)?;
                if s < target_sectors {
                    Ok(s)
                } else {
                    Err(MessageError::SectorOutOfRange)
                }
            }
            _ => Err(MessageError::BadArguments),
        }
    };
    let none = |args: &[A], m: Message| if args.is_empty() { Ok(m) } else { Err(MessageError::BadArguments) };
    match verb.as_ref() {
        b"remap" => Ok(Message::Remap { sector: sector(args)? }),
        b"unremap" => Ok(Message::Unremap { sector: sector(args)? }),
        b"clear_pending" => Ok(Message::ClearPending { sector: sector(args)? }),
        b"list" => {
            let number = |a: &A| parse_decimal(a.as_ref()).ok_or(MessageError::BadArguments);
            match args {
                [] => Ok(Message::List { start: 0, count: u64::MAX }),
                [start] => Ok(Message::List { start: number(start)?, count: u64::MAX }),
                [start, count] => Ok(Message::List { start: number(start)?, count: number(count)? }),
                _ => Err(MessageError::BadArguments),
            }
        }
        b"stats" => none(args, Message::Stats),
        b"clear_stats" => none(args, Message::ClearStats),
        b"commit" => none(args, Message::Commit),
        b"help" => none(args, Message::Help),
        b"scan" => match args {
            [what] => match what.as_ref() {
                b"start" => Ok(Message::Scan(ScanCommand::Start)),
                b"stop" => Ok(Message::Scan(ScanCommand::Stop)),
                b"now" => Ok(Message::Scan(ScanCommand::Now)),
                _ => Err(MessageError::BadArguments),
            },
            _ => Err(MessageError::BadArguments),
        },
        _ => Err(MessageError::UnknownVerb),
    }
}

#[cfg(test)]
mod tests;
