// SPDX-License-Identifier: GPL-2.0

use super::*;

/// Every status the kernel defines (6.12 and 7.x), with the class the design gives it.
const TABLE: [(u8, &str, ErrorClass); 18] = [
    (BLK_STS_NOTSUPP, "NOTSUPP", ErrorClass::Other),
    (BLK_STS_TIMEOUT, "TIMEOUT", ErrorClass::Other),
    (BLK_STS_NOSPC, "NOSPC", ErrorClass::Other),
    (BLK_STS_TRANSPORT, "TRANSPORT", ErrorClass::Other),
    (BLK_STS_TARGET, "TARGET", ErrorClass::Other),
    (BLK_STS_RESV_CONFLICT, "RESV_CONFLICT", ErrorClass::Other),
    (BLK_STS_MEDIUM, "MEDIUM", ErrorClass::Medium),
    (BLK_STS_PROTECTION, "PROTECTION", ErrorClass::Other),
    (BLK_STS_RESOURCE, "RESOURCE", ErrorClass::Other),
    (BLK_STS_IOERR, "IOERR", ErrorClass::Medium),
    (BLK_STS_DM_REQUEUE, "DM_REQUEUE", ErrorClass::Other),
    (BLK_STS_AGAIN, "AGAIN", ErrorClass::Other),
    (BLK_STS_DEV_RESOURCE, "DEV_RESOURCE", ErrorClass::Other),
    (BLK_STS_ZONE_OPEN_RESOURCE, "ZONE_OPEN_RESOURCE", ErrorClass::Other),
    (BLK_STS_ZONE_ACTIVE_RESOURCE, "ZONE_ACTIVE_RESOURCE", ErrorClass::Other),
    (BLK_STS_OFFLINE, "OFFLINE", ErrorClass::Other),
    (BLK_STS_DURATION_LIMIT, "DURATION_LIMIT", ErrorClass::Other),
    (BLK_STS_INVAL, "INVAL", ErrorClass::Other),
];

#[test]
fn io_error_status_table_matches_design() {
    for (status, name, class) in TABLE {
        assert_eq!(classify(status), class, "BLK_STS_{name} ({status})");
    }
}

#[test]
fn io_error_only_medium_and_ioerr_may_consume_spare() {
    let medium: Vec<u8> = (0..=u8::MAX).filter(|&s| may_be_medium(s)).collect();
    assert_eq!(medium, [BLK_STS_MEDIUM, BLK_STS_IOERR]);
}

#[test]
fn io_error_outage_statuses_are_returned() {
    for status in [BLK_STS_TIMEOUT, BLK_STS_TRANSPORT, BLK_STS_NOSPC, BLK_STS_RESOURCE, BLK_STS_OFFLINE, BLK_STS_AGAIN] {
        assert!(!may_be_medium(status), "status {status} must not remap or mark pending");
    }
    // Unknown (future) statuses and success never consume spare either.
    assert_eq!(classify(BLK_STS_OK), ErrorClass::Other);
    assert_eq!(classify(18), ErrorClass::Other);
    assert_eq!(classify(200), ErrorClass::Other);
}

#[test]
fn io_error_spare_outage_marks_at_most_three_units_bad() {
    // An outage of the spare reports IOERR on every unit: 1000 failed spare writes in a row
    // mark at most MAX_BAD_IN_A_ROW units bad, however many relocations they belong to.
    let mut run = SpareWriteRun::default();
    let mut bad = 0;
    for _ in 0..1000 {
        let (action, next) = run.on_failure(BLK_STS_IOERR);
        if action == SpareFailure::MarkBad {
            bad += 1;
        }
        run = next;
    }
    assert_eq!(bad, MAX_BAD_IN_A_ROW);
    // A success resets the run: the next medium failure is a unit's again.
    run = SpareWriteRun::default();
    assert_eq!(run.on_failure(BLK_STS_MEDIUM).0, SpareFailure::MarkBad);
}

#[test]
fn io_error_spare_non_medium_failure_gives_the_unit_back() {
    for status in [BLK_STS_TIMEOUT, BLK_STS_TRANSPORT, BLK_STS_NOSPC, BLK_STS_OFFLINE, BLK_STS_RESOURCE] {
        let (action, next) = SpareWriteRun::default().on_failure(status);
        assert_eq!(action, SpareFailure::GiveBack, "status {status}");
        assert_eq!(next.failed, 1, "counted in the run");
    }
}
