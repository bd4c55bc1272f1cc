# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# The remap I/O path: write errors remapped, read errors returned and marked pending, bios cut
# around remapped units, 4Kn devices, spare exhaustion, messages. Bad sectors come from dm-dust
# under the main device: `addbadblock B` fails reads of B, `addbadblock B N` also fails the next
# N writes of B (a plain write to a dust bad block succeeds and clears it).

status_field() { # DEV N
    dmr_status_field "$@"
}

# The `list` message output of DEV.
remaps() { # DEV
    dmsetup message "$1" 0 list
}

# Field names of the INFO status line, for readable assertions.
F_REMAPS=3 F_PENDING=4 F_SPARE=5 F_READ_ERRORS=6 F_WRITE_ERRORS=7 F_REMAP_FAILURES=8 F_HEALTH=9

test_remap_write_error_is_remapped() {
    local main bad=2056
    dmr_load
    main=$(dust_main)
    dmsetup message dust 0 addbadblock $bad 255
    dmsetup create r0 --table "$(dmr_table "$main")"
    # A 64 KiB write at sector 2048 covers the bad sector and its neighbours.
    random_file data 1
    head -c 65536 data >chunk
    write_at chunk /dev/mapper/r0 $((2048 * 512)) direct
    local first
    first=$(first_spare_sector r0 "$SPARE")
    assert_eq "$(remaps r0)" "$bad $first" "remaps (only the failing sector, first data-area unit)"
    assert_eq "$(status_field r0 $F_SPARE | cut -d/ -f1)" 1 "spare units used"
    assert_eq "$(status_field r0 $F_WRITE_ERRORS)" 1 "write errors"
    assert_eq "$(status_field r0 $F_HEALTH)" ok "health"
    drop_caches
    assert_data chunk /dev/mapper/r0 $((2048 * 512)) direct
    # The spare holds the failed sector's data; main keeps the neighbours.
    assert_eq "$(sha_at "$SPARE" $((first * 512)) 512 direct)" \
        "$(dd if=chunk bs=512 skip=8 count=1 status=none | sha256sum | cut -d' ' -f1)" "spare unit content"
    assert_eq "$(sha_at "$MAIN" $((2048 * 512)) 4096 direct)" \
        "$(head -c 4096 chunk | sha256sum | cut -d' ' -f1)" "neighbours on main"
}

test_remap_read_error_pending_then_healed_by_write() {
    local main bad=4000
    dmr_load
    main=$(dust_main)
    random_file data 1
    write_at data "$main" $((bad * 512)) direct
    dmsetup message dust 0 addbadblock $bad
    dmsetup create r0 --table "$(dmr_table "$main")"
    assert_fails dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=$bad count=1 iflag=direct status=none
    assert_eq "$(status_field r0 $F_PENDING)" 1 "pending after the failed read"
    assert_eq "$(status_field r0 $F_READ_ERRORS)" 1 "read errors"
    assert_eq "$(status_field r0 $F_HEALTH)" degraded "health with a pending unit"
    assert_eq "$(remaps r0)" "$bad pending" "list"
    # The neighbours of the bad sector in the same bio are not pending: narrowed per unit.
    assert_fails dd if=/dev/mapper/r0 of=/dev/null bs=4096 skip=$((bad / 8)) count=1 iflag=direct status=none
    assert_eq "$(status_field r0 $F_PENDING)" 1 "pending after a 4 KiB read around it"
    head -c 512 data >one
    write_at one /dev/mapper/r0 $((bad * 512)) direct
    assert_eq "$(status_field r0 $F_PENDING)" 0 "pending after the write"
    assert_eq "$(status_field r0 $F_REMAPS)" 1 "remaps after the write"
    assert_eq "$(status_field r0 $F_HEALTH)" ok "health"
    drop_caches
    assert_data one /dev/mapper/r0 $((bad * 512)) direct
}

test_remap_1mib_bio_spanning_three_remaps() {
    local s
    dmr_load
    dmr_create r0
    for s in 8200 8900 10000; do
        dmsetup message r0 0 remap $s >/dev/null
    done
    assert_eq "$(remaps r0 | wc -l)" 3 "remaps"
    random_file data 1
    # 1 MiB at sector 8192 covers all three.
    write_at data /dev/mapper/r0 $((8192 * 512)) direct
    drop_caches
    assert_data data /dev/mapper/r0 $((8192 * 512)) direct
    assert_data data /dev/mapper/r0 $((8192 * 512))
    # Each remapped sector's data is on the spare, at the unit `list` names.
    while read -r s spare; do
        assert_eq "$(sha_at "$SPARE" $((spare * 512)) 512 direct)" \
            "$(dd if=data bs=512 skip=$((s - 8192)) count=1 status=none | sha256sum | cut -d' ' -f1)" \
            "spare copy of sector $s"
    done < <(remaps r0)
}

