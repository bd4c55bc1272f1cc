# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# The background health scan, the sysfs and /proc surfaces, and dm events (docs/scan.md,
# docs/sysfs.md). Bad sectors come from dm-dust under the main device (`addbadblock B` fails
# reads of B).

SYSFS=/sys/kernel/dm-remap-v4

# INFO status fields (docs/status.md).
F_REMAPS=3 F_PENDING=4 F_SPARE=5 F_READ_ERRORS=6 F_WRITE_ERRORS=7 F_REMAP_FAILURES=8 F_HEALTH=9
F_META_SEQ=10 F_META_REPAIRS=12 F_SCAN_STATE=14 F_SCAN_PROGRESS=15 F_META_MODE=16

field() { # DEV N
    dmr_status_field "$@"
}

# The sysfs folder of dm device NAME (named after its kernel name, dm-<minor>).
sysdir() { # NAME
    echo "$SYSFS/dm-$(dmsetup info -c --noheadings -o minor "$1" | tr -d ' ')"
}

# The dm event counter of NAME.
events() { # NAME
    dmsetup info -c --noheadings -o events "$1" | tr -d ' '
}

# True once FILE holds a number above N (for wait_for, which repeats the same words).
above() { # FILE N
    (($(cat "$1") > $2))
}

# Seconds since the epoch, with fractions.
now() {
    date +%s.%N
}

# Writing VALUE to FILE must fail (sysfs returns EINVAL) and leave it unchanged.
assert_write_refused() { # FILE VALUE
    local before
    before=$(cat "$1")
    if printf '%s' "$2" >"$1" 2>/dev/null; then
        fail "writing '$2' to $1 was accepted"
    fi
    assert_eq "$(cat "$1")" "$before" "$1 after refusing '$2'"
}

