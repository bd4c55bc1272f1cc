# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Hostile metadata: garbage written into the metadata copies on the spare, one deterministic
# seed at a time (tests/vm/metadata-garbage.py says what each seed does). Every damaged spare
# must load the state it had, repairing the damaged copies, or be refused cleanly (EINVAL,
# nothing written) when no intact copy is left; never an oops, and the main device's data is
# never touched. GARBAGE_SEEDS sets the number of seeds (default 300), GARBAGE_FIRST_SEED the
# first one (default 1), to replay a failure: `tests/vm/run ... --filter garbage
# --env GARBAGE_FIRST_SEED=N --env GARBAGE_SEEDS=1`.

test_hostile_metadata_garbage() {
    local main spare table
    dmr_load
    # The small spare (C = 1024: copies of 26 blocks) keeps each seed's restore and load short.
    main=$(dust_main)
    spare=$(linear small "$SCRATCH" 20480)
    table="0 $(sectors "$main") $TARGET $main $spare"
    dmsetup create r0 --table "$table"
    # State: remaps by message, one by a failed write, a pending unit; 64 KiB of data over them.
    random_file data 1
    head -c 65536 data >chunk
    write_at chunk /dev/mapper/r0 $((4096 * 512)) direct
    printf 'remap %s\n' 4100 4101 4150 | dm_messages r0 >/dev/null
    dmsetup message dust 0 addbadblock 4120 255
    write_at chunk /dev/mapper/r0 $((4096 * 512)) direct
    dmsetup message dust 0 addbadblock 9000
    assert_fails dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=9000 count=1 iflag=direct status=none
    dmsetup message r0 0 list >expected.list
    assert_eq "$(cut -d' ' -f1 expected.list | tr '\n' ' ')" "4100 4101 4120 4150 9000 " "listed sectors"
    dmsetup remove r0
    # From now on nothing may write to main: a guarded MiB at its start, its write counters.
    guard_data "$MAIN"
    sha_file chunk >data.sha
    echo "$((4096 * 512)) 65536" >data.where
    KERNEL_TROUBLE=$KERNEL_TROUBLE python3 -u "$DMR_REPO/tests/vm/metadata-garbage.py" r0 "$table" \
        "$spare" "$MAIN" "${GARBAGE_FIRST_SEED:-1}" "${GARBAGE_SEEDS:-300}" ||
        fail "a damaged spare was not loaded or refused cleanly (see above)"
    # The restored spare still loads the state.
    dmsetup create r0 --table "$table"
    assert_eq "$(dmsetup message r0 0 list)" "$(cat expected.list)" "list after the last seed"
    dmsetup remove r0
    assert_guarded
}
