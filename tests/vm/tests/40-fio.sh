# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Concurrent I/O through the target, checked by fio's own verification.

# Two jobs of queued random reads and writes, each on its own 64 MiB (verification needs a single
# writer per block); --verify_backlog verifies during the run, not only at its end.
test_fio_randrw_verify() {
    local status=0 issued
    dmr_load
    dmr_create r0
    fio --name=remap --filename=/dev/mapper/r0 --ioengine=libaio --direct=1 --rw=randrw --bs=4k \
        --iodepth=16 --numjobs=2 --size=64M --offset_increment=64M --verify=crc32c \
        --verify_backlog=512 --verify_fatal=1 --time_based --runtime=5 --group_reporting \
        >fio.out 2>&1 || status=$?
    cat fio.out
    ((status == 0)) || fail "fio exited with status $status"
    ! grep -E '^verify: |err= *[1-9]' fio.out || fail "fio reported errors"
    # "issued rwts: total=READS,WRITES,TRIMS,SYNCS": both kinds must have happened.
    issued=$(grep -Eo 'issued rwts: total=[0-9]+,[0-9]+' fio.out) || fail "no I/O counts in fio's output"
    [[ $issued =~ =([1-9][0-9]*),([1-9][0-9]*)$ ]] || fail "fio did not both read and write: $issued"
}