test_remap_4kn_main() {
    local main spare out
    dmr_load
    main=$(loop_4k 64)
    spare=$(loop_4k 16)
    dust_on dust "$main" "$(sectors "$main")" 4096 >/dev/null
    dmsetup message dust 0 addbadblock 100 255
    dmsetup create r0 --table "0 $(sectors "$main") $TARGET /dev/mapper/dust $spare"
    assert_eq "$(status_field r0 1)" 1 "status format"
    assert_eq "$(status_field r0 2)" 8 "unit in sectors"
    assert_eq "$(blockdev --getss /dev/mapper/r0)" 4096 "logical block size"
    random_file data 1
    write_at data /dev/mapper/r0 $((96 * 4096)) direct
    local first
    first=$(first_spare_sector r0 "$spare")
    assert_eq "$(remaps r0)" "800 $first" "remap of block 100 (sector 800) to the first spare unit"
    out=$(dmsetup message r0 0 remap 803)
    assert_eq "$out" "800 $first" "remap of a sector inside an already remapped unit"
    drop_caches
    assert_data data /dev/mapper/r0 $((96 * 4096)) direct
}

test_remap_spare_exhaustion() {
    local spare main i units
    dmr_load
    # The smallest spare: 10240 sectors, 1024 of them data area.
    spare=$(linear small "$SCRATCH" 10240)
    main=$(dust_main)
    dmsetup create r0 --table "$(dmr_table "$main" "$spare")"
    units=$(status_field r0 $F_SPARE | cut -d/ -f2)
    for ((i = 0; i < units; i++)); do
        echo "remap $((i * 8))"
    done | dm_messages r0 >/dev/null
    assert_eq "$(status_field r0 $F_SPARE)" "$units/$units" "spare used/total"
    assert_eq "$(status_field r0 $F_HEALTH)" spare_full "health"
    assert_fails dmsetup message r0 0 remap 100001
    dmsetup message dust 0 addbadblock 200001 255
    head -c 4096 /dev/urandom >chunk
    assert_fails dd if=chunk of=/dev/mapper/r0 bs=4096 seek=$((200000 / 8)) oflag=direct status=none
    [[ $(status_field r0 $F_REMAP_FAILURES) -ge 2 ]] || fail "remap failures not counted"
    # Remapped data stays readable.
    dd if=/dev/mapper/r0 of=/dev/null bs=1M count=4 iflag=direct status=none
}

test_remap_unremap_copies_back() {
    local out
    dmr_load
    dmr_create r0
    random_file data 1
    write_at data /dev/mapper/r0 $((50 * MiB)) direct
    out=$(dmsetup message r0 0 remap $((50 * 2048 + 5)))
    assert_match "$out" "^$((50 * 2048 + 5)) [0-9]+$" "remap output"
    assert_eq "$(status_field r0 $F_REMAPS)" 1 "remaps"
    # New data after the remap lives only on the spare until unremap copies it back.
    random_file data2 1
    write_at data2 /dev/mapper/r0 $((50 * MiB)) direct
    assert_eq "$(dmsetup message r0 0 unremap $((50 * 2048 + 5)))" "$((50 * 2048 + 5))" "unremap output"
    assert_eq "$(status_field r0 $F_REMAPS)" 0 "remaps after unremap"
    assert_eq "$(status_field r0 $F_SPARE | cut -d/ -f1)" 0 "spare units in use after unremap"
    drop_caches
    assert_data data2 /dev/mapper/r0 $((50 * MiB)) direct
    assert_data data2 "$MAIN" $((50 * MiB)) direct
}

# Each malformed message is refused with EINVAL and changes nothing: not the status, not the
# remap list, not a byte of main (its write counters and a guarded MiB), and logs no trouble.
test_remap_malformed_messages_change_nothing() {
    local before after m n=0 long
    dmr_load
    guard_data "$MAIN"
    dmr_create r0
    dmsetup message r0 0 remap 64 >/dev/null
    dmsetup message r0 0 commit
    before="$(dmsetup status r0) / $(remaps r0)"
    long=$(printf '9%.0s' {1..4000})
    local -a bad=(
        "bogus" "REMAP 1" "remap" "remap x" "remap 1 2" "remap 0x10"
        "remap 99999999999999999999999" "remap $(sectors "$MAIN")" "unremap" "unremap 65536"
        "unremap $(sectors "$MAIN")" "clear_pending" "clear_pending a" "list x" "list 1 y"
        "list 1 2 3" "stats now" "clear_stats 1" "help me" "remap 1e3" "remap +5" "unremap 64 64"
        "clear_pending 1 2" "remap 18446744073709551616" "stats stats" "remap  " "list ''"
        "remap $long" "$(printf 'v%.0s' {1..4000})" "remap 18446744073709551615"
        "clear_pending $(sectors "$MAIN")" "list 0x0" "list 18446744073709551616" "list 1 2x"
        "remap ١" "remap $(printf '\x7f')" "remap 1," "remap 1 $(echo {1..300})" "commit 1"
        "clear_stats x" "HELP" "unremap 99999999999999999999999" "unremap 1"
    )
    # (Arguments starting with '-' are taken by dmsetup's option parser, never reaching us.)
    for m in "${bad[@]}"; do
        n=$((n + 1))
        echo "-- message $n: $(head -c 80 <<<"$m")"
        # shellcheck disable=SC2086 # split into words like a user would type them
        if dmsetup message r0 0 $m >out 2>err; then
            fail "message '$m' was accepted"
        fi
        grep -q "Invalid argument" err || fail "message '$m': not EINVAL: $(cat err)"
        after="$(dmsetup status r0) / $(remaps r0)"
        assert_eq "$after" "$before" "status and remaps after message $n"
        ! kernel_trouble || fail "kernel trouble after message $n"
    done
    echo "$n malformed messages refused"
    assert_guarded
}

