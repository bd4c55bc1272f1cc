# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2153,SC2154 # the globals come from lib.sh
#
# Durability at FUA points and across frees (issue 15): a crash is simulated by copying the raw
# main and spare devices, without any flush, to the scratch disk at the moment that matters, and
# assembling a second dm-remap-v4 device over the copies. The copy holds every write the disks
# have seen, durable or not, so what it lacks was never written: a remap that the copy does not
# have was not committed when the write that caused it was acknowledged.
#
#   r0 (dm-remap) ── dust (dm-dust) ── dmain (linear, 64 MiB of MAIN)
#      └──────────── dspare (linear, 16 MiB of SPARE, or fewer)
#   r1 (dm-remap) ── cmain (linear, SCRATCH 0..64 MiB)   copies made by dur_crash
#      └──────────── cspare (linear, SCRATCH from 64 MiB, as large as dspare)

DUR_MAIN_SECTORS=$((64 * 2048))
DUR_SPARE_SECTORS=$((16 * 2048))

# Builds the stack above (r0 and what it stands on), with a spare of SPARE_SECTORS (default
# 16 MiB); bad sectors are added to dust afterwards.
dur_stack() { # [SPARE_SECTORS]
    DUR_SPARE_SECTORS=${1:-$DUR_SPARE_SECTORS}
    linear dmain "$MAIN" $DUR_MAIN_SECTORS >/dev/null
    linear dspare "$SPARE" $DUR_SPARE_SECTORS >/dev/null
    dust_on dust /dev/mapper/dmain "$DUR_MAIN_SECTORS" >/dev/null
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust /dev/mapper/dspare)"
}

# "Crashes" r0: copies what main and spare hold now (O_DIRECT reads of the devices under dust
# and r0, no flush anywhere) to the scratch disk, and assembles r1 over the copies.
dur_crash() {
    linear cmain "$SCRATCH" $DUR_MAIN_SECTORS >/dev/null
    linear cspare "$SCRATCH" $DUR_SPARE_SECTORS $DUR_MAIN_SECTORS >/dev/null
    dd if=/dev/mapper/dmain of=/dev/mapper/cmain bs=1M iflag=direct oflag=direct status=none
    dd if=/dev/mapper/dspare of=/dev/mapper/cspare bs=1M iflag=direct oflag=direct status=none
    dmsetup create r1 --table "$(dmr_table /dev/mapper/cmain /dev/mapper/cspare)"
}

# The sha256 of the 512-byte sector SECTOR of DEV (O_DIRECT).
dur_sector_sha() { # DEV SECTOR
    sha_at "$1" $(($2 * 512)) 512 direct
}

# The sha256 of sector N of FILE.
dur_file_sector_sha() { # FILE N
    dd if="$1" bs=512 skip="$2" count=1 status=none | sha256sum | cut -d' ' -f1
}

# Writes BYTES (512 or 4096) at byte OFFSET of r0 with an asynchronous O_DIRECT|O_SYNC write
# (libaio): the block layer sets REQ_FUA and, unlike a synchronous write, sends no flush after
# it. The data is fio's pattern 0xd1a5f00d, also left in ./fua-data.
dur_fua_write() { # OFFSET BYTES
    fio --name=fua --filename=/dev/mapper/r0 --rw=write --bs="$2" --size="$2" --offset="$1" \
        --ioengine=libaio --iodepth=1 --direct=1 --sync=1 --buffer_pattern=0xd1a5f00d \
        --scramble_buffers=0 --output=fio.out
    for _ in $(seq $(($2 / 4))); do printf '\xd1\xa5\xf0\x0d'; done >fua-data
}

# Checks r0 and the copy r1 after a FUA write at byte OFFSET over bad SECTOR: the live device
# reads the data, the copy has r0's remap and reads the data too.
dur_check_fua() { # SECTOR OFFSET
    local live
    live=$(dmsetup message r0 0 list)
    assert_match "$live" "^$1 [0-9]+$" "r0's remaps after the FUA write"
    assert_data fua-data /dev/mapper/r0 "$2" direct
    assert_eq "$(dmsetup message r1 0 list)" "$live" "remaps of the copy taken when the FUA write completed"
    assert_data fua-data /dev/mapper/r1 "$2" direct
}