test_sysfs_files_match_status() {
    local main d f n
    dmr_load
    assert_eq "$(cat $SYSFS/version)" 4.0.0 "module version"
    assert_eq "$(cat $SYSFS/devices)" 0 "devices before any"
    main=$(dust_main)
    dmsetup message dust 0 addbadblock 4000      # a failed read: pending
    dmsetup message dust 0 addbadblock 2056 255  # a failed write: remapped
    dmsetup create r0 --table "$(dmr_table "$main")"
    assert_fails dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=4000 count=1 iflag=direct status=none
    head -c 4096 /dev/urandom >chunk
    dd if=chunk of=/dev/mapper/r0 bs=4096 seek=257 oflag=direct status=none
    d=$(sysdir r0)
    [[ -d $d ]] || fail "no sysfs folder $d"
    assert_eq "$(cat $SYSFS/devices)" 1 "devices"
    assert_eq "$(cat "$d/name")" r0 "name"
    n=0
    for f in "$d"/* $SYSFS/*; do
        [[ -f $f ]] || continue
        cat "$f" >/dev/null || fail "cannot read $f"
        [[ $(wc -l <"$f") == 1 ]] || fail "$f does not hold one line"
        n=$((n + 1))
    done
    echo "$n files read"
    assert_eq "$(cat "$d/remaps")" "$(field r0 $F_REMAPS)" "remaps"
    assert_eq "$(cat "$d/remaps")" 1 "remaps (injected write error)"
    assert_eq "$(cat "$d/pending")" "$(field r0 $F_PENDING)" "pending"
    assert_eq "$(cat "$d/pending")" 1 "pending (injected read error)"
    assert_eq "$(cat "$d/spare_used")/$(cat "$d/spare_total")" "$(field r0 $F_SPARE)" "spare"
    assert_eq "$(cat "$d/read_errors")" "$(field r0 $F_READ_ERRORS)" "read_errors"
    assert_eq "$(cat "$d/write_errors")" "$(field r0 $F_WRITE_ERRORS)" "write_errors"
    assert_eq "$(cat "$d/remap_failures")" "$(field r0 $F_REMAP_FAILURES)" "remap_failures"
    assert_eq "$(cat "$d/health")" "$(field r0 $F_HEALTH)" "health"
    assert_eq "$(cat "$d/health")" degraded "health with a pending unit"
    assert_eq "$(cat "$d/metadata_seq")" "$(field r0 $F_META_SEQ)" "metadata_seq"
    assert_eq "$(cat "$d/scan_state")" "$(field r0 $F_SCAN_STATE)" "scan_state"
    assert_eq "$(cat "$d/scan_progress")" "$(field r0 $F_SCAN_PROGRESS)" "scan_progress"
    assert_eq "$(cat "$d/metadata_mode")" "$(field r0 $F_META_MODE)" "metadata_mode"
    assert_eq "$(cat "$d/metadata_mode")" write "metadata_mode of a working device"
    assert_eq "$(cat $SYSFS/read_errors)" 1 "module-wide read errors"
    assert_eq "$(cat $SYSFS/remaps_made)" 1 "module-wide remaps made"
    # Settings: valid values are taken, garbage is refused with the value unchanged.
    echo 4096 >"$d/scan_rate_kib"
    assert_eq "$(cat "$d/scan_rate_kib")" 4096 "scan_rate_kib"
    echo 3600 >"$d/scan_interval_s"
    assert_eq "$(cat "$d/scan_interval_s")" 3600 "scan_interval_s"
    # (An empty write never reaches the file: sysfs ignores it.)
    for v in abc -1 0 63 99999999999 " 100" 0x100 "1 2" 4096x; do
        assert_write_refused "$d/scan_rate_kib" "$v"
    done
    for v in abc 0 2592001 -5; do
        assert_write_refused "$d/scan_interval_s" "$v"
    done
    for v in 2 yes -1; do
        assert_write_refused $SYSFS/scan_enabled "$v"
    done
    assert_write_refused $SYSFS/scan_rate_kib 10
    # Read-only files refuse writes, even from root.
    for f in remaps pending health name scan_state metadata_mode; do
        assert_write_refused "$d/$f" 5
    done
    assert_write_refused $SYSFS/devices 5
    dmsetup remove r0
    [[ ! -e $d ]] || fail "$d left after remove"
    assert_eq "$(cat $SYSFS/devices)" 0 "devices after remove"
}

test_scan_finds_injected_bad_sectors() {
    local main d b t0 t1 ev0 expected
    local -a bad=(5 777 4096 65536 100000 262143 300001 524287)
    dmr_load
    main=$(dust_main)
    for b in "${bad[@]}"; do
        dmsetup message dust 0 addbadblock "$b"
    done
    dmsetup create r0 --table "$(dmr_table "$main")"
    d=$(sysdir r0)
    assert_eq "$(cat "$d/scan_state")" idle "scan state before the first pass"
    echo 131072 >"$d/scan_rate_kib" # 128 MiB/s: the 256 MiB device in no less than 2 s
    ev0=$(events r0)
    t0=$(now)
    dmsetup message r0 0 scan now
    wait_for 300 above "$d/scan_passes" 0
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "scan pass: %.1f s for 256 MiB (budget 128 MiB/s implies >= 2.0 s)\n", b - a }'
    awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 1.9) }' || fail "the pass ran faster than its budget"
    assert_eq "$(cat "$d/pending")" ${#bad[@]} "pending = injected bad sectors"
    assert_eq "$(cat "$d/scan_errors")" ${#bad[@]} "scan_errors"
    expected=$(printf '%s pending\n' "${bad[@]}")
    assert_eq "$(dmsetup message r0 0 list)" "$expected" "list"
    assert_eq "$(field r0 $F_HEALTH)" degraded "health"
    assert_eq "$(cat "$d/scan_state")" idle "state after the pass"
    [[ $(events r0) -gt $ev0 ]] || fail "no dm event for the health change"
    dmesg | grep -q "health degraded" || fail "no log line for the health change"
    # The pending units are durable: they come back after remove/create.
    dmsetup remove r0
    dmsetup create r0 --table "$(dmr_table "$main")"
    assert_eq "$(field r0 $F_PENDING)" ${#bad[@]} "pending after re-create"
}

# The scan's read rate over SECONDS, from scan_position, in KiB/s.
scan_rate_over() { # DIR SECONDS
    local p0 p1 t0 t1
    p0=$(cat "$1/scan_position")
    t0=$(now)
    sleep "$2"
    p1=$(cat "$1/scan_position")
    t1=$(now)
    awk -v a="$p0" -v b="$p1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%d\n", (b - a) / 2 / (e - s) }'
}

test_scan_stays_within_budget_under_fio() {
    local d idle busy fio_kib budget=2048
    dmr_load
    dmr_create r0
    d=$(sysdir r0)
    echo $budget >"$d/scan_rate_kib"
    dmsetup message r0 0 scan now
    sleep 1
    idle=$(scan_rate_over "$d" 5)
    fio --name=fg --filename=/dev/mapper/r0 --direct=1 --rw=randread --bs=4k --iodepth=8 \
        --ioengine=libaio --time_based --runtime=8 --output-format=terse --terse-version=3 \
        >fio.out &
    sleep 1
    busy=$(scan_rate_over "$d" 6)
    wait
    fio_kib=$(cut -d';' -f7 fio.out)
    echo "scan budget $budget KiB/s: idle $idle KiB/s, under fio $busy KiB/s; fio read $fio_kib KiB/s"
    awk -v r="$busy" -v f="$fio_kib" 'BEGIN { printf "scan share of I/O under fio: %.1f%%\n", 100 * r / (r + f) }'
    # One 64 KiB chunk of slack for the sampling windows.
    ((idle <= budget + 64)) || fail "idle scan rate $idle KiB/s above the budget $budget"
    ((busy <= budget + 64)) || fail "scan rate under fio $busy KiB/s above the budget $budget"
    ((busy < idle)) || fail "the scan did not back off under foreground I/O ($busy >= $idle KiB/s)"
    ((idle > budget / 2)) || fail "idle scan far below its budget ($idle KiB/s)"
    [[ $(cat "$d/scan_passes") == 0 ]] || fail "a 256 MiB pass cannot end in 15 s at 2 MiB/s"
}

test_scan_messages_start_stop_now() {
    local d p
    dmr_load
    dmr_create r0
    d=$(sysdir r0)
    echo 1024 >"$d/scan_rate_kib"
    dmsetup message r0 0 scan stop
    assert_eq "$(cat "$d/scan_state")" off "state after stop"
    assert_eq "$(field r0 $F_SCAN_STATE)" off "status scan_state after stop"
    # `now` runs one pass even while scanning is off.
    dmsetup message r0 0 scan now
    assert_eq "$(cat "$d/scan_state")" scanning "state after now"
    wait_for 20 above "$d/scan_position" 0
    dmsetup message r0 0 scan stop
    p=$(cat "$d/scan_position")
    sleep 1.5
    assert_eq "$(cat "$d/scan_position")" "$p" "position while stopped"
    assert_eq "$(cat "$d/scan_state")" off "state after the second stop"
    dmsetup message r0 0 scan start
    assert_eq "$(cat "$d/scan_state")" scanning "state after start (continues the pass)"
    wait_for 20 above "$d/scan_position" "$p"
    for m in "scan" "scan go" "scan START" "scan now please"; do
        # shellcheck disable=SC2086 # the message's words
        assert_fails dmsetup message r0 0 $m
    done
    dmsetup message r0 0 help | grep -q '^scan start|stop|now$' || fail "help does not name scan"
    assert_eq "$(dmsetup message r0 0 stats | grep -c health=)" 1 "stats still answers"
}

test_scan_stops_on_suspend_remove_and_rmmod() {
    local d p
    dmr_load
    dmr_create r0
    d=$(sysdir r0)
    echo 1024 >"$d/scan_rate_kib"
    dmsetup message r0 0 scan now
    wait_for 20 above "$d/scan_position" 0
    dmsetup suspend r0
    [[ ! -e $d ]] || fail "sysfs folder still there while suspended"
    grep -q '0 devices' /proc/dm-remap-v4 || fail "/proc still lists the suspended device"
    dmsetup resume r0
    [[ -d $d ]] || fail "no sysfs folder after resume"
    p=$(cat "$d/scan_position")
    assert_eq "$(cat "$d/scan_state")" scanning "state after resume"
    wait_for 20 above "$d/scan_position" "$p"
    # A table swap while scanning: the new table's folder replaces the old one.
    dmsetup reload r0 --table "$(dmr_table)"
    dmsetup resume r0
    [[ -d $d ]] || fail "no sysfs folder after the table swap"
    dmsetup message r0 0 scan now
    # Remove and unload while the scan runs and foreground I/O has just stopped.
    fio --name=fg --filename=/dev/mapper/r0 --direct=1 --rw=randrw --bs=4k --iodepth=8 \
        --ioengine=libaio --time_based --runtime=3 >/dev/null
    assert_eq "$(cat "$d/scan_state")" scanning "state before remove"
    dmsetup remove r0
    dmr_unload
    [[ ! -e $SYSFS ]] || fail "$SYSFS left after rmmod"
    [[ ! -e /proc/dm-remap-v4 ]] || fail "/proc/dm-remap-v4 left after rmmod"
}

test_scan_repairs_damaged_metadata_copy() {
    local d
    dmr_load
    dmr_create r0
    d=$(sysdir r0)
    echo 262144 >"$d/scan_rate_kib"
    # Copy 0's superblock is the spare's first sector.
    head -c 512 /dev/urandom | dd of="$SPARE" bs=512 count=1 oflag=direct status=none
    dmsetup message r0 0 scan now
    wait_for 300 above "$d/scan_passes" 0
    assert_eq "$(field r0 $F_META_REPAIRS)" 1 "metadata copies repaired by the scan"
    assert_eq "$(dd if="$SPARE" bs=512 count=1 iflag=direct status=none | head -c 8)" DMREMAP4 "copy 0 magic"
    dmsetup remove r0
    dmr_create r0
    assert_eq "$(field r0 $F_META_REPAIRS)" 0 "repairs needed at the next create"
}

test_event_when_spare_use_crosses_50_percent() {
    local spare main units ev0 waiter i
    dmr_load
    # The smallest spare: 1024 data units.
    spare=$(linear small "$SCRATCH" 10240)
    main=$(linear main "$MAIN" 524288)
    dmsetup create r0 --table "$(dmr_table "$main" "$spare")"
    units=$(field r0 $F_SPARE | cut -d/ -f2)
    ev0=$(events r0)
    timeout $((60 * ${WAIT_SCALE:-1})) dmsetup wait r0 "$ev0" &
    waiter=$!
    for ((i = 0; i < units / 2; i++)); do
        echo "remap $((i * 8))"
    done | dm_messages r0 >/dev/null
    wait $waiter || fail "dmsetup wait did not return after the spare crossed 50%"
    [[ $(events r0) -gt $ev0 ]] || fail "event counter unchanged"
    dmesg | grep -q "health ok, spare $((units / 2))/$units units used (50% band)" ||
        fail "no log line for the 50% crossing"
    assert_eq "$(cat "$(sysdir r0)/health")" ok "health at 50%"
    for ((i = units / 2; i < units * 9 / 10 + 1; i++)); do
        echo "remap $((i * 8))"
    done | dm_messages r0 >/dev/null
    assert_eq "$(cat "$(sysdir r0)/health")" spare_low "health above 90%"
    dmesg | grep -q "health spare_low" || fail "no log line for spare_low"
}

test_proc_summary_lists_devices() {
    local main2 spare2
    dmr_load
    dmr_create r0
    main2=$(linear m2 "$SCRATCH" 262144)
    spare2=$(linear s2 "$SCRATCH" 131072 262144)
    dmsetup create r1 --table "$(dmr_table "$main2" "$spare2")"
    cat /proc/dm-remap-v4
    head -1 /proc/dm-remap-v4 | grep -q '^dm-remap-v4 4.0.0, 2 devices$' || fail "header"
    grep -q "^r0 ($(basename "$(sysdir r0)")): ok  main $(devno "$MAIN")" /proc/dm-remap-v4 || fail "r0 line"
    grep -q "^r1 ($(basename "$(sysdir r1)")): ok" /proc/dm-remap-v4 || fail "r1 line"
    assert_eq "$(grep -c '^    scan: idle' /proc/dm-remap-v4)" 2 "scan lines"
    assert_eq "$(cat $SYSFS/devices)" 2 "devices"
}
