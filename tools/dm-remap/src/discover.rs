// SPDX-License-Identifier: GPL-2.0

//! `discover [--json] [--create] [--remaptab FILE]`: finds dm-remap spares among the block
//! devices, pairs each with its main device, prints the table lines, and with `--create`
//! assembles the pairs.
//!
//! Pairing: a spare named in the remaptab (by path or by its UUID) is paired with the entry's
//! main device, which must match the fingerprint in the spare's metadata (size and logical
//! block size); a spare not named there is paired with the one block device that matches the
//! fingerprint. A mismatch, several candidates, none, or a spare without a valid metadata copy
//! is reported and never assembled.

use crate::create;
use crate::device::{block_geometry, read_attr, Access, Device};
use crate::dm::Dm;
use crate::error::{Error, Kind, Result};
use crate::offline::uuid_string;
use crate::remaptab::{Entry, SpareRef};
use crate::spare::{probe, Probe};
use dm_remap_core::metadata::{MainFingerprint, Superblock};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// A block device of the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    /// `/dev/<kernel name>`.
    pub path: String,
    /// `(major, minor)`.
    pub devno: (u32, u32),
    /// Size in sectors.
    pub sectors: u64,
    /// Logical block size in bytes.
    pub block_size: u32,
}

/// A device that holds dm-remap metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpareInfo {
    /// The device.
    pub dev: BlockInfo,
    /// The chosen copy's superblock; `None` if no copy is valid.
    pub superblock: Option<Superblock>,
}

/// A live dm-remap-v4 device and the devices in its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    /// Its /dev/mapper name.
    pub name: String,
    /// Main `(major, minor)`.
    pub main: (u32, u32),
    /// Spare `(major, minor)`.
    pub spare: (u32, u32),
}

/// What was decided for one spare (or one remaptab entry whose spare was not found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// `ready` (can be assembled), `active` (already is), `noauto`, `unlisted` (not in the
    /// remaptab, with `--listed-only`), `mismatch`, `ambiguous`, `no_main`, `damaged` (no valid
    /// copy), `missing` (remaptab spare not found), `failed` (the create failed).
    pub state: &'static str,
    /// The spare's path (or the remaptab's reference when missing).
    pub spare: String,
    /// The spare UUID.
    pub uuid: Option<String>,
    /// The last commit's sequence number.
    pub seq: Option<u64>,
    /// The main device chosen, or the candidates when ambiguous.
    pub main: Vec<String>,
    /// The /dev/mapper name.
    pub name: Option<String>,
    /// Why it is not `ready`.
    pub reason: Option<String>,
    /// Whether the remaptab names it.
    pub listed: bool,
}

/// The path to show and open for block device `kname`: `/dev/mapper/<name>` for a dm device
/// that has that node, else `/dev/<kname>`.
fn device_path(sys: &Path, kname: &str) -> String {
    if let Some(name) = read_attr(&sys.join("dm/name")) {
        let mapper = format!("/dev/mapper/{name}");
        if Path::new(&mapper).exists() {
            return mapper;
        }
    }
    format!("/dev/{kname}")
}

