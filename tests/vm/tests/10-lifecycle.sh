# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# The module and device life cycle: load, create, remove, unload, and the module reference that
# keeps the module in while a device uses it.

test_create_remove() {
    local size
    size=$(sectors "$MAIN")
    dmr_load
    dmr_loaded || fail "$DMR_MODNAME is not in /proc/modules after insmod"
    assert_eq "$(dmsetup targets | awk -v t="$TARGET" '$1 == t {print $2}')" "$TARGET_VERSION" \
        "version of $TARGET in dmsetup targets"

    dmr_create r0
    [[ -n $(dmsetup ls | awk '$1 == "r0"') ]] || fail "r0 is not in dmsetup ls: $(dmsetup ls)"
    assert_match "$(dmsetup table r0)" "^0 $size $TARGET " "dmsetup table r0"
    assert_match "$(dmsetup status r0)" "^0 $size $TARGET" "dmsetup status r0"
    assert_match "$(dmsetup info r0)" "State: +ACTIVE" "dmsetup info r0"
    [[ -b /dev/mapper/r0 ]] || fail "/dev/mapper/r0 is not a block device"
    assert_eq "$(sectors /dev/mapper/r0)" "$size" "sectors of /dev/mapper/r0"

    dmsetup remove r0
    assert_fails dmsetup info r0
    [[ ! -e /dev/mapper/r0 ]] || fail "/dev/mapper/r0 still exists after dmsetup remove"
    dmr_unload
    ! dmr_loaded || fail "$DMR_MODNAME is still loaded after rmmod"
    assert_eq "$(dmsetup targets | awk -v t="$TARGET" '$1 == t')" "" "$TARGET in dmsetup targets after rmmod"
}

# A device holds a reference on the module: rmmod must refuse, and the device keep working.
test_rmmod_refused_while_in_use() {
    local refcnt=/sys/module/$DMR_MODNAME/refcnt
    dmr_load
    assert_eq "$(cat "$refcnt")" 0 "module refcnt without devices"
    dmr_create r0
    (($(cat "$refcnt") >= 1)) || fail "module refcnt is $(cat "$refcnt") while r0 exists"
    assert_fails rmmod "$DMR_MODNAME"
    dmr_loaded || fail "rmmod unloaded the module while r0 exists"

    random_file data 1
    write_at data /dev/mapper/r0 $((5 * MiB)) direct
    assert_data data /dev/mapper/r0 $((5 * MiB)) direct

    dmsetup remove r0
    assert_eq "$(cat "$refcnt")" 0 "module refcnt after removing r0"
    dmr_unload
}

# Five rounds of insmod, create, I/O, remove, rmmod; then the data of every round is still there.
test_module_reload_cycles() {
    local i
    for i in 1 2 3 4 5; do
        echo "cycle $i"
        dmr_load
        dmr_create r0
        random_file "round$i" 1
        write_at "round$i" /dev/mapper/r0 $((i * 8 * MiB)) direct
        assert_data "round$i" /dev/mapper/r0 $((i * 8 * MiB)) direct
        dmsetup remove r0
        dmr_unload
        ! dmr_loaded || fail "cycle $i: $DMR_MODNAME is still loaded after rmmod"
    done
    dmr_load
    dmr_create r0
    for i in 1 2 3 4 5; do
        assert_data "round$i" /dev/mapper/r0 $((i * 8 * MiB)) direct
    done
}
