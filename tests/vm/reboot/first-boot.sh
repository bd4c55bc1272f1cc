#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot 1 of tests/vm/reboot-test, in the guest (tests/vm/run --script ... --disks DIR). For each
# variant (see common.sh): remaps by failed writes, a pending unit, remaps by message, data over
# them; then it records the remap list, a checksum of the data, the bad sectors and the metadata
# seq on the scratch disk, and ends the variant:
#   clean: one more remap by message, which only the removal's commit makes durable; remove;
#   live:  one more remap by message, sync and a flush (whose commit makes that remap durable),
#          then the device stays live: the guest reboots under it.
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$DMR_REPO/tests/vm/reboot/common.sh"

populate() { # VARIANT
    local v=$1 dev=/dev/mapper/$1 s
    lower_up "$v"
    for s in "${BAD_WRITE[@]}"; do
        dmsetup message "dust_$v" 0 addbadblock "$s" 255
    done
    dmsetup message "dust_$v" 0 addbadblock "$BAD_READ"
    dmsetup create "$v" --table "$(remap_table "$v")"
    # What the first CHECKED bytes must hold, built alongside: data, then new data over 3000
    # after its remap by message (that write goes to the spare).
    truncate -s "$CHECKED" "$v.expected"
    random_file "$v.data" 1
    write_at "$v.data" "$dev" "$DATA_AT" direct
    dd if="$v.data" of="$v.expected" bs=1M seek=$((DATA_AT / MiB)) conv=notrunc status=none
    ! dd if="$dev" of=/dev/null bs=512 skip="$BAD_READ" count=1 iflag=direct status=none 2>/dev/null ||
        fail "$v: the read of bad sector $BAD_READ succeeded"
    for s in "${MSG_REMAPS[@]}"; do
        dmsetup message "$v" 0 remap "$s" >/dev/null
    done
    head -c 65536 /dev/urandom >"$v.chunk"
    write_at "$v.chunk" "$dev" $((2944 * 512)) direct
    dd if="$v.chunk" of="$v.expected" bs=512 seek=2944 conv=notrunc status=none
    assert_eq "$(dmsetup message "$v" 0 list | cut -d' ' -f1 | paste -sd' ')" \
        "2100 2101 2600 3000 4000 6000 40000" "$v: remapped and pending sectors"
    drop_caches
    assert_data "$v.expected" "$dev" 0 direct
    sha_file "$v.expected" >"$RECORDS/$v.sha"
}

dmr_load
mkdir -p "$RECORDS"
for v in "${VARIANTS[@]}"; do
    populate "$v"
done

# clean: the last remap is durable only through the commit of the removal.
dmsetup message clean 0 remap 6500 >/dev/null
dmsetup message clean 0 list >"$RECORDS/clean.list"
dmsetup message dust_clean 0 listbadblocks >"$RECORDS/clean.bad"
dmsetup remove clean dust_clean

# live: the last remap is durable only through the flush's commit; nothing changes after it, so
# boot 2 must load exactly this seq.
seq=$(field live 10)
dmsetup message live 0 remap 6500 >/dev/null
sync
python3 -c 'import os; os.fsync(os.open("/dev/mapper/live", os.O_RDWR))'
[[ $(field live 10) -gt $seq ]] || fail "live: no commit after the flush"
field live 10 >"$RECORDS/live.seq"
dmsetup message live 0 list >"$RECORDS/live.list"
dmsetup message dust_live 0 listbadblocks >"$RECORDS/live.bad"

tar -C "$RECORDS" -cf "$SCRATCH" .
sync
[[ -b /dev/mapper/live ]] || fail "live: the device should still exist"
echo "first boot: recorded $(cd "$RECORDS" && echo *); rebooting with the live device in place"
