# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Checks of the harness itself, with the built-in dm-linear only: when these fail, the
# dm-remap results mean nothing.

# The disks are the sizes tests/vm/run made, and zeroed.
test_harness_disks() {
    assert_eq "$(sectors "$MAIN")" $((256 * 2048)) "sectors of $MAIN"
    assert_eq "$(sectors "$SPARE")" $((64 * 2048)) "sectors of $SPARE"
    assert_eq "$(sectors "$SCRATCH")" $((256 * 2048)) "sectors of $SCRATCH"
    assert_zero "$MAIN" 0 $((4 * MiB))
    assert_zero "$MAIN" $((252 * MiB)) $((4 * MiB))
}

# Data written through dm-linear reads back, and lands at the mapped offset of the disk.
test_harness_sanity() {
    require_coreutils_dd
    local dev offset=$((2048 * 512))
    dev=$(linear lin "$MAIN" $((64 * 2048)) 2048)
    [[ -b $dev ]] || fail "$dev is not a block device"
    random_file data 8
    write_at data "$dev" $((3 * MiB)) direct
    drop_caches
    assert_data data "$dev" $((3 * MiB)) direct
    assert_data data "$dev" $((3 * MiB))
    assert_data data "$MAIN" $((offset + 3 * MiB)) direct
    assert_zero "$MAIN" $((offset + 11 * MiB)) $((4 * MiB))
    dmsetup remove lin
    [[ ! -e $dev ]] || fail "$dev still exists after dmsetup remove"
}

# The dmesg scan catches what it should: a fake warning in the kernel log is found.
test_harness_dmesg_scan() {
    echo "<4>WARNING: harness self-test (not a real warning)" >/dev/kmsg
    kernel_trouble >/dev/null || fail "kernel_trouble missed a WARNING: line"
    dmesg -C
    if kernel_trouble; then
        fail "kernel_trouble matches a cleared log"
    fi
}

# fio runs in the guest (libaio, shared memory) and its verification works.
test_harness_fio() {
    local dev
    dev=$(linear lin "$SCRATCH" $((128 * 2048)))
    fio --name=harness --filename="$dev" --ioengine=libaio --direct=1 --rw=randrw --bs=4k \
        --iodepth=8 --numjobs=1 --size=32M --verify=crc32c --verify_backlog=256 \
        --verify_fatal=1 --time_based --runtime=2 >fio.out ||
        {
            cat fio.out
            fail "fio failed on dm-linear"
        }
}