/// Every block device in `/sys/class/block` with a size.
pub fn block_devices() -> Vec<BlockInfo> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/block") else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // null_blk stores nothing: a read returns whatever the pages held, which can be a
        // superblock read from a real spare a moment ago.
        if name.starts_with("nullb") {
            continue;
        }
        let Some(devno) = read_attr(&entry.path().join("dev")).and_then(|d| {
            let (a, b) = d.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        }) else {
            continue;
        };
        if let Some((sectors, block_size)) = block_geometry(devno).filter(|g| g.0 > 0) {
            out.push(BlockInfo { path: device_path(&entry.path(), &name), devno, sectors, block_size });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Whether `main` matches the fingerprint (size and block size: the unique id the kernel may
/// record cannot be read from user space).
fn matches(sb: &Superblock, main: &BlockInfo) -> bool {
    sb.main.matches(&MainFingerprint { main_sectors: main.sectors, block_size: main.block_size, id_kind: 0, id: [0; 16] })
}

/// Pairs spares with main devices (pure: the system is described by the arguments).
/// `resolve` turns a remaptab path into a device number.
pub fn pair(
    spares: &[SpareInfo],
    devices: &[BlockInfo],
    active: &[Active],
    tab: &[Entry],
    resolve: &dyn Fn(&str) -> Option<(u32, u32)>,
) -> Vec<Found> {
    let mut out = Vec::new();
    let mut used_entries = vec![false; tab.len()];
    for spare in spares {
        let uuid = spare.superblock.map(|sb| uuid_string(&sb.uuid));
        let entry = tab.iter().position(|e| match &e.spare {
            SpareRef::Uuid(u) => Some(u) == uuid.as_ref(),
            SpareRef::Path(p) => resolve(p) == Some(spare.dev.devno),
        });
        if let Some(i) = entry {
            used_entries[i] = true;
        }
        let entry = entry.map(|i| &tab[i]);
        let mut found = Found {
            state: "ready",
            spare: spare.dev.path.clone(),
            uuid: uuid.clone(),
            seq: spare.superblock.map(|sb| sb.seq),
            main: Vec::new(),
            name: entry.map(|e| e.name.clone()),
            reason: None,
            listed: entry.is_some(),
        };
        let refuse = |found: &mut Found, state, reason: String| {
            found.state = state;
            found.reason = Some(reason);
        };
        if let Some(a) = active.iter().find(|a| a.spare == spare.dev.devno) {
            found.state = "active";
            found.name = Some(a.name.clone());
            found.main = devices.iter().filter(|d| d.devno == a.main).map(|d| d.path.clone()).collect();
            out.push(found);
            continue;
        }
        let Some(sb) = spare.superblock else {
            refuse(&mut found, "damaged", "no valid metadata copy (dm-remap check)".into());
            out.push(found);
            continue;
        };
        match entry {
            Some(e) => {
                found.main = vec![e.main.clone()];
                match resolve(&e.main).and_then(|devno| devices.iter().find(|d| d.devno == devno)) {
                    None => refuse(&mut found, "no_main", format!("main device {} not found", e.main)),
                    Some(main) if !matches(&sb, main) => refuse(
                        &mut found,
                        "mismatch",
                        format!(
                            "{} has {} sectors of {} bytes, the spare was made for {} sectors of {} bytes",
                            e.main, main.sectors, main.block_size, sb.main.main_sectors, sb.main.block_size
                        ),
                    ),
                    Some(_) if e.noauto => found.state = "noauto",
                    Some(_) => {}
                }
            }
            None => {
                let held: Vec<(u32, u32)> = active.iter().flat_map(|a| [a.main, a.spare]).collect();
                let candidates: Vec<&BlockInfo> = devices
                    .iter()
                    .filter(|d| d.devno != spare.dev.devno && !held.contains(&d.devno))
                    .filter(|d| !spares.iter().any(|s| s.dev.devno == d.devno))
                    .filter(|d| matches(&sb, d))
                    .collect();
                found.main = candidates.iter().map(|d| d.path.clone()).collect();
                found.name = Some(format!("remap-{}", &uuid_string(&sb.uuid)[..8]));
                match candidates.len() {
                    1 => {}
                    0 => refuse(&mut found, "no_main", format!(
                        "no device of {} sectors of {} bytes", sb.main.main_sectors, sb.main.block_size
                    )),
                    n => refuse(&mut found, "ambiguous", format!(
                        "{n} devices match the main fingerprint; name the pair in the remaptab"
                    )),
                }
            }
        }
        out.push(found);
    }
    for (entry, used) in tab.iter().zip(used_entries) {
        if !used {
            let spare = match &entry.spare {
                SpareRef::Uuid(u) => format!("UUID={u}"),
                SpareRef::Path(p) => p.clone(),
            };
            out.push(Found {
                state: "missing",
                spare,
                uuid: None,
                seq: None,
                main: vec![entry.main.clone()],
                name: Some(entry.name.clone()),
                reason: Some(format!("remaptab line {}: spare not found", entry.line)),
                listed: true,
            });
        }
    }
    out
}

/// The live dm-remap-v4 devices and their devices (from their tables).
fn active_devices(dm: &Dm) -> Result<Vec<Active>> {
    let parse = |w: &str| -> Option<(u32, u32)> {
        let (a, b) = w.split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let mut out = Vec::new();
    for dev in dm.remap_devices()? {
        let table = dm.table(&dev.name)?;
        let mut words = table.split_whitespace();
        if let (Some(main), Some(spare)) = (words.next().and_then(parse), words.next().and_then(parse)) {
            out.push(Active { name: dev.name, main, spare });
        }
    }
    Ok(out)
}

fn human(found: &[Found], plans: &[(usize, create::Plan)]) -> String {
    let mut out = String::new();
    for (i, f) in found.iter().enumerate() {
        let _ = write!(out, "{:<9} {} uuid={} seq={} main={} name={}",
            f.state, f.spare, f.uuid.as_deref().unwrap_or("-"),
            f.seq.map_or("-".into(), |s| s.to_string()),
            if f.main.is_empty() { "-".into() } else { f.main.join(",") },
            f.name.as_deref().unwrap_or("-"));
        if let Some(r) = &f.reason {
            let _ = write!(out, " ({r})");
        }
        out.push('\n');
        if let Some((_, plan)) = plans.iter().find(|(j, _)| *j == i) {
            let _ = writeln!(out, "  table {}: {}", plan.name, plan.table_line());
        }
    }
    out
}

/// `discover`: prints what was found; with `create`, assembles the `ready` pairs (with
/// `listed_only`, only those the remaptab names: the others are `unlisted`).
///
/// # Errors
/// [`Kind::NotAssembled`] when some spare was not (or could not be) assembled for another
/// reason than being active or `noauto`; dm errors with `create`.
pub fn discover(tab: &[Entry], json: bool, create_them: bool, listed_only: bool) -> (String, Result<()>) {
    let dm = Dm::open();
    let active = match &dm {
        Ok(dm) => active_devices(dm).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let remap_devnos: Vec<(u32, u32)> = match &dm {
        Ok(dm) => dm.remap_devices().unwrap_or_default().iter().map(|d| d.devno).collect(),
        Err(_) => Vec::new(),
    };
    let devices: Vec<BlockInfo> = block_devices().into_iter().filter(|d| !remap_devnos.contains(&d.devno)).collect();
    let mut spares = Vec::new();
    for d in &devices {
        let Ok(mut dev) = Device::open(&d.path, Access::Read) else { continue };
        if let Ok(Probe::Ours(inspection)) = probe(&mut dev) {
            spares.push(SpareInfo { dev: d.clone(), superblock: inspection.chosen.map(|c| c.1) });
        }
    }
    let resolve = |p: &str| crate::device::devno_of(Path::new(p));
    let mut found = pair(&spares, &devices, &active, tab, &resolve);
    let mut plans = Vec::new();
    let mut problems = 0usize;
    for (i, f) in found.iter_mut().enumerate() {
        if listed_only && !f.listed && f.state != "active" {
            f.state = "unlisted";
        }
        if f.state != "ready" {
            problems += usize::from(!matches!(f.state, "active" | "noauto" | "unlisted"));
            continue;
        }
        let (Some(name), Some(main)) = (f.name.clone(), f.main.first().cloned()) else { continue };
        match create::plan(&name, &main, &f.spare, false) {
            Ok(plan) => plans.push((i, plan)),
            Err(e) => {
                f.state = "mismatch";
                f.reason = Some(e.message);
                problems += 1;
            }
        }
    }
    let mut created = String::new();
    if create_them {
        for (i, plan) in &plans {
            let result = dm.as_ref().map_err(Clone::clone).and_then(|dm| create::create(dm, plan));
            match result {
                Ok(text) => {
                    created.push_str(&text);
                    found[*i].state = "active";
                }
                Err(e) => {
                    found[*i].state = "failed";
                    found[*i].reason = Some(e.message);
                    problems += 1;
                }
            }
        }
    }
    let text = if json {
        serde_json::to_string_pretty(&found).unwrap_or_default() + "\n"
    } else {
        human(&found, &plans) + &created
    };
    let result = if problems > 0 {
        Err(Error::new(Kind::NotAssembled, format!("{problems} spare(s) not assembled (see above)")))
    } else {
        Ok(())
    };
    (text, result)
}
