// SPDX-License-Identifier: GPL-2.0

//! The offline metadata commands `check`, `dump` and `repair`: what they print and how they
//! end. Reading and repairing is in [`crate::spare`].

use crate::device::{Access, Device};
use crate::error::{Error, Kind, Outcome, Result};
use crate::spare::{clear_needs_check, inspect, repair, CopyState, Entries, Inspection};
use dm_remap_core::metadata::{Superblock, FLAG_NEEDS_CHECK};
use serde::Serialize;
use std::fmt::Write;

/// A spare UUID in the usual 8-4-4-4-12 hex form.
pub fn uuid_string(uuid: &[u8; 16]) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The superblock, as `dump --json` prints it (sizes in sectors, positions in units).
#[derive(Serialize)]
pub struct SuperblockJson {
    uuid: String,
    seq: u64,
    needs_check: bool,
    created_time: u64,
    main_sectors: u64,
    main_block_size: u32,
    main_id_kind: u8,
    main_id: String,
    unit_sectors: u32,
    copy_sectors: u64,
    spare_sectors: u64,
    data_start: u64,
    data_units: u64,
    remap_blocks: u64,
    pending_blocks: u64,
    remap_count: u64,
    bad_count: u64,
    pending_count: u64,
    high_water: u64,
}

impl From<&Superblock> for SuperblockJson {
    fn from(sb: &Superblock) -> Self {
        let l = &sb.layout;
        Self {
            uuid: uuid_string(&sb.uuid),
            seq: sb.seq,
            needs_check: sb.flags & FLAG_NEEDS_CHECK != 0,
            created_time: sb.created_time,
            main_sectors: sb.main.main_sectors,
            main_block_size: sb.main.block_size,
            main_id_kind: sb.main.id_kind,
            main_id: sb.main.id.iter().map(|b| format!("{b:02x}")).collect(),
            unit_sectors: l.unit_sectors(),
            copy_sectors: l.copy_sectors(),
            spare_sectors: l.spare_sectors(),
            data_start: l.data_start(),
            data_units: l.data_units(),
            remap_blocks: l.remap_blocks(),
            pending_blocks: l.pending_blocks(),
            remap_count: sb.remap_count,
            bad_count: sb.bad_count,
            pending_count: sb.pending_count,
            high_water: sb.high_water,
        }
    }
}

#[derive(Serialize)]
struct CopyJson {
    copy: usize,
    sector: Option<u64>,
    state: CopyState,
    seq: Option<u64>,
    error: Option<String>,
}

/// One remapped or pending unit. Sectors are target (= main) sectors and spare sectors, as
/// the `list` message prints them.
#[derive(Serialize, PartialEq, Eq, Debug)]
pub struct EntryJson {
    /// First main sector of the unit.
    pub sector: u64,
    /// First spare sector of its spare unit; `None` for a pending unit.
    pub spare_sector: Option<u64>,
    /// `remapped` or `pending`.
    pub state: &'static str,
}

#[derive(Serialize)]
struct DumpJson {
    device: String,
    chosen_copy: Option<usize>,
    copies: Vec<CopyJson>,
    superblock: Option<SuperblockJson>,
    entries: Vec<EntryJson>,
    bad_spare_sectors: Vec<u64>,
}

/// The chosen copy's remapped and pending units in sector order, as the `list` message gives
/// them.
pub fn entry_list(unit_sectors: u32, entries: &Entries) -> Vec<EntryJson> {
    let unit = u64::from(unit_sectors);
    let mut list: Vec<EntryJson> = entries
        .remaps
        .iter()
        .map(|&(main, spare)| EntryJson {
            sector: main * unit,
            spare_sector: Some(spare * unit),
            state: "remapped",
        })
        .chain(entries.pending.iter().map(|&main| EntryJson {
            sector: main * unit,
            spare_sector: None,
            state: "pending",
        }))
        .collect();
    list.sort_by_key(|e| e.sector);
    list
}