# A FUA write that fails on main and is relocated by the worker is acknowledged only once its
# remap is committed.
test_durability_fua_write_relocated_is_committed() {
    local bad=$((8 * 1000 + 3))
    dmr_load
    dur_stack
    dmsetup message dust 0 addbadblock $bad 255
    # The 4 KiB block around it: one bio to main, failed by dust, retried unit by unit.
    dur_fua_write $((bad / 8 * 4096)) 4096
    dur_crash
    dur_check_fua $bad $((bad / 8 * 4096))
}

# A FUA write to a pending unit (deferred to the worker by map, which relocates it without
# trying main) is acknowledged only once its remap is committed.
test_durability_fua_write_to_pending_unit_is_committed() {
    local bad=$((8 * 3000 + 6))
    dmr_load
    dur_stack
    dmsetup message dust 0 addbadblock $bad
    assert_fails dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=$bad count=1 iflag=direct status=none
    assert_eq "$(dmsetup message r0 0 list)" "$bad pending" "list after the failed read"
    # The pending unit alone: a bio over its neighbours too would be cut, and the FUA piece
    # sent to main would commit (the pending mark is uncommitted) after the worker's remap.
    dur_fua_write $((bad * 512)) 512
    dur_crash
    dur_check_fua $bad $((bad * 512))
}

