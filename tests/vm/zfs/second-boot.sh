#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot 2 of tests/vm/zfs-test, after a reboot on the same disks: the same bad blocks as in
# boot 1 fail again under the main devices, the dm-remap devices are created again (their
# remaps load from the spares), the pools are imported, the files match their checksums and a
# scrub is clean: every block ZFS rewrote in boot 1 is read from the spare.
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$DMR_REPO/tests/vm/zfs/common.sh"

records_load
[[ -s $RECORDS/sums ]] || fail "no records from boot 1 on $SCRATCH"
zfs_load
dmr_load
for x in "${DEVS[@]}"; do
    lower_up "$x"
    read -ra bad <"$RECORDS/bad_$x"
    add_bad "$x" "${bad[@]}"
    remap_up "$x"
    assert_eq "$(field "$x" 3)" "$(cat "$RECORDS/remaps_$x")" "remap_$x: remaps after the reboot"
done
echo "== import after the reboot"
pools_import
assert_eq "$(pool_sums)" "$(cat "$RECORDS/sums")" "file checksums after the reboot"
echo "  $(wc -l <"$RECORDS/sums") files match their checksums"
for p in "${POOLS[@]}"; do
    assert_clean_scrub "$p"
done
for x in "${DEVS[@]}"; do
    assert_eq "$(field "$x" 6)" 0 "remap_$x: read errors after the reboot (a remapped block was read from main)"
done
pools_export
! kernel_trouble || fail "the kernel logged trouble (above)"
echo "boot 2 done"
