# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Persistent metadata on the spare: remaps survive remove/create and module reload, a fresh
# spare is formatted, foreign data and a wrong main device are refused, damaged copies are
# repaired, and all copies damaged is refused with nothing written.

# INFO status fields after the target name (see docs/status.md).
P_SEQ=10 P_COPIES=11 P_REPAIRS=12

pstatus() { # DEV N
    dmr_status_field "$@"
}

# Sets up "dust" over MAIN with sectors that fail their writes, and r0 over it; writes through
# r0 so that those sectors are remapped, reads one more bad sector so that it is pending, and
# remaps one more by message. Leaves the data written in ./data and ./small, the list in ./list.
remapped_device() {
    local main s
    main=$(dust_main)
    for s in 1000 1001 5000 77777; do
        dmsetup message dust 0 addbadblock $s 255
    done
    dmsetup message dust 0 addbadblock 90000
    dmsetup create r0 --table "$(dmr_table "$main")"
    random_file data 4
    write_at data /dev/mapper/r0 $((512 * 1000)) direct
    head -c 4096 data >small
    write_at small /dev/mapper/r0 $((512 * 77776)) direct
    ! dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=90000 count=1 iflag=direct status=none 2>/dev/null ||
        fail "the read of bad sector 90000 succeeded"
    dmsetup message r0 0 remap 200000 >/dev/null
    dmsetup message r0 0 list >list
    # 1000, 1001, 5000, 77777 (failed writes), 90000 (pending), 200000 (message).
    assert_eq "$(cut -d' ' -f1 list | tr '\n' ' ')" "1000 1001 5000 77777 90000 200000 " "listed sectors"
}

# Asserts that r0 has the remaps in ./list and the data in ./data and ./small.
assert_state() {
    assert_eq "$(dmsetup message r0 0 list)" "$(cat list)" "remaps and pending units"
    drop_caches
    assert_data data /dev/mapper/r0 $((512 * 1000)) direct
    assert_data small /dev/mapper/r0 $((512 * 77776)) direct
}

recreate() {
    dmsetup remove r0
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust)"
}

# Copy start sectors of the metadata on SPARE, from the data-area start (9C for 512-byte units).
copy_starts() { # DEV
    local first c
    first=$(first_spare_sector "$1" "$SPARE")
    c=$((first / 9))
    echo 0 $c $((2 * c)) $((4 * c)) $((8 * c))
}

# Damages the 4 KiB superblock at SECTOR of SPARE in one of several ways.
damage() { # SECTOR HOW
    case $2 in
    random) head -c 4096 /dev/urandom | dd of="$SPARE" bs=4096 seek=$(($1 / 8)) oflag=direct status=none ;;
    zero) dd if=/dev/zero of="$SPARE" bs=4096 seek=$(($1 / 8)) count=1 oflag=direct status=none ;;
    crc) # flip one bit inside the superblock's fields: its CRC no longer matches
        python3 - "$SPARE" $(($1 * 512 + 100)) <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = int(sys.argv[2])
byte = os.pread(fd, 1, off)[0]
os.pwrite(fd, bytes([byte ^ 1]), off)
os.fsync(fd)
PY
        ;;
    esac
}

test_persist_fresh_spare_is_formatted() {
    dmr_load
    dmr_create r0
    assert_eq "$(pstatus r0 $P_SEQ)" 1 "metadata sequence after format"
    assert_eq "$(pstatus r0 $P_COPIES)" 5/5 "metadata copies"
    assert_eq "$(dd if="$SPARE" bs=8 count=1 status=none)" DMREMAP4 "magic at sector 0 of the spare"
}

test_persist_remaps_survive_remove_and_create() {
    dmr_load
    remapped_device
    local seq
    seq=$(pstatus r0 $P_SEQ)
    recreate
    assert_state
    [[ $(pstatus r0 $P_SEQ) -ge $seq ]] || fail "sequence went back"
    assert_eq "$(pstatus r0 $P_COPIES)" 5/5 "copies"
    assert_eq "$(pstatus r0 $P_REPAIRS)" 0 "repairs"
}

test_persist_remaps_survive_module_reload() {
    dmr_load
    remapped_device
    dmsetup remove r0
    dmr_unload
    dmr_load
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust)"
    assert_state
}

test_persist_flush_commits() {
    local seq
    dmr_load
    remapped_device
    seq=$(pstatus r0 $P_SEQ)
    dmsetup message r0 0 remap 300000 >/dev/null
    # A flush (fsync of the device) makes the remap durable: the sequence moves on.
    sync
    python3 -c 'import os; f=os.open("/dev/mapper/r0", os.O_RDWR); os.fsync(f)'
    [[ $(pstatus r0 $P_SEQ) -gt $seq ]] || fail "no commit after a flush"
    # And the commit message works on demand.
    dmsetup message r0 0 remap 300008 >/dev/null
    dmsetup message r0 0 commit
    assert_eq "$(pstatus r0 $P_COPIES)" 5/5 "copies after commit"
}

