// SPDX-License-Identifier: GPL-2.0

//! The human summary in `/proc/dm-remap-v4`, in the spirit of `/proc/mdstat`: a header line,
//! then three lines per active device. For people, not for parsing (scripts read sysfs or
//! `dmsetup status`).
//!
//! ```text
//! dm-remap-v4 4.0.0, 1 device
//! remap0 (dm-3): degraded  main 252:0  spare 252:1  unit 8 sectors
//!     remaps 3  pending 1  spare 4/1000 units (0%)
//!     errors: read 5  write 6  remap failures 7  metadata seq 42, 5/5 copies, read_only
//!     scan: scanning  pass 2 done  50% of current  11 found  4096 KiB/s every 86400 s
//! ```

use super::scan::percent;
use super::status::Counters;
use core::fmt::{self, Write};

/// Writes the header line.
pub fn write_header(w: &mut dyn Write, version: &str, devices: u64) -> fmt::Result {
    let plural = if devices == 1 { "" } else { "s" };
    writeln!(w, "dm-remap-v4 {version}, {devices} device{plural}")
}

/// The names of one device, as the kernel reports them.
#[derive(Debug, Clone, Copy)]
pub struct DeviceNames<'a> {
    /// Name under `/dev/mapper`.
    pub name: &'a str,
    /// dm kernel name (`dm-3`), also its sysfs folder.
    pub kernel_name: &'a str,
    /// Main device, `major:minor`.
    pub main: &'a str,
    /// Spare device, `major:minor`.
    pub spare: &'a str,
}

/// Writes one device's lines.
pub fn write_device(w: &mut dyn Write, n: &DeviceNames<'_>, c: &Counters) -> fmt::Result {
    writeln!(
        w,
        "{} ({}): {}  main {}  spare {}  unit {} sectors",
        n.name,
        n.kernel_name,
        c.health.as_str(),
        n.main,
        n.spare,
        c.unit_sectors
    )?;
    writeln!(
        w,
        "    remaps {}  pending {}  spare {}/{} units ({}%)",
        c.remaps,
        c.pending,
        c.spare_used,
        c.spare_total,
        percent(c.spare_used, c.spare_total)
    )?;
    writeln!(
        w,
        "    errors: read {}  write {}  remap failures {}  metadata seq {}, {}/5 copies, {}",
        c.read_errors,
        c.write_errors,
        c.remap_failures,
        c.metadata_seq,
        c.metadata_copies,
        c.metadata_mode.as_str()
    )?;
    let s = &c.scan;
    writeln!(
        w,
        "    scan: {}  pass {} done  {}% of current  {} found  {} KiB/s every {} s",
        s.state.as_str(),
        s.passes,
        s.percent(),
        s.errors,
        s.rate_kib,
        s.interval_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::sample_counters;
    use std::string::String;

    #[test]
    fn device_lines() {
        let mut s = String::new();
        write_header(&mut s, "4.0.0", 1).unwrap();
        let names = DeviceNames { name: "remap0", kernel_name: "dm-3", main: "252:0", spare: "252:1" };
        write_device(&mut s, &names, &sample_counters()).unwrap();
        let doc: String = include_str!("summary.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```text"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//! ")))
            .collect();
        assert_eq!(s, doc);
    }
}