test_remap_help_and_stats() {
    dmr_load
    dmr_create r0
    assert_match "$(dmsetup message r0 0 help)" "^remap <sector>" "help"
    assert_match "$(dmsetup message r0 0 stats)" \
        "^remaps=0 pending=0 spare_used=0 spare_total=[0-9]+ read_errors=0 write_errors=0 spare_errors=0 remap_failures=0 health=ok$" \
        "stats"
}

test_remap_10000_listed_back() {
    local n=10000 i
    dmr_load
    dmr_create r0
    for ((i = 0; i < n; i++)); do
        echo "remap $((i * 7 + 3))"
    done | dm_messages r0 >/dev/null
    remaps r0 >listed
    assert_eq "$(wc -l <listed)" $n "remaps listed"
    assert_eq "$(cut -d' ' -f1 listed | tr '\n' ' ')" "$(for ((i = 0; i < n; i++)); do printf '%d ' $((i * 7 + 3)); done)" \
        "listed sectors, in order"
    assert_eq "$(cut -d' ' -f2 listed | sort -n | uniq | wc -l)" $n "distinct spare units"
    assert_eq "$(dmsetup message r0 0 list 703 2)" "$(sed -n '101,102p' listed)" "list with start and count"
    assert_eq "$(status_field r0 $F_REMAPS)" $n "remaps in status"
}

test_remap_fio_verify_under_faults() {
    local main i
    dmr_load
    main=$(dust_main)
    dmsetup create r0 --table "$(dmr_table "$main")"
    # Sectors that fail their next 3 writes, in the last quarter of the range fio writes in
    # order: they go bad before fio reaches them, as on a disk failing under load.
    for ((i = 0; i < 20; i++)); do
        dmsetup message dust 0 addbadblock $((98304 + i * 1601)) 3
    done
    fio --name=verify --filename=/dev/mapper/r0 --ioengine=libaio --direct=1 --thread \
        --rw=write --bs=4k --iodepth=16 --size=64M --verify=crc32c --verify_fatal=1 \
        --output=fio.out &
    local fio_pid=$!
    # Manual remaps of random sectors while fio writes: the copy must not lose a write.
    for ((i = 0; i < 40; i++)); do
        dmsetup message r0 0 remap $((RANDOM * 4 % 131072)) >/dev/null
    done
    wait $fio_pid || { cat fio.out; fail "fio verify failed"; }
    grep -q "err= 0" fio.out || { cat fio.out; fail "fio reported errors"; }
    ! grep -qiE "verify.*(bad|fail)" fio.out || { cat fio.out; fail "verify errors"; }
    echo "remaps: $(status_field r0 $F_REMAPS), write errors: $(status_field r0 $F_WRITE_ERRORS)"
    [[ $(status_field r0 $F_REMAPS) -ge 60 ]] || fail "expected 20 error remaps and 40 message remaps"
    assert_eq "$(status_field r0 $F_PENDING)" 0 "pending"
}

# The drain before a `remap` copy is bounded in real time: a write held below the target (its
# main is a suspended linear device, which queues it) makes the message give up with EBUSY
# after 30 s of wall time, not after 30000 sleeps of at least a jiffy each (240 s at HZ=250).
test_remap_drain_gives_up_after_30s() {
    local t0 elapsed rc=0
    dmr_load
    r0_with_held_write
    t0=$(_now_ds)
    dmsetup message r0 0 remap 8 2>err || rc=$?
    elapsed=$(($(_now_ds) - t0))
    dmsetup resume mainraw
    wait "$HELD_WRITER"
    echo "remap gave up after $((elapsed / 10)).$((elapsed % 10)) s: $(cat err)"
    ((rc != 0)) || fail "remap succeeded while a write was held in flight"
    assert_match "$(cat err)" "busy" "the refusal"
    ((elapsed >= 290 && elapsed <= 600)) || fail "the drain gave up after $elapsed ds, expected 30-60 s"
    assert_eq "$(status_field r0 $F_REMAPS)" 0 "remaps after the refusal"
}
