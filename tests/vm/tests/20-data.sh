# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Data integrity through the target: what is written reads back, lands on the main disk at the
# same offset (so an offset bug fails even if reads and writes agree), and nothing else changes.

# Writes a different 16 MiB of random data through r0 at each byte OFFSET, and 16 MiB straight
# onto the main disk at 200 MiB, then checks every region through both r0 and the main disk,
# and that the MiB before and after each region on the main disk is still zero.
check_data_paths() { # buffered|direct OFFSET...
    local mode=$1 dev=/dev/mapper/r0 off i
    shift
    require_coreutils_dd
    dmr_load
    dmr_create r0
    assert_eq "$(sectors $dev)" "$(sectors "$MAIN")" "sectors of $dev"

    i=0
    for off; do
        i=$((i + 1))
        random_file "data$i" 16
        write_at "data$i" $dev "$off" "$mode"
    done
    random_file under 16
    write_at under "$MAIN" $((200 * MiB)) direct
    drop_caches

    i=0
    for off; do
        i=$((i + 1))
        echo "region $i at byte $off"
        assert_data "data$i" $dev "$off" "$mode"
        assert_data "data$i" "$MAIN" "$off" direct
        ((off < MiB)) || assert_zero "$MAIN" $((off - MiB)) "$MiB"
        ((off + 17 * MiB > 256 * MiB)) || assert_zero "$MAIN" $((off + 16 * MiB)) "$MiB"
    done
    assert_data under $dev $((200 * MiB)) "$mode"
}

# Buffered I/O, at offsets that are sector- but not page-aligned too.
test_data_buffered() {
    check_data_paths buffered 0 $((40 * MiB + 7 * 512)) $((120 * MiB + 5 * 4096)) $((240 * MiB))
}

test_data_direct() {
    check_data_paths direct 0 $((40 * MiB + 3 * 4096)) $((120 * MiB + 5 * 4096)) $((240 * MiB))
}

# The table dmsetup prints is one the target accepts again, unchanged, with the data intact.
test_table_round_trip() {
    local table
    dmr_load
    dmr_create r0
    table=$(dmsetup table r0)
    echo "table: $table"
    assert_match "$table" "^0 $(sectors "$MAIN") $TARGET $(devno "$MAIN") $(devno "$SPARE")( |$)" \
        "dmsetup table r0"
    random_file data 16
    write_at data /dev/mapper/r0 $((64 * MiB)) direct

    dmsetup remove r0
    dmsetup create r0 --table "$table"
    assert_eq "$(dmsetup table r0)" "$table" "table of r0 re-created from its own table"
    assert_eq "$(sectors /dev/mapper/r0)" "$(sectors "$MAIN")" "sectors of r0"
    drop_caches
    assert_data data /dev/mapper/r0 $((64 * MiB)) direct
}

# Loading the same table into a live device (a new target instance while the old one still
# holds the disks), then resuming, keeps the table and the data.
test_table_reload_live() {
    local table
    dmr_load
    dmr_create r0
    table=$(dmsetup table r0)
    random_file data 8
    write_at data /dev/mapper/r0 $((32 * MiB)) direct

    dmsetup reload r0 --table "$table"
    dmsetup suspend r0
    dmsetup resume r0
    assert_match "$(dmsetup info r0)" "State: +ACTIVE" "dmsetup info r0 after resume"
    assert_eq "$(dmsetup table r0)" "$table" "table of r0 after reload"
    drop_caches
    assert_data data /dev/mapper/r0 $((32 * MiB)) direct
    random_file more 8
    write_at more /dev/mapper/r0 $((48 * MiB)) direct
    assert_data more "$MAIN" $((48 * MiB)) direct
}

# A remap made by the live table after a new table was loaded (reload: the new target's ctr
# ran while the old one kept remapping) is still there after the resume swaps the tables,
# and after remove/create: one in-core remap table per spare, shared by both targets.
test_table_reload_keeps_remaps_made_meanwhile() {
    local table dust sector=$((40 * 2048 + 3))
    dmr_load
    dust=$(dust_main)
    dmsetup create r0 --table "0 $(sectors "$MAIN") $TARGET $dust $SPARE"
    table=$(dmsetup table r0)
    dmsetup reload r0 --table "$table"
    # The live (old) table remaps this write; the loaded (new) one has not seen it.
    dmsetup message dust 0 addbadblock "$sector" 255
    random_file data 1
    write_at data /dev/mapper/r0 $((40 * MiB)) direct
    assert_eq "$(dmsetup message r0 0 list)" "$sector $(first_spare_sector r0 "$SPARE")" "remaps before resume"
    dmsetup resume r0
    assert_eq "$(dmsetup message r0 0 list | cut -d' ' -f1)" "$sector" "remaps after resume"
    drop_caches
    assert_data data /dev/mapper/r0 $((40 * MiB)) direct
    # A new remap after the swap gets its own spare unit, and both survive remove/create.
    dmsetup message dust 0 addbadblock $((sector + 8)) 255
    write_at data /dev/mapper/r0 $((40 * MiB)) direct
    assert_eq "$(dmsetup message r0 0 list | wc -l)" 2 "remaps after a second remapping write"
    assert_eq "$(dmsetup message r0 0 list | cut -d' ' -f2 | sort -u | wc -l)" 2 "distinct spare units"
    dmsetup remove r0
    dmsetup create r0 --table "$table"
    assert_eq "$(dmsetup message r0 0 list | wc -l)" 2 "remaps after remove/create"
    drop_caches
    assert_data data /dev/mapper/r0 $((40 * MiB)) direct
}

# A table loaded to replace a live one shares the live table's remap table, so it must name
# the same main device (by fingerprint) and must not format the spare: refused, and the live
# table goes on unharmed.
test_table_reload_refuses_other_main_or_format() {
    local table other
    dmr_load
    dmr_create r0
    table=$(dmsetup table r0)
    other=$(linear other "$SCRATCH" $((200 * 2048)))
    if dmsetup reload r0 --table "0 $((200 * 2048)) $TARGET $other $SPARE" 2>err; then
        fail "a reload naming another main device was accepted"
    fi
    dmesg | grep -q "Spare belongs to another main device" || fail "no 'another main device' in dmesg"
    if dmsetup reload r0 --table "$table 1 format" 2>err; then
        fail "a reload with 'format' was accepted"
    fi
    dmesg | grep -q "Cannot format a spare the live table uses" || fail "no 'Cannot format' in dmesg"
    assert_eq "$(dmsetup table r0)" "$table" "live table"
    random_file data 1
    write_at data /dev/mapper/r0 $((8 * MiB)) direct
    assert_data data "$MAIN" $((8 * MiB)) direct
}