test_persist_foreign_spare_refused_without_format() {
    dmr_load
    head -c 1M /dev/urandom | dd of="$SPARE" bs=1M oflag=direct status=none
    local before
    before=$(sha_at "$SPARE" 0 $((16 * MiB)) direct)
    assert_fails dmr_create r0
    dmesg | grep -q "Spare holds foreign data" || fail "no 'foreign data' message"
    assert_eq "$(sha_at "$SPARE" 0 $((16 * MiB)) direct)" "$before" "spare untouched after refusal"
    dmsetup create r0 --table "$(dmr_table) 1 format"
    assert_eq "$(pstatus r0 $P_COPIES)" 5/5 "copies after format"
    assert_match "$(dmsetup table r0)" " 1 format$" "table keeps the format feature"
}

test_persist_wrong_main_refused() {
    local other before
    dmr_load
    dmr_create r0
    dmsetup remove r0
    other=$(linear other "$SCRATCH" 400000)
    before=$(sha_at "$SPARE" 0 $((16 * MiB)) direct)
    assert_fails dmsetup create r1 --table "0 400000 $TARGET $other $SPARE"
    dmesg | grep -q "Spare belongs to another main device" || fail "no 'another main device' message"
    assert_eq "$(sha_at "$SPARE" 0 $((16 * MiB)) direct)" "$before" "spare untouched after refusal"
}

test_persist_each_copy_damaged_is_repaired() {
    local starts copy how sector
    dmr_load
    remapped_device
    read -r -a starts <<<"$(copy_starts r0)"
    for how in random zero crc; do
        for copy in 0 1 2 3 4; do
            dmsetup remove r0
            sector=${starts[$copy]}
            damage "$sector" $how
            dmsetup create r0 --table "$(dmr_table /dev/mapper/dust)"
            assert_eq "$(pstatus r0 $P_REPAIRS)" 1 "repairs after damage '$how' of copy $copy"
            assert_eq "$(pstatus r0 $P_COPIES)" 5/5 "copies after repair ($how, copy $copy)"
            assert_eq "$(dmsetup message r0 0 list)" "$(cat list)" "list after damage '$how' of copy $copy"
        done
    done
    assert_state
}

test_persist_stale_copy_is_repaired() {
    local starts c4
    dmr_load
    remapped_device
    read -r -a starts <<<"$(copy_starts r0)"
    # Save copy 4 as it is now, make a newer commit, put the old copy 4 back.
    dmsetup remove r0
    c4=$(( ${starts[4]} ))
    dd if="$SPARE" of=old4 bs=512 skip="$c4" count=$(( ${starts[1]} )) iflag=direct status=none
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust)"
    dmsetup message r0 0 remap 400000 >/dev/null
    dmsetup message r0 0 commit
    dmsetup message r0 0 list >list
    dmsetup remove r0
    dd if=old4 of="$SPARE" bs=512 seek="$c4" oflag=direct conv=notrunc status=none
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust)"
    assert_eq "$(pstatus r0 $P_REPAIRS)" 1 "repairs of the stale copy"
    assert_eq "$(dmsetup message r0 0 list)" "$(cat list)" "the newer state was loaded"
}

test_persist_four_copies_damaged_load_from_survivor() {
    local starts
    dmr_load
    remapped_device
    read -r -a starts <<<"$(copy_starts r0)"
    dmsetup remove r0
    damage "${starts[0]}" random
    damage "${starts[1]}" zero
    damage "${starts[2]}" crc
    damage "${starts[4]}" random
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust)"
    assert_eq "$(pstatus r0 $P_REPAIRS)" 4 "repairs"
    assert_eq "$(pstatus r0 $P_COPIES)" 5/5 "copies"
    assert_state
}

test_persist_all_copies_damaged_refused() {
    local starts s before
    dmr_load
    remapped_device
    read -r -a starts <<<"$(copy_starts r0)"
    dmsetup remove r0
    for s in "${starts[@]}"; do damage "$s" random; done
    before=$(sha_at "$SPARE" 0 $(( (${starts[4]} + ${starts[1]}) * 512 )) direct)
    assert_fails dmsetup create r0 --table "$(dmr_table /dev/mapper/dust)"
    dmesg | grep -qE "All metadata copies are invalid|foreign data" || fail "no refusal message"
    assert_fails dmsetup create r0 --table "$(dmr_table /dev/mapper/dust) 1 format"
    assert_eq "$(sha_at "$SPARE" 0 $(( (${starts[4]} + ${starts[1]}) * 512 )) direct)" "$before" \
        "metadata area untouched after the refusals"
}

test_persist_100000_remaps_reload() {
    local n=100000 i t0 t1
    dmr_load
    dmr_create r0
    for ((i = 0; i < n; i++)); do echo "remap $((i * 2 + 1))"; done | dm_messages r0 >/dev/null
    t0=$(date +%s%N)
    dmsetup message r0 0 commit
    t1=$(date +%s%N)
    echo "commit of $n new remaps: $(( (t1 - t0) / 1000000 )) ms"
    dmsetup message r0 0 list >list
    dmsetup remove r0
    t0=$(date +%s%N)
    dmr_create r0
    t1=$(date +%s%N)
    echo "load of $n remaps (dmsetup create): $(( (t1 - t0) / 1000000 )) ms"
    assert_eq "$(pstatus r0 3)" $n "remaps after reload"
    dmsetup message r0 0 list >list2
    cmp -s list list2 || fail "list differs after reload"
    t0=$(date +%s%N)
    dmsetup message r0 0 remap 7 >/dev/null
    dmsetup message r0 0 commit
    t1=$(date +%s%N)
    echo "remap + commit of one more unit with $n in the table: $(( (t1 - t0) / 1000000 )) ms"
}
