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