/// The `list` message's lines for these entries.
pub fn entry_lines(list: &[EntryJson]) -> String {
    let mut out = String::new();
    for e in list {
        let _ = match e.spare_sector {
            Some(s) => writeln!(out, "{} {s}", e.sector),
            None => writeln!(out, "{} pending", e.sector),
        };
    }
    out
}

fn copies_text(inspection: &Inspection) -> String {
    let mut out = String::new();
    for c in &inspection.copies {
        let sector = c.sector.map_or("-".into(), |s| s.to_string());
        let seq = c.seq.map_or("-".into(), |s| s.to_string());
        let state = match c.state {
            CopyState::Current => "current",
            CopyState::Stale => "stale",
            CopyState::Damaged => "damaged",
        };
        let _ = write!(out, "copy {} at sector {sector}: {state}, seq {seq}", c.copy);
        if let Some(e) = &c.error {
            let _ = write!(out, " ({e})");
        }
        out.push('\n');
    }
    out
}

/// Why a set `needs_check` flag matters, and what clears it.
fn needs_check_message(path: &str) -> String {
    format!(
        "{path}: needs_check is set: a metadata commit failed while the device was active, so the \
         kernel's state may have differed from the spare's; with the device removed, \
         `dm-remap repair {path}` checks the copies and clears it"
    )
}

fn summary_text(sb: &Superblock, chosen: usize) -> String {
    let l = &sb.layout;
    let needs_check = if sb.needs_check() { "set" } else { "clear" };
    format!(
        "uuid {}  seq {}  chosen copy {chosen}  needs_check {needs_check}\n\
         main: {} sectors, block size {}, id kind {}\n\
         layout: unit {} sectors, copy size {} sectors, data units {} from unit {}\n\
         entries: {} remapped, {} bad, {} pending\n",
        uuid_string(&sb.uuid),
        sb.seq,
        sb.main.main_sectors,
        sb.main.block_size,
        sb.main.id_kind,
        l.unit_sectors(),
        l.copy_sectors(),
        l.data_units(),
        l.data_start(),
        sb.remap_count,
        sb.bad_count,
        sb.pending_count
    )
}

/// `check SPARE`: prints each copy's state; `Ok` only if all five are current and the
/// `needs_check` flag is clear.
///
/// # Errors
/// [`Kind::Damaged`] (repairable: damaged or stale copies, or `needs_check` set),
/// [`Kind::NoValidCopy`], [`Kind::NotASpare`], device errors.
pub fn check(path: &str) -> Outcome {
    let inspection = match Device::open(path, Access::Read).and_then(|mut dev| inspect(&mut dev)) {
        Ok(i) => i,
        Err(e) => return (String::new(), Err(e)),
    };
    let mut out = copies_text(&inspection);
    let Some((chosen, sb, _)) = &inspection.chosen else {
        return (out, Err(Error::new(Kind::NoValidCopy, format!("{path}: no valid metadata copy"))));
    };
    out.push_str(&summary_text(sb, *chosen));
    if inspection.is_clean() {
        if sb.needs_check() {
            out.push_str("5 of 5 copies current, needs_check set\n");
            return (out, Err(Error::new(Kind::Damaged, needs_check_message(path))));
        }
        out.push_str("metadata ok: 5 of 5 copies current\n");
        return (out, Ok(()));
    }
    let bad = inspection.to_rewrite();
    let also = if sb.needs_check() { "; needs_check is set too, which repair clears" } else { "" };
    (out, Err(Error::new(
        Kind::Damaged,
        format!("{path}: {} of 5 copies damaged or stale ({bad:?}); `dm-remap repair {path}` rewrites them{also}", bad.len()),
    )))
}

