// SPDX-License-Identifier: GPL-2.0

//! Which health changes are news: the target raises a dm event (so `dmsetup wait`, dmeventd
//! and udev act) when its health word changes or its spare use crosses one of
//! [`SPARE_EVENT_PERCENTS`] in either direction.

#![forbid(unsafe_code)]

use crate::remap_core::status::{spare_band, Counters, Health, SPARE_EVENT_PERCENTS};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The health and spare band last reported, packed in one word.
#[derive(Default)]
pub(crate) struct HealthWatch {
    reported: AtomicU64,
}

fn pack(health: Health, band: u64) -> u64 {
    let h = match health {
        Health::Ok => 0,
        Health::Degraded => 1,
        Health::SpareLow => 2,
        Health::SpareFull => 3,
    };
    (h << 8) | (band & 0xff)
}

impl HealthWatch {
    /// Records the state at creation: what the device starts with is not an event.
    pub(crate) fn prime(&self, c: &Counters) {
        self.reported.store(pack(c.health, spare_band(c.spare_used, c.spare_total)), Relaxed);
    }

    /// Records the current state; returns it (health, band in per cent, one of
    /// [`SPARE_EVENT_PERCENTS`] or 0) if it differs from the last one recorded.
    pub(crate) fn changed(&self, c: &Counters) -> Option<(Health, u64)> {
        let band = spare_band(c.spare_used, c.spare_total);
        let now = pack(c.health, band);
        (self.reported.swap(now, Relaxed) != now).then_some((c.health, band))
    }
}

// The band fits the packing.
const _: () = assert!(SPARE_EVENT_PERCENTS[SPARE_EVENT_PERCENTS.len() - 1] < 256);