# A spare unit freed by unremap is not handed to another relocation before the free is
# committed: after a crash the committed state still maps the unremapped unit to it, and the
# unit must read its own data, not the other unit's.
test_durability_unremap_free_not_reused_before_commit() {
    local u1=16000 u2=$((8 * 3000 + 5)) spare out
    dmr_load
    dur_stack
    out=$(dmsetup message r0 0 remap $u1)
    assert_match "$out" "^$u1 [0-9]+$" "remap output"
    spare=${out#* }
    # X goes to u1's spare unit; the fsync commits: u1 -> spare is durable, holding X.
    random_file x 1
    head -c 4096 x >x4k
    write_at x4k /dev/mapper/r0 $((u1 / 8 * 4096)) direct
    # Unremap (copies X back to main, frees the spare unit in memory), no flush after it.
    assert_eq "$(dmsetup message r0 0 unremap $u1)" "$u1" "unremap output"
    # A write of Y over bad u2, O_DIRECT without fsync: the worker relocates u2.
    dmsetup message dust 0 addbadblock $u2 255
    random_file y 1
    head -c 4096 y >y4k
    dd if=y4k of=/dev/mapper/r0 bs=4096 seek=$((u2 / 8)) oflag=direct conv=notrunc status=none
    out=$(dmsetup message r0 0 list)
    assert_match "$out" "^$u2 [0-9]+$" "r0's remaps after the write over u2"
    dur_crash
    assert_eq "$(dur_sector_sha /dev/mapper/r1 $u1)" "$(dur_file_sector_sha x4k $((u1 % 8)))" \
        "sector $u1 after the crash (its data X; Y if u2 was given u1's spare unit)"
    assert_eq "$(dur_sector_sha /dev/mapper/r0 $u2)" "$(dur_file_sector_sha y4k $((u2 % 8)))" "sector $u2 of r0"
    [[ ${out#* } != "$spare" ]] || fail "u2 was given sector $spare, freed by the uncommitted unremap"
    # Once the free is committed the unit is handed out again.
    dmsetup message r0 0 commit
    assert_eq "$(dmsetup message r0 0 remap 40000)" "40000 $spare" "remap after the commit"
}

# A relocation that finds the spare full but for a unit whose free is not committed commits
# first, then takes that unit: the remap succeeds, and a crash right after it finds the free
# committed, so the unremapped unit reads its own data.
test_durability_spare_full_but_a_held_unit_commits_first() {
    local u1=16000 u2=$((8 * 3000 + 5)) units i out spare seq
    dmr_load
    # The smallest spare: 1024 units of data area.
    dur_stack 10240
    random_file x 1
    head -c 4096 x >x4k
    write_at x4k /dev/mapper/r0 $((u1 / 8 * 4096)) direct
    out=$(dmsetup message r0 0 remap $u1)
    spare=${out#* }
    units=$(dmr_status_field r0 5 | cut -d/ -f2)
    for ((i = 1; i < units; i++)); do
        echo "remap $((100000 + i * 8))"
    done | dm_messages r0 >/dev/null
    assert_eq "$(dmr_status_field r0 5)" "$units/$units" "spare used/total"
    dmsetup message r0 0 commit
    seq=$(dmr_status_field r0 10)
    assert_eq "$(dmsetup message r0 0 unremap $u1)" "$u1" "unremap output"
    dmsetup message dust 0 addbadblock $u2 255
    random_file y 1
    head -c 4096 y >y4k
    dd if=y4k of=/dev/mapper/r0 bs=4096 seek=$((u2 / 8)) oflag=direct conv=notrunc status=none
    dur_crash
    assert_eq "$(dur_sector_sha /dev/mapper/r1 $u1)" "$(dur_file_sector_sha x4k $((u1 % 8)))" \
        "sector $u1 after the crash (its data X; Y if u2 was given u1's spare unit uncommitted)"
    assert_eq "$(dmsetup message r0 0 list $u2 1)" "$u2 $spare" "u2's remap (the only unit left)"
    [[ $(dmr_status_field r0 10) -gt $seq ]] || fail "no commit before the freed unit was reused"
    assert_eq "$(dur_sector_sha /dev/mapper/r0 $u2)" "$(dur_file_sector_sha y4k $((u2 % 8)))" "sector $u2 of r0"
}


# A move's copy waits for the worker's writes, not only for the bios `map` sent. A 1 KiB write
# over bad sector B and its neighbour B+1 (which fails one write only) fails on main; the
# worker relocates B, then rewrites B+1 on main, where dm-delay holds writes for 3 s (reads
# pass at once). A `remap B+1` sent then must copy B+1's new data (before: it copied the old
# data at once, and the worker's write landed on main behind the remap: acknowledged, lost).
test_durability_remap_waits_for_the_workers_writes() {
    local bad=$((8 * 1000)) writer out t
    dmr_load
    random_file old 1
    head -c 1024 old >old1k
    write_at old1k "$MAIN" $((bad * 512)) direct
    dmsetup create dly --table "0 $DUR_MAIN_SECTORS delay $MAIN 0 0 $MAIN 0 3000"
    linear dspare "$SPARE" $DUR_SPARE_SECTORS >/dev/null
    dust_on dust /dev/mapper/dly "$DUR_MAIN_SECTORS" >/dev/null
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust /dev/mapper/dspare)"
    dmsetup message dust 0 addbadblock $bad 255
    dmsetup message dust 0 addbadblock $((bad + 1)) 1
    random_file new 1
    head -c 1024 new >new1k
    dd if=new1k of=/dev/mapper/r0 bs=1024 seek=$((bad / 2)) oflag=direct conv=notrunc status=none &
    writer=$!
    # B's remap appears once the worker relocated it; its rewrite of B+1 is held on main then.
    for ((t = 0; t < 300; t++)); do
        [[ $(dmsetup message r0 0 list) == "$bad "* ]] && break
        sleep 0.1
    done
    assert_match "$(dmsetup message r0 0 list)" "^$bad [0-9]+$" "B's remap by the worker"
    sleep 0.5
    out=$(dmsetup message r0 0 remap $((bad + 1)))
    wait "$writer"
    assert_match "$out" "^$((bad + 1)) [0-9]+$" "remap output"
    assert_data new1k /dev/mapper/r0 $((bad * 512)) direct
}

# A move's wait for I/O in flight does not hold the table writer lock: a commit (what every
# flush after a remap needs) goes on while a `remap` waits for a write held below the target
# (before: the commit waited for the wait's end, up to 30 s).
test_durability_commit_not_held_by_a_remap_drain() {
    local mover t0 elapsed rc=0
    dmr_load
    r0_with_held_write
    dmsetup message r0 0 remap 8 >remap.out 2>&1 &
    mover=$!
    sleep 2
    t0=$(_now_ds)
    dmsetup message r0 0 commit
    elapsed=$(($(_now_ds) - t0))
    dmsetup resume mainraw
    wait "$HELD_WRITER"
    wait "$mover" || rc=$?
    echo "the commit took $((elapsed / 10)).$((elapsed % 10)) s while the remap waited"
    ((elapsed < 100)) || fail "the commit waited $elapsed ds for the remap's drain"
    ((rc == 0)) || fail "the remap failed once the write completed: $(cat remap.out)"
    assert_match "$(cat remap.out)" "^8 [0-9]+$" "remap output"
}

# A write to a remapped unit whose spare unit fails, retried by the worker while an `unremap`
# gives the unit back to main, is written to main: the failed spare unit is no longer the
# unit's (it is free, and may be handed out again), so it is neither marked bad nor replaced.
# Spare unit S is its own one-sector device whose writes dm-delay holds 3 s and dm-flakey then
# fails, so the write fails twice (map, then the worker's retry) 3 s apart; the unremap comes
# during the retry. (Before: the retry was not waited for; the worker then gave the unit a new
# spare unit and marked S bad though the unremap had freed it.)
test_durability_retry_after_unremap_goes_to_main() {
    local u=20000 s total writer out
    dmr_load
    linear sp "$SPARE" $DUR_SPARE_SECTORS >/dev/null
    dmsetup create r0 --table "$(dmr_table "$MAIN" /dev/mapper/sp)"
    s=$(first_spare_sector r0 /dev/mapper/sp)
    out=$(dmsetup message r0 0 remap $u)
    assert_eq "$out" "$u $s" "remap output (the first data-area unit)"
    random_file x 1
    head -c 512 x >x512
    write_at x512 /dev/mapper/r0 $((u * 512)) direct
    # S alone behind dm-delay (writes 3 s) over dm-flakey (every write fails, reads pass).
    linear flk "$SPARE" 1 "$s" >/dev/null
    dmsetup create dlys --table "0 1 delay /dev/mapper/flk 0 0 /dev/mapper/flk 0 3000"
    dmsetup suspend flk
    dmsetup load flk --table "0 1 flakey $SPARE $s 0 1 1 error_writes"
    dmsetup resume flk
    dmsetup suspend sp
    dmsetup load sp --table "0 $s linear $SPARE 0
$s 1 linear /dev/mapper/dlys 0
$((s + 1)) $((DUR_SPARE_SECTORS - s - 1)) linear $SPARE $((s + 1))"
    dmsetup resume sp
    random_file y 1
    head -c 512 y >y512
    dd if=y512 of=/dev/mapper/r0 bs=512 seek=$u oflag=direct conv=notrunc status=none &
    writer=$!
    # The bio fails at 3 s; the worker's retry of S is held until 6 s.
    sleep 4.5
    assert_eq "$(dmsetup message r0 0 unremap $u)" "$u" "unremap output"
    wait "$writer"
    assert_eq "$(dmsetup message r0 0 list)" "" "remaps after the retry (the unit is main's again)"
    total=$(dmr_status_field r0 5 | cut -d/ -f2)
    assert_eq "$(dmr_status_field r0 5)" "0/$total" "spare units used (none bad, none remapped)"
    assert_data y512 /dev/mapper/r0 $((u * 512)) direct
    assert_data y512 "$MAIN" $((u * 512)) direct
}

# Metadata mode: INFO status field 16 (docs/status.md).
dur_mode() { # DEV
    dmr_status_field "$1" 16
}

# dm event counter of NAME.
dur_events() { # NAME
    dmsetup info -c --noheadings -o events "$1" | tr -d ' '
}

# Gives dspare a table whose metadata area (the 5 copies, sectors 0..DATA_START, before the
# data area: docs/metadata-format.md) is the error target, the data area still linear over
# SPARE; or, with no argument, the plain linear table again. Takes effect at the resume.
dur_spare_metadata_errors() { # [DATA_START]
    if [[ -n ${1:-} ]]; then
        printf '0 %d error\n%d %d linear %s %d\n' "$1" "$1" $((DUR_SPARE_SECTORS - $1)) "$SPARE" "$1" |
            dmsetup reload dspare
    else
        dmsetup reload dspare --table "0 $DUR_SPARE_SECTORS linear $SPARE 0"
    fi
    dmsetup resume dspare
}

# A commit that writes no metadata copy puts the device in metadata mode read_only (docs/design.md,
# "Metadata failure mode"): a dm event, the flush fails, a new write error is not remapped and
# no spare is consumed, a failed read marks nothing pending, remap messages are refused, the
# remaps made before keep working; once the spare works again a commit succeeds and writes
# needs_check, so the device comes back read_only until `dm-remap repair` clears it.
test_durability_failed_commit_enters_read_only() {
    local b1=$((8 * 1000 + 3)) b2=$((8 * 2000 + 1)) b3=$((8 * 4000 + 2)) data_start ev used failures out sys logs
    dmr_load
    dur_stack
    assert_eq "$(dur_mode r0)" write "metadata mode after create"
    data_start=$(first_spare_sector r0 /dev/mapper/dspare)
    dmsetup message dust 0 addbadblock $b1 255
    random_file x 1
    head -c 4096 x >x4k
    # A write over b1 (O_DIRECT, no fsync), relocated by the worker: a remap that waits for a
    # commit.
    dd if=x4k of=/dev/mapper/r0 bs=4096 seek=$((b1 / 8)) oflag=direct conv=notrunc status=none
    assert_match "$(dmsetup message r0 0 list)" "^$b1 [0-9]+$" "remaps after the write over $b1"
    dur_spare_metadata_errors "$data_start"
    ev=$(dur_events r0)
    assert_fails dmsetup message r0 0 commit
    assert_eq "$(dur_mode r0)" read_only "metadata mode after the failed commit"
    (($(dur_events r0) > ev)) || fail "no dm event for the mode change (events $ev -> $(dur_events r0))"
    dmesg | grep -q "metadata mode read_only" || fail "no log line for the mode change"
    sys=/sys/kernel/dm-remap-v4/dm-$(dmsetup info -c --noheadings -o minor r0 | tr -d ' ')
    assert_eq "$(cat "$sys/metadata_mode")" read_only "sysfs metadata_mode"
    # A flush retries the commit, which fails again: the flush fails.
    assert_fails dd if=x4k of=/dev/mapper/r0 bs=4096 seek=100 oflag=direct conv=fsync,notrunc status=none
    # A new write error is returned, not remapped; no spare is consumed.
    used=$(dmr_status_field r0 5)
    failures=$(dmr_status_field r0 8)
    dmsetup message dust 0 addbadblock $b2 255
    assert_fails dd if=x4k of=/dev/mapper/r0 bs=4096 seek=$((b2 / 8)) oflag=direct conv=notrunc status=none
    assert_eq "$(dmr_status_field r0 5)" "$used" "spare use after a write error in read_only"
    (($(dmr_status_field r0 8) > failures)) || fail "the unremapped write error is not a remap failure"
    # A failed read marks nothing pending; the messages that record state are refused.
    dmsetup message dust 0 addbadblock $b3
    assert_fails dd if=/dev/mapper/r0 of=/dev/null bs=512 skip=$b3 count=1 iflag=direct status=none
    assert_eq "$(dmr_status_field r0 4)" 0 "pending units after a failed read in read_only"
    assert_fails dmsetup message r0 0 remap 40000
    assert_fails dmsetup message r0 0 unremap $b1
    out=$(dmsetup message r0 0 list)
    assert_match "$out" "^$b1 [0-9]+$" "remaps in read_only (only $b1)"
    # The remap made before the failure is served.
    assert_data x4k /dev/mapper/r0 $((b1 / 8 * 4096)) direct
    # The spare works again: the retried commit succeeds, the mode stays read_only.
    dur_spare_metadata_errors
    dmsetup message r0 0 commit
    assert_eq "$(dur_mode r0)" read_only "metadata mode after a successful retry"
    # A table reload shares the in-core table: the new table keeps the mode.
    dmsetup reload r0 --table "$(dmr_table /dev/mapper/dust /dev/mapper/dspare)"
    dmsetup resume r0
    assert_eq "$(dur_mode r0)" read_only "metadata mode after a table reload"
    # A new table loads needs_check from the spare: read_only, and the log names the repair.
    dmsetup remove r0
    logs=$(dmesg | grep -c "dm-remap repair" || true)
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust /dev/mapper/dspare)"
    assert_eq "$(dur_mode r0)" read_only "metadata mode of a new table over a spare with needs_check"
    (($(dmesg | grep -c "dm-remap repair") > logs)) || fail "no log line naming dm-remap repair at create"
    assert_eq "$(dmsetup message r0 0 list)" "$out" "remaps after re-creating the device"
    dmsetup remove r0
    # The offline tool: check reports needs_check, repair clears it.
    expect_exit 5 check /dev/mapper/dspare
    assert_match "$(cat err)" "needs_check.*dm-remap repair" "check's message"
    cli repair /dev/mapper/dspare | tee out
    assert_match "$(cat out)" "needs_check cleared" "repair output"
    cli check /dev/mapper/dspare >/dev/null
    dmsetup create r0 --table "$(dmr_table /dev/mapper/dust /dev/mapper/dspare)"
    assert_eq "$(dur_mode r0)" write "metadata mode after the repair"
    assert_match "$(dmsetup message r0 0 list)" "^$b1 [0-9]+$" "remaps after the repair"
    assert_data x4k /dev/mapper/r0 $((b1 / 8 * 4096)) direct
}