/// `dump SPARE [--json]`: the copies, the chosen superblock and its entries.
///
/// # Errors
/// [`Kind::NotASpare`], device errors; a spare with no valid copy is dumped (copies only) and
/// then reported as [`Kind::NoValidCopy`].
pub fn dump(path: &str, json: bool) -> Outcome {
    let inspection = match Device::open(path, Access::Read).and_then(|mut dev| inspect(&mut dev)) {
        Ok(i) => i,
        Err(e) => return (String::new(), Err(e)),
    };
    let list = inspection
        .chosen
        .as_ref()
        .map(|(_, sb, e)| entry_list(sb.layout.unit_sectors(), e))
        .unwrap_or_default();
    let out = if json {
        let unit = inspection.chosen.as_ref().map_or(1, |(_, sb, _)| u64::from(sb.layout.unit_sectors()));
        let doc = DumpJson {
            device: path.to_string(),
            chosen_copy: inspection.chosen.as_ref().map(|c| c.0),
            copies: inspection
                .copies
                .iter()
                .map(|c| CopyJson { copy: c.copy, sector: c.sector, state: c.state, seq: c.seq, error: c.error.clone() })
                .collect(),
            superblock: inspection.chosen.as_ref().map(|(_, sb, _)| SuperblockJson::from(sb)),
            entries: list,
            bad_spare_sectors: inspection
                .chosen
                .as_ref()
                .map(|(_, _, e)| e.bad.iter().map(|u| u * unit).collect())
                .unwrap_or_default(),
        };
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    } else {
        let mut out = copies_text(&inspection);
        if let Some((chosen, sb, e)) = &inspection.chosen {
            out.push_str(&summary_text(sb, *chosen));
            for u in &e.bad {
                let _ = writeln!(out, "bad spare sector {}", u * u64::from(sb.layout.unit_sectors()));
            }
            out.push_str("entries (<sector> <spare_sector> | <sector> pending):\n");
            out.push_str(&entry_lines(&list));
        }
        out
    };
    if inspection.chosen.is_none() {
        return (out, Err(Error::new(Kind::NoValidCopy, format!("{path}: no valid metadata copy"))));
    }
    (out, Ok(()))
}

/// `repair SPARE`: rewrites damaged and stale copies from the chosen one, checks all five
/// again, then clears the `needs_check` flag if it is set; refuses (writing nothing) without a
/// valid copy or while the spare is in use.
///
/// # Errors
/// [`Kind::Busy`], [`Kind::NoValidCopy`], [`Kind::NotASpare`], device errors, or
/// [`Kind::Damaged`] if the copies do not check after the repair (`needs_check` then stays
/// set).
pub fn repair_cmd(path: &str) -> Result<String> {
    let mut dev = Device::open(path, Access::WriteExclusive)?;
    let inspection = inspect(&mut dev)?;
    let needs_check = |i: &Inspection| i.chosen.as_ref().is_some_and(|(_, sb, _)| sb.needs_check());
    if inspection.chosen.is_some() && inspection.is_clean() && !needs_check(&inspection) {
        return Ok(format!("{path}: all 5 copies current; nothing written\n"));
    }
    let mut out = String::new();
    if !inspection.is_clean() {
        let rewritten = repair(&mut dev, &inspection)?;
        let chosen = inspection.chosen.as_ref().map_or(0, |c| c.0);
        out.push_str(&format!("{path}: rewrote copies {rewritten:?} from copy {chosen}\n"));
    }
    let mut after = inspect(&mut dev)?;
    if !after.is_clean() {
        return Err(Error::new(
            Kind::Damaged,
            format!("{path}: copies {:?} still damaged after the repair (failing spare?)", after.to_rewrite()),
        ));
    }
    if needs_check(&after) {
        let seq = clear_needs_check(&mut dev, &after)?;
        after = inspect(&mut dev)?;
        if !after.is_clean() || needs_check(&after) {
            return Err(Error::new(
                Kind::Damaged,
                format!("{path}: copies {:?} do not hold the cleared flag (failing spare?)", after.to_rewrite()),
            ));
        }
        out.push_str(&format!("{path}: all 5 copies checked; needs_check cleared (seq {seq})\n"));
    }
    out.push_str(&format!("{path}: all 5 copies current\n"));
    Ok(out)
}
