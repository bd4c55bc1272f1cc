// SPDX-License-Identifier: GPL-2.0

//! `import NAME --badblocks FILE | --ddrescue-map FILE`: known-bad sectors of the main disk
//! are moved to the spare through the `remap <sector>` message (`docs/messages.md`): a unit
//! main can still read is copied, one it cannot is marked pending.
//!
//! Input formats:
//! - `badblocks -o FILE`: one block number per line, in blocks of `-b` bytes (badblocks'
//!   default, 1024, unless `--block-size` says otherwise).
//! - GNU ddrescue mapfile: `#` comments, one status line (`<pos> <status> [<pass>]`), then
//!   `<pos> <size> <status>` blocks, positions and sizes in bytes (hex with `0x`, or decimal).
//!   Blocks with status `-` (bad sector), `*` (failed, not trimmed) and `/` (failed, not
//!   scraped) are imported; `?` (not tried) and `+` (finished) are not.

use crate::dm::Dm;
use crate::error::{Error, Kind, Result};
use std::collections::BTreeSet;
use std::fmt::Write;

/// A range of 512-byte sectors `[start, end)`.
pub type SectorRange = (u64, u64);

fn bad_input(file: &str, line: usize, what: &str) -> Error {
    Error::new(Kind::BadInput, format!("{file}:{line}: {what}"))
}

/// Parses `badblocks -o` output with `block_size`-byte blocks (a multiple of 512).
///
/// # Errors
/// [`Kind::BadInput`] naming the first malformed line.
pub fn parse_badblocks(file: &str, text: &str, block_size: u64) -> Result<Vec<SectorRange>> {
    if block_size == 0 || block_size % 512 != 0 {
        return Err(Error::new(Kind::BadInput, format!("block size {block_size} is not a multiple of 512")));
    }
    let per_block = block_size / 512;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let word = line.trim();
        if word.is_empty() {
            continue;
        }
        let block: u64 = word.parse().map_err(|_| bad_input(file, i + 1, "not a block number"))?;
        let start = block.checked_mul(per_block).ok_or_else(|| bad_input(file, i + 1, "block number too large"))?;
        out.push((start, start.saturating_add(per_block)));
    }
    Ok(out)
}

fn parse_number(word: &str) -> Option<u64> {
    match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => word.parse().ok(),
    }
}

/// Parses a GNU ddrescue mapfile; returns the failed areas as sector ranges (rounded out to
/// whole sectors).
///
/// # Errors
/// [`Kind::BadInput`] naming the first malformed line.
pub fn parse_ddrescue_map(file: &str, text: &str) -> Result<Vec<SectorRange>> {
    let mut out = Vec::new();
    let mut seen_status_line = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !seen_status_line {
            // <current_pos> <current_status> [<current_pass>]
            if !(2..=3).contains(&fields.len()) || parse_number(fields[0]).is_none() {
                return Err(bad_input(file, i + 1, "expected the status line '<pos> <status> [<pass>]'"));
            }
            seen_status_line = true;
            continue;
        }
        let [pos, size, status] = fields[..] else {
            return Err(bad_input(file, i + 1, "expected '<pos> <size> <status>'"));
        };
        let (Some(pos), Some(size)) = (parse_number(pos), parse_number(size)) else {
            return Err(bad_input(file, i + 1, "position or size is not a number"));
        };
        match status {
            "-" | "*" | "/" if size > 0 => {
                let end = pos.checked_add(size).ok_or_else(|| bad_input(file, i + 1, "block ends past 2^64"))?;
                out.push((pos / 512, end.div_ceil(512)));
            }
            "-" | "*" | "/" | "?" | "+" => {}
            _ => return Err(bad_input(file, i + 1, "unknown block status")),
        }
    }
    if !seen_status_line {
        return Err(Error::new(Kind::BadInput, format!("{file}: not a ddrescue mapfile (no status line)")));
    }
    Ok(out)
}

/// The first sector of every unit of `unit_sectors` that the ranges touch, ascending.
///
/// # Errors
/// [`Kind::BadInput`] if a range reaches past `target_sectors`.
pub fn units_of(ranges: &[SectorRange], unit_sectors: u64, target_sectors: u64) -> Result<Vec<u64>> {
    let unit = unit_sectors.max(1);
    let mut units = BTreeSet::new();
    for &(start, end) in ranges {
        if end > target_sectors {
            return Err(Error::new(
                Kind::BadInput,
                format!("sectors {start}..{end} are beyond the device ({target_sectors} sectors)"),
            ));
        }
        let mut s = start / unit * unit;
        while s < end {
            units.insert(s);
            s += unit;
        }
    }
    Ok(units.into_iter().collect())
}

/// Sends `remap <sector>` for each unit, in order; returns the report. Stops at the first
/// refused message.
///
/// # Errors
/// [`Kind::Incomplete`] naming how far it got (e.g. the spare is full).
pub fn import(dm: &Dm, name: &str, units: &[u64]) -> Result<String> {
    let (mut remapped, mut pending) = (0usize, 0usize);
    let mut out = String::new();
    for (done, &sector) in units.iter().enumerate() {
        let reply = dm.message(name, &format!("remap {sector}")).map_err(|e| {
            Error::new(
                Kind::Incomplete,
                format!("{e}; {done} of {} units imported ({remapped} remapped, {pending} pending)", units.len()),
            )
        })?;
        if reply.trim_end().ends_with("pending") {
            pending += 1;
        } else {
            remapped += 1;
        }
        out.push_str(reply.trim_end());
        out.push('\n');
    }
    let _ = writeln!(out, "imported {} units: {remapped} remapped, {pending} pending", units.len());
    Ok(out)
}
