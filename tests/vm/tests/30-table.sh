# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Table lines the constructor must reject (one test per case), and the near misses it must
# accept, so that a rejection is known to be about the one thing wrong.
#
# Grammar: <start> <len> dm-remap-v4 <main_dev> <spare_dev> [<#feature_args> <feature_arg>...]

# The first three fields of a line that maps all of the main disk.
whole_main() {
    echo "0 $(sectors "$MAIN") $TARGET"
}

# Guards the data of the block devices the last table line names as main and spare (the two
# words after the target name), unless they name none: see guard_data. The spare is left
# out when SPARE_MAY_CHANGE is set (a refusal by dm core after the constructor ran, which may
# have formatted it).
guard_line_devices() { # LINE...
    local -a words
    local i dev
    read -r -a words <<<"${*: -1}"
    for ((i = 0; i < ${#words[@]}; i++)); do
        [[ ${words[i]} == "$TARGET" ]] && break
    done
    for dev in "${words[i + 1]:-}" "${words[i + 2]:-}"; do
        [[ $dev == "${words[i + 2]:-}" && -n ${SPARE_MAY_CHANGE:-} ]] && continue
        dev=$(block_dev "$dev") || continue
        grep -qx "$dev" guard.list 2>/dev/null || guard_data "$dev"
    done
}

# `dmsetup create` of the table (one argument per line) must fail with an error matching
# $EXPECT_ERRNO (default: EINVAL's text), log MESSAGE (an ERE), leave no device behind, and
# leave the data of the main and spare devices it names as it was.
rejects() { # MESSAGE LINE...
    local msg=$1 errno=${EXPECT_ERRNO:-Invalid argument} out
    shift
    dmr_loaded || dmr_load
    guard_line_devices "$@"
    printf 'table: %.200s\n' "$@"
    dmesg -C
    # shellcheck disable=SC2086 # CREATE_OPTS: words for dmsetup create (--readonly)
    if out=$(printf '%s\n' "$@" | dmsetup create ${CREATE_OPTS:-} bad 2>&1); then
        fail "dmsetup create accepted it"
    fi
    echo "dmsetup: $out"
    assert_match "$out" "failed: ($errno)" "dmsetup's error"
    assert_fails dmsetup info bad
    [[ ! -e /dev/mapper/bad ]] || fail "/dev/mapper/bad exists after the failed create"
    dmesg | grep -E "device-mapper: .*($msg)" ||
        fail "dmesg lacks /$msg/; last device-mapper line: $(dmesg | grep device-mapper: | tail -n1)"
    ! kernel_trouble || fail "kernel trouble after the refusal"
    assert_guarded
}

# ---- Argument counts and feature arguments -----------------------------------------------------

test_table_bad_no_args() {
    rejects "$TARGET: Not enough arguments" "$(whole_main)"
}

test_table_bad_one_arg() {
    rejects "$TARGET: Not enough arguments" "$(whole_main) $MAIN"
}

test_table_bad_feature_count_not_a_number() {
    rejects "$TARGET: Invalid feature argument count" "$(whole_main) $MAIN $SPARE x"
}

test_table_bad_feature_count_negative() {
    rejects "$TARGET: Invalid feature argument count" "$(whole_main) $MAIN $SPARE -1"
}

test_table_bad_feature_count_overflow() {
    rejects "$TARGET: Invalid feature argument count" "$(whole_main) $MAIN $SPARE 99999999999999999999"
}

test_table_bad_feature_count_without_features() {
    rejects "$TARGET: Invalid feature argument count" "$(whole_main) $MAIN $SPARE 1"
}

test_table_bad_feature_count_beyond_args() {
    rejects "$TARGET: Invalid feature argument count" "$(whole_main) $MAIN $SPARE 2 foo"
}

# A word where the count belongs is a bad count.
test_table_bad_word_for_feature_count() {
    rejects "$TARGET: Invalid feature argument count" "$(whole_main) $MAIN $SPARE extra"
}

# No feature is defined yet: any word is unknown.
test_table_bad_unknown_feature() {
    rejects "$TARGET: Unknown feature argument" "$(whole_main) $MAIN $SPARE 1 foo"
}

test_table_bad_trailing_word() {
    rejects "$TARGET: Too many arguments" "$(whole_main) $MAIN $SPARE 0 extra"
}

# ---- Devices that cannot be opened (the errno is whatever the lookup gives) --------------------

test_table_bad_main_missing() {
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open main device" "$(whole_main) /dev/nonexistent $SPARE"
}

test_table_bad_spare_missing() {
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open spare device" "$(whole_main) $MAIN /dev/nonexistent"
}

test_table_bad_main_regular_file() {
    truncate -s 256M "$TEST_TMP/file"
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open main device" "$(whole_main) $TEST_TMP/file $SPARE"
}

test_table_bad_main_char_device() {
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open main device" "$(whole_main) /dev/null $SPARE"
}

test_table_bad_spare_char_device() {
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open spare device" "$(whole_main) $MAIN /dev/zero"
}

test_table_bad_main_unknown_devno() {
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open main device" "$(whole_main) 4095:1048575 $SPARE"
}

# 4096 characters: one more than a path may have.
test_table_bad_main_path_too_long() {
    local path
    path=/dev/$(printf 'x%.0s' {1..4091})
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open main device" "$(whole_main) $path $SPARE"
}

# ---- Device combinations and geometry ----------------------------------------------------------

test_table_bad_same_device() {
    rejects "$TARGET: Main and spare are the same device" "$(whole_main) $MAIN $MAIN"
}

test_table_bad_same_device_by_devno() {
    rejects "$TARGET: Main and spare are the same device" "$(whole_main) $MAIN $(devno "$MAIN")"
}

# dm core refuses a zero length before the constructor runs.
test_table_bad_zero_length() {
    rejects "zero-length target" "0 0 $TARGET $MAIN $SPARE"
}

# dm core may refuse it too, after the constructor: either message will do.
test_table_bad_beyond_main() {
    rejects "$TARGET: Target does not fit on the main device|too small for target" \
        "0 $(($(sectors "$MAIN") + 8)) $TARGET $MAIN $SPARE"
}

# The same when the target does not start the table.
test_table_bad_beyond_main_after_start() {
    rejects "$TARGET: Target does not fit on the main device|too small for target" \
        "0 8 linear $SCRATCH 0" "8 $(($(sectors "$MAIN") + 8)) $TARGET $MAIN $SPARE"
}

test_table_bad_spare_too_small() {
    local spare
    spare=$(linear small "$SCRATCH" 8192)
    rejects "$TARGET: Spare device too small" "$(whole_main) $MAIN $spare"
}

test_table_bad_spare_one_sector_short() {
    local spare
    spare=$(linear small "$SCRATCH" 10239)
    rejects "$TARGET: Spare device too small" "$(whole_main) $MAIN $spare"
}

test_table_bad_4kn_length_misaligned() {
    local main
    main=$(loop_4k 64)
    rejects "$TARGET: Target length is not a multiple of the logical block size" \
        "0 $((8 * 1000 + 4)) $TARGET $main $SPARE"
}

test_table_bad_4kn_start_misaligned() {
    local main
    main=$(loop_4k 64)
    rejects "$TARGET: Target start is not a multiple of the logical block size" \
        "0 1 linear $SCRATCH 0" "1 8000 $TARGET $main $SPARE"
}

test_table_bad_spare_block_size_larger() {
    local spare
    spare=$(loop_4k 16)
    rejects "$TARGET: Spare logical block size is larger than main's" "$(whole_main) $MAIN $spare"
}

# ---- Hostile words: counts, numbers, features, overlong strings -------------------------------

# One create per line, each reported: the message each must log, then the words after the devices.
test_table_bad_feature_words() {
    local long n=0 msg words
    long=$(printf 'f%.0s' {1..4000})
    local -a cases=(
        "Invalid feature argument count|+1 format"
        "Invalid feature argument count|0x1 format"
        "Invalid feature argument count|1.0 format"
        "Invalid feature argument count|1e0 format"
        "Invalid feature argument count|-0"
        "Invalid feature argument count|١ format"
        "Invalid feature argument count|4294967297 format"
        "Invalid feature argument count|18446744073709551615 format"
        "Invalid feature argument count|18446744073709551617 format"
        "Invalid feature argument count|$long"
        "Feature argument given twice|2 format format"
        "Unknown feature argument|1 FORMAT"
        "Unknown feature argument|1 format=1"
        "Unknown feature argument|1 forma"
        "Unknown feature argument|1 formatformat"
        "Unknown feature argument|2 format $long"
        "Unknown feature argument|1 $(printf '\x7f\x01')"
        "Unknown feature argument|3 format x format"
        "Too many arguments|1 format format"
        "Too many arguments|0 0"
        "Too many arguments|0 $(echo {1..300})"
    )
    for c in "${cases[@]}"; do
        msg=${c%%|*} words=${c#*|}
        n=$((n + 1))
        echo "-- input $n: $(head -c 80 <<<"$words")"
        rejects "$TARGET: $msg" "$(whole_main) $MAIN $SPARE $words"
    done
    echo "$n inputs refused"
}

# ---- Devices: wrong kinds, unusable, in use ----------------------------------------------------

# The errno of a failed open is whatever the lookup gives.
cannot_open_main() { # MAIN
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open main device" "$(whole_main) $1 $SPARE"
}

cannot_open_spare() { # SPARE
    EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open spare device" "$(whole_main) $MAIN $1"
}

# Prints a loop device with nothing attached (0 sectors), making its node if needed.
empty_loop() {
    local loop
    loop=$(losetup --find)
    [[ -b $loop ]] || mknod "$loop" b 7 "${loop#/dev/loop}"
    echo "$loop"
}

test_table_bad_main_directory() {
    cannot_open_main /dev
}

test_table_bad_spare_directory() {
    cannot_open_spare /dev/mapper
}

test_table_bad_spare_regular_file() {
    truncate -s 64M "$TEST_TMP/file"
    cannot_open_spare "$TEST_TMP/file"
}

test_table_bad_spare_path_too_long() {
    local path
    path=/dev/$(printf 'y%.0s' {1..4091})
    cannot_open_spare "$path"
}

test_table_bad_spare_unknown_devno() {
    cannot_open_spare 4095:1048575
}

test_table_bad_main_devno_zero() {
    cannot_open_main 0:0
}

test_table_bad_main_devno_garbage() {
    cannot_open_main 254:x
}

test_table_bad_main_devno_overflow() {
    cannot_open_main 99999999999:1
}

test_table_bad_spare_devno_negative() {
    cannot_open_spare -1:-1
}

test_table_bad_main_trailing_slash() {
    cannot_open_main "$MAIN/"
}

test_table_bad_same_device_by_symlink() {
    ln -s "$MAIN" "$TEST_TMP/main-link"
    rejects "$TARGET: Main and spare are the same device" "$(whole_main) $MAIN $TEST_TMP/main-link"
}

# A loop device with nothing attached has 0 sectors.
test_table_bad_main_empty_loop() {
    local loop
    loop=$(empty_loop)
    assert_eq "$(sectors "$loop")" 0 "sectors of the unattached $loop"
    rejects "$TARGET: Target does not fit on the main device|too small for target" "0 8 $TARGET $loop $SPARE"
}

test_table_bad_spare_empty_loop() {
    rejects "$TARGET: Spare device too small" "$(whole_main) $MAIN $(empty_loop)"
}

test_table_bad_spare_one_sector() {
    local spare
    spare=$(linear small "$SCRATCH" 1)
    rejects "$TARGET: Spare device too small" "$(whole_main) $MAIN $spare"
}

# A mounted file system holds its device exclusively (read-only: nothing else writes to it).
# Prints a 64 MiB device over the scratch disk with ext4 on it, mounted read-only on /mnt/fs
# (the framework unmounts it).
mounted_fs() {
    local dev
    dev=$(linear fs "$SCRATCH" 131072)
    mkfs.ext4 -q "$dev"
    mkdir -p /mnt/fs
    mount -o ro "$dev" /mnt/fs
    echo "$dev"
}

test_table_bad_main_mounted() {
    local main
    main=$(mounted_fs)
    GUARD_KEEP=1 EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open main device" "0 131072 $TARGET $main $SPARE"
}

test_table_bad_spare_mounted() {
    local spare
    spare=$(mounted_fs)
    GUARD_KEEP=1 EXPECT_ERRNO=.+ rejects "$TARGET: Cannot open spare device" "$(whole_main) $MAIN $spare"
}

# The main device of a live dm-remap device holds data: as another target's spare it is
# foreign, and the live device keeps its data.
test_table_bad_spare_is_live_main() {
    local spare
    dmr_load
    spare=$(linear other "$SCRATCH" 131072)
    dmr_create r0 "$spare" "$SPARE"
    random_file data 1
    write_at data /dev/mapper/r0 0 direct
    GUARD_KEEP=1 rejects "$TARGET: Spare holds foreign data" "0 131072 $TARGET $MAIN $spare"
    assert_data data /dev/mapper/r0 0 direct
}

# The spare of a live dm-remap device, offered to another main device.
test_table_bad_spare_of_another_live_device() {
    local main
    dmr_load
    dmr_create r0
    main=$(linear other "$SCRATCH" 131072)
    GUARD_KEEP=1 EXPECT_ERRNO="Device or resource busy" \
        rejects "$TARGET: Spare device is in use by another dm-remap-v4 target" "0 131072 $TARGET $main $SPARE"
    dmsetup status r0 >/dev/null
}

# Two targets on one spare would commit two remap tables to the same metadata copies.
test_table_bad_spare_claimed_by_another_device() {
    dmr_load
    dmr_create r0
    # Same main and spare, as the same device's metadata would accept them: only the claim refuses.
    GUARD_KEEP=1 EXPECT_ERRNO="Device or resource busy" \
        rejects "$TARGET: Spare device is in use by another dm-remap-v4 target" "$(dmr_table)"
    dmsetup status r0 >/dev/null
    # A reload of r0 itself with the same spare is allowed (the old table goes on resume).
    dmsetup reload r0 --table "$(dmr_table)"
    dmsetup resume r0
    dmsetup remove r0
    dmr_create r1
}

test_table_bad_spare_twice_in_one_table() {
    local half
    half=$(($(sectors "$MAIN") / 2))
    # The spare holds MAIN's metadata, so that the first target loads it without writing.
    dmr_load
    dmr_create r0
    dmsetup remove r0
    GUARD_KEEP=1 EXPECT_ERRNO="Device or resource busy" rejects "$TARGET: Spare device is in use by another dm-remap-v4 target" \
        "0 $half $TARGET $MAIN $SPARE" "$half $half $TARGET $MAIN $SPARE"
}

test_table_bad_4kn_length_one_sector() {
    local main
    main=$(loop_4k 64)
    rejects "$TARGET: Target length is not a multiple of the logical block size" "0 1 $TARGET $main $SPARE"
}

test_table_bad_spare_2k_main_512() {
    local spare file
    file=$TEST_TMP/spare2k
    truncate -s 16M "$file"
    spare=$(losetup --sector-size 2048 --find --show "$file")
    rejects "$TARGET: Spare logical block size is larger than main's" "$(whole_main) $MAIN $spare"
}

# dm core checks the table as a whole after the constructor: the spare may have been formatted.
test_table_bad_one_sector_beyond_main() {
    SPARE_MAY_CHANGE=1 rejects "$TARGET: Target does not fit on the main device|too small for target" \
        "0 $(($(sectors "$MAIN") + 1)) $TARGET $MAIN $SPARE"
}

# Read-only devices and tables: the block layer would take the target's writes to a device
# marked read-only (it only warns), and the spare's metadata is written at creation.
test_table_bad_spare_read_only() {
    local spare
    spare=$(linear ro_spare "$SCRATCH" 131072)
    blockdev --setro "$spare"
    rejects "$TARGET: Spare device is read-only" "$(whole_main) $MAIN $spare"
}

test_table_bad_main_read_only() {
    local main
    main=$(linear ro_main "$SCRATCH" 131072)
    blockdev --setro "$main"
    rejects "$TARGET: Main device is read-only" "0 131072 $TARGET $main $SPARE"
}

test_table_bad_read_only_table() {
    CREATE_OPTS=--readonly rejects "$TARGET: Read-only tables are not supported" "$(dmr_table)"
}

# ---- Near misses that must work ----------------------------------------------------------------

test_table_ok_zero_feature_args() {
    dmr_load
    dmsetup create r0 --table "$(whole_main) $MAIN $SPARE 0"
    dmsetup info r0 >/dev/null
}

test_table_ok_shorter_than_main() {
    dmr_load
    dmsetup create r0 --table "0 $(($(sectors "$MAIN") / 2)) $TARGET $MAIN $SPARE"
    assert_eq "$(sectors /dev/mapper/r0)" $(($(sectors "$MAIN") / 2)) "sectors of r0"
}

# The target maps its own sector s, counted from where it starts in the table, to main sector s:
# so it may cover all of main from sector 2048, and device byte 1 MiB + X is main byte X.
test_table_ok_after_start() {
    dmr_load
    printf '%s\n' "0 2048 linear $SCRATCH 0" "2048 $(sectors "$MAIN") $TARGET $MAIN $SPARE" |
        dmsetup create r0
    random_file data 4
    write_at data /dev/mapper/r0 $((9 * MiB)) direct
    drop_caches
    assert_data data /dev/mapper/r0 $((9 * MiB)) direct
    assert_data data "$MAIN" $((8 * MiB)) direct
    assert_zero "$MAIN" $((7 * MiB)) "$MiB"
    assert_zero "$MAIN" $((12 * MiB)) "$MiB"
}

test_table_ok_spare_min_size() {
    local spare
    spare=$(linear spare "$SCRATCH" 10240)
    dmr_load
    dmr_create r0 "$MAIN" "$spare"
    dmsetup info r0 >/dev/null
}

test_table_ok_4kn_aligned() {
    local main
    main=$(loop_4k 64)
    dmr_load
    dmr_create r0 "$main" "$SPARE"
    assert_eq "$(blockdev --getss /dev/mapper/r0)" 4096 "logical block size of r0"
    random_file data 1
    write_at data /dev/mapper/r0 $((8 * MiB)) direct
    drop_caches
    assert_data data /dev/mapper/r0 $((8 * MiB)) direct
    assert_data data "$main" $((8 * MiB)) direct
}
